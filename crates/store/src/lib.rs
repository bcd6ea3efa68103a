//! The storage contract ([`Store`]) and its two implementations, `SQLite` (the embedded default)
//! and `PostgreSQL` (at scale). Both run the same portable SQL (see `portable.rs`); only the
//! connection set-up, the transaction start and the migrations differ. Functions that read or
//! change patient or practice data take an [`authz::Grant`], never a bare id, and their SQL also
//! filters by the relationship the grant was made for.

mod access_log;
mod accounts;
pub mod appointments;
mod book;
pub mod detection;
mod documents;
mod engines;
pub mod incidents;
mod integrations;
mod jobs;
mod links;
pub mod messages;
mod mfa;
mod model;
mod notices;
mod outbox;
mod patient_keys;
mod platform;
mod portable;
mod practices;
pub mod prescriptions;
pub mod proxies;
mod records;
mod sessions;
mod shared;
mod signin;
mod tokens;

pub use access_log::AccessLogStore;
pub use accounts::AccountStore;
pub use appointments::AppointmentStore;
pub use book::BookStore;
pub use detection::{AlertRow, Canaries, DetectionStore, Mark, NewAlert, Raised, SecurityAction, Settle, SwitchRow};
pub use incidents::{CampaignStore, IncidentStore};
pub use integrations::IntegrationStore;
pub use jobs::{JobRow, JobState, JobStore, NewJob};
pub use links::{LinkKind, LinkStore};
pub use messages::MessageStore;
pub use notices::NoticeStore;
pub use outbox::OutboxStore;
pub use platform::PlatformStore;
pub use practices::{EnrolmentGrant, PracticeStore, StaffChange};
pub use prescriptions::PrescriptionStore;
pub use proxies::{NewProxy, ProxyRow, ProxyStore};
pub use sessions::SessionStore;

pub use documents::{DocumentStore, DocumentWithKey, StoreGrant};
pub use engines::{Backend, PgStore, SqliteStore, connect};
pub use mfa::{CeremonyRow, MfaStore, PasskeyRow, TotpRow};
pub use model::*;
pub use patient_keys::{KeyGrant, PatientKeyStore};
pub use records::{
    AutoReleased, RecordFilter, RecordKeyGrant, RecordKeyWithPatientKey, RecordStore, RecordSummaryRows,
};
pub use signin::{EmailChanged, SignInStore, WindowCount};

use authz::{
    EnrolPatient, ExportAudit, ListPracticePatients, ManageOperators, ManagePractices, ManageStaff, Relations,
    ViewAccessHistory, ViewPatient,
};
use domain::{AccountId, BoxFuture, PatientId, PracticeId, SessionId, StaffRole, UnixTime};

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist (or is not visible through the grant given).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the string names what was duplicated.
    #[error("{0} is already in use")]
    Conflict(&'static str),
    /// The invitation or activation link cannot be used.
    #[error("invitation {0:?}")]
    Invitation(InvitationState),
    /// A value read back from the database is not one this version understands.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A tree node's index within its level, and its hash.
pub type IndexedHash = (u64, [u8; 32]);

/// Shorthand for storage results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The storage contract. One conformance suite (`tests/conformance.rs`) runs against every
/// implementation.
/// The storage contract: every aggregate's trait, implemented by both engines. One conformance
/// suite (`tests/conformance.rs`) runs against every implementation.
pub trait Store:
    Relations
    + AccountStore
    + LinkStore
    + PracticeStore
    + SessionStore
    + OutboxStore
    + AccessLogStore
    + PlatformStore
    + JobStore
    + DocumentStore
    + PatientKeyStore
    + RecordStore
    + AppointmentStore
    + BookStore
    + PrescriptionStore
    + ProxyStore
    + NoticeStore
    + MessageStore
    + DetectionStore
    + IncidentStore
    + CampaignStore
    + IntegrationStore
    + MfaStore
    + SignInStore
    + Send
    + Sync
    + 'static
{
    /// Which engine this is.
    fn backend(&self) -> Backend;
    /// Applies pending migrations.
    fn migrate(&self) -> BoxFuture<'_, Result<()>>;
    /// A cheap round trip, for readiness checks.
    fn ping(&self) -> BoxFuture<'_, Result<()>>;
}

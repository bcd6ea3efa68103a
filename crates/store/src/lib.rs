//! The storage contract ([`Store`]) and its two implementations, `SQLite` (the embedded default)
//! and `PostgreSQL` (at scale). Both run the same portable SQL (see `portable.rs`); only the
//! connection set-up, the transaction start and the migrations differ. Functions that read or
//! change patient or practice data take an [`authz::Grant`], never a bare id, and their SQL also
//! filters by the relationship the grant was made for.

mod documents;
mod engines;
mod mfa;
mod model;
mod portable;
mod signin;

pub use documents::{DocumentStore, StoreGrant};
pub use engines::{Backend, PgStore, SqliteStore, connect};
pub use mfa::{CeremonyRow, MfaStore, PasskeyRow, TotpRow};
pub use model::*;
pub use signin::{EmailChanged, SignInStore, WindowCount};

use authz::{
    EnrolPatient, ExportAudit, Grant, ListPracticePatients, ManageOperators, ManagePractices, ManageStaff, Relations,
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
pub trait Store: Relations + DocumentStore + MfaStore + SignInStore + Send + Sync + 'static {
    /// Which engine this is.
    fn backend(&self) -> Backend;
    /// Applies pending migrations.
    fn migrate(&self) -> BoxFuture<'_, Result<()>>;
    /// A cheap round trip, for readiness checks.
    fn ping(&self) -> BoxFuture<'_, Result<()>>;
    /// Returns the stored secret called `name`, storing `fresh` first if there is none yet
    /// (so every node of a cluster agrees on it).
    fn secret<'a>(&'a self, name: &'a str, fresh: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>>>;

    // --- accounts ---
    /// The account with this email, if any.
    fn account_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, Result<Option<AccountRow>>>;
    /// The account with this id, if any.
    fn account(&self, id: AccountId) -> BoxFuture<'_, Result<Option<AccountRow>>>;
    /// How many operator accounts have set a password.
    fn active_operator_count(&self) -> BoxFuture<'_, Result<i64>>;
    /// Creates an operator account (no password yet) with its invitation and email, atomically.
    fn create_operator<'a>(
        &'a self,
        grant: &'a Grant<ManageOperators>,
        account: &'a NewAccount,
        invite: &'a NewInvitation,
    ) -> BoxFuture<'a, Result<()>>;

    // --- practices and staff ---
    /// Creates a practice.
    fn create_practice<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        practice: &'a NewPractice,
    ) -> BoxFuture<'a, Result<()>>;
    /// Every practice, with staff and patient counts.
    fn list_practices<'a>(&'a self, grant: &'a Grant<ManagePractices>) -> BoxFuture<'a, Result<Vec<PracticeSummary>>>;
    /// A practice's public details (name, HPI id, region).
    fn practice(&self, id: PracticeId) -> BoxFuture<'_, Result<Option<PracticeRow>>>;
    /// Creates a staff account at the grant's practice with its invitation and email, atomically.
    fn invite_staff<'a>(
        &'a self,
        grant: &'a Grant<ManageStaff>,
        account: &'a NewAccount,
        role: StaffRole,
        invite: &'a NewInvitation,
    ) -> BoxFuture<'a, Result<()>>;
    /// The grant's practice's staff.
    fn list_staff<'a>(&'a self, grant: &'a Grant<ManageStaff>) -> BoxFuture<'a, Result<Vec<StaffRow>>>;
    /// Which practice a staff account belongs to, and in what role.
    fn staff_membership(&self, account: AccountId) -> BoxFuture<'_, Result<Option<(PracticeId, StaffRole)>>>;

    // --- patients ---
    /// Enrols a patient at the grant's practice. A new NHI gets a patient record, an account
    /// and an activation invitation with its email, atomically. An NHI already known gains this
    /// enrolment; its details are kept.
    fn enrol_patient<'a>(
        &'a self,
        grant: &'a Grant<EnrolPatient>,
        patient: &'a NewPatient,
        invite: &'a NewInvitation,
    ) -> BoxFuture<'a, Result<Enrolled>>;
    /// The patients enrolled at the grant's practice.
    fn list_patients<'a>(&'a self, grant: &'a Grant<ListPracticePatients>) -> BoxFuture<'a, Result<Vec<PatientRow>>>;
    /// The patient the grant is for.
    fn patient<'a>(&'a self, grant: &'a Grant<ViewPatient>) -> BoxFuture<'a, Result<PatientRow>>;
    /// The patient record linked to a patient account.
    fn patient_for_account(&self, account: AccountId) -> BoxFuture<'_, Result<Option<PatientId>>>;
    /// The account linked to a patient record (for notices to the patient).
    fn patient_account(&self, patient: PatientId) -> BoxFuture<'_, Result<AccountId>>;

    // --- invitations ---
    /// Replaces any unused first-start invitation with this one.
    fn replace_first_operator_invitation<'a>(&'a self, invite: &'a NewInvitation) -> BoxFuture<'a, Result<()>>;
    /// What a link's token leads to, without using it.
    fn invitation<'a>(&'a self, token_hash: &'a [u8], now: UnixTime) -> BoxFuture<'a, Result<InvitationView>>;
    /// Uses a link once: sets the password (and, for the first operator, creates the account).
    /// Atomic: a link used twice at once succeeds once.
    fn accept_invitation<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        acceptance: &'a Acceptance,
    ) -> BoxFuture<'a, Result<AccountId>>;

    // --- sessions ---
    /// Stores a new session.
    fn create_session<'a>(&'a self, session: &'a NewSession) -> BoxFuture<'a, Result<()>>;
    /// The live session with this token hash: not ended, not past its absolute expiry, and seen
    /// since `idle_cutoff`.
    fn live_session<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        idle_cutoff: UnixTime,
    ) -> BoxFuture<'a, Result<Option<SessionRow>>>;
    /// The live session with this token hash (as [`Store::live_session`]) and everything
    /// authentication needs about it, in one query; `passkeys_flag` names the platform setting
    /// that requires passkeys.
    fn session_subject<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        idle_cutoff: UnixTime,
        passkeys_flag: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionSubject>>>;
    /// Records activity on a session.
    fn touch_session(&self, id: SessionId, now: UnixTime) -> BoxFuture<'_, Result<()>>;
    /// An account's live sessions, most recent first.
    fn list_sessions(
        &self,
        account: AccountId,
        now: UnixTime,
        idle_cutoff: UnixTime,
    ) -> BoxFuture<'_, Result<Vec<SessionRow>>>;
    /// Ends one of the account's sessions; false if it has no such live session.
    fn end_session(&self, account: AccountId, session: SessionId, now: UnixTime) -> BoxFuture<'_, Result<bool>>;
    /// Ends all of the account's sessions but `keep`; returns how many were ended.
    fn end_other_sessions(
        &self,
        account: AccountId,
        keep: Option<SessionId>,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<u64>>;

    // --- mail outbox ---
    /// Queues a message on its own (most mail is queued with the change that causes it).
    fn enqueue_mail<'a>(&'a self, mail: &'a NewMail) -> BoxFuture<'a, Result<()>>;
    /// Leases up to `limit` due messages until `lease_until`, so that only one sender sends each.
    fn claim_mail(&self, now: UnixTime, lease_until: UnixTime, limit: i64) -> BoxFuture<'_, Result<Vec<MailRow>>>;
    /// Marks a message delivered and clears its body.
    fn mail_sent(&self, id: uuid::Uuid, now: UnixTime) -> BoxFuture<'_, Result<()>>;
    /// Records a failed attempt and when to try again.
    fn mail_failed<'a>(
        &'a self,
        id: uuid::Uuid,
        next_attempt_at: UnixTime,
        error: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    /// Messages not yet delivered.
    fn pending_mail_count(&self) -> BoxFuture<'_, Result<i64>>;

    // --- audit log ---
    /// Appends events in one transaction (the group commit): all are durable, or none.
    fn append_audit_events<'a>(&'a self, events: &'a [AuditEvent]) -> BoxFuture<'a, Result<()>>;
    /// Takes or renews the lease `name` for `holder` until `until`; false if another holder has it.
    fn take_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        now: UnixTime,
        until: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Sequences up to `limit` waiting events into the Merkle tree, in one transaction; returns
    /// the new tree size and root.
    fn sequence_audit(&self, limit: i64) -> BoxFuture<'_, Result<(u64, [u8; 32])>>;
    /// The number of sequenced events.
    fn audit_tree_size(&self) -> BoxFuture<'_, Result<u64>>;
    /// The number of events waiting to be sequenced.
    fn unsequenced_audit_count(&self) -> BoxFuture<'_, Result<u64>>;
    /// The stored perfect-subtree hashes of one level with index in `[from, to)`, by index.
    fn audit_node_range(&self, level: u32, from: u64, to: u64) -> BoxFuture<'_, Result<Vec<IndexedHash>>>;
    /// The hashes of these perfect subtrees (level, index), in order.
    fn audit_nodes<'a>(&'a self, keys: &'a [(u32, u64)]) -> BoxFuture<'a, Result<Vec<[u8; 32]>>>;
    /// Stores a signed checkpoint.
    fn add_checkpoint<'a>(&'a self, checkpoint: &'a CheckpointRow) -> BoxFuture<'a, Result<()>>;
    /// All checkpoints, smallest first.
    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<CheckpointRow>>>;
    /// The largest checkpoint.
    fn latest_checkpoint(&self) -> BoxFuture<'_, Result<Option<CheckpointRow>>>;
    /// The checkpoint at one tree size, if there is one.
    fn checkpoint_at(&self, size: u64) -> BoxFuture<'_, Result<Option<CheckpointRow>>>;
    /// Stores a verified cosignature (a witness's later cosignature of the same checkpoint
    /// replaces its earlier one).
    fn add_cosignature<'a>(&'a self, cosignature: &'a CosignatureRow, now: UnixTime) -> BoxFuture<'a, Result<()>>;
    /// All stored cosignatures.
    fn cosignatures(&self) -> BoxFuture<'_, Result<Vec<CosignatureRow>>>;
    /// Sequenced events with `seq >= from`, in order, at most `limit`.
    fn sequenced_events(&self, from: u64, limit: i64) -> BoxFuture<'_, Result<Vec<SequencedEvent>>>;
    /// The leaf index of an event, once sequenced.
    fn audit_seq_of<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<Option<u64>>>;
    /// The leaf index of the first event written at or after `at_ms`, if any.
    fn first_audit_seq_since(&self, at_ms: i64) -> BoxFuture<'_, Result<Option<u64>>>;
    /// Removes the events with a leaf index below `below` (retention; their tree nodes stay)
    /// and records it, with `cutoff_ms` (every removed event is older). Returns how many went.
    fn prune_audit(&self, below: u64, cutoff_ms: i64, now: UnixTime) -> BoxFuture<'_, Result<u64>>;
    /// Where the retained log begins: (leaf index, cutoff) of the last removal, if any.
    fn audit_pruned(&self) -> BoxFuture<'_, Result<Option<(u64, i64)>>>;
    /// A patient's access history, newest first.
    fn patient_history<'a>(
        &'a self,
        grant: &'a Grant<ViewAccessHistory>,
        filter: &'a HistoryFilter,
    ) -> BoxFuture<'a, Result<Vec<HistoryRow>>>;
    /// Every event in a time range, oldest first (operators' export).
    fn audit_range<'a>(
        &'a self,
        grant: &'a Grant<ExportAudit>,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<AuditEvent>>>;
}

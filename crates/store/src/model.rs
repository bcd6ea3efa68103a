//! The rows the storage contract takes and returns.

use domain::{
    AccountId, AccountKind, DateOfBirth, Email, HpiFacilityId, Nhi, PatientId, PersonName, PracticeId, PracticeName,
    Region, SessionId, StaffRole, UnixTime,
};

/// A new account (no password until its invitation is accepted).
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Its id.
    pub id: AccountId,
    /// What it is for.
    pub kind: AccountKind,
    /// Where its mail goes; unique across accounts.
    pub email: Email,
    /// The name shown for it.
    pub display_name: PersonName,
    /// When it was made.
    pub created_at: UnixTime,
}

/// An account as stored.
#[derive(Debug, Clone)]
pub struct AccountRow {
    /// Its id.
    pub id: AccountId,
    /// What it is for.
    pub kind: AccountKind,
    /// Its email.
    pub email: String,
    /// The name shown for it.
    pub display_name: String,
    /// The Argon2id PHC string, once a password is set.
    pub password_hash: Option<String>,
    /// When it was disabled, if it was.
    pub disabled_at: Option<UnixTime>,
}

/// A new practice.
#[derive(Debug, Clone)]
pub struct NewPractice {
    /// Its id.
    pub id: PracticeId,
    /// Its name.
    pub name: PracticeName,
    /// Its HPI facility id; unique.
    pub hpi_facility_id: HpiFacilityId,
    /// Its region.
    pub region: Region,
    /// When it was made.
    pub created_at: UnixTime,
}

/// A practice as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeRow {
    /// Its id.
    pub id: PracticeId,
    /// Its name.
    pub name: String,
    /// Its HPI facility id.
    pub hpi_facility_id: String,
    /// Its region.
    pub region: String,
}

/// A practice with counts, for the operator's list.
#[derive(Debug, Clone)]
pub struct PracticeSummary {
    /// The practice.
    pub practice: PracticeRow,
    /// How many staff it has.
    pub staff: i64,
    /// How many patients are enrolled.
    pub patients: i64,
}

/// A staff member as listed.
#[derive(Debug, Clone)]
pub struct StaffRow {
    /// Their account.
    pub account: AccountId,
    /// Their name.
    pub name: String,
    /// Their email.
    pub email: String,
    /// Their role.
    pub role: StaffRole,
    /// Whether they have accepted their invitation.
    pub active: bool,
}

/// A patient to enrol.
#[derive(Debug, Clone)]
pub struct NewPatient {
    /// The patient record's id (used only if the NHI is new).
    pub id: PatientId,
    /// The account's id (used only if the NHI is new).
    pub account: AccountId,
    /// Their NHI number.
    pub nhi: Nhi,
    /// Their name.
    pub name: PersonName,
    /// Their date of birth.
    pub date_of_birth: DateOfBirth,
    /// Their email.
    pub email: Email,
    /// Who enrolled them.
    pub enrolled_by: Option<AccountId>,
    /// When.
    pub at: UnixTime,
}

/// What enrolling did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrolled {
    /// A new patient record and account; the activation invitation was stored and mailed.
    New(PatientId),
    /// The NHI was known; the patient is now also enrolled here. No invitation was needed.
    Existing(PatientId),
    /// The NHI was known and already enrolled here; nothing changed.
    AlreadyEnrolled(PatientId),
}

/// A patient as stored.
#[derive(Debug, Clone)]
pub struct PatientRow {
    /// Their id.
    pub id: PatientId,
    /// Their account.
    pub account: AccountId,
    /// Their NHI number.
    pub nhi: String,
    /// Their name.
    pub name: String,
    /// Their date of birth, `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// Their email.
    pub email: String,
    /// Whether they have activated their account.
    pub active: bool,
}

/// What a single-use link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationPurpose {
    /// A patient activates their account.
    ActivatePatient,
    /// A staff member joins their practice.
    JoinStaff,
    /// An operator joins the platform.
    JoinOperator,
    /// The first operator sets themself up after the first start.
    FirstOperator,
}

impl InvitationPurpose {
    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ActivatePatient => "activate_patient",
            Self::JoinStaff => "join_staff",
            Self::JoinOperator => "join_operator",
            Self::FirstOperator => "first_operator",
        }
    }
    pub(crate) fn from_stored(s: &str) -> Option<Self> {
        [Self::ActivatePatient, Self::JoinStaff, Self::JoinOperator, Self::FirstOperator]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// A single-use link to store, with the email that carries it.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    /// Its id.
    pub id: uuid::Uuid,
    /// SHA-256 of the token in the link.
    pub token_hash: Vec<u8>,
    /// What it is for.
    pub purpose: InvitationPurpose,
    /// When it was made.
    pub created_at: UnixTime,
    /// When it stops working.
    pub expires_at: UnixTime,
    /// The email carrying the link, queued in the same transaction (none for the first-start
    /// link, which is printed on the console).
    pub mail: Option<NewMail>,
}

/// Whether a link can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    /// No such link.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Already used.
    Used,
}

/// A usable link, as seen before using it.
#[derive(Debug, Clone)]
pub struct InvitationView {
    /// What it is for.
    pub purpose: InvitationPurpose,
    /// The account it sets up (none for the first-start link).
    pub account: Option<AccountRow>,
}

/// What accepting a link sets.
#[derive(Debug, Clone)]
pub struct Acceptance {
    /// The new password's Argon2id hash.
    pub password_hash: String,
    /// For the first-start link only: the operator account to create.
    pub first_operator: Option<NewAccount>,
}

/// A new session.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Its public handle.
    pub id: SessionId,
    /// SHA-256 of the bearer token.
    pub token_hash: Vec<u8>,
    /// Whose it is.
    pub account: AccountId,
    /// When it began.
    pub created_at: UnixTime,
    /// When it ends regardless of activity.
    pub absolute_expires_at: UnixTime,
    /// The client's address.
    pub ip: String,
    /// The client's user agent (truncated).
    pub user_agent: String,
}

/// A session as stored.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Its public handle.
    pub id: SessionId,
    /// Whose it is.
    pub account: AccountId,
    /// When it began.
    pub created_at: UnixTime,
    /// When it was last used.
    pub last_seen_at: UnixTime,
    /// When it ends regardless of activity.
    pub absolute_expires_at: UnixTime,
    /// The client's address at sign-in.
    pub ip: String,
    /// The client's user agent at sign-in.
    pub user_agent: String,
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct NewMail {
    /// Its id.
    pub id: uuid::Uuid,
    /// The recipient's address.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
    /// When it was queued.
    pub created_at: UnixTime,
}

/// A queued message, leased for sending.
#[derive(Debug, Clone)]
pub struct MailRow {
    /// Its id.
    pub id: uuid::Uuid,
    /// The recipient's address.
    pub recipient: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
    /// Attempts made so far, including this one.
    pub attempts: i64,
}

pub use audit::event::Event as AuditEvent;

/// A sequenced event as stored, with the leaf hash the sequencer recorded.
#[derive(Debug, Clone)]
pub struct SequencedEvent {
    /// Its leaf index.
    pub seq: u64,
    /// The event.
    pub event: AuditEvent,
    /// The leaf hash stored beside it (a verifier recomputes it rather than trusting it).
    pub leaf_hash: Vec<u8>,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Vec<u8>,
    /// The signed note.
    pub note: String,
    /// When it was made.
    pub created_at: UnixTime,
}

/// A verified witness cosignature as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosignatureRow {
    /// The checkpoint it cosigns.
    pub checkpoint_size: u64,
    /// The witness's key name.
    pub witness: String,
    /// The signature line.
    pub signature_line: String,
    /// The witness's timestamp.
    pub signed_at: i64,
}

/// One line of a patient's access history.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// The event.
    pub event: AuditEvent,
    /// Its leaf index, once sequenced.
    pub seq: Option<u64>,
    /// The actor's display name (filled in by the application from the account).
    pub actor_name: Option<String>,
    /// The actor's practice's name, for staff (filled in by the application).
    pub practice_name: Option<String>,
}

/// Which events of a patient's history to show.
#[derive(Debug, Clone)]
pub struct HistoryFilter {
    /// From this time (inclusive), ms.
    pub from_ms: i64,
    /// Until this time (exclusive), ms.
    pub to_ms: i64,
    /// Only these object types (none: all).
    pub object_types: Vec<String>,
    /// At most this many, newest first.
    pub limit: i64,
}

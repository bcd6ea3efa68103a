//! The rows the storage contract takes and returns.

use domain::{
    AccountId, AccountKind, ClientId, DateOfBirth, DocumentCategory, DocumentId, Email, HpiFacilityId, Nhi, PatientId,
    PersonName, PracticeId, PracticeName, Region, SessionId, StaffRole, UnixTime,
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
    /// Consecutive failed sign-ins from browsers the account has not used before.
    pub failed_sign_ins: i32,
    /// When the last of those was.
    pub last_failed_sign_in_at: Option<UnixTime>,
    /// When its password was found on the breached/common list (it must be changed).
    pub password_breached_at: Option<UnixTime>,
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
    /// The NHI was known and already enrolled here; nothing changed.
    AlreadyEnrolled(PatientId),
    /// The NHI was known, at other practices: this practice's enrolment is a request the
    /// account holder answers. The practice must be told only that the person will be asked.
    Requested {
        /// The record the NHI names.
        patient: PatientId,
        /// Whether the name and date of birth given matched the record (only then is the
        /// account holder asked).
        identity_matched: bool,
        /// Whether this made a new request (false: one stood already, from the last 30 days).
        fresh: bool,
    },
}

/// How long an enrolment request stands (unanswered, or declined) before the practice may ask
/// again: 30 days.
pub const ENROLMENT_REQUEST_SECS: UnixTime = 30 * 24 * 3600;

/// A practice's request to enrol a patient, as the account holder sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentRequest {
    /// The practice asking.
    pub practice: PracticeId,
    /// Its name.
    pub practice_name: String,
    /// When it asked.
    pub requested_at: UnixTime,
}

/// An enrolment the practice asked for and the person has not (yet) accepted, as the practice
/// sees it: only the NHI it typed and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitingPatient {
    /// The NHI the practice gave.
    pub nhi: String,
    /// When it asked.
    pub requested_at: UnixTime,
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
    /// When it proved a second factor, if it did.
    pub mfa_at: Option<UnixTime>,
    /// When it was allowed to add a first second factor (opened by an emailed link).
    pub setup_ok_at: Option<UnixTime>,
    /// Whether its second factor was a passkey.
    pub mfa_passkey: bool,
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
    /// When it proved a second factor, if it did.
    pub mfa_at: Option<UnixTime>,
    /// When it was allowed to add a first second factor (opened by an emailed link).
    pub setup_ok_at: Option<UnixTime>,
    /// Whether its second factor was a passkey.
    pub mfa_passkey: bool,
    /// When a detector asked this session to prove its second factor again.
    pub step_up_at: Option<UnixTime>,
}

/// Everything a request's authentication needs about its session, read in one query: the
/// session, its account, the patient record or staff membership the account is linked to, and
/// the second-factor rules that apply to it.
#[derive(Debug, Clone)]
pub struct SessionSubject {
    /// The session.
    pub session: SessionRow,
    /// The account's kind.
    pub kind: domain::AccountKind,
    /// The account holder's name.
    pub display_name: String,
    /// When the account's password was found on the breached list, if it was.
    pub password_breached_at: Option<UnixTime>,
    /// The patient record a patient account is linked to.
    pub patient: Option<PatientId>,
    /// A staff account's practice and role.
    pub staff: Option<(PracticeId, domain::StaffRole)>,
    /// Whether a practice the patient is enrolled at requires a second factor.
    pub patient_must_use_mfa: bool,
    /// When an incident lead required this account to use a second factor, if one did.
    pub second_factor_required_at: Option<UnixTime>,
    /// Whether the account has a confirmed authenticator app or a passkey.
    pub has_second_factor: bool,
    /// Whether the platform requires passkeys of operators and practice admins.
    pub passkeys_required: bool,
    /// The person whose record the session has open, when the account acts for someone: their
    /// id, name, and who the account is to them (`None` when no open link remains).
    pub acting_for: Option<SessionActing>,
    /// Unread notices in the account's inbox.
    pub unread_notices: i64,
}

/// The record a session has open for someone the account acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionActing {
    /// The patient.
    pub patient: PatientId,
    /// Their name.
    pub name: String,
    /// The open link's relationship and scopes (`None`: no open link remains).
    pub link: Option<(domain::proxies::Relationship, domain::proxies::ProxyScopes)>,
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
    /// The notice it announces in the person's in-portal inbox, written with it.
    pub notice: Option<NewNotice>,
    /// Whether it is emailed (false: the notice alone, for someone who turned email off
    /// for that kind of notice).
    pub deliver: bool,
}

/// A notice for a person's in-portal inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    /// Its id.
    pub id: domain::NoticeId,
    /// Whose inbox.
    pub account: AccountId,
    /// The patient it is about (the person a proxy acts for), if any.
    pub patient: Option<PatientId>,
    /// Its kind (a `notices` kind code).
    pub kind: String,
    /// Its fixed wording, with no health content.
    pub title: String,
    /// Where in the portal it leads (a path), if anywhere.
    pub link: Option<String>,
}

/// A notice in a person's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRow {
    /// Its id.
    pub id: domain::NoticeId,
    /// The patient it is about, if any, and their name.
    pub patient: Option<(PatientId, String)>,
    /// Its kind.
    pub kind: String,
    /// Its wording.
    pub title: String,
    /// Where it leads.
    pub link: Option<String>,
    /// When.
    pub created_at: UnixTime,
    /// When it was read.
    pub read_at: Option<UnixTime>,
}

/// Someone to tell about news of a patient: the patient's own account, or a proxy's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Their account.
    pub account: AccountId,
    /// Their name.
    pub name: String,
    /// Their email address.
    pub email: String,
    /// Whether the account is active (has signed in; a dormant one gets no mail).
    pub active: bool,
    /// The proxy's terms, for a proxy (the patient's own account: `None`).
    pub proxy: Option<domain::proxies::ProxyTerms>,
    /// Whether they want this kind of notice emailed too.
    pub email_on: bool,
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
    /// Only these modules' events (codes; none: all; at most four).
    pub modules: Vec<String>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// A document as stored (a new one has no hidden, withdrawn or deleted time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRow {
    /// Its id.
    pub id: DocumentId,
    /// The patient it is about.
    pub patient: PatientId,
    /// Its version (bound into the encryption's associated data).
    pub version: i32,
    /// What kind of document it is.
    pub category: DocumentCategory,
    /// Its title as shown (the patient may rename their own).
    pub title: String,
    /// The cleaned file name it is downloaded as.
    pub filename: String,
    /// The media type detected from its content.
    pub media_type: String,
    /// Plaintext size, bytes.
    pub size: i64,
    /// The random object key of its encrypted blob.
    pub blob_key: String,
    /// Its data key, wrapped by the patient's key (empty once deleted).
    pub wrapped_key: Vec<u8>,
    /// Which version of the patient's key wraps it.
    pub key_version: i32,
    /// The practice id bound into the associated data (`-` for none).
    pub aad_practice: String,
    /// The clinical date (`YYYY-MM-DD`) for clinical documents.
    pub clinical_date: Option<String>,
    /// Its author, for clinical documents.
    pub author: Option<String>,
    /// The organisation that sent it (HPI id; the patient's account id for uploads).
    pub source_org_id: String,
    /// That organisation's name.
    pub source_org_name: String,
    /// The data controller: who must be told if it is ever exposed (HPI id).
    pub controller_id: String,
    /// The data controller's name.
    pub controller_name: String,
    /// The source's own identifier, for idempotent pushes.
    pub source_ref: Option<String>,
    /// The practice that pushed it, if one did.
    pub pushed_by_practice: Option<PracticeId>,
    /// The API client that pushed it, if one did.
    pub pushed_by_client: Option<ClientId>,
    /// The account that uploaded it, if a person did.
    pub uploaded_by: Option<AccountId>,
    /// When it was stored.
    pub created_at: UnixTime,
    /// When the patient hid it from their own view.
    pub hidden_at: Option<UnixTime>,
    /// When the practice that pushed it withdrew it.
    pub withdrawn_at: Option<UnixTime>,
    /// When it was deleted.
    pub deleted_at: Option<UnixTime>,
}

/// A version of a patient's key, wrapped by a master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientKeyRow {
    /// The patient.
    pub patient: PatientId,
    /// The key's version.
    pub version: i32,
    /// Which master key wraps it.
    pub master_key_id: String,
    /// The wrapped key; `None` once destroyed.
    pub wrapped: Option<Vec<u8>>,
}

/// A live document's keys, for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentKey {
    /// The document.
    pub id: DocumentId,
    /// The patient key version that wraps its data key.
    pub key_version: i32,
    /// Its wrapped data key.
    pub wrapped_key: Vec<u8>,
}

/// An organisation's API client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiClientRow {
    /// Its id (the public half of its credentials).
    pub id: ClientId,
    /// A label for people ("PMS at Kawakawa", "Northland DHB discharge feed").
    pub label: String,
    /// The organisation's HPI id.
    pub org_id: String,
    /// The organisation's name.
    pub org_name: String,
    /// For a practice's own client, the practice.
    pub practice: Option<PracticeId>,
    /// SHA-256 of its secret.
    pub secret_hash: Vec<u8>,
    /// When it was made.
    pub created_at: UnixTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<UnixTime>,
    /// What it may do beyond pushing documents.
    pub scopes: domain::ClientScopes,
    /// When it was suspended (by a detector or an operator), if it is.
    pub suspended_at: Option<UnixTime>,
}

/// The record of the access log's last removal of events past their retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedRecord {
    /// The retained log begins at this leaf index.
    pub below: u64,
    /// Every removed event was written before this, ms since the epoch.
    pub cutoff_ms: i64,
    /// The record signed by the log's key (none for a record from before they were signed).
    pub note: Option<String>,
}

/// Which of a practice's patients to list: a page of those whose name or NHI matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientQuery {
    /// Part of a name, or the start of an NHI (empty: everyone).
    pub search: String,
    /// Patients to skip (name order).
    pub offset: i64,
    /// At most this many.
    pub limit: i64,
}

impl Default for PatientQuery {
    fn default() -> Self {
        Self { search: String::new(), offset: 0, limit: 50 }
    }
}

/// An operator's request to reset a patient's second factors, waiting for a second operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientResetRequest {
    /// Its id.
    pub id: uuid::Uuid,
    /// The patient's account.
    pub account: AccountId,
    /// That account's email (for the operators' page).
    pub email: String,
    /// The operator who asked.
    pub requested_by: AccountId,
    /// Their name.
    pub requested_by_name: String,
    /// Who checked the patient's identity, and how.
    pub checked: String,
    /// When it was asked.
    pub requested_at: UnixTime,
}

/// One item of a patient's health record, as stored: its clinical content sealed under the
/// patient's records key; only what queries need in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// Its id.
    pub id: domain::RecordId,
    /// Whose it is.
    pub patient: PatientId,
    /// The practice whose system sent it.
    pub practice: PracticeId,
    /// The FHIR resource type (`Condition`, `Observation`…).
    pub resource_type: String,
    /// The sending system's id for it.
    pub source_id: String,
    /// The sending system's version of it.
    pub version: i64,
    /// Its category.
    pub category: domain::RecordCategory,
    /// Its clinical date (`YYYY-MM-DD` or a full timestamp), for ordering.
    pub effective: Option<String>,
    /// Whether it was deleted or entered in error (kept for the practice and the log).
    pub removed: bool,
    /// Whether it is held until a clinician releases it.
    pub held: bool,
    /// When a held item releases itself, where the practice chose that.
    pub auto_release_at: Option<UnixTime>,
    /// When a clinician released it.
    pub released_at: Option<UnixTime>,
    /// Who released it.
    pub released_by: Option<AccountId>,
    /// The clinician's note to the patient (sealed).
    pub release_note: Option<String>,
    /// When a clinician hid it from the patient.
    pub hidden_at: Option<UnixTime>,
    /// Who hid it.
    pub hidden_by: Option<AccountId>,
    /// Why (sealed; staff only).
    pub hidden_reason: Option<String>,
    /// The report it is part of (an `Observation` in a `DiagnosticReport`).
    pub group: Option<domain::RecordId>,
    /// The sealed clinical content.
    pub content: String,
    /// When it first arrived.
    pub created_at: UnixTime,
    /// When it last changed.
    pub updated_at: UnixTime,
}

impl RecordRow {
    /// Whether the patient may see it now, under their practice's rules.
    #[must_use]
    pub fn visible_to_patient(&self, rules: &RecordRules, now: UnixTime) -> bool {
        !self.removed
            && self.hidden_at.is_none()
            && rules.categories.contains(&self.category)
            && (!self.held || self.auto_release_at.is_some_and(|t| t <= now))
    }
}

/// What a practice releases to its patients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRules {
    /// The categories patients see.
    pub categories: Vec<domain::RecordCategory>,
    /// Results release themselves this many days after they arrive (`None`: only when a
    /// clinician releases them).
    pub auto_release_days: Option<i64>,
}

impl Default for RecordRules {
    fn default() -> Self {
        Self { categories: domain::RecordCategory::DEFAULT_RELEASED.to_vec(), auto_release_days: None }
    }
}

/// A patient's records key, wrapped by a version of their patient key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKeyRow {
    /// The patient.
    pub patient: PatientId,
    /// The patient key version that wraps it.
    pub key_version: i32,
    /// The wrapped key.
    pub wrapped_key: Vec<u8>,
}

/// What an item already stored under a source id is: for deciding whether a new version applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// The resource type.
    pub resource_type: String,
    /// The source id.
    pub source_id: String,
    /// The stored item.
    pub id: domain::RecordId,
    /// Its patient.
    pub patient: PatientId,
    /// Its version.
    pub version: i64,
}

/// One change an ingest makes.
#[derive(Debug, Clone)]
pub enum RecordChange {
    /// A new item, or a newer version of one (`expected`: the version it replaces).
    Put {
        /// The row as it is to be stored.
        row: Box<RecordRow>,
        /// The version it replaces (`None`: new).
        expected: Option<i64>,
    },
    /// Marks a stored Observation as part of a report (released and hidden with it).
    Link {
        /// The Observation's source id.
        source_id: String,
        /// The report.
        group: domain::RecordId,
    },
    /// Removes an item from every patient view (deleted by the sending system).
    Remove {
        /// The resource type.
        resource_type: String,
        /// The source id.
        source_id: String,
    },
}

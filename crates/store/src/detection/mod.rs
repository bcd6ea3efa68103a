//! Detection's storage (issue 17): the marks the detectors count, in the database so that every
//! node sees one picture, and the alerts they raise. Only ids and counts: no names, no health
//! data.

use crate::Result;
use domain::{BoxFuture, UnixTime};

/// What one subject touched under one rule, to be marked.
#[derive(Debug, Clone)]
pub struct Mark {
    /// The rule's code.
    pub rule: &'static str,
    /// Who: a session id, `account:<id>` or `client:<id>`.
    pub subject: String,
    /// The start of the window.
    pub window_start: UnixTime,
    /// What it touched (ids): each counts once in the window. Empty for a tally.
    pub objects: Vec<String>,
    /// For a tally (how many, not how many distinct): how many to add.
    pub tally: i64,
}

/// An alert to raise.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// Its id.
    pub id: uuid::Uuid,
    /// The rule (a `domain::detection::Rule` code).
    pub rule: String,
    /// How serious (a `domain::detection::Severity` code).
    pub severity: String,
    /// What it is about: a session id.
    pub subject: String,
    /// The account behind the subject, when there is one.
    pub account: Option<String>,
    /// What was done (a `domain::detection::Response` code).
    pub response: String,
    /// How many distinct objects the subject had touched when it was raised.
    pub seen: i64,
    /// The window it was counted in.
    pub window_start: UnixTime,
    /// When.
    pub created_at: UnixTime,
}

/// What raising an alert found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised {
    /// This call raised it (it is new).
    pub new: bool,
    /// An operator lifted this window's alert: the subject is not to be suspended again for it.
    pub lifted: bool,
}

/// An alert, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    /// Its id.
    pub id: String,
    /// The rule's code.
    pub rule: String,
    /// The severity's code.
    pub severity: String,
    /// The session it is about.
    pub subject: String,
    /// The account behind it.
    pub account: Option<String>,
    /// The response's code.
    pub response: String,
    /// Distinct objects touched when it was raised.
    pub seen: i64,
    /// When.
    pub created_at: UnixTime,
    /// When an operator acknowledged it.
    pub acknowledged_at: Option<UnixTime>,
    /// The operator who acknowledged it (an account id).
    pub acknowledged_by: Option<String>,
    /// When an operator lifted what its response did.
    pub lifted_at: Option<UnixTime>,
    /// The operator who lifted it.
    pub lifted_by: Option<String>,
    /// Why (the operator's words).
    pub note: Option<String>,
    /// The window it was counted in.
    pub window_start: UnixTime,
}

/// What an operator did at the security console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityAction {
    /// When.
    pub at: UnixTime,
    /// The operator's account id.
    pub by: String,
    /// The verb's code (`acknowledge`, `lift`, `switch_off`, `switch_on`).
    pub action: String,
    /// What it was done to (an alert's id, or `module:scope`).
    pub object: String,
    /// Why, in the operator's words.
    pub reason: String,
}

/// What an operator does about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Looked at it.
    Acknowledge,
    /// Lifted what its response did.
    Lift,
}

/// A module switched off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchRow {
    /// The module's code (`domain::detection::Switchable`).
    pub module: String,
    /// A practice's id, or `*` for everyone.
    pub scope: String,
    /// Since when.
    pub off_at: UnixTime,
    /// The operator's account id.
    pub off_by: String,
    /// Why.
    pub reason: String,
}

/// The canaries to plant: a patient no practice has enrolled, their documents, and record ids.
#[derive(Debug, Clone)]
pub struct Canaries {
    /// The canary patient's account.
    pub account: domain::AccountId,
    /// Its sign-in email (an address that receives nothing).
    pub email: String,
    /// The canary patient.
    pub patient: domain::PatientId,
    /// A valid NHI number.
    pub nhi: String,
    /// A plausible name.
    pub name: String,
    /// A plausible date of birth.
    pub date_of_birth: String,
    /// Document ids (ids only: a row would be found by every tool that walks the documents).
    pub documents: Vec<domain::DocumentId>,
    /// Record item ids (ids only: no practice holds them).
    pub records: Vec<uuid::Uuid>,
    /// When.
    pub now: UnixTime,
}

/// The detectors' shared picture and their alerts.
pub trait DetectionStore: Send + Sync {
    /// Marks `objects` as touched by `subject` under `rule` in the window that starts at
    /// `window_start`, and returns how many distinct objects the subject has touched in that
    /// window, as every node sees it. Earlier windows stay until [`DetectionStore::prune_marks`].
    fn mark<'a>(
        &'a self,
        rule: &'a str,
        subject: &'a str,
        window_start: UnixTime,
        objects: &'a [String],
    ) -> BoxFuture<'a, Result<i64>>;
    /// Marks several at once, in one transaction (the requests arriving at once); the counts, in
    /// order: distinct objects for a mark with objects, the running tally for a tally.
    fn mark_all<'a>(&'a self, marks: &'a [Mark]) -> BoxFuture<'a, Result<Vec<i64>>>;
    /// Forgets the marks and tallies of windows that started before `before`; how many rows went.
    fn prune_marks(&self, before: UnixTime) -> BoxFuture<'_, Result<u64>>;
    /// Keeps a subject's count for a window (its volume), forgetting volumes older than `keep_since`.
    fn record_volume<'a>(
        &'a self,
        subject: &'a str,
        window_start: UnixTime,
        seen: i64,
        keep_since: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// A subject's busiest window from `since` up to (not including) `before`: its usual volume.
    fn usual_volume<'a>(&'a self, subject: &'a str, since: UnixTime, before: UnixTime) -> BoxFuture<'a, Result<i64>>;
    /// Raises an alert, once per rule, subject and window: whether this call raised it, and
    /// whether an operator has lifted (the window's) alert already.
    fn raise_alert<'a>(&'a self, alert: &'a NewAlert) -> BoxFuture<'a, Result<Raised>>;
    /// The newest alerts, newest first.
    fn alerts(&self, limit: i64) -> BoxFuture<'_, Result<Vec<AlertRow>>>;
    /// One alert.
    fn alert<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<AlertRow>>>;
    /// Records that an operator acknowledged an alert or lifted its response; false when it
    /// was already (acknowledged, or lifted).
    fn settle_alert<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManageAlerts>,
        id: &'a str,
        how: Settle,
        by: &'a str,
        note: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Asks a live session to prove its second factor again; false when it is not live.
    fn require_step_up(&self, session: domain::SessionId, now: UnixTime) -> BoxFuture<'_, Result<bool>>;
    /// Suspends an organisation's system (`Some(now)`) or resumes it (`None`); whether it changed.
    fn set_client_suspended<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManageAlerts>,
        client: domain::ClientId,
        at: Option<UnixTime>,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Suspends a session (`Some(now)`: refused on every node until lifted) or lifts its
    /// suspension (`None`); whether it changed.
    fn set_session_suspended<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManageAlerts>,
        session: domain::SessionId,
        at: Option<UnixTime>,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Switches a module off for a scope (a practice id or `*`), or on again (`None`); whether it changed.
    fn set_module_switch<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::SwitchModules>,
        module: &'a str,
        scope: &'a str,
        off: Option<(UnixTime, &'a str, &'a str)>,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Every module switched off now.
    fn module_switches(&self) -> BoxFuture<'_, Result<Vec<SwitchRow>>>;
    /// Whether a module is off for this practice (or for everyone).
    fn module_off<'a>(&'a self, module: &'a str, practice: Option<&'a str>) -> BoxFuture<'a, Result<bool>>;
    /// The honeytokens' ids and kinds.
    fn honeytokens(&self) -> BoxFuture<'_, Result<Vec<(String, String)>>>;
    /// Keeps an operator's security action with its reason.
    fn record_security_action<'a>(
        &'a self,
        at: UnixTime,
        by: &'a str,
        action: &'a str,
        object: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    /// The newest security actions, newest first.
    fn security_actions(&self, limit: i64) -> BoxFuture<'_, Result<Vec<SecurityAction>>>;
    /// Plants the canaries in one transaction (nothing when some are planted already); whether it did.
    fn plant_canaries<'a>(&'a self, c: &'a Canaries) -> BoxFuture<'a, Result<bool>>;
}

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
pub(crate) mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    include!("sql.rs");
}
pub(crate) mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    include!("sql.rs");
}

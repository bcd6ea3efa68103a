//! Incidents' storage (issue 18): incidents and their revisions, each revision's scope (the
//! patients and the objects of theirs an indicator reached), what was done about an incident,
//! and its notification campaigns, whose notices are claimed and sent exactly once. The scope is
//! computed by `app` from the access log; here are the reads it needs (the indicator accounts' and
//! sessions' events, by index) and the facts of what they touched.

use crate::Result;
use authz::{Grant, LeadIncidents, ViewImpact, ViewIncidents};
use domain::{BoxFuture, UnixTime};

mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    /// The document an event (`f`) names, if it is that patient's (ids are 16 bytes here).
    const DOCUMENT_JOIN: &str = "LEFT JOIN documents d ON f.object_type = 'document' \
                                 AND d.id = unhex(replace(f.object_id, '-', '')) \
                                 AND d.patient_id = unhex(replace(f.patient_id, '-', ''))";
    /// Rows as one JSON array of arrays: the driver hands each row's values from the engine's
    /// thread one at a time, which costs several times what the engine spends finding them.
    const PACKED: Option<(&str, &str)> = Some(("json_group_array(json_array(", "))"));
    /// Windows a span of filed events is read in, two at a time (on two connections).
    const WINDOWS: i64 = 8;
    include!("sql.rs");
}
mod sqlite_campaigns {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    include!("campaigns.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    /// The document an event (`f`) names, if it is that patient's: compared as text (migration
    /// 0025 indexes the ids so), so that an event whose object is not a UUID matches nothing
    /// rather than failing a cast.
    const DOCUMENT_JOIN: &str = "LEFT JOIN documents d ON f.object_type = 'document' \
        AND d.id::text = f.object_id AND d.patient_id::text = f.patient_id";
    /// Rows as rows: the binary protocol decodes them cheaply, and building JSON cost the
    /// engine more than it saved.
    const PACKED: Option<(&str, &str)> = None;
    /// One statement for the whole span: the engine joins it in parallel, and each window's
    /// statement would scan and hash the documents again.
    const WINDOWS: i64 = 1;
    include!("sql.rs");
}
mod postgres_campaigns {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    include!("campaigns.rs");
}

/// `$start, $start+1, …` (n of them): the parameters of a statement over many rows.
fn placeholders(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// A new incident.
#[derive(Debug, Clone)]
pub struct NewIncident {
    /// Its id.
    pub id: String,
    /// A short title.
    pub title: String,
    /// What happened, in words the notices use.
    pub description: String,
    /// When it was found.
    pub discovered_at: UnixTime,
    /// When it was declared.
    pub declared_at: UnixTime,
    /// Who declared it (an account id, or `console`).
    pub declared_by: String,
    /// The alert it was declared from.
    pub from_alert: Option<String>,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    /// Its id.
    pub id: String,
    /// Title.
    pub title: String,
    /// What happened.
    pub description: String,
    /// When found.
    pub discovered_at: UnixTime,
    /// When declared.
    pub declared_at: UnixTime,
    /// By whom.
    pub declared_by: String,
    /// The alert it came from.
    pub from_alert: Option<String>,
    /// What is being done (the notices' "what we are doing").
    pub steps_taken: String,
    /// When the Privacy Commissioner was told.
    pub commissioner_told_at: Option<UnixTime>,
    /// When it was closed.
    pub closed_at: Option<UnixTime>,
}

/// A revision of an incident's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionRow {
    /// The incident.
    pub incident_id: String,
    /// 1, 2, …
    pub revision: i64,
    /// The indicators, as JSON.
    pub indicators: String,
    /// Why this revision was made.
    pub note: String,
    /// The log's tree size the scope was computed at.
    pub tree_size: i64,
    /// The root at that size (hex).
    pub root: String,
    /// The signed checkpoint note at that size.
    pub checkpoint: String,
    /// SHA-256 of the scope's canonical listing (hex).
    pub digest: String,
    /// Patients confirmed.
    pub confirmed: i64,
    /// Patients possibly affected.
    pub possible: i64,
    /// Objects reached (documents, record items, records).
    pub objects: i64,
    /// Matching events.
    pub events: i64,
    /// When.
    pub created_at: UnixTime,
    /// By whom.
    pub created_by: String,
}

/// One patient in a revision's scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScopePatient {
    /// The patient.
    pub patient_id: String,
    /// `confirmed` or `possible`.
    pub class: String,
    /// The first event that put them there, and the indicator it matched.
    pub why: String,
}

/// One object a revision found reached.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScopeObject {
    /// Whose.
    pub patient_id: String,
    /// `document`, `health_record`, `patient_record` or `patient`.
    pub kind: String,
    /// Its id.
    pub object_id: String,
    /// `confirmed` (served) or `possible` (listed, or reachable).
    pub class: String,
    /// Its category (a document category, a record category, `record`, `details`).
    pub category: String,
    /// Its date (clinical date or effective date), if it has one.
    pub dated: Option<String>,
    /// The controlling organisation's id (a practice id, or an organisation's HPI id).
    pub controller_id: String,
    /// Its name.
    pub controller_name: String,
    /// The first event that reached it (leaf index).
    pub first_seq: i64,
}

/// An event an incident's indicators may have reached: one served to someone, about a patient
/// (nothing else can put anyone in a scope). Those found by session or account come from the
/// log's filing by actor (migration 0024), which keeps neither address nor agent: `ip` and
/// `user_agent` are known only for those read from the log itself (by time, or not yet filed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reached {
    /// Its leaf index.
    pub seq: u64,
    /// When.
    pub at_ms: i64,
    /// The account (or system) that acted.
    pub account: Option<String>,
    /// Its session.
    pub session: Option<String>,
    /// Its address, when known.
    pub ip: Option<String>,
    /// Its browser or client, when known.
    pub user_agent: Option<String>,
    /// Its module.
    pub module: String,
    /// Its verb.
    pub action: String,
    /// The kind of object.
    pub object_type: String,
    /// The object (for a listing, the ids it named).
    pub object_id: String,
    /// Whose.
    pub patient: String,
    /// The practice it was in, if any.
    pub practice: Option<String>,
    /// When it names one document of that patient: what the document is and who controls it.
    pub document: Option<DocumentFacts>,
}

/// A document's facts, as the scope keeps them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentFacts {
    /// Category.
    pub category: String,
    /// Its clinical date, or else the day it was added.
    pub dated: Option<String>,
    /// Controlling organisation.
    pub controller_id: String,
    /// Its name.
    pub controller_name: String,
}

/// A document's or record item's facts, for the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFacts {
    /// Its id.
    pub id: String,
    /// Whose.
    pub patient_id: String,
    /// Category.
    pub category: String,
    /// Date.
    pub dated: Option<String>,
    /// Controlling organisation.
    pub controller_id: String,
    /// Its name.
    pub controller_name: String,
}

/// How to reach a patient, for notices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The patient.
    pub patient_id: String,
    /// Their account.
    pub account_id: String,
    /// Their name.
    pub name: String,
    /// Their account's email.
    pub email: String,
    /// Their NHI (for their practice's report).
    pub nhi: String,
}

/// Something done about an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentAction {
    /// Its id.
    pub id: String,
    /// The incident.
    pub incident_id: String,
    /// When.
    pub at: UnixTime,
    /// By whom.
    pub by_account: String,
    /// What (`end_sessions`, `require_new_password`, `require_second_factor`, `suspend_clients`,
    /// `switch_off`, `declare`, `revise`, `campaign`, `release`, `commissioner_told`).
    pub action: String,
    /// To what set (`confirmed`, `indicator accounts`, a campaign id, …).
    pub target: String,
    /// How many it touched.
    pub affected: i64,
    /// Why.
    pub reason: String,
}

/// A new campaign.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    /// Its id.
    pub id: String,
    /// The incident.
    pub incident_id: String,
    /// The revision its notices say.
    pub revision: i64,
    /// When.
    pub created_at: UnixTime,
    /// By whom.
    pub created_by: String,
    /// At most this many a minute.
    pub per_minute: i64,
    /// The share released so far (0 to 100).
    pub released_percent: i64,
}

/// A new notice.
#[derive(Debug, Clone)]
pub struct NewNotice {
    /// Its id.
    pub id: String,
    /// The patient.
    pub patient_id: String,
    /// Their class in the campaign's revision.
    pub class: String,
    /// `notice` or `correction`.
    pub kind: String,
    /// Its place in the campaign's order (staging releases the first part).
    pub position: i64,
    /// SHA-256 of its reference code.
    pub code_hash: Vec<u8>,
    /// To whom.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
}

/// A campaign and how far it has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRow {
    /// Its id.
    pub id: String,
    /// The incident.
    pub incident_id: String,
    /// The revision.
    pub revision: i64,
    /// When.
    pub created_at: UnixTime,
    /// At most this many a minute.
    pub per_minute: i64,
    /// Released so far (percent).
    pub released_percent: i64,
    /// Notices in it.
    pub total: i64,
    /// Queued or claimed (not yet begun).
    pub waiting: i64,
    /// Begun but not answered by the server (after a crash).
    pub unconfirmed: i64,
    /// Accepted by the server.
    pub sent: i64,
    /// Refused by the server.
    pub failed: i64,
    /// Taken out by a later revision before they went.
    pub cancelled: i64,
    /// When the first was sent.
    pub first_sent_at: Option<UnixTime>,
    /// When the last was sent.
    pub last_sent_at: Option<UnixTime>,
}

/// A notice claimed for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedNotice {
    /// Its id.
    pub id: String,
    /// To whom.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
}

/// A notice as the console and the reports list it (no body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRow {
    /// Its id.
    pub id: String,
    /// Its campaign.
    pub campaign_id: String,
    /// The revision it says.
    pub revision: i64,
    /// The patient.
    pub patient_id: String,
    /// The class it told them.
    pub class: String,
    /// `notice` or `correction`.
    pub kind: String,
    /// Its state.
    pub state: String,
    /// When it was sent (or begun).
    pub sent_at: Option<UnixTime>,
    /// The server's refusal.
    pub error: Option<String>,
    /// To whom.
    pub recipient: String,
}

/// What a reference code stands for, for the public check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    /// The incident.
    pub incident_id: String,
    /// The patient it was sent to.
    pub patient_id: String,
    /// `notice` or `correction`.
    pub kind: String,
    /// Its state (only a notice that went out is genuine to its reader).
    pub state: String,
    /// When it went.
    pub sent_at: Option<UnixTime>,
}

/// An incident with a revision, its latest revision's number, and one patient's place in it
/// (none: not affected).
pub type Impact = (IncidentRow, i64, Option<ScopePatient>);

/// Incidents' storage.
pub trait IncidentStore: Send + Sync {
    /// Declares an incident.
    fn create_incident<'a>(&'a self, grant: &'a Grant<LeadIncidents>, i: &'a NewIncident) -> BoxFuture<'a, Result<()>>;
    /// Sets what is being done, when the Commissioner was told, and whether it is closed.
    fn update_incident<'a>(
        &'a self,
        grant: &'a Grant<LeadIncidents>,
        id: &'a str,
        steps_taken: &'a str,
        commissioner_told_at: Option<UnixTime>,
        closed_at: Option<UnixTime>,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Every incident, newest first.
    fn incidents<'a>(&'a self, grant: &'a Grant<ViewIncidents>) -> BoxFuture<'a, Result<Vec<IncidentRow>>>;
    /// One incident.
    fn incident<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<IncidentRow>>>;
    /// Adds the next revision with its scope, and returns its number.
    fn add_revision<'a>(
        &'a self,
        grant: &'a Grant<LeadIncidents>,
        revision: &'a RevisionRow,
        patients: &'a [ScopePatient],
        objects: &'a [ScopeObject],
    ) -> BoxFuture<'a, Result<i64>>;
    /// An incident's revisions, oldest first.
    fn revisions<'a>(&'a self, incident: &'a str) -> BoxFuture<'a, Result<Vec<RevisionRow>>>;
    /// A revision's patients.
    fn scope_patients<'a>(&'a self, incident: &'a str, revision: i64) -> BoxFuture<'a, Result<Vec<ScopePatient>>>;
    /// One patient's place in a revision (none: not affected).
    fn scope_patient<'a>(
        &'a self,
        incident: &'a str,
        revision: i64,
        patient: &'a str,
    ) -> BoxFuture<'a, Result<Option<ScopePatient>>>;
    /// A revision's objects (one patient's, or all).
    fn scope_objects<'a>(
        &'a self,
        incident: &'a str,
        revision: i64,
        patient: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<ScopeObject>>>;
    /// For each incident a revision exists of, the patient's class in its latest revision (if
    /// any): their impact status.
    fn impacts<'a>(&'a self, grant: &'a Grant<ViewImpact>) -> BoxFuture<'a, Result<Vec<Impact>>>;
    /// The log's events below `below` that were served to someone and are about a patient, by
    /// any of these accounts (or systems) or sessions, or, if `windows` is given and `by_time`
    /// is set, every such event in those windows; each once, oldest first, with the facts of the
    /// document it names.
    fn indicator_events<'a>(
        &'a self,
        grant: &'a Grant<LeadIncidents>,
        below: u64,
        accounts: &'a [String],
        sessions: &'a [String],
        windows: &'a [(i64, i64)],
        by_time: bool,
    ) -> BoxFuture<'a, Result<Vec<Reached>>>;
    /// The facts of these documents.
    fn document_facts<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<ObjectFacts>>>;
    /// The facts of these record items.
    fn record_facts<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<ObjectFacts>>>;
    /// Practices' names.
    fn practice_names<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<(String, String)>>>;
    /// Patients' first practices (for what reached a record as a whole).
    fn first_practices<'a>(&'a self, patients: &'a [String]) -> BoxFuture<'a, Result<Vec<(String, String)>>>;
    /// How to reach these patients.
    fn contacts<'a>(&'a self, patients: &'a [String]) -> BoxFuture<'a, Result<Vec<Contact>>>;
    /// Records something done about an incident.
    fn record_incident_action<'a>(&'a self, action: &'a IncidentAction) -> BoxFuture<'a, Result<()>>;
    /// What was done about an incident, oldest first.
    fn incident_actions<'a>(&'a self, incident: &'a str) -> BoxFuture<'a, Result<Vec<IncidentAction>>>;
}

/// Incidents' notification campaigns and their notices.
pub trait CampaignStore: Send + Sync {
    /// Starts a campaign with its notices, cancelling notices of earlier campaigns that had not
    /// gone (their people are in this one). No one gets two notices of one campaign.
    fn create_campaign<'a>(
        &'a self,
        grant: &'a Grant<LeadIncidents>,
        campaign: &'a NewCampaign,
        notices: &'a [NewNotice],
        cancel: &'a [String],
    ) -> BoxFuture<'a, Result<()>>;
    /// An incident's campaigns with their progress, oldest first.
    fn campaigns<'a>(&'a self, incident: &'a str) -> BoxFuture<'a, Result<Vec<CampaignRow>>>;
    /// One campaign with its progress.
    fn campaign<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<CampaignRow>>>;
    /// Releases more of a campaign (never less) and sets its rate.
    fn release_campaign<'a>(
        &'a self,
        grant: &'a Grant<LeadIncidents>,
        id: &'a str,
        percent: i64,
        per_minute: i64,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Claims up to `limit` released notices of a campaign that are queued (or whose claim
    /// lapsed), in the campaign's order.
    fn claim_notices<'a>(
        &'a self,
        campaign: &'a str,
        holder: &'a str,
        now: UnixTime,
        lease_until: UnixTime,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<ClaimedNotice>>>;
    /// Marks a claimed notice as going out (just before the server is told to deliver it) and,
    /// in the same commit, settles the one before it. False when the claim was lost.
    fn notice_sending<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        now: UnixTime,
        previous: Option<(&'a str, &'a str, Option<&'a str>)>,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Settles a notice: `sent`, `failed` (with the server's answer) or back to `queued` (the
    /// server asked to try later, or the message never began).
    fn settle_notice<'a>(
        &'a self,
        id: &'a str,
        state: &'a str,
        error: Option<&'a str>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// A campaign's notices recorded as going out ("sending") and not yet answered: (id,
    /// holder, when its claim lapses). One whose claim lapsed was left by a sender that stopped.
    fn in_doubt<'a>(&'a self, campaign: &'a str) -> BoxFuture<'a, Result<Vec<(String, String, UnixTime)>>>;
    /// An incident's notices (no bodies).
    fn incident_notices<'a>(&'a self, incident: &'a str) -> BoxFuture<'a, Result<Vec<NoticeRow>>>;
    /// What a reference code (its SHA-256) stands for.
    fn notice_by_code<'a>(&'a self, hash: &'a [u8]) -> BoxFuture<'a, Result<Option<CodeRow>>>;
}

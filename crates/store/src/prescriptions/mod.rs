//! The repeat-prescriptions part of the storage contract: each patient's long-term list (names
//! sealed under the patient's records key) and their requests. Reads and changes take a grant
//! for the patient or the request; staff grants repeat the practice and a live enrolment in
//! their SQL. No medication is in two open requests at once: a unique index over open items.

use crate::{NewMail, Result};
use authz::{
    ApproveRepeatRequest, DeclineRepeatRequest, Grant, ListRepeatQueue, ManageRepeatList, ReadRepeatList,
    ReadRepeatRequest, RequestRepeat, ReviewRepeatRequest,
};
use domain::prescriptions::{Collection, RepeatStatus};
use domain::{AccountId, BoxFuture, PatientId, PracticeId, RecordId, RepeatMedicationId, RepeatRequestId, UnixTime};

/// What a conflict about a request's items says: one of them is in an open request already.
pub const ALREADY_REQUESTED: &str = "open request";
/// What a conflict about an item says: it is not on the list, or not for online requests.
pub const NOT_REQUESTABLE: &str = "item";
/// What a conflict about a request's state says: it has moved on.
pub const MOVED_ON: &str = "request state";

/// A medication on a patient's long-term list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatMedicationRow {
    /// Its id.
    pub id: RepeatMedicationId,
    /// The practice that keeps it.
    pub practice: PracticeId,
    /// The patient.
    pub patient: PatientId,
    /// The health-record item it came from, if any.
    pub record: Option<RecordId>,
    /// Its name and dose, sealed.
    pub name: String,
    /// Not for online requests ("ask at the practice").
    pub excluded: bool,
    /// When it was last issued (YYYY-MM-DD).
    pub last_issued: Option<String>,
    /// On the list (false: taken off).
    pub active: bool,
}

/// A request for repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatRequestRow {
    /// Its id.
    pub id: RepeatRequestId,
    /// The practice.
    pub practice: PracticeId,
    /// The patient.
    pub patient: PatientId,
    /// Its state.
    pub status: RepeatStatus,
    /// Where to collect.
    pub collection: Collection,
    /// The pharmacy, for one sent there.
    pub pharmacy: Option<String>,
    /// The patient's note, sealed.
    pub note: Option<String>,
    /// The fee shown when it was sent, cents.
    pub fee_cents: i32,
    /// When it is expected (YYYY-MM-DD).
    pub ready_by: String,
    /// For an approved one: `sent_to_pharmacy` or `ready_to_collect`.
    pub outcome: Option<String>,
    /// For a declined one: the practice's reason, sealed.
    pub decline_reason: Option<String>,
    /// Who took it into review.
    pub reviewed_by: Option<AccountId>,
    /// Who approved or declined it.
    pub decided_by: Option<AccountId>,
    /// The medications asked for.
    pub items: Vec<RepeatMedicationId>,
    /// Sent at.
    pub created_at: UnixTime,
    /// Last changed.
    pub updated_at: UnixTime,
    /// The patient's name (for the practice's queue).
    pub patient_name: String,
}

/// A request to make.
#[derive(Debug, Clone)]
pub struct NewRepeatRequest {
    /// Its id.
    pub id: RepeatRequestId,
    /// The practice it goes to.
    pub practice: PracticeId,
    /// Where to collect.
    pub collection: Collection,
    /// The pharmacy.
    pub pharmacy: Option<String>,
    /// The note, sealed.
    pub note: Option<String>,
    /// The fee shown.
    pub fee_cents: i32,
    /// When it is expected.
    pub ready_by: String,
    /// The form's one-time key: the same key twice is the same request.
    pub request_key: String,
    /// Who sent it.
    pub requested_by: Option<AccountId>,
    /// The medications.
    pub items: Vec<RepeatMedicationId>,
}

/// A grant that reaches a patient's list.
#[derive(Debug, Clone, Copy)]
pub enum ListGrant<'a> {
    /// Reading it.
    Read(&'a Grant<ReadRepeatList>),
    /// Keeping it.
    Manage(&'a Grant<ManageRepeatList>),
    /// Asking from it.
    Request(&'a Grant<RequestRepeat>),
}

impl ListGrant<'_> {
    /// The patient, and the practice a staff grant rests on.
    #[must_use]
    pub fn scope(&self) -> (Option<PatientId>, Option<PracticeId>) {
        match self {
            Self::Read(g) => (g.patient(), g.via_practice()),
            Self::Manage(g) => (g.patient(), g.via_practice()),
            Self::Request(g) => (g.patient(), g.via_practice()),
        }
    }

    /// Whether the grant was made to someone acting for the patient.
    #[must_use]
    pub const fn by_proxy(&self) -> bool {
        match self {
            Self::Read(g) => g.by_proxy(),
            Self::Manage(g) => g.by_proxy(),
            Self::Request(g) => g.by_proxy(),
        }
    }
}

/// A grant that reaches one request.
#[derive(Debug, Clone, Copy)]
pub enum RequestGrant<'a> {
    /// Reading it.
    Read(&'a Grant<ReadRepeatRequest>),
    /// Taking it into review.
    Review(&'a Grant<ReviewRepeatRequest>),
    /// Approving it.
    Approve(&'a Grant<ApproveRepeatRequest>),
    /// Declining it.
    Decline(&'a Grant<DeclineRepeatRequest>),
}

impl RequestGrant<'_> {
    /// The request, its patient, and the practice a staff grant rests on.
    #[must_use]
    pub fn scope(&self) -> (RepeatRequestId, Option<PatientId>, Option<PracticeId>) {
        match self {
            Self::Read(g) => (g.object(), g.patient(), g.via_practice()),
            Self::Review(g) => (g.object(), g.patient(), g.via_practice()),
            Self::Approve(g) => (g.object(), g.patient(), g.via_practice()),
            Self::Decline(g) => (g.object(), g.patient(), g.via_practice()),
        }
    }
}

/// A change of a request's state.
#[derive(Debug, Clone)]
pub struct RepeatDecision<'a> {
    /// The state it must be in now.
    pub from: &'a [RepeatStatus],
    /// The state it moves to.
    pub to: RepeatStatus,
    /// Who.
    pub by: Option<AccountId>,
    /// For an approval.
    pub outcome: Option<&'a str>,
    /// For a decline: the sealed reason.
    pub reason: Option<&'a str>,
    /// The day it was issued (an approval sets the items' last-issued date).
    pub day: &'a str,
}

/// Storage for repeat prescriptions.
pub trait PrescriptionStore: Send + Sync {
    /// The patient's long-term list (staff: their practice's part), active items first.
    fn repeat_list<'a>(&'a self, grant: ListGrant<'a>) -> BoxFuture<'a, Result<Vec<RepeatMedicationRow>>>;
    /// The list of a request's patient (to name the request's items).
    fn repeat_list_for_request<'a>(
        &'a self,
        grant: RequestGrant<'a>,
    ) -> BoxFuture<'a, Result<Vec<RepeatMedicationRow>>>;
    /// Adds the items the health record marks repeat-eligible that the list does not have yet
    /// (each by its record item; one already there is left as the practice set it).
    fn adopt_repeat_medications<'a>(
        &'a self,
        grant: ListGrant<'a>,
        rows: &'a [RepeatMedicationRow],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Adds an item to the list, or changes one (by id, or by the record item it came from).
    fn save_repeat_medication<'a>(
        &'a self,
        grant: &'a Grant<ManageRepeatList>,
        row: &'a RepeatMedicationRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<RepeatMedicationId>>;
    /// Sends a request with the mail announcing it, in one transaction. The same request key
    /// again returns the request it made (`false`: nothing changed); an item not on the
    /// patient's list at that practice, or excluded, is [`NOT_REQUESTABLE`]; an item already
    /// in an open request is [`ALREADY_REQUESTED`].
    fn request_repeat<'a>(
        &'a self,
        grant: &'a Grant<RequestRepeat>,
        new: &'a NewRepeatRequest,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(RepeatRequestRow, bool)>>;
    /// The patient's requests, newest first (staff: their practice's).
    fn repeat_requests<'a>(&'a self, grant: ListGrant<'a>) -> BoxFuture<'a, Result<Vec<RepeatRequestRow>>>;
    /// One request.
    fn repeat_request<'a>(&'a self, grant: RequestGrant<'a>) -> BoxFuture<'a, Result<RepeatRequestRow>>;
    /// The practice's open requests (oldest first), then those it closed in the last `days`.
    fn repeat_queue<'a>(
        &'a self,
        grant: &'a Grant<ListRepeatQueue>,
        closed_since: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<RepeatRequestRow>>>;
    /// Moves a request on, with the mail telling the patient, in one transaction; closing it
    /// frees its items for a new request, approving it sets their last-issued day.
    /// [`MOVED_ON`] if it is not in one of `decision.from`.
    fn decide_repeat<'a>(
        &'a self,
        grant: RequestGrant<'a>,
        decision: &'a RepeatDecision<'a>,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<RepeatRequestRow>>;
}

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    use crate::shared::sqlite as shared;
    include!("sql.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    use crate::shared::postgres as shared;
    include!("sql.rs");
}

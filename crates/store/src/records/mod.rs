//! The health-records part of the storage contract: the items a practice's system sends, each
//! sealed under its patient's records key; the records key itself; and each practice's release
//! rules. Reads and changes take a grant, and their SQL repeats the relationship it rests on.

use crate::{PatientKeyRow, RecordChange, RecordKeyRow, RecordRow, RecordRules, Result, StoredVersion};
use authz::{
    Grant, HideRecord, IngestRecords, ListHeldResults, ReadRecord, ReadRecords, ReleaseRecord, SetRecordRules,
    UnhideRecord,
};
use domain::{AccountId, BoxFuture, PatientId, PracticeId, UnixTime};

/// A grant that reaches a patient's record: whose records key may be read (reading their record,
/// sending items in), and whose practices' release rules apply.
#[derive(Debug, Clone, Copy)]
pub enum RecordKeyGrant<'a> {
    /// Reading the patient's record.
    Read(&'a Grant<ReadRecords>),
    /// Reading one item.
    ReadOne(&'a Grant<ReadRecord>),
    /// Sending items in.
    Ingest(&'a Grant<IngestRecords>),
    /// Releasing or hiding an item (to seal the note or the reason).
    Release(&'a Grant<ReleaseRecord>),
    /// Hiding an item.
    Hide(&'a Grant<HideRecord>),
    /// Listing the practice's held results: one of those patients.
    Held(&'a Grant<ListHeldResults>, PatientId),
    /// The patient's export.
    Export(&'a Grant<authz::ExportRecords>),
    /// The console's custody of the patient's keys (a rotation).
    Custody(&'a Grant<authz::KeyCustody>),
    /// Booking for the patient (to seal the reason).
    Book(&'a Grant<authz::BookAppointment>),
    /// The patient's appointments (to open the reasons).
    Appointments(&'a Grant<authz::ListAppointments>),
    /// One appointment.
    Appointment(&'a Grant<authz::ReadAppointment>),
    /// Cancelling an appointment (to seal the practice's reason).
    Cancel(&'a Grant<authz::CancelAppointment>),
    /// The patient's long-term list and requests.
    Repeats(&'a Grant<authz::ReadRepeatList>),
    /// Keeping the patient's long-term list.
    ManageRepeats(&'a Grant<authz::ManageRepeatList>),
    /// Asking for repeats (to seal the note).
    Request(&'a Grant<authz::RequestRepeat>),
    /// One request.
    RepeatRequest(&'a Grant<authz::ReadRepeatRequest>),
    /// Declining a request (to seal the reason).
    Decline(&'a Grant<authz::DeclineRepeatRequest>),
    /// The patient's conversations (to open their subjects).
    Threads(&'a Grant<authz::ListThreads>),
    /// Starting a conversation (to seal it).
    StartThread(&'a Grant<authz::StartThread>),
    /// Reading a conversation.
    Thread(&'a Grant<authz::ReadThread>),
    /// Writing in a conversation.
    Reply(&'a Grant<authz::ReplyThread>),
    /// The practice's inbox: one of those patients.
    Inbox(&'a Grant<authz::ReadPracticeInbox>, PatientId),
}

impl RecordKeyGrant<'_> {
    /// The patient whose key it is.
    #[must_use]
    pub fn patient(&self) -> Option<PatientId> {
        match self {
            Self::Read(g) => g.patient(),
            Self::ReadOne(g) => g.patient(),
            Self::Ingest(g) => g.patient(),
            Self::Release(g) => g.patient(),
            Self::Hide(g) => g.patient(),
            Self::Held(_, p) | Self::Inbox(_, p) => Some(*p),
            Self::Export(g) => g.patient(),
            Self::Custody(g) => g.patient(),
            Self::Book(g) => g.patient(),
            Self::Appointments(g) => g.patient(),
            Self::Appointment(g) => g.patient(),
            Self::Cancel(g) => g.patient(),
            Self::Repeats(g) => g.patient(),
            Self::ManageRepeats(g) => g.patient(),
            Self::Request(g) => g.patient(),
            Self::RepeatRequest(g) => g.patient(),
            Self::Decline(g) => g.patient(),
            Self::Threads(g) => g.patient(),
            Self::StartThread(g) => g.patient(),
            Self::Thread(g) => g.patient(),
            Self::Reply(g) => g.patient(),
        }
    }
}

/// A records key and the patient key it is wrapped under (`None` once that key is destroyed).
pub type RecordKeyWithPatientKey = (RecordKeyRow, Option<PatientKeyRow>);

/// An item released by its practice's days: its id, patient, practice, category and whether it
/// is hidden from the patient (by itself or with its report).
pub type AutoReleased = (domain::RecordId, PatientId, PracticeId, domain::RecordCategory, bool);

/// The summary's items, and how many items each practice has in each category.
pub type RecordSummaryRows = (Vec<RecordRow>, Vec<(PracticeId, domain::RecordCategory, i64)>);

/// What a listing of a patient's record includes.
#[derive(Debug, Clone, Copy)]
pub struct RecordFilter {
    /// One category, or all.
    pub category: Option<domain::RecordCategory>,
    /// At most this many items, newest first.
    pub limit: i64,
}

/// Storage for health records.
pub trait RecordStore: Send + Sync {
    /// A practice's release rules (the defaults if it set none).
    fn record_rules(&self, practice: PracticeId) -> BoxFuture<'_, Result<RecordRules>>;
    /// The release rules of every practice the patient is enrolled at (the defaults where a
    /// practice set none), in one read.
    fn patient_record_rules<'a>(
        &'a self,
        grant: RecordKeyGrant<'a>,
    ) -> BoxFuture<'a, Result<Vec<(PracticeId, RecordRules)>>>;
    /// Sets a practice's release rules.
    fn set_record_rules<'a>(
        &'a self,
        grant: &'a Grant<SetRecordRules>,
        rules: &'a RecordRules,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// The patient's records key and the patient key it is under, in one read.
    fn records_key<'a>(&'a self, grant: RecordKeyGrant<'a>) -> BoxFuture<'a, Result<Option<RecordKeyWithPatientKey>>>;
    /// Stores a patient's first records key (made on their first item, booking reason or
    /// request note); false if they have one already (keep theirs).
    fn insert_records_key<'a>(
        &'a self,
        grant: RecordKeyGrant<'a>,
        key: &'a RecordKeyRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// What the grant's practice already stored under these (type, source id) pairs, for any
    /// patient.
    fn stored_versions<'a>(
        &'a self,
        grant: &'a Grant<authz::SendRecords>,
        keys: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Vec<StoredVersion>>>;
    /// Applies an ingest's changes, each patient's under their grant, in one transaction: all or
    /// nothing. A `Put`
    /// whose stored version is no longer the one expected (a concurrent ingest) is a conflict.
    fn apply_records<'a>(
        &'a self,
        batches: &'a [(&'a Grant<IngestRecords>, Vec<RecordChange>)],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// The patient's record, newest first: for a patient, every item not removed (the use case
    /// applies the release rules and hidden marks); for staff, what their practice sent.
    fn patient_records<'a>(
        &'a self,
        grant: &'a Grant<ReadRecords>,
        filter: RecordFilter,
    ) -> BoxFuture<'a, Result<Vec<RecordRow>>>;
    /// What the summary of a patient's record needs, in two reads: the items it shows
    /// (allergies, conditions, medications and recalls, and the `results` newest results), and
    /// how many items each practice has in each category. For a patient, both count only what
    /// may reach them apart from the practices' category rules (which the use case applies):
    /// current, not hidden (nor in a hidden report), not held (or released by the practice's
    /// days); for staff, everything their practice sent.
    fn record_summary<'a>(
        &'a self,
        grant: &'a Grant<ReadRecords>,
        now: UnixTime,
        results: i64,
    ) -> BoxFuture<'a, Result<RecordSummaryRows>>;
    /// One item (the patient's, or for staff one their practice sent, patient still enrolled).
    fn record<'a>(&'a self, grant: &'a Grant<ReadRecord>) -> BoxFuture<'a, Result<RecordRow>>;
    /// The practice's results awaiting release (not removed), oldest first, at most `limit`.
    fn held_results<'a>(
        &'a self,
        grant: &'a Grant<ListHeldResults>,
        now: UnixTime,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<RecordRow>>>;
    /// Releases a held item (and, for a report, the results in it) with an optional sealed note;
    /// returns how many items were released (0: nothing was held).
    fn release_record<'a>(
        &'a self,
        grant: &'a Grant<ReleaseRecord>,
        by: AccountId,
        note: Option<&'a str>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<u64>>;
    /// Hides an item from the patient with a sealed reason (a report's results are hidden with
    /// it: reads give them the report's mark when they have none of their own).
    fn hide_record<'a>(
        &'a self,
        grant: &'a Grant<HideRecord>,
        by: AccountId,
        reason: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Items released by their practice's days, not removed, whose patient has not been told
    /// yet (at most `limit`): `(item, patient, practice, category)`, no content. For the job that
    /// tells patients; the console's (`authz::console::key_custody` is not needed: no content
    /// is read, and the job checks each practice's rules before a notice).
    fn auto_released_untold(&self, now: UnixTime, limit: i64) -> BoxFuture<'_, Result<Vec<AutoReleased>>>;
    /// Marks items as told (or as nothing to tell: hidden, or in a category kept back).
    fn mark_told<'a>(&'a self, items: &'a [domain::RecordId], now: UnixTime) -> BoxFuture<'a, Result<()>>;
    /// Shows an item hidden by itself again (a result hidden on its own stays hidden when its
    /// report is shown again).
    fn unhide_record<'a>(&'a self, grant: &'a Grant<UnhideRecord>, now: UnixTime) -> BoxFuture<'a, Result<()>>;
}

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    include!("sql.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    include!("sql.rs");
}

//! The messaging part of the storage contract: each practice's messaging set-up, conversations
//! between a patient and a practice, and their messages and internal notes (subjects and bodies
//! sealed under the patient's records key). Reads and writes take a grant for the patient, the
//! conversation or the practice; staff grants repeat the practice and a live enrolment in their
//! SQL, and starting a conversation repeats the patient's enrolment at that practice.

use crate::{NewMail, Result};
use authz::{
    Grant, ListThreads, ManageThread, ReadPracticeInbox, ReadThread, ReplyThread, SetUpMessaging, StartThread,
};
use domain::messages::{Team, ThreadStatus};
use domain::{AccountId, BoxFuture, DocumentId, MessageId, PatientId, PracticeId, ThreadId, UnixTime};

/// What a refusal to start a conversation says: the practice does not take messages online.
pub const MESSAGING_OFF: &str = "messaging off";
/// … or not addressed to that clinician.
pub const CLINICIAN_OFF: &str = "clinician off";

/// A practice's messaging set-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessagingSettings {
    /// Whether patients may write online.
    pub on: bool,
    /// Shown before sending ("not for urgent matters — call 111").
    pub after_hours: String,
    /// Shown before sending, if the practice charges for some answers (shown, not charged).
    pub fee_notice: String,
    /// The working days a reply is expected in.
    pub reply_days: i32,
    /// The clinicians who take messages addressed to them by name.
    pub clinicians: Vec<AccountId>,
}

/// One of the practice's clinicians, and whether they take messages by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagingClinician {
    /// Their account.
    pub account: AccountId,
    /// Their name.
    pub name: String,
    /// Whether they take messages addressed to them.
    pub on: bool,
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRow {
    /// Its id.
    pub id: ThreadId,
    /// The practice.
    pub practice: PracticeId,
    /// The practice's name.
    pub practice_name: String,
    /// The patient.
    pub patient: PatientId,
    /// The patient's name.
    pub patient_name: String,
    /// The team it is addressed to…
    pub team: Option<Team>,
    /// … or the clinician, and their name.
    pub clinician: Option<(AccountId, String)>,
    /// Its subject, sealed.
    pub subject: String,
    /// Open or closed.
    pub status: ThreadStatus,
    /// The member of staff it is assigned to, and their name.
    pub assigned_to: Option<(AccountId, String)>,
    /// Started at.
    pub created_at: UnixTime,
    /// The newest message's time.
    pub last_message_at: UnixTime,
    /// When the patient's side last read it.
    pub patient_read_at: Option<UnixTime>,
    /// When the practice's side last read it.
    pub practice_read_at: Option<UnixTime>,
}

/// A message (or an internal note).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    /// Its id.
    pub id: MessageId,
    /// Who wrote it (none: the practice's system).
    pub author: Option<AccountId>,
    /// Their name.
    pub author_name: String,
    /// Written by the practice's side.
    pub from_practice: bool,
    /// An internal note the patient never sees.
    pub internal: bool,
    /// The text, sealed.
    pub body: String,
    /// The health document attached, if any.
    pub document: Option<DocumentId>,
    /// When.
    pub created_at: UnixTime,
}

/// A message to add.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Its id.
    pub id: MessageId,
    /// Who writes it.
    pub author: Option<AccountId>,
    /// From the practice's side.
    pub from_practice: bool,
    /// An internal note.
    pub internal: bool,
    /// The text, sealed.
    pub body: String,
    /// An attached health document (stored already).
    pub document: Option<DocumentId>,
}

/// A conversation to start, with its first message.
#[derive(Debug, Clone)]
pub struct NewThread {
    /// Its id.
    pub id: ThreadId,
    /// The practice it is with.
    pub practice: PracticeId,
    /// To a team…
    pub team: Option<Team>,
    /// … or to a clinician.
    pub clinician: Option<AccountId>,
    /// The subject, sealed.
    pub subject: String,
    /// The form's key: the same form sent twice starts one conversation.
    pub request_key: String,
    /// The first message.
    pub first: NewMessage,
}

/// A change the practice makes to a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadChange {
    /// Assign it to a member of the practice's staff (or to nobody).
    Assign(Option<AccountId>),
    /// Open or close it.
    Status(ThreadStatus),
}

/// The grants that reach one conversation.
#[derive(Debug, Clone, Copy)]
pub enum ThreadGrant<'a> {
    /// Reading it.
    Read(&'a Grant<ReadThread>),
    /// Writing in it.
    Reply(&'a Grant<ReplyThread>),
    /// Managing it (staff).
    Manage(&'a Grant<ManageThread>),
}

impl ThreadGrant<'_> {
    /// The conversation, its patient, and the practice a staff grant rests on.
    #[must_use]
    pub fn scope(&self) -> (ThreadId, Option<PatientId>, Option<PracticeId>) {
        match self {
            Self::Read(g) => (g.object(), g.patient(), g.via_practice()),
            Self::Reply(g) => (g.object(), g.patient(), g.via_practice()),
            Self::Manage(g) => (g.object(), g.patient(), g.via_practice()),
        }
    }
}

/// The messaging part of the storage contract.
pub trait MessageStore: Send + Sync {
    /// The practice's set-up (messaging off when it has none).
    fn messaging_settings(&self, practice: PracticeId) -> BoxFuture<'_, Result<MessagingSettings>>;
    /// The practice's GPs and nurses, and whether each takes messages by name.
    fn messaging_clinicians(&self, practice: PracticeId) -> BoxFuture<'_, Result<Vec<MessagingClinician>>>;
    /// Saves the practice's set-up; named clinicians that are not its GPs or nurses are left out.
    fn set_messaging<'a>(
        &'a self,
        grant: &'a Grant<SetUpMessaging>,
        settings: &'a MessagingSettings,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Starts a conversation for the grant's patient with a practice they are enrolled at (else
    /// `NotFound`), which takes messages (else [`MESSAGING_OFF`]), addressed to a team or to a
    /// clinician who takes them (else [`CLINICIAN_OFF`]), with its mails, in one transaction.
    /// The same request key again returns the first conversation, `false`.
    fn start_thread<'a>(
        &'a self,
        grant: &'a Grant<StartThread>,
        new: &'a NewThread,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(ThreadRow, bool)>>;
    /// The patient's conversations, newest first.
    fn patient_threads<'a>(&'a self, grant: &'a Grant<ListThreads>) -> BoxFuture<'a, Result<Vec<ThreadRow>>>;
    /// One conversation and its messages, oldest first; internal notes only for the practice.
    fn thread<'a>(&'a self, grant: ThreadGrant<'a>) -> BoxFuture<'a, Result<(ThreadRow, Vec<MessageRow>)>>;
    /// Adds a message (or, for the practice, a note), with its mails, in one transaction: the
    /// writer's side has read it; a patient's message opens a closed conversation again.
    fn add_message<'a>(
        &'a self,
        grant: ThreadGrant<'a>,
        message: &'a NewMessage,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// The practice's conversations in one state, newest first, for patients still enrolled.
    fn practice_threads<'a>(
        &'a self,
        grant: &'a Grant<ReadPracticeInbox>,
        status: ThreadStatus,
    ) -> BoxFuture<'a, Result<Vec<ThreadRow>>>;
    /// Assigns, opens or closes a conversation. `NotFound` for an assignee who is not on the
    /// practice's staff.
    fn manage_thread<'a>(
        &'a self,
        grant: &'a Grant<ManageThread>,
        change: ThreadChange,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Marks the conversation read for the grant's side.
    fn mark_thread_read<'a>(&'a self, grant: &'a Grant<ReadThread>, now: UnixTime) -> BoxFuture<'a, Result<()>>;
}

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

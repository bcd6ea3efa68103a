//! The appointments part of the storage contract: each practice's book (clinicians' schedules,
//! appointment types, weekly templates, closures, the slots made from them) and the
//! appointments booked in it. Reads and changes of a practice's book take a grant for that
//! practice; a patient's appointments take a grant for that patient, and staff grants repeat
//! the practice and a live enrolment in their SQL. A slot is taken at most once: booking is one
//! conditional update of the slot in the transaction that inserts the appointment, with a
//! unique index behind it.

use crate::{NewMail, Result};
use authz::{
    BlockSlots, BookAppointment, CancelAppointment, Grant, ListAppointments, MarkAppointment, ReadAppointment, RunBook,
    SetUpBook, SyncAppointment, SyncBook,
};
use domain::appointments::{AppointmentStatus, ClinicianKind, Modality, SlotStatus};
use domain::{
    AccountId, AppointmentId, AppointmentTypeId, BoxFuture, PatientId, PracticeId, ScheduleId, SlotId, UnixTime,
};

/// What a conflict about a slot says: it is no longer free.
pub const SLOT_TAKEN: &str = "slot";
/// What a conflict about a patient's bookings says: they hold as many as the practice allows.
pub const TOO_MANY_BOOKINGS: &str = "future bookings";
/// What a conflict about an appointment's state says: it is not (or no longer) booked.
pub const NOT_BOOKED: &str = "appointment";

/// A practice's rules for online booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingRules {
    /// Patients may book online.
    pub booking_on: bool,
    /// How far ahead patients may book, days.
    pub window_days: i32,
    /// Patients may cancel online until this many minutes (of working days) before.
    pub cancel_cutoff_mins: i32,
    /// How many future bookings one patient may hold.
    pub max_future: i32,
    /// Whether the booking form asks for a reason.
    pub ask_reason: bool,
}

impl Default for BookingRules {
    fn default() -> Self {
        Self { booking_on: true, window_days: 28, cancel_cutoff_mins: 120, max_future: 2, ask_reason: false }
    }
}

/// A practice's rules for online repeat prescriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatRules {
    /// Patients may ask for repeats online.
    pub repeats_on: bool,
    /// The practice's fee per request, in cents (NZD).
    pub fee_cents: i32,
    /// Working days from request to ready.
    pub working_days: i32,
    /// The pharmacies patients may pick (they may also type one in).
    pub pharmacies: Vec<String>,
}

impl Default for RepeatRules {
    fn default() -> Self {
        Self { repeats_on: true, fee_cents: 0, working_days: 2, pharmacies: Vec::new() }
    }
}

/// A practice's switches and rules for booking and repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PracticeServices {
    /// Booking.
    pub booking: BookingRules,
    /// Repeats.
    pub repeats: RepeatRules,
}

/// A clinician's book at one location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    /// Its id.
    pub id: ScheduleId,
    /// The practice.
    pub practice: PracticeId,
    /// The clinician's name as patients read it.
    pub clinician: String,
    /// GP or nurse.
    pub kind: ClinicianKind,
    /// Where.
    pub location: String,
    /// Patients may book this clinician online.
    pub online: bool,
    /// In use (an inactive book offers nothing).
    pub active: bool,
    /// The practice system's id for it, when it came from there.
    pub source_id: Option<String>,
}

/// A kind of appointment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentTypeRow {
    /// Its id.
    pub id: AppointmentTypeId,
    /// The practice.
    pub practice: PracticeId,
    /// Its name ("Standard", "Long", "Phone").
    pub name: String,
    /// How long, minutes.
    pub minutes: i32,
    /// How it happens.
    pub modality: Modality,
    /// Patients may book it online.
    pub online: bool,
    /// In use.
    pub active: bool,
}

/// One line of a weekly template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    /// Its id.
    pub id: uuid::Uuid,
    /// The practice.
    pub practice: PracticeId,
    /// The book.
    pub schedule: ScheduleId,
    /// The type of its slots.
    pub type_id: AppointmentTypeId,
    /// 1 Monday … 7 Sunday.
    pub weekday: i32,
    /// From, minutes after local midnight.
    pub start_minute: i32,
    /// Until, minutes after local midnight.
    pub end_minute: i32,
}

/// Days the practice or one book is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureRow {
    /// Its id.
    pub id: uuid::Uuid,
    /// The practice.
    pub practice: PracticeId,
    /// One book, or the whole practice.
    pub schedule: Option<ScheduleId>,
    /// First day closed (YYYY-MM-DD).
    pub first_day: String,
    /// Last day closed.
    pub last_day: String,
    /// Why (the practice's words).
    pub reason: String,
}

/// One slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRow {
    /// Its id.
    pub id: SlotId,
    /// The practice.
    pub practice: PracticeId,
    /// The book.
    pub schedule: ScheduleId,
    /// Its type.
    pub type_id: AppointmentTypeId,
    /// Starts (Unix seconds).
    pub starts_at: UnixTime,
    /// Ends.
    pub ends_at: UnixTime,
    /// Free, booked, busy, blocked.
    pub status: SlotStatus,
    /// Made from a weekly template (made again when the template changes).
    pub from_template: bool,
    /// The practice system's id for it.
    pub source_id: Option<String>,
}

/// One appointment, with its patient's name and NHI (for the practice's day list and system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentRow {
    /// Its id.
    pub id: AppointmentId,
    /// The practice.
    pub practice: PracticeId,
    /// The patient.
    pub patient: PatientId,
    /// The slot it took.
    pub slot: SlotId,
    /// The book.
    pub schedule: ScheduleId,
    /// Its type.
    pub type_id: AppointmentTypeId,
    /// Starts.
    pub starts_at: UnixTime,
    /// Ends.
    pub ends_at: UnixTime,
    /// Its state.
    pub status: AppointmentStatus,
    /// The patient's reason, sealed.
    pub reason: Option<String>,
    /// Who booked it (`None`: the practice's system).
    pub booked_by: Option<AccountId>,
    /// Who cancelled it.
    pub cancelled_by: Option<AccountId>,
    /// The practice's reason for cancelling, sealed.
    pub cancel_reason: Option<String>,
    /// When it was cancelled.
    pub cancelled_at: Option<UnixTime>,
    /// The practice system's id for it.
    pub source_id: Option<String>,
    /// Booked at.
    pub created_at: UnixTime,
    /// Last changed.
    pub updated_at: UnixTime,
    /// The patient's name.
    pub patient_name: String,
    /// The patient's NHI.
    pub patient_nhi: String,
}

/// A booking to make.
#[derive(Debug, Clone)]
pub struct NewAppointment {
    /// Its id.
    pub id: AppointmentId,
    /// The slot.
    pub slot: SlotId,
    /// The reason, sealed.
    pub reason: Option<String>,
    /// Who books it.
    pub booked_by: Option<AccountId>,
    /// At most this many future bookings for the patient at the practice, this one included
    /// (`None`: no limit — the practice booking on their behalf).
    pub max_future: Option<i64>,
    /// The practice system's id, for one it wrote.
    pub source_id: Option<String>,
    /// Already reminded (booked for today or tomorrow: the confirmation is the reminder).
    pub reminded: bool,
}

/// What booking did.
#[derive(Debug, Clone)]
pub struct Booked {
    /// The appointment.
    pub appointment: AppointmentRow,
    /// False when the patient already held this slot (a repeated submission): nothing changed.
    pub fresh: bool,
}

/// A slot of the day list, with the appointment in it.
pub type DayLine = (SlotRow, Option<AppointmentRow>);

/// A grant that reaches a practice's slots, and (for a patient) the patient whose practice it
/// must be.
#[derive(Debug, Clone, Copy)]
pub enum SlotGrant<'a> {
    /// Booking for a patient at one of their practices.
    Book(&'a Grant<BookAppointment>, PracticeId),
    /// Booking for a patient at whichever of their practices the slot is at (staff: their own).
    BookAny(&'a Grant<BookAppointment>),
    /// Running the practice's day.
    Run(&'a Grant<RunBook>),
    /// Blocking slots.
    Block(&'a Grant<BlockSlots>),
    /// Setting up the book.
    SetUp(&'a Grant<SetUpBook>),
    /// The practice's system.
    Sync(&'a Grant<SyncBook>),
}

impl SlotGrant<'_> {
    /// The practice (nil: any the patient is enrolled at), and the patient who must be enrolled
    /// there (for a booking grant).
    #[must_use]
    pub fn scope(&self) -> (PracticeId, Option<PatientId>) {
        match self {
            Self::Book(g, practice) => (*practice, g.patient()),
            Self::BookAny(g) => (g.via_practice().unwrap_or(PracticeId::from_uuid(uuid::Uuid::nil())), g.patient()),
            Self::Run(g) => (g.object(), None),
            Self::Block(g) => (g.object(), None),
            Self::SetUp(g) => (g.object(), None),
            Self::Sync(g) => (g.object(), None),
        }
    }
}

/// A grant that books for a patient: the patient (or the practice for them), or the practice's
/// system.
#[derive(Debug, Clone, Copy)]
pub enum BookingGrant<'a> {
    /// Booked in the portal.
    Portal(&'a Grant<BookAppointment>),
    /// Written by the practice's system.
    Sync(&'a Grant<SyncAppointment>),
}

impl BookingGrant<'_> {
    /// The patient.
    #[must_use]
    pub fn patient(&self) -> Option<PatientId> {
        match self {
            Self::Portal(g) => g.patient(),
            Self::Sync(g) => g.patient(),
        }
    }
    /// The practice the grant rests on, for staff and the practice's system.
    #[must_use]
    pub fn via_practice(&self) -> Option<PracticeId> {
        match self {
            Self::Portal(g) => g.via_practice(),
            Self::Sync(g) => g.via_practice(),
        }
    }
}

/// A grant that reaches one appointment.
#[derive(Debug, Clone, Copy)]
pub enum AppointmentGrant<'a> {
    /// Reading it.
    Read(&'a Grant<ReadAppointment>),
    /// Cancelling it.
    Cancel(&'a Grant<CancelAppointment>),
    /// Marking it.
    Mark(&'a Grant<MarkAppointment>),
}

impl AppointmentGrant<'_> {
    /// The appointment, its patient, and the practice a staff grant rests on.
    #[must_use]
    pub fn scope(&self) -> (AppointmentId, Option<PatientId>, Option<PracticeId>) {
        match self {
            Self::Read(g) => (g.object(), g.patient(), g.via_practice()),
            Self::Cancel(g) => (g.object(), g.patient(), g.via_practice()),
            Self::Mark(g) => (g.object(), g.patient(), g.via_practice()),
        }
    }
}

/// Storage for appointments (the book they are in: [`crate::book::BookStore`]).
pub trait AppointmentStore: Send + Sync {
    /// Books a free slot of the practice for the grant's patient, with the confirmation mail, in
    /// one transaction. A slot this patient already holds is returned as it is (`fresh` false);
    /// a slot taken by anyone else is [`crate::StoreError::Conflict`] ([`SLOT_TAKEN`]), as is a
    /// patient at their limit ([`TOO_MANY_BOOKINGS`]).
    fn book<'a>(
        &'a self,
        grant: BookingGrant<'a>,
        practice: PracticeId,
        new: &'a NewAppointment,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Booked>>;
    /// The patient's appointments, newest first (staff: their practice's only).
    fn patient_appointments<'a>(
        &'a self,
        grant: &'a Grant<ListAppointments>,
    ) -> BoxFuture<'a, Result<Vec<AppointmentRow>>>;
    /// One appointment.
    fn appointment<'a>(&'a self, grant: AppointmentGrant<'a>) -> BoxFuture<'a, Result<AppointmentRow>>;
    /// Cancels a booked appointment (its slot is free again if it is still ahead), with the
    /// mail telling the patient; [`NOT_BOOKED`] if it is not booked.
    fn cancel_appointment<'a>(
        &'a self,
        grant: &'a Grant<CancelAppointment>,
        by: Option<AccountId>,
        reason: Option<&'a str>,
        mail: &'a [NewMail],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<AppointmentRow>>;
    /// Marks a booked (or already marked) appointment attended or not attended.
    fn mark_appointment<'a>(
        &'a self,
        grant: &'a Grant<MarkAppointment>,
        status: AppointmentStatus,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// One book's slots starting in `[from, to)` with the live appointment in each.
    fn day_list<'a>(
        &'a self,
        grant: &'a Grant<RunBook>,
        schedule: ScheduleId,
        from: UnixTime,
        to: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<DayLine>>>;
    /// Blocks a free slot, or frees a blocked one; [`SLOT_TAKEN`] otherwise.
    fn block_slot<'a>(
        &'a self,
        grant: &'a Grant<BlockSlots>,
        slot: SlotId,
        block: bool,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// The appointment the practice's system knows by this id, if any.
    fn appointment_by_source<'a>(
        &'a self,
        grant: &'a Grant<SyncBook>,
        source_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<AppointmentRow>>>;
    /// Sets an appointment's state from the practice's system (cancelling frees the slot).
    fn sync_appointment_status<'a>(
        &'a self,
        grant: &'a Grant<SyncBook>,
        id: AppointmentId,
        status: AppointmentStatus,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// The practice's appointments starting in `[from, to)`, by time (for its system).
    fn practice_appointments<'a>(
        &'a self,
        grant: &'a Grant<SyncBook>,
        from: UnixTime,
        to: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<AppointmentRow>>>;
    /// Booked appointments starting in `[from, to)` whose patient has not been reminded:
    /// `(appointment, patient)`. For the reminders job (no content is read).
    fn due_reminders(
        &self,
        from: UnixTime,
        to: UnixTime,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<(AppointmentId, PatientId, PracticeId)>>>;
    /// Marks appointments as reminded.
    fn mark_reminded<'a>(&'a self, ids: &'a [AppointmentId], now: UnixTime) -> BoxFuture<'a, Result<()>>;
}

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    use crate::book::sqlite as book;
    use crate::shared::sqlite as shared;
    include!("sql.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    use crate::book::postgres as book;
    use crate::shared::postgres as shared;
    include!("sql.rs");
}

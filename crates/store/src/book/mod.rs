//! A practice's book, as storage sees it: the practice's switches and rules for online booking
//! and repeats, its clinicians' books, appointment types, weekly templates and closures, and the
//! slots made from them or sent by its own system. Changes take a grant for the practice
//! (`SetUpBook`, `SetUpRepeats`, the practice system's `SyncBook`); reads of the set-up are the
//! practice's own configuration, shown to its patients. The row types are in
//! [`crate::appointments`], with the bookings made in the book.

use crate::Result;
use crate::appointments::{
    AppointmentTypeRow, BookingRules, ClosureRow, PracticeServices, RepeatRules, ScheduleRow, SlotGrant, SlotRow,
    TemplateRow,
};
use authz::{Grant, SetUpBook, SyncBook};
use domain::appointments::SlotStatus;
use domain::{AppointmentTypeId, BoxFuture, PracticeId, ScheduleId, SlotId, UnixTime};

/// Storage for practices' books.
pub trait BookStore: Send + Sync {
    /// A practice's switches and rules (the defaults where it set none).
    fn practice_services(&self, practice: PracticeId) -> BoxFuture<'_, Result<PracticeServices>>;
    /// Sets a practice's booking rules.
    fn set_booking_rules<'a>(
        &'a self,
        grant: &'a Grant<SetUpBook>,
        rules: &'a BookingRules,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Sets a practice's repeat-prescription rules.
    fn set_repeat_rules<'a>(
        &'a self,
        grant: &'a Grant<authz::SetUpRepeats>,
        rules: &'a RepeatRules,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// A practice's books (clinicians), by name.
    fn schedules(&self, practice: PracticeId) -> BoxFuture<'_, Result<Vec<ScheduleRow>>>;
    /// Adds or changes a book (by id, or by the practice system's id when it has one); returns
    /// its id.
    fn save_schedule<'a>(
        &'a self,
        grant: SlotGrant<'a>,
        row: &'a ScheduleRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<ScheduleId>>;
    /// A practice's appointment types, by name.
    fn appointment_types(&self, practice: PracticeId) -> BoxFuture<'_, Result<Vec<AppointmentTypeRow>>>;
    /// Adds or changes an appointment type (by id, or by name).
    fn save_appointment_type<'a>(
        &'a self,
        grant: SlotGrant<'a>,
        row: &'a AppointmentTypeRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<AppointmentTypeId>>;
    /// A practice's weekly templates.
    fn templates(&self, practice: PracticeId) -> BoxFuture<'_, Result<Vec<TemplateRow>>>;
    /// Adds a template line (its book and type must be the practice's).
    fn add_template<'a>(
        &'a self,
        grant: &'a Grant<SetUpBook>,
        row: &'a TemplateRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Removes a template line; false if there was none.
    fn remove_template<'a>(&'a self, grant: &'a Grant<SetUpBook>, id: uuid::Uuid) -> BoxFuture<'a, Result<bool>>;
    /// A practice's closures, by first day.
    fn closures(&self, practice: PracticeId) -> BoxFuture<'_, Result<Vec<ClosureRow>>>;
    /// Adds a closure.
    fn add_closure<'a>(
        &'a self,
        grant: &'a Grant<SetUpBook>,
        row: &'a ClosureRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Removes a closure; false if there was none.
    fn remove_closure<'a>(&'a self, grant: &'a Grant<SetUpBook>, id: uuid::Uuid) -> BoxFuture<'a, Result<bool>>;
    /// Makes the template slots between `from` and `to` exactly `wanted`: free template slots
    /// not wanted any more are removed (booked, blocked and the system's slots are kept), wanted
    /// ones not there yet are added. Returns (added, removed).
    fn sync_template_slots<'a>(
        &'a self,
        grant: &'a Grant<SetUpBook>,
        from: UnixTime,
        to: UnixTime,
        wanted: &'a [SlotRow],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<(u64, u64)>>;
    /// The practice's slots starting in `[from, to)`, by time: of one book or all, of one state
    /// or all.
    fn slots<'a>(
        &'a self,
        grant: SlotGrant<'a>,
        from: UnixTime,
        to: UnixTime,
        schedule: Option<ScheduleId>,
        status: Option<SlotStatus>,
    ) -> BoxFuture<'a, Result<Vec<SlotRow>>>;
    /// One slot of the practice (for [`SlotGrant::BookAny`], of any practice the patient is
    /// enrolled at).
    fn slot<'a>(&'a self, grant: SlotGrant<'a>, id: SlotId) -> BoxFuture<'a, Result<Option<SlotRow>>>;
    /// A slot from the practice's system, by its id there: added, or its time and state
    /// changed; free template slots it overlaps give way. [`SLOT_TAKEN`] when it would move a
    /// slot booked here or overlap another slot of the book. Returns the slot's id.
    fn sync_slot<'a>(
        &'a self,
        grant: &'a Grant<SyncBook>,
        row: &'a SlotRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<SlotId>>;
    /// The slot the practice's system knows by this id, if any.
    fn slot_by_source<'a>(
        &'a self,
        grant: &'a Grant<SyncBook>,
        source_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<SlotRow>>>;
    /// Every practice with at least one active book (for the job that adds each day's slots).
    fn practices_with_books(&self) -> BoxFuture<'_, Result<Vec<PracticeId>>>;
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

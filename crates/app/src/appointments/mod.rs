//! Appointments (issue 15): each practice's book — clinicians' weekly templates, appointment
//! types, closures and rules, set up by its admins — the slots made from it, patients booking
//! and cancelling, the practice running its day, and the practice's own system exchanging the
//! book as FHIR. A booking's reason and the practice's reason for cancelling are sealed under
//! the patient's records key; every read of a patient's appointments is an access event
//! naming them; every notice is an email that says only that there is news in the portal.

pub mod book;
pub mod fhir;
pub mod setup;

use crate::audit::Caller;
use crate::{App, AppError};
use crypto::fields::FieldKey;
use domain::appointments::{AppointmentStatus, Modality};
use domain::{AppointmentId, PatientId, PracticeId, ScheduleId, SlotId, UnixTime};
use store::appointments::{AppointmentRow, AppointmentTypeRow, ScheduleRow, SlotRow};

pub use book::{BookForm, BookPage, DayView, PracticeBook};
pub use setup::SetupView;
pub use store::appointments::{BookingRules, RepeatRules};

/// The appointments module's use cases: [`App::appointments`].
#[derive(Debug, Clone, Copy)]
pub struct Appointments<'a> {
    app: &'a App,
}

impl App {
    /// The appointments module: the practice's book, booking, cancelling, the day list.
    #[must_use]
    pub const fn appointments(&self) -> Appointments<'_> {
        Appointments { app: self }
    }
}

/// A slot as people read it: when, with whom, where, what kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotView {
    /// The slot.
    pub id: SlotId,
    /// Its practice.
    pub practice: PracticeId,
    /// Its book.
    pub schedule: ScheduleId,
    /// Starts.
    pub starts_at: UnixTime,
    /// Ends.
    pub ends_at: UnixTime,
    /// The clinician's name.
    pub clinician: String,
    /// GP or nurse.
    pub clinician_kind: String,
    /// Where.
    pub location: String,
    /// The type's name.
    pub type_name: String,
    /// How it happens.
    pub modality: Modality,
    /// Free, booked, busy, blocked.
    pub status: domain::appointments::SlotStatus,
}

/// An appointment as its patient (or the practice) reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentView {
    /// Its id.
    pub id: AppointmentId,
    /// The patient.
    pub patient: PatientId,
    /// The patient's name (for the practice).
    pub patient_name: String,
    /// When, with whom, where.
    pub slot: SlotView,
    /// Its state.
    pub status: AppointmentStatus,
    /// The patient's reason (opened), if they gave one.
    pub reason: Option<String>,
    /// The practice's reason for cancelling (opened), if it cancelled.
    pub cancel_reason: Option<String>,
    /// Cancelled by the practice rather than the patient.
    pub cancelled_by_practice: bool,
    /// The last moment the patient may cancel online.
    pub cutoff: UnixTime,
    /// The patient may cancel it online now.
    pub may_cancel: bool,
    /// Still ahead.
    pub upcoming: bool,
    /// Booked at.
    pub booked_at: UnixTime,
}

/// What a book and its types are called, for making views.
pub(crate) struct Names {
    schedules: Vec<ScheduleRow>,
    types: Vec<AppointmentTypeRow>,
}

impl Names {
    pub(crate) async fn of(app: &App, practice: PracticeId) -> Result<Self, AppError> {
        Ok(Self {
            schedules: app.store.schedules(practice).await?,
            types: app.store.appointment_types(practice).await?,
        })
    }

    pub(crate) fn schedule(&self, id: ScheduleId) -> Option<&ScheduleRow> {
        self.schedules.iter().find(|s| s.id == id)
    }

    pub(crate) fn kind(&self, id: domain::AppointmentTypeId) -> Option<&AppointmentTypeRow> {
        self.types.iter().find(|t| t.id == id)
    }

    pub(crate) fn slot(&self, s: &SlotRow) -> SlotView {
        let schedule = self.schedule(s.schedule);
        let kind = self.kind(s.type_id);
        SlotView {
            id: s.id,
            practice: s.practice,
            schedule: s.schedule,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            clinician: schedule.map_or_else(String::new, |c| c.clinician.clone()),
            clinician_kind: schedule.map_or("", |c| c.kind.label()).to_owned(),
            location: schedule.map_or_else(String::new, |c| c.location.clone()),
            type_name: kind.map_or_else(String::new, |t| t.name.clone()),
            modality: kind.map_or(Modality::InPerson, |t| t.modality),
            status: s.status,
        }
    }
}

/// The associated data a booking's note is sealed with.
fn note_context(id: AppointmentId, field: &str) -> String {
    format!("appointment/{id}/{field}")
}

pub(crate) fn seal(key: &FieldKey, id: AppointmentId, field: &str, text: &str) -> Result<String, AppError> {
    key.seal(&note_context(id, field), text).map_err(crate::documents::key_error)
}

pub(crate) fn open(key: Option<&FieldKey>, id: AppointmentId, field: &str, stored: Option<&str>) -> Option<String> {
    let (key, stored) = (key?, stored?);
    crypto::fields::is_sealed(stored).then(|| key.open(&note_context(id, field), stored).ok())?
}

impl App {
    /// Opens the patient's records key if they have one (for a list's sealed notes).
    pub(crate) async fn open_key_if(
        &self,
        caller: &Caller,
        patient: PatientId,
        needed: bool,
        grant: store::RecordKeyGrant<'_>,
    ) -> Result<Option<FieldKey>, AppError> {
        if needed { self.open_records_key(caller, patient, grant).await } else { Ok(None) }
    }

    /// An appointment as people read it.
    pub(crate) fn appointment_view(
        &self,
        row: &AppointmentRow,
        names: &Names,
        key: Option<&FieldKey>,
        cutoff_mins: i32,
    ) -> AppointmentView {
        let now = self.now();
        let slot = SlotRow {
            id: row.slot,
            practice: row.practice,
            schedule: row.schedule,
            type_id: row.type_id,
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            status: domain::appointments::SlotStatus::Booked,
            from_template: false,
            source_id: None,
        };
        let cutoff = domain::calendar::cutoff(row.starts_at, i64::from(cutoff_mins));
        AppointmentView {
            id: row.id,
            patient: row.patient,
            patient_name: row.patient_name.clone(),
            slot: names.slot(&slot),
            status: row.status,
            reason: open(key, row.id, "reason", row.reason.as_deref()),
            cancel_reason: open(key, row.id, "cancel_reason", row.cancel_reason.as_deref()),
            cancelled_by_practice: row.status == AppointmentStatus::Cancelled && row.cancel_reason.is_some(),
            cutoff,
            may_cancel: row.status == AppointmentStatus::Booked && now < cutoff && row.starts_at > now,
            upcoming: row.starts_at > now,
            booked_at: row.created_at,
        }
    }
}

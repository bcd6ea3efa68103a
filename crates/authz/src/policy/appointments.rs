//! Appointments: the practice's book (set up by its admins, run by reception and clinicians),
//! patients booking and cancelling their own appointments, and the practice's own system
//! exchanging the book as FHIR. Who may book or cancel for whom is decided here, on the
//! patient, so proxies (issue 16) are a change to these rules, not to the handlers.

use super::{
    own_practice, owning_patient, owning_practice_staff, patient_or_their_practice, practice_system,
    practice_system_for,
};
use crate::{Action, Denied, Grant, Policy, Principal, Relations, action, capabilities, decided_by};
use domain::{AppointmentId, PatientId, PracticeId};

action!(
    /// Set up the practice's book: clinicians, appointment types, weekly templates, closures,
    /// and the booking rules and switches.
    SetUpBook, PracticeId, "practice.book.set_up", Appointments, Schedule, Update
);
action!(
    /// Run the practice's day: the day list, booking on a patient's behalf.
    RunBook, PracticeId, "practice.book.run", Appointments, Schedule, Read
);
action!(
    /// Block a slot from booking (or open it again).
    BlockSlots, PracticeId, "practice.book.block", Appointments, Slot, Block
);
action!(
    /// Book an appointment for a patient (see the free slots offered to them).
    BookAppointment, PatientId, "patient.appointments.book", Appointments, Appointment, Book
);
action!(
    /// See a patient's appointments, upcoming and past.
    ListAppointments, PatientId, "patient.appointments.list", Appointments, PatientAppointments, List
);
action!(
    /// Read one appointment, with its reason.
    ReadAppointment, AppointmentId, "appointment.read", Appointments, Appointment, Read
);
action!(
    /// Cancel an appointment.
    CancelAppointment, AppointmentId, "appointment.cancel", Appointments, Appointment, Cancel
);
action!(
    /// Mark an appointment attended or not attended.
    MarkAppointment, AppointmentId, "appointment.mark", Appointments, Appointment, Update
);
action!(
    /// Exchange the practice's book as FHIR `Schedule`, `Slot` and `Appointment`, as its own
    /// system with the appointments scope.
    SyncBook, PracticeId, "practice.book.sync", Appointments, Schedule, Push
);
action!(
    /// Write one patient's appointment from the practice's own system.
    SyncAppointment, PatientId, "patient.appointments.sync", Appointments, Appointment, Push
);

impl Policy for SetUpBook {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, capabilities::MANAGE_PRACTICE).await
    }
}

impl Policy for RunBook {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, capabilities::RUN_BOOK).await
    }
}

impl Policy for BlockSlots {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, capabilities::RUN_BOOK).await
    }
}

/// The patient themself, or the book's staff at a practice they are enrolled at.
async fn patient_or_book_staff<A: Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Staff { role, .. } if !capabilities::may(*role, capabilities::RUN_BOOK) => Err(Denied::NotFound),
        _ => patient_or_their_practice(p, patient, rel).await,
    }
}

decided_by!(BookAppointment => patient_or_book_staff, ListAppointments => patient_or_book_staff);

/// The appointment's patient, or the book's staff of its practice while the patient is enrolled
/// there.
async fn appointment_party<A: Action<Object = AppointmentId>, R: Relations + ?Sized>(
    p: &Principal,
    id: AppointmentId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Patient { .. } | Principal::Proxy { .. } => {
            owning_patient(p, id, rel.appointment_owner(id).await?, rel).await
        }
        Principal::Staff { .. } => appointment_staff(p, id, rel).await,
        _ => Err(Denied::NotFound),
    }
}

/// The book's staff of the appointment's practice, the patient still enrolled there.
async fn appointment_staff<A: Action<Object = AppointmentId>, R: Relations + ?Sized>(
    p: &Principal,
    id: AppointmentId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    if !matches!(p, Principal::Staff { .. }) {
        return Err(Denied::NotFound);
    }
    owning_practice_staff(p, id, rel.appointment_owner(id).await?, capabilities::RUN_BOOK, rel).await
}

decided_by!(
    ReadAppointment => appointment_party,
    CancelAppointment => appointment_party,
    MarkAppointment => appointment_staff,
);

impl Policy for SyncBook {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        practice_system(p, practice, rel, |s| s.appointments).await
    }
}

impl Policy for SyncAppointment {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        practice_system_for(p, patient, rel, |s| s.appointments).await
    }
}

//! Booking: the free slots a patient may book, booking (by the patient, or by the practice for
//! them), their appointments, cancelling, and the practice's day list.

use super::{AppointmentView, Appointments, Names, SlotView, seal};
use crate::audit::Caller;
use crate::notify::{Notice, NoticeKind};
use crate::{AppError, Principal};
use authz::{
    BlockSlots, BookAppointment, CancelAppointment, ListAppointments, MarkAppointment, ReadAppointment, RunBook,
};
use domain::appointments::{AppointmentStatus, SlotStatus};
use domain::calendar::{day_start, holiday, local_day};
use domain::{AppointmentId, PatientId, PracticeId, ScheduleId, SlotId};
use jiff::civil::Date;
use store::appointments::{
    AppointmentGrant, BookingGrant, BookingRules, ClosureRow, NOT_BOOKED, NewAppointment, SLOT_TAKEN, SlotGrant,
    TOO_MANY_BOOKINGS,
};
use store::{KeyGrant, RecordKeyGrant, StoreError};

/// How many days of free slots one page shows.
const DAYS_PER_PAGE: i64 = 7;

/// One practice's part of the booking page.
#[derive(Debug, Clone)]
pub struct PracticeBook {
    /// The practice.
    pub practice: PracticeId,
    /// Its name.
    pub name: String,
    /// Its booking rules (`booking_on` false: the page says to phone).
    pub rules: BookingRules,
    /// Clinicians patients may book: (book, name, GP or nurse, location).
    pub clinicians: Vec<(ScheduleId, String, String, String)>,
    /// Types patients may book: (id, name, minutes).
    pub types: Vec<(domain::AppointmentTypeId, String, i32)>,
    /// The free slots that match the filter, by time.
    pub slots: Vec<SlotView>,
}

/// The booking page.
#[derive(Debug, Clone)]
pub struct BookPage {
    /// Each practice the patient is enrolled at.
    pub practices: Vec<PracticeBook>,
    /// The first day shown.
    pub from: Date,
    /// The day after the last day shown.
    pub to: Date,
    /// The patient's future bookings (for "you hold N of M").
    pub upcoming: usize,
}

/// What the booking page is filtered by.
#[derive(Debug, Clone, Copy, Default)]
pub struct BookFilter {
    /// One clinician.
    pub schedule: Option<ScheduleId>,
    /// One type.
    pub type_id: Option<domain::AppointmentTypeId>,
    /// From this day (today if none or in the past).
    pub from: Option<Date>,
}

/// A booking.
#[derive(Debug, Clone)]
pub struct BookForm {
    /// The slot.
    pub slot: SlotId,
    /// The reason (optional unless the practice asks for one).
    pub reason: String,
}

/// One clinician's day.
#[derive(Debug, Clone)]
pub struct DayView {
    /// The practice's books.
    pub schedules: Vec<(ScheduleId, String)>,
    /// The book shown.
    pub schedule: Option<ScheduleId>,
    /// The day.
    pub day: Date,
    /// The public holiday it is, if any.
    pub holiday: Option<&'static str>,
    /// Each slot and the appointment in it.
    pub lines: Vec<(SlotView, Option<AppointmentView>)>,
}

/// Whether a closure covers a day for a book.
pub(crate) fn closed(closures: &[ClosureRow], schedule: ScheduleId, day: Date) -> bool {
    let day = day.to_string();
    closures.iter().any(|c| {
        c.schedule.is_none_or(|s| s == schedule)
            && c.first_day.as_str() <= day.as_str()
            && day.as_str() <= c.last_day.as_str()
    })
}

/// What a patient booking online must keep to: the practice takes online bookings for this
/// clinician and type, within its window, with a reason if it asks for one.
fn online_rules(
    rules: &BookingRules,
    names: &Names,
    slot: &store::appointments::SlotRow,
    reason: &str,
    now: domain::UnixTime,
) -> Result<(), AppError> {
    if !rules.booking_on || !names.schedule(slot.schedule).is_some_and(|c| c.online && c.active) {
        return Err(AppError::Conflict(
            "This practice does not take online bookings for this clinician. Please phone the practice to book.".into(),
        ));
    }
    if !names.kind(slot.type_id).is_some_and(|t| t.online && t.active) {
        return Err(AppError::Conflict(
            "This kind of appointment cannot be booked online. Please phone the practice to book it.".into(),
        ));
    }
    if slot.starts_at > now + i64::from(rules.window_days) * 86_400 {
        return Err(AppError::Conflict(format!(
            "Your practice takes online bookings up to {} days ahead. Please choose an earlier time.",
            rules.window_days
        )));
    }
    if rules.ask_reason && reason.is_empty() {
        return Err(AppError::field("reason", "Your practice asks for a short reason for the appointment."));
    }
    Ok(())
}

/// Whether the caller may read clinical content of an appointment (its reason): the patient, or
/// a clinician.
fn clinical(caller: &Caller) -> bool {
    match &caller.principal {
        Principal::Staff { role, .. } => authz::capabilities::may(*role, authz::capabilities::READ_CLINICAL_CONTENT),
        _ => true,
    }
}

fn conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(SLOT_TAKEN) => {
            AppError::Conflict("Sorry, someone else has just booked that time. Please choose another time.".into())
        }
        StoreError::Conflict(TOO_MANY_BOOKINGS) => AppError::Conflict(
            "You already hold as many upcoming appointments as your practice allows online. Cancel one, or phone the \
             practice."
                .into(),
        ),
        StoreError::Conflict(NOT_BOOKED) => {
            AppError::Conflict("This appointment is not booked any more (it was cancelled or has happened).".into())
        }
        other => other.into(),
    }
}

impl Appointments<'_> {
    /// The free slots a patient may book at each of their practices, a week at a time.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient and the book's staff of their practice.
    pub async fn free_slots(
        &self,
        caller: &Caller,
        patient: PatientId,
        filter: BookFilter,
    ) -> Result<BookPage, AppError> {
        let app = self.app;
        // Offering times is not booking: the event is of the patient's appointments being read
        // (the page counts their upcoming ones); a refusal is recorded as a refused booking.
        let grant = app.decide::<BookAppointment>(caller, patient).await?;
        let list = app.authorize::<ListAppointments>(caller, patient).await?;
        let now = app.now();
        let today = local_day(now);
        let from = filter.from.filter(|d| *d > today).unwrap_or(today);
        let to = from.checked_add(jiff::Span::new().days(DAYS_PER_PAGE)).unwrap_or(from);
        let staff = grant.via_practice();
        let mut practices = Vec::new();
        for practice in app.store.patient_practices(patient).await.map_err(|e| AppError::Internal(e.to_string()))? {
            if staff.is_some_and(|p| p != practice) {
                continue;
            }
            let Some(row) = app.store.practice(practice).await? else { continue };
            let rules = app.store.practice_services(practice).await?.booking;
            let names = Names::of(app, practice).await?;
            let closures = app.store.closures(practice).await?;
            let horizon = now + i64::from(rules.window_days) * 86_400;
            let patient_may = |s: &store::appointments::SlotRow| {
                staff.is_some()
                    || (names.schedule(s.schedule).is_some_and(|c| c.online && c.active)
                        && names.kind(s.type_id).is_some_and(|t| t.online && t.active)
                        && s.starts_at <= horizon)
            };
            let slots = if rules.booking_on || staff.is_some() {
                app.store
                    .slots(
                        SlotGrant::Book(&grant, practice),
                        now.max(day_start(from)),
                        day_start(to),
                        filter.schedule,
                        Some(SlotStatus::Free),
                    )
                    .await?
                    .into_iter()
                    .filter(|s| patient_may(s) && !closed(&closures, s.schedule, local_day(s.starts_at)))
                    .filter(|s| filter.type_id.is_none_or(|t| t == s.type_id))
                    .map(|s| names.slot(&s))
                    .collect()
            } else {
                Vec::new()
            };
            practices.push(PracticeBook {
                practice,
                name: row.name,
                clinicians: names
                    .schedules
                    .iter()
                    .filter(|c| c.active && (c.online || staff.is_some()))
                    .map(|c| (c.id, c.clinician.clone(), c.kind.label().to_owned(), c.location.clone()))
                    .collect(),
                types: names
                    .types
                    .iter()
                    .filter(|t| t.active && (t.online || staff.is_some()))
                    .map(|t| (t.id, t.name.clone(), t.minutes))
                    .collect(),
                rules,
                slots,
            });
        }
        let upcoming = app
            .store
            .patient_appointments(&list)
            .await?
            .iter()
            .filter(|a| a.status == AppointmentStatus::Booked && a.starts_at > now)
            .count();
        Ok(BookPage { practices, from, to, upcoming })
    }

    /// Books a slot for a patient: the patient themself (within their practice's online rules)
    /// or the practice's staff for them. A repeated submission of the same booking books once
    /// and returns the same appointment.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for a slot not at one of the patient's practices (or anyone but
    /// the patient and the book's staff); [`AppError::Conflict`] for a slot taken, past, on a
    /// closed day, beyond the booking window, not bookable online, or a patient at their limit;
    /// [`AppError::Invalid`] for a reason too long or missing where the practice asks for one.
    pub async fn book(
        &self,
        caller: &Caller,
        patient: PatientId,
        form: &BookForm,
    ) -> Result<AppointmentView, AppError> {
        let app = self.app;
        let grant = app.decide::<BookAppointment>(caller, patient).await?;
        let now = app.now();
        let by_staff = grant.via_practice().is_some();
        // The slot, at one of the patient's practices (the staff's own, for staff).
        let found = app.store.slot(SlotGrant::BookAny(&grant), form.slot).await?;
        let Some(slot) = found else {
            app.audit(vec![app.event(
                caller,
                &crate::audit::Target::of(&grant).about(&form.slot),
                crate::audit::Outcome::NotFound,
            )])
            .await?;
            return Err(AppError::NotFound);
        };
        let rules = app.store.practice_services(slot.practice).await?.booking;
        let names = Names::of(app, slot.practice).await?;
        let reason = form.reason.trim();
        if reason.chars().count() > 500 {
            return Err(AppError::field("reason", "Keep the reason under 500 characters."));
        }
        if !by_staff {
            online_rules(&rules, &names, &slot, reason, now)?;
        }
        if slot.starts_at <= now {
            return Err(AppError::Conflict("That time has passed. Please choose another time.".into()));
        }
        let day = local_day(slot.starts_at);
        let closures = app.store.closures(slot.practice).await?;
        if closed(&closures, slot.schedule, day) || holiday(day).is_some() && slot.from_template {
            return Err(AppError::Conflict("The practice is closed that day. Please choose another day.".into()));
        }
        let id = AppointmentId::random();
        let sealed = if reason.is_empty() {
            None
        } else {
            let key = app
                .sealing_key(caller, RecordKeyGrant::Book(&grant), KeyGrant::Sealing(RecordKeyGrant::Book(&grant)))
                .await?;
            Some(seal(&key, id, "reason", reason)?)
        };
        let tomorrow = local_day(now).checked_add(jiff::Span::new().days(1)).unwrap_or(day);
        let new = NewAppointment {
            id,
            slot: slot.id,
            reason: sealed,
            booked_by: caller.principal.account(),
            max_future: (!by_staff).then_some(i64::from(rules.max_future)),
            source_id: None,
            reminded: day <= tomorrow,
        };
        let notice = Notice {
            kind: NoticeKind::Appointments,
            title: "An appointment was booked",
            link: Some(format!("/appointments/{}", new.id)),
            practice: Some(slot.practice),
        };
        let mail = app.news(patient, &notice).await?;
        let booked =
            app.store.book(BookingGrant::Portal(&grant), slot.practice, &new, &mail, now).await.map_err(conflict)?;
        // On the record once it is booked (a booking lost to a race is no booking of theirs).
        let target = crate::audit::Target::of(&grant).about(&booked.appointment.id);
        app.audit(vec![app.event(caller, &target, crate::audit::Outcome::Allowed)]).await?;
        if booked.fresh && mail.iter().any(|m| m.deliver) {
            app.mail_waker.notify_one();
        }
        let key = if booked.appointment.reason.is_some() && clinical(caller) {
            app.open_records_key(caller, patient, RecordKeyGrant::Book(&grant)).await?
        } else {
            None
        };
        Ok(app.appointment_view(&booked.appointment, &names, key.as_ref(), rules.cancel_cutoff_mins))
    }

    /// A patient's appointments, newest first (staff: their practice's).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient and the book's staff of their practice.
    pub async fn list(&self, caller: &Caller, patient: PatientId) -> Result<Vec<AppointmentView>, AppError> {
        let app = self.app;
        let grant = app.authorize::<ListAppointments>(caller, patient).await?;
        let rows = app.store.patient_appointments(&grant).await?;
        let needed = rows.iter().any(|r| r.reason.is_some() || r.cancel_reason.is_some()) && clinical(caller);
        let key = app.open_key_if(caller, patient, needed, RecordKeyGrant::Appointments(&grant)).await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut cache: Vec<(PracticeId, Names, i32)> = Vec::new();
        for row in &rows {
            if !cache.iter().any(|(p, ..)| *p == row.practice) {
                let cutoff = app.store.practice_services(row.practice).await?.booking.cancel_cutoff_mins;
                cache.push((row.practice, Names::of(app, row.practice).await?, cutoff));
            }
            if let Some((_, names, cutoff)) = cache.iter().find(|(p, ..)| *p == row.practice) {
                out.push(app.appointment_view(row, names, key.as_ref(), *cutoff));
            }
        }
        Ok(out)
    }

    /// One appointment, with its reason.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but its patient and the book's staff of its practice.
    pub async fn appointment(&self, caller: &Caller, id: AppointmentId) -> Result<AppointmentView, AppError> {
        let app = self.app;
        let grant = app.authorize::<ReadAppointment>(caller, id).await?;
        let row = app.store.appointment(AppointmentGrant::Read(&grant)).await?;
        // A booking's reason is clinical content: its patient and the practice's clinicians read
        // it; reception sees the booking without it.
        let needed = (row.reason.is_some() || row.cancel_reason.is_some()) && clinical(caller);
        let key = app.open_key_if(caller, row.patient, needed, RecordKeyGrant::Appointment(&grant)).await?;
        let names = Names::of(app, row.practice).await?;
        let cutoff = app.store.practice_services(row.practice).await?.booking.cancel_cutoff_mins;
        Ok(app.appointment_view(&row, &names, key.as_ref(), cutoff))
    }

    /// Cancels an appointment: the patient up to their practice's cut-off (counted in working
    /// days' time); the practice at any time, with a reason the patient reads. The slot is free
    /// again, and the patient is told there is news.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for someone else's appointment; [`AppError::Conflict`] after the
    /// cut-off or for one not booked; [`AppError::Invalid`] for the practice without a reason.
    pub async fn cancel(&self, caller: &Caller, id: AppointmentId, reason: &str) -> Result<(), AppError> {
        let app = self.app;
        let grant = app.decide::<CancelAppointment>(caller, id).await?;
        let row = app.store.appointment(AppointmentGrant::Cancel(&grant)).await?;
        let rules = app.store.practice_services(row.practice).await?.booking;
        let now = app.now();
        if row.status != AppointmentStatus::Booked || row.starts_at <= now {
            return Err(conflict(StoreError::Conflict(NOT_BOOKED)));
        }
        let by_practice = matches!(caller.principal, Principal::Staff { .. });
        let reason = reason.trim();
        let sealed = if by_practice {
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(AppError::field(
                    "reason",
                    "Say why the appointment is cancelled (at most 500 characters): the patient reads it.",
                ));
            }
            let key = app
                .sealing_key(caller, RecordKeyGrant::Cancel(&grant), KeyGrant::Sealing(RecordKeyGrant::Cancel(&grant)))
                .await?;
            Some(seal(&key, id, "cancel_reason", reason)?)
        } else {
            if now >= domain::calendar::cutoff(row.starts_at, i64::from(rules.cancel_cutoff_mins)) {
                return Err(AppError::Conflict(
                    "It is too close to the appointment to cancel online. Please phone the practice to cancel.".into(),
                ));
            }
            None
        };
        let notice = Notice {
            kind: NoticeKind::Appointments,
            title: "An appointment was cancelled",
            link: Some(format!("/appointments/{}", row.id)),
            practice: Some(row.practice),
        };
        let mail = app.news(row.patient, &notice).await?;
        app.store
            .cancel_appointment(&grant, caller.principal.account(), sealed.as_deref(), &mail, now)
            .await
            .map_err(conflict)?;
        app.audit(vec![app.event(caller, &crate::audit::Target::of(&grant), crate::audit::Outcome::Allowed)]).await?;
        if mail.iter().any(|m| m.deliver) {
            app.mail_waker.notify_one();
        }
        Ok(())
    }

    /// Marks an appointment attended, or not attended.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the book's staff of its practice;
    /// [`AppError::Conflict`] for a cancelled one or one that has not started yet.
    pub async fn mark(&self, caller: &Caller, id: AppointmentId, attended: Option<bool>) -> Result<(), AppError> {
        let grant = self.app.decide::<MarkAppointment>(caller, id).await?;
        let attended = attended.ok_or_else(|| AppError::field("attended", "Choose attended or did not attend."))?;
        let status = if attended { AppointmentStatus::Attended } else { AppointmentStatus::DidNotAttend };
        self.app.store.mark_appointment(&grant, status, self.app.now()).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                AppError::Conflict("Only an appointment that has started (and is not cancelled) can be marked.".into())
            }
            other => other.into(),
        })?;
        let t = crate::audit::Target::of(&grant);
        self.app.audit(vec![self.app.event(caller, &t, crate::audit::Outcome::Allowed)]).await
    }

    /// One clinician's day: every slot, and who is in it.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the practice's book staff.
    pub async fn day(
        &self,
        caller: &Caller,
        practice: PracticeId,
        schedule: Option<ScheduleId>,
        day: Date,
    ) -> Result<DayView, AppError> {
        let app = self.app;
        let grant = app.authorize::<RunBook>(caller, practice).await?;
        let names = Names::of(app, practice).await?;
        let schedules: Vec<(ScheduleId, String)> = names
            .schedules
            .iter()
            .filter(|s| s.active)
            .map(|s| (s.id, format!("{} ({}, {})", s.clinician, s.kind.label(), s.location)))
            .collect();
        let schedule = schedule
            .filter(|s| schedules.iter().any(|(id, _)| id == s))
            .or_else(|| schedules.first().map(|(id, _)| *id));
        let next = day.checked_add(jiff::Span::new().days(1)).unwrap_or(day);
        let cutoff = app.store.practice_services(practice).await?.booking.cancel_cutoff_mins;
        let lines = match schedule {
            Some(s) => app
                .store
                .day_list(&grant, s, day_start(day), day_start(next))
                .await?
                .iter()
                .map(|(slot, appt)| {
                    (names.slot(slot), appt.as_ref().map(|a| app.appointment_view(a, &names, None, cutoff)))
                })
                .collect(),
            None => Vec::new(),
        };
        // Each patient the list names is on the record, under their own name.
        let seen: Vec<_> = lines
            .iter()
            .filter_map(|(_, a): &(SlotView, Option<AppointmentView>)| a.as_ref())
            .map(|a| {
                let t = crate::audit::Target::of(&grant).with_patient(a.patient).about(&a.id);
                app.event(caller, &t, crate::audit::Outcome::Allowed)
            })
            .collect();
        if !seen.is_empty() {
            app.audit(seen).await?;
        }
        Ok(DayView { schedules, schedule, day, holiday: holiday(day), lines })
    }

    /// Blocks a free slot (or opens a blocked one again).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the practice's book staff (or a slot not the
    /// practice's); [`AppError::Invalid`] without a slot; [`AppError::Conflict`] for a slot
    /// that is booked or busy.
    pub async fn block(
        &self,
        caller: &Caller,
        practice: PracticeId,
        slot: Option<SlotId>,
        block: Option<bool>,
    ) -> Result<(), AppError> {
        let grant = self.app.authorize::<BlockSlots>(caller, practice).await?;
        let slot = slot.ok_or_else(|| AppError::field("slot", "Choose a slot."))?;
        let block = block.ok_or_else(|| AppError::field("block", "Choose to block the slot or open it."))?;
        self.app.store.block_slot(&grant, slot, block, self.app.now()).await.map_err(|e| match e {
            StoreError::Conflict(_) => AppError::Conflict(if block {
                "Only a free slot can be blocked: this one is booked, busy or blocked already.".into()
            } else {
                "This slot is not blocked.".into()
            }),
            other => other.into(),
        })
    }
}

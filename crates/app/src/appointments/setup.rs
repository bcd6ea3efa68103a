//! The practice's book, as its admins set it up: rules and switches, clinicians, appointment
//! types, weekly templates and closures; the slots made from them (each change makes the
//! booking window's slots again, and a job keeps the window filled day by day); and the
//! reminders job.

use super::Appointments;
use super::book::closed;
use crate::audit::Caller;
use crate::notify::{Notice, NoticeKind};
use crate::{App, AppError};
use authz::{Grant, SetUpBook};
use domain::appointments::{ClinicianKind, MINUTES, Modality, SlotStatus};
use domain::calendar::{day_start, holiday, local_day, local_moment};
use domain::{AppointmentTypeId, PracticeId, ScheduleId, SlotId};
use jiff::civil::Date;
use store::appointments::{AppointmentTypeRow, BookingRules, ClosureRow, ScheduleRow, SlotGrant, SlotRow, TemplateRow};

/// What the set-up page shows.
#[derive(Debug, Clone)]
pub struct SetupView {
    /// The rules.
    pub rules: BookingRules,
    /// The clinicians' books.
    pub schedules: Vec<ScheduleRow>,
    /// The types.
    pub types: Vec<AppointmentTypeRow>,
    /// The weekly templates.
    pub templates: Vec<TemplateRow>,
    /// The closures.
    pub closures: Vec<ClosureRow>,
    /// The next public holidays (the book is closed on them without a closure).
    pub holidays: Vec<(Date, &'static str)>,
}

/// A change to the book.
#[derive(Debug, Clone)]
pub enum SetupChange {
    /// The rules and the switch.
    Rules(BookingRules),
    /// A new clinician's book.
    AddClinician {
        /// Name.
        name: String,
        /// GP or nurse.
        kind: String,
        /// Where.
        location: String,
    },
    /// A clinician bookable online, or not (or no longer in use).
    Clinician {
        /// The book.
        id: ScheduleId,
        /// Bookable online.
        online: bool,
        /// In use.
        active: bool,
    },
    /// A new appointment type, or a change to one (by name).
    Type {
        /// Name.
        name: String,
        /// Minutes.
        minutes: i32,
        /// How.
        modality: String,
        /// Bookable online.
        online: bool,
    },
    /// A weekly template line.
    AddTemplate {
        /// The book.
        schedule: ScheduleId,
        /// The type.
        type_id: AppointmentTypeId,
        /// 1 Monday … 7 Sunday.
        weekday: i32,
        /// From ("09:00").
        start: String,
        /// Until ("12:00").
        end: String,
    },
    /// Removes a template line.
    RemoveTemplate(uuid::Uuid),
    /// A closure.
    AddClosure {
        /// One book, or the whole practice.
        schedule: Option<ScheduleId>,
        /// First day ("2027-01-25").
        first: String,
        /// Last day.
        last: String,
        /// Why.
        reason: String,
    },
    /// Removes a closure.
    RemoveClosure(uuid::Uuid),
}

fn minute_of(text: &str, field: &'static str) -> Result<i32, AppError> {
    let bad = || AppError::field(field, "Give a time as hh:mm, for example 09:00 or 13:30.");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn check_rules(rules: &BookingRules) -> Result<(), AppError> {
    if !(1..=180).contains(&rules.window_days) {
        return Err(AppError::field("window_days", "Give a booking window of 1 to 180 days."));
    }
    if !(0..=10_080).contains(&rules.cancel_cutoff_mins) {
        return Err(AppError::field("cancel_cutoff_hours", "Give a cut-off of 0 to 168 hours."));
    }
    if !(1..=20).contains(&rules.max_future) {
        return Err(AppError::field("max_future", "Give a number of bookings from 1 to 20."));
    }
    Ok(())
}

fn hhmm(m: i32) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

fn day_of(text: &str, field: &'static str) -> Result<Date, AppError> {
    text.trim().parse().map_err(|_| AppError::field(field, "Give a date as YYYY-MM-DD, for example 2027-01-25."))
}

fn text(value: &str, field: &'static str, what: &str, max: usize) -> Result<String, AppError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(AppError::field(field, format!("Give {what} (at most {max} characters).")));
    }
    Ok(v.to_owned())
}

impl Appointments<'_> {
    /// The practice's book as its admins set it up.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but its admins.
    pub async fn setup(&self, caller: &Caller, practice: PracticeId) -> Result<SetupView, AppError> {
        let app = self.app;
        let _grant = app.decide::<SetUpBook>(caller, practice).await?;
        let today = local_day(app.now());
        let mut holidays = domain::calendar::public_holidays(today.year());
        holidays.extend(domain::calendar::public_holidays(today.year() + 1));
        holidays.retain(|(d, _)| *d >= today);
        holidays.truncate(6);
        Ok(SetupView {
            rules: app.store.practice_services(practice).await?.booking,
            schedules: app.store.schedules(practice).await?,
            types: app.store.appointment_types(practice).await?,
            templates: app.store.templates(practice).await?,
            closures: app.store.closures(practice).await?,
            holidays,
        })
    }

    /// Changes the practice's book, then makes the booking window's slots again.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but its admins (or a book, type or line not the
    /// practice's); [`AppError::Invalid`] for a value out of range, naming the field.
    pub async fn change_setup(
        &self,
        caller: &Caller,
        practice: PracticeId,
        change: SetupChange,
    ) -> Result<(), AppError> {
        let app = self.app;
        let grant = app.authorize::<SetUpBook>(caller, practice).await?;
        let now = app.now();
        match change {
            SetupChange::Rules(rules) => {
                check_rules(&rules)?;
                app.store.set_booking_rules(&grant, &rules, now).await?;
            }
            SetupChange::AddClinician { name, kind, location } => {
                let row = ScheduleRow {
                    id: ScheduleId::random(),
                    practice,
                    clinician: text(&name, "name", "the clinician's name", 100)?,
                    kind: ClinicianKind::parse(&kind).ok_or_else(|| AppError::field("kind", "Choose GP or nurse."))?,
                    location: text(&location, "location", "where they see patients", 100)?,
                    online: true,
                    active: true,
                    source_id: None,
                };
                app.store.save_schedule(SlotGrant::SetUp(&grant), &row, now).await?;
            }
            SetupChange::Clinician { id, online, active } => {
                let mut row =
                    app.store.schedules(practice).await?.into_iter().find(|s| s.id == id).ok_or(AppError::NotFound)?;
                row.online = online;
                row.active = active;
                app.store.save_schedule(SlotGrant::SetUp(&grant), &row, now).await?;
            }
            SetupChange::Type { name, minutes, modality, online } => {
                if !MINUTES.contains(&minutes) {
                    return Err(AppError::field("minutes", "Give a length of 5 to 120 minutes."));
                }
                let row = AppointmentTypeRow {
                    id: AppointmentTypeId::random(),
                    practice,
                    name: text(&name, "type_name", "the type's name", 60)?,
                    minutes,
                    modality: Modality::parse(&modality)
                        .ok_or_else(|| AppError::field("modality", "Choose at the practice, phone or video."))?,
                    online,
                    active: true,
                };
                app.store.save_appointment_type(SlotGrant::SetUp(&grant), &row, now).await?;
            }
            SetupChange::AddTemplate { schedule, type_id, weekday, start, end } => {
                add_template(app, &grant, (schedule, type_id, weekday), &start, &end).await?;
            }
            SetupChange::RemoveTemplate(id) => {
                if !app.store.remove_template(&grant, id).await? {
                    return Err(AppError::NotFound);
                }
            }
            SetupChange::AddClosure { schedule, first, last, reason } => {
                let (f, l) = (day_of(&first, "first_day")?, day_of(&last, "last_day")?);
                if l < f {
                    return Err(AppError::field("last_day", "The last day must not be before the first."));
                }
                let row = ClosureRow {
                    id: uuid::Uuid::new_v4(),
                    practice,
                    schedule,
                    first_day: f.to_string(),
                    last_day: l.to_string(),
                    reason: text(&reason, "reason", "a reason (for example \"Auckland Anniversary Day\")", 100)?,
                };
                app.store.add_closure(&grant, &row, now).await?;
            }
            SetupChange::RemoveClosure(id) => {
                if !app.store.remove_closure(&grant, id).await? {
                    return Err(AppError::NotFound);
                }
            }
        }
        app.refresh_slots(&grant).await?;
        Ok(())
    }
}

/// A weekly template line: times that parse, end after start, and no overlap with the
/// clinician's other lines that day.
async fn add_template(
    app: &App,
    grant: &Grant<SetUpBook>,
    (schedule, type_id, weekday): (ScheduleId, AppointmentTypeId, i32),
    start: &str,
    end: &str,
) -> Result<(), AppError> {
    let (practice, now) = (grant.object(), app.now());
    let (start, end) = (minute_of(start, "start")?, minute_of(end, "end")?);
    if !(1..=7).contains(&weekday) {
        return Err(AppError::field("weekday", "Choose a day of the week."));
    }
    if end <= start {
        return Err(AppError::field("end", "The end must be after the start."));
    }
    let clash = app
        .store
        .templates(practice)
        .await?
        .into_iter()
        .find(|t| t.schedule == schedule && t.weekday == weekday && t.start_minute < end && start < t.end_minute);
    if let Some(t) = clash {
        return Err(AppError::field(
            "start",
            format!(
                "This overlaps the clinician's {}–{} on that day. Change or remove that one first.",
                hhmm(t.start_minute),
                hhmm(t.end_minute)
            ),
        ));
    }
    let row = TemplateRow {
        id: uuid::Uuid::new_v4(),
        practice,
        schedule,
        type_id,
        weekday,
        start_minute: start,
        end_minute: end,
    };
    app.store.add_template(grant, &row, now).await?;
    Ok(())
}

/// The slots a practice's templates make on the days from `first` up to (not including) `end`:
/// none on public holidays or closed days, none at a wall-clock time the clocks skip.
#[must_use]
pub fn template_slots(
    practice: PracticeId,
    schedules: &[ScheduleRow],
    types: &[AppointmentTypeRow],
    templates: &[TemplateRow],
    closures: &[ClosureRow],
    first: Date,
    end: Date,
) -> Vec<SlotRow> {
    let mut out = Vec::new();
    let mut day = first;
    while day < end {
        if holiday(day).is_none() {
            let weekday = i32::from(day.weekday().to_monday_one_offset());
            for t in templates.iter().filter(|t| t.weekday == weekday) {
                let live = schedules.iter().any(|s| s.id == t.schedule && s.active);
                let Some(kind) = types.iter().find(|k| k.id == t.type_id && k.active) else { continue };
                if !live || closed(closures, t.schedule, day) {
                    continue;
                }
                let mut m = t.start_minute;
                while m + kind.minutes <= t.end_minute {
                    if let Some(starts) = local_moment(day, m) {
                        let ends = starts + i64::from(kind.minutes) * 60;
                        out.push(SlotRow {
                            id: SlotId::random(),
                            practice,
                            schedule: t.schedule,
                            type_id: t.type_id,
                            starts_at: starts,
                            ends_at: ends,
                            status: SlotStatus::Free,
                            from_template: true,
                            source_id: None,
                        });
                    }
                    m += kind.minutes;
                }
            }
        }
        day = day.checked_add(jiff::Span::new().days(1)).unwrap_or(end);
    }
    out
}

impl App {
    /// Makes the practice's template slots for the booking window again (from now to the
    /// window's last day): new ones added, free ones no template makes any more removed.
    ///
    /// # Errors
    /// When storage fails.
    pub(crate) async fn refresh_slots(&self, grant: &Grant<SetUpBook>) -> Result<(u64, u64), AppError> {
        let practice = grant.object();
        let now = self.now();
        let rules = self.store.practice_services(practice).await?.booking;
        let first = local_day(now);
        let end = first.checked_add(jiff::Span::new().days(i64::from(rules.window_days) + 1)).unwrap_or(first);
        let wanted = template_slots(
            practice,
            &self.store.schedules(practice).await?,
            &self.store.appointment_types(practice).await?,
            &self.store.templates(practice).await?,
            &self.store.closures(practice).await?,
            first,
            end,
        );
        Ok(self.store.sync_template_slots(grant, now, day_start(end), &wanted, now).await?)
    }

    /// Keeps every practice's booking window filled (run by the jobs queue): returns the slots
    /// added.
    ///
    /// # Errors
    /// When storage fails.
    pub(crate) async fn refresh_all_slots(&self) -> Result<u64, AppError> {
        let mut added = 0;
        for practice in self.store.practices_with_books().await? {
            added += self.refresh_slots(&authz::console::set_up_book(practice)).await?.0;
        }
        Ok(added)
    }

    /// Reminds patients, the day before, of tomorrow's appointments: an email that there is
    /// news in the portal (the appointments page shows what). Returns how many were reminded.
    ///
    /// # Errors
    /// When storage fails.
    pub(crate) async fn send_reminders(&self) -> Result<usize, AppError> {
        let now = self.now();
        let tomorrow = local_day(now).checked_add(jiff::Span::new().days(1)).unwrap_or_else(|_| local_day(now));
        let after = tomorrow.checked_add(jiff::Span::new().days(1)).unwrap_or(tomorrow);
        let mut told = 0;
        loop {
            let due = self.store.due_reminders(day_start(tomorrow), day_start(after), 500).await?;
            if due.is_empty() {
                return Ok(told);
            }
            for (appointment, patient, practice) in &due {
                // A proxy hears of it only when their link is with the appointment's practice.
                let notice = Notice {
                    kind: NoticeKind::Appointments,
                    title: "A reminder: an appointment is coming up tomorrow",
                    link: Some(format!("/appointments/{appointment}")),
                    practice: Some(*practice),
                };
                let mail = self.news(*patient, &notice).await?;
                self.store.tell(&mail).await?;
                told += mail.iter().filter(|m| m.deliver).count();
            }
            let ids: Vec<_> = due.iter().map(|(a, ..)| *a).collect();
            self.store.mark_reminded(&ids, now).await?;
            self.mail_waker.notify_one();
        }
    }
}

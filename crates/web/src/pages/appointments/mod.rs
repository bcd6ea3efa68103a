//! Appointments: a patient's appointments and the booking page (free times by clinician, type
//! and week), one appointment (cancel before the cut-off, after it "phone the practice"); for
//! the practice, the day list per clinician (book for a patient, cancel with a reason, mark who
//! came, block a slot) and the book's set-up.

use super::Done;
use super::PageResult;
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, Ctx, PageId};
use crate::present::{Moment, moment};
use crate::views::{Nav, render};
use app::AppError;
use app::appointments::book::BookFilter;
use app::appointments::{AppointmentView, BookForm, SlotView};
use app::domain::{AppointmentId, PatientId, PracticeId, ScheduleId, SlotId};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

pub(crate) mod setup;

/// A slot as a page shows it.
#[derive(Debug, Clone)]
pub(crate) struct SlotLine {
    pub(crate) id: String,
    pub(crate) when: Moment,
    pub(crate) time: String,
    pub(crate) day: String,
    pub(crate) with: String,
    pub(crate) kind: String,
    pub(crate) status: String,
}

fn slot_line(s: &SlotView) -> SlotLine {
    let when = moment(s.starts_at);
    let local = app::domain::calendar::local_minute(s.starts_at);
    let (h, m) = (local / 60, local % 60);
    let time = format!("{}:{m:02} {}", if h % 12 == 0 { 12 } else { h % 12 }, if h < 12 { "am" } else { "pm" });
    let day = app::domain::calendar::local_day(s.starts_at).strftime("%A %-d %B").to_string();
    SlotLine {
        id: s.id.to_string(),
        when,
        time,
        day,
        with: format!("{} ({}), {}", s.clinician, s.clinician_kind, s.location),
        kind: format!("{} — {}", s.type_name, s.modality.label()),
        status: s.status.label().to_owned(),
    }
}

/// An appointment as a page shows it.
#[derive(Debug, Clone)]
pub(crate) struct AppointmentLine {
    pub(crate) id: String,
    pub(crate) slot: SlotLine,
    pub(crate) status: String,
    pub(crate) booked: bool,
    pub(crate) reason: Option<String>,
    pub(crate) cancel_reason: Option<String>,
    pub(crate) may_cancel: bool,
    pub(crate) cutoff: Moment,
    pub(crate) patient_name: String,
    pub(crate) patient_id: String,
}

fn appointment_line(a: &AppointmentView) -> AppointmentLine {
    AppointmentLine {
        id: a.id.to_string(),
        slot: slot_line(&a.slot),
        status: a.status.label().to_owned(),
        booked: a.status == app::domain::appointments::AppointmentStatus::Booked,
        reason: a.reason.clone(),
        cancel_reason: a.cancel_reason.clone(),
        may_cancel: a.may_cancel,
        cutoff: moment(a.cutoff),
        patient_name: a.patient_name.clone(),
        patient_id: a.patient.to_string(),
    }
}

fn notice(d: &Done) -> Option<&'static str> {
    Some(match d.done.as_deref()? {
        "booked" => "Your appointment is booked. We have also sent an email saying there is news in Tiaki.",
        "booked_for" => "The appointment is booked. The patient has been told there is news in Tiaki.",
        "cancelled" => "The appointment is cancelled, and the time is free for someone else.",
        "marked" => "Saved.",
        "blocked" => "The slot is blocked: patients cannot book it.",
        "opened" => "The slot is open for booking again.",
        _ => return None,
    })
}

#[derive(Template)]
#[template(path = "appointments.html")]
struct ListPage {
    nav: Option<Nav>,
    patient_id: String,
    own: bool,
    notice: Option<&'static str>,
    /// Today's and tomorrow's appointments: the reminder in the portal.
    soon: Vec<(&'static str, AppointmentLine)>,
    upcoming: Vec<AppointmentLine>,
    past: Vec<AppointmentLine>,
}

/// A patient's appointments, upcoming and past.
pub(crate) async fn list_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(patient): PageId<PatientId>,
    Query(done): Query<Done>,
) -> PageResult {
    let all = state.app.appointments().list(&ctx.caller_as(&who), patient).await.map_err(WebError::page)?;
    let (mut upcoming, past): (Vec<_>, Vec<_>) =
        all.iter().partition(|a| a.upcoming && a.status == app::domain::appointments::AppointmentStatus::Booked);
    upcoming.reverse();
    let today = app::domain::calendar::local_day(state.app.clock_now());
    let tomorrow = today.tomorrow().unwrap_or(today);
    let soon = upcoming
        .iter()
        .filter_map(|a| {
            let day = app::domain::calendar::local_day(a.slot.starts_at);
            let when = if day == today {
                "Today"
            } else if day == tomorrow {
                "Tomorrow"
            } else {
                return None;
            };
            Some((when, appointment_line(a)))
        })
        .collect();
    let page = ListPage {
        soon,
        nav: Some(Nav::new(&who, ctx.csrf())),
        patient_id: patient.to_string(),
        own: who.patient == Some(patient),
        notice: notice(&done),
        upcoming: upcoming.into_iter().map(appointment_line).collect(),
        past: past.into_iter().map(appointment_line).collect(),
    };
    Ok(render(&page))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct BookQuery {
    #[serde(default)]
    clinician: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    from: String,
}

/// One practice's part of the booking page.
struct PracticePart {
    name: String,
    on: bool,
    ask_reason: bool,
    window_days: i32,
    max_future: i32,
    clinicians: Vec<(String, String, bool)>,
    types: Vec<(String, String, bool)>,
    days: Vec<(String, Vec<SlotLine>)>,
}

#[derive(Template)]
#[template(path = "book.html")]
struct BookPageView {
    nav: Option<Nav>,
    csrf: String,
    patient_id: String,
    own: bool,
    error: Option<String>,
    practices: Vec<PracticePart>,
    from: String,
    earlier: Option<String>,
    later: String,
    upcoming: usize,
    clinician: String,
    kind: String,
}

async fn book_view(
    state: &WebState,
    ctx: &Ctx,
    who: &app::SignedIn,
    patient: PatientId,
    q: &BookQuery,
    error: Option<(StatusCode, String)>,
) -> PageResult {
    let filter =
        BookFilter { schedule: q.clinician.parse().ok(), type_id: q.kind.parse().ok(), from: q.from.parse().ok() };
    let book =
        state.app.appointments().free_slots(&ctx.caller_as(who), patient, filter).await.map_err(WebError::page)?;
    let today = app::domain::calendar::local_day(state.app.clock_now());
    let practices = book
        .practices
        .iter()
        .map(|p| {
            let mut days: Vec<(String, Vec<SlotLine>)> = Vec::new();
            for s in &p.slots {
                let line = slot_line(s);
                match days.last_mut() {
                    Some((d, v)) if *d == line.day => v.push(line),
                    _ => days.push((line.day.clone(), vec![line])),
                }
            }
            PracticePart {
                name: p.name.clone(),
                on: p.rules.booking_on,
                ask_reason: p.rules.ask_reason,
                window_days: p.rules.window_days,
                max_future: p.rules.max_future,
                clinicians: p
                    .clinicians
                    .iter()
                    .map(|(id, name, kind, place)| {
                        (id.to_string(), format!("{name} ({kind}), {place}"), filter.schedule == Some(*id))
                    })
                    .collect(),
                types: p
                    .types
                    .iter()
                    .map(|(id, name, mins)| {
                        (id.to_string(), format!("{name} ({mins} min)"), filter.type_id == Some(*id))
                    })
                    .collect(),
                days,
            }
        })
        .collect();
    let earlier = (book.from > today)
        .then(|| book.from.checked_sub(jiff::Span::new().days(7)).map_or(today, |d| d.max(today)).to_string());
    let page = BookPageView {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        patient_id: patient.to_string(),
        own: who.patient == Some(patient),
        error: error.as_ref().map(|(_, m)| m.clone()),
        practices,
        from: book.from.strftime("%A %-d %B").to_string(),
        earlier,
        later: book.to.to_string(),
        upcoming: book.upcoming,
        clinician: q.clinician.clone(),
        kind: q.kind.clone(),
    };
    Ok((error.map_or(StatusCode::OK, |(s, _)| s), render(&page)).into_response())
}

/// The booking page: free times, a week at a time.
pub(crate) async fn book_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(patient): PageId<PatientId>,
    Query(q): Query<BookQuery>,
) -> PageResult {
    book_view(&state, &ctx, &who, patient, &q, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct BookSubmit {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    slot: String,
    #[serde(default)]
    reason: String,
}

/// A problem the person can fix: shown on the page they came from, with its status.
pub(crate) fn problem(e: AppError) -> Result<(StatusCode, String), WebError> {
    match e {
        AppError::Invalid(f) => {
            Ok((StatusCode::UNPROCESSABLE_ENTITY, f.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" ")))
        }
        AppError::Conflict(m) => Ok((StatusCode::CONFLICT, m)),
        other => Err(WebError::page(other)),
    }
}

/// Books a slot (the patient, or the practice for them).
pub(crate) async fn book(
    State(state): State<WebState>,
    PageId(patient): PageId<PatientId>,
    CsrfForm(ctx, form): CsrfForm<BookSubmit>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let Ok(slot) = form.slot.parse::<SlotId>() else {
        // Ask the policy first: a stranger gets the same 404 whatever the form held.
        state.app.appointments().list(&ctx.caller_as(&who), patient).await.map_err(WebError::page)?;
        let e = AppError::field("slot", "Choose a time.");
        return book_view(&state, &ctx, &who, patient, &BookQuery::default(), Some(problem(e)?)).await;
    };
    match state.app.appointments().book(&ctx.caller_as(&who), patient, &BookForm { slot, reason: form.reason }).await {
        Ok(a) => {
            let done = if who.patient == Some(patient) { "booked" } else { "booked_for" };
            Ok(Redirect::to(&format!("/appointments/{}?done={done}", a.id)).into_response())
        }
        Err(e) => book_view(&state, &ctx, &who, patient, &BookQuery::default(), Some(problem(e)?)).await,
    }
}

#[derive(Template)]
#[template(path = "appointment.html")]
struct AppointmentPage {
    nav: Option<Nav>,
    csrf: String,
    a: AppointmentLine,
    own: bool,
    staff: bool,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn appointment_view(
    state: &WebState,
    ctx: &Ctx,
    who: &app::SignedIn,
    id: AppointmentId,
    done: &Done,
    error: Option<(StatusCode, String)>,
) -> PageResult {
    let a = state.app.appointments().appointment(&ctx.caller_as(who), id).await.map_err(WebError::page)?;
    let page = AppointmentPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        own: who.patient == Some(a.patient),
        staff: who.staff.is_some(),
        a: appointment_line(&a),
        notice: notice(done),
        error: error.as_ref().map(|(_, m)| m.clone()),
    };
    Ok((error.map_or(StatusCode::OK, |(s, _)| s), render(&page)).into_response())
}

/// One appointment.
pub(crate) async fn appointment_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(id): PageId<AppointmentId>,
    Query(done): Query<Done>,
) -> PageResult {
    appointment_view(&state, &ctx, &who, id, &done, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReasonForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    attended: String,
}

/// Cancels an appointment.
pub(crate) async fn cancel(
    State(state): State<WebState>,
    PageId(id): PageId<AppointmentId>,
    CsrfForm(ctx, form): CsrfForm<ReasonForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.appointments().cancel(&ctx.caller_as(&who), id, &form.reason).await {
        Ok(()) => Ok(Redirect::to(&format!("/appointments/{id}?done=cancelled")).into_response()),
        Err(e) => appointment_view(&state, &ctx, &who, id, &Done::default(), Some(problem(e)?)).await,
    }
}

/// Marks an appointment attended or not.
pub(crate) async fn mark(
    State(state): State<WebState>,
    PageId(id): PageId<AppointmentId>,
    CsrfForm(ctx, form): CsrfForm<ReasonForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.appointments().mark(&ctx.caller_as(&who), id, yes_no(&form.attended)).await {
        Ok(()) => Ok(Redirect::to(&format!("/appointments/{id}?done=marked")).into_response()),
        Err(e) => appointment_view(&state, &ctx, &who, id, &Done::default(), Some(problem(e)?)).await,
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DayQuery {
    #[serde(default)]
    clinician: String,
    #[serde(default)]
    day: String,
    #[serde(default)]
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "day.html")]
struct DayPage {
    nav: Option<Nav>,
    csrf: String,
    practice_id: String,
    notice: Option<&'static str>,
    error: Option<String>,
    schedules: Vec<(String, String, bool)>,
    clinician: String,
    day: String,
    day_label: String,
    holiday: Option<&'static str>,
    previous: String,
    next: String,
    lines: Vec<(SlotLine, Option<AppointmentLine>)>,
}

async fn day_view(
    state: &WebState,
    ctx: &Ctx,
    who: &app::SignedIn,
    practice: PracticeId,
    q: &DayQuery,
    error: Option<(StatusCode, String)>,
) -> PageResult {
    let today = app::domain::calendar::local_day(state.app.clock_now());
    let (day, error) = match q.day.trim() {
        "" => (today, error),
        text => match text.parse() {
            Ok(d) => (d, error),
            // Today's list, saying the day asked for was not a date.
            Err(_) => (
                today,
                error.or_else(|| {
                    Some((StatusCode::UNPROCESSABLE_ENTITY, "Give the day as a date, for example 2027-03-30.".into()))
                }),
            ),
        },
    };
    let view = state
        .app
        .appointments()
        .day(&ctx.caller_as(who), practice, q.clinician.parse::<ScheduleId>().ok(), day)
        .await
        .map_err(WebError::page)?;
    let clinician = view.schedule.map(|s| s.to_string()).unwrap_or_default();
    let page = DayPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        practice_id: practice.to_string(),
        notice: notice(&Done { done: q.done.clone() }),
        error: error.as_ref().map(|(_, m)| m.clone()),
        schedules: view
            .schedules
            .iter()
            .map(|(id, n)| (id.to_string(), n.clone(), view.schedule == Some(*id)))
            .collect(),
        clinician,
        day: view.day.to_string(),
        day_label: view.day.strftime("%A %-d %B %Y").to_string(),
        holiday: view.holiday,
        previous: view.day.yesterday().unwrap_or(view.day).to_string(),
        next: view.day.tomorrow().unwrap_or(view.day).to_string(),
        lines: view.lines.iter().map(|(s, a)| (slot_line(s), a.as_ref().map(appointment_line))).collect(),
    };
    Ok((error.map_or(StatusCode::OK, |(s, _)| s), render(&page)).into_response())
}

/// One clinician's day.
pub(crate) async fn day_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(practice): PageId<PracticeId>,
    Query(q): Query<DayQuery>,
) -> PageResult {
    day_view(&state, &ctx, &who, practice, &q, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct BlockForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    slot: String,
    #[serde(default)]
    block: String,
    #[serde(default)]
    clinician: String,
    #[serde(default)]
    day: String,
}

/// Blocks a slot, or opens it again.
pub(crate) async fn block(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<BlockForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let q = DayQuery { clinician: form.clinician.clone(), day: form.day.clone(), done: None };
    let block = yes_no(&form.block);
    let result = state.app.appointments().block(&ctx.caller_as(&who), practice, form.slot.parse().ok(), block).await;
    let block = block == Some(true);
    match result {
        Ok(()) => {
            let done = if block { "blocked" } else { "opened" };
            let (c, d) = (url(&form.clinician), url(&form.day));
            Ok(Redirect::to(&format!("/practices/{practice}/day?clinician={c}&day={d}&done={done}")).into_response())
        }
        Err(e) => day_view(&state, &ctx, &who, practice, &q, Some(problem(e)?)).await,
    }
}

/// A form's "yes" or "no"; anything else is no answer.
fn yes_no(v: &str) -> Option<bool> {
    match v {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// Keeps only what a query value may hold here (ids and dates), so nothing else reaches a URL.
fn url(v: &str) -> String {
    v.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(40).collect()
}

crate::extract::impl_has_csrf!(BookSubmit, ReasonForm, BlockForm);

//! The practice's book, as its admins set it up: the switch and rules, clinicians, appointment
//! types, weekly templates and closures, on one page with a small form for each.

use super::problem;
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, Ctx, PageId};
use crate::pages::PageResult;
use crate::views::{Nav, render};
use app::AppError;
use app::appointments::setup::SetupChange;
use app::domain::PracticeId;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

fn hhmm(m: i32) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

#[derive(Template)]
#[template(path = "book_setup.html")]
struct SetupPage {
    nav: Option<Nav>,
    csrf: String,
    practice_id: String,
    saved: bool,
    error: Option<String>,
    booking_on: bool,
    ask_reason: bool,
    window_days: i32,
    cutoff_hours: String,
    max_future: i32,
    /// (id, name, kind, location, online, active).
    clinicians: Vec<(String, String, String, String, bool, bool)>,
    /// (id, name, minutes, how, online).
    types: Vec<(String, String, i32, String, bool)>,
    /// (id, clinician, day, from, to, type).
    templates: Vec<(String, String, String, String, String, String)>,
    /// (id, days, who, reason).
    closures: Vec<(String, String, String, String)>,
    holidays: Vec<(String, String)>,
    weekdays: Vec<(i32, &'static str)>,
}

async fn setup_view(
    state: &WebState,
    ctx: &Ctx,
    who: &app::SignedIn,
    practice: PracticeId,
    saved: bool,
    error: Option<(StatusCode, String)>,
) -> PageResult {
    let v = state.app.appointments().setup(&ctx.caller_as(who), practice).await.map_err(WebError::page)?;
    let clinician = |id| v.schedules.iter().find(|s| s.id == id).map_or_else(String::new, |s| s.clinician.clone());
    let page = SetupPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        practice_id: practice.to_string(),
        saved,
        error: error.as_ref().map(|(_, m)| m.clone()),
        booking_on: v.rules.booking_on,
        ask_reason: v.rules.ask_reason,
        window_days: v.rules.window_days,
        cutoff_hours: format!("{}", f64::from(v.rules.cancel_cutoff_mins) / 60.0),
        max_future: v.rules.max_future,
        clinicians: v
            .schedules
            .iter()
            .map(|s| {
                (
                    s.id.to_string(),
                    s.clinician.clone(),
                    s.kind.label().to_owned(),
                    s.location.clone(),
                    s.online,
                    s.active,
                )
            })
            .collect(),
        types: v
            .types
            .iter()
            .map(|t| (t.id.to_string(), t.name.clone(), t.minutes, t.modality.label().to_owned(), t.online))
            .collect(),
        templates: v
            .templates
            .iter()
            .map(|t| {
                let kind = v.types.iter().find(|k| k.id == t.type_id).map_or_else(String::new, |k| k.name.clone());
                let day = usize::try_from(t.weekday - 1).ok().and_then(|i| WEEKDAYS.get(i)).copied().unwrap_or("");
                (
                    t.id.to_string(),
                    clinician(t.schedule),
                    day.to_owned(),
                    hhmm(t.start_minute),
                    hhmm(t.end_minute),
                    kind,
                )
            })
            .collect(),
        closures: v
            .closures
            .iter()
            .map(|c| {
                let days = if c.first_day == c.last_day {
                    c.first_day.clone()
                } else {
                    format!("{} to {}", c.first_day, c.last_day)
                };
                let whom = c.schedule.map_or_else(|| "The whole practice".to_owned(), clinician);
                (c.id.to_string(), days, whom, c.reason.clone())
            })
            .collect(),
        holidays: v.holidays.iter().map(|(d, n)| (d.strftime("%A %-d %B %Y").to_string(), (*n).to_owned())).collect(),
        weekdays: (1..=7).zip(WEEKDAYS).collect(),
    };
    Ok((error.map_or(StatusCode::OK, |(s, _)| s), render(&page)).into_response())
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Saved {
    #[serde(default)]
    done: Option<String>,
}

/// The set-up page.
pub(crate) async fn setup_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(practice): PageId<PracticeId>,
    Query(q): Query<Saved>,
) -> PageResult {
    setup_view(&state, &ctx, &who, practice, q.done.is_some(), None).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SetupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    booking_on: Option<String>,
    #[serde(default)]
    ask_reason: Option<String>,
    #[serde(default)]
    window_days: String,
    #[serde(default)]
    cancel_cutoff_hours: String,
    #[serde(default)]
    max_future: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    online: Option<String>,
    #[serde(default)]
    active: Option<String>,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    modality: String,
    #[serde(default)]
    clinician: String,
    #[serde(default)]
    type_id: String,
    #[serde(default)]
    weekday: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    end: String,
    #[serde(default)]
    first_day: String,
    #[serde(default)]
    last_day: String,
    #[serde(default)]
    reason: String,
}

fn number(v: &str, field: &'static str, what: &str) -> Result<i32, AppError> {
    v.trim().parse().map_err(|_| AppError::field(field, format!("Give {what} as a whole number.")))
}

fn change(f: &SetupForm) -> Result<SetupChange, AppError> {
    let id = || f.id.parse::<uuid::Uuid>().map_err(|_| AppError::NotFound);
    Ok(match f.action.as_str() {
        "rules" => {
            let hours: f64 = f
                .cancel_cutoff_hours
                .trim()
                .parse()
                .map_err(|_| AppError::field("cancel_cutoff_hours", "Give the cut-off in hours, for example 2."))?;
            if !(0.0..=168.0).contains(&hours) {
                return Err(AppError::field("cancel_cutoff_hours", "Give a cut-off of 0 to 168 hours."));
            }
            SetupChange::Rules(app::appointments::BookingRules {
                booking_on: f.booking_on.is_some(),
                window_days: number(&f.window_days, "window_days", "the booking window")?,
                // Whole minutes of a cut-off a person gave in hours.
                #[allow(clippy::cast_possible_truncation)]
                cancel_cutoff_mins: (hours * 60.0).round() as i32,
                max_future: number(&f.max_future, "max_future", "the number of bookings")?,
                ask_reason: f.ask_reason.is_some(),
            })
        }
        "add_clinician" => {
            SetupChange::AddClinician { name: f.name.clone(), kind: f.kind.clone(), location: f.location.clone() }
        }
        "clinician" => SetupChange::Clinician {
            id: f.id.parse().map_err(|_| AppError::NotFound)?,
            online: f.online.is_some(),
            active: f.active.is_some(),
        },
        "type" => SetupChange::Type {
            name: f.name.clone(),
            minutes: number(&f.minutes, "minutes", "the length in minutes")?,
            modality: f.modality.clone(),
            online: f.online.is_some(),
        },
        "add_template" => SetupChange::AddTemplate {
            schedule: f.clinician.parse().map_err(|_| AppError::field("clinician", "Choose a clinician."))?,
            type_id: f.type_id.parse().map_err(|_| AppError::field("type_id", "Choose an appointment type."))?,
            weekday: number(&f.weekday, "weekday", "the day")?,
            start: f.start.clone(),
            end: f.end.clone(),
        },
        "remove_template" => SetupChange::RemoveTemplate(id()?),
        "add_closure" => SetupChange::AddClosure {
            schedule: if f.clinician.is_empty() {
                None
            } else {
                Some(
                    f.clinician
                        .parse()
                        .map_err(|_| AppError::field("clinician", "Choose a clinician, or the whole practice."))?,
                )
            },
            first: f.first_day.clone(),
            last: if f.last_day.trim().is_empty() { f.first_day.clone() } else { f.last_day.clone() },
            reason: f.reason.clone(),
        },
        "remove_closure" => SetupChange::RemoveClosure(id()?),
        _ => return Err(AppError::field("action", "Choose what to change.")),
    })
}

/// Changes the book.
pub(crate) async fn change_setup(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<SetupForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    let result = match change(&form) {
        Ok(c) => state.app.appointments().change_setup(&caller, practice, c).await,
        Err(e) => {
            // The policy first: a stranger gets the same 404 whatever the form held.
            state.app.appointments().setup(&caller, practice).await.map_err(WebError::page)?;
            Err(e)
        }
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/practices/{practice}/book-setup?done=saved")).into_response()),
        Err(e) => setup_view(&state, &ctx, &who, practice, false, Some(problem(e)?)).await,
    }
}

crate::extract::impl_has_csrf!(SetupForm);

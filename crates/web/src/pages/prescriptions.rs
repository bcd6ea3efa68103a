//! Repeat prescriptions: the patient's long-term list and the request form (fee and ready-by
//! day shown before sending), one request with its status; for the practice, the queue, the
//! request's actions (nurses prepare, GPs approve or decline), keeping a patient's list, and
//! the practice's rules.

use super::Done;
use super::PageResult;
use super::appointments::problem;
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, Ctx, PageId};
use crate::present::{Moment, calendar_date, moment};
use crate::views::{Nav, render};
use app::AppError;
use app::appointments::RepeatRules;
use app::capabilities;
use app::domain::prescriptions::{Collection, RepeatStatus};
use app::domain::{PatientId, PracticeId, RepeatRequestId};
use app::prescriptions::{RequestForm, RequestView, dollars};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use std::collections::HashMap;

/// A request as a page shows it.
#[derive(Debug, Clone)]
pub(crate) struct RequestLine {
    id: String,
    patient_id: String,
    patient_name: String,
    status: String,
    status_code: &'static str,
    items: Vec<String>,
    count: usize,
    collect: String,
    note: Option<String>,
    fee: String,
    ready_by: String,
    outcome: Option<&'static str>,
    decline_reason: Option<String>,
    sent: Moment,
    updated: Moment,
    open: bool,
}

fn request_line(r: &RequestView) -> RequestLine {
    RequestLine {
        id: r.id.to_string(),
        patient_id: r.patient.to_string(),
        patient_name: r.patient_name.clone(),
        status: r.status.label().to_owned(),
        status_code: r.status.as_str(),
        count: r.item_count,
        items: r.items.clone(),
        collect: match (&r.collection, &r.pharmacy) {
            (Collection::Pharmacy, Some(p)) => format!("Sent to {p}"),
            _ => "Collect from the practice".into(),
        },
        note: r.note.clone(),
        fee: if r.fee_cents == 0 { "No fee".into() } else { dollars(r.fee_cents) },
        ready_by: calendar_date(&r.ready_by),
        outcome: match r.outcome.as_deref() {
            Some("sent_to_pharmacy") => Some("Sent to the pharmacy"),
            Some("ready_to_collect") => Some("Ready to collect from the practice"),
            _ => None,
        },
        decline_reason: r.decline_reason.clone(),
        sent: moment(r.created_at),
        updated: moment(r.updated_at),
        open: r.status.open(),
    }
}

fn notice(d: &Done) -> Option<&'static str> {
    Some(match d.done.as_deref()? {
        "requested" => "Your request is sent. We have also sent an email saying there is news in Tiaki.",
        "list" => "The long-term list is saved.",
        "review" => "The request is in review. The patient has been told there is news.",
        "approved" => "The request is approved. The patient has been told there is news.",
        "declined" => "The request is declined. The patient reads your reason in Tiaki.",
        "rules" => "Saved.",
        _ => return None,
    })
}

#[derive(Template)]
#[template(path = "repeats.html")]
struct RepeatsPageView {
    nav: Option<Nav>,
    csrf: String,
    patient_id: String,
    own: bool,
    staff: bool,
    notice: Option<&'static str>,
    error: Option<String>,
    practice: String,
    on: bool,
    fee: String,
    ready_by: String,
    working_days: i32,
    pharmacies: Vec<String>,
    /// (id, name, excluded, last issued, requested, from record, active).
    items: Vec<(String, String, bool, String, bool, bool, bool)>,
    requestable: usize,
    requests: Vec<RequestLine>,
    request_key: String,
}

async fn repeats_view(
    state: &WebState,
    ctx: &Ctx,
    who: &app::SignedIn,
    patient: PatientId,
    done: &Done,
    error: Option<(StatusCode, String)>,
) -> PageResult {
    let page = state.app.prescriptions().page(&ctx.caller_as(who), patient).await.map_err(WebError::page)?;
    let own = who.patient == Some(patient);
    let items: Vec<_> = page
        .items
        .iter()
        .filter(|m| m.active || !own)
        .map(|m| {
            (
                m.id.to_string(),
                m.name.clone(),
                m.excluded,
                m.last_issued.as_deref().map(calendar_date).unwrap_or_default(),
                m.requested,
                m.from_record,
                m.active,
            )
        })
        .collect();
    let view = RepeatsPageView {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        patient_id: patient.to_string(),
        own,
        staff: who.staff.is_some(),
        notice: notice(done),
        error: error.as_ref().map(|(_, m)| m.clone()),
        practice: page.practice.map(|(_, n)| n).unwrap_or_default(),
        on: page.rules.repeats_on,
        fee: if page.rules.fee_cents == 0 { "no fee".into() } else { dollars(page.rules.fee_cents) },
        ready_by: page.ready_by.strftime("%A %-d %B").to_string(),
        working_days: page.rules.working_days,
        pharmacies: page.rules.pharmacies.clone(),
        requestable: items.iter().filter(|i| i.6 && !i.2 && !i.4).count(),
        items,
        requests: page.requests.iter().map(request_line).collect(),
        request_key: uuid::Uuid::new_v4().to_string(),
    };
    Ok((error.map_or(StatusCode::OK, |(s, _)| s), render(&view)).into_response())
}

/// The patient's long-term list, requests, and the request form.
pub(crate) async fn repeats_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(patient): PageId<PatientId>,
    Query(done): Query<Done>,
) -> PageResult {
    repeats_view(&state, &ctx, &who, patient, &done, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct RequestSubmit {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    collection: String,
    #[serde(default)]
    pharmacy: String,
    #[serde(default)]
    other_pharmacy: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    request_key: String,
    /// `item-<id>` checkboxes.
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

/// Sends a request.
pub(crate) async fn request(
    State(state): State<WebState>,
    PageId(patient): PageId<PatientId>,
    CsrfForm(ctx, form): CsrfForm<RequestSubmit>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let picked: Vec<&str> = form.rest.keys().filter_map(|k| k.strip_prefix("item-")).collect();
    let mut items: Vec<_> = picked.iter().filter_map(|id| id.parse().ok()).collect();
    items.sort();
    items.dedup();
    if items.len() != picked.len() || picked.iter().any(|id| id.len() != 36) {
        // A box that names no medication: the form is not one this page made.
        items.clear();
        items.push(app::domain::RepeatMedicationId::random());
    }
    let f = RequestForm {
        items,
        collection: form.collection,
        pharmacy: form.pharmacy,
        other_pharmacy: form.other_pharmacy,
        note: form.note,
        request_key: form.request_key,
    };
    match state.app.prescriptions().request(&ctx.caller_as(&who), patient, &f).await {
        Ok(r) => Ok(Redirect::to(&format!("/repeats/{}?done=requested", r.id)).into_response()),
        Err(e) => repeats_view(&state, &ctx, &who, patient, &Done::default(), Some(problem(e)?)).await,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    excluded: Option<String>,
    #[serde(default)]
    active: Option<String>,
}

/// The practice keeps the patient's list.
pub(crate) async fn keep_list(
    State(state): State<WebState>,
    PageId(patient): PageId<PatientId>,
    CsrfForm(ctx, form): CsrfForm<ListForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let item =
        if form.id.is_empty() { None } else { Some(form.id.parse().map_err(|_| WebError::page(AppError::NotFound))?) };
    let active = item.is_none() || form.active.is_some();
    match state
        .app
        .prescriptions()
        .keep_list(&ctx.caller_as(&who), patient, item, &form.name, form.excluded.is_some(), active)
        .await
    {
        Ok(()) => Ok(Redirect::to(&format!("/patients/{patient}/repeats?done=list")).into_response()),
        Err(e) => repeats_view(&state, &ctx, &who, patient, &Done::default(), Some(problem(e)?)).await,
    }
}

#[derive(Template)]
#[template(path = "repeat_request.html")]
struct RequestPage {
    nav: Option<Nav>,
    csrf: String,
    r: RequestLine,
    own: bool,
    may_review: bool,
    may_decide: bool,
    book_link: Option<String>,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn request_view(
    state: &WebState,
    ctx: &Ctx,
    who: &app::SignedIn,
    id: RepeatRequestId,
    done: &Done,
    error: Option<(StatusCode, String)>,
) -> PageResult {
    let r = state.app.prescriptions().request_page(&ctx.caller_as(who), id).await.map_err(WebError::page)?;
    let role = who.staff.map(|(_, role)| role);
    let open = r.status.open();
    let page = RequestPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        own: who.patient == Some(r.patient),
        may_review: r.status == RepeatStatus::Requested
            && role.is_some_and(|ro| capabilities::may(ro, capabilities::PREPARE_REPEATS)),
        may_decide: open && role.is_some_and(|ro| capabilities::may(ro, capabilities::PRESCRIBE)),
        book_link: (r.status == RepeatStatus::Declined && who.patient == Some(r.patient))
            .then(|| format!("/patients/{}/appointments/book", r.patient)),
        r: request_line(&r),
        notice: notice(done),
        error: error.as_ref().map(|(_, m)| m.clone()),
    };
    Ok((error.map_or(StatusCode::OK, |(s, _)| s), render(&page)).into_response())
}

/// One request.
pub(crate) async fn request_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(id): PageId<RepeatRequestId>,
    Query(done): Query<Done>,
) -> PageResult {
    request_view(&state, &ctx, &who, id, &done, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
}

/// The practice moves a request on.
pub(crate) async fn decide(
    State(state): State<WebState>,
    PageId(id): PageId<RepeatRequestId>,
    CsrfForm(ctx, form): CsrfForm<DecideForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.prescriptions().decide(&ctx.caller_as(&who), id, &form.action, &form.reason).await {
        Ok(()) => {
            let done = match form.action.as_str() {
                "review" => "review",
                "decline" => "declined",
                _ => "approved",
            };
            Ok(Redirect::to(&format!("/repeats/{id}?done={done}")).into_response())
        }
        Err(e) => request_view(&state, &ctx, &who, id, &Done::default(), Some(problem(e)?)).await,
    }
}

#[derive(Template)]
#[template(path = "repeats_queue.html")]
struct QueuePage {
    nav: Option<Nav>,
    practice_id: String,
    open: Vec<RequestLine>,
    closed: Vec<RequestLine>,
}

/// The practice's queue.
pub(crate) async fn queue_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(practice): PageId<PracticeId>,
) -> PageResult {
    let all = state.app.prescriptions().queue(&ctx.caller_as(&who), practice).await.map_err(WebError::page)?;
    let (open, closed): (Vec<_>, Vec<_>) = all.iter().map(request_line).partition(|r| r.open);
    Ok(render(&QueuePage { nav: Some(Nav::new(&who, ctx.csrf())), practice_id: practice.to_string(), open, closed }))
}

#[derive(Template)]
#[template(path = "repeat_rules.html")]
struct RulesPage {
    nav: Option<Nav>,
    csrf: String,
    practice_id: String,
    saved: bool,
    error: Option<String>,
    on: bool,
    fee: String,
    working_days: String,
    pharmacies: String,
}

fn rules_page(
    who: &app::SignedIn,
    ctx: &Ctx,
    practice: PracticeId,
    r: &RulesForm,
    saved: bool,
    error: Option<String>,
) -> RulesPage {
    RulesPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        practice_id: practice.to_string(),
        saved,
        error,
        on: r.repeats_on.is_some(),
        fee: r.fee.clone(),
        working_days: r.working_days.clone(),
        pharmacies: r.pharmacies.clone(),
    }
}

/// The practice's rules for online repeats.
pub(crate) async fn rules(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(practice): PageId<PracticeId>,
    Query(done): Query<Done>,
) -> PageResult {
    let r = state.app.prescriptions().rules(&ctx.caller_as(&who), practice).await.map_err(WebError::page)?;
    let form = RulesForm {
        csrf: String::new(),
        repeats_on: r.repeats_on.then(String::new),
        fee: format!("{}.{:02}", r.fee_cents / 100, r.fee_cents % 100),
        working_days: r.working_days.to_string(),
        pharmacies: r.pharmacies.join("\n"),
    };
    Ok(render(&rules_page(&who, &ctx, practice, &form, done.done.is_some(), None)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RulesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    repeats_on: Option<String>,
    #[serde(default)]
    fee: String,
    #[serde(default)]
    working_days: String,
    #[serde(default)]
    pharmacies: String,
}

fn cents(text: &str) -> Result<i32, AppError> {
    let bad = || AppError::field("fee", "Give the fee in dollars, for example 15 or 15.50 (0 for none).");
    let t = text.trim().strip_prefix('$').unwrap_or(text.trim());
    if t.is_empty() || !t.chars().all(|c| c.is_ascii_digit() || c == '.') || t.matches('.').count() > 1 {
        return Err(bad());
    }
    let (d, c) = t.split_once('.').unwrap_or((t, "0"));
    let d: i32 = if d.is_empty() { 0 } else { d.parse().map_err(|_| bad())? };
    let c: i32 = match c.len() {
        1 => c.parse::<i32>().map_err(|_| bad())? * 10,
        2 => c.parse().map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    d.checked_mul(100).and_then(|d| d.checked_add(c)).ok_or_else(bad)
}

/// Sets the practice's rules for online repeats.
pub(crate) async fn set_rules(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<RulesForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    let parsed = cents(&form.fee).and_then(|fee_cents| {
        Ok(RepeatRules {
            repeats_on: form.repeats_on.is_some(),
            fee_cents,
            working_days: form.working_days.trim().parse().map_err(|_| {
                AppError::field("working_days", "Give the turnaround as a whole number of working days.")
            })?,
            pharmacies: form.pharmacies.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect(),
        })
    });
    let result = match parsed {
        Ok(r) => state.app.prescriptions().set_rules(&caller, practice, &r).await,
        Err(e) => {
            state.app.prescriptions().rules(&caller, practice).await.map_err(WebError::page)?;
            Err(e)
        }
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/practices/{practice}/repeat-rules?done=rules")).into_response()),
        Err(e) => {
            let (status, message) = problem(e)?;
            Ok((status, render(&rules_page(&who, &ctx, practice, &form, false, Some(message)))).into_response())
        }
    }
}

crate::extract::impl_has_csrf!(RequestSubmit, ListForm, DecideForm, RulesForm);

//! Health records: the patient's summary (allergies first), a page per category, a result with
//! its trend chart (server-drawn SVG with a data table, no script), the download of the whole
//! record; and for the practice, the patient's record with held and hidden items marked, the
//! queue of results awaiting release, and the release rules.

use super::Done;
use super::PageResult;
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, Ctx, PageId};
use crate::present::{date_of, moment};
use crate::views::{Nav, RecordItemPage, RecordLine, RecordRulesPage, RecordsPage, ResultsQueuePage, render};
use app::AppError;
use app::domain::{PatientId, PracticeId, RecordCategory, RecordId};
use app::records::fhir::Resource;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

mod present;
use present::{clinical_date, current, line, number, trend_svg};

fn notice(d: &Done) -> Option<&'static str> {
    Some(match d.done.as_deref()? {
        "released" => "The result is released. The patient has been told there is a new result, without what it is.",
        "hidden" => "The item is hidden from the patient.",
        "shown" => "The patient can see the item again.",
        "rules" => "The release rules are saved. They apply to every patient of the practice from now on.",
        _ => return None,
    })
}

/// The summary (allergies first), or one category.
async fn record_view(
    state: &WebState,
    ctx: &Ctx,
    who: &app::SignedIn,
    patient: PatientId,
    category: Option<RecordCategory>,
    done: &Done,
    error: Option<(StatusCode, String)>,
) -> PageResult {
    let records = state.app.records();
    let summary = match category {
        None => records.summary(&ctx.caller_as(who), patient).await,
        Some(c) => records.record(&ctx.caller_as(who), patient, Some(c)).await,
    }
    .map_err(WebError::page)?;
    let today = crate::present::iso_day(state.app.clock_now());
    let lines: Vec<(RecordCategory, RecordLine, bool)> =
        summary.items.iter().map(|i| (i.category, line(i, &today), current(&i.resource) && !i.removed)).collect();
    let pick = |c: RecordCategory, only_current: bool, at_most: usize| -> Vec<RecordLine> {
        lines
            .iter()
            .filter(|(k, _, cur)| *k == c && (!only_current || *cur))
            .take(at_most)
            .map(|(_, l, _)| l.clone())
            .collect()
    };
    let shown = |c: RecordCategory| summary.categories.contains(&c);
    let counts: Vec<(String, String, usize)> =
        summary.counts.iter().map(|(c, n)| (c.as_str().to_owned(), c.label().to_owned(), *n)).collect();
    let own = who.patient == Some(patient);
    let page = RecordsPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        patient_id: patient.to_string(),
        own,
        staff: summary.staff,
        notice: notice(done),
        error: error.as_ref().map(|(_, m)| m.clone()),
        category: category.map(|c| c.label().to_owned()),
        counts,
        allergies_shown: shown(RecordCategory::Allergies),
        allergies: pick(RecordCategory::Allergies, true, 100),
        conditions: pick(RecordCategory::Conditions, true, 50),
        medications: pick(RecordCategory::Medications, true, 50),
        results: pick(RecordCategory::Results, false, 5),
        recalls: pick(RecordCategory::Recalls, true, 20),
        items: if category.is_some() { lines.iter().map(|(_, l, _)| l.clone()).collect() } else { Vec::new() },
    };
    let status = error.map_or(StatusCode::OK, |(s, _)| s);
    Ok((status, render(&page)).into_response())
}

/// A patient's record: the summary.
pub(crate) async fn summary_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(patient): PageId<PatientId>,
    Query(done): Query<Done>,
) -> PageResult {
    record_view(&state, &ctx, &who, patient, None, &done, None).await
}

/// One category of a patient's record.
pub(crate) async fn category_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path((patient, category)): Path<(String, String)>,
    Query(done): Query<Done>,
) -> PageResult {
    let patient: PatientId = patient.parse().map_err(|_| WebError::page(AppError::NotFound))?;
    let category = RecordCategory::parse(&category).ok_or(WebError::page(AppError::NotFound))?;
    record_view(&state, &ctx, &who, patient, Some(category), &done, None).await
}

/// One item: a result with its chart, a report with its results.
pub(crate) async fn item_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(id): PageId<RecordId>,
    Query(done): Query<Done>,
) -> PageResult {
    let view = state.app.records().item(&ctx.caller_as(&who), id).await.map_err(WebError::page)?;
    let today = crate::present::iso_day(state.app.clock_now());
    let this = line(&view.item, &today);
    let (chart, unit, low, high) = match &view.item.resource {
        Resource::Observation(o) if view.trend.len() >= 2 => {
            let unit = o.value_quantity.as_ref().and_then(|q| q.unit.clone()).unwrap_or_default();
            let r = o.reference_range.first();
            let (low, high) = (r.and_then(|r| r.low.as_ref()?.value), r.and_then(|r| r.high.as_ref()?.value));
            (Some(trend_svg(&view.trend, low, high, &this.title, &unit)), unit, low, high)
        }
        _ => (None, String::new(), None, None),
    };
    let table = view
        .trend
        .iter()
        .map(|p| {
            let out = high.is_some_and(|h| p.value > h) || low.is_some_and(|l| p.value < l);
            (
                clinical_date(&p.date),
                format!("{} {unit}", number(p.value)).trim().to_owned(),
                if out { "Outside the usual range" } else { "" }.to_owned(),
                p.id == view.item.id,
            )
        })
        .collect();
    let page = RecordItemPage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        patient_id: view.item.patient.to_string(),
        staff: view.staff,
        notice: notice(&done),
        item: this,
        chart,
        table,
        members: view.members.iter().map(|m| line(m, &today)).collect(),
        may_release: view.staff && view.item.held && view.item.group.is_none() && !view.item.removed,
        updated: moment(view.item.updated_at),
    };
    Ok(render(&page))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReleaseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    back: String,
}

/// Where a release goes back to: the practice's queue it came from, or the item's page. Only
/// `/practices/<id>/results` is taken from the form; anything else is ignored.
fn back(form_back: &str, fallback: String) -> String {
    match form_back.strip_prefix("/practices/").and_then(|r| r.strip_suffix("/results")) {
        Some(id) if id.parse::<PracticeId>().is_ok() => form_back.to_owned(),
        _ => fallback,
    }
}

/// A clinician releases a held result, with an optional note to the patient.
pub(crate) async fn release(
    State(state): State<WebState>,
    PageId(id): PageId<RecordId>,
    CsrfForm(ctx, form): CsrfForm<ReleaseForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    state.app.records().release(&ctx.caller_as(&who), id, &form.note).await.map_err(WebError::page)?;
    let to = back(&form.back, format!("/records/{id}"));
    let sep = if to.contains('?') { '&' } else { '?' };
    Ok(Redirect::to(&format!("{to}{sep}done=released")).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct HideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    show: Option<String>,
}

/// A clinician hides an item from the patient (with a reason), or shows it again.
pub(crate) async fn hide(
    State(state): State<WebState>,
    PageId(id): PageId<RecordId>,
    CsrfForm(ctx, form): CsrfForm<HideForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let show = form.show.is_some();
    state.app.records().set_hidden(&ctx.caller_as(&who), id, !show, &form.reason).await.map_err(WebError::page)?;
    Ok(Redirect::to(&format!("/records/{id}?done={}", if show { "shown" } else { "hidden" })).into_response())
}

/// The practice's results awaiting release.
pub(crate) async fn queue_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(practice): PageId<PracticeId>,
    Query(done): Query<Done>,
) -> PageResult {
    let held = state.app.records().held_results(&ctx.caller_as(&who), practice).await.map_err(WebError::page)?;
    let today = crate::present::iso_day(state.app.clock_now());
    Ok(render(&ResultsQueuePage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        practice_id: practice.to_string(),
        notice: notice(&done),
        items: held
            .iter()
            .map(|(i, name, nhi)| {
                (line(i, &today), name.clone(), nhi.clone(), i.patient.to_string(), date_of(i.created_at))
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RulesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    auto_release_days: String,
    #[serde(default)]
    allergies: Option<String>,
    #[serde(default)]
    conditions: Option<String>,
    #[serde(default)]
    medications: Option<String>,
    #[serde(default)]
    immunisations: Option<String>,
    #[serde(default)]
    results: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    recalls: Option<String>,
}

fn rules_page(
    who: &app::SignedIn,
    ctx: &Ctx,
    practice: PracticeId,
    categories: &[RecordCategory],
    days: String,
    notice: Option<&'static str>,
    error: Option<String>,
) -> RecordRulesPage {
    RecordRulesPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        practice_id: practice.to_string(),
        notice,
        error,
        categories: RecordCategory::ALL
            .iter()
            .map(|c| (c.as_str().to_owned(), c.label().to_owned(), categories.contains(c)))
            .collect(),
        auto_release_days: days,
    }
}

/// The practice's release rules (its admins).
pub(crate) async fn rules(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(practice): PageId<PracticeId>,
    Query(done): Query<Done>,
) -> PageResult {
    let r = state.app.records().rules(&ctx.caller_as(&who), practice).await.map_err(WebError::page)?;
    let days = r.auto_release_days.map(|d| d.to_string()).unwrap_or_default();
    Ok(render(&rules_page(&who, &ctx, practice, &r.categories, days, notice(&done), None)))
}

/// Saves the practice's release rules.
pub(crate) async fn set_rules(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<RulesForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let picked: Vec<RecordCategory> = [
        (&form.allergies, RecordCategory::Allergies),
        (&form.conditions, RecordCategory::Conditions),
        (&form.medications, RecordCategory::Medications),
        (&form.immunisations, RecordCategory::Immunisations),
        (&form.results, RecordCategory::Results),
        (&form.notes, RecordCategory::Notes),
        (&form.recalls, RecordCategory::Recalls),
    ]
    .into_iter()
    .filter_map(|(on, c)| on.as_ref().map(|_| c))
    .collect();
    let days_text = form.auto_release_days.trim();
    let days = if days_text.is_empty() {
        Ok(None)
    } else {
        days_text.parse::<i64>().map(Some).map_err(|_| {
            AppError::field("auto_release_days", "Give a whole number of days from 0 to 365, or leave it empty.")
        })
    };
    let result = match days {
        Ok(d) => state.app.records().set_rules(&ctx.caller_as(&who), practice, &picked, d).await,
        Err(e) => {
            // Still ask the policy first: a stranger gets the same 404 as for a good form.
            state.app.records().rules(&ctx.caller_as(&who), practice).await.map_err(WebError::page)?;
            Err(e)
        }
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/practices/{practice}/record-rules?done=rules")).into_response()),
        Err(AppError::Invalid(f)) => {
            let message = f.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" ");
            let page = rules_page(&who, &ctx, practice, &picked, days_text.to_owned(), None, Some(message));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExportForm {
    #[serde(default)]
    csrf: String,
    /// A code from the authenticator app, to confirm it's them (when the account has one).
    #[serde(default)]
    code: String,
}

/// The patient downloads their whole record as one zip.
pub(crate) async fn export(
    State(state): State<WebState>,
    PageId(patient): PageId<PatientId>,
    CsrfForm(ctx, form): CsrfForm<ExportForm>,
) -> PageResult {
    let mut who = ctx.require_signed_in()?;
    let mut ctx = ctx;
    let mut new_token = None;
    if !form.code.trim().is_empty() && who.patient == Some(patient) {
        match state.app.identity().confirm_with_code(&ctx.caller_as(&who), &who, &form.code).await {
            Ok(token) => {
                who.mfa_at = Some(state.app.clock_now());
                ctx = ctx.rebound(&state.app, &token);
                new_token = Some(token);
            }
            Err(AppError::Invalid(f)) => {
                let m = f.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" ");
                return record_view(
                    &state,
                    &ctx,
                    &who,
                    patient,
                    None,
                    &Done::default(),
                    Some((StatusCode::UNPROCESSABLE_ENTITY, m)),
                )
                .await;
            }
            Err(e) => return Err(WebError::page(e)),
        }
    }
    match state.app.records().export(&ctx.caller_as(&who), patient, &who, state.app.clone()).await {
        Ok(e) => {
            let mut r = Response::new(Body::from_stream(e.body));
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/zip"));
            h.insert(header::CONTENT_DISPOSITION, crate::pages::documents::content_disposition(&e.filename));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
            Ok(match new_token {
                Some(t) => (ctx.with_session(t), r).into_response(),
                None => r,
            })
        }
        Err(AppError::Conflict(m)) => {
            record_view(&state, &ctx, &who, patient, None, &Done::default(), Some((StatusCode::FORBIDDEN, m))).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_goes_back_only_to_a_practice_queue_or_the_item() {
        let item = "/records/x".to_owned();
        let queue = format!("/practices/{}/results", PracticeId::random());
        assert_eq!(back(&queue, item.clone()), queue);
        for bad in ["//evil.example", "/\t/evil.example", "https://evil.example/", "/practices/x/results", "/signout"] {
            assert_eq!(back(bad, item.clone()), item, "{bad}");
        }
    }
}

crate::extract::impl_has_csrf!(ReleaseForm, HideForm, RulesForm, ExportForm);

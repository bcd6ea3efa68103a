//! The incident console (operators, who lead incidents): declare an incident with its
//! indicators (or from an alert), see each revision's scope and what moved between the last
//! two, revise, remediate, tell people (campaigns with their progress and ETA), and the reports
//! for each controlling organisation and for the regulator.

use super::Done;
use super::PageResult;
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, Ctx};
use crate::present::{Moment, moment};
use crate::views::{ControllerReportPage, IncidentPage, IncidentsPage, Nav, RegulatorReportPage, render};
use app::domain::incidents::{Indicators, Window};
use app::incidents::{Declaration, Detail, Lead, Remedy, Set};
use app::{AppError, FieldError, SignedIn};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

/// The indicators form (one value a line; one time window).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct IndicatorForm {
    #[serde(default)]
    pub(crate) accounts: String,
    #[serde(default)]
    pub(crate) sessions: String,
    #[serde(default)]
    pub(crate) clients: String,
    #[serde(default)]
    pub(crate) ips: String,
    #[serde(default)]
    pub(crate) user_agents: String,
    #[serde(default)]
    pub(crate) from: String,
    #[serde(default)]
    pub(crate) to: String,
    #[serde(default)]
    pub(crate) modules: String,
}

fn lines(s: &str) -> Vec<String> {
    s.split(['\n', ',']).map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// A New Zealand local time from a `datetime-local` field (`2026-11-27T14:05`), as Unix seconds.
fn local_time(field: &'static str, text: &str) -> Result<Option<i64>, AppError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let bad = || AppError::field(field, "Give a date and time like 2026-11-27 14:05 (New Zealand time).");
    let civil: jiff::civil::DateTime = text.trim().replace(' ', "T").parse().map_err(|_| bad())?;
    let zoned = civil.to_zoned(jiff::tz::TimeZone::get("Pacific/Auckland").map_err(|_| bad())?).map_err(|_| bad())?;
    Ok(Some(zoned.timestamp().as_second()))
}

fn local_input(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .ok()
        .and_then(|t| jiff::tz::TimeZone::get("Pacific/Auckland").ok().map(|z| t.to_zoned(z)))
        .map(|z| z.strftime("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

impl IndicatorForm {
    fn indicators(&self) -> Result<Indicators, AppError> {
        let mut windows = Vec::new();
        match (local_time("from", &self.from)?, local_time("to", &self.to)?) {
            (Some(f), Some(t)) => windows.push(Window { from_ms: f * 1000, to_ms: t * 1000 }),
            (None, None) => {}
            _ => return Err(AppError::field("from", "Give both ends of the time window, or neither.")),
        }
        Ok(Indicators {
            accounts: lines(&self.accounts),
            sessions: lines(&self.sessions),
            clients: lines(&self.clients),
            ips: lines(&self.ips),
            user_agents: self.user_agents.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect(),
            windows,
            modules: lines(&self.modules),
        })
    }

    fn of(i: &Indicators) -> Self {
        Self {
            accounts: i.accounts.join("\n"),
            sessions: i.sessions.join("\n"),
            clients: i.clients.join("\n"),
            ips: i.ips.join("\n"),
            user_agents: i.user_agents.join("\n"),
            from: i.windows.first().map(|w| local_input(w.from_ms / 1000)).unwrap_or_default(),
            to: i.windows.first().map(|w| local_input(w.to_ms / 1000)).unwrap_or_default(),
            modules: i.modules.join(", "),
        }
    }
}

/// The declaration form.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct DeclareForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) discovered: String,
    #[serde(default)]
    pub(crate) alert: String,
    #[serde(flatten)]
    pub(crate) indicators: IndicatorForm,
}

/// An incident in the list.
#[derive(Debug, Clone)]
pub(crate) struct IncidentLine {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) declared: Moment,
    pub(crate) closed: bool,
}

async fn lead(state: &WebState, ctx: &Ctx, who: &SignedIn) -> Result<Lead, WebError> {
    state.app.incidents().lead(&ctx.caller_as(who)).await.map_err(WebError::page)
}

async fn list_view(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    form: DeclareForm,
    (status, errors): (StatusCode, Vec<FieldError>),
) -> PageResult {
    let lead = lead(state, ctx, who).await?;
    let incidents = state.app.incidents().list(&lead).await.map_err(WebError::page)?;
    let page = IncidentsPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf(),
        incidents: incidents
            .iter()
            .map(|i| IncidentLine {
                id: i.id.clone(),
                title: i.title.clone(),
                declared: moment(i.declared_at),
                closed: i.closed_at.is_some(),
            })
            .collect(),
        form,
        errors,
    };
    Ok((status, render(&page)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct FromAlert {
    #[serde(default)]
    alert: Option<String>,
}

/// The incident console's front page: the incidents, and the form to declare one (filled in
/// from an alert with `?alert=`).
pub(crate) async fn incidents_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Query(q): Query<FromAlert>,
) -> PageResult {
    let mut form = DeclareForm::default();
    if let Some(alert) = q.alert.filter(|a| !a.is_empty()) {
        let lead = lead(&state, &ctx, &who).await?;
        let d = state.app.incidents().from_alert(&lead, &alert).await.map_err(WebError::page)?;
        form = DeclareForm {
            csrf: String::new(),
            title: d.title,
            description: String::new(),
            discovered: local_input(d.discovered_at),
            alert,
            indicators: IndicatorForm::of(&d.indicators),
        };
    }
    list_view(&state, &ctx, &who, form, (StatusCode::OK, Vec::new())).await
}

/// Declares an incident; on to its page.
pub(crate) async fn declare(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<DeclareForm>) -> PageResult {
    let who = ctx.require_signed_in()?;
    let lead = lead(&state, &ctx, &who).await?;
    let made = async {
        let d = Declaration {
            title: form.title.clone(),
            description: form.description.clone(),
            discovered_at: local_time("discovered", &form.discovered)?
                .ok_or_else(|| AppError::field("discovered", "When was it found?"))?,
            indicators: form.indicators.indicators()?,
            from_alert: Some(form.alert.clone()).filter(|a| !a.is_empty()),
        };
        state.app.incidents().declare(&lead, &d).await
    }
    .await;
    match made {
        Ok((id, _)) => Ok(Redirect::to(&format!("/operator/incidents/{id}?done=declared")).into_response()),
        Err(AppError::Invalid(errors)) => {
            list_view(&state, &ctx, &who, form, (StatusCode::UNPROCESSABLE_ENTITY, errors)).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

/// A moved patient, as the page lists it.
#[derive(Debug, Clone)]
pub(crate) struct MovedLine {
    pub(crate) patient: String,
    pub(crate) from: &'static str,
    pub(crate) to: &'static str,
    pub(crate) why: String,
}

/// The forms on an incident's page, as sent back with their errors.
#[derive(Debug, Clone, Default)]
pub(crate) struct IncidentForms {
    pub(crate) indicators: IndicatorForm,
    pub(crate) note: String,
    pub(crate) steps_taken: String,
    pub(crate) commissioner_told: String,
    pub(crate) reason: String,
}

fn done_text(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "declared" => "Declared. Its scope is computed from the access log below.",
            "revised" => "A new revision is computed: the banner, notices and reports now follow it.",
            "details" => "Saved.",
            "remediated" => "Done, and recorded against the incident.",
            "campaign" => "The campaign is started. Notices go out at the rate set; progress shows below.",
            "released" => "More of the campaign is released.",
            _ => return None,
        }
        .to_owned(),
    )
}

#[allow(clippy::too_many_arguments)]
async fn incident_view(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    id: &str,
    notice: Option<String>,
    forms: Option<IncidentForms>,
    (status, errors): (StatusCode, Vec<FieldError>),
) -> PageResult {
    let lead = lead(state, ctx, who).await?;
    let incidents = state.app.incidents();
    let Detail { incident, revisions, campaigns, actions } =
        incidents.detail(&lead, id).await.map_err(WebError::page)?;
    let latest = revisions.last().cloned();
    let moved = match revisions.len() {
        n if n >= 2 => {
            let d = incidents
                .diff(&lead, id, revisions[n - 2].number, revisions[n - 1].number)
                .await
                .map_err(WebError::page)?;
            Some((
                d.from,
                d.to,
                d.added,
                d.removed,
                d.moved
                    .into_iter()
                    .map(|m| MovedLine { patient: m.patient_id, from: m.from.label(), to: m.to.label(), why: m.why })
                    .collect::<Vec<_>>(),
            ))
        }
        _ => None,
    };
    let controllers =
        if latest.is_some() { incidents.controllers(&lead, id).await.map_err(WebError::page)? } else { Vec::new() };
    let failed = state.app.incidents().refused(&lead, id).await.map_err(WebError::page)?;
    let forms = forms.unwrap_or_else(|| IncidentForms {
        indicators: latest.as_ref().map(|r| IndicatorForm::of(&r.indicators)).unwrap_or_default(),
        steps_taken: incident.steps_taken.clone(),
        commissioner_told: incident.commissioner_told_at.map(local_input).unwrap_or_default(),
        ..IncidentForms::default()
    });
    let page = IncidentPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf(),
        notice,
        declared: moment(incident.declared_at),
        discovered: moment(incident.discovered_at),
        told: incident.commissioner_told_at.map(moment),
        incident,
        latest,
        revisions: revisions
            .iter()
            .rev()
            .map(|r| (r.number, moment(r.created_at), r.note.clone(), r.confirmed, r.possible))
            .collect(),
        moved,
        controllers,
        campaigns: campaigns
            .iter()
            .map(|c| crate::pages::incidents::CampaignLine {
                id: c.id.clone(),
                revision: c.revision,
                started: moment(c.created_at),
                released: c.released_percent,
                per_minute: c.per_minute,
                total: c.total,
                sent: c.sent,
                waiting: c.waiting,
                unconfirmed: c.unconfirmed,
                failed: c.failed,
                cancelled: c.cancelled,
                eta: c
                    .eta_secs
                    .map(|s| if s < 90 { format!("{s} seconds") } else { format!("{} minutes", (s + 59) / 60) }),
            })
            .collect(),
        failed,
        actions: actions
            .iter()
            .rev()
            .map(|a| (moment(a.at), a.action.clone(), a.target.clone(), a.affected, a.reason.clone()))
            .collect(),
        forms,
        errors,
    };
    Ok((status, render(&page)).into_response())
}

/// A campaign, as the page lists it.
#[derive(Debug, Clone)]
pub(crate) struct CampaignLine {
    pub(crate) id: String,
    pub(crate) revision: i64,
    pub(crate) started: Moment,
    pub(crate) released: i64,
    pub(crate) per_minute: i64,
    pub(crate) total: i64,
    pub(crate) sent: i64,
    pub(crate) waiting: i64,
    pub(crate) unconfirmed: i64,
    pub(crate) failed: i64,
    pub(crate) cancelled: i64,
    pub(crate) eta: Option<String>,
}

/// An incident's page.
pub(crate) async fn incident_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path(id): Path<String>,
    Query(d): Query<Done>,
) -> PageResult {
    incident_view(&state, &ctx, &who, &id, done_text(d.done.as_deref()), None, (StatusCode::OK, Vec::new())).await
}

/// The forms' fields, all optional (each form sends its own).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    steps_taken: String,
    #[serde(default)]
    commissioner_told: String,
    #[serde(default)]
    closed: Option<String>,
    #[serde(default)]
    set: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    percent: String,
    #[serde(default)]
    per_minute: String,
    #[serde(default)]
    campaign: String,
    #[serde(flatten)]
    indicators: IndicatorForm,
}

fn number(field: &'static str, v: &str, what: &str) -> Result<i64, AppError> {
    v.trim().replace(['%', ','], "").parse().map_err(|_| AppError::field(field, what.to_owned()))
}

async fn act(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    id: &str,
    what: &str,
    form: &ActionForm,
) -> Result<&'static str, AppError> {
    let lead = state.app.incidents().lead(&ctx.caller_as(who)).await?;
    let incidents = state.app.incidents();
    match what {
        "revise" => {
            incidents.revise(&lead, id, &form.indicators.indicators()?, &form.note).await?;
            Ok("revised")
        }
        "details" => {
            let told = local_time("commissioner_told", &form.commissioner_told)?;
            incidents.set_details(&lead, id, &form.steps_taken, told, form.closed.is_some()).await?;
            Ok("details")
        }
        "remediate" => {
            incidents.remediate(&lead, id, Set::parse(&form.set)?, &Remedy::parse(&form.action)?, &form.reason).await?;
            Ok("remediated")
        }
        "campaign" => {
            let percent = number("percent", &form.percent, "Give the share to release now, 1 to 100.")?;
            let rate = number("per_minute", &form.per_minute, "Give how many a minute, like 600.")?;
            incidents.start_campaign(&lead, id, percent, rate).await?;
            Ok("campaign")
        }
        _ => {
            let percent = number("percent", &form.percent, "Give the share to release now, 1 to 100.")?;
            let rate = number("per_minute", &form.per_minute, "Give how many a minute, like 600.")?;
            incidents.release(&lead, id, &form.campaign, percent, rate).await?;
            Ok("released")
        }
    }
}

/// Every action on an incident's page: revise, details, remediate, start or release a campaign.
pub(crate) async fn incident_action(
    State(state): State<WebState>,
    Path((id, what)): Path<(String, String)>,
    CsrfForm(ctx, form): CsrfForm<ActionForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    if !matches!(what.as_str(), "revise" | "details" | "remediate" | "campaign" | "release") {
        return Err(WebError::page(AppError::NotFound));
    }
    match act(&state, &ctx, &who, &id, &what, &form).await {
        Ok(done) => Ok(Redirect::to(&format!("/operator/incidents/{id}?done={done}")).into_response()),
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let (status, errors) = match e {
                AppError::Invalid(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors),
                AppError::Conflict(m) => (StatusCode::CONFLICT, vec![FieldError { field: "action", message: m }]),
                _ => (StatusCode::UNPROCESSABLE_ENTITY, Vec::new()),
            };
            let forms = IncidentForms {
                indicators: form.indicators.clone(),
                note: form.note.clone(),
                steps_taken: form.steps_taken.clone(),
                commissioner_told: form.commissioner_told.clone(),
                reason: form.reason.clone(),
            };
            incident_view(&state, &ctx, &who, &id, None, Some(forms), (status, errors)).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReportQuery {
    #[serde(default)]
    org: String,
    #[serde(default)]
    format: String,
}

/// A controlling organisation's report (`?org=`), printable or as CSV (`format=csv`).
pub(crate) async fn controller_report(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> PageResult {
    let lead = lead(&state, &ctx, &who).await?;
    let report = state.app.incidents().controller_report(&lead, &id, &q.org).await.map_err(WebError::page)?;
    if q.format == "csv" {
        let name: String =
            report.controller_name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"incident-{name}.csv\"")),
            ],
            report.csv(),
        )
            .into_response());
    }
    Ok(render(&ControllerReportPage { nav: Some(Nav::new(&who, ctx.csrf())), incident_id: id, report }))
}

/// The regulator's report, printable or as JSON (`format=json`).
pub(crate) async fn regulator_report(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> PageResult {
    let lead = lead(&state, &ctx, &who).await?;
    let report = state.app.incidents().regulator_report(&lead, &id).await.map_err(WebError::page)?;
    if q.format == "json" {
        return Ok(axum::Json(report).into_response());
    }
    Ok(render(&RegulatorReportPage { nav: Some(Nav::new(&who, ctx.csrf())), incident_id: id, report }))
}

crate::extract::impl_has_csrf!(DeclareForm, ActionForm);

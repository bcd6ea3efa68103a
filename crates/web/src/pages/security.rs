//! The security console (operators only): the detectors' alerts, each with its evidence and a
//! timeline chart (server-rendered SVG), and the actions — acknowledge, lift a suspension or
//! lock, switch a module off or on — each with a reason and a second factor proved in the last
//! ten minutes (a code typed with the action, or a passkey confirmed under Sign-in security).

use super::Done;
use super::PageResult;
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, Ctx, PageId};
use crate::present::{Moment, moment, moment_ms};
use crate::views::{AlertPage, Nav, SecurityConsolePage, render};
use app::detection::console::{Alert, Evidence, Minute, Settle, state};
use app::domain::detection::{Response, Rule, Severity, Switchable, Thresholds};
use app::{AppError, FieldError, SignedIn};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

/// An alert as the console lists it.
#[derive(Debug, Clone)]
pub(crate) struct AlertLine {
    pub(crate) id: String,
    pub(crate) rule: &'static str,
    pub(crate) severity: &'static str,
    pub(crate) critical: bool,
    pub(crate) state: &'static str,
    pub(crate) open: bool,
    pub(crate) subject: String,
    pub(crate) response: &'static str,
    pub(crate) seen: i64,
    pub(crate) when: Moment,
    pub(crate) note: Option<String>,
}

impl From<&Alert> for AlertLine {
    fn from(a: &Alert) -> Self {
        let st = state(a);
        Self {
            id: a.id.clone(),
            rule: Rule::parse(&a.rule).map_or("Unknown rule", Rule::label),
            severity: Severity::parse(&a.severity).map_or("Unknown", Severity::label),
            critical: a.severity == Severity::Critical.as_str(),
            state: st.label(),
            open: st == app::domain::detection::AlertState::Open,
            subject: a.subject.clone(),
            response: Response::parse(&a.response).map_or("Unknown", Response::label),
            seen: a.seen,
            when: moment(a.created_at),
            note: a.note.clone(),
        }
    }
}

/// A rule as the console explains it.
#[derive(Debug, Clone)]
pub(crate) struct RuleLine {
    pub(crate) label: &'static str,
    pub(crate) severity: &'static str,
    pub(crate) response: &'static str,
    pub(crate) limit: String,
}

fn rules(t: &Thresholds) -> Vec<RuleLine> {
    let per = |n: i64, secs: i64, what: &str| {
        let window = if secs % 86_400 == 0 {
            format!("{} day(s)", secs / 86_400)
        } else if secs % 3_600 == 0 {
            format!("{} hour(s)", secs / 3_600)
        } else {
            format!("{} minute(s)", secs / 60)
        };
        format!("{n} {what} in {window}")
    };
    Rule::ALL
        .iter()
        .map(|r| RuleLine {
            label: r.label(),
            severity: r.severity().label(),
            response: r.response().label(),
            limit: match r {
                Rule::Enumeration => per(t.enumeration.at, t.enumeration.window_secs, "refused ids"),
                Rule::BulkDocumentReads => {
                    per(t.bulk_documents.at, t.bulk_documents.window_secs, "patients' documents")
                }
                Rule::ReadRate => per(t.read_rate.at, t.read_rate.window_secs, "items read"),
                Rule::PatientsTouched => per(t.patients_touched.at, t.patients_touched.window_secs, "patients"),
                Rule::KeyUnwraps => per(t.key_unwraps.at, t.key_unwraps.window_secs, "patients' keys"),
                Rule::Exports => per(t.exports.at, t.exports.window_secs, "exports"),
                Rule::ClientVolume => per(t.client_patients.at, t.client_patients.window_secs, "patients read"),
                Rule::NoRelation => "the first in an hour".into(),
                Rule::Honeytoken => "any touch".into(),
                Rule::SignInSpike => "failed sign-ins far above the usual rate".into(),
            },
        })
        .collect()
}

/// A module switched off, as the console lists it.
#[derive(Debug, Clone)]
pub(crate) struct SwitchLine {
    pub(crate) module_label: &'static str,
    pub(crate) scope_label: String,
    pub(crate) since: Moment,
    pub(crate) reason: String,
}

/// An operator's action, as the console lists it.
#[derive(Debug, Clone)]
pub(crate) struct ActionLine {
    pub(crate) when: Moment,
    pub(crate) action: String,
    pub(crate) object: String,
    pub(crate) reason: String,
}

/// The switch form, as sent back with its errors.
#[derive(Debug, Clone, Default)]
pub(crate) struct SwitchInput {
    pub(crate) module: String,
    pub(crate) scope: String,
    pub(crate) reason: String,
}

async fn console_view(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    notice: Option<String>,
    form: SwitchInput,
    (status, errors): (StatusCode, Vec<FieldError>),
) -> PageResult {
    let caller = ctx.caller_as(who);
    let security = state.app.security();
    let alerts = security.alerts(&caller, 200).await.map_err(WebError::page)?;
    let practices = state.app.practices().list(&caller).await.map_err(WebError::page)?;
    let name_of = |scope: &str| {
        if scope == "*" {
            "Everyone".to_owned()
        } else {
            practices
                .iter()
                .find(|p| p.practice.id.to_string() == scope)
                .map_or_else(|| scope.to_owned(), |p| p.practice.name.clone())
        }
    };
    let switches = security
        .switches(&caller)
        .await
        .map_err(WebError::page)?
        .into_iter()
        .map(|s| SwitchLine {
            module_label: Switchable::parse(&s.module).map_or("Unknown", Switchable::label),
            scope_label: name_of(&s.scope),
            since: moment(s.off_at),
            reason: s.reason,
        })
        .collect();
    let actions = security
        .actions(&caller)
        .await
        .map_err(WebError::page)?
        .into_iter()
        .map(|a| ActionLine { when: moment(a.at), action: a.action, object: a.object, reason: a.reason })
        .collect();
    let page = SecurityConsolePage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf(),
        notice,
        open: alerts.iter().filter(|a| a.acknowledged_at.is_none()).count(),
        alerts: alerts.iter().map(AlertLine::from).collect(),
        switches,
        practices: practices.iter().map(|p| (p.practice.id.to_string(), p.practice.name.clone())).collect(),
        modules: Switchable::ALL.iter().map(|m| (m.as_str(), m.label())).collect(),
        actions,
        rules: rules(&state.app.detection_thresholds()),
        form,
        errors,
    };
    Ok((status, render(&page)).into_response())
}

fn done_text(done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "acknowledged" => "The alert is acknowledged.",
            "lifted" => "Lifted: the account, session or system works again. The alert stays, acknowledged.",
            "off" => "Switched off. Patients there see a plain \"temporarily unavailable\" page; systems are asked to send again later.",
            "on" => "Switched on again: everything there works as usual.",
            _ => return None,
        }
        .to_owned(),
    )
}

/// The security console's front page.
pub(crate) async fn console_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Query(d): Query<Done>,
) -> PageResult {
    console_view(&state, &ctx, &who, done_text(d.done.as_deref()), SwitchInput::default(), (StatusCode::OK, Vec::new()))
        .await
}

/// A bar of the timeline chart: one minute.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    pub(crate) x: i64,
    pub(crate) width: i64,
    pub(crate) reads_y: i64,
    pub(crate) reads_h: i64,
    pub(crate) refused_y: i64,
    pub(crate) refused_h: i64,
    pub(crate) title: String,
}

/// The timeline chart: reads and refusals per minute, as SVG drawn on the server.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    pub(crate) width: i64,
    pub(crate) height: i64,
    pub(crate) base: i64,
    pub(crate) bars: Vec<Bar>,
    pub(crate) max: i64,
    pub(crate) first: String,
    pub(crate) last: String,
    pub(crate) summary: String,
}

/// Draws the chart: each minute a bar, reads stacked on refusals, scaled to the busiest minute.
pub(crate) fn chart(minutes: &[Minute]) -> Chart {
    const W: i64 = 720;
    const H: i64 = 200;
    const TOP: i64 = 10;
    let base = H - 24;
    let max = minutes.iter().map(|m| m.reads + m.refused).max().unwrap_or(0).max(1);
    let n = i64::try_from(minutes.len()).unwrap_or(1).max(1);
    let slot = (W - 40) / n;
    let width = (slot - 1).max(1);
    let scale = |v: i64| v * (base - TOP) / max;
    let bars = minutes
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let x = 40 + i64::try_from(i).unwrap_or(0) * slot;
            let refused_h = scale(m.refused);
            let reads_h = scale(m.reads);
            Bar {
                x,
                width,
                refused_y: base - refused_h,
                refused_h,
                reads_y: base - refused_h - reads_h,
                reads_h,
                title: format!("{}: {} read, {} refused", moment(m.at).text, m.reads, m.refused),
            }
        })
        .collect();
    let (reads, refused): (i64, i64) = minutes.iter().fold((0, 0), |(a, b), m| (a + m.reads, b + m.refused));
    Chart {
        width: W,
        height: H,
        base,
        bars,
        max,
        first: minutes.first().map(|m| moment(m.at).text).unwrap_or_default(),
        last: minutes.last().map(|m| moment(m.at).text).unwrap_or_default(),
        summary: format!(
            "{reads} reads and {refused} refusals over {} minute(s); the busiest minute had {max}.",
            minutes.len()
        ),
    }
}

/// An event of the evidence, as the alert page lists it.
#[derive(Debug, Clone)]
pub(crate) struct EventLine {
    pub(crate) when: Moment,
    pub(crate) action: String,
    pub(crate) object: String,
    pub(crate) patient: String,
    pub(crate) outcome: String,
    pub(crate) ip: String,
}

async fn alert_view(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    id: &str,
    notice: Option<String>,
    reason: String,
    problem: Option<(StatusCode, Vec<FieldError>)>,
) -> PageResult {
    let Evidence { alert, events, truncated, timeline, patients, documents } =
        state.app.security().evidence(&ctx.caller_as(who), id).await.map_err(WebError::page)?;
    let lift = matches!(
        Response::parse(&alert.response),
        Some(Response::SuspendSession | Response::SuspendClient | Response::LockAccount)
    ) && alert.lifted_at.is_none();
    let (status, errors) = problem.unwrap_or((StatusCode::OK, Vec::new()));
    let page = AlertPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf(),
        notice,
        line: AlertLine::from(&alert),
        acknowledged: alert.acknowledged_at.is_some(),
        lift,
        chart: chart(&timeline),
        events: events
            .iter()
            .rev()
            .map(|e| EventLine {
                when: moment_ms(e.at_ms),
                action: format!("{} {}", e.action, e.object_type),
                object: e.object_id.clone(),
                patient: e.patient.clone().unwrap_or_default(),
                outcome: e.outcome.replace('_', " "),
                ip: e.ip.clone(),
            })
            .collect(),
        truncated,
        patients,
        documents,
        reason,
        errors,
    };
    Ok((status, render(&page)).into_response())
}

/// One alert: its evidence, timeline and actions.
pub(crate) async fn alert_page(
    State(state): State<WebState>,
    PageId(id): PageId<uuid::Uuid>,
    Auth(ctx, who): Auth,
    Query(d): Query<Done>,
) -> PageResult {
    alert_view(&state, &ctx, &who, &id.to_string(), done_text(d.done.as_deref()), String::new(), None).await
}

/// Proves the second factor with a code typed beside the action, when one was typed.
async fn confirm(state: &WebState, ctx: &mut Ctx, who: &mut SignedIn, code: &str) -> Result<Option<String>, AppError> {
    if code.trim().is_empty() {
        return Ok(None);
    }
    // Where operators must use passkeys, an authenticator code does not confirm them either (a
    // phishing proxy relays codes): the passkey, under Sign-in security.
    if state.app.identity().passkeys_required().await? {
        return Err(AppError::Conflict(
            "Operators must use a passkey here: confirm it's you with your passkey under Sign-in security, then come \
             back within ten minutes."
                .into(),
        ));
    }
    let token = state.app.identity().confirm_with_code(&ctx.caller_as(who), who, code).await.map_err(|e| match e {
        AppError::Invalid(_) => AppError::field(
            "code",
            "That code is not right, or was already used. Enter the 6 digits the app shows now.",
        ),
        e => e,
    })?;
    who.mfa_at = Some(state.app.clock_now());
    *ctx = ctx.rebound(&state.app, &token);
    Ok(Some(token))
}

/// What an answer to a console form becomes: a redirect (keeping a newly proved session's
/// cookie), or the page again with the problem.
fn problem_of(e: AppError) -> Result<(StatusCode, Vec<FieldError>), WebError> {
    match e {
        AppError::Invalid(f) => Ok((StatusCode::UNPROCESSABLE_ENTITY, f)),
        AppError::Conflict(m) => Ok((StatusCode::CONFLICT, vec![FieldError { field: "code", message: m }])),
        e => Err(WebError::page(e)),
    }
}

fn redirect(ctx: Ctx, token: Option<String>, to: &str) -> axum::response::Response {
    match token {
        Some(t) => (ctx.with_session(t), Redirect::to(to)).into_response(),
        None => Redirect::to(to).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SettleForm {
    #[serde(default)]
    csrf: String,
    /// `acknowledge` or `lift` (the button pressed).
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
    /// A code from the authenticator app (when the second factor was not proved lately).
    #[serde(default)]
    code: String,
}

/// Acknowledges an alert, or lifts what its detector did.
pub(crate) async fn settle(
    State(state): State<WebState>,
    PageId(id): PageId<uuid::Uuid>,
    CsrfForm(ctx, form): CsrfForm<SettleForm>,
) -> PageResult {
    let mut who = ctx.require_signed_in()?;
    let mut ctx = ctx;
    let id = id.to_string();
    let how = match form.action.as_str() {
        "lift" => Settle::Lift,
        _ => Settle::Acknowledge,
    };
    let result = match confirm(&state, &mut ctx, &mut who, &form.code).await {
        Ok(token) => {
            state.app.security().settle(&ctx.caller_as(&who), &who, &id, how, &form.reason).await.map(|()| token)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(token) => {
            let done = if how == Settle::Lift { "lifted" } else { "acknowledged" };
            Ok(redirect(ctx, token, &format!("/operator/security/alerts/{id}?done={done}")))
        }
        Err(e) => {
            let problem = problem_of(e)?;
            alert_view(&state, &ctx, &who, &id, None, form.reason, Some(problem)).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SwitchForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    module: String,
    /// A practice's id, or `*` for everyone.
    #[serde(default)]
    scope: String,
    /// `off` or `on` (the button pressed).
    #[serde(default)]
    state: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: String,
}

/// Switches a module off or on, for one practice or everyone (the kill switch).
pub(crate) async fn switch(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<SwitchForm>) -> PageResult {
    let mut who = ctx.require_signed_in()?;
    let mut ctx = ctx;
    let off = form.state != "on";
    let result = match confirm(&state, &mut ctx, &mut who, &form.code).await {
        Ok(token) => state
            .app
            .security()
            .switch(&ctx.caller_as(&who), &who, &form.module, &form.scope, off, &form.reason)
            .await
            .map(|()| token),
        Err(e) => Err(e),
    };
    match result {
        Ok(token) => {
            Ok(redirect(ctx, token, if off { "/operator/security?done=off" } else { "/operator/security?done=on" }))
        }
        Err(e) => {
            let problem = problem_of(e)?;
            let input = SwitchInput { module: form.module, scope: form.scope, reason: form.reason };
            console_view(&state, &ctx, &who, None, input, problem).await
        }
    }
}

/// `robots.txt`: asks crawlers to keep out of everything, and names (as disallowed) a canary
/// document — a honeytoken that only someone probing for documents would ever request.
pub(crate) async fn robots(State(state): State<WebState>) -> impl IntoResponse {
    use std::fmt::Write as _;
    let mut body = String::from("User-agent: *\nDisallow: /\n");
    for (id, kind) in state.app.honeytokens() {
        if kind == "document" {
            let _ = writeln!(body, "Disallow: /documents/{id}/download");
        }
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
}

crate::extract::impl_has_csrf!(SettleForm, SwitchForm);

//! Proxy access pages: who may act for a patient (the patient accepts and revokes; the
//! practice sets up and revokes), the switcher between "me" and each person one acts for, and
//! the practice's cut-off age.

use super::{Notice, PageResult, notice_text};
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, CsrfOnly, PageId};
use crate::views::{Nav, render};
use app::domain::proxies::{CUTOFF_AGES, ProxyScopes, Relationship};
use app::domain::{PatientId, PracticeId, ProxyId};
use app::proxies::{ActingFor, ProxyForm, ProxyView};
use app::{AppError, FieldError};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use std::collections::HashMap;

#[derive(Template)]
#[template(path = "proxies.html")]
struct ProxiesPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<String>,
    patient: String,
    /// The patient's own view (accept, revoke); otherwise the practice's.
    own: bool,
    /// The practice may set up proxies here.
    can_set_up: bool,
    links: Vec<ProxyView>,
    relationships: Vec<(&'static str, &'static str)>,
    scopes: Vec<(&'static str, &'static str, bool)>,
    values: ProxyValues,
    errors: Vec<FieldError>,
}

#[derive(Default)]
struct ProxyValues {
    email: String,
    name: String,
    authority: String,
    relationship: String,
    starts: String,
    expires: String,
    identity_check: String,
}

impl ProxiesPage {
    fn error_for(&self, field: &str) -> Option<String> {
        let m: Vec<_> = self.errors.iter().filter(|e| e.field == field).map(|e| e.message.clone()).collect();
        (!m.is_empty()).then(|| m.join(" "))
    }
}

async fn proxies_view(
    state: &WebState,
    ctx: &crate::extract::Ctx,
    who: &app::SignedIn,
    patient: PatientId,
    form: Option<(&ProxyForm, Vec<FieldError>)>,
    n: &Notice,
) -> Result<ProxiesPage, WebError> {
    let links = state.app.proxies().of_patient(&ctx.caller_as(who), patient).await.map_err(WebError::page)?;
    let own = who.own_patient == Some(patient) && who.acting_for.is_none();
    let (values, errors, chosen) = match form {
        Some((f, errors)) => (
            ProxyValues {
                email: f.email.clone(),
                name: f.name.clone(),
                authority: f.authority.clone(),
                relationship: f.relationship.clone(),
                starts: f.starts.clone(),
                expires: f.expires.clone(),
                identity_check: f.identity_check.clone(),
            },
            errors,
            f.scopes.clone(),
        ),
        None => (ProxyValues::default(), Vec::new(), vec!["appointments".to_owned(), "prescriptions".to_owned()]),
    };
    Ok(ProxiesPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        notice: notice_text(n),
        patient: patient.to_string(),
        own,
        can_set_up: who.staff.is_some_and(|(_, r)| app::capabilities::may(r, app::capabilities::SET_UP_PROXIES)),
        links,
        relationships: Relationship::ALL.iter().map(|r| (r.as_str(), r.label())).collect(),
        scopes: ProxyScopes::NAMES.iter().map(|(n, l)| (*n, *l, chosen.iter().any(|c| c == n))).collect(),
        values,
        errors,
    })
}

/// Who may act for the patient.
pub(crate) async fn proxies_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(patient): PageId<PatientId>,
    Query(n): Query<Notice>,
) -> PageResult {
    Ok(render(&proxies_view(&state, &ctx, &who, patient, None, &n).await?))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct SetUpSubmit {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    relationship: String,
    #[serde(default)]
    authority: String,
    #[serde(default)]
    starts: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    identity_check: String,
    /// `scope-<name>` checkboxes.
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

crate::extract::impl_has_csrf!(SetUpSubmit, SwitchForm, CutoffForm);

/// The practice sets up a proxy; the page again, with the new link or what to fix.
pub(crate) async fn set_up(
    State(state): State<WebState>,
    PageId(patient): PageId<PatientId>,
    CsrfForm(ctx, form): CsrfForm<SetUpSubmit>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let f = ProxyForm {
        email: form.email,
        name: form.name,
        authority: form.authority,
        relationship: form.relationship,
        scopes: form.rest.keys().filter_map(|k| k.strip_prefix("scope-")).map(str::to_owned).collect(),
        starts: form.starts,
        expires: form.expires,
        identity_check: form.identity_check,
    };
    match state.app.proxies().set_up(&ctx.caller_as(&who), patient, &f).await {
        Ok(_) => Ok(Redirect::to(&format!("/patients/{patient}/proxies?done=proxy-set-up")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let page = proxies_view(&state, &ctx, &who, patient, Some((&f, errors)), &Notice::default()).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(e) => Err(WebError::page(e)),
    }
}

/// The patient accepts a proxy.
pub(crate) async fn accept(
    State(state): State<WebState>,
    PageId(id): PageId<ProxyId>,
    CsrfForm(ctx, _): CsrfForm<CsrfOnly>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    state.app.proxies().accept(&ctx.caller_as(&who), id).await.map_err(WebError::page)?;
    let to =
        who.own_patient.map_or_else(|| "/home".to_owned(), |p| format!("/patients/{p}/proxies?done=proxy-accepted"));
    Ok(Redirect::to(&to).into_response())
}

/// The patient, the practice or the proxy ends a proxy.
pub(crate) async fn revoke(
    State(state): State<WebState>,
    PageId(id): PageId<ProxyId>,
    CsrfForm(ctx, _): CsrfForm<CsrfOnly>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    state.app.proxies().revoke(&ctx.caller_as(&who), id).await.map_err(WebError::page)?;
    // Back where they came from: the patient's (or practice's) list, or the proxy's switcher.
    let to = match (&who.staff, who.own_patient) {
        (Some(_), _) | (None, None) => "/home".to_owned(),
        (None, Some(p)) => format!("/patients/{p}/proxies?done=proxy-revoked"),
    };
    Ok(Redirect::to(&to).into_response())
}

#[derive(Template)]
#[template(path = "acting_for.html")]
struct ActingPage {
    nav: Option<Nav>,
    csrf: String,
    /// The person's own name, when they have a record of their own here.
    me: Option<String>,
    current: Option<String>,
    people: Vec<ActingFor>,
}

impl ActingPage {
    fn is_current(&self, a: &ActingFor) -> bool {
        self.current.as_deref() == Some(a.patient.to_string().as_str())
    }
}

/// The switcher: "me" and each person the signed-in person acts for.
pub(crate) async fn acting_page(State(state): State<WebState>, Auth(ctx, who): Auth) -> PageResult {
    let people = state.app.proxies().acting_for(&who).await.map_err(WebError::page)?;
    Ok(render(&ActingPage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        me: who.own_patient.map(|_| who.name.clone()),
        current: who.acting_for.as_ref().map(|a| a.patient.to_string()),
        people,
    }))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct SwitchForm {
    #[serde(default)]
    csrf: String,
    /// `me`, or the id of a person the account acts for.
    #[serde(default)]
    to: String,
}

/// Switches the session to a person (or back to oneself), then to their home page.
pub(crate) async fn switch(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<SwitchForm>) -> PageResult {
    let who = ctx.require_signed_in()?;
    let to = match form.to.trim() {
        "me" | "" => None,
        id => Some(id.parse::<PatientId>().map_err(|_| WebError::page(AppError::NotFound))?),
    };
    state.app.proxies().switch(&ctx.caller_as(&who), &who, to).await.map_err(WebError::page)?;
    let home = to.or(who.own_patient).map_or_else(|| "/home".to_owned(), |p| format!("/patients/{p}"));
    Ok(Redirect::to(&home).into_response())
}

#[derive(Template)]
#[template(path = "proxy_rules.html")]
struct RulesPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<String>,
    practice: String,
    cutoff: u8,
    ages: &'static [u8],
}

/// The practice's proxy rules (its admins).
pub(crate) async fn rules_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(practice): PageId<PracticeId>,
    Query(n): Query<Notice>,
) -> PageResult {
    let cutoff = state.app.proxies().rules(&ctx.caller_as(&who), practice).await.map_err(WebError::page)?;
    Ok(render(&RulesPage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        notice: notice_text(&n),
        practice: practice.to_string(),
        cutoff,
        ages: CUTOFF_AGES,
    }))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct CutoffForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    cutoff_age: String,
}

/// The practice's admins set the cut-off age.
pub(crate) async fn set_rules(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<CutoffForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    state.app.proxies().set_cutoff(&ctx.caller_as(&who), practice, &form.cutoff_age).await.map_err(WebError::page)?;
    Ok(Redirect::to(&format!("/practices/{practice}/proxy-rules?done=proxy-rules")).into_response())
}

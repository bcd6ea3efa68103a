//! The operators' page: practices, other operators, and the platform's passkey rule.

use super::{Notice, PageResult, notice_text, yes_or_no};
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, Ctx, HasCsrf};
use crate::views::{Nav, OperatorPage, render};
use app::{AppError, FieldError, SignedIn};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

/// Turns on or off the requirement that operators and practice admins sign in with a passkey.
pub(crate) async fn set_passkey_policy(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<crate::pages::practices::PolicyForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let on = yes_or_no(&form.on);
    state.app.identity().set_passkeys_required(&ctx.caller_as(&who), on).await.map_err(WebError::page)?;
    Ok(Redirect::to(if on == Some(true) { "/operator?done=passkeys-on" } else { "/operator?done=passkeys-off" })
        .into_response())
}

#[derive(Default)]
struct OperatorInvite {
    name: String,
    email: String,
    errors: Vec<FieldError>,
}

async fn operator_view(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    notice: Option<String>,
    form: app::PracticeForm,
    errors: Vec<FieldError>,
    invite: OperatorInvite,
) -> PageResult {
    let practices = state.app.practices().list(&ctx.caller_as(who)).await.map_err(WebError::page)?;
    let status =
        if errors.is_empty() && invite.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = OperatorPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf(),
        notice,
        practices,
        regions: app::domain::values::REGIONS,
        form,
        errors,
        operator_name: invite.name,
        operator_email: invite.email,
        operator_errors: invite.errors,
        passkeys_required: state.app.identity().passkeys_required().await.map_err(WebError::page)?,
    };
    Ok((status, render(&page)).into_response())
}

pub(crate) async fn operator_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Query(n): Query<Notice>,
) -> PageResult {
    operator_view(
        &state,
        &ctx,
        &who,
        notice_text(&n),
        app::PracticeForm::default(),
        Vec::new(),
        OperatorInvite::default(),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub(crate) struct PracticePageForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: app::PracticeForm,
}

impl HasCsrf for PracticePageForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(crate) async fn create_practice(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<PracticePageForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.practices().create(&ctx.caller_as(&who), &form.form).await {
        Ok(_) => Ok(Redirect::to("/operator?done=practice").into_response()),
        Err(AppError::Invalid(errors)) => {
            operator_view(&state, &ctx, &who, None, form.form, errors, OperatorInvite::default()).await
        }
        Err(AppError::Conflict(m)) => {
            let errors = vec![FieldError { field: "hpi_facility_id", message: m }];
            operator_view(&state, &ctx, &who, None, form.form, errors, OperatorInvite::default()).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct OperatorInviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    operator_name: String,
    #[serde(default)]
    operator_email: String,
}

impl HasCsrf for OperatorInviteForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(crate) async fn invite_operator(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<OperatorInviteForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.identity().invite_operator(&ctx.caller_as(&who), &form.operator_name, &form.operator_email).await {
        Ok(()) => Ok(Redirect::to("/operator?done=invited").into_response()),
        Err(AppError::Invalid(errors)) => {
            let invite = OperatorInvite { name: form.operator_name, email: form.operator_email, errors };
            operator_view(&state, &ctx, &who, None, app::PracticeForm::default(), Vec::new(), invite).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

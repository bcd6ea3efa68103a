//! The operators' page: practices, other operators, and the platform's passkey rule.

use super::{Notice, PageResult, notice_text, yes_or_no};
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, Ctx};
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

/// The "disable or enable an account" form, as sent back when it had errors.
#[derive(Default)]
struct AccountAction {
    email: String,
    reason: String,
    errors: Vec<FieldError>,
}

/// The "reset a patient's sign-in" form, as sent back when it had errors.
#[derive(Default)]
struct ResetAction {
    email: String,
    checked: String,
    errors: Vec<FieldError>,
}

/// The page's forms, as sent back: all empty but the one that had errors.
#[derive(Default)]
struct Forms {
    practice: app::PracticeForm,
    errors: Vec<FieldError>,
    invite: OperatorInvite,
    account: AccountAction,
    reset: ResetAction,
}

async fn operator_view(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    notice: Option<String>,
    forms: Forms,
) -> PageResult {
    let Forms { practice: form, errors, invite, account, reset } = forms;
    let practices = state.app.practices().list(&ctx.caller_as(who)).await.map_err(WebError::page)?;
    let resets = state.app.identity().open_patient_resets(&ctx.caller_as(who)).await.map_err(WebError::page)?;
    let status =
        if errors.is_empty() && invite.errors.is_empty() && account.errors.is_empty() && reset.errors.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
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
        account_email: account.email,
        account_reason: account.reason,
        account_errors: account.errors,
        resets: resets.into_iter().map(Into::into).collect(),
        reset_email: reset.email,
        reset_checked: reset.checked,
        reset_errors: reset.errors,
        passkeys_required: state.app.identity().passkeys_required().await.map_err(WebError::page)?,
    };
    Ok((status, render(&page)).into_response())
}

pub(crate) async fn operator_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Query(n): Query<Notice>,
) -> PageResult {
    operator_view(&state, &ctx, &who, notice_text(&n), Forms::default()).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct PracticePageForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: app::PracticeForm,
}

pub(crate) async fn create_practice(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<PracticePageForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.practices().create(&ctx.caller_as(&who), &form.form).await {
        Ok(_) => Ok(Redirect::to("/operator?done=practice").into_response()),
        Err(AppError::Invalid(errors)) => {
            operator_view(&state, &ctx, &who, None, Forms { practice: form.form, errors, ..Forms::default() }).await
        }
        Err(AppError::Conflict(m)) => {
            let errors = vec![FieldError { field: "hpi_facility_id", message: m }];
            operator_view(&state, &ctx, &who, None, Forms { practice: form.form, errors, ..Forms::default() }).await
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

pub(crate) async fn invite_operator(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<OperatorInviteForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.identity().invite_operator(&ctx.caller_as(&who), &form.operator_name, &form.operator_email).await {
        Ok(()) => Ok(Redirect::to("/operator?done=invited").into_response()),
        Err(AppError::Invalid(errors)) => {
            let invite = OperatorInvite { name: form.operator_name, email: form.operator_email, errors };
            operator_view(&state, &ctx, &who, None, Forms { invite, ..Forms::default() }).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AccountActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    account_email: String,
    #[serde(default)]
    account_reason: String,
    /// `disable` or `enable` (the button pressed).
    #[serde(default)]
    action: String,
}

/// Disables an account with a reason, or enables it again (operators).
pub(crate) async fn account_action(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<AccountActionForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    let identity = state.app.identity();
    let (done, result) = match form.action.as_str() {
        "disable" => {
            ("account-disabled", identity.disable_account(&caller, &form.account_email, &form.account_reason).await)
        }
        "enable" => ("account-enabled", identity.enable_account(&caller, &form.account_email).await),
        _ => ("", Err(AppError::field("account_email", "Choose whether to disable or enable the account."))),
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/operator?done={done}")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let errors = super::form_fields(errors, &[("email", "account_email"), ("reason", "account_reason")]);
            let account = AccountAction { email: form.account_email, reason: form.account_reason, errors };
            operator_view(&state, &ctx, &who, None, Forms { account, ..Forms::default() }).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResetRequestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reset_email: String,
    #[serde(default)]
    checked: String,
}

/// An operator asks for a patient's sign-in to be reset; a second operator approves.
pub(crate) async fn request_patient_reset(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<ResetRequestForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.identity().request_patient_reset(&ctx.caller_as(&who), &form.reset_email, &form.checked).await {
        Ok(()) => Ok(Redirect::to("/operator?done=reset-requested").into_response()),
        Err(AppError::Invalid(errors)) => {
            let reset = ResetAction { email: form.reset_email, checked: form.checked, errors };
            operator_view(&state, &ctx, &who, None, Forms { reset, ..Forms::default() }).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResetApprovalForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    request: String,
}

/// A second operator approves another's request to reset a patient's sign-in.
pub(crate) async fn approve_patient_reset(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<ResetApprovalForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.identity().approve_patient_reset(&ctx.caller_as(&who), &form.request).await {
        Ok(()) => Ok(Redirect::to("/operator?done=reset-approved").into_response()),
        Err(AppError::Invalid(errors)) => {
            let reset = ResetAction { errors, ..ResetAction::default() };
            operator_view(&state, &ctx, &who, None, Forms { reset, ..Forms::default() }).await
        }
        Err(e) => Err(WebError::page(e)),
    }
}

crate::extract::impl_has_csrf!(
    PracticePageForm,
    OperatorInviteForm,
    AccountActionForm,
    ResetRequestForm,
    ResetApprovalForm
);

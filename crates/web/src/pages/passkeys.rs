//! Passkey pages. Each passkey form works in two steps: its script (`/static/passkey.js`) posts
//! to an `…/options` route for a challenge (JSON), asks the browser's authenticator, and then
//! posts the form itself with the answer, as any other form; the answer is checked against the
//! challenge kept on the server, which is used up by it.

use crate::WebState;
use crate::error::WebError;
use crate::extract::CsrfForm;
use crate::extract::PageId;
use crate::extract::challenge_of;
use crate::pages::mfa::{security_notice, signed_in, start_again, verify_view};
use crate::views::{SignInPage, render};
use app::identity::passkeys::PasskeyChallenge;
use app::{AppError, SignedIn};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

type PageResult = Result<Response, WebError>;

/// A challenge for the script, or why there is none (as JSON, with a status).
fn challenge(result: Result<PasskeyChallenge, AppError>) -> Response {
    let refuse =
        |status: StatusCode, message: &str| (status, Json(serde_json::json!({ "error": message }))).into_response();
    match result {
        Ok(c) => Json(c).into_response(),
        Err(AppError::Conflict(m)) => refuse(StatusCode::CONFLICT, &m),
        Err(AppError::LinkExpired) => {
            refuse(StatusCode::UNAUTHORIZED, "Signing in took too long. Please sign in again.")
        }
        Err(AppError::Unauthenticated) => refuse(StatusCode::UNAUTHORIZED, "Please sign in again."),
        Err(AppError::RateLimited(secs)) => refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("Too many sign-in attempts from this network. Try again in {} minutes.", secs.div_ceil(60)),
        ),
        Err(e) => {
            tracing::error!(error = %e, "a passkey challenge could not be made");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "Passkeys cannot be used right now. Try again in a moment.")
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct PasskeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    response: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    confirm_code: String,
}

fn first_message(e: &AppError) -> String {
    match e {
        AppError::Invalid(fields) => fields.first().map(|f| f.message.clone()).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// A challenge for signing in with a passkey alone.
pub(crate) async fn sign_in_options(
    State(state): State<WebState>,
    CsrfForm(ctx, _): CsrfForm<crate::extract::CsrfOnly>,
) -> Response {
    challenge(state.app.identity().begin_passkey_sign_in(&ctx.caller()).await)
}

/// Signs in with a passkey alone.
pub(crate) async fn sign_in(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<PasskeyForm>) -> Response {
    match state.app.identity().finish_passkey_sign_in(&ctx.caller(), &form.token, &form.response).await {
        Ok(outcome) => signed_in(&state, ctx, outcome).await,
        Err(e @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let message = first_message(&e);
            let page = SignInPage {
                nav: None,
                csrf: ctx.csrf(),
                email: "",
                message: Some(&message),
                passkeys: state.app.identity().passkeys_available(),
            };
            (StatusCode::UNAUTHORIZED, render(&page)).into_response()
        }
        Err(e) => WebError::page(e).into_response(),
    }
}

/// A challenge for the passkey of the account whose password was just right.
pub(crate) async fn second_factor_options(
    State(state): State<WebState>,
    CsrfForm(ctx, _): CsrfForm<crate::extract::CsrfOnly>,
) -> Response {
    challenge(state.app.identity().begin_passkey_second_factor(&challenge_of(&ctx)).await)
}

/// Finishes a sign-in with the passkey as the second factor.
pub(crate) async fn second_factor(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<PasskeyForm>,
) -> Response {
    let challenge = challenge_of(&ctx);
    match state
        .app
        .identity()
        .finish_passkey_second_factor(&ctx.caller(), &challenge, &form.token, &form.response)
        .await
    {
        Ok(outcome) => signed_in(&state, ctx, outcome).await,
        Err(AppError::LinkExpired) => start_again(&state, &ctx, StatusCode::UNAUTHORIZED),
        Err(e @ AppError::Invalid(_)) => {
            let msg = first_message(&e);
            verify_view(&state, &ctx, StatusCode::UNAUTHORIZED, None, Some(&msg)).await
        }
        Err(e) => WebError::page(e).into_response(),
    }
}

/// A challenge for registering a passkey.
pub(crate) async fn register_options(
    State(state): State<WebState>,
    CsrfForm(ctx, _): CsrfForm<crate::extract::CsrfOnly>,
) -> Response {
    match ctx.require_signed_in() {
        Ok(who) => challenge(state.app.identity().begin_passkey_registration(&who).await),
        Err(_) => challenge(Err(AppError::Unauthenticated)),
    }
}

/// Registers a passkey; shows new recovery codes when the account had none.
pub(crate) async fn register(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<PasskeyForm>) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state
        .app
        .identity()
        .finish_passkey_registration(&ctx.caller_as(&who), &who, &form.token, &form.name, &form.response)
        .await
    {
        Ok((codes, token)) => {
            let notice = "Your passkey is ready. You can use it to sign in.";
            let mut who = who;
            who.mfa_at = Some(state.app.clock_now());
            let page = security_notice(&state, &ctx.rebound(&state.app, &token), &who, codes, Vec::new(), Some(notice))
                .await?;
            Ok((ctx.with_session(token), page).into_response())
        }
        Err(AppError::Invalid(errors)) => security_notice(&state, &ctx, &who, None, errors, None).await,
        Err(e @ AppError::Conflict(_)) => crate::pages::mfa::security_error(&state, &ctx, &who, e).await,
        Err(e) => Err(WebError::page(e)),
    }
}

/// Removes a passkey (after a recent "confirm it's you").
pub(crate) async fn remove(
    State(state): State<WebState>,
    PageId(id): PageId<uuid::Uuid>,
    CsrfForm(ctx, _): CsrfForm<crate::extract::CsrfOnly>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.identity().remove_passkey(&ctx.caller_as(&who), &who, id).await {
        Ok(()) => {
            let notice = "The passkey was removed. It can no longer be used to sign in.";
            security_notice(&state, &ctx, &who, None, Vec::new(), Some(notice)).await
        }
        Err(e @ AppError::Conflict(_)) => crate::pages::mfa::security_error(&state, &ctx, &who, e).await,
        Err(e) => Err(WebError::page(e)),
    }
}

/// A challenge for "confirm it's you" with a passkey.
pub(crate) async fn confirm_options(
    State(state): State<WebState>,
    CsrfForm(ctx, _): CsrfForm<crate::extract::CsrfOnly>,
) -> Response {
    match ctx.require_signed_in() {
        Ok(who) => challenge(state.app.identity().begin_passkey_confirm(&who).await),
        Err(_) => challenge(Err(AppError::Unauthenticated)),
    }
}

/// "Confirm it's you", with a passkey or a code from the authenticator app: for ten minutes
/// the session may change its factors.
pub(crate) async fn confirm(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<PasskeyForm>) -> PageResult {
    let who: SignedIn = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    let result = if form.confirm_code.trim().is_empty() {
        state.app.identity().finish_passkey_confirm(&caller, &who, &form.token, &form.response).await
    } else {
        state.app.identity().confirm_with_code(&caller, &who, &form.confirm_code).await
    };
    match result {
        // Proved again after a detector asked: back to where they were going.
        Ok(token) if who.needs_second_factor && !who.needs_passkey => {
            Ok((ctx.with_session(token), axum::response::Redirect::to("/")).into_response())
        }
        Ok(token) => {
            let mut who = who;
            who.mfa_at = Some(state.app.clock_now());
            let notice = "Thank you. For the next 10 minutes you can change your password, email, passkeys or authenticator app.";
            let page =
                security_notice(&state, &ctx.rebound(&state.app, &token), &who, None, Vec::new(), Some(notice)).await?;
            Ok((ctx.with_session(token), page).into_response())
        }
        Err(AppError::Invalid(errors)) => security_notice(&state, &ctx, &who, None, errors, None).await,
        Err(e @ AppError::Conflict(_)) => crate::pages::mfa::security_error(&state, &ctx, &who, e).await,
        Err(e) => Err(WebError::page(e)),
    }
}

crate::extract::impl_has_csrf!(PasskeyForm);

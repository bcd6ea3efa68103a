//! Signing in and out, and activation: the sign-in page, the password step (the code step is in
//! `mfa`), and the page an emailed activation or invitation link opens.

use super::PageResult;
use crate::WebState;
use crate::error::WebError;
use crate::extract::{CsrfForm, CsrfOnly, Ctx};
use crate::views::{ActivatePage, MessagePage, SignInPage, home_of, render};
use app::{AppError, InvitationPurpose};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

pub(crate) async fn signin_page(State(state): State<WebState>, ctx: Ctx) -> Response {
    if let Some(who) = &ctx.signed_in {
        return Redirect::to(&home_of(who)).into_response();
    }
    let page = render(&SignInPage {
        nav: None,
        csrf: ctx.csrf(),
        email: "",
        message: None,
        passkeys: state.app.identity().passkeys_available(),
    });
    (ctx.jar, page).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(crate) async fn signin(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<SignInForm>) -> Response {
    let device = crate::extract::device_of(&ctx);
    match state.app.identity().sign_in(&ctx.caller(), &form.email, &form.password, device.as_deref()).await {
        Ok(app::SignInStep::Done(outcome)) => {
            let outcome = *outcome;
            let home = home_of(&outcome.signed_in);
            let (secure, caller) = (ctx.secure, ctx.caller());
            let jar = ctx.with_session(outcome.token);
            let jar = crate::extract::remember_browser(&state, jar, &caller, &outcome.signed_in, secure, false).await;
            (jar, Redirect::to(&home)).into_response()
        }
        // The password was right; no session until the second factor is.
        Ok(app::SignInStep::SecondFactor(challenge)) => {
            let secure = ctx.secure;
            (crate::extract::with_challenge(ctx.jar, challenge, secure), Redirect::to("/signin/verify")).into_response()
        }
        Err(
            e @ (AppError::BadCredentials
            | AppError::RateLimited(_)
            | AppError::SignInPaused
            | AppError::PasswordMustChange),
        ) => {
            let status = crate::error::status_of(&e);
            let message = match &e {
                AppError::RateLimited(secs) => {
                    format!("Too many sign-in attempts. Please wait {} minute(s) and try again.", secs.div_ceil(60))
                }
                AppError::SignInPaused | AppError::PasswordMustChange => crate::error::words(&e).1,
                _ => "The email or password is not right. Check them and try again.".to_owned(),
            };
            let page = render(&SignInPage {
                nav: None,
                csrf: ctx.csrf(),
                email: &form.email,
                message: Some(&message),
                passkeys: state.app.identity().passkeys_available(),
            });
            let mut response = (status, ctx.jar, page).into_response();
            if let AppError::RateLimited(secs) = e
                && let Ok(v) = secs.to_string().parse()
            {
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
            response
        }
        Err(e) => WebError::page(e).into_response(),
    }
}

pub(crate) async fn signout(State(state): State<WebState>, CsrfForm(ctx, _): CsrfForm<CsrfOnly>) -> PageResult {
    if let Some(who) = &ctx.signed_in {
        state.app.identity().sign_out(&ctx.caller_as(who), who).await.map_err(WebError::page)?;
    }
    let page = render(&MessagePage {
        nav: None,
        title: "You have signed out",
        message: "You have signed out of Tiaki. If you are on a shared device, close the browser too.",
        action: Some(("/signin", "Sign in again")),
    });
    Ok((ctx.without_session(), page).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    pub(crate) token: String,
}

fn activation_heading(purpose: InvitationPurpose) -> &'static str {
    match purpose {
        InvitationPurpose::ActivatePatient => "Activate your account",
        InvitationPurpose::JoinStaff => "Join your practice on Tiaki",
        InvitationPurpose::JoinOperator => "Set up your operator account",
        InvitationPurpose::FirstOperator => "Set up Tiaki",
    }
}

pub(crate) async fn activate_page(State(state): State<WebState>, ctx: Ctx, Query(q): Query<TokenQuery>) -> PageResult {
    let invitation = state.app.identity().invitation(&q.token).await.map_err(WebError::page)?;
    let page = render(&ActivatePage {
        nav: None,
        csrf: ctx.csrf(),
        token: &q.token,
        heading: activation_heading(invitation.purpose),
        name: invitation.name,
        email: invitation.email.unwrap_or_default(),
        first_operator: invitation.purpose == InvitationPurpose::FirstOperator,
        form_name: "",
        form_email: "",
        errors: Vec::new(),
    });
    Ok((ctx.jar, page).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActivateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

pub(crate) async fn activate(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<ActivateForm>) -> PageResult {
    let result = state
        .app
        .identity()
        .accept_invitation(
            &ctx.caller(),
            &form.token,
            &form.password,
            &form.confirm,
            form.name.as_deref(),
            form.email.as_deref(),
        )
        .await;
    match result {
        Ok(outcome) => {
            let home = home_of(&outcome.signed_in);
            let (secure, caller) = (ctx.secure, ctx.caller());
            let jar = ctx.with_session(outcome.token);
            // The browser that activated the account is its first: no notice for it.
            let jar = crate::extract::remember_browser(&state, jar, &caller, &outcome.signed_in, secure, true).await;
            Ok((jar, Redirect::to(&home)).into_response())
        }
        Err(AppError::Invalid(errors)) => {
            let invitation = state.app.identity().invitation(&form.token).await.map_err(WebError::page)?;
            let page = render(&ActivatePage {
                nav: None,
                csrf: ctx.csrf(),
                token: &form.token,
                heading: activation_heading(invitation.purpose),
                name: invitation.name,
                email: invitation.email.unwrap_or_default(),
                first_operator: invitation.purpose == InvitationPurpose::FirstOperator,
                form_name: form.name.as_deref().unwrap_or_default(),
                form_email: form.email.as_deref().unwrap_or_default(),
                errors,
            });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, ctx.jar, page).into_response())
        }
        Err(e) => Err(WebError::page(e)),
    }
}

crate::extract::impl_has_csrf!(SignInForm, ActivateForm);

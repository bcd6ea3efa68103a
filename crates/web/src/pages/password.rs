//! Password and email pages: "Forgot your password?", the reset link, and changing the password
//! or email from the sign-in security page (after a recent second factor).

use crate::WebState;
use crate::error::WebError;
use crate::extract::{CsrfForm, Ctx};
use crate::pages::mfa::{security_error, security_notice};
use crate::pages::signin::TokenQuery;
use crate::views::{EmailConfirmPage, ForgotPage, MessagePage, Nav, ResetPage, render};
use app::AppError;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

type PageResult = Result<Response, WebError>;

/// The "Forgot your password?" page.
pub(crate) async fn forgot_page(ctx: Ctx) -> Response {
    let page = render(&ForgotPage { nav: None, csrf: ctx.csrf(), email: "", message: None, sent: false });
    (ctx.jar, page).into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct ForgotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// Asks for a reset link. The page says the same whether or not the email has an account.
pub(crate) async fn forgot(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<ForgotForm>) -> Response {
    match state.app.identity().request_password_reset(&ctx.caller(), &form.email).await {
        Ok(()) => {
            let page = render(&ForgotPage { nav: None, csrf: ctx.csrf(), email: "", message: None, sent: true });
            (ctx.jar, page).into_response()
        }
        Err(AppError::RateLimited(secs)) => {
            let message = format!("Too many requests. Please wait {} minute(s) and try again.", secs.div_ceil(60));
            let page = render(&ForgotPage {
                nav: None,
                csrf: ctx.csrf(),
                email: &form.email,
                message: Some(&message),
                sent: false,
            });
            (StatusCode::TOO_MANY_REQUESTS, ctx.jar, page).into_response()
        }
        Err(e) => WebError::page(e).into_response(),
    }
}

/// The page a reset link opens.
pub(crate) async fn reset_page(State(state): State<WebState>, ctx: Ctx, Query(q): Query<TokenQuery>) -> PageResult {
    let email = state.app.identity().password_reset_for(&q.token).await.map_err(reset_link_error)?;
    let page = render(&ResetPage { nav: None, csrf: ctx.csrf(), token: &q.token, email, errors: Vec::new() });
    Ok((ctx.jar, page).into_response())
}

fn reset_link_error(e: AppError) -> WebError {
    match e {
        AppError::LinkExpired => WebError::page(AppError::Gone(
            "This link has expired or was already used. Ask for a new one with \"Forgot your password?\" on the sign-in page."
                .into(),
        )),
        other => WebError::page(other),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// Sets the new password from a reset link; the person then signs in with it.
pub(crate) async fn reset(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<ResetForm>) -> PageResult {
    match state.app.identity().reset_password(&ctx.caller(), &form.token, &form.password, &form.confirm).await {
        Ok(()) => {
            let page = render(&MessagePage {
                nav: None,
                title: "Your password is changed",
                message: "You have been signed out everywhere. Sign in with your new password.",
                action: Some(("/signin", "Sign in")),
            });
            Ok((ctx.without_session(), page).into_response())
        }
        Err(AppError::Invalid(errors)) => {
            let email = state.app.identity().password_reset_for(&form.token).await.map_err(reset_link_error)?;
            let page = render(&ResetPage { nav: None, csrf: ctx.csrf(), token: &form.token, email, errors });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, ctx.jar, page).into_response())
        }
        Err(e) => Err(reset_link_error(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChangePasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// Changes the password (every other session ends).
pub(crate) async fn change_password(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<ChangePasswordForm>,
) -> PageResult {
    let mut who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    match state.app.identity().change_password(&caller, &who, &form.current, &form.password, &form.confirm).await {
        Ok(token) => {
            who.must_change_password = false;
            let notice = "Your password is changed. Everywhere else you were signed in has been signed out.";
            let rebound = ctx.rebound(&state.app, &token);
            let page = security_notice(&state, &rebound, &who, None, Vec::new(), Some(notice)).await?;
            Ok((ctx.with_session(token), page).into_response())
        }
        Err(e) => security_error(&state, &ctx, &who, e).await,
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChangeEmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    new_email: String,
    #[serde(default)]
    email_current: String,
}

/// Starts a change of email: a link goes to the new address.
pub(crate) async fn change_email(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<ChangeEmailForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    match state.app.identity().request_email_change(&caller, &who, &form.email_current, &form.new_email).await {
        Ok(()) => {
            let notice = "We have emailed a link to the new address. Open it in this browser within an hour to finish the change.";
            security_notice(&state, &ctx, &who, None, Vec::new(), Some(notice)).await
        }
        Err(e) => security_error(&state, &ctx, &who, e).await,
    }
}

/// The page an email-change link opens: a button, so that opening the link changes nothing.
pub(crate) async fn email_confirm_page(ctx: Ctx, Query(q): Query<TokenQuery>) -> PageResult {
    let who = ctx.require_signed_in()?;
    let page = render(&EmailConfirmPage { nav: Some(Nav::new(&who, ctx.csrf())), csrf: ctx.csrf(), token: &q.token });
    Ok((ctx.jar, page).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

/// Finishes a change of email.
pub(crate) async fn email_confirm(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<TokenForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    match state.app.identity().confirm_email_change(&caller, &who, &form.token).await {
        Ok(email) => {
            let notice = format!("Your email address is now {email}. Sign in with it from now on.");
            security_notice(&state, &ctx, &who, None, Vec::new(), Some(&notice)).await
        }
        Err(AppError::LinkExpired) => Err(WebError::page(AppError::Gone(
            "This link has expired, was already used, or is for another account. Sign in to the account the change was for, and ask for the change again if needed."
                .into(),
        ))),
        Err(e) => Err(WebError::page(e)),
    }
}

crate::extract::impl_has_csrf!(ForgotForm, ResetForm, ChangePasswordForm, ChangeEmailForm, TokenForm);

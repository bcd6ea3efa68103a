//! Password and email pages: "Forgot your password?", the reset code, and changing the password
//! or email from the sign-in security page (after a recent second factor).

use crate::WebState;
use crate::error::WebError;
use crate::extract::{CsrfForm, Ctx};
use crate::pages::mfa::{security_error, security_notice};
use crate::pages::signin::code_page;
use crate::views::{CodeSpec, ForgotPage, MessagePage, Nav, ResetPage, render};
use app::AppError;
use axum::extract::State;
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

/// Asks for a reset code. The page says the same whether or not the email has an account.
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

/// Where a password-reset code is typed.
pub(crate) async fn reset_page(ctx: Ctx) -> Response {
    code_page(&ctx, None, &RESET_CODE, "", (None, None))
}

/// The reset code page again, saying what is wrong with the code.
fn reset_code_error(ctx: &Ctx, code: &str, e: AppError) -> PageResult {
    match e {
        AppError::LinkExpired => {
            let problem = "That code is not right, has expired (codes work for an hour) or was already used. Check it \
                           against the newest email, or ask for a new one with \"Forgot your password?\" on the \
                           sign-in page.";
            Ok(code_page(ctx, None, &RESET_CODE, code, (Some(problem), None)))
        }
        other => Err(WebError::page(other)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResetForm {
    #[serde(default)]
    csrf: String,
    /// `code`: the code alone; otherwise the new password with it.
    #[serde(default)]
    step: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// Sets the new password from a reset code (first the code alone, then the password with it);
/// the person then signs in with it.
pub(crate) async fn reset(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<ResetForm>) -> PageResult {
    let code = form.code.trim();
    if form.step == "code" {
        return match state.app.identity().password_reset_for(code).await {
            Ok(email) => {
                let page = render(&ResetPage { nav: None, csrf: ctx.csrf(), code, email, errors: Vec::new() });
                Ok((ctx.jar, page).into_response())
            }
            Err(e) => reset_code_error(&ctx, code, e),
        };
    }
    match state.app.identity().reset_password(&ctx.caller(), code, &form.password, &form.confirm).await {
        Ok(()) => {
            let page = render(&MessagePage {
                nav: None,
                title: "Your password is changed",
                message: "You have been signed out everywhere. Sign in with your new password.",
                action: Some(("/signin", "Sign in")),
            });
            Ok((ctx.without_session(), page).into_response())
        }
        Err(AppError::Invalid(errors)) => match state.app.identity().password_reset_for(code).await {
            Ok(email) => {
                let page = render(&ResetPage { nav: None, csrf: ctx.csrf(), code, email, errors });
                Ok((StatusCode::UNPROCESSABLE_ENTITY, ctx.jar, page).into_response())
            }
            Err(e) => reset_code_error(&ctx, code, e),
        },
        Err(e) => reset_code_error(&ctx, code, e),
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

/// Starts a change of email: a code goes to the new address, and this page asks for it.
pub(crate) async fn change_email(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<ChangeEmailForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    match state.app.identity().request_email_change(&caller, &who, &form.email_current, &form.new_email).await {
        Ok(()) => {
            let notice = "We have emailed a code to the new address. Type it here within an hour to finish the change.";
            Ok(email_code_page(&ctx, &who, "", (None, Some(notice))))
        }
        Err(e) => security_error(&state, &ctx, &who, e).await,
    }
}

/// Where the code sent to a new email address is typed, in the session that asked for the change.
const NEW_ADDRESS_CODE: CodeSpec = CodeSpec {
    title: "Confirm your new email address",
    intro: "Type the code we emailed to the new address. Tiaki's messages, and signing in, will then use that \
            address.",
    action: "/account/email/confirm",
    button: "Use the new email address",
    back: ("/account/security", "Back to sign-in security"),
};

fn email_code_page(ctx: &Ctx, who: &app::SignedIn, code: &str, said: (Option<&str>, Option<&str>)) -> Response {
    code_page(ctx, Some(Nav::new(who, ctx.csrf())), &NEW_ADDRESS_CODE, code, said)
}

/// Where a password-reset code is typed.
const RESET_CODE: CodeSpec = CodeSpec {
    title: "Choose a new password",
    intro: "Type the code we emailed you. It works for an hour.",
    action: "/reset-password",
    button: "Continue",
    back: ("/signin", "Back to sign in"),
};

/// Where the code for a change of email is typed.
pub(crate) async fn email_confirm_page(ctx: Ctx) -> PageResult {
    let who = ctx.require_signed_in()?;
    Ok(email_code_page(&ctx, &who, "", (None, None)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct TypedCode {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// Finishes a change of email.
pub(crate) async fn email_confirm(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<TypedCode>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    let code = form.code.trim();
    match state.app.identity().confirm_email_change(&caller, &who, code).await {
        Ok(email) => {
            let notice = format!("Your email address is now {email}. Sign in with it from now on.");
            security_notice(&state, &ctx, &who, None, Vec::new(), Some(&notice)).await
        }
        Err(AppError::LinkExpired) => {
            let problem = "That code is not right, has expired (codes work for an hour), was already used or is for \
                           another account. Check it against the newest email, or ask for the change again.";
            Ok(email_code_page(&ctx, &who, code, (Some(problem), None)))
        }
        Err(e) => Err(WebError::page(e)),
    }
}

crate::extract::impl_has_csrf!(ForgotForm, ResetForm, ChangePasswordForm, ChangeEmailForm, TypedCode);

//! Signing in and out, and activation: the sign-in page, the password step (the second-factor
//! step is in `mfa`), and the page where a code from an activation, invitation or password
//! email is typed.

use super::PageResult;
use crate::WebState;
use crate::error::WebError;
use crate::extract::{CsrfForm, CsrfOnly, Ctx};
use crate::views::{ActivatePage, CodeSpec, EnterCodePage, MessagePage, Nav, ResetPage, SignInPage, home_of, render};
use app::{AppError, CodeFor, InvitationPurpose};
use axum::extract::State;
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

fn activation_heading(purpose: InvitationPurpose) -> &'static str {
    match purpose {
        InvitationPurpose::ActivatePatient => "Activate your account",
        InvitationPurpose::JoinStaff => "Join your practice on Tiaki",
        InvitationPurpose::JoinOperator => "Set up your operator account",
        InvitationPurpose::FirstOperator => "Set up Tiaki",
    }
}

/// The sign-in page's code page: where a code from an activation, invitation or password
/// email is typed (emails carry codes, never links).
pub(crate) const SIGN_IN_CODE: CodeSpec = CodeSpec {
    title: "Type the code from your email",
    intro: "Type the code from your Tiaki email: the one that activates your account, invites you to join a \
            practice, or lets you choose a new password.",
    action: "/activate",
    button: "Continue",
    back: ("/signin", "Back to sign in"),
};

/// A page where a code is typed: 422 when it shows what is wrong with the code typed.
pub(crate) fn code_page(
    ctx: &Ctx,
    nav: Option<Nav>,
    form: &CodeSpec,
    code: &str,
    (error, notice): (Option<&str>, Option<&str>),
) -> Response {
    let page = render(&EnterCodePage { nav, csrf: ctx.csrf(), form, code, error, notice });
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    (status, ctx.jar.clone(), page).into_response()
}

/// What went wrong with a code typed at the sign-in page, in words that say what to do next;
/// `None` for an error that is not about the code.
pub(crate) fn code_problem(e: &AppError) -> Option<&'static str> {
    match e {
        AppError::NotFound => Some(
            "That code is not right. Check it against the newest email from Tiaki: 16 letters and numbers, like \
             ABCD-EFGH-JKMN-PQRS.",
        ),
        AppError::LinkExpired => Some(
            "That code is not right, has expired or was already used. For a new password, ask for a new code with \
             \"Forgot your password?\". For an activation or invitation, ask whoever sent it for a new one.",
        ),
        AppError::LinkUsed => Some("That code has already been used. If you chose your password with it, sign in."),
        _ => None,
    }
}

/// Where a code is typed at the sign-in page.
pub(crate) async fn activate_page(ctx: Ctx) -> Response {
    code_page(&ctx, None, &SIGN_IN_CODE, "", (None, None))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActivateForm {
    #[serde(default)]
    csrf: String,
    /// `code`: the code alone, to see what it is for; otherwise the password step.
    #[serde(default)]
    step: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

/// A code typed at the sign-in page: an invitation's leads to choosing a password (and for
/// the first start, a name and email); a password reset's to choosing a new password.
async fn code_step(state: &WebState, ctx: &Ctx, code: &str) -> PageResult {
    match state.app.identity().code_for(code).await {
        Ok(CodeFor::Invitation(invitation)) => {
            let page = render(&ActivatePage {
                nav: None,
                csrf: ctx.csrf(),
                code,
                heading: activation_heading(invitation.purpose),
                name: invitation.name,
                email: invitation.email.unwrap_or_default(),
                first_operator: invitation.purpose == InvitationPurpose::FirstOperator,
                form_name: "",
                form_email: "",
                errors: Vec::new(),
            });
            Ok((ctx.jar.clone(), page).into_response())
        }
        Ok(CodeFor::PasswordReset { email }) => {
            let page = render(&ResetPage { nav: None, csrf: ctx.csrf(), code, email, errors: Vec::new() });
            Ok((ctx.jar.clone(), page).into_response())
        }
        Err(e) => match code_problem(&e) {
            Some(problem) => Ok(code_page(ctx, None, &SIGN_IN_CODE, code, (Some(problem), None))),
            None => Err(WebError::page(e)),
        },
    }
}

pub(crate) async fn activate(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<ActivateForm>) -> PageResult {
    if form.step == "code" {
        return code_step(&state, &ctx, form.code.trim()).await;
    }
    let result = state
        .app
        .identity()
        .accept_invitation(
            &ctx.caller(),
            &form.code,
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
            let invitation = match state.app.identity().invitation(&form.code).await {
                Ok(invitation) => invitation,
                Err(e) => return code_error(&ctx, &form.code, e),
            };
            let page = render(&ActivatePage {
                nav: None,
                csrf: ctx.csrf(),
                code: &form.code,
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
        Err(e) => code_error(&ctx, &form.code, e),
    }
}

/// The code page again with what is wrong with the code, or the error page for anything else.
fn code_error(ctx: &Ctx, code: &str, e: AppError) -> PageResult {
    match code_problem(&e) {
        Some(problem) => Ok(code_page(ctx, None, &SIGN_IN_CODE, code, (Some(problem), None))),
        None => Err(WebError::page(e)),
    }
}

crate::extract::impl_has_csrf!(SignInForm, ActivateForm);

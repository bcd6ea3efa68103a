//! Second-factor pages: the code step of signing in, and the account's sign-in security page
//! (set up an authenticator app, recovery codes). The challenge between a correct password and a
//! correct code lives in a short-lived `HttpOnly`, `SameSite=Strict` cookie; it is not a session.

use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, Ctx, challenge_of, remember_browser, without_challenge};
use crate::pages::signin::code_page;
use crate::views::{CodeSpec, Nav, SecurityPage, SignInPage, VerifyPage, home_of, render};
use app::{AppError, FieldError, SignedIn};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

type PageResult = Result<Response, WebError>;

pub(crate) fn start_again(state: &WebState, ctx: &Ctx, status: StatusCode) -> Response {
    let message = "Signing in took too long or too many codes were wrong. Please sign in again.";
    let page = render(&SignInPage {
        nav: None,
        csrf: ctx.csrf(),
        email: "",
        message: Some(message),
        passkeys: state.app.identity().passkeys_available(),
    });
    (status, without_challenge(ctx.jar.clone(), ctx.secure), page).into_response()
}

/// The second-factor step, offering the account's passkey when it has one.
pub(crate) async fn verify_view(
    state: &WebState,
    ctx: &Ctx,
    status: StatusCode,
    message: Option<&str>,
    error: Option<&str>,
) -> Response {
    let passkey = state.app.identity().challenge_has_passkey(&challenge_of(ctx)).await.unwrap_or(false);
    let page = VerifyPage { nav: None, csrf: ctx.csrf(), message, error, passkey };
    (status, render(&page)).into_response()
}

/// The code step of signing in.
pub(crate) async fn verify_page(State(state): State<WebState>, ctx: Ctx) -> PageResult {
    if !state.app.identity().challenge_open(&challenge_of(&ctx)).await.map_err(WebError::page)? {
        return Ok(Redirect::to("/signin").into_response());
    }
    Ok(verify_view(&state, &ctx, StatusCode::OK, None, None).await)
}

#[derive(Debug, Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// After a finished sign-in (second step or passkey): the session cookie, the challenge cookie
/// gone, this browser remembered, home.
pub(crate) async fn signed_in(state: &WebState, ctx: Ctx, outcome: app::SignInOutcome) -> Response {
    let home = home_of(&outcome.signed_in);
    let secure = ctx.secure;
    let caller = ctx.caller();
    let jar = without_challenge(ctx.with_session(outcome.token), secure);
    let jar = remember_browser(state, jar, &caller, &outcome.signed_in, secure, false).await;
    (jar, Redirect::to(&home)).into_response()
}

/// Checks the code; on success the session begins and the challenge cookie goes.
pub(crate) async fn verify(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<CodeForm>) -> Response {
    let challenge = challenge_of(&ctx);
    match state.app.identity().complete_sign_in(&ctx.caller(), &challenge, &form.code).await {
        Ok(outcome) => signed_in(&state, ctx, outcome).await,
        Err(AppError::Invalid(fields)) => {
            let msg = fields.first().map(|f| f.message.clone()).unwrap_or_default();
            verify_view(&state, &ctx, StatusCode::UNAUTHORIZED, None, Some(&msg)).await
        }
        Err(AppError::LinkExpired) => start_again(&state, &ctx, StatusCode::UNAUTHORIZED),
        Err(AppError::RateLimited(secs)) => {
            let msg = format!(
                "Too many wrong codes for this account. For your safety, wait {} minutes, or ask your practice to check who you are and reset your sign-in.",
                secs.div_ceil(60)
            );
            verify_view(&state, &ctx, StatusCode::TOO_MANY_REQUESTS, Some(&msg), None).await
        }
        Err(e) => WebError::page(e).into_response(),
    }
}

async fn security_view(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    setup: Option<app::TotpSetup>,
    codes: Option<Vec<String>>,
    errors: Vec<FieldError>,
    notice: Option<&str>,
) -> PageResult {
    let status = state.app.identity().mfa_status(who).await.map_err(WebError::page)?;
    let passkeys = state.app.identity().passkeys(who).await.map_err(WebError::page)?;
    let required = if who.second_factor_asked && !who.needs_passkey {
        "To keep your account safe after a security incident, Tiaki now asks you for a second step when you sign in. If you have a passkey or an authenticator app, use it below. If not, choose \"Email me a set-up code\", type the code in this browser and set one up."
    } else if who.needs_passkey {
        "Your role must sign in with a passkey. If you have one, sign out and sign in with it. To add your first, choose \"Email me a set-up code\", type the code in this browser and add it here; then sign out and sign in with it."
    } else if who.patient.is_some() {
        "Your practice asks its patients to use a second step when they sign in. Set up a passkey or an authenticator app to see your records: choose \"Email me a set-up code\" and type the code in this browser."
    } else {
        "Your role needs a second step when you sign in. Set up a passkey or an authenticator app to continue."
    };
    // A session with a factor that must still prove it: a detector asked it to again (reading
    // faster than a person reads).
    let has_factor = status.totp || !passkeys.is_empty();
    let required = if has_factor && !who.needs_passkey && !who.second_factor_asked {
        "To go on, confirm it's you (below): this session was reading faster than a person usually does, so Tiaki \
         asks for your second factor again."
    } else {
        required
    };
    let notice = notice.or((who.needs_second_factor && codes.is_none()).then_some(required));
    let email = state.app.identity().account_email(who).await.map_err(WebError::page)?;
    let code = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = SecurityPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf(),
        notice,
        status,
        may_add_factor: who.may_add_factor,
        has_factor,
        passkeys,
        passkeys_available: state.app.identity().passkeys_available(),
        confirmed: state.app.identity().recently_confirmed(who),
        setup,
        codes,
        errors,
        must_change_password: who.must_change_password && !who.needs_second_factor,
        email,
    };
    Ok((code, render(&page)).into_response())
}

/// The security page with a notice, new recovery codes or errors (for the passkey pages).
pub(crate) async fn security_notice(
    state: &WebState,
    ctx: &Ctx,
    who: &SignedIn,
    codes: Option<Vec<String>>,
    errors: Vec<FieldError>,
    notice: Option<&str>,
) -> PageResult {
    security_view(state, ctx, who, None, codes, errors, notice).await
}

/// The security page for a refusal: field errors (422), a conflict (409) or too many tries
/// (429) — never a 200, so a refusal cannot pass for success.
pub(crate) async fn security_error(state: &WebState, ctx: &Ctx, who: &app::SignedIn, e: AppError) -> PageResult {
    match e {
        AppError::Invalid(errors) => security_notice(state, ctx, who, None, errors, None).await,
        AppError::Conflict(m) => {
            let page = security_notice(state, ctx, who, None, Vec::new(), Some(&m)).await?;
            Ok((StatusCode::CONFLICT, page).into_response())
        }
        AppError::RateLimited(secs) => {
            let m = format!("Too many wrong passwords. Please wait {} minute(s) and try again.", secs.div_ceil(60));
            let page = security_notice(state, ctx, who, None, Vec::new(), Some(&m)).await?;
            Ok((StatusCode::TOO_MANY_REQUESTS, page).into_response())
        }
        other => Err(WebError::page(other)),
    }
}

/// The account's sign-in security.
pub(crate) async fn security_page(State(state): State<WebState>, Auth(ctx, who): Auth) -> PageResult {
    security_view(&state, &ctx, &who, None, None, Vec::new(), None).await
}

/// Starts setting up an authenticator app: shows the QR code and the key.
pub(crate) async fn begin_totp(
    State(state): State<WebState>,
    CsrfForm(ctx, _): CsrfForm<crate::extract::CsrfOnly>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.identity().begin_totp(&who).await {
        Ok(setup) => security_view(&state, &ctx, &who, Some(setup), None, Vec::new(), None).await,
        Err(e @ AppError::Conflict(_)) => security_error(&state, &ctx, &who, e).await,
        Err(e) => Err(WebError::page(e)),
    }
}

/// Confirms the authenticator with a code from it, and shows the recovery codes once.
pub(crate) async fn confirm_totp(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<CodeForm>) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.identity().confirm_totp(&ctx.caller_as(&who), &who, &form.code).await {
        Ok((codes, token)) => {
            let notice = "Your authenticator app is on. Signing in now asks for a code from it.";
            let rebound = ctx.rebound(&state.app, &token);
            let page = security_view(&state, &rebound, &who, None, Some(codes), Vec::new(), Some(notice)).await?;
            // The session now stands on the factor: it continues under a new token.
            Ok((ctx.with_session(token), page).into_response())
        }
        // A wrong code: set up again with a fresh key (the old one was shown on the last page).
        Err(AppError::Invalid(errors)) => match state.app.identity().begin_totp(&who).await {
            Ok(setup) => security_view(&state, &ctx, &who, Some(setup), None, errors, None).await,
            Err(e) => Err(WebError::page(e)),
        },
        Err(e @ AppError::Conflict(_)) => security_error(&state, &ctx, &who, e).await,
        Err(e) => Err(WebError::page(e)),
    }
}

/// Replaces the recovery codes, on a current code from the app.
pub(crate) async fn regenerate_codes(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<CodeForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.identity().regenerate_recovery_codes(&ctx.caller_as(&who), &who, &form.code).await {
        Ok(codes) => {
            let notice = "New recovery codes are ready; the old ones no longer work.";
            security_view(&state, &ctx, &who, None, Some(codes), Vec::new(), Some(notice)).await
        }
        Err(AppError::Invalid(errors)) => security_view(&state, &ctx, &who, None, None, errors, None).await,
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RemoveForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    remove_code: String,
}

/// Removes the authenticator, on a current code or a recovery code.
pub(crate) async fn remove_totp(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<RemoveForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    match state.app.identity().remove_totp(&ctx.caller_as(&who), &who, &form.remove_code).await {
        Ok(()) => {
            let notice = "The authenticator app and its recovery codes were removed. Set one up again to keep your account safe.";
            security_view(&state, &ctx, &who, None, None, Vec::new(), Some(notice)).await
        }
        Err(AppError::Invalid(errors)) => security_view(&state, &ctx, &who, None, None, errors, None).await,
        Err(e @ AppError::Conflict(_)) => security_error(&state, &ctx, &who, e).await,
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SetupCodeForm {
    #[serde(default)]
    csrf: String,
    /// `code`: a code typed in; otherwise a request for one.
    #[serde(default)]
    step: String,
    #[serde(default)]
    code: String,
}

/// Where the emailed set-up code is typed.
const SETUP_CODE: CodeSpec = CodeSpec {
    title: "Type your set-up code",
    intro: "Type the set-up code we emailed you. It works for 30 minutes, in this browser only. Then you can set \
            up your authenticator app or a passkey.",
    action: "/account/security/link",
    button: "Continue",
    back: ("/account/security", "Back to sign-in security"),
};

fn setup_code_page(ctx: &Ctx, who: &SignedIn, code: &str, said: (Option<&str>, Option<&str>)) -> Response {
    code_page(ctx, Some(Nav::new(who, ctx.csrf())), &SETUP_CODE, code, said)
}

/// Emails a set-up code (a session opened by a password alone cannot add a factor without it),
/// or takes one typed in: this session may then add a first second factor.
pub(crate) async fn send_link(
    State(state): State<WebState>,
    CsrfForm(ctx, form): CsrfForm<SetupCodeForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    if form.step != "code" {
        state.app.identity().send_setup_link(&ctx.caller_as(&who), &who).await.map_err(WebError::page)?;
        let notice = "We have emailed you a set-up code. Type it here within 30 minutes.";
        return Ok(setup_code_page(&ctx, &who, "", (None, Some(notice))));
    }
    let code = form.code.trim();
    match state.app.identity().open_setup_link(&ctx.caller_as(&who), &who, code).await {
        Ok(token) => {
            let mut who = who;
            who.may_add_factor = true;
            let notice = "Thank you. You can now set up your authenticator app.";
            let rebound = ctx.rebound(&state.app, &token);
            let page = security_view(&state, &rebound, &who, None, None, Vec::new(), Some(notice)).await?;
            Ok((ctx.with_session(token), page).into_response())
        }
        Err(AppError::LinkExpired) => {
            let problem = "That code is not right, has expired (codes work for 30 minutes), was already used or is for \
                           another account. Check it against the newest email, or ask for a new one.";
            Ok(setup_code_page(&ctx, &who, code, (Some(problem), None)))
        }
        Err(e) => Err(WebError::page(e)),
    }
}

/// Where an emailed set-up code is typed.
pub(crate) async fn open_link(Auth(ctx, who): Auth) -> Response {
    setup_code_page(&ctx, &who, "", (None, None))
}

crate::extract::impl_has_csrf!(CodeForm, RemoveForm, SetupCodeForm);

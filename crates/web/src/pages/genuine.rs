//! "Is this message genuine?": a public page (no sign-in) where anyone types the reference code
//! from a message claiming to be from Tiaki. A code Tiaki sent says when and what about, and
//! its person's impact status now; anything else (made up, mistyped, malformed, another
//! portal's) gets the same plain answer: not from Tiaki, and what to do. Rate limited per
//! address; the page says nothing else to a guesser.

use super::PageResult;
use crate::WebState;
use crate::extract::{CsrfForm, Ctx};
use crate::views::{GenuinePage, render};
use app::AppError;
use app::incidents::Genuine;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;

/// The check form.
pub(crate) async fn genuine_page(ctx: Ctx) -> PageResult {
    let page = render(&GenuinePage {
        nav: None,
        csrf: ctx.csrf(),
        code: String::new(),
        checked: false,
        genuine: None,
        limited: false,
    });
    Ok((ctx.jar, page).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

crate::extract::impl_has_csrf!(CodeForm);

/// Checks a code.
pub(crate) async fn check(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<CodeForm>) -> PageResult {
    let code: String = form.code.chars().take(64).collect();
    let (status, answer, limited) = match state.app.incidents().check_reference(&ctx.caller(), &code).await {
        Ok(a) => (StatusCode::OK, Some(a), false),
        Err(AppError::RateLimited(_)) => (StatusCode::TOO_MANY_REQUESTS, None, true),
        Err(e) => return Err(crate::error::WebError::page(e)),
    };
    let genuine = match &answer {
        Some(Genuine::Genuine { sent_on, about, correction, status, steps_taken }) => Some(GenuineView {
            sent_on: sent_on.clone(),
            about: about.clone(),
            correction: *correction,
            status: status.label(),
            affected: *status != app::domain::incidents::Class::NotAffected,
            steps_taken: steps_taken.clone(),
        }),
        _ => None,
    };
    // Only a genuine code is shown back: anything else reads the same, whatever was typed.
    let code = if genuine.is_some() { code } else { String::new() };
    let page = GenuinePage { nav: None, csrf: ctx.csrf(), code, checked: answer.is_some(), genuine, limited };
    Ok((status, render(&page)).into_response())
}

/// A genuine code's answer, as the page shows it (no health detail).
#[derive(Debug, Clone)]
pub(crate) struct GenuineView {
    pub(crate) sent_on: String,
    pub(crate) about: String,
    pub(crate) correction: bool,
    pub(crate) status: &'static str,
    pub(crate) affected: bool,
    pub(crate) steps_taken: String,
}

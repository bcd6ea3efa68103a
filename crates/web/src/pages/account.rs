//! The account's sessions: where it is signed in, and signing out the others.

use super::{Notice, PageResult, notice_text};
use crate::WebState;
use crate::error::WebError;
use crate::extract::PageId;
use crate::extract::{Auth, CsrfForm, CsrfOnly};
use crate::views::{Nav, SessionLine, SessionsPage, render};
use app::domain::SessionId;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};

pub(crate) async fn sessions_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Query(n): Query<Notice>,
) -> PageResult {
    let sessions = state.app.identity().sessions(&who).await.map_err(WebError::page)?;
    let lines = sessions
        .into_iter()
        .map(|s| SessionLine {
            id: s.id.to_string(),
            device: app::identity::describe_device(&s.user_agent),
            ip: s.ip,
            created: crate::present::moment(s.created_at),
            last_seen: crate::present::moment(s.last_seen_at),
            current: s.id == who.session,
        })
        .collect();
    Ok(render(&SessionsPage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        csrf: ctx.csrf(),
        notice: notice_text(&n),
        sessions: lines,
    }))
}

pub(crate) async fn end_session(
    State(state): State<WebState>,
    PageId(session): PageId<SessionId>,
    CsrfForm(ctx, _): CsrfForm<CsrfOnly>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    if who.needs_second_factor {
        // A password alone (no second factor yet) cannot sign the holder out elsewhere.
        return Ok(Redirect::to("/account/security").into_response());
    }
    state.app.identity().end_session(&ctx.caller_as(&who), &who, session).await.map_err(WebError::page)?;
    Ok(Redirect::to("/account/sessions?done=ended").into_response())
}

pub(crate) async fn end_other_sessions(
    State(state): State<WebState>,
    CsrfForm(ctx, _): CsrfForm<CsrfOnly>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    if who.needs_second_factor {
        return Ok(Redirect::to("/account/security").into_response());
    }
    state.app.identity().end_other_sessions(&ctx.caller_as(&who), &who).await.map_err(WebError::page)?;
    Ok(Redirect::to("/account/sessions?done=ended-others").into_response())
}

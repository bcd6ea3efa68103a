//! The in-portal inbox: every notice Tiaki gives a person, newest first, and which kinds are
//! also emailed (security notices always are).

use super::{Notice, PageResult, notice_text};
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, CsrfOnly, PageId};
use crate::present::Moment;
use crate::views::{Nav, render};
use app::domain::NoticeId;
use app::notify::{InboxItem, NoticePref};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use std::collections::HashMap;

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<String>,
    items: Vec<(InboxItem, Moment)>,
    prefs: Vec<NoticePref>,
    unread: usize,
}

/// The inbox.
pub(crate) async fn inbox_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Query(n): Query<Notice>,
) -> PageResult {
    owner(&who)?;
    let items = state.app.inbox(&who).await.map_err(WebError::page)?;
    let prefs = state.app.notice_prefs(&who).await.map_err(WebError::page)?;
    Ok(render(&InboxPage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        notice: notice_text(&n),
        unread: items.iter().filter(|i| i.unread).count(),
        items: items
            .into_iter()
            .map(|i| {
                let at = crate::present::moment_ms(i.at);
                (i, at)
            })
            .collect(),
        prefs,
    }))
}

/// Opens a notice: marks it read and goes where it leads (a path in the portal).
pub(crate) async fn open(
    State(state): State<WebState>,
    PageId(id): PageId<NoticeId>,
    CsrfForm(ctx, _): CsrfForm<CsrfOnly>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    owner(&who)?;
    let items = state.app.inbox(&who).await.map_err(WebError::page)?;
    let Some(item) = items.into_iter().find(|i| i.id == id) else {
        return Err(WebError::page(app::AppError::NotFound));
    };
    state.app.mark_read(&who, Some(id)).await.map_err(WebError::page)?;
    // A notice about someone else's record opens in that record: the session switches to the
    // person it is about (the policy decides, as for the switcher), or back to the person's own.
    if let Some(p) = item.patient
        && who.patient != Some(p)
        && state.app.proxies().switch(&ctx.caller_as(&who), &who, Some(p)).await.is_err()
    {
        return Ok(Redirect::to("/inbox?done=inbox-no-access").into_response());
    }
    // Only a path of our own (Tiaki wrote it), never anywhere else.
    let to = item
        .link
        .filter(|l| l.starts_with('/') && !l.starts_with("//") && !l.contains('\\'))
        .unwrap_or_else(|| "/inbox".into());
    Ok(Redirect::to(&to).into_response())
}

/// Marks every notice read.
pub(crate) async fn read_all(State(state): State<WebState>, CsrfForm(ctx, _): CsrfForm<CsrfOnly>) -> PageResult {
    let who = ctx.require_signed_in()?;
    owner(&who)?;
    state.app.mark_read(&who, None).await.map_err(WebError::page)?;
    Ok(Redirect::to("/inbox?done=inbox-read").into_response())
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct PrefsForm {
    #[serde(default)]
    csrf: String,
    /// `email-<kind>` checkboxes.
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

crate::extract::impl_has_csrf!(PrefsForm);

/// Chooses which kinds of notice are also emailed.
pub(crate) async fn set_prefs(State(state): State<WebState>, CsrfForm(ctx, form): CsrfForm<PrefsForm>) -> PageResult {
    let who = ctx.require_signed_in()?;
    owner(&who)?;
    let on: Vec<String> = form.rest.keys().filter_map(|k| k.strip_prefix("email-")).map(str::to_owned).collect();
    state.app.set_notice_prefs(&who, &on).await.map_err(WebError::page)?;
    Ok(Redirect::to("/inbox?done=inbox-prefs").into_response())
}

/// An inbox is a patient account's, reached only by a session that may act (not one confined
/// to its sign-in security until a second factor or a new password).
fn owner(who: &app::SignedIn) -> Result<(), WebError> {
    if !who.is_a_persons_own() {
        return Err(WebError::page(app::AppError::NotFound));
    }
    Ok(())
}

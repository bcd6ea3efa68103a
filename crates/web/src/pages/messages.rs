//! Secure messaging pages: the patient's conversations and the form to start one (the
//! practice's notices shown before sending), one conversation (the practice's view with notes,
//! assignment and closing), the practice's inbox, and its messaging set-up.

use super::{Notice, PageResult, notice_text};
use crate::WebState;
use crate::error::WebError;
use crate::extract::{Auth, CsrfForm, PageId};
use crate::present::Moment;
use crate::views::{Nav, render};
use app::domain::messages::ThreadStatus;
use app::domain::{PatientId, PracticeId, ThreadId};
use app::messages::{MessageView, PracticeChoice, SettingsView, StartForm, ThreadSummary, ThreadView};
use app::{AppError, FieldError};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use std::collections::HashMap;

#[derive(Template)]
#[template(path = "messages.html")]
struct ListPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<String>,
    patient: String,
    threads: Vec<(ThreadSummary, Moment)>,
    practices: Vec<PracticeChoice>,
    values: StartForm,
    errors: Vec<FieldError>,
    request_key: String,
}

impl ListPage {
    fn error_for(&self, field: &str) -> Option<String> {
        let m: Vec<_> = self.errors.iter().filter(|e| e.field == field).map(|e| e.message.clone()).collect();
        (!m.is_empty()).then(|| m.join(" "))
    }
    fn any_on(&self) -> bool {
        self.practices.iter().any(|p| p.on)
    }
}

async fn list_view(
    state: &WebState,
    ctx: &crate::extract::Ctx,
    who: &app::SignedIn,
    patient: PatientId,
    form: Option<(StartForm, Vec<FieldError>)>,
    n: &Notice,
) -> Result<ListPage, WebError> {
    let caller = ctx.caller_as(who);
    let threads = state.app.messages().list(&caller, patient).await.map_err(WebError::page)?;
    let practices = state.app.messages().compose(&caller, patient).await.map_err(WebError::page)?;
    let (values, errors) = form.unwrap_or_default();
    Ok(ListPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        notice: notice_text(n),
        patient: patient.to_string(),
        threads: threads
            .into_iter()
            .map(|t| {
                let at = crate::present::moment(t.last);
                (t, at)
            })
            .collect(),
        practices,
        request_key: if values.request_key.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            values.request_key.clone()
        },
        values,
        errors,
    })
}

/// The patient's conversations and the form to start one.
pub(crate) async fn list_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(patient): PageId<PatientId>,
    Query(n): Query<Notice>,
) -> PageResult {
    Ok(render(&list_view(&state, &ctx, &who, patient, None, &n).await?))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct StartSubmit {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    practice: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    request_key: String,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ActSubmit {
    #[serde(default)]
    csrf: String,
    /// `reply`, `note`, `assign:<id>`, `unassign`, `close`, `reopen`.
    #[serde(default)]
    action: String,
    #[serde(default)]
    body: String,
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct SettingsSubmit {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    on: String,
    #[serde(default)]
    after_hours: String,
    #[serde(default)]
    fee_notice: String,
    #[serde(default)]
    reply_days: String,
    /// `clinician-<id>` checkboxes.
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

crate::extract::impl_has_csrf!(StartSubmit, ActSubmit, SettingsSubmit);

/// Starts a conversation; to it, or the form again with what to fix.
pub(crate) async fn start(
    State(state): State<WebState>,
    PageId(patient): PageId<PatientId>,
    CsrfForm(ctx, form): CsrfForm<StartSubmit>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let f = StartForm {
        practice: form.practice,
        to: form.to,
        subject: form.subject,
        body: form.body,
        request_key: form.request_key,
    };
    match state.app.messages().start(&ctx.caller_as(&who), patient, &f).await {
        Ok(id) => Ok(Redirect::to(&format!("/messages/{id}?done=message-sent")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let page = list_view(&state, &ctx, &who, patient, Some((f, errors)), &Notice::default()).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Template)]
#[template(path = "thread.html")]
struct ThreadPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    thread: ThreadView,
    messages: Vec<(MessageView, Moment)>,
    back: String,
    body: String,
}

async fn thread_view(
    state: &WebState,
    ctx: &crate::extract::Ctx,
    who: &app::SignedIn,
    id: ThreadId,
    error: Option<String>,
    body: String,
    n: &Notice,
) -> Result<ThreadPage, WebError> {
    let thread = state.app.messages().thread(&ctx.caller_as(who), id).await.map_err(WebError::page)?;
    let back = if thread.staff {
        format!("/practices/{}/messages", thread.practice)
    } else {
        format!("/patients/{}/messages", thread.patient)
    };
    let messages = thread
        .messages
        .iter()
        .cloned()
        .map(|m| {
            let at = crate::present::moment(m.at);
            (m, at)
        })
        .collect();
    Ok(ThreadPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        notice: notice_text(n),
        error,
        thread,
        messages,
        back,
        body,
    })
}

/// One conversation.
pub(crate) async fn thread_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(id): PageId<ThreadId>,
    Query(n): Query<Notice>,
) -> PageResult {
    Ok(render(&thread_view(&state, &ctx, &who, id, None, String::new(), &n).await?))
}

/// Writes in a conversation, or (the practice) notes, assigns, closes or reopens it.
pub(crate) async fn act(
    State(state): State<WebState>,
    PageId(id): PageId<ThreadId>,
    CsrfForm(ctx, form): CsrfForm<ActSubmit>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    let messages = state.app.messages();
    let (done, result) = match form.action.as_str() {
        "reply" | "" => ("message-sent", messages.reply(&caller, id, &form.body, false).await),
        "note" => ("note-added", messages.reply(&caller, id, &form.body, true).await),
        other => ("thread-updated", messages.manage(&caller, id, other).await),
    };
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/messages/{id}?done={done}")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let error = errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join(" ");
            let page = thread_view(&state, &ctx, &who, id, Some(error), form.body, &Notice::default()).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(e) => Err(WebError::page(e)),
    }
}

#[derive(Template)]
#[template(path = "practice_messages.html")]
struct InboxPage {
    nav: Option<Nav>,
    practice: String,
    closed: bool,
    threads: Vec<(ThreadSummary, Moment)>,
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct InboxQuery {
    #[serde(default)]
    status: String,
}

/// The practice's inbox.
pub(crate) async fn inbox_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(practice): PageId<PracticeId>,
    Query(q): Query<InboxQuery>,
) -> PageResult {
    let closed = q.status == "closed";
    let status = if closed { ThreadStatus::Closed } else { ThreadStatus::Open };
    let threads = state.app.messages().inbox(&ctx.caller_as(&who), practice, status).await.map_err(WebError::page)?;
    Ok(render(&InboxPage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        practice: practice.to_string(),
        closed,
        threads: threads
            .into_iter()
            .map(|t| {
                let at = crate::present::moment(t.last);
                (t, at)
            })
            .collect(),
    }))
}

#[derive(Template)]
#[template(path = "messaging_settings.html")]
struct SettingsPage {
    nav: Option<Nav>,
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    practice: String,
    settings: SettingsView,
    /// The reply time as shown (as typed, when the page comes back with an error).
    reply_days: String,
}

/// The practice's messaging set-up (its admins).
pub(crate) async fn settings_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(practice): PageId<PracticeId>,
    Query(n): Query<Notice>,
) -> PageResult {
    let settings = state.app.messages().settings(&ctx.caller_as(&who), practice).await.map_err(WebError::page)?;
    Ok(render(&SettingsPage {
        nav: Some(Nav::new(&who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        notice: notice_text(&n),
        error: None,
        practice: practice.to_string(),
        reply_days: settings.reply_days.to_string(),
        settings,
    }))
}

/// Saves the practice's messaging set-up.
pub(crate) async fn set_settings(
    State(state): State<WebState>,
    PageId(practice): PageId<PracticeId>,
    CsrfForm(ctx, form): CsrfForm<SettingsSubmit>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let caller = ctx.caller_as(&who);
    let clinicians: Vec<_> =
        form.rest.keys().filter_map(|k| k.strip_prefix("clinician-")).filter_map(|id| id.parse().ok()).collect();
    let typed = app::messages::SettingsForm {
        on: !form.on.is_empty(),
        after_hours: form.after_hours,
        fee_notice: form.fee_notice,
        reply_days: form.reply_days,
        clinicians,
    };
    let saved = state.app.messages().set_settings(&caller, practice, &typed).await;
    match saved {
        Ok(()) => Ok(Redirect::to(&format!("/practices/{practice}/messaging?done=messaging-saved")).into_response()),
        Err(AppError::Invalid(errors)) => {
            // The page again with what was typed, so that nothing has to be typed twice.
            let stored = state.app.messages().settings(&caller, practice).await.map_err(WebError::page)?;
            let settings = SettingsView {
                on: typed.on,
                after_hours: typed.after_hours.clone(),
                fee_notice: typed.fee_notice.clone(),
                clinicians: stored
                    .clinicians
                    .into_iter()
                    .map(|(id, name, _)| (id, name, typed.clinicians.contains(&id)))
                    .collect(),
                ..stored
            };
            let page = SettingsPage {
                nav: Some(Nav::new(&who, ctx.csrf())),
                csrf: ctx.csrf().to_owned(),
                notice: None,
                error: Some(errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join(" ")),
                practice: practice.to_string(),
                reply_days: typed.reply_days.clone(),
                settings,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
        }
        Err(e) => Err(WebError::page(e)),
    }
}

/// The patient sends a document with a message: stored in their health documents (content
/// checked, encrypted) and shown in the conversation, where the practice's clinicians open it.
pub(crate) async fn attach(
    State(state): State<WebState>,
    PageId(id): PageId<ThreadId>,
    post: crate::extract::CsrfMultipart,
) -> PageResult {
    use futures_util::StreamExt;
    // The policy first: a stranger's (or the practice's) upload is refused before any of it is read.
    let caller = post.ctx.caller_as(&post.who);
    let patient = state.app.messages().attachment_patient(&caller, id).await.map_err(WebError::page)?;
    let upload = state.app.documents().begin_upload(&caller, patient).await.map_err(WebError::page)?;
    let (ctx, who, mut form) = match post.open(&state).await {
        Ok(opened) => opened,
        Err(refusal) => return Ok(refusal),
    };
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Ok(crate::error::Refusal::Malformed.into_response(crate::error::Surface::Page)),
        };
        if field.name() != Some("file") {
            continue;
        }
        let filename = field.file_name().unwrap_or("document").to_owned();
        let title = format!("Sent with a message: {}", filename.chars().take(100).collect::<String>());
        let stream = Box::pin(field.map(|r| r.map_err(|e| e.body_text())));
        return match upload.finish(&filename, Some(&title), stream).await {
            Ok(document) => {
                state.app.messages().attach(&ctx.caller_as(&who), id, &document).await.map_err(WebError::page)?;
                Ok(Redirect::to(&format!("/messages/{id}?done=document-sent")).into_response())
            }
            Err(
                e
                @ (AppError::TooLarge(_) | AppError::UnsupportedContent(_) | AppError::Invalid(_) | AppError::Gone(_)),
            ) => {
                let status = crate::error::status_of(&e);
                let message = match &e {
                    AppError::Invalid(f) => f.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" "),
                    other => other.to_string(),
                };
                let page =
                    thread_view(&state, &ctx, &who, id, Some(message), String::new(), &Notice::default()).await?;
                Ok((status, render(&page)).into_response())
            }
            Err(e) => Err(WebError::page(e)),
        };
    }
    let page =
        thread_view(&state, &ctx, &who, id, Some("Choose a file to send.".into()), String::new(), &Notice::default())
            .await?;
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&page)).into_response())
}

//! Documents: the pages and API endpoints. Uploads stream straight through to the application
//! (which encrypts as the bytes arrive); downloads stream back as attachments that a browser
//! never renders in the portal's origin (`Content-Security-Policy: sandbox`, `nosniff`).

use crate::WebState;
use crate::error::{Refusal, Surface, WebError};
use crate::extract::PageId;
use crate::extract::{Auth, CsrfForm, Ctx};
use crate::extract::{CsrfMultipart, read_small_field};
use crate::views::{DocLine, DocumentsPage, Nav, render};
use app::documents::Document;
use app::domain::{DocumentId, PatientId};
use app::{AppError, Download};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use futures_util::StreamExt;
use serde::Deserialize;

type PageResult = Result<Response, WebError>;

/// The types a document may be uploaded as through the API (the content decides in the end).
pub(crate) const UPLOAD_TYPES: &[&str] = &[
    "application/octet-stream",
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/heic",
    "image/tiff",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
];

fn human_size(bytes: i64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a size shown to one decimal place")]
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.0} KB", b / 1024.0)
    } else {
        format!("{:.1} MB", b / (1024.0 * 1024.0))
    }
}

fn line(d: &Document, can_read: bool, can_withdraw: bool) -> DocLine {
    DocLine {
        id: d.id.to_string(),
        title: d.title.clone(),
        category: d.category.label().to_owned(),
        clinical: d.category.is_clinical(),
        clinical_date: d.clinical_date.as_deref().map(crate::present::calendar_date),
        author: d.author.clone(),
        from: d.source_org_name.clone(),
        controller: d.controller_name.clone(),
        size: human_size(d.size),
        added: crate::present::date_of(d.created_at),
        hidden: d.hidden_at.is_some(),
        can_read,
        can_withdraw,
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DocsQuery {
    #[serde(default)]
    hidden: Option<String>,
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    page: Option<String>,
}

fn notice(q: &DocsQuery) -> Option<&'static str> {
    Some(match q.done.as_deref()? {
        "uploaded" => "Your document has been uploaded and stored securely.",
        "renamed" => "The document has been renamed.",
        "hidden" => "The document is hidden from your list. You can show hidden documents at any time.",
        "shown" => "The document is shown in your list again.",
        "deleted" => "The document has been deleted.",
        "withdrawn" => "The document has been withdrawn; the patient no longer sees it.",
        _ => return None,
    })
}

async fn documents_view(
    state: &WebState,
    ctx: &Ctx,
    who: &app::SignedIn,
    patient: PatientId,
    q: &DocsQuery,
    error: Option<(StatusCode, String)>,
) -> PageResult {
    let own = who.patient == Some(patient);
    let show_hidden = own && q.hidden.is_some();
    let page = q.page.as_deref().and_then(|p| p.trim().parse().ok()).unwrap_or(1);
    let list =
        state.app.documents().list(&ctx.caller_as(who), patient, show_hidden, page).await.map_err(WebError::page)?;
    // What the reader's role may do (the policy's own lists): reception sees what to file and
    // route, clinical staff read and withdraw.
    let (can_read, can_withdraw) = match who.staff {
        Some((_, role)) => (
            app::capabilities::may(role, app::capabilities::READ_CLINICAL_CONTENT),
            app::capabilities::may(role, app::capabilities::WITHDRAW_DOCUMENT),
        ),
        None => (true, false),
    };
    let page = DocumentsPage {
        nav: Some(Nav::new(who, ctx.csrf())),
        csrf: ctx.csrf().to_owned(),
        own,
        patient_id: patient.to_string(),
        show_hidden,
        notice: notice(q),
        error: error.as_ref().map(|(_, m)| m.clone()),
        docs: list.documents.iter().map(|d| line(d, can_read, can_withdraw)).collect(),
        page: list.page,
        pages: list.pages,
        max_mb: state.app.documents().max_mb(),
    };
    let status = error.map_or(StatusCode::OK, |(s, _)| s);
    Ok((status, render(&page)).into_response())
}

/// The patient's documents, with the upload form; for staff, what their practice sent.
pub(crate) async fn documents_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(patient): PageId<PatientId>,
    Query(q): Query<DocsQuery>,
) -> PageResult {
    documents_view(&state, &ctx, &who, patient, &q, None).await
}

/// Upload from the documents page: `multipart/form-data` with `csrf` first, an optional
/// `title`, then `file`. The policy is asked before the file is read; the file is streamed, and
/// nothing is kept unless all of it arrives and passes the checks.
pub(crate) async fn upload(
    State(state): State<WebState>,
    PageId(patient): PageId<PatientId>,
    post: CsrfMultipart,
) -> PageResult {
    // The policy first: a stranger's upload is refused (404, and recorded) before any of it is read.
    let upload =
        state.app.documents().begin_upload(&post.ctx.caller_as(&post.who), patient).await.map_err(WebError::page)?;
    let (ctx, who, mut form) = match post.open(&state).await {
        Ok(opened) => opened,
        Err(refusal) => return Ok(refusal),
    };
    let mut title: Option<String> = None;
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Ok(Refusal::Malformed.into_response(Surface::Page)),
        };
        match field.name().unwrap_or_default() {
            "title" => title = read_small_field(&mut field, 2048).await,
            "file" => {
                let filename = field.file_name().unwrap_or("document").to_owned();
                let stream = Box::pin(field.map(|r| r.map_err(|e| e.body_text())));
                let result = upload.finish(&filename, title.as_deref(), stream).await;
                return match result {
                    Ok(_) => Ok(Redirect::to(&format!("/patients/{patient}/documents?done=uploaded")).into_response()),
                    Err(
                        e @ (AppError::TooLarge(_)
                        | AppError::UnsupportedContent(_)
                        | AppError::Invalid(_)
                        | AppError::Gone(_)),
                    ) => {
                        let status = crate::error::status_of(&e);
                        let message = match &e {
                            AppError::Invalid(f) => f.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" "),
                            other => other.to_string(),
                        };
                        documents_view(&state, &ctx, &who, patient, &DocsQuery::default(), Some((status, message)))
                            .await
                    }
                    Err(e) => Err(WebError::page(e)),
                };
            }
            _ => {}
        }
    }
    documents_view(
        &state,
        &ctx,
        &who,
        patient,
        &DocsQuery::default(),
        Some((StatusCode::UNPROCESSABLE_ENTITY, "Choose a file to upload.".into())),
    )
    .await
}

pub(crate) fn content_disposition(filename: &str) -> HeaderValue {
    let ascii: String = filename
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ' | '(' | ')') { c } else { '_' })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A download as an HTTP response: always an attachment, sandboxed, never cached.
pub(crate) fn download_response(d: Download) -> Response {
    let media = if app::documents::content::Kind::from_media_type(&d.doc.media_type).is_some() {
        HeaderValue::from_str(&d.doc.media_type).unwrap_or(HeaderValue::from_static("application/octet-stream"))
    } else {
        HeaderValue::from_static("application/octet-stream")
    };
    let status = if d.range.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let mut r = Response::new(Body::from_stream(d.body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, media);
    h.insert(header::CONTENT_DISPOSITION, content_disposition(&d.doc.filename));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(d.length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox; default-src 'none'"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    if let Some((a, b)) = d.range
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{}", d.doc.size))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    r
}

pub(crate) fn range_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::RANGE).and_then(|v| v.to_str().ok())
}

/// Downloads a document (the patient, or staff of the practice that sent it).
pub(crate) async fn download(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    PageId(doc): PageId<DocumentId>,
    headers: HeaderMap,
) -> PageResult {
    let d = state.app.documents().open(&ctx.caller_as(&who), doc, range_of(&headers)).await.map_err(WebError::page)?;
    Ok(download_response(d))
}

#[derive(Debug, Deserialize)]
pub(crate) struct RenameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    back: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DocForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    show: Option<String>,
}

fn back_to(who: &app::SignedIn, done: &str) -> Response {
    let to = who.patient.map_or_else(|| "/".to_owned(), |p| format!("/patients/{p}/documents?done={done}"));
    Redirect::to(&to).into_response()
}

/// Renames one of the patient's documents.
pub(crate) async fn rename(
    State(state): State<WebState>,
    PageId(doc): PageId<DocumentId>,
    CsrfForm(ctx, form): CsrfForm<RenameForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let _ = form.back;
    match state.app.documents().rename(&ctx.caller_as(&who), doc, &form.title).await {
        Ok(()) => Ok(back_to(&who, "renamed")),
        Err(e @ AppError::Invalid(_)) => match who.patient {
            Some(p) => {
                let msg = e.to_string();
                let msg = if let AppError::Invalid(f) = &e {
                    f.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" ")
                } else {
                    msg
                };
                documents_view(
                    &state,
                    &ctx,
                    &who,
                    p,
                    &DocsQuery::default(),
                    Some((StatusCode::UNPROCESSABLE_ENTITY, msg)),
                )
                .await
            }
            None => Err(WebError::page(e)),
        },
        Err(e) => Err(WebError::page(e)),
    }
}

/// Hides a document from the patient's own list (or, with `show`, shows it again).
pub(crate) async fn hide(
    State(state): State<WebState>,
    PageId(doc): PageId<DocumentId>,
    CsrfForm(ctx, form): CsrfForm<DocForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let show = form.show.is_some();
    state.app.documents().hide(&ctx.caller_as(&who), doc, !show).await.map_err(WebError::page)?;
    Ok(back_to(&who, if show { "shown" } else { "hidden" }))
}

/// Deletes one of the patient's own uploads.
pub(crate) async fn delete(
    State(state): State<WebState>,
    PageId(doc): PageId<DocumentId>,
    CsrfForm(ctx, _): CsrfForm<DocForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    state.app.documents().delete(&ctx.caller_as(&who), doc).await.map_err(WebError::page)?;
    Ok(back_to(&who, "deleted"))
}

/// Staff of the practice that sent a document withdraw it.
pub(crate) async fn withdraw(
    State(state): State<WebState>,
    PageId(doc): PageId<DocumentId>,
    CsrfForm(ctx, _): CsrfForm<DocForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let patient = state.app.documents().withdraw(&ctx.caller_as(&who), doc).await.map_err(WebError::page)?;
    Ok(Redirect::to(&format!("/patients/{patient}/documents?done=withdrawn")).into_response())
}

// --- API ---

crate::extract::impl_has_csrf!(RenameForm, DocForm);

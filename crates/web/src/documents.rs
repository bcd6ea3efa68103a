//! Documents: the pages and API endpoints. Uploads stream straight through to the application
//! (which encrypts as the bytes arrive); downloads stream back as attachments that a browser
//! never renders in the portal's origin (`Content-Security-Policy: sandbox`, `nosniff`).

use crate::WebState;
use crate::ctx::{Auth, CsrfForm, Ctx, HasCsrf};
use crate::error::{ApiErrorBody, Refusal, Surface, WebError};
use crate::views::{DocLine, DocumentsPage, Nav, render};
use app::domain::{DocumentId, PatientId};
use app::{AppError, Caller, DocumentRow, Download, PushMeta};
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

type PageResult = Result<Response, WebError>;

use crate::api::api_id;
use crate::pages::id as page_id;

/// The types a document may be uploaded as through the API (the content decides in the end).
const UPLOAD_TYPES: &[&str] = &[
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

fn line(d: &DocumentRow, can_read: bool, can_withdraw: bool) -> DocLine {
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
    let docs = state.app.list_documents(&ctx.caller_as(who), patient, show_hidden).await.map_err(WebError::page)?;
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
        docs: docs.iter().map(|d| line(d, can_read, can_withdraw)).collect(),
        max_mb: state.app.max_document_mb(),
    };
    let status = error.map_or(StatusCode::OK, |(s, _)| s);
    Ok((status, render(&page)).into_response())
}

/// The patient's documents, with the upload form; for staff, what their practice sent.
pub(crate) async fn documents_page(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path(raw): Path<String>,
    Query(q): Query<DocsQuery>,
) -> PageResult {
    let patient: PatientId = page_id(&raw)?;
    documents_view(&state, &ctx, &who, patient, &q, None).await
}

async fn read_small_field(field: &mut axum::extract::multipart::Field<'_>, max: usize) -> Option<String> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = field.chunk().await {
        out.extend_from_slice(&chunk);
        if out.len() > max {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// A refusal to stream: the upload of someone the caller is not. The application decides (and
/// records the attempt), so the answer is the same 404 as for any other patient's page.
async fn deny_upload(state: &WebState, caller: &Caller, patient: PatientId) -> AppError {
    let empty = futures_util::stream::empty::<Result<Bytes, std::io::Error>>();
    match state.app.upload_document(caller, patient, "", None, empty).await {
        Err(e) => e,
        Ok(_) => AppError::Internal("an empty upload was accepted where it should have been refused".into()),
    }
}

/// Upload from the documents page: `multipart/form-data` with `csrf`, optional `title`, then
/// `file`. The file is streamed; nothing is kept unless all of it arrives and passes the checks.
pub(crate) async fn upload(State(state): State<WebState>, Path(raw): Path<String>, req: Request) -> PageResult {
    let patient: PatientId = page_id(&raw)?;
    let (mut parts, body) = req.into_parts();
    let ctx = match <Ctx as axum::extract::FromRequestParts<WebState>>::from_request_parts(&mut parts, &state).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let who = ctx.signed_in.clone().ok_or(WebError::page(AppError::Unauthenticated))?;
    if parts.headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Ok(Refusal::Csrf.into_response(Surface::Page));
    }
    let caller = ctx.caller_as(&who);
    if who.patient != Some(patient) {
        return Err(WebError::page(deny_upload(&state, &caller, patient).await));
    }
    let req = Request::from_parts(parts, body);
    let Ok(mut multipart) = Multipart::from_request(req, &state).await else {
        return Ok(Refusal::Malformed.into_response(Surface::Page));
    };
    let mut csrf_ok = false;
    let mut title: Option<String> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Ok(Refusal::Malformed.into_response(Surface::Page)),
        };
        let mut field = field;
        match field.name().unwrap_or_default() {
            "csrf" => {
                let token = read_small_field(&mut field, 512).await.unwrap_or_default();
                csrf_ok = state.app.csrf_ok(ctx.binding(), &token);
            }
            "title" if csrf_ok => title = read_small_field(&mut field, 2048).await,
            "file" if csrf_ok => {
                let filename = field.file_name().unwrap_or("document").to_owned();
                let stream = Box::pin(field.map(|r| r.map_err(|e| e.body_text())));
                let result = state.app.upload_document(&caller, patient, &filename, title.as_deref(), stream).await;
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
            _ => {
                if !csrf_ok {
                    return Ok(Refusal::Csrf.into_response(Surface::Page));
                }
            }
        }
    }
    if !csrf_ok {
        return Ok(Refusal::Csrf.into_response(Surface::Page));
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

fn content_disposition(filename: &str) -> HeaderValue {
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
fn download_response(d: Download) -> Response {
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

fn range_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::RANGE).and_then(|v| v.to_str().ok())
}

/// Downloads a document (the patient, or staff of the practice that sent it).
pub(crate) async fn download(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> PageResult {
    let doc: DocumentId = page_id(&raw)?;
    let d = state.app.open_document(&ctx.caller_as(&who), doc, range_of(&headers)).await.map_err(WebError::page)?;
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

impl HasCsrf for RenameForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct DocForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    show: Option<String>,
}

impl HasCsrf for DocForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

fn back_to(who: &app::SignedIn, done: &str) -> Response {
    let to = who.patient.map_or_else(|| "/".to_owned(), |p| format!("/patients/{p}/documents?done={done}"));
    Redirect::to(&to).into_response()
}

/// Renames one of the patient's documents.
pub(crate) async fn rename(
    State(state): State<WebState>,
    Path(raw): Path<String>,
    CsrfForm(ctx, form): CsrfForm<RenameForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let doc: DocumentId = page_id(&raw)?;
    let _ = form.back;
    match state.app.rename_document(&ctx.caller_as(&who), doc, &form.title).await {
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
    Path(raw): Path<String>,
    CsrfForm(ctx, form): CsrfForm<DocForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let doc: DocumentId = page_id(&raw)?;
    let show = form.show.is_some();
    state.app.hide_document(&ctx.caller_as(&who), doc, !show).await.map_err(WebError::page)?;
    Ok(back_to(&who, if show { "shown" } else { "hidden" }))
}

/// Deletes one of the patient's own uploads.
pub(crate) async fn delete(
    State(state): State<WebState>,
    Path(raw): Path<String>,
    CsrfForm(ctx, _): CsrfForm<DocForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let doc: DocumentId = page_id(&raw)?;
    state.app.delete_document(&ctx.caller_as(&who), doc).await.map_err(WebError::page)?;
    Ok(back_to(&who, "deleted"))
}

/// Staff of the practice that sent a document withdraw it.
pub(crate) async fn withdraw(
    State(state): State<WebState>,
    Path(raw): Path<String>,
    CsrfForm(ctx, _): CsrfForm<DocForm>,
) -> PageResult {
    let who = ctx.require_signed_in()?;
    let doc: DocumentId = page_id(&raw)?;
    let patient = state.app.withdraw_document(&ctx.caller_as(&who), doc).await.map_err(WebError::page)?;
    Ok(Redirect::to(&format!("/patients/{patient}/documents?done=withdrawn")).into_response())
}

// --- API ---

/// A document's details.
#[derive(Serialize, ToSchema)]
pub(crate) struct DocumentView {
    id: String,
    title: String,
    filename: String,
    /// `discharge_summary`, `referral`, `clinic_letter`, `result`, `correspondence` or `patient_upload`.
    category: String,
    /// The type detected from its content.
    media_type: String,
    size: i64,
    /// `YYYY-MM-DD`, for clinical documents.
    clinical_date: Option<String>,
    author: Option<String>,
    /// The organisation that sent it.
    source: String,
    /// The data controller (who is told if it is ever exposed).
    controller: String,
    controller_id: String,
    /// When it was stored (seconds since the epoch).
    created_at: i64,
    hidden: bool,
}

impl From<&DocumentRow> for DocumentView {
    fn from(d: &DocumentRow) -> Self {
        Self {
            id: d.id.to_string(),
            title: d.title.clone(),
            filename: d.filename.clone(),
            category: d.category.as_str().to_owned(),
            media_type: d.media_type.clone(),
            size: d.size,
            clinical_date: d.clinical_date.clone(),
            author: d.author.clone(),
            source: d.source_org_name.clone(),
            controller: d.controller_name.clone(),
            controller_id: d.controller_id.clone(),
            created_at: d.created_at,
            hidden: d.hidden_at.is_some(),
        }
    }
}

/// A patient's documents: the patient (hidden ones too), or staff (those their practice sent).
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/documents",
    params(("patient_id" = String, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The documents, newest first", body = [DocumentView]),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "No such patient, or not yours to see", body = ApiErrorBody),
    ))]
pub(crate) async fn api_list(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path(raw): Path<String>,
) -> Result<Json<Vec<DocumentView>>, WebError> {
    let patient: PatientId = api_id(&raw)?;
    let docs = state.app.list_documents(&ctx.caller_as(&who), patient, true).await.map_err(WebError::api)?;
    Ok(Json(docs.iter().map(DocumentView::from).collect()))
}

/// How an upload is named.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default)]
pub(crate) struct UploadQuery {
    /// The file's name (it is cleaned; the extension follows the detected type).
    filename: String,
    /// A title to show instead of the file name.
    title: Option<String>,
}

/// Uploads a document of the patient's own. The body is the file itself
/// (`Content-Type: application/octet-stream` or the file's type); it is streamed and encrypted
/// as it arrives, and refused (nothing kept) if its content is not an accepted type.
#[utoipa::path(post, path = "/api/v1/patients/{patient_id}/documents",
    params(("patient_id" = String, Path, description = "The patient's id"), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file"),
    responses(
        (status = 201, description = "Stored", body = DocumentView),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "Not your record", body = ApiErrorBody),
        (status = 413, description = "Too large, or over the patient's quota", body = ApiErrorBody),
        (status = 415, description = "Not an accepted type of file", body = ApiErrorBody),
    ))]
pub(crate) async fn api_upload(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path(raw): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let patient: PatientId = api_id(&raw)?;
    let caller = ctx.caller_as(&who);
    if who.patient != Some(patient) {
        return Err(WebError::api(deny_upload(&state, &caller, patient).await));
    }
    if headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return Ok(Refusal::Csrf.into_response(Surface::Api));
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    // Not the types a cross-site form can send (urlencoded, multipart, text/plain): those would
    // need no CORS preflight.
    if !UPLOAD_TYPES.contains(&ct.as_str()) {
        return Ok(Refusal::UnsupportedType.into_response(Surface::Api));
    }
    let filename = if q.filename.trim().is_empty() { "document" } else { q.filename.as_str() };
    let stream = body.into_data_stream();
    let doc = state
        .app
        .upload_document(&caller, patient, filename, q.title.as_deref(), stream)
        .await
        .map_err(WebError::api)?;
    Ok((StatusCode::CREATED, Json(DocumentView::from(&doc))).into_response())
}

/// Downloads a document's content (`Range` requests are supported).
#[utoipa::path(get, path = "/api/v1/documents/{document_id}/content",
    params(("document_id" = String, Path, description = "The document's id")),
    responses(
        (status = 200, description = "The document, as an attachment", content_type = "application/octet-stream"),
        (status = 206, description = "The range asked for"),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "No such document, or not yours to see", body = ApiErrorBody),
        (status = 410, description = "The document's key was destroyed (erased)", body = ApiErrorBody),
        (status = 416, description = "The range is outside the document", body = ApiErrorBody),
    ))]
pub(crate) async fn api_download(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let doc: DocumentId = api_id(&raw)?;
    let d = state.app.open_document(&ctx.caller_as(&who), doc, range_of(&headers)).await.map_err(WebError::api)?;
    Ok(download_response(d))
}

/// The answer to a push.
#[derive(Serialize, ToSchema)]
pub(crate) struct PushResponse {
    /// The document's id in Tiaki.
    id: String,
    /// False when this `source_document_id` had been pushed before (nothing changed).
    created: bool,
}

/// Pushes a document in for a patient, as an organisation's system. Authenticate with
/// `Authorization: Bearer <client token>`. The body is `multipart/form-data` with a `metadata`
/// part (JSON: `nhi`, `category`, `title`, `clinical_date`, `author`, `source_document_id`, and
/// optionally `filename`, `controller_id`, `controller_name`) followed by a `file` part.
/// Pushing the same `source_document_id` again changes nothing. A practice's client reaches its
/// enrolled patients; another organisation's, the patients of practices that agreed to receive
/// its documents. Anyone else is 404, and the attempt is logged.
#[utoipa::path(post, path = "/api/v1/documents",
    request_body(content_type = "multipart/form-data", description = "metadata (JSON), then file"),
    responses(
        (status = 201, description = "Stored", body = PushResponse),
        (status = 200, description = "Already stored under this source_document_id", body = PushResponse),
        (status = 401, description = "Missing, wrong or revoked client credentials", body = ApiErrorBody),
        (status = 404, description = "No such patient within this client's reach", body = ApiErrorBody),
        (status = 413, description = "Too large", body = ApiErrorBody),
        (status = 415, description = "Not an accepted type of file", body = ApiErrorBody),
        (status = 422, description = "Bad metadata", body = ApiErrorBody),
    ))]
pub(crate) async fn push(State(state): State<WebState>, req: Request) -> Result<Response, WebError> {
    let (mut parts, body) = req.into_parts();
    let ctx = match <Ctx as axum::extract::FromRequestParts<WebState>>::from_request_parts(&mut parts, &state).await {
        Ok(c) => c,
        Err(r) => return Ok(r),
    };
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let principal = state.app.authenticate_client(token.trim()).await.map_err(WebError::api)?;
    let Some(principal) = principal else {
        let mut r = WebError::api(AppError::Unauthenticated).into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tiaki\""));
        return Ok(r);
    };
    let caller = app::Caller::new(principal, ctx.ip, &ctx.user_agent, &ctx.request_id);
    let req = Request::from_parts(parts, body);
    let Ok(mut multipart) = Multipart::from_request(req, &state).await else {
        return Ok(Refusal::UnsupportedType.into_response(Surface::Api));
    };
    let mut meta: Option<PushMeta> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return Ok(Refusal::Malformed.into_response(Surface::Api)),
        };
        match field.name().unwrap_or_default() {
            "metadata" => {
                let text = read_small_field(&mut field, 16 * 1024).await.unwrap_or_default();
                match serde_json::from_str::<PushMeta>(&text) {
                    Ok(m) => meta = Some(m),
                    Err(e) => {
                        return Err(WebError::api(AppError::field(
                            "metadata",
                            format!("The metadata is not valid: {e}"),
                        )));
                    }
                }
            }
            "file" => {
                let Some(meta) = meta.as_ref() else {
                    return Err(WebError::api(AppError::field("metadata", "Send the metadata part before the file.")));
                };
                let stream = Box::pin(field.map(|r| r.map_err(|e| e.body_text())));
                let (doc, created) = state.app.push_document(&caller, meta, stream).await.map_err(WebError::api)?;
                let status = if created { StatusCode::CREATED } else { StatusCode::OK };
                return Ok((status, Json(PushResponse { id: doc.id.to_string(), created })).into_response());
            }
            _ => {}
        }
    }
    Err(WebError::api(AppError::field("file", "Send the document in a part called file.")))
}

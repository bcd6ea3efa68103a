//! The documents API: list, upload and download for the signed-in patient (or their practice),
//! and the push endpoint organisations' systems use with their API-client bearer token.

use crate::WebState;
use crate::error::{ApiErrorBody, Refusal, Surface, WebError};
use crate::extract::ApiId;
use crate::extract::Auth;
use crate::extract::{ClientAuth, read_small_field};
use crate::pages::documents::{UPLOAD_TYPES, download_response, range_of};
use app::documents::Document;
use app::domain::{DocumentId, PatientId};
use app::{AppError, PushMeta};
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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

impl From<&Document> for DocumentView {
    fn from(d: &Document) -> Self {
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

/// Which page of a list (from 1).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub(crate) struct PageQuery {
    /// The page, from 1 (100 documents a page; anything else is the first page).
    page: Option<String>,
}

/// A patient's documents, newest first, 100 a page: the patient (hidden ones too), or staff
/// (those their practice sent). `X-Total-Count` says how many there are in all.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/documents",
    params(("patient_id" = String, Path, description = "The patient's id"), PageQuery),
    responses(
        (status = 200, description = "A page of the documents, newest first", body = [DocumentView],
            headers(("X-Total-Count" = i64, description = "How many documents there are in all"))),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "No such patient, or not yours to see", body = ApiErrorBody),
    ))]
pub(crate) async fn api_list(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    ApiId(patient): ApiId<PatientId>,
    Query(q): Query<PageQuery>,
) -> Result<Response, WebError> {
    let page = q.page.as_deref().and_then(|p| p.trim().parse().ok()).unwrap_or(1);
    let list = state.app.documents().list(&ctx.caller_as(&who), patient, true, page).await.map_err(WebError::api)?;
    let views: Vec<DocumentView> = list.documents.iter().map(DocumentView::from).collect();
    Ok(([("x-total-count", list.total.to_string())], Json(views)).into_response())
}

/// How an upload is named.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
        (status = 409, description = "The record's key changed while the file arrived; send it again", body = ApiErrorBody),
        (status = 410, description = "The record was erased; nothing more is taken", body = ApiErrorBody),
        (status = 413, description = "Too large, or over the patient's quota or document count", body = ApiErrorBody),
        (status = 415, description = "Not an accepted type of file", body = ApiErrorBody),
        (status = 422, description = "An empty file, or one that did not arrive whole", body = ApiErrorBody),
        (status = 429, description = "Three uploads are already arriving from this account; try again shortly", body = ApiErrorBody),
    ))]
pub(crate) async fn api_upload(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    ApiId(patient): ApiId<PatientId>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let upload = state.app.documents().begin_upload(&ctx.caller_as(&who), patient).await.map_err(WebError::api)?;
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
    let doc = upload.finish(filename, q.title.as_deref(), stream).await.map_err(WebError::api)?;
    Ok((StatusCode::CREATED, Json(DocumentView::from(&doc))).into_response())
}

/// Downloads a document's content (`Range` requests are supported).
#[utoipa::path(get, path = "/api/v1/documents/{document_id}/content",
    params(("document_id" = String, Path, description = "The document's id")),
    responses(
        (status = 200, description = "The document, as an attachment, in the type its content was checked to be",
            content(
                (Vec<u8> = "application/pdf"), (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"),
                (Vec<u8> = "image/heic"), (Vec<u8> = "image/tiff"), (Vec<u8> = "text/plain"),
                (Vec<u8> = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            )),
        (status = 206, description = "The range asked for",
            content(
                (Vec<u8> = "application/pdf"), (Vec<u8> = "image/png"), (Vec<u8> = "image/jpeg"),
                (Vec<u8> = "image/heic"), (Vec<u8> = "image/tiff"), (Vec<u8> = "text/plain"),
                (Vec<u8> = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            )),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "No such document, or not yours to see", body = ApiErrorBody),
        (status = 410, description = "The document's key was destroyed (erased)", body = ApiErrorBody),
        (status = 416, description = "The range is outside the document", body = ApiErrorBody),
    ))]
pub(crate) async fn api_download(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    ApiId(doc): ApiId<DocumentId>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let d = state.app.documents().open(&ctx.caller_as(&who), doc, range_of(&headers)).await.map_err(WebError::api)?;
    Ok(download_response(d))
}

/// A push: two parts, in this order.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the multipart body the handler reads part by part")]
pub(crate) struct PushUpload {
    /// The document's details as JSON: `nhi`, `category` (`discharge_summary`, `referral`,
    /// `clinic_letter`, `result`, `correspondence`), `title`, `clinical_date` (YYYY-MM-DD),
    /// `author`, `source_document_id`, and optionally `filename`, `controller_id` (your own
    /// organisation's HPI id) and `controller_name`.
    metadata: String,
    /// The file itself.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
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
/// its documents. Anyone else is 404, and the attempt is logged. A system suspended by the
/// detectors (far beyond its usual volume) gets 401 until an operator resumes it.
#[utoipa::path(post, path = "/api/v1/documents",
    request_body(content = PushUpload, content_type = "multipart/form-data", description = "metadata (JSON), then file"),
    responses(
        (status = 201, description = "Stored", body = PushResponse),
        (status = 200, description = "Already stored under this source_document_id", body = PushResponse),
        (status = 400, description = "The multipart body could not be read", body = ApiErrorBody),
        (status = 401, description = "Missing, wrong or revoked client credentials", body = ApiErrorBody),
        (status = 404, description = "No such patient within this client's reach", body = ApiErrorBody),
        (status = 409, description = "This source_document_id names another patient's or a withdrawn document", body = ApiErrorBody),
        (status = 410, description = "The patient's record was erased", body = ApiErrorBody),
        (status = 413, description = "Too large, or the patient has the most documents kept", body = ApiErrorBody),
        (status = 415, description = "Not an accepted type of file", body = ApiErrorBody),
        (status = 422, description = "Bad metadata, or an empty file", body = ApiErrorBody),
        (status = 429, description = "Three uploads are already arriving from this system; try again shortly", body = ApiErrorBody),
        (status = 503, description = "Documents are switched off for now (the kill switch): send it again after Retry-After seconds; nothing was kept", body = ApiErrorBody),
    ))]
pub(crate) async fn push(
    State(state): State<WebState>,
    ClientAuth(caller): ClientAuth,
    req: Request,
) -> Result<Response, WebError> {
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
                let (doc, created) = state.app.documents().push(&caller, meta, stream).await.map_err(WebError::api)?;
                let status = if created { StatusCode::CREATED } else { StatusCode::OK };
                return Ok((status, Json(PushResponse { id: doc.id.to_string(), created })).into_response());
            }
            _ => {}
        }
    }
    Err(WebError::api(AppError::field("file", "Send the document in a part called file.")))
}

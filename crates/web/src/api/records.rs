//! The records API: `POST /fhir/R4` for a practice's own system (transaction and batch Bundles,
//! answered with a response Bundle or an `OperationOutcome`), and the patient's (or their
//! clinicians') record as FHIR R4 resources.

use crate::WebState;
use crate::error::{ApiErrorBody, WebError};
use crate::extract::{ApiId, Auth, ClientAuth};
use app::AppError;
use app::domain::{PatientId, RecordCategory, RecordId};
use app::records::fhir::{Issue, OperationOutcome};
use app::records::ingest::MAX_BUNDLE_BYTES;
use app::records::{RecordItem, Summary};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// FHIR's JSON media type.
const FHIR_JSON: &str = "application/fhir+json";

fn fhir_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    r
}

fn outcome(status: u16, issue: Issue) -> Response {
    fhir_response(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), &OperationOutcome::new(vec![issue]))
}

/// Sends items of patients' records in, as a practice's own system (bearer token with the
/// records scope). Patients are matched by NHI and must be enrolled at the practice.
#[utoipa::path(post, path = "/fhir/R4",
    request_body(content = Object, content_type = "application/fhir+json", description = "A FHIR R4 Bundle of type transaction or batch"),
    responses(
        (status = 200, description = "Applied: a transaction-response or batch-response Bundle", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "Not a FHIR JSON Bundle: an OperationOutcome", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "Missing, wrong or revoked client credentials", body = ApiErrorBody),
        (status = 403, description = "This client may not send health records: an OperationOutcome", body = Object, content_type = "application/fhir+json"),
        (status = 404, description = "No patient with that NHI is enrolled at the practice: an OperationOutcome", body = Object, content_type = "application/fhir+json"),
        (status = 409, description = "An older version after a newer one, or another patient's id: an OperationOutcome", body = Object, content_type = "application/fhir+json"),
        (status = 413, description = "Too large or too many entries: an OperationOutcome", body = Object, content_type = "application/fhir+json"),
        (status = 415, description = "Not JSON: an OperationOutcome", body = Object, content_type = "application/fhir+json"),
        (status = 422, description = "Problems with the resources: an OperationOutcome listing each at its FHIRPath", body = Object, content_type = "application/fhir+json"),
        (status = 503, description = "Health records are switched off for now (the kill switch): send the Bundle again after Retry-After seconds; nothing was kept", body = Object, content_type = "application/fhir+json"),
    ))]
pub(crate) async fn ingest(State(state): State<WebState>, ClientAuth(caller): ClientAuth, req: Request) -> Response {
    let json_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if !matches!(json_type.as_deref(), Some("application/fhir+json" | "application/json")) {
        return outcome(415, Issue::error("not-supported", "", "Send the Bundle as application/fhir+json."));
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_BUNDLE_BYTES).await else {
        return outcome(
            413,
            Issue::error(
                "too-costly",
                "Bundle",
                format!("A Bundle may be at most {} MiB; split it.", MAX_BUNDLE_BYTES >> 20),
            ),
        );
    };
    match state.app.records().ingest(&caller, &body).await {
        Ok(bundle) => fhir_response(StatusCode::OK, &bundle),
        Err(refused) => {
            let mut r = fhir_response(
                StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST),
                &refused.outcome,
            );
            if refused.status == 503 {
                r.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("300"));
            }
            r
        }
    }
}

/// `?category=` for the record.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RecordQuery {
    /// `allergies`, `conditions`, `medications`, `immunisations`, `results`, `notes` or `recalls`.
    #[serde(default)]
    category: Option<String>,
}

/// A `searchset` Bundle, serialised straight from the typed resources.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchSet {
    resource_type: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    total: usize,
    entry: Vec<SearchEntry>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchEntry {
    full_url: String,
    resource: app::records::fhir::Resource,
    search: SearchMode,
}

#[derive(serde::Serialize)]
struct SearchMode {
    mode: &'static str,
}

fn searchset(items: Vec<RecordItem>) -> SearchSet {
    SearchSet {
        resource_type: "Bundle",
        kind: "searchset",
        total: items.len(),
        entry: items
            .into_iter()
            .map(|i| SearchEntry {
                full_url: format!("urn:uuid:{}", i.id),
                resource: i.into_fhir(),
                search: SearchMode { mode: "match" },
            })
            .collect(),
    }
}

/// A patient's health record as a FHIR `searchset` Bundle: for the patient, what their practice
/// released to them; for the practice's clinicians, what it sent (held and hidden items tagged).
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/records",
    params(("patient_id" = String, Path, description = "The patient's id"), RecordQuery),
    responses(
        (status = 200, description = "The items, newest first", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "No such patient or category, or not yours to see", body = ApiErrorBody),
        (status = 410, description = "The record was erased", body = ApiErrorBody),
    ))]
pub(crate) async fn api_record(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    ApiId(patient): ApiId<PatientId>,
    Query(q): Query<RecordQuery>,
) -> Result<Response, WebError> {
    let category = match q.category.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(RecordCategory::parse(c).ok_or(WebError::api(AppError::NotFound))?),
    };
    let Summary { items, .. } =
        state.app.records().record(&ctx.caller_as(&who), patient, category).await.map_err(WebError::api)?;
    Ok(fhir_response(StatusCode::OK, &searchset(items)))
}

/// One item of a record, as a FHIR resource.
#[utoipa::path(get, path = "/api/v1/records/{record_id}",
    params(("record_id" = String, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The item", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "No such item, or not yours to see (held, hidden, or kept back)", body = ApiErrorBody),
    ))]
pub(crate) async fn api_item(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    ApiId(id): ApiId<RecordId>,
) -> Result<Response, WebError> {
    let view = state.app.records().item(&ctx.caller_as(&who), id).await.map_err(WebError::api)?;
    Ok(fhir_response(StatusCode::OK, &view.item.as_fhir()))
}

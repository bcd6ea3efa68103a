//! The `OpenAPI` description of every JSON endpoint, served at `/api/openapi.json` (kept in
//! step with the router by a test).

use axum::Json;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

/// The `OpenAPI` description of every JSON endpoint.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tiaki API", description = "Patient portal API. Authenticate with a Tiaki session cookie."),
    paths(
        crate::api::me,
        crate::api::patient,
        crate::api::enrol,
        crate::api::patient_audit_events,
        crate::api::audit_events,
        crate::api::inclusion_proof,
        crate::api::consistency_proof,
        crate::api::documents::api_list,
        crate::api::documents::api_upload,
        crate::api::documents::api_download,
        crate::api::documents::push,
        crate::api::records::ingest,
        crate::api::records::api_record,
        crate::api::records::api_item,
        crate::api::appointments::sync,
        crate::api::appointments::slots,
        crate::api::appointments::appointments
    ),
    components(schemas(
        crate::api::Me,
        crate::api::PatientView,
        crate::api::EnrolRequest,
        crate::api::EnrolResponse,
        crate::error::ApiErrorBody,
        crate::api::Proof,
        crate::api::documents::DocumentView,
        crate::api::documents::PushResponse,
        crate::api::documents::PushUpload
    ))
)]
pub struct ApiDoc;

pub(crate) async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

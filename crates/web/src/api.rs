//! The JSON API, described by an `OpenAPI` document at `/api/openapi.json` (kept in step with the
//! router by a test). Authenticated by the session cookie; state-changing calls must be JSON
//! (which a cross-site form cannot send without a CORS preflight, and none is allowed).

use crate::WebState;
use crate::ctx::{Auth, form_refusal};
use crate::error::{ApiErrorBody, Surface, WebError};
use app::domain::{PatientId, PracticeId};
use app::{AppError, Enrolled};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// The `OpenAPI` description of every JSON endpoint.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tiaki API", description = "Patient portal API. Authenticate with a Tiaki session cookie."),
    paths(me, patient, enrol),
    components(schemas(Me, PatientView, EnrolRequest, EnrolResponse, ApiErrorBody))
)]
pub struct ApiDoc;

pub(crate) async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

fn api_id<T: std::str::FromStr>(raw: &str) -> Result<T, WebError> {
    raw.parse().map_err(|_| WebError::api(AppError::NotFound))
}

/// The signed-in account.
#[derive(Serialize, ToSchema)]
pub(crate) struct Me {
    /// The account id.
    account: String,
    /// `patient`, `staff` or `operator`.
    kind: String,
    /// The display name.
    name: String,
    /// For patients, their patient id.
    patient: Option<String>,
    /// For staff, their practice id.
    practice: Option<String>,
    /// For staff, their role.
    role: Option<String>,
}

/// Who is signed in.
#[utoipa::path(get, path = "/api/v1/me", responses(
    (status = 200, description = "The signed-in account", body = Me),
    (status = 401, description = "Not signed in", body = ApiErrorBody),
))]
pub(crate) async fn me(Auth(_, who): Auth) -> Json<Me> {
    Json(Me {
        account: who.account.to_string(),
        kind: who.kind.as_str().to_owned(),
        name: who.name.clone(),
        patient: who.patient.map(|p| p.to_string()),
        practice: who.staff.map(|(p, _)| p.to_string()),
        role: who.staff.map(|(_, r)| r.as_str().to_owned()),
    })
}

/// A patient's details.
#[derive(Serialize, ToSchema)]
pub(crate) struct PatientView {
    id: String,
    nhi: String,
    name: String,
    date_of_birth: String,
    email: String,
    /// Whether they have activated their account.
    active: bool,
    /// The practices they are enrolled at.
    practices: Vec<String>,
}

/// A patient's record: the patient themself, or staff of a practice they are enrolled at.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}",
    params(("patient_id" = String, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The patient", body = PatientView),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "No such patient, or not yours to see", body = ApiErrorBody),
    ))]
pub(crate) async fn patient(
    State(state): State<WebState>,
    Auth(_, who): Auth,
    Path(raw): Path<String>,
) -> Result<Json<PatientView>, WebError> {
    let id: PatientId = api_id(&raw)?;
    let (p, practices) = state.app.view_patient(&who.principal, id).await.map_err(WebError::api)?;
    Ok(Json(PatientView {
        id: p.id.to_string(),
        nhi: p.nhi,
        name: p.name,
        date_of_birth: p.date_of_birth,
        email: p.email,
        active: p.active,
        practices: practices.into_iter().map(|p| p.id.to_string()).collect(),
    }))
}

/// A patient to enrol.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnrolRequest {
    /// NHI number, e.g. ZZZ0016.
    nhi: String,
    /// Full name.
    name: String,
    /// `YYYY-MM-DD`.
    date_of_birth: String,
    /// Where the activation link is sent.
    email: String,
}

/// What enrolling did.
#[derive(Serialize, ToSchema)]
pub(crate) struct EnrolResponse {
    /// The patient's id.
    patient: String,
    /// `created`, `enrolled_existing` or `already_enrolled`.
    outcome: String,
}

/// Enrols a patient whose identity the practice has checked; they are emailed an activation link.
#[utoipa::path(post, path = "/api/v1/practices/{practice_id}/patients",
    params(("practice_id" = String, Path, description = "The practice's id")),
    request_body = EnrolRequest,
    responses(
        (status = 201, description = "Enrolled", body = EnrolResponse),
        (status = 400, description = "Malformed JSON", body = ApiErrorBody),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "No such practice, or not yours", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
        (status = 422, description = "Invalid fields; nothing changed", body = ApiErrorBody),
    ))]
pub(crate) async fn enrol(
    State(state): State<WebState>,
    Auth(_, who): Auth,
    Path(raw): Path<String>,
    body: Result<Json<EnrolRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    let practice: PracticeId = api_id(&raw).map_err(IntoResponse::into_response)?;
    let Json(req) = body.map_err(|r| {
        form_refusal(
            &r.body_text(),
            match r.status() {
                StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
                s => s,
            },
        )
        .into_response(Surface::Api)
    })?;
    let form = app::EnrolForm { nhi: req.nhi, name: req.name, date_of_birth: req.date_of_birth, email: req.email };
    let outcome =
        state.app.enrol_patient(&who.principal, practice, &form).await.map_err(|e| WebError::api(e).into_response())?;
    let (id, outcome, status) = match outcome {
        Enrolled::New(id) => (id, "created", StatusCode::CREATED),
        Enrolled::Existing(id) => (id, "enrolled_existing", StatusCode::CREATED),
        Enrolled::AlreadyEnrolled(id) => (id, "already_enrolled", StatusCode::OK),
    };
    Ok((status, Json(EnrolResponse { patient: id.to_string(), outcome: outcome.into() })).into_response())
}

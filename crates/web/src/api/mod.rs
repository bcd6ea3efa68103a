//! The JSON API, described by an `OpenAPI` document at `/api/openapi.json` (kept in step with the
//! router by a test). Authenticated by the session cookie; state-changing calls must be JSON
//! (which a cross-site form cannot send without a CORS preflight, and none is allowed).

pub(crate) mod appointments;
pub(crate) mod documents;
pub(crate) mod records;

use crate::WebState;
use crate::error::{ApiErrorBody, Surface, WebError};
use crate::extract::ApiId;
use crate::extract::{Auth, form_refusal};
use app::domain::{PatientId, PracticeId};
use app::{AppError, Enrolled};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    Auth(ctx, who): Auth,
    ApiId(id): ApiId<PatientId>,
) -> Result<Json<PatientView>, WebError> {
    let (p, practices) = state.app.practices().view_patient(&ctx.caller_as(&who), id).await.map_err(WebError::api)?;
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
    /// The patient's id (none while the person has yet to confirm).
    patient: Option<String>,
    /// `created`, `already_enrolled`, or `awaiting_confirmation`: the NHI is already registered,
    /// and the person will be asked to confirm; nothing more is said, whatever the details given.
    outcome: String,
}

/// Enrols a patient whose identity the practice has checked; they are emailed an activation link.
#[utoipa::path(post, path = "/api/v1/practices/{practice_id}/patients",
    params(("practice_id" = String, Path, description = "The practice's id")),
    request_body = EnrolRequest,
    responses(
        (status = 200, description = "Already enrolled here", body = EnrolResponse),
        (status = 201, description = "Enrolled", body = EnrolResponse),
        (status = 202, description = "The person will be asked to confirm", body = EnrolResponse),
        (status = 400, description = "Malformed JSON", body = ApiErrorBody),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "No such practice, or not yours", body = ApiErrorBody),
        (status = 415, description = "Not JSON", body = ApiErrorBody),
        (status = 422, description = "Invalid fields; nothing changed", body = ApiErrorBody),
    ))]
pub(crate) async fn enrol(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    ApiId(practice): ApiId<PracticeId>,
    body: Result<Json<EnrolRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
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
    let outcome = state
        .app
        .practices()
        .enrol(&ctx.caller_as(&who), practice, &form)
        .await
        .map_err(|e| WebError::api(e).into_response())?;
    let (id, outcome, status) = match outcome {
        Enrolled::New(id) => (Some(id), "created", StatusCode::CREATED),
        Enrolled::AlreadyEnrolled(id) => (Some(id), "already_enrolled", StatusCode::OK),
        Enrolled::AwaitingConfirmation => (None, "awaiting_confirmation", StatusCode::ACCEPTED),
    };
    let patient = id.map(|id| id.to_string());
    Ok((status, Json(EnrolResponse { patient, outcome: outcome.into() })).into_response())
}

/// A patient's access history as a FHIR R4 `Bundle` of `AuditEvent` resources (IHE BALP style):
/// for the patient, or their practice's privacy officer.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/audit-events",
    params(("patient_id" = String, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "A FHIR Bundle of AuditEvent", content_type = "application/fhir+json", body = Object),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "No such patient, or not yours to see", body = ApiErrorBody),
    ))]
pub(crate) async fn patient_audit_events(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    ApiId(id): ApiId<PatientId>,
) -> Result<Response, WebError> {
    let bundle = state.app.access_log().export_patient(&ctx.caller_as(&who), id).await.map_err(WebError::api)?;
    Ok(fhir(bundle))
}

fn fhir(v: serde_json::Value) -> Response {
    let mut r = Json(v).into_response();
    r.headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/fhir+json"));
    r.headers_mut().insert(
        axum::http::header::CONTENT_DISPOSITION,
        axum::http::HeaderValue::from_static("attachment; filename=\"audit-events.json\""),
    );
    r
}

/// A time range of the access log.
#[derive(Deserialize, utoipa::IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub(crate) struct Range {
    /// First day, `YYYY-MM-DD` (UTC).
    from: String,
    /// Last day, `YYYY-MM-DD` (UTC), inclusive.
    to: String,
}

/// Every access event in a date range, as a FHIR `Bundle` (operators).
#[utoipa::path(get, path = "/api/v1/audit-events", params(Range),
    responses(
        (status = 200, description = "A FHIR Bundle of AuditEvent", content_type = "application/fhir+json", body = Object),
        (status = 401, description = "Not signed in", body = ApiErrorBody),
        (status = 404, description = "Not an operator", body = ApiErrorBody),
        (status = 422, description = "Bad dates", body = ApiErrorBody),
    ))]
pub(crate) async fn audit_events(
    State(state): State<WebState>,
    Auth(ctx, who): Auth,
    range: Result<Query<Range>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let range = range.map(|Query(r)| r).unwrap_or_default();
    let bundle = state
        .app
        .access_log()
        .export_range(&ctx.caller_as(&who), &range.from, &range.to)
        .await
        .map_err(WebError::api)?;
    Ok(fhir(bundle))
}

/// An RFC 9162 proof.
#[derive(Serialize, ToSchema)]
pub(crate) struct Proof {
    /// For inclusion proofs: the leaf index.
    leaf_index: Option<u64>,
    /// For inclusion proofs: the leaf hash, base64.
    leaf_hash: Option<String>,
    /// For consistency proofs: the older tree size.
    old_size: Option<u64>,
    /// The tree size the proof is for.
    tree_size: u64,
    /// The proof's hashes, base64, in RFC 9162 order.
    hashes: Vec<String>,
}

impl From<app::audit::ProofView> for Proof {
    fn from(p: app::audit::ProofView) -> Self {
        Self {
            leaf_index: p.leaf_index,
            leaf_hash: p.leaf_hash,
            old_size: p.old_size,
            tree_size: p.tree_size,
            hashes: p.hashes,
        }
    }
}

/// Which leaf, in which tree.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InclusionQuery {
    /// Leaf index.
    index: u64,
    /// Tree size (a checkpoint's).
    size: u64,
}

/// Which two trees.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyQuery {
    /// The older tree size.
    old: u64,
    /// The newer tree size.
    new: u64,
}

/// The inclusion proof of a leaf of the access log (public: it reveals only hashes).
#[utoipa::path(get, path = "/api/v1/audit/proof/inclusion", params(InclusionQuery),
    responses(
        (status = 200, description = "The proof", body = Proof),
        (status = 404, description = "No such leaf or tree size in this log", body = ApiErrorBody),
        (status = 422, description = "index and size are not whole numbers", body = ApiErrorBody),
    ))]
pub(crate) async fn inclusion_proof(
    State(state): State<WebState>,
    q: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Proof>, WebError> {
    let Query(q) = q.map_err(|_| WebError::api(AppError::field("index", "Give index and size as whole numbers.")))?;
    Ok(Json(state.app.access_log().inclusion_proof(q.index, q.size).await.map_err(WebError::api)?.into()))
}

/// The consistency proof between two sizes of the access log (public), for witnesses.
#[utoipa::path(get, path = "/api/v1/audit/proof/consistency", params(ConsistencyQuery),
    responses(
        (status = 200, description = "The proof", body = Proof),
        (status = 404, description = "No such tree sizes in this log", body = ApiErrorBody),
        (status = 422, description = "old and new are not whole numbers", body = ApiErrorBody),
    ))]
pub(crate) async fn consistency_proof(
    State(state): State<WebState>,
    q: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Proof>, WebError> {
    let Query(q) = q.map_err(|_| WebError::api(AppError::field("old", "Give old and new as whole numbers.")))?;
    Ok(Json(state.app.access_log().consistency_proof(q.old, q.new).await.map_err(WebError::api)?.into()))
}

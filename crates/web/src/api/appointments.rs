//! The appointment book as FHIR R4, for the practice's own system (bearer token with the
//! appointments scope): `POST /fhir/R4/appointments` takes a batch Bundle of `Schedule`, `Slot`
//! and `Appointment` resources; `GET /fhir/R4/Slot` and `GET /fhir/R4/Appointment` read them
//! back as search Bundles.

use crate::WebState;
use crate::error::{ApiErrorBody, WebError};
use crate::extract::ClientAuth;
use app::records::fhir::{Issue, OperationOutcome};
use app::records::ingest::MAX_BUNDLE_BYTES;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

fn fhir(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/fhir+json"));
    r
}

fn outcome(status: u16, issue: Issue) -> Response {
    fhir(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), &OperationOutcome::new(vec![issue]))
}

/// Sends the practice's book in: `Schedule`, `Slot` and `Appointment` resources in a batch
/// Bundle, each known by its id in the practice system (sending it again changes nothing).
#[utoipa::path(post, path = "/fhir/R4/appointments",
    request_body(content = Object, content_type = "application/fhir+json", description = "A FHIR R4 batch Bundle of Schedule, Slot and Appointment resources"),
    responses(
        (status = 200, description = "A batch-response Bundle: each entry's status (200, 201, 404, 409, 422) and location", body = Object, content_type = "application/fhir+json"),
        (status = 400, description = "Not a FHIR JSON Bundle: an OperationOutcome", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "Missing, wrong or revoked client credentials", body = ApiErrorBody),
        (status = 404, description = "This client may not write the practice's book", body = ApiErrorBody),
        (status = 413, description = "Too large or too many entries: an OperationOutcome", body = Object, content_type = "application/fhir+json"),
        (status = 415, description = "Not JSON: an OperationOutcome", body = Object, content_type = "application/fhir+json"),
        (status = 422, description = "Not a batch Bundle: an OperationOutcome", body = Object, content_type = "application/fhir+json"),
    ))]
pub(crate) async fn sync(State(state): State<WebState>, ClientAuth(caller): ClientAuth, req: Request) -> Response {
    let json_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if !matches!(json_type.as_deref(), Some("application/fhir+json" | "application/json")) {
        return outcome(415, Issue::error("not-supported", "", "Send the Bundle as application/fhir+json."));
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), MAX_BUNDLE_BYTES).await else {
        return outcome(413, Issue::error("too-costly", "Bundle", "A Bundle may be at most 8 MiB; split it."));
    };
    match state.app.appointments().sync(&caller, &body).await {
        Ok(Ok(bundle)) => fhir(StatusCode::OK, &bundle),
        Ok(Err((status, o))) => fhir(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), &o),
        Err(e) => WebError::api(e).into_response(),
    }
}

/// `?start=&end=`: the days to read (New Zealand dates, at most 92 days).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Days {
    /// The first day, YYYY-MM-DD.
    #[serde(default)]
    start: String,
    /// The last day, YYYY-MM-DD.
    #[serde(default)]
    end: String,
}

/// The practice's slots between two days, with their schedules, as a `searchset` Bundle.
#[utoipa::path(get, path = "/fhir/R4/Slot", params(Days),
    responses(
        (status = 200, description = "The slots (free, busy, busy-unavailable) and their schedules", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "Missing, wrong or revoked client credentials", body = ApiErrorBody),
        (status = 404, description = "This client may not read the practice's book", body = ApiErrorBody),
        (status = 422, description = "The days are not dates, or too far apart", body = ApiErrorBody),
    ))]
pub(crate) async fn slots(
    State(state): State<WebState>,
    ClientAuth(caller): ClientAuth,
    Query(q): Query<Days>,
) -> Result<Response, WebError> {
    let bundle = state.app.appointments().search(&caller, "Slot", &q.start, &q.end).await.map_err(WebError::api)?;
    Ok(fhir(StatusCode::OK, &bundle))
}

/// The practice's appointments between two days (booked here or there), as a `searchset`
/// Bundle, each with its patient's NHI.
#[utoipa::path(get, path = "/fhir/R4/Appointment", params(Days),
    responses(
        (status = 200, description = "The appointments", body = Object, content_type = "application/fhir+json"),
        (status = 401, description = "Missing, wrong or revoked client credentials", body = ApiErrorBody),
        (status = 404, description = "This client may not read the practice's book", body = ApiErrorBody),
        (status = 422, description = "The days are not dates, or too far apart", body = ApiErrorBody),
    ))]
pub(crate) async fn appointments(
    State(state): State<WebState>,
    ClientAuth(caller): ClientAuth,
    Query(q): Query<Days>,
) -> Result<Response, WebError> {
    let bundle =
        state.app.appointments().search(&caller, "Appointment", &q.start, &q.end).await.map_err(WebError::api)?;
    Ok(fhir(StatusCode::OK, &bundle))
}

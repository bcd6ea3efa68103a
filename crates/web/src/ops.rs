//! Operations: liveness, readiness, Prometheus metrics, the stylesheet, and the middleware that
//! counts and logs every request by its route pattern (never its full URI, which may hold a
//! token, and never a body).

use crate::WebState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tracing::Instrument;

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

pub(crate) async fn readyz(State(state): State<WebState>) -> Response {
    let db = state.app.ping().await.is_ok();
    let data = tokio_free_check(&state.data_dir);
    let body = format!(
        "database: {}\ndata folder: {}\n",
        if db { "ok" } else { "unreachable" },
        if data { "ok" } else { "unwritable" }
    );
    let status = if db && data { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, body).into_response()
}

/// The data folder exists and is a writable directory.
fn tokio_free_check(dir: &std::path::Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| m.is_dir() && !m.permissions().readonly())
}

pub(crate) async fn metrics(State(state): State<WebState>) -> Response {
    if let Ok(n) = state.app.pending_mail().await {
        #[expect(clippy::cast_precision_loss, reason = "a gauge of queued messages")]
        metrics::gauge!("tiaki_mail_pending").set(n as f64);
    }
    match &state.metrics {
        Some(handle) => {
            let mut r = handle.render().into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
            r
        }
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics are not enabled").into_response(),
    }
}

const CSS: &str = include_str!("../static/tiaki.css");
const PASSKEY_JS: &str = include_str!("../static/passkey.js");

pub(crate) async fn stylesheet() -> Response {
    let mut r = CSS.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

/// The passkey script (the only script: pages work without it, except passkeys).
pub(crate) async fn passkey_script() -> Response {
    let mut r = PASSKEY_JS.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

/// Counts, times and logs each request, in a span carrying its request id.
pub(crate) async fn observe(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let span = tracing::info_span!("request", %method, route = %route, request_id = %request_id);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    metrics::counter!("tiaki_http_requests_total", "method" => method.to_string(), "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!("tiaki_http_request_seconds", "route" => route).record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(status, elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX), "request");
    });
    response
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// The latest signed checkpoint of the access log (C2SP tlog-checkpoint), for witnesses.
pub(crate) async fn checkpoint(State(state): State<WebState>) -> Response {
    match state.app.access_log().latest_checkpoint().await {
        Ok(Some(note)) => {
            let mut r = text(StatusCode::OK, note);
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        Ok(None) => text(StatusCode::NOT_FOUND, "no checkpoint has been made yet\n".into()),
        Err(e) => crate::error::WebError::page(e).into_response(),
    }
}

/// The log's verifier key (C2SP signed-note vkey).
pub(crate) async fn log_key(State(state): State<WebState>) -> Response {
    match state.app.access_log().vkey() {
        Some(k) => text(StatusCode::OK, format!("{k}\n")),
        None => text(StatusCode::NOT_FOUND, "this node does not sign checkpoints\n".into()),
    }
}

/// A witness posts a checkpoint it has cosigned (C2SP tlog-cosignature); it is verified against
/// the configured witness keys before it is stored.
pub(crate) async fn cosignature(State(state): State<WebState>, body: String) -> Response {
    match state.app.access_log().add_cosignatures(&body).await {
        Ok(n) => text(StatusCode::OK, format!("stored {n} cosignature(s)\n")),
        Err(app::AppError::Invalid(f)) => text(
            StatusCode::UNPROCESSABLE_ENTITY,
            f.into_iter().map(|e| e.message).collect::<Vec<_>>().join("; ") + "\n",
        ),
        Err(e) => crate::error::WebError::page(e).into_response(),
    }
}

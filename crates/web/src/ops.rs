//! Operations: liveness, readiness, Prometheus metrics, the stylesheet, and the middleware that
//! counts and logs every request by its route pattern (never its full URI, which may hold a
//! token, and never a body).

use crate::WebState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
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

/// Whether a request may read `/metrics` (review #13: the counters tell a credential stuffer
/// how close it is to the spike threshold). With a token configured: a matching bearer token.
/// Without: only a direct request from this machine — loopback, with no `X-Forwarded-For`, so a
/// reverse proxy on the same host does not hand it to the internet.
fn may_read_metrics(token: Option<&secrecy::SecretString>, peer: std::net::IpAddr, headers: &HeaderMap) -> bool {
    use secrecy::ExposeSecret;
    match token {
        Some(token) => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| {
                aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), token.expose_secret().as_bytes())
                    .is_ok()
            }),
        None => peer.is_loopback() && !headers.contains_key("x-forwarded-for") && !headers.contains_key("forwarded"),
    }
}

pub(crate) async fn metrics(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !may_read_metrics(state.metrics_token.as_deref(), peer.ip(), &headers) {
        return StatusCode::NOT_FOUND.into_response();
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn metrics_are_for_this_machine_or_the_token_holder() {
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let remote: std::net::IpAddr = "203.0.113.9".parse().unwrap();
        let none = HeaderMap::new();
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.7"));
        assert!(may_read_metrics(None, loopback, &none));
        assert!(!may_read_metrics(None, remote, &none));
        assert!(!may_read_metrics(None, loopback, &proxied), "through a proxy on the same host");
        let token = secrecy::SecretString::from("a-long-metrics-token-1234");
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer a-long-metrics-token-1234"));
        let mut wrong = HeaderMap::new();
        wrong.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer a-long-metrics-token-1235"));
        assert!(may_read_metrics(Some(&token), remote, &bearer));
        assert!(!may_read_metrics(Some(&token), remote, &wrong));
        assert!(!may_read_metrics(Some(&token), loopback, &none), "with a token, loopback needs it too");
    }
}

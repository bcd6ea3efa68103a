//! The HTTP layer. Handlers extract typed input, call one application function and map its
//! result; this crate has no database dependency (it reaches storage only through `app`).
//! Every route is declared once in [`routes::ROUTES`]; the router is built from that table and
//! the authorisation-matrix test walks the same table.

mod api;
mod error;
mod extract;
mod openapi;
mod ops;
mod pages;
mod present;
pub mod routes;
mod views;

pub use extract::client_ip;
pub use openapi::ApiDoc;

use app::App;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use ipnet::IpNet;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

/// Largest request body accepted (forms and JSON; documents will have their own streaming route).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a document upload may take.
const UPLOAD_TIMEOUT: Duration = Duration::from_hours(2);

/// What handlers share.
#[derive(Clone)]
pub struct WebState {
    /// The application.
    pub app: Arc<App>,
    /// Whether cookies are `Secure` and HSTS is sent (the portal is reached over HTTPS).
    pub secure: bool,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// The data folder, checked by `/readyz`.
    pub data_dir: PathBuf,
    /// Renders `/metrics`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The bearer token `/metrics` asks for; without one it answers only loopback requests
    /// that came through no proxy.
    pub metrics_token: Option<Arc<secrecy::SecretString>>,
}

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// A client's own `X-Request-Id` is dropped before the server mints one (review #20): the id in
/// the access log and the logs is always the server's, so nobody can make their events "join" a
/// victim's request in an investigation by copying its id.
async fn drop_client_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    req.headers_mut().remove("x-request-id");
    req
}

/// The whole application router with its security layers.
pub fn router(state: WebState) -> Router {
    let secure = state.secure;
    let mut r = Router::new();
    for route in routes::ROUTES {
        let handler = (route.handler)();
        let handler = if routes::STREAMING_UPLOADS.contains(&(route.method, route.path)) {
            handler.layer::<_, Infallible>(axum::extract::DefaultBodyLimit::disable()).layer::<_, Infallible>(
                TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, UPLOAD_TIMEOUT),
            )
        } else {
            handler.layer::<_, Infallible>(RequestBodyLimitLayer::new(MAX_BODY_BYTES)).layer::<_, Infallible>(
                TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)),
            )
        };
        r = r.route(route.path, handler);
    }
    let request_id = HeaderName::from_static("x-request-id");
    let mut router = r
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn(ops::observe))
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"),
        ))
        // Pages hold health information: never store them in shared or browser caches.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if secure {
        router = router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ));
    }
    router
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(axum::middleware::map_request(drop_client_request_id))
        .with_state(state)
}

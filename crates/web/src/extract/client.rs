//! Organisations' systems: a request authenticated by an API client's bearer token, as the
//! principal the policy sees for it. A missing or wrong token answers 401 with a `Bearer`
//! challenge, before the handler runs.

use super::Ctx;
use crate::WebState;
use crate::error::WebError;
use app::{AppError, Caller};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// A request from an organisation's system, as the caller it acts as.
pub(crate) struct ClientAuth(pub(crate) Caller);

impl<S: Send + Sync> FromRequestParts<S> for ClientAuth
where
    WebState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let web = WebState::from_ref(state);
        let ctx = Ctx::from_request_parts(parts, state).await?;
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        match web.app.documents().authenticate_client(token.trim()).await {
            Ok(Some(principal)) => {
                let caller = Caller::new(principal, ctx.ip, &ctx.user_agent, &ctx.request_id);
                Ok(Self(caller))
            }
            Ok(None) => {
                let mut r = WebError::api(AppError::Unauthenticated).into_response();
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tiaki\""));
                Err(r)
            }
            Err(e) => Err(WebError::api(e).into_response()),
        }
    }
}

//! Multipart form posts (document uploads) get the same protection as every other form: a
//! signed-in session, no cross-site request, and a CSRF token — the form's first part — checked
//! before the handler reads the rest.

use super::Ctx;
use crate::WebState;
use crate::error::{Refusal, Surface, WebError};
use app::{AppError, SignedIn};
use axum::extract::multipart::Field;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Multipart, Request};
use axum::response::{IntoResponse, Response};

/// A signed-in multipart post that is not cross-site. Its body is not read until
/// [`CsrfMultipart::open`], which checks the CSRF token (the form's first part) and hands over
/// the parts after it — so a handler can ask the policy first and refuse a stranger's upload
/// (404) before reading any of it.
pub(crate) struct CsrfMultipart {
    pub(crate) ctx: Ctx,
    pub(crate) who: SignedIn,
    request: Request,
}

impl CsrfMultipart {
    /// The form's parts after a valid CSRF token.
    ///
    /// # Errors
    /// A refusal page: 400 for a body that is not multipart, 403 for a missing or wrong token.
    pub(crate) async fn open(self, state: &WebState) -> Result<(Ctx, SignedIn, Multipart), Response> {
        let Ok(mut form) = Multipart::from_request(self.request, state).await else {
            return Err(Refusal::Malformed.into_response(Surface::Page));
        };
        let token = match form.next_field().await {
            Ok(Some(mut field)) if field.name() == Some("csrf") => read_small_field(&mut field, 512).await,
            Ok(_) => None,
            Err(_) => return Err(Refusal::Malformed.into_response(Surface::Page)),
        };
        if !token.is_some_and(|t| state.app.identity().csrf_ok(self.ctx.binding(), &t)) {
            return Err(Refusal::Csrf.into_response(Surface::Page));
        }
        Ok((self.ctx, self.who, form))
    }
}

impl<S: Send + Sync> FromRequest<S> for CsrfMultipart
where
    WebState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, state).await?;
        let Some(who) = ctx.signed_in.clone() else {
            return Err(WebError::page(AppError::Unauthenticated).into_response());
        };
        if parts.headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
            return Err(Refusal::Csrf.into_response(Surface::Page));
        }
        Ok(Self { ctx, who, request: Request::from_parts(parts, body) })
    }
}

pub(crate) async fn read_small_field(field: &mut Field<'_>, max: usize) -> Option<String> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = field.chunk().await {
        out.extend_from_slice(&chunk);
        if out.len() > max {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

//! Typed ids from the path: a malformed id answers exactly as a missing object does (404), on a
//! page as a page and in the API as JSON, so no handler parses an id by hand.

use crate::error::WebError;
use app::AppError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use std::str::FromStr;

/// The path's one id, for a page (`/documents/{document_id}/download`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageId<T>(pub(crate) T);

/// The path's one id, for the JSON API (`/api/v1/documents/{document_id}`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApiId<T>(pub(crate) T);

async fn parse<T: FromStr, S: Send + Sync>(parts: &mut Parts, state: &S) -> Option<T> {
    let Path(raw) = Path::<String>::from_request_parts(parts, state).await.ok()?;
    raw.parse().ok()
}

impl<S: Send + Sync, T: FromStr + Send> FromRequestParts<S> for PageId<T> {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        parse(parts, state).await.map(Self).ok_or_else(|| WebError::page(AppError::NotFound))
    }
}

impl<S: Send + Sync, T: FromStr + Send> FromRequestParts<S> for ApiId<T> {
    type Rejection = WebError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        parse(parts, state).await.map(Self).ok_or_else(|| WebError::api(AppError::NotFound))
    }
}

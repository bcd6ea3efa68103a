//! Mapping application errors to HTTP responses, once: an HTML page for the browser, JSON for
//! the API. Internal detail is logged with the request id, never shown.

use crate::views::{MessagePage, render};
use app::AppError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Serialize;

/// Whether the caller wants a page or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Surface {
    Page,
    Api,
}

/// An error on its way to becoming a response.
#[derive(Debug)]
pub(crate) struct WebError {
    pub(crate) surface: Surface,
    pub(crate) error: AppError,
}

impl WebError {
    pub(crate) const fn page(error: AppError) -> Self {
        Self { surface: Surface::Page, error }
    }
    pub(crate) const fn api(error: AppError) -> Self {
        Self { surface: Surface::Api, error }
    }
}

/// A request refused before it reached the application.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    /// The CSRF token is missing or wrong.
    Csrf,
    /// The body could not be read as the form or JSON expected.
    Malformed,
    /// The body is not of a type this route accepts.
    UnsupportedType,
    /// The body is too large.
    TooLarge,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ApiErrorBody {
    /// What went wrong, in plain words.
    pub(crate) error: String,
    /// Problems with individual fields, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) fields: Vec<ApiFieldError>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ApiFieldError {
    pub(crate) field: String,
    pub(crate) message: String,
}

pub(crate) fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::NotFound => StatusCode::NOT_FOUND,
        AppError::Unauthenticated | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
        AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::Conflict(_) => StatusCode::CONFLICT,
        AppError::LinkExpired | AppError::LinkUsed | AppError::Gone(_) => StatusCode::GONE,
        AppError::RateLimited(_) | AppError::SignInPaused => StatusCode::TOO_MANY_REQUESTS,
        AppError::PasswordMustChange => StatusCode::FORBIDDEN,
        AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::UnsupportedContent(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        AppError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

pub(crate) fn words(e: &AppError) -> (&'static str, String) {
    match e {
        AppError::NotFound => (
            "Page not found",
            "There is nothing here, or you do not have access to it. Check the address, or go to your home page."
                .into(),
        ),
        AppError::Unauthenticated => ("Please sign in", "You need to sign in to see this page.".into()),
        AppError::BadCredentials => ("Sign-in failed", "The email or password is not right.".into()),
        AppError::Invalid(fields) => {
            ("Please check what you entered", fields.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" "))
        }
        AppError::Conflict(m) => ("Already exists", m.clone()),
        AppError::LinkExpired => (
            "This link has expired",
            "For your security, links stop working after a few days. Ask your practice to send a new one.".into(),
        ),
        AppError::LinkUsed => (
            "This link has already been used",
            "Each link works once. If you have set your password, sign in. If not, ask your practice for a new link."
                .into(),
        ),
        AppError::RateLimited(secs) => {
            ("Too many attempts", format!("Please wait {} minute(s) and try again.", secs.div_ceil(60)))
        }
        AppError::SignInPaused => (
            "Sign-in is paused for this account",
            "After many wrong passwords, this account cannot be signed in to from a browser it has not used before. \
             Sign in from a browser you have used before, or choose a new password with \"Forgot your password?\"."
                .into(),
        ),
        AppError::PasswordMustChange => (
            "Please choose a new password",
            "The password is right, but it has appeared in a data breach on another website (or is too common), so it \
             cannot open your account on its own. We have emailed you a code to choose a new one: type it after choosing \"I have a code from a Tiaki email\" on the sign-in page."
                .into(),
        ),
        AppError::TooLarge(m) => ("Too large", m.clone()),
        AppError::UnsupportedContent(m) => ("This file cannot be accepted", m.clone()),
        AppError::Gone(m) => ("No longer available", m.clone()),
        AppError::Unavailable(m) => ("Temporarily unavailable", m.clone()),
        AppError::RangeNotSatisfiable(_) => {
            ("Range not available", "The part of the document asked for is outside it.".into())
        }
        AppError::Internal(_) => (
            "Something went wrong",
            "Sorry, something went wrong on our side. Please try again in a few minutes.".into(),
        ),
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let AppError::Internal(detail) = &self.error {
            tracing::error!(error = %detail, "internal error");
        }
        let status = status_of(&self.error);
        let (title, message) = words(&self.error);
        let mut response = match self.surface {
            Surface::Api => {
                let fields = match &self.error {
                    AppError::Invalid(f) => {
                        f.iter().map(|f| ApiFieldError { field: f.field.into(), message: f.message.clone() }).collect()
                    }
                    _ => Vec::new(),
                };
                (status, Json(ApiErrorBody { error: message, fields })).into_response()
            }
            Surface::Page if matches!(self.error, AppError::Unauthenticated) => Redirect::to("/signin").into_response(),
            Surface::Page => {
                let action = match &self.error {
                    AppError::LinkUsed => Some(("/signin", "Go to sign in")),
                    _ => Some(("/", "Go to your home page")),
                };
                (status, render(&MessagePage { nav: None, title, message: &message, action })).into_response()
            }
        };
        if let AppError::RangeNotSatisfiable(size) = self.error
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, v);
        }
        if matches!(self.error, AppError::Unavailable(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("300"));
        }
        if let AppError::RateLimited(secs) = self.error
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}

impl Refusal {
    pub(crate) fn into_response(self, surface: Surface) -> Response {
        let (status, title, message) = match self {
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "For your security, this form could not be accepted. Go back, reload the page and try again.",
            ),
            Self::Malformed => (
                StatusCode::BAD_REQUEST,
                "Something was wrong with the request",
                "The information sent could not be read. Go back, reload the page and try again.",
            ),
            Self::UnsupportedType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported request",
                "This address accepts only form submissions or JSON, as documented.",
            ),
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Too much information sent",
                "The request was larger than this form accepts.",
            ),
        };
        match surface {
            Surface::Api => (status, Json(ApiErrorBody { error: message.into(), fields: Vec::new() })).into_response(),
            Surface::Page => (
                status,
                render(&MessagePage { nav: None, title, message, action: Some(("/", "Go to your home page")) }),
            )
                .into_response(),
        }
    }
}

/// What a panic becomes: a plain 500, with the detail only in the log.
pub(crate) fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    (StatusCode::INTERNAL_SERVER_ERROR, "Internal error").into_response()
}

//! The application's one error type. The web layer maps each variant to a status once.

use store::{InvitationState, StoreError};

/// A problem with one form field, safe to show next to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name in the form.
    pub field: &'static str,
    /// What to do about it.
    pub message: String,
}

/// Why a use case did not happen. Messages are safe to show; internal detail is only logged.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No such thing, or not yours to see: indistinguishable on purpose.
    #[error("not found")]
    NotFound,
    /// The request needs a signed-in session.
    #[error("sign in first")]
    Unauthenticated,
    /// The email and password did not match an account that can sign in.
    #[error("the email or password is not right")]
    BadCredentials,
    /// Some fields were not acceptable; nothing changed.
    #[error("some fields need attention")]
    Invalid(Vec<FieldError>),
    /// Clashes with something that exists; nothing changed.
    #[error("{0}")]
    Conflict(String),
    /// The link has expired.
    #[error("this link has expired")]
    LinkExpired,
    /// The link was already used.
    #[error("this link has already been used")]
    LinkUsed,
    /// Too many attempts; try again after this many seconds.
    #[error("too many attempts; try again in {0} seconds")]
    RateLimited(u64),
    /// Sign-in from browsers the account does not know is paused after 100 consecutive wrong
    /// passwords, until the holder chooses a new one.
    #[error("sign-in from new browsers is paused for this account")]
    SignInPaused,
    /// The password was right but is on the breached/common list and nothing else protects the
    /// account: no session; a link to choose a new one was mailed.
    #[error("this password must be changed")]
    PasswordMustChange,
    /// The upload is larger than allowed, or would take the patient past their quota.
    #[error("{0}")]
    TooLarge(String),
    /// The content is not a type that is accepted (or could not be checked safely).
    #[error("{0}")]
    UnsupportedContent(String),
    /// The thing exists but can no longer be used (a document whose key was destroyed).
    #[error("{0}")]
    Gone(String),
    /// The requested byte range is outside the document; carries the document's size.
    #[error("the requested range is not within the document")]
    RangeNotSatisfiable(u64),
    /// A part of the portal is switched off for now (the kill switch): try again later;
    /// nothing sent is kept, so a system sends it again.
    #[error("{0}")]
    Unavailable(String),
    /// Something failed inside; the detail is logged, not shown.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// A single-field validation error.
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError { field, message: message.into() }])
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound | StoreError::Invitation(InvitationState::Unknown) => Self::NotFound,
            StoreError::Invitation(InvitationState::Expired) => Self::LinkExpired,
            StoreError::Invitation(InvitationState::Used) => Self::LinkUsed,
            StoreError::Conflict(what) => Self::Conflict(format!("{what} is already in use.")),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<authz::Denied> for AppError {
    fn from(e: authz::Denied) -> Self {
        match e {
            authz::Denied::NotFound => Self::NotFound,
            authz::Denied::Unavailable(e) => Self::Internal(e.to_string()),
        }
    }
}

impl From<crypto::KeyError> for AppError {
    fn from(e: crypto::KeyError) -> Self {
        Self::Internal(format!("key operation failed: {e}"))
    }
}

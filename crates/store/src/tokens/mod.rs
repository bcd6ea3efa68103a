//! Single-use tokens: every link or challenge that works once, before it expires — invitations
//! (patient activation, staff and operator invitations, the first operator's link), links that
//! let a session add a first second factor, password resets, email changes, second-factor
//! challenges and passkey ceremonies. One table (`single_use_tokens`, migration 0011) and one
//! mechanism: only a SHA-256 of the token is stored; a token is *live* while it is unused,
//! unexpired and under its failure limit; using it is one conditional `UPDATE … RETURNING`, so of
//! two concurrent uses exactly one succeeds. The aggregates that hand tokens out (links, mfa,
//! signin) keep their own contracts and call these functions inside their transactions.

use domain::{AccountId, UnixTime};

/// What a token is for. Stored as its code in the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A link that sets a password: activation, invitations, the first operator's link (the
    /// purpose says which).
    Invitation,
    /// A link that lets a session add a first second factor.
    MfaSetup,
    /// A password-reset link.
    PasswordReset,
    /// A link, sent to the new address, that changes an account's email (the detail holds it).
    EmailChange,
    /// A second-factor challenge between password and code; failures are counted on it.
    MfaChallenge,
    /// A passkey (`WebAuthn`) ceremony; the purpose says which, the detail holds the server's state.
    PasskeyCeremony,
}

impl TokenKind {
    /// The stable code stored for this kind.
    pub(crate) const fn code(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::MfaSetup => "mfa_setup",
            Self::PasswordReset => "password_reset",
            Self::EmailChange => "email_change",
            Self::MfaChallenge => "mfa_challenge",
            Self::PasskeyCeremony => "passkey_ceremony",
        }
    }
}

/// A token to store (only its hash).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewToken<'a> {
    /// What it is for.
    pub kind: TokenKind,
    /// SHA-256 of the token.
    pub token_hash: &'a [u8],
    /// The invitation's or ceremony's purpose, for the kinds that have one.
    pub purpose: Option<&'a str>,
    /// The account it names (none for the first operator's link and a passkey sign-in).
    pub account: Option<AccountId>,
    /// The new address of an email change; the server's state of a passkey ceremony.
    pub detail: Option<&'a str>,
    /// When it was made.
    pub created_at: UnixTime,
    /// When it stops working.
    pub expires_at: UnixTime,
}

impl<'a> NewToken<'a> {
    /// A token of `kind` that names `account` and carries nothing else.
    pub(crate) const fn for_account(
        kind: TokenKind,
        token_hash: &'a [u8],
        account: AccountId,
        created_at: UnixTime,
        expires_at: UnixTime,
    ) -> Self {
        Self { kind, token_hash, purpose: None, account: Some(account), detail: None, created_at, expires_at }
    }
}

/// A stored token, as found or as used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The invitation's or ceremony's purpose.
    pub purpose: Option<String>,
    /// The account it names.
    pub account: Option<AccountId>,
    /// The new address of an email change; the server's state of a passkey ceremony.
    pub detail: Option<String>,
    /// When it stops working.
    pub expires_at: UnixTime,
    /// When it was used (`None` while unused).
    pub used_at: Option<UnixTime>,
}

/// No failure limit (every kind but second-factor challenges).
pub(crate) const NO_LIMIT: i32 = i32::MAX;

/// How long a token is kept after it expires before the sign-in pruning job deletes it: long
/// enough for the windows that count recent ones (password resets per 15 minutes,
/// second-factor failures per hour).
pub(crate) const KEEP_AFTER_EXPIRY: i64 = 86_400;

/// The functions, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
pub(crate) mod sqlite {
    type Db = sqlx::Sqlite;
    include!("sql.rs");
}
pub(crate) mod postgres {
    type Db = sqlx::Postgres;
    include!("sql.rs");
}

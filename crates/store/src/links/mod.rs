//! Single-use links sent by email: those that set a password (patient activation, staff and
//! operator invitations, the first operator's link), links that let a session add a first second
//! factor, and password resets. All are single-use tokens (`crate::tokens`).

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type This = crate::SqliteStore;
    use crate::shared::sqlite as shared;
    use crate::tokens::sqlite as tokens;
    include!("sql.rs");
}
mod postgres {
    type This = crate::PgStore;
    use crate::shared::postgres as shared;
    use crate::tokens::postgres as tokens;
    include!("sql.rs");
}

use crate::{Acceptance, InvitationView, NewInvitation, Result};
use domain::{AccountId, BoxFuture, UnixTime};

/// A link that names an account and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Lets the session that opens it add a first second factor (sent when factors were reset).
    FactorSetup,
    /// Lets its holder choose a new password.
    PasswordReset,
}

impl LinkKind {
    const fn token_kind(self) -> crate::tokens::TokenKind {
        match self {
            Self::FactorSetup => crate::tokens::TokenKind::MfaSetup,
            Self::PasswordReset => crate::tokens::TokenKind::PasswordReset,
        }
    }
}

/// Single-use links sent by email.
pub trait LinkStore: Send + Sync {
    /// Stores a link of `kind` for `account` (its token's hash only), working from `window.0`
    /// until `window.1`, and the mail that carries it, in one transaction.
    fn create_link<'a>(
        &'a self,
        kind: LinkKind,
        token_hash: &'a [u8],
        account: AccountId,
        window: (UnixTime, UnixTime),
        mail: &'a crate::NewMail,
    ) -> BoxFuture<'a, Result<()>>;
    /// Stores a link of `kind` that names no one and never works, in one transaction: the work
    /// (and the time) of [`LinkStore::create_link`] when there is no one to send a link to, so
    /// that the answer's timing does not tell whether an email has an account.
    fn spend_decoy_link<'a>(&'a self, kind: LinkKind, token_hash: &'a [u8], now: UnixTime)
    -> BoxFuture<'a, Result<()>>;
    /// The account a live link of `kind` names, without using it.
    fn peek_link<'a>(
        &'a self,
        kind: LinkKind,
        token_hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<AccountId>>>;
    /// Uses a live link of `kind` once; the account it names. Of two concurrent uses one
    /// succeeds. With `holder`, only that account's link is used (anyone else's stays live).
    fn use_link<'a>(
        &'a self,
        kind: LinkKind,
        token_hash: &'a [u8],
        now: UnixTime,
        holder: Option<AccountId>,
    ) -> BoxFuture<'a, Result<Option<AccountId>>>;
    /// How many links of `kind` were made for `account` since `since` (to limit how often).
    fn links_since(&self, kind: LinkKind, account: AccountId, since: UnixTime) -> BoxFuture<'_, Result<i64>>;
    /// When the unused first-start invitation stops working, if there is one that still works.
    fn first_operator_invitation_expiry(&self, now: UnixTime) -> BoxFuture<'_, Result<Option<UnixTime>>>;
    /// Replaces any unused first-start invitation with this one.
    fn replace_first_operator_invitation<'a>(&'a self, invite: &'a NewInvitation) -> BoxFuture<'a, Result<()>>;
    /// What a link's token leads to, without using it.
    fn invitation<'a>(&'a self, token_hash: &'a [u8], now: UnixTime) -> BoxFuture<'a, Result<InvitationView>>;
    /// Uses a link once: sets the password (and, for the first operator, creates the account).
    /// Atomic: a link used twice at once succeeds once.
    fn accept_invitation<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        acceptance: &'a Acceptance,
    ) -> BoxFuture<'a, Result<AccountId>>;
}

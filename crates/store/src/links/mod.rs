//! Single-use links that set a password: patient activation, staff and operator invitations, and the first operator's link.

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type This = crate::SqliteStore;
    use crate::shared::sqlite as shared;
    include!("sql.rs");
}
mod postgres {
    type This = crate::PgStore;
    use crate::shared::postgres as shared;
    include!("sql.rs");
}

use crate::{Acceptance, InvitationView, NewInvitation, Result};
use domain::{AccountId, BoxFuture, UnixTime};

/// Single-use links that set a password: patient activation, staff and operator invitations, and the first operator's link.
pub trait LinkStore: Send + Sync {
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

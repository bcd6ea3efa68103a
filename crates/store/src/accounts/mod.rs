//! Accounts: who can sign in, as what, and the first operator.

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    use crate::shared::sqlite as shared;
    include!("sql.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    use crate::shared::postgres as shared;
    include!("sql.rs");
}

use crate::{AccountRow, ManageOperators, NewAccount, NewInvitation, Result};
use authz::{Grant, ManageAccounts};
use domain::{AccountId, BoxFuture, UnixTime};

/// Accounts: who can sign in, as what, and the first operator.
pub trait AccountStore: Send + Sync {
    /// The account with this email, if any.
    fn account_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, Result<Option<AccountRow>>>;
    /// The account with this id, if any.
    fn account(&self, id: AccountId) -> BoxFuture<'_, Result<Option<AccountRow>>>;
    /// How many operator accounts have set a password.
    fn active_operator_count(&self) -> BoxFuture<'_, Result<i64>>;
    /// Creates an operator account (no password yet) with its invitation and email, atomically.
    fn create_operator<'a>(
        &'a self,
        grant: &'a Grant<ManageOperators>,
        account: &'a NewAccount,
        invite: &'a NewInvitation,
    ) -> BoxFuture<'a, Result<()>>;
    /// Disables an account with a reason (`Some`), or enables it again (`None`). Disabling ends
    /// its sessions and voids its unused links in the same transaction. Returns whether anything
    /// changed (false: it already was so). Enabling does not restore a removed staff membership.
    fn set_account_disabled<'a>(
        &'a self,
        grant: &'a Grant<ManageAccounts>,
        account: AccountId,
        reason: Option<&'a str>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Why an account was disabled, if it is.
    fn disabled_reason<'a>(
        &'a self,
        grant: &'a Grant<ManageAccounts>,
        account: AccountId,
    ) -> BoxFuture<'a, Result<Option<String>>>;
}

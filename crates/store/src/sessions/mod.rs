//! Signed-in sessions: made at sign-in, resolved (with everything authentication needs) on every request, ended.

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    include!("sql.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    include!("sql.rs");
}

use crate::{NewSession, Result, SessionRow, SessionSubject};
use domain::{AccountId, BoxFuture, SessionId, UnixTime};

/// Signed-in sessions: made at sign-in, resolved (with everything authentication needs) on every request, ended.
pub trait SessionStore: Send + Sync {
    /// Stores a new session; `NotFound` when its account is disabled.
    fn create_session<'a>(&'a self, session: &'a NewSession) -> BoxFuture<'a, Result<()>>;
    /// The live session with this token hash: not ended, not past its absolute expiry, and seen
    /// since `idle_cutoff`.
    fn live_session<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        idle_cutoff: UnixTime,
    ) -> BoxFuture<'a, Result<Option<SessionRow>>>;
    /// The live session with this token hash (as [`Store::live_session`]) and everything
    /// authentication needs about it, in one query; `passkeys_flag` names the platform setting
    /// that requires passkeys.
    fn session_subject<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        idle_cutoff: UnixTime,
        passkeys_flag: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionSubject>>>;
    /// Records activity on a session.
    fn touch_session(&self, id: SessionId, now: UnixTime) -> BoxFuture<'_, Result<()>>;
    /// An account's live sessions, most recent first.
    fn list_sessions(
        &self,
        account: AccountId,
        now: UnixTime,
        idle_cutoff: UnixTime,
    ) -> BoxFuture<'_, Result<Vec<SessionRow>>>;
    /// Ends one of the account's sessions; false if it has no such live session.
    fn end_session(&self, account: AccountId, session: SessionId, now: UnixTime) -> BoxFuture<'_, Result<bool>>;
    /// Ends all of the account's sessions but `keep`; returns how many were ended.
    fn end_other_sessions(
        &self,
        account: AccountId,
        keep: Option<SessionId>,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<u64>>;
}

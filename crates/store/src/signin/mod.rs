//! The sign-in defences part of the storage contract: attempt counters shared by every node,
//! per-account consecutive failures, known browsers' failures, password resets and email
//! changes. Every counter is one upsert, so parallel attempts on several nodes cannot slip past
//! a limit; every "use once" link is one conditional UPDATE.

use crate::Result;
use domain::{AccountId, BoxFuture, UnixTime};

/// What an attempt counter says after counting one more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Attempts in the current window, this one included.
    pub attempts: i64,
    /// When the current window began.
    pub window_start: UnixTime,
}

/// What a used email-change link changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChanged {
    /// The address the account had.
    pub old_email: String,
    /// The address it has now.
    pub new_email: String,
}

/// Storage for the sign-in defences.
pub trait SignInStore {
    /// Counts one attempt under `key` in a fixed window of `window` seconds.
    fn count_attempt<'a>(&'a self, key: &'a str, window: i64, now: UnixTime) -> BoxFuture<'a, Result<WindowCount>>;
    /// Adds `n` sign-ins that did not succeed to the platform's total for the minute starting
    /// at `minute`.
    fn add_sign_in_failures(&self, minute: UnixTime, n: i64) -> BoxFuture<'_, Result<()>>;
    /// The platform's failed sign-ins per minute, for minutes starting at or after `since`.
    fn sign_in_failures_since(&self, since: UnixTime) -> BoxFuture<'_, Result<Vec<(UnixTime, i64)>>>;
    /// Counts an attempt from a browser the account does not know as a failure before its
    /// password is checked, if the account still has `seen` consecutive failures (compare and
    /// swap: of parallel attempts that read the same count, one goes on). False if another
    /// attempt came first.
    fn claim_sign_in_attempt(&self, account: AccountId, seen: i32, now: UnixTime) -> BoxFuture<'_, Result<bool>>;
    /// The run of failures kept for an email with no account: the count and the last one's time.
    fn phantom_failures<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<(i32, UnixTime)>>>;
    /// As [`SignInStore::claim_sign_in_attempt`], for an email with no account.
    fn claim_phantom_attempt<'a>(&'a self, key: &'a str, seen: i32, now: UnixTime) -> BoxFuture<'a, Result<bool>>;
    /// The claimed attempt had the right password: it was no failure after all.
    fn release_sign_in_attempt(
        &self,
        account: AccountId,
        last_failed_at: Option<UnixTime>,
    ) -> BoxFuture<'_, Result<()>>;
    /// Whether the account knows this browser.
    fn known_device<'a>(&'a self, account: AccountId, device_hash: &'a [u8]) -> BoxFuture<'a, Result<bool>>;
    /// A wrong password from a browser the account knows; at `max` in a row the account forgets
    /// it. Returns whether it was forgotten.
    fn device_sign_in_failed<'a>(
        &'a self,
        account: AccountId,
        device_hash: &'a [u8],
        max: i32,
    ) -> BoxFuture<'a, Result<bool>>;
    /// A finished sign-in: the account's consecutive failures start again from 0, unless they
    /// reached `cap` (then only a new password clears them).
    fn sign_in_succeeded(&self, account: AccountId, cap: i32) -> BoxFuture<'_, Result<()>>;
    /// Marks the account's password as found on the breached/common list.
    fn mark_password_breached(&self, account: AccountId, now: UnixTime) -> BoxFuture<'_, Result<()>>;
    /// Requires the account to use a second factor from now on (an incident's remediation):
    /// sessions that have not proved one reach only sign-in security. Keeps the first time.
    fn require_second_factor(&self, account: AccountId, now: UnixTime) -> BoxFuture<'_, Result<()>>;
    /// Uses a password-reset link, atomically: sets the password, clears the failure count and
    /// the breached mark, ends every session and voids the account's other reset links.
    fn use_password_reset<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        password_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<AccountId>>>;
    /// Changes a signed-in account's password, atomically: clears the failure count and the
    /// breached mark, ends every session but `keep`, gives `keep` a new token (its hash
    /// `keep_token_hash`), and voids reset links.
    fn change_password<'a>(
        &'a self,
        account: AccountId,
        password_hash: &'a str,
        keep: domain::SessionId,
        keep_token_hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Stores a pending change of email (the link goes to the new address).
    fn create_email_change<'a>(
        &'a self,
        token_hash: &'a [u8],
        account: AccountId,
        new_email: &'a str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Uses an email-change link of `account`'s, atomically: the account takes the new address
    /// (a unique violation if another account has it by now); `None` for a used, expired,
    /// unknown or someone else's link.
    fn use_email_change<'a>(
        &'a self,
        token_hash: &'a [u8],
        account: AccountId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<EmailChanged>>>;
    /// Removes counters and links no longer needed at `now`: windows begun over an hour ago,
    /// per-minute totals over 25 hours old (the adaptive limit reads a day), runs of failures
    /// of emails with no account untouched for 30 days, and links expired a day ago.
    fn prune_sign_in_state(&self, now: UnixTime) -> BoxFuture<'_, Result<u64>>;
}

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    use crate::tokens::sqlite as tokens;
    include!("sql.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    use crate::tokens::postgres as tokens;
    include!("sql.rs");
}

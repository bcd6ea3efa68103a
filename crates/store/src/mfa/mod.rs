//! The second-factor part of the storage contract: TOTP authenticators, recovery codes and
//! sign-in challenges. Every "use once" rule is a single conditional UPDATE, so two requests
//! racing with the same code cannot both succeed.

use crate::Result;
use domain::{AccountId, BoxFuture, UnixTime};

/// An account's TOTP authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRow {
    /// The shared secret.
    pub secret: Vec<u8>,
    /// When the account holder proved they had set it up; `None` while pending.
    pub confirmed_at: Option<UnixTime>,
    /// The last time step accepted (codes at or before it are refused: no replay).
    pub last_step: i64,
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRow {
    /// Its id (for naming and removing it).
    pub id: uuid::Uuid,
    /// Whose it is.
    pub account: AccountId,
    /// The name its holder gave it.
    pub name: String,
    /// The `WebAuthn` credential (the record `webauthn-rs` keeps, as JSON).
    pub credential: String,
    /// When it was registered.
    pub created_at: UnixTime,
    /// When it was last used to sign in.
    pub last_used_at: Option<UnixTime>,
}

/// A `WebAuthn` ceremony taken (used up) by its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRow {
    /// The account it is for (none for a passkey sign-in, which finds the account itself).
    pub account: Option<AccountId>,
    /// `register`, `sign_in`, `second_factor` or `confirm`.
    pub purpose: String,
    /// The server's half of the challenge (webauthn-rs state, JSON).
    pub state: String,
}

/// An account's authenticator secret as stored (sealed, or from before sealing).
pub type StoredSecret = (AccountId, Vec<u8>);

/// Storage for second factors.
pub trait MfaStore: Send + Sync {
    /// Sets whether the practice requires its patients to use a second factor.
    fn set_patients_need_mfa<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManageStaff>,
        on: bool,
    ) -> BoxFuture<'a, Result<()>>;
    /// Whether the practice requires its patients to use a second factor.
    fn patients_need_mfa<'a>(&'a self, grant: &'a authz::Grant<authz::ManageStaff>) -> BoxFuture<'a, Result<bool>>;
    /// Records that the session's second factor was a passkey.
    fn mark_session_passkey(&self, session: domain::SessionId) -> BoxFuture<'_, Result<()>>;
    /// A platform-wide switch (stored in `settings`); off unless set.
    fn platform_flag<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool>>;
    /// Sets a platform-wide switch (operators).
    fn set_platform_flag<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManagePractices>,
        name: &'a str,
        on: bool,
    ) -> BoxFuture<'a, Result<()>>;
    /// The account's passkeys, oldest first.
    fn passkeys(&self, account: AccountId) -> BoxFuture<'_, Result<Vec<PasskeyRow>>>;
    /// The passkey with this `WebAuthn` credential id.
    fn passkey_by_credential<'a>(&'a self, credential_id: &'a [u8]) -> BoxFuture<'a, Result<Option<PasskeyRow>>>;
    /// Registers a passkey; false if that credential is registered already.
    fn add_passkey<'a>(&'a self, row: &'a PasskeyRow, credential_id: &'a [u8]) -> BoxFuture<'a, Result<bool>>;
    /// Stores a passkey's credential after a use (its counter) and when it was used.
    fn passkey_used<'a>(&'a self, id: uuid::Uuid, credential: &'a str, now: UnixTime) -> BoxFuture<'a, Result<()>>;
    /// Removes one of the account's passkeys; false if it has no such passkey.
    fn remove_passkey(&self, account: AccountId, id: uuid::Uuid) -> BoxFuture<'_, Result<bool>>;
    /// Starts a `WebAuthn` ceremony (and clears expired ones).
    fn create_ceremony<'a>(
        &'a self,
        token_hash: &'a [u8],
        account: Option<AccountId>,
        purpose: &'a str,
        state: &'a str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Takes a ceremony once: it is deleted as it is read, so a second answer to the same
    /// challenge, or one after it expired, finds nothing.
    fn take_ceremony<'a>(&'a self, token_hash: &'a [u8], now: UnixTime) -> BoxFuture<'a, Result<Option<CeremonyRow>>>;
    /// The account's authenticator, confirmed or pending.
    fn totp_factor(&self, account: AccountId) -> BoxFuture<'_, Result<Option<TotpRow>>>;
    /// Up to `limit` authenticator secrets, as stored, of accounts after `after` (in account
    /// order): for the console to seal or re-wrap them.
    fn totp_secrets<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::MasterKeyCustody>,
        after: Option<AccountId>,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<StoredSecret>>>;
    /// Replaces an authenticator secret as stored, if it is still `old`; true if it was.
    fn replace_totp_secret<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::MasterKeyCustody>,
        account: AccountId,
        old: &'a [u8],
        new: &'a [u8],
    ) -> BoxFuture<'a, Result<bool>>;
    /// Records an operator's request to reset a patient's factors (open for a day).
    fn request_patient_reset<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManageAccounts>,
        request: &'a crate::PatientResetRequest,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// The requests no second operator has approved yet, and still open.
    fn open_patient_resets<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManageAccounts>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<crate::PatientResetRequest>>>;
    /// Approves a request as `approver`, once, and only if they did not make it; returns it.
    fn approve_patient_reset<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManageAccounts>,
        id: uuid::Uuid,
        approver: AccountId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<crate::PatientResetRequest>>>;
    /// Starts (or restarts) setting up an authenticator; false if one is already confirmed.
    fn start_totp<'a>(&'a self, account: AccountId, secret: &'a [u8], now: UnixTime) -> BoxFuture<'a, Result<bool>>;
    /// Confirms a pending authenticator with the step of a correct code, and replaces the
    /// account's recovery codes, in one transaction; false if there is nothing pending.
    fn confirm_totp<'a>(
        &'a self,
        account: AccountId,
        step: i64,
        now: UnixTime,
        code_hashes: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<bool>>;
    /// Accepts a code's time step once: true only if it is later than the last one accepted.
    fn accept_totp_step(&self, account: AccountId, step: i64) -> BoxFuture<'_, Result<bool>>;
    /// Uses a recovery code once; false if it is not one of the account's unused codes.
    fn use_recovery_code<'a>(
        &'a self,
        account: AccountId,
        hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Replaces the account's recovery codes (the old set stops working).
    fn replace_recovery_codes<'a>(&'a self, account: AccountId, hashes: &'a [Vec<u8>]) -> BoxFuture<'a, Result<()>>;
    /// How many unused recovery codes the account has.
    fn recovery_codes_left(&self, account: AccountId) -> BoxFuture<'_, Result<i64>>;
    /// Removes every second factor of an account (authenticator, passkeys and recovery codes) and
    /// its open sign-in challenges and ceremonies; returns whether it had an authenticator or a
    /// passkey.
    fn remove_factors(&self, account: AccountId) -> BoxFuture<'_, Result<bool>>;
    /// Records that a live session has just proved a second factor, and gives it a new token
    /// (whatever token it had before — perhaps planted or seen — stops working).
    fn mark_session_mfa<'a>(
        &'a self,
        session: domain::SessionId,
        now: UnixTime,
        new_token_hash: &'a [u8],
    ) -> BoxFuture<'a, Result<()>>;
    /// Records a wrong code given outside sign-in (changing factors), so it counts towards the
    /// account's limit like a failed sign-in code.
    fn record_mfa_failure(&self, account: AccountId, now: UnixTime) -> BoxFuture<'_, Result<()>>;
    /// Forgets every session's second-factor proof for an account (its factor was removed), and
    /// ends its sessions but `keep`.
    fn reset_session_mfa(
        &self,
        account: AccountId,
        keep: Option<domain::SessionId>,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<()>>;
    /// Lets a live session add a first second factor, under a new token (its hash).
    fn allow_factor_setup<'a>(
        &'a self,
        session: domain::SessionId,
        now: UnixTime,
        new_token_hash: &'a [u8],
    ) -> BoxFuture<'a, Result<()>>;
    /// Remembers a browser for an account; true if it was not known before.
    fn remember_device<'a>(
        &'a self,
        account: AccountId,
        device_hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Stores a sign-in challenge (a correct password waiting for its second factor).
    fn create_mfa_challenge<'a>(
        &'a self,
        token_hash: &'a [u8],
        account: AccountId,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// The account a live challenge is for (unused, unexpired, fewer than `max_failures`).
    fn mfa_challenge<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        max_failures: i32,
    ) -> BoxFuture<'a, Result<Option<AccountId>>>;
    /// Wrong second-factor codes for an account across all its challenges since a time.
    fn recent_mfa_failures(&self, account: AccountId, since: UnixTime) -> BoxFuture<'_, Result<i64>>;
    /// Counts a wrong code against a challenge.
    fn fail_mfa_challenge<'a>(&'a self, token_hash: &'a [u8]) -> BoxFuture<'a, Result<()>>;
    /// Uses a challenge once; false if it was used, expired or failed too often meanwhile.
    fn use_mfa_challenge<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        max_failures: i32,
    ) -> BoxFuture<'a, Result<bool>>;
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

// The single-use token mechanism, one text for both engines: included by `mod.rs` once for
// `SQLite` and once for `PostgreSQL` (`Db` is the engine's database). Format with
// `rustfmt --edition 2024 tokens/sql.rs` (CI checks it).

use super::{KEEP_AFTER_EXPIRY, NewToken, Token, TokenKind};
use crate::Result;
use crate::portable::map_unique;
use domain::{AccountId, UnixTime};
use sqlx::{AssertSqlSafe, Row};

const COLUMNS: &str = "purpose, account_id, detail, expires_at, used_at";
/// The condition under which a token still works.
const LIVE: &str = "used_at IS NULL AND expires_at > $3 AND failures < $4";

fn token(r: &<Db as sqlx::Database>::Row) -> Result<Token> {
    Ok(Token {
        purpose: r.try_get("purpose")?,
        account: r.try_get::<Option<uuid::Uuid>, _>("account_id")?.map(AccountId::from_uuid),
        detail: r.try_get("detail")?,
        expires_at: r.try_get("expires_at")?,
        used_at: r.try_get("used_at")?,
    })
}

/// Stores a new token (its hash only).
pub(crate) async fn issue<'e, E: sqlx::Executor<'e, Database = Db>>(db: E, t: &NewToken<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO single_use_tokens (token_hash, kind, purpose, account_id, detail, failures, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6, $7)",
    )
    .bind(t.token_hash)
    .bind(t.kind.code())
    .bind(t.purpose)
    .bind(t.account.map(|a| a.as_uuid()))
    .bind(t.detail)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(db)
    .await
    .map_err(map_unique)?;
    Ok(())
}

/// A token of `kind` in whatever state it is (used, expired or live), to say why it no longer works.
pub(crate) async fn find<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: TokenKind,
    token_hash: &[u8],
) -> Result<Option<Token>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM single_use_tokens WHERE token_hash = $1 AND kind = $2"
    )))
    .bind(token_hash)
    .bind(kind.code())
    .fetch_optional(db)
    .await?;
    row.as_ref().map(token).transpose()
}

/// A live token of `kind` (unused, unexpired, fewer than `max_failures` failures), without using it.
pub(crate) async fn peek<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: TokenKind,
    token_hash: &[u8],
    now: UnixTime,
    max_failures: i32,
) -> Result<Option<Token>> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM single_use_tokens WHERE token_hash = $1 AND kind = $2 AND {LIVE}"
    )))
    .bind(token_hash)
    .bind(kind.code())
    .bind(now)
    .bind(max_failures)
    .fetch_optional(db)
    .await?;
    row.as_ref().map(token).transpose()
}

/// Uses a live token of `kind` — once: of two concurrent uses exactly one finds it — and, when
/// `holder` is given, only if it names that account. Returns the token as it was.
pub(crate) async fn redeem<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: TokenKind,
    token_hash: &[u8],
    now: UnixTime,
    max_failures: i32,
    holder: Option<AccountId>,
) -> Result<Option<Token>> {
    let held = if holder.is_some() { " AND account_id = $5" } else { "" };
    let query = format!(
        "UPDATE single_use_tokens SET used_at = $3 WHERE token_hash = $1 AND kind = $2 AND {LIVE}{held} RETURNING {COLUMNS}"
    );
    let mut q = sqlx::query(AssertSqlSafe(query)).bind(token_hash).bind(kind.code()).bind(now).bind(max_failures);
    if let Some(account) = holder {
        q = q.bind(account.as_uuid());
    }
    let row = q.fetch_optional(db).await?;
    row.as_ref().map(token).transpose()
}

/// Counts one failure against a token (a wrong code given with a challenge).
pub(crate) async fn fail<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: TokenKind,
    token_hash: &[u8],
) -> Result<()> {
    sqlx::query("UPDATE single_use_tokens SET failures = failures + 1 WHERE token_hash = $1 AND kind = $2")
        .bind(token_hash)
        .bind(kind.code())
        .execute(db)
        .await?;
    Ok(())
}

/// Records a failure that belongs to no live token: a spent token carrying one failure,
/// counted by [`failures_since`], never usable.
pub(crate) async fn record_failure<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: TokenKind,
    account: AccountId,
    now: UnixTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO single_use_tokens (token_hash, kind, account_id, failures, created_at, expires_at, used_at) \
         VALUES ($1, $2, $3, 1, $4, $4, $4)",
    )
    .bind(uuid::Uuid::new_v4().as_bytes().to_vec())
    .bind(kind.code())
    .bind(account.as_uuid())
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// Ends every unused token of `kind` naming `account` (a newer one was used, or what it would
/// change has changed).
pub(crate) async fn revoke_unused<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: TokenKind,
    account: AccountId,
    now: UnixTime,
) -> Result<()> {
    sqlx::query("UPDATE single_use_tokens SET used_at = $3 WHERE account_id = $1 AND kind = $2 AND used_at IS NULL")
        .bind(account.as_uuid())
        .bind(kind.code())
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// Ends every unused token of every kind naming `account` (it was disabled).
pub(crate) async fn revoke_all<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    account: AccountId,
    now: UnixTime,
) -> Result<()> {
    sqlx::query("UPDATE single_use_tokens SET used_at = $2 WHERE account_id = $1 AND used_at IS NULL")
        .bind(account.as_uuid())
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes every token of `kind` naming `account`, used or not (its second factors were reset).
pub(crate) async fn forget<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: TokenKind,
    account: AccountId,
) -> Result<()> {
    sqlx::query("DELETE FROM single_use_tokens WHERE account_id = $1 AND kind = $2")
        .bind(account.as_uuid())
        .bind(kind.code())
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes the unused tokens of `kind` with `purpose` (a new first-start link replaces the old).
pub(crate) async fn withdraw<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: TokenKind,
    purpose: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM single_use_tokens WHERE kind = $1 AND purpose = $2 AND used_at IS NULL")
        .bind(kind.code())
        .bind(purpose)
        .execute(db)
        .await?;
    Ok(())
}

/// Names the account a token was for (the first operator's link, once it created the account).
pub(crate) async fn set_account<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    token_hash: &[u8],
    account: AccountId,
) -> Result<()> {
    sqlx::query("UPDATE single_use_tokens SET account_id = $2 WHERE token_hash = $1")
        .bind(token_hash)
        .bind(account.as_uuid())
        .execute(db)
        .await?;
    Ok(())
}

/// How many tokens of `kind` were made for `account` since `since`.
pub(crate) async fn issued_since<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: TokenKind,
    account: AccountId,
    since: UnixTime,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM single_use_tokens WHERE account_id = $1 AND kind = $2 AND created_at >= $3",
    )
    .bind(account.as_uuid())
    .bind(kind.code())
    .bind(since)
    .fetch_one(db)
    .await?)
}

/// The failures counted on tokens of `kind` made for `account` since `since`.
pub(crate) async fn failures_since<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: TokenKind,
    account: AccountId,
    since: UnixTime,
) -> Result<i64> {
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(failures), 0) AS BIGINT) FROM single_use_tokens \
         WHERE account_id = $1 AND kind = $2 AND created_at >= $3",
    )
    .bind(account.as_uuid())
    .bind(kind.code())
    .bind(since)
    .fetch_one(db)
    .await?;
    Ok(n.unwrap_or(0))
}

/// Deletes tokens that expired more than a day ago, apart from invitations (kept: who was
/// invited, and a late click on an old link is told it expired); returns how many.
pub(crate) async fn prune<'e, E: sqlx::Executor<'e, Database = Db>>(db: E, now: UnixTime) -> Result<u64> {
    Ok(sqlx::query("DELETE FROM single_use_tokens WHERE expires_at < $1 AND kind <> $2")
        .bind(now - KEEP_AFTER_EXPIRY)
        .bind(TokenKind::Invitation.code())
        .execute(db)
        .await?
        .rows_affected())
}

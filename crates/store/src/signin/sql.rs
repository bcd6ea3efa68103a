// The SQL of the signin aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 signin/sql.rs` (CI checks it).

use crate::tokens::{NO_LIMIT, NewToken, TokenKind};
use crate::{EmailChanged, Result, SignInStore, WindowCount};
use domain::{AccountId, BoxFuture, UnixTime};
use sqlx::Row;

impl SignInStore for This {
    fn count_attempt<'a>(&'a self, key: &'a str, window: i64, now: UnixTime) -> BoxFuture<'a, Result<WindowCount>> {
        Box::pin(async move {
            let row = sqlx::query(
                "INSERT INTO sign_in_windows (key, window_start, attempts) VALUES ($1, $2, 1) \
                 ON CONFLICT (key) DO UPDATE SET \
                 attempts = CASE WHEN sign_in_windows.window_start <= $3 THEN 1 ELSE sign_in_windows.attempts + 1 END, \
                 window_start = CASE WHEN sign_in_windows.window_start <= $3 THEN $2 ELSE sign_in_windows.window_start END \
                 RETURNING attempts, window_start",
            )
            .bind(key)
            .bind(now)
            .bind(now - window)
            .fetch_one(&self.pool)
            .await?;
            Ok(WindowCount { attempts: row.try_get("attempts")?, window_start: row.try_get("window_start")? })
        })
    }

    fn add_sign_in_failures(&self, minute: UnixTime, n: i64) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO sign_in_failure_minutes (minute, failures) VALUES ($1, $2) \
                 ON CONFLICT (minute) DO UPDATE SET failures = sign_in_failure_minutes.failures + $2",
            )
            .bind(minute)
            .bind(n)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn sign_in_failures_since(&self, since: UnixTime) -> BoxFuture<'_, Result<Vec<(UnixTime, i64)>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT minute, failures FROM sign_in_failure_minutes WHERE minute >= $1")
                .bind(since)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(|r| Ok((r.try_get("minute")?, r.try_get("failures")?))).collect()
        })
    }

    fn claim_sign_in_attempt(&self, account: AccountId, seen: i32, now: UnixTime) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE accounts SET failed_sign_ins = failed_sign_ins + 1, last_failed_sign_in_at = $3 \
                 WHERE id = $1 AND failed_sign_ins = $2",
            )
            .bind(account.as_uuid())
            .bind(seen)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn phantom_failures<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<(i32, UnixTime)>>> {
        Box::pin(async move {
            let row =
                sqlx::query("SELECT failed_sign_ins, last_failed_sign_in_at FROM sign_in_phantoms WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?;
            row.map(|r| Ok((r.try_get("failed_sign_ins")?, r.try_get("last_failed_sign_in_at")?))).transpose()
        })
    }

    fn claim_phantom_attempt<'a>(&'a self, key: &'a str, seen: i32, now: UnixTime) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = if seen == 0 {
                sqlx::query(
                    "INSERT INTO sign_in_phantoms (key, failed_sign_ins, last_failed_sign_in_at) VALUES ($1, 1, $2) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(now)
                .execute(&self.pool)
                .await?
            } else {
                sqlx::query(
                    "UPDATE sign_in_phantoms SET failed_sign_ins = failed_sign_ins + 1, last_failed_sign_in_at = $3 \
                     WHERE key = $1 AND failed_sign_ins = $2",
                )
                .bind(key)
                .bind(seen)
                .bind(now)
                .execute(&self.pool)
                .await?
            };
            Ok(done.rows_affected() == 1)
        })
    }

    fn release_sign_in_attempt(
        &self,
        account: AccountId,
        last_failed_at: Option<UnixTime>,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE accounts SET failed_sign_ins = failed_sign_ins - 1, last_failed_sign_in_at = $2 \
                 WHERE id = $1 AND failed_sign_ins > 0",
            )
            .bind(account.as_uuid())
            .bind(last_failed_at)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn known_device<'a>(&'a self, account: AccountId, device_hash: &'a [u8]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM known_devices WHERE account_id = $1 AND device_hash = $2")
                    .bind(account.as_uuid())
                    .bind(device_hash)
                    .fetch_one(&self.pool)
                    .await?;
            Ok(n > 0)
        })
    }

    fn device_sign_in_failed<'a>(
        &'a self,
        account: AccountId,
        device_hash: &'a [u8],
        max: i32,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let failures: Option<i32> = sqlx::query_scalar(
                "UPDATE known_devices SET failures = failures + 1 WHERE account_id = $1 AND device_hash = $2 \
                 RETURNING failures",
            )
            .bind(account.as_uuid())
            .bind(device_hash)
            .fetch_optional(&self.pool)
            .await?;
            if failures.is_some_and(|f| f >= max) {
                sqlx::query("DELETE FROM known_devices WHERE account_id = $1 AND device_hash = $2")
                    .bind(account.as_uuid())
                    .bind(device_hash)
                    .execute(&self.pool)
                    .await?;
                return Ok(true);
            }
            Ok(false)
        })
    }

    fn sign_in_succeeded(&self, account: AccountId, cap: i32) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE accounts SET failed_sign_ins = 0 WHERE id = $1 AND failed_sign_ins <> 0 AND failed_sign_ins < $2")
                .bind(account.as_uuid())
                .bind(cap)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn mark_password_breached(&self, account: AccountId, now: UnixTime) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE accounts SET password_breached_at = $2 WHERE id = $1 AND password_breached_at IS NULL")
                .bind(account.as_uuid())
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn require_second_factor(&self, account: AccountId, now: UnixTime) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE accounts SET second_factor_required_at = $2 WHERE id = $1 AND second_factor_required_at IS NULL",
            )
            .bind(account.as_uuid())
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn use_password_reset<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        password_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<AccountId>>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let used = tokens::redeem(&mut *tx, TokenKind::PasswordReset, token_hash, now, NO_LIMIT, None).await?;
            let Some(id) = used.and_then(|t| t.account) else {
                return Ok(None);
            };
            new_password(&mut tx, id.as_uuid(), password_hash, uuid::Uuid::nil(), now).await?;
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    fn change_password<'a>(
        &'a self,
        account: AccountId,
        password_hash: &'a str,
        keep: domain::SessionId,
        keep_token_hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            new_password(&mut tx, account.as_uuid(), password_hash, keep.as_uuid(), now).await?;
            sqlx::query("UPDATE sessions SET token_hash = $2 WHERE id = $1 AND ended_at IS NULL")
                .bind(keep.as_uuid())
                .bind(keep_token_hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn create_email_change<'a>(
        &'a self,
        token_hash: &'a [u8],
        account: AccountId,
        new_email: &'a str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let link = NewToken {
                detail: Some(new_email),
                ..NewToken::for_account(TokenKind::EmailChange, token_hash, account, now, expires_at)
            };
            tokens::issue(&self.pool, &link).await
        })
    }

    fn use_email_change<'a>(
        &'a self,
        token_hash: &'a [u8],
        account: AccountId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<EmailChanged>>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let used =
                tokens::redeem(&mut *tx, TokenKind::EmailChange, token_hash, now, NO_LIMIT, Some(account)).await?;
            let Some(new_email) = used.and_then(|t| t.detail) else { return Ok(None) };
            let old_email: String = sqlx::query_scalar("SELECT email FROM accounts WHERE id = $1")
                .bind(account.as_uuid())
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query("UPDATE accounts SET email = $2 WHERE id = $1")
                .bind(account.as_uuid())
                .bind(&new_email)
                .execute(&mut *tx)
                .await
                .map_err(crate::portable::map_unique)?;
            // Links sent to the old address die with it (review #23): other email changes,
            // password resets and second-factor set-up links.
            for kind in [TokenKind::EmailChange, TokenKind::PasswordReset, TokenKind::MfaSetup] {
                tokens::revoke_unused(&mut *tx, kind, account, now).await?;
            }
            tx.commit().await?;
            Ok(Some(EmailChanged { old_email, new_email }))
        })
    }

    fn prune_sign_in_state(&self, now: UnixTime) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let mut n = 0;
            n += sqlx::query("DELETE FROM sign_in_windows WHERE window_start < $1")
                .bind(now - 3600)
                .execute(&self.pool)
                .await?
                .rows_affected();
            n += sqlx::query("DELETE FROM sign_in_failure_minutes WHERE minute < $1")
                .bind(now - 90_000)
                .execute(&self.pool)
                .await?
                .rows_affected();
            n += sqlx::query("DELETE FROM sign_in_phantoms WHERE last_failed_sign_in_at < $1")
                .bind(now - 30 * 86_400)
                .execute(&self.pool)
                .await?
                .rows_affected();
            n += tokens::prune(&self.pool, now).await?;
            Ok(n)
        })
    }
}

/// Sets a new password and everything that goes with one.
async fn new_password(
    tx: &mut sqlx::Transaction<'_, Db>,
    account: uuid::Uuid,
    password_hash: &str,
    keep: uuid::Uuid,
    now: UnixTime,
) -> Result<()> {
    sqlx::query(
        "UPDATE accounts SET password_hash = $2, failed_sign_ins = 0, last_failed_sign_in_at = NULL, \
         password_breached_at = NULL WHERE id = $1",
    )
    .bind(account)
    .bind(password_hash)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE sessions SET ended_at = $3 WHERE account_id = $1 AND ended_at IS NULL AND id <> $2")
        .bind(account)
        .bind(keep)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    tokens::revoke_unused(&mut **tx, TokenKind::PasswordReset, AccountId::from_uuid(account), now).await?;
    Ok(())
}

// The SQL of the mfa aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 mfa/sql.rs` (CI checks it).

use crate::tokens::{NO_LIMIT, NewToken, TokenKind};
use crate::{CeremonyRow, MfaStore, PasskeyRow, Result, TotpRow};
use domain::{AccountId, BoxFuture, UnixTime};
use sqlx::Row;

fn passkey_row(r: &<Db as sqlx::Database>::Row) -> Result<PasskeyRow> {
    Ok(PasskeyRow {
        id: r.try_get("id")?,
        account: AccountId::from_uuid(r.try_get("account_id")?),
        name: r.try_get("name")?,
        credential: r.try_get("credential")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

/// Replaces an account's recovery codes inside a transaction.
async fn replace_codes(tx: &mut sqlx::Transaction<'_, Db>, account: AccountId, hashes: &[Vec<u8>]) -> Result<()> {
    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1").bind(account.as_uuid()).execute(&mut **tx).await?;
    for h in hashes {
        sqlx::query("INSERT INTO recovery_codes (account_id, code_hash) VALUES ($1, $2)")
            .bind(account.as_uuid())
            .bind(h)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A reset request with the patient's email and the asking operator's name ([`reset_request`]).
const RESET_REQUESTS: &str = "SELECT r.id, r.account_id, a.email, r.requested_by, o.display_name, r.checked, \
    r.requested_at FROM patient_reset_requests r JOIN accounts a ON a.id = r.account_id \
    JOIN accounts o ON o.id = r.requested_by";

fn reset_request(r: &<Db as sqlx::Database>::Row) -> Result<crate::PatientResetRequest> {
    Ok(crate::PatientResetRequest {
        id: r.try_get("id")?,
        account: AccountId::from_uuid(r.try_get("account_id")?),
        email: r.try_get("email")?,
        requested_by: AccountId::from_uuid(r.try_get("requested_by")?),
        requested_by_name: r.try_get("display_name")?,
        checked: r.try_get("checked")?,
        requested_at: r.try_get("requested_at")?,
    })
}

impl MfaStore for This {
    fn set_patients_need_mfa<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManageStaff>,
        on: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE practices SET patients_need_mfa = $2 WHERE id = $1")
                .bind(grant.object().as_uuid())
                .bind(on)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn patients_need_mfa<'a>(&'a self, grant: &'a authz::Grant<authz::ManageStaff>) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let on: Option<bool> = sqlx::query_scalar("SELECT patients_need_mfa FROM practices WHERE id = $1")
                .bind(grant.object().as_uuid())
                .fetch_optional(&self.pool)
                .await?;
            Ok(on.unwrap_or(false))
        })
    }

    fn mark_session_passkey(&self, session: domain::SessionId) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE sessions SET mfa_passkey = TRUE WHERE id = $1")
                .bind(session.as_uuid())
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn platform_flag<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let v: Option<Vec<u8>> = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
            Ok(v.as_deref() == Some(b"on".as_slice()))
        })
    }

    fn set_platform_flag<'a>(
        &'a self,
        _grant: &'a authz::Grant<authz::ManagePractices>,
        name: &'a str,
        on: bool,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let value: &[u8] = if on { b"on" } else { b"off" };
            sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
                .bind(name)
                .bind(value)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn passkeys(&self, account: AccountId) -> BoxFuture<'_, Result<Vec<PasskeyRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, account_id, name, credential, created_at, last_used_at FROM passkeys \
                 WHERE account_id = $1 ORDER BY created_at, id",
            )
            .bind(account.as_uuid())
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(passkey_row).collect()
        })
    }

    fn passkey_by_credential<'a>(&'a self, credential_id: &'a [u8]) -> BoxFuture<'a, Result<Option<PasskeyRow>>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT id, account_id, name, credential, created_at, last_used_at FROM passkeys WHERE credential_id = $1",
            )
            .bind(credential_id)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(passkey_row).transpose()
        })
    }

    fn add_passkey<'a>(&'a self, row: &'a PasskeyRow, credential_id: &'a [u8]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO passkeys (id, account_id, credential_id, name, credential, created_at, last_used_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL) ON CONFLICT (credential_id) DO NOTHING",
            )
            .bind(row.id)
            .bind(row.account.as_uuid())
            .bind(credential_id)
            .bind(&row.name)
            .bind(&row.credential)
            .bind(row.created_at)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn passkey_used<'a>(&'a self, id: uuid::Uuid, credential: &'a str, now: UnixTime) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE passkeys SET credential = $2, last_used_at = $3 WHERE id = $1")
                .bind(id)
                .bind(credential)
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn remove_passkey(&self, account: AccountId, id: uuid::Uuid) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query("DELETE FROM passkeys WHERE id = $1 AND account_id = $2")
                .bind(id)
                .bind(account.as_uuid())
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn create_ceremony<'a>(
        &'a self,
        token_hash: &'a [u8],
        account: Option<AccountId>,
        purpose: &'a str,
        state: &'a str,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let ceremony = NewToken {
                kind: TokenKind::PasskeyCeremony,
                token_hash,
                purpose: Some(purpose),
                account,
                detail: Some(state),
                created_at: now,
                expires_at,
            };
            tokens::issue(&self.pool, &ceremony).await
        })
    }

    fn take_ceremony<'a>(&'a self, token_hash: &'a [u8], now: UnixTime) -> BoxFuture<'a, Result<Option<CeremonyRow>>> {
        Box::pin(async move {
            let Some(t) =
                tokens::redeem(&self.pool, TokenKind::PasskeyCeremony, token_hash, now, NO_LIMIT, None).await?
            else {
                return Ok(None);
            };
            let (Some(purpose), Some(state)) = (t.purpose, t.detail) else {
                return Err(crate::portable::corrupt("passkey ceremony"));
            };
            Ok(Some(CeremonyRow { account: t.account, purpose, state }))
        })
    }

    fn totp_factor(&self, account: AccountId) -> BoxFuture<'_, Result<Option<TotpRow>>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT secret, confirmed_at, last_step FROM totp_factors WHERE account_id = $1")
                .bind(account.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
            row.map(|r| {
                Ok(TotpRow {
                    secret: r.try_get("secret")?,
                    confirmed_at: r.try_get("confirmed_at")?,
                    last_step: r.try_get("last_step")?,
                })
            })
            .transpose()
        })
    }

    fn totp_secrets<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::MasterKeyCustody>,
        after: Option<AccountId>,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<crate::mfa::StoredSecret>>> {
        Box::pin(async move {
            let _ = grant;
            let rows = sqlx::query(
                "SELECT account_id, secret FROM totp_factors WHERE ($1 OR account_id > $2) ORDER BY account_id LIMIT $3",
            )
            .bind(after.is_none())
            .bind(after.map_or(uuid::Uuid::nil(), |a| a.as_uuid()))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(|r| Ok((AccountId::from_uuid(r.try_get("account_id")?), r.try_get("secret")?))).collect()
        })
    }

    fn replace_totp_secret<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::MasterKeyCustody>,
        account: AccountId,
        old: &'a [u8],
        new: &'a [u8],
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let _ = grant;
            let done = sqlx::query("UPDATE totp_factors SET secret = $3 WHERE account_id = $1 AND secret = $2")
                .bind(account.as_uuid())
                .bind(old)
                .bind(new)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn request_patient_reset<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManageAccounts>,
        request: &'a crate::PatientResetRequest,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let _ = grant;
            sqlx::query(
                "INSERT INTO patient_reset_requests (id, account_id, requested_by, checked, requested_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(request.id)
            .bind(request.account.as_uuid())
            .bind(request.requested_by.as_uuid())
            .bind(&request.checked)
            .bind(request.requested_at)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn open_patient_resets<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManageAccounts>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<crate::PatientResetRequest>>> {
        Box::pin(async move {
            let _ = grant;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{RESET_REQUESTS} WHERE r.approved_at IS NULL AND r.expires_at > $1 ORDER BY r.requested_at LIMIT 100"
            )))
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(reset_request).collect()
        })
    }

    fn approve_patient_reset<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::ManageAccounts>,
        id: uuid::Uuid,
        approver: AccountId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<crate::PatientResetRequest>>> {
        Box::pin(async move {
            let _ = grant;
            let mut tx = self.begin().await?;
            let done = sqlx::query(
                "UPDATE patient_reset_requests SET approved_by = $2, approved_at = $3 \
                 WHERE id = $1 AND approved_at IS NULL AND expires_at > $3 AND requested_by <> $2",
            )
            .bind(id)
            .bind(approver.as_uuid())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(None);
            }
            let row = sqlx::query(sqlx::AssertSqlSafe(format!("{RESET_REQUESTS} WHERE r.id = $1")))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let request = reset_request(&row)?;
            tx.commit().await?;
            Ok(Some(request))
        })
    }

    fn start_totp<'a>(&'a self, account: AccountId, secret: &'a [u8], now: UnixTime) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO totp_factors (account_id, secret, confirmed_at, last_step, created_at) \
                 VALUES ($1, $2, NULL, 0, $3) ON CONFLICT (account_id) DO UPDATE \
                 SET secret = excluded.secret, created_at = excluded.created_at, last_step = 0 \
                 WHERE totp_factors.confirmed_at IS NULL",
            )
            .bind(account.as_uuid())
            .bind(secret)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn confirm_totp<'a>(
        &'a self,
        account: AccountId,
        step: i64,
        now: UnixTime,
        code_hashes: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let done = sqlx::query(
                "UPDATE totp_factors SET confirmed_at = $2, last_step = $3 \
                 WHERE account_id = $1 AND confirmed_at IS NULL AND last_step < $3",
            )
            .bind(account.as_uuid())
            .bind(now)
            .bind(step)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            replace_codes(&mut tx, account, code_hashes).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn accept_totp_step(&self, account: AccountId, step: i64) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE totp_factors SET last_step = $2 WHERE account_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2",
            )
            .bind(account.as_uuid())
            .bind(step)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn use_recovery_code<'a>(
        &'a self,
        account: AccountId,
        hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE recovery_codes SET used_at = $3 WHERE account_id = $1 AND code_hash = $2 AND used_at IS NULL",
            )
            .bind(account.as_uuid())
            .bind(hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn replace_recovery_codes<'a>(&'a self, account: AccountId, hashes: &'a [Vec<u8>]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            replace_codes(&mut tx, account, hashes).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn recovery_codes_left(&self, account: AccountId) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL")
                .bind(account.as_uuid())
                .fetch_one(&self.pool)
                .await?)
        })
    }

    fn remove_factors(&self, account: AccountId) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let had = sqlx::query("DELETE FROM totp_factors WHERE account_id = $1")
                .bind(account.as_uuid())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            let passkeys = sqlx::query("DELETE FROM passkeys WHERE account_id = $1")
                .bind(account.as_uuid())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let had = had || passkeys > 0;
            sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
                .bind(account.as_uuid())
                .execute(&mut *tx)
                .await?;
            tokens::forget(&mut *tx, TokenKind::MfaChallenge, account).await?;
            tokens::forget(&mut *tx, TokenKind::PasskeyCeremony, account).await?;
            tx.commit().await?;
            Ok(had)
        })
    }

    fn mark_session_mfa<'a>(
        &'a self,
        session: domain::SessionId,
        now: UnixTime,
        new_token_hash: &'a [u8],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE sessions SET mfa_at = $2, token_hash = $3 WHERE id = $1 AND ended_at IS NULL")
                .bind(session.as_uuid())
                .bind(now)
                .bind(new_token_hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn record_mfa_failure(&self, account: AccountId, now: UnixTime) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { tokens::record_failure(&self.pool, TokenKind::MfaChallenge, account, now).await })
    }

    fn reset_session_mfa(
        &self,
        account: AccountId,
        keep: Option<domain::SessionId>,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            sqlx::query(
                "UPDATE sessions SET mfa_at = NULL, setup_ok_at = NULL, mfa_passkey = FALSE WHERE account_id = $1",
            )
            .bind(account.as_uuid())
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE sessions SET ended_at = $3 WHERE account_id = $1 AND ended_at IS NULL AND id <> $2")
                .bind(account.as_uuid())
                .bind(keep.map_or(uuid::Uuid::nil(), |s| s.as_uuid()))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn allow_factor_setup<'a>(
        &'a self,
        session: domain::SessionId,
        now: UnixTime,
        new_token_hash: &'a [u8],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE sessions SET setup_ok_at = $2, token_hash = $3 WHERE id = $1 AND ended_at IS NULL")
                .bind(session.as_uuid())
                .bind(now)
                .bind(new_token_hash)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn remember_device<'a>(
        &'a self,
        account: AccountId,
        device_hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO known_devices (account_id, device_hash, first_seen_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id, device_hash) DO NOTHING",
            )
            .bind(account.as_uuid())
            .bind(device_hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 {
                return Ok(true);
            }
            // A finished sign-in from a known browser: its run of wrong passwords ends.
            sqlx::query(
                "UPDATE known_devices SET failures = 0 WHERE account_id = $1 AND device_hash = $2 AND failures <> 0",
            )
            .bind(account.as_uuid())
            .bind(device_hash)
            .execute(&self.pool)
            .await?;
            Ok(false)
        })
    }

    fn create_mfa_challenge<'a>(
        &'a self,
        token_hash: &'a [u8],
        account: AccountId,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let challenge = NewToken::for_account(TokenKind::MfaChallenge, token_hash, account, now, expires_at);
            tokens::issue(&self.pool, &challenge).await
        })
    }

    fn mfa_challenge<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        max_failures: i32,
    ) -> BoxFuture<'a, Result<Option<AccountId>>> {
        Box::pin(async move {
            let live = tokens::peek(&self.pool, TokenKind::MfaChallenge, token_hash, now, max_failures).await?;
            Ok(live.and_then(|t| t.account))
        })
    }

    fn recent_mfa_failures(&self, account: AccountId, since: UnixTime) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move { tokens::failures_since(&self.pool, TokenKind::MfaChallenge, account, since).await })
    }

    fn fail_mfa_challenge<'a>(&'a self, token_hash: &'a [u8]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { tokens::fail(&self.pool, TokenKind::MfaChallenge, token_hash).await })
    }

    fn use_mfa_challenge<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        max_failures: i32,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let used = tokens::redeem(&self.pool, TokenKind::MfaChallenge, token_hash, now, max_failures, None).await?;
            Ok(used.is_some())
        })
    }
}

// The SQL of the sessions aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 sessions/sql.rs` (CI checks it).

use crate::portable::{account_kind, staff_role};
use crate::{
    AccountId, BoxFuture, NewSession, PatientId, PracticeId, Result, SessionId, SessionRow, SessionStore,
    SessionSubject, UnixTime,
};

use sqlx::Row;
use uuid::Uuid;

type DbRow = <Db as sqlx::Database>::Row;

fn session_row(r: &DbRow) -> Result<SessionRow> {
    Ok(SessionRow {
        id: SessionId::from_uuid(r.try_get("id")?),
        account: AccountId::from_uuid(r.try_get("account_id")?),
        created_at: r.try_get("created_at")?,
        last_seen_at: r.try_get("last_seen_at")?,
        absolute_expires_at: r.try_get("absolute_expires_at")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        mfa_at: r.try_get("mfa_at")?,
        setup_ok_at: r.try_get("setup_ok_at")?,
        mfa_passkey: r.try_get("mfa_passkey")?,
        step_up_at: r.try_get("step_up_at")?,
    })
}

impl SessionStore for This {
    fn create_session<'a>(&'a self, s: &'a NewSession) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            // Only for an account that is not disabled: whatever proved who they are (a
            // password, a passkey, a link), a disabled account gets no session.
            let opened = sqlx::query(
                "INSERT INTO sessions (id, token_hash, account_id, created_at, last_seen_at, absolute_expires_at, ip, user_agent, mfa_at, setup_ok_at, \
                 mfa_passkey) SELECT $1, $2, $3, $4, $4, $5, $6, $7, $8, $9, $10 \
                 WHERE EXISTS (SELECT 1 FROM accounts WHERE id = $3 AND disabled_at IS NULL)",
            )
            .bind(s.id.as_uuid())
            .bind(&s.token_hash)
            .bind(s.account.as_uuid())
            .bind(s.created_at)
            .bind(s.absolute_expires_at)
            .bind(&s.ip)
            .bind(&s.user_agent)
            .bind(s.mfa_at)
            .bind(s.setup_ok_at)
            .bind(s.mfa_passkey)
            .execute(&self.pool)
            .await?;
            if opened.rows_affected() != 1 {
                return Err(crate::StoreError::NotFound);
            }
            Ok(())
        })
    }

    fn live_session<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        idle_cutoff: UnixTime,
    ) -> BoxFuture<'a, Result<Option<SessionRow>>> {
        Box::pin(async move {
            sqlx::query(
                "SELECT s.id, s.account_id, s.created_at, s.last_seen_at, s.absolute_expires_at, s.ip, s.user_agent, s.mfa_at, s.setup_ok_at, \
                 s.mfa_passkey, s.step_up_at \
                 FROM sessions s JOIN accounts a ON a.id = s.account_id \
                 WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.suspended_at IS NULL AND s.absolute_expires_at > $2 \
                   AND s.last_seen_at > $3 AND a.disabled_at IS NULL",
            )
            .bind(token_hash)
            .bind(now)
            .bind(idle_cutoff)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(session_row)
            .transpose()
        })
    }

    fn session_subject<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        idle_cutoff: UnixTime,
        passkeys_flag: &'a str,
    ) -> BoxFuture<'a, Result<Option<SessionSubject>>> {
        Box::pin(async move {
            let Some(r) = sqlx::query(
                "SELECT s.id, s.account_id, s.created_at, s.last_seen_at, s.absolute_expires_at, s.ip, s.user_agent, \
                 s.mfa_at, s.setup_ok_at, s.mfa_passkey, s.step_up_at, a.kind, a.display_name, a.password_breached_at, \
                 a.second_factor_required_at, \
                 pt.id AS patient_id, st.practice_id AS staff_practice, st.role AS staff_role, \
                 (EXISTS (SELECT 1 FROM enrolments e JOIN practices p ON p.id = e.practice_id \
                          WHERE e.patient_id IN (pt.id, s.acting_for) AND p.patients_need_mfa) \
                  OR EXISTS (SELECT 1 FROM proxies x2 JOIN practices p2 ON p2.id = x2.practice_id \
                          WHERE x2.proxy_account_id = a.id AND x2.revoked_at IS NULL AND p2.patients_need_mfa)) \
                  AS patient_must_use_mfa, \
                 (EXISTS (SELECT 1 FROM totp_factors t WHERE t.account_id = a.id AND t.confirmed_at IS NOT NULL) \
                  OR EXISTS (SELECT 1 FROM passkeys k WHERE k.account_id = a.id)) AS has_second_factor, \
                 EXISTS (SELECT 1 FROM settings g WHERE g.name = $4 AND g.value = $5) AS passkeys_required, \
                 s.acting_for, ap.name AS acting_name, x.relationship AS acting_relationship, x.scopes AS acting_scopes, \
                 (SELECT COUNT(*) FROM notices n WHERE n.account_id = a.id AND n.read_at IS NULL) AS unread_notices \
                 FROM sessions s JOIN accounts a ON a.id = s.account_id \
                 LEFT JOIN patients pt ON pt.account_id = a.id \
                 LEFT JOIN staff st ON st.account_id = a.id AND st.removed_at IS NULL \
                 LEFT JOIN patients ap ON ap.id = s.acting_for \
                 LEFT JOIN proxies x ON x.proxy_account_id = a.id AND x.patient_id = s.acting_for AND x.revoked_at IS NULL \
                 WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.suspended_at IS NULL AND s.absolute_expires_at > $2 \
                   AND s.last_seen_at > $3 AND a.disabled_at IS NULL",
            )
            .bind(token_hash)
            .bind(now)
            .bind(idle_cutoff)
            .bind(passkeys_flag)
            .bind(b"on".as_slice())
            .fetch_optional(&self.pool)
            .await?
            else {
                return Ok(None);
            };
            let staff = match r.try_get::<Option<Uuid>, _>("staff_practice")? {
                Some(practice) => {
                    Some((PracticeId::from_uuid(practice), staff_role(&r.try_get::<String, _>("staff_role")?)?))
                }
                None => None,
            };
            Ok(Some(SessionSubject {
                session: session_row(&r)?,
                kind: account_kind(&r.try_get::<String, _>("kind")?)?,
                display_name: r.try_get("display_name")?,
                password_breached_at: r.try_get("password_breached_at")?,
                patient: r.try_get::<Option<Uuid>, _>("patient_id")?.map(PatientId::from_uuid),
                staff,
                patient_must_use_mfa: r.try_get("patient_must_use_mfa")?,
                second_factor_required_at: r.try_get("second_factor_required_at")?,
                has_second_factor: r.try_get("has_second_factor")?,
                passkeys_required: r.try_get("passkeys_required")?,
                acting_for: match (
                    r.try_get::<Option<Uuid>, _>("acting_for")?,
                    r.try_get::<Option<String>, _>("acting_name")?,
                ) {
                    (Some(id), Some(name)) => Some(crate::SessionActing {
                        patient: PatientId::from_uuid(id),
                        name,
                        link: match (
                            r.try_get::<Option<String>, _>("acting_relationship")?
                                .as_deref()
                                .and_then(domain::proxies::Relationship::parse),
                            r.try_get::<Option<String>, _>("acting_scopes")?,
                        ) {
                            (Some(rel), Some(scopes)) => Some((rel, domain::proxies::ProxyScopes::parse(&scopes))),
                            _ => None,
                        },
                    }),
                    _ => None,
                },
                unread_notices: r.try_get("unread_notices")?,
            }))
        })
    }

    fn touch_session(&self, id: SessionId, now: UnixTime) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1 AND ended_at IS NULL")
                .bind(id.as_uuid())
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn list_sessions(
        &self,
        account: AccountId,
        now: UnixTime,
        idle_cutoff: UnixTime,
    ) -> BoxFuture<'_, Result<Vec<SessionRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, account_id, created_at, last_seen_at, absolute_expires_at, ip, user_agent, mfa_at, setup_ok_at, mfa_passkey, step_up_at \
                 FROM sessions \
                 WHERE account_id = $1 AND ended_at IS NULL AND suspended_at IS NULL AND absolute_expires_at > $2 AND last_seen_at > $3 \
                 ORDER BY last_seen_at DESC, created_at DESC",
            )
            .bind(account.as_uuid())
            .bind(now)
            .bind(idle_cutoff)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(session_row).collect()
        })
    }

    fn end_session(&self, account: AccountId, session: SessionId, now: UnixTime) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let done =
                sqlx::query("UPDATE sessions SET ended_at = $3 WHERE id = $1 AND account_id = $2 AND ended_at IS NULL")
                    .bind(session.as_uuid())
                    .bind(account.as_uuid())
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn end_other_sessions(
        &self,
        account: AccountId,
        keep: Option<SessionId>,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            // A nil id matches no session, so `keep = None` ends them all.
            let keep = keep.map_or(Uuid::nil(), |k| k.as_uuid());
            let done = sqlx::query(
                "UPDATE sessions SET ended_at = $3 WHERE account_id = $1 AND id <> $2 AND ended_at IS NULL",
            )
            .bind(account.as_uuid())
            .bind(keep)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
    }
}

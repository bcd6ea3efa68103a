// The SQL of the proxy aggregate, one text for both engines: included by `mod.rs` once for
// `SQLite` and once for `PostgreSQL`. Format with `rustfmt --edition 2024 proxies/sql.rs`.

use crate::proxies::{NewProxy, OTHER_PRACTICES_LINK, ProxyRow, ProxyStore, terms};
use crate::{Result, SessionId, StoreError};
use authz::{AcceptProxy, ActFor, Grant, ListProxies, RevokeProxy, SetProxyRules, SetUpProxy};
use domain::{AccountId, BoxFuture, PatientId, PracticeId, ProxyId, UnixTime};
use sqlx::Row;
use uuid::Uuid;

type DbRow = <Db as sqlx::Database>::Row;

const COLUMNS: &str = "x.id, x.practice_id, pr.name AS practice_name, x.patient_id, p.name AS patient_name, \
    p.date_of_birth, x.proxy_account_id, a.display_name AS proxy_name, x.relationship, x.scopes, x.starts_at, \
    x.expires_at, x.needs_acceptance, x.accepted_at, x.revoked_at, x.identity_check, x.created_at, \
    COALESCE(r.cutoff_age, 14) AS cutoff_age \
    FROM proxies x JOIN patients p ON p.id = x.patient_id JOIN practices pr ON pr.id = x.practice_id \
    JOIN accounts a ON a.id = x.proxy_account_id LEFT JOIN proxy_rules r ON r.practice_id = x.practice_id";

/// Revoked links are shown for a year, then only the access log remembers them.
const SHOWN_AFTER_REVOCATION: UnixTime = 365 * 86_400;

fn proxy_row(r: &DbRow) -> Result<ProxyRow> {
    let dob: String = r.try_get("date_of_birth")?;
    Ok(ProxyRow {
        id: ProxyId::from_uuid(r.try_get("id")?),
        practice: PracticeId::from_uuid(r.try_get("practice_id")?),
        practice_name: r.try_get("practice_name")?,
        patient: PatientId::from_uuid(r.try_get("patient_id")?),
        patient_name: r.try_get("patient_name")?,
        proxy: AccountId::from_uuid(r.try_get("proxy_account_id")?),
        proxy_name: r.try_get("proxy_name")?,
        terms: terms(
            PracticeId::from_uuid(r.try_get("practice_id")?),
            &r.try_get::<String, _>("relationship")?,
            &r.try_get::<String, _>("scopes")?,
            r.try_get("starts_at")?,
            r.try_get("expires_at")?,
            r.try_get("needs_acceptance")?,
            r.try_get("accepted_at")?,
            r.try_get("revoked_at")?,
            &dob,
            r.try_get("cutoff_age")?,
        )?,
        identity_check: r.try_get("identity_check")?,
        created_at: r.try_get("created_at")?,
    })
}

impl ProxyStore for This {
    fn set_up_proxy<'a>(
        &'a self,
        grant: &'a Grant<SetUpProxy>,
        new: &'a NewProxy,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let practice = grant.via_practice().ok_or(StoreError::NotFound)?;
            let mut tx = self.begin().await?;
            if let Some((account, invite)) = &new.invite {
                if account.id != new.proxy || account.kind != domain::AccountKind::Patient {
                    return Err(StoreError::NotFound);
                }
                shared::insert_account(&mut tx, account).await?;
                shared::insert_invitation(&mut tx, invite, Some(account.id)).await?;
            }
            if let Some(invite) = &new.reinvite {
                shared::insert_invitation(&mut tx, invite, Some(new.proxy)).await?;
            }
            // The patient is still enrolled there (the grant's relationship, repeated), and the
            // proxy is a live account that is not the patient's own.
            let ok = sqlx::query(
                "SELECT 1 FROM enrolments e JOIN patients p ON p.id = e.patient_id \
                 JOIN accounts a ON a.id = $3 AND a.disabled_at IS NULL \
                 WHERE e.patient_id = $1 AND e.practice_id = $2 AND p.account_id <> $3",
            )
            .bind(patient.as_uuid())
            .bind(practice.as_uuid())
            .bind(new.proxy.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
            if ok.is_none() {
                return Err(StoreError::NotFound);
            }
            // A link another practice set up is that practice's to end, never replaced from here.
            let elsewhere = sqlx::query(
                "SELECT 1 FROM proxies WHERE patient_id = $1 AND proxy_account_id = $2 AND revoked_at IS NULL \
                 AND practice_id <> $3",
            )
            .bind(patient.as_uuid())
            .bind(new.proxy.as_uuid())
            .bind(practice.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
            if elsewhere.is_some() {
                return Err(StoreError::Conflict(OTHER_PRACTICES_LINK));
            }
            sqlx::query(
                "UPDATE proxies SET revoked_at = $3, revoked_by = $4 \
                 WHERE patient_id = $1 AND proxy_account_id = $2 AND practice_id = $5 AND revoked_at IS NULL",
            )
            .bind(patient.as_uuid())
            .bind(new.proxy.as_uuid())
            .bind(now)
            .bind(new.created_by.as_uuid())
            .bind(practice.as_uuid())
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO proxies (id, practice_id, patient_id, proxy_account_id, relationship, scopes, starts_at, \
                 expires_at, needs_acceptance, identity_check, created_by, created_at, accepted_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(new.id.as_uuid())
            .bind(practice.as_uuid())
            .bind(patient.as_uuid())
            .bind(new.proxy.as_uuid())
            .bind(new.relationship.as_str())
            .bind(new.scopes.to_list())
            .bind(new.starts_at)
            .bind(new.expires_at)
            .bind(new.needs_acceptance)
            .bind(&new.identity_check)
            .bind(new.created_by.as_uuid())
            .bind(now)
            // A legal representative's authority answers for an adult who cannot.
            .bind(new.accepted_on_authority.then_some(now))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn patient_proxies<'a>(
        &'a self,
        grant: &'a Grant<ListProxies>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<ProxyRow>>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let practice = grant.via_practice().map_or(Uuid::nil(), |p| p.as_uuid());
            let sql = format!(
                "SELECT {COLUMNS} WHERE x.patient_id = $1 AND ($2 = $3 OR x.practice_id = $2) \
                 AND (x.revoked_at IS NULL OR x.revoked_at > $4) ORDER BY x.created_at DESC, x.id"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(patient.as_uuid())
                .bind(practice)
                .bind(Uuid::nil())
                .bind(now - SHOWN_AFTER_REVOCATION)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(proxy_row).collect()
        })
    }

    fn acting_links(&self, account: AccountId) -> BoxFuture<'_, Result<Vec<ProxyRow>>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT {COLUMNS} WHERE x.proxy_account_id = $1 AND x.revoked_at IS NULL \
                 AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = x.patient_id AND e.practice_id = x.practice_id) \
                 ORDER BY p.name, x.id"
            );
            let rows =
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(account.as_uuid()).fetch_all(&self.pool).await?;
            rows.iter().map(proxy_row).collect()
        })
    }

    fn proxy_link(&self, id: ProxyId) -> BoxFuture<'_, Result<Option<ProxyRow>>> {
        Box::pin(async move {
            let sql = format!("SELECT {COLUMNS} WHERE x.id = $1");
            let row =
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id.as_uuid()).fetch_optional(&self.pool).await?;
            row.as_ref().map(proxy_row).transpose()
        })
    }

    fn accept_proxy<'a>(&'a self, grant: &'a Grant<AcceptProxy>, now: UnixTime) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let done = sqlx::query(
                "UPDATE proxies SET accepted_at = $3 WHERE id = $1 AND patient_id = $2 AND needs_acceptance \
                 AND accepted_at IS NULL AND revoked_at IS NULL",
            )
            .bind(grant.object().as_uuid())
            .bind(patient.as_uuid())
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn revoke_proxy<'a>(
        &'a self,
        grant: &'a Grant<RevokeProxy>,
        by: AccountId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let mut tx = self.begin().await?;
            let row = sqlx::query(
                "UPDATE proxies SET revoked_at = $3, revoked_by = $4 WHERE id = $1 AND patient_id = $2 \
                 AND revoked_at IS NULL RETURNING proxy_account_id",
            )
            .bind(grant.object().as_uuid())
            .bind(patient.as_uuid())
            .bind(now)
            .bind(by.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(false);
            };
            let proxy: Uuid = row.try_get(0)?;
            // Sessions open on the patient's record go back to the proxy's own at once.
            sqlx::query("UPDATE sessions SET acting_for = NULL WHERE account_id = $1 AND acting_for = $2")
                .bind(proxy)
                .bind(patient.as_uuid())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn act_for<'a>(&'a self, session: SessionId, grant: &'a Grant<ActFor>) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let account = grant.actor().ok_or(StoreError::NotFound)?;
            let done = sqlx::query(
                "UPDATE sessions SET acting_for = $2 WHERE id = $1 AND account_id = $3 AND ended_at IS NULL",
            )
            .bind(session.as_uuid())
            .bind(patient.as_uuid())
            .bind(account.as_uuid())
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) }
        })
    }

    fn act_as_self(&self, session: SessionId) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE sessions SET acting_for = NULL WHERE id = $1")
                .bind(session.as_uuid())
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn proxy_cutoff(&self, practice: PracticeId) -> BoxFuture<'_, Result<u8>> {
        Box::pin(async move {
            let age: Option<i32> = sqlx::query_scalar("SELECT cutoff_age FROM proxy_rules WHERE practice_id = $1")
                .bind(practice.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
            Ok(age.and_then(|a| u8::try_from(a).ok()).unwrap_or(domain::proxies::DEFAULT_CUTOFF_AGE))
        })
    }

    fn set_proxy_cutoff<'a>(
        &'a self,
        grant: &'a Grant<SetProxyRules>,
        age: u8,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO proxy_rules (practice_id, cutoff_age, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (practice_id) DO UPDATE SET cutoff_age = excluded.cutoff_age, updated_at = excluded.updated_at",
            )
            .bind(grant.object().as_uuid())
            .bind(i32::from(age))
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }
}

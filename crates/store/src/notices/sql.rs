// The SQL of the inbox aggregate, one text for both engines: included by `mod.rs` once for
// `SQLite` and once for `PostgreSQL`. Format with `rustfmt --edition 2024 notices/sql.rs`.

use crate::notices::NoticeStore;
use crate::{NewMail, NoticeRow, Recipient, Result};
use domain::{AccountId, BoxFuture, NoticeId, PatientId, PracticeId, UnixTime};
use sqlx::Row;
use uuid::Uuid;

impl NoticeStore for This {
    fn notices(&self, account: AccountId, limit: i64) -> BoxFuture<'_, Result<Vec<NoticeRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT n.id, n.patient_id, p.name, n.kind, n.title, n.link, n.created_at, n.read_at \
                 FROM notices n LEFT JOIN patients p ON p.id = n.patient_id \
                 WHERE n.account_id = $1 ORDER BY n.created_at DESC, n.id LIMIT $2",
            )
            .bind(account.as_uuid())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let patient =
                        match (r.try_get::<Option<Uuid>, _>("patient_id")?, r.try_get::<Option<String>, _>("name")?) {
                            (Some(id), Some(name)) => Some((PatientId::from_uuid(id), name)),
                            _ => None,
                        };
                    Ok(NoticeRow {
                        id: NoticeId::from_uuid(r.try_get("id")?),
                        patient,
                        kind: r.try_get("kind")?,
                        title: r.try_get("title")?,
                        link: r.try_get("link")?,
                        created_at: r.try_get("created_at")?,
                        read_at: r.try_get("read_at")?,
                    })
                })
                .collect()
        })
    }

    fn mark_notices_read(
        &self,
        account: AccountId,
        notice: Option<NoticeId>,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE notices SET read_at = $3 WHERE account_id = $1 AND ($2 = $4 OR id = $2) AND read_at IS NULL",
            )
            .bind(account.as_uuid())
            .bind(notice.map_or(Uuid::nil(), |n| n.as_uuid()))
            .bind(now)
            .bind(Uuid::nil())
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    fn notice_prefs(&self, account: AccountId) -> BoxFuture<'_, Result<Vec<(String, bool)>>> {
        Box::pin(async move {
            let rows = sqlx::query("SELECT kind, email FROM notice_prefs WHERE account_id = $1 ORDER BY kind")
                .bind(account.as_uuid())
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(|r| Ok((r.try_get("kind")?, r.try_get("email")?))).collect()
        })
    }

    fn set_notice_pref<'a>(&'a self, account: AccountId, kind: &'a str, email: bool) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO notice_prefs (account_id, kind, email) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id, kind) DO UPDATE SET email = excluded.email",
            )
            .bind(account.as_uuid())
            .bind(kind)
            .bind(email)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn recipients<'a>(&'a self, patient: PatientId, kind: &'a str) -> BoxFuture<'a, Result<Vec<Recipient>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT a.id, a.display_name, a.email, a.password_hash IS NOT NULL AS active, \
                 COALESCE((SELECT np.email FROM notice_prefs np WHERE np.account_id = a.id AND np.kind = $2), TRUE) AS email_on, \
                 NULL AS practice_id, NULL AS relationship, NULL AS scopes, 0 AS starts_at, NULL AS expires_at, FALSE AS needs_acceptance, \
                 NULL AS accepted_at, NULL AS revoked_at, p.date_of_birth, 14 AS cutoff_age, 0 AS is_proxy \
                 FROM patients p JOIN accounts a ON a.id = p.account_id WHERE p.id = $1 AND a.disabled_at IS NULL \
                 UNION ALL \
                 SELECT a.id, a.display_name, a.email, a.password_hash IS NOT NULL AS active, \
                 COALESCE((SELECT np.email FROM notice_prefs np WHERE np.account_id = a.id AND np.kind = $2), TRUE) AS email_on, \
                 x.practice_id, x.relationship, x.scopes, x.starts_at, x.expires_at, x.needs_acceptance, x.accepted_at, \
                 x.revoked_at, \
                 p.date_of_birth, COALESCE(r.cutoff_age, 14) AS cutoff_age, 1 AS is_proxy \
                 FROM proxies x JOIN patients p ON p.id = x.patient_id JOIN accounts a ON a.id = x.proxy_account_id \
                 LEFT JOIN proxy_rules r ON r.practice_id = x.practice_id \
                 WHERE x.patient_id = $1 AND x.revoked_at IS NULL AND a.disabled_at IS NULL \
                 AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = x.patient_id AND e.practice_id = x.practice_id)",
            )
            .bind(patient.as_uuid())
            .bind(kind)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let is_proxy: i32 = r.try_get("is_proxy")?;
                    let proxy = if is_proxy == 1 {
                        Some(crate::proxies::terms(
                            PracticeId::from_uuid(r.try_get("practice_id")?),
                            &r.try_get::<String, _>("relationship")?,
                            &r.try_get::<String, _>("scopes")?,
                            r.try_get("starts_at")?,
                            r.try_get("expires_at")?,
                            r.try_get("needs_acceptance")?,
                            r.try_get("accepted_at")?,
                            r.try_get("revoked_at")?,
                            &r.try_get::<String, _>("date_of_birth")?,
                            r.try_get("cutoff_age")?,
                        )?)
                    } else {
                        None
                    };
                    Ok(Recipient {
                        account: AccountId::from_uuid(r.try_get("id")?),
                        name: r.try_get("display_name")?,
                        email: r.try_get("email")?,
                        active: r.try_get("active")?,
                        proxy,
                        email_on: r.try_get("email_on")?,
                    })
                })
                .collect()
        })
    }

    fn tell<'a>(&'a self, mails: &'a [NewMail]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if mails.is_empty() {
                return Ok(());
            }
            let mut tx = self.begin().await?;
            for mail in mails {
                shared::insert_mail(&mut tx, mail).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

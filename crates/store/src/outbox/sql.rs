// The SQL of the outbox aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 outbox/sql.rs` (CI checks it).

use crate::{BoxFuture, MailRow, NewMail, OutboxStore, Result, UnixTime};
use shared::insert_mail;

use sqlx::Row;
use uuid::Uuid;

impl OutboxStore for This {
    fn enqueue_mail<'a>(&'a self, mail: &'a NewMail) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            insert_mail(&mut tx, mail).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn claim_mail(&self, now: UnixTime, lease_until: UnixTime, limit: i64) -> BoxFuture<'_, Result<Vec<MailRow>>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let ids: Vec<Uuid> = sqlx::query(
                "SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
                 AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at, created_at LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get::<Uuid, _>("id"))
            .collect::<Result<_, _>>()?;
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                // The lease condition is re-checked in the UPDATE, so a row claimed by
                // another node in between is skipped rather than sent twice.
                let row = sqlx::query(
                    "UPDATE outbox SET lease_until = $2, attempts = attempts + 1 \
                     WHERE id = $1 AND sent_at IS NULL AND (lease_until IS NULL OR lease_until <= $3) \
                     RETURNING id, recipient, subject, body, attempts",
                )
                .bind(id)
                .bind(lease_until)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(r) = row {
                    claimed.push(MailRow {
                        id: r.try_get("id")?,
                        recipient: r.try_get("recipient")?,
                        subject: r.try_get("subject")?,
                        body: r.try_get("body")?,
                        attempts: i64::from(r.try_get::<i32, _>("attempts")?),
                    });
                }
            }
            tx.commit().await?;
            Ok(claimed)
        })
    }

    fn mail_sent(&self, id: Uuid, now: UnixTime) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE outbox SET sent_at = $2, body = '', lease_until = NULL, last_error = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn mail_failed<'a>(&'a self, id: Uuid, next_attempt_at: UnixTime, error: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("UPDATE outbox SET next_attempt_at = $2, lease_until = NULL, last_error = $3 WHERE id = $1")
                .bind(id)
                .bind(next_attempt_at)
                .bind(error)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn pending_mail_count(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL").fetch_one(&self.pool).await?;
            Ok(row.try_get(0)?)
        })
    }
}

// The detection store's SQL, shared by both engines (included by `mod.rs`).

use crate::Result;
use crate::detection::{AlertRow, DetectionStore, NewAlert};
use domain::{BoxFuture, UnixTime};
use sqlx::Row;

impl DetectionStore for This {
    fn mark<'a>(
        &'a self,
        rule: &'a str,
        subject: &'a str,
        window_start: UnixTime,
        objects: &'a [String],
    ) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            sqlx::query("DELETE FROM detection_marks WHERE rule = $1 AND subject = $2 AND window_start < $3")
                .bind(rule)
                .bind(subject)
                .bind(window_start)
                .execute(&mut *tx)
                .await?;
            for object in objects {
                sqlx::query(
                    "INSERT INTO detection_marks (rule, subject, window_start, object) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(rule)
                .bind(subject)
                .bind(window_start)
                .bind(object)
                .execute(&mut *tx)
                .await?;
            }
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM detection_marks WHERE rule = $1 AND subject = $2 AND window_start = $3",
            )
            .bind(rule)
            .bind(subject)
            .bind(window_start)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(n)
        })
    }

    fn raise_alert<'a>(&'a self, a: &'a NewAlert) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO alerts (id, rule, severity, subject, account_id, response, seen, window_start, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(a.id.to_string())
            .bind(&a.rule)
            .bind(&a.severity)
            .bind(&a.subject)
            .bind(&a.account)
            .bind(&a.response)
            .bind(a.seen)
            .bind(a.window_start)
            .bind(a.created_at)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn alerts(&self, limit: i64) -> BoxFuture<'_, Result<Vec<AlertRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, rule, severity, subject, account_id, response, seen, created_at, acknowledged_at \
                 FROM alerts ORDER BY created_at DESC, id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(AlertRow {
                        id: r.try_get("id")?,
                        rule: r.try_get("rule")?,
                        severity: r.try_get("severity")?,
                        subject: r.try_get("subject")?,
                        account: r.try_get("account_id")?,
                        response: r.try_get("response")?,
                        seen: r.try_get("seen")?,
                        created_at: r.try_get("created_at")?,
                        acknowledged_at: r.try_get("acknowledged_at")?,
                    })
                })
                .collect()
        })
    }
}

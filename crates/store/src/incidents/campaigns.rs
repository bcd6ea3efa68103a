// The campaigns store's SQL, shared by both engines (included by `mod.rs`). Format with
// `rustfmt --edition 2024 incidents/campaigns.rs` (CI checks it).

use crate::Result;
use crate::incidents::{CampaignRow, CampaignStore, ClaimedNotice, CodeRow, NewCampaign, NewNotice, NoticeRow};
use authz::{Grant, LeadIncidents};
use domain::{BoxFuture, UnixTime};
use sqlx::Row;

/// Notices written in one statement.
const CHUNK: usize = 50;

use super::placeholders;

const CAMPAIGN_COLUMNS: &str = "c.id, c.incident_id, c.revision, c.created_at, c.per_minute, c.released_percent, \
     c.total, \
     CAST(COALESCE(SUM(CASE WHEN n.state IN ('queued', 'claimed') THEN 1 ELSE 0 END), 0) AS BIGINT) AS waiting, \
     CAST(COALESCE(SUM(CASE WHEN n.state = 'sending' THEN 1 ELSE 0 END), 0) AS BIGINT) AS unconfirmed, \
     CAST(COALESCE(SUM(CASE WHEN n.state = 'sent' THEN 1 ELSE 0 END), 0) AS BIGINT) AS sent, \
     CAST(COALESCE(SUM(CASE WHEN n.state = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) AS failed, \
     CAST(COALESCE(SUM(CASE WHEN n.state = 'cancelled' THEN 1 ELSE 0 END), 0) AS BIGINT) AS cancelled, \
     MIN(n.sent_at) AS first_sent_at, MAX(n.sent_at) AS last_sent_at";

impl This {
    /// Campaigns with their progress, where `filter` (on `c`, with `$1`) holds.
    async fn campaigns_where(&self, filter: &str, value: &str) -> Result<Vec<CampaignRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM incident_campaigns c LEFT JOIN incident_notices n ON n.campaign_id = c.id \
             WHERE {filter} \
             GROUP BY c.id, c.incident_id, c.revision, c.created_at, c.per_minute, c.released_percent, c.total \
             ORDER BY c.created_at, c.id"
        )))
        .bind(value)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CampaignRow {
                    id: r.try_get("id")?,
                    incident_id: r.try_get("incident_id")?,
                    revision: r.try_get("revision")?,
                    created_at: r.try_get("created_at")?,
                    per_minute: r.try_get("per_minute")?,
                    released_percent: r.try_get("released_percent")?,
                    total: r.try_get("total")?,
                    waiting: r.try_get("waiting")?,
                    unconfirmed: r.try_get("unconfirmed")?,
                    sent: r.try_get("sent")?,
                    failed: r.try_get("failed")?,
                    cancelled: r.try_get("cancelled")?,
                    first_sent_at: r.try_get("first_sent_at")?,
                    last_sent_at: r.try_get("last_sent_at")?,
                })
            })
            .collect()
    }
}

impl CampaignStore for This {
    fn create_campaign<'a>(
        &'a self,
        _grant: &'a Grant<LeadIncidents>,
        c: &'a NewCampaign,
        notices: &'a [NewNotice],
        cancel: &'a [String],
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO incident_campaigns (id, incident_id, revision, created_at, created_by, per_minute, \
                 released_percent, total) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&c.id)
            .bind(&c.incident_id)
            .bind(c.revision)
            .bind(c.created_at)
            .bind(&c.created_by)
            .bind(c.per_minute)
            .bind(c.released_percent)
            .bind(i64::try_from(notices.len()).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
            for id in cancel {
                // Only one that has not begun: a notice a sender holds goes out as it is.
                sqlx::query(
                    "UPDATE incident_notices SET state = 'cancelled', body = '' WHERE id = $1 AND state = 'queued'",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            for chunk in notices.chunks(CHUNK) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| format!("($1, $2, $3, $4, {}, 'queued', 0)", placeholders(5 + i * 9, 9)))
                    .collect();
                let text = format!(
                    "INSERT INTO incident_notices (campaign_id, incident_id, revision, created_at, id, patient_id, \
                     class, kind, position, code_hash, recipient, subject, body, state, attempts) VALUES {}",
                    values.join(", ")
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(text.as_str()))
                    .bind(&c.id)
                    .bind(&c.incident_id)
                    .bind(c.revision)
                    .bind(c.created_at);
                for n in chunk {
                    q = q
                        .bind(&n.id)
                        .bind(&n.patient_id)
                        .bind(&n.class)
                        .bind(&n.kind)
                        .bind(n.position)
                        .bind(&n.code_hash)
                        .bind(&n.recipient)
                        .bind(&n.subject)
                        .bind(&n.body);
                }
                q.execute(&mut *tx).await.map_err(crate::portable::map_unique)?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn campaigns<'a>(&'a self, incident: &'a str) -> BoxFuture<'a, Result<Vec<CampaignRow>>> {
        Box::pin(async move { self.campaigns_where("c.incident_id = $1", incident).await })
    }

    fn campaign<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<CampaignRow>>> {
        Box::pin(async move { Ok(self.campaigns_where("c.id = $1", id).await?.into_iter().next()) })
    }

    fn release_campaign<'a>(
        &'a self,
        _grant: &'a Grant<LeadIncidents>,
        id: &'a str,
        percent: i64,
        per_minute: i64,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE incident_campaigns SET released_percent = CASE WHEN released_percent > $2 THEN released_percent \
                 ELSE $2 END, per_minute = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(percent.clamp(0, 100))
            .bind(per_minute.max(1))
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn claim_notices<'a>(
        &'a self,
        campaign: &'a str,
        holder: &'a str,
        now: UnixTime,
        lease_until: UnixTime,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<ClaimedNotice>>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let released: Option<(i64, i64)> =
                sqlx::query("SELECT released_percent, total FROM incident_campaigns WHERE id = $1")
                    .bind(campaign)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| Ok::<_, sqlx::Error>((r.try_get("released_percent")?, r.try_get("total")?)))
                    .transpose()?;
            let Some((percent, total)) = released else { return Ok(Vec::new()) };
            // Positions are 0-based: the first `total * percent / 100` (rounded up) are released.
            let upto = (total * percent + 99) / 100;
            let ids: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM incident_notices WHERE campaign_id = $1 AND position < $2 \
                 AND (state = 'queued' OR (state = 'claimed' AND lease_until <= $3)) ORDER BY position LIMIT $4",
            )
            .bind(campaign)
            .bind(upto)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                // Re-checked in the UPDATE: a notice another sender claimed in between is skipped.
                let row = sqlx::query(
                    "UPDATE incident_notices SET state = 'claimed', holder = $2, lease_until = $3, \
                     attempts = attempts + 1 \
                     WHERE id = $1 AND (state = 'queued' OR (state = 'claimed' AND lease_until <= $4)) \
                     RETURNING id, recipient, subject, body",
                )
                .bind(&id)
                .bind(holder)
                .bind(lease_until)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(r) = row {
                    out.push(ClaimedNotice {
                        id: r.try_get("id")?,
                        recipient: r.try_get("recipient")?,
                        subject: r.try_get("subject")?,
                        body: r.try_get("body")?,
                    });
                }
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    fn notice_sending<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        now: UnixTime,
        previous: Option<(&'a str, &'a str, Option<&'a str>)>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            if let Some((prev, state, error)) = previous {
                settle_in(&mut tx, prev, state, error, now).await?;
            }
            let done = sqlx::query(
                "UPDATE incident_notices SET state = 'sending', sent_at = $3 \
                 WHERE id = $1 AND state = 'claimed' AND holder = $2",
            )
            .bind(id)
            .bind(holder)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn settle_notice<'a>(
        &'a self,
        id: &'a str,
        state: &'a str,
        error: Option<&'a str>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            settle_in(&mut tx, id, state, error, now).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn incident_notices<'a>(&'a self, incident: &'a str) -> BoxFuture<'a, Result<Vec<NoticeRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, campaign_id, revision, patient_id, class, kind, state, sent_at, error, recipient \
                 FROM incident_notices WHERE incident_id = $1 ORDER BY patient_id, created_at, id",
            )
            .bind(incident)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(NoticeRow {
                        id: r.try_get("id")?,
                        campaign_id: r.try_get("campaign_id")?,
                        revision: r.try_get("revision")?,
                        patient_id: r.try_get("patient_id")?,
                        class: r.try_get("class")?,
                        kind: r.try_get("kind")?,
                        state: r.try_get("state")?,
                        sent_at: r.try_get("sent_at")?,
                        error: r.try_get("error")?,
                        recipient: r.try_get("recipient")?,
                    })
                })
                .collect()
        })
    }

    fn in_doubt<'a>(&'a self, campaign: &'a str) -> BoxFuture<'a, Result<Vec<(String, String, UnixTime)>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, holder, lease_until FROM incident_notices WHERE campaign_id = $1 AND state = 'sending' \
                 ORDER BY id",
            )
            .bind(campaign)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("id")?,
                        r.try_get::<Option<String>, _>("holder")?.unwrap_or_default(),
                        r.try_get::<Option<i64>, _>("lease_until")?.unwrap_or(0),
                    ))
                })
                .collect()
        })
    }

    fn notice_by_code<'a>(&'a self, hash: &'a [u8]) -> BoxFuture<'a, Result<Option<CodeRow>>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT incident_id, patient_id, kind, state, sent_at FROM incident_notices WHERE code_hash = $1",
            )
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
            row.map(|r| {
                Ok(CodeRow {
                    incident_id: r.try_get("incident_id")?,
                    patient_id: r.try_get("patient_id")?,
                    kind: r.try_get("kind")?,
                    state: r.try_get("state")?,
                    sent_at: r.try_get("sent_at")?,
                })
            })
            .transpose()
        })
    }
}

/// Settles a notice in a transaction: `sent` and `failed` clear its body (it has gone, or will
/// be reached another way); `queued` returns it to the queue (the message never began, or the
/// server asked to try later).
async fn settle_in(
    tx: &mut sqlx::Transaction<'static, Db>,
    id: &str,
    state: &str,
    error: Option<&str>,
    now: UnixTime,
) -> Result<()> {
    let q = match state {
        "sent" => sqlx::query(
            "UPDATE incident_notices SET state = 'sent', body = '', error = $2, sent_at = COALESCE(sent_at, $3) \
             WHERE id = $1 AND state IN ('sending', 'claimed')",
        )
        .bind(id)
        .bind(error)
        .bind(now),
        "failed" => sqlx::query(
            "UPDATE incident_notices SET state = 'failed', body = '', error = $2, sent_at = $3 \
             WHERE id = $1 AND state IN ('sending', 'claimed')",
        )
        .bind(id)
        .bind(error)
        .bind(now),
        _ => sqlx::query(
            "UPDATE incident_notices SET state = 'queued', holder = NULL, lease_until = NULL, error = $2, \
             sent_at = NULL WHERE id = $1 AND state IN ('sending', 'claimed')",
        )
        .bind(id)
        .bind(error),
    };
    q.execute(&mut **tx).await?;
    Ok(())
}

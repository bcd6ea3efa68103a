// The SQL of the jobs aggregate, one text for both engines: included by `mod.rs` once for
// `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its database). Format
// with `rustfmt --edition 2024 jobs/sql.rs` (CI checks it).

use super::{JobRow, JobState, JobStore, NewJob};
use crate::Result;
use crate::portable::corrupt;
use domain::{BoxFuture, UnixTime};
use sqlx::Row;

type DbRow = <Db as sqlx::Database>::Row;

const COLUMNS: &str = "id, kind, idempotency_key, payload, state, attempts, max_attempts, run_after, lease_holder, \
                       lease_until, progress_done, progress_total, last_error";

fn job_row(r: &DbRow) -> Result<JobRow> {
    Ok(JobRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        idempotency_key: r.try_get("idempotency_key")?,
        payload: r.try_get("payload")?,
        state: JobState::from_stored(&r.try_get::<String, _>("state")?).ok_or_else(|| corrupt("job state"))?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        run_after: r.try_get("run_after")?,
        lease_holder: r.try_get("lease_holder")?,
        lease_until: r.try_get("lease_until")?,
        progress_done: r.try_get("progress_done")?,
        progress_total: r.try_get("progress_total")?,
        last_error: r.try_get("last_error")?,
    })
}

impl JobStore for This {
    fn enqueue_job<'a>(&'a self, job: &'a NewJob, id: &'a str, now: UnixTime) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO jobs (id, kind, idempotency_key, payload, state, max_attempts, run_after, created_at) \
                 VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7) ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(id)
            .bind(&job.kind)
            .bind(&job.idempotency_key)
            .bind(&job.payload)
            .bind(job.max_attempts.max(1))
            .bind(job.run_after)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn claim_job<'a>(
        &'a self,
        kinds: &'a [&'a str],
        holder: &'a str,
        now: UnixTime,
        lease_until: UnixTime,
    ) -> BoxFuture<'a, Result<Option<JobRow>>> {
        Box::pin(async move {
            // Due jobs of these kinds, oldest first; each claim is a compare-and-set on the
            // lease, so two nodes racing for one job cannot both win it.
            let mut q = sqlx::QueryBuilder::<Db>::new("SELECT id FROM jobs WHERE run_after <= ");
            q.push_bind(now);
            q.push(" AND (state = 'queued' OR (state = 'running' AND lease_until < ");
            q.push_bind(now);
            q.push(")) AND kind IN (");
            let mut list = q.separated(", ");
            for k in kinds {
                list.push_bind(*k);
            }
            q.push(") ORDER BY run_after, id LIMIT 5");
            let candidates: Vec<String> =
                q.build().fetch_all(&self.pool).await?.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
            for id in candidates {
                let claimed = sqlx::query(
                    "UPDATE jobs SET state = 'running', lease_holder = $2, lease_until = $3, attempts = attempts + 1 \
                     WHERE id = $1 AND run_after <= $4 \
                       AND (state = 'queued' OR (state = 'running' AND lease_until < $4))",
                )
                .bind(&id)
                .bind(holder)
                .bind(lease_until)
                .bind(now)
                .execute(&self.pool)
                .await?;
                if claimed.rows_affected() == 1 {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM jobs WHERE id = $1")))
                        .bind(&id)
                        .fetch_one(&self.pool)
                        .await?;
                    return job_row(&row).map(Some);
                }
            }
            Ok(None)
        })
    }

    fn job_progress<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        done: i64,
        total: Option<i64>,
        lease_until: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let r = sqlx::query(
                "UPDATE jobs SET progress_done = $3, progress_total = $4, lease_until = $5 \
                 WHERE id = $1 AND lease_holder = $2 AND state = 'running'",
            )
            .bind(id)
            .bind(holder)
            .bind(done)
            .bind(total)
            .bind(lease_until)
            .execute(&self.pool)
            .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    fn finish_job<'a>(&'a self, id: &'a str, holder: &'a str, now: UnixTime) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let r = sqlx::query(
                "UPDATE jobs SET state = 'done', finished_at = $3, lease_holder = NULL, lease_until = NULL \
                 WHERE id = $1 AND lease_holder = $2 AND state = 'running'",
            )
            .bind(id)
            .bind(holder)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    fn fail_job<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        error: &'a str,
        retry_at: UnixTime,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let r = sqlx::query(
                "UPDATE jobs SET last_error = $3, lease_holder = NULL, lease_until = NULL, \
                 state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END, \
                 run_after = CASE WHEN attempts >= max_attempts THEN run_after ELSE $4 END, \
                 finished_at = CASE WHEN attempts >= max_attempts THEN $5 ELSE NULL END \
                 WHERE id = $1 AND lease_holder = $2 AND state = 'running'",
            )
            .bind(id)
            .bind(holder)
            .bind(error)
            .bind(retry_at)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(r.rows_affected() == 1)
        })
    }

    fn job_by_key<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<JobRow>>> {
        Box::pin(async move {
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM jobs WHERE idempotency_key = $1")))
                .bind(key)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(job_row)
                .transpose()
        })
    }
}

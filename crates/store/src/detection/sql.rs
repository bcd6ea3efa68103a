// The detection store's SQL, shared by both engines (included by `mod.rs`).

use crate::Result;
use crate::detection::{AlertRow, Canaries, DetectionStore, Mark, NewAlert, Raised, SecurityAction, Settle, SwitchRow};
use domain::{BoxFuture, UnixTime};
use sqlx::Row;

macro_rules! alert_columns {
    () => {
        "id, rule, severity, subject, account_id, response, seen, window_start, created_at, \
     acknowledged_at, acknowledged_by, lifted_at, lifted_by, note"
    };
}

fn alert_row(r: &<Db as sqlx::Database>::Row) -> Result<AlertRow> {
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
        acknowledged_by: r.try_get("acknowledged_by")?,
        lifted_at: r.try_get("lifted_at")?,
        lifted_by: r.try_get("lifted_by")?,
        note: r.try_get("note")?,
        window_start: r.try_get("window_start")?,
    })
}

/// Marks and tallies in a transaction (the access log's append, or one of their own); each
/// one's count.
pub(crate) async fn mark_all_in(tx: &mut sqlx::Transaction<'static, Db>, marks: &[Mark]) -> Result<Vec<i64>> {
    let mut counts = vec![0; marks.len()];
    // Tallies of one rule, subject and window (many requests of one session at once) are added
    // in one statement; each gets the running total as it would have been after its own.
    let mut tallies: std::collections::BTreeMap<(&str, &str, UnixTime), Vec<usize>> = std::collections::BTreeMap::new();
    for (i, m) in marks.iter().enumerate() {
        if m.tally > 0 {
            tallies.entry((m.rule, m.subject.as_str(), m.window_start)).or_default().push(i);
        } else {
            counts[i] = mark_in(tx, m.rule, &m.subject, m.window_start, &m.objects).await?;
        }
    }
    for ((rule, subject, window_start), at) in tallies {
        let sum: i64 = at.iter().map(|i| marks[*i].tally).sum();
        let total = tally_in(tx, rule, subject, window_start, sum).await?;
        let mut running = total - sum;
        for i in at {
            running += marks[i].tally;
            counts[i] = running;
        }
    }
    Ok(counts)
}

/// Marks what a subject touched and counts the distinct objects in its window.
async fn mark_in(
    tx: &mut sqlx::Transaction<'static, Db>,
    rule: &str,
    subject: &str,
    window_start: UnixTime,
    objects: &[String],
) -> Result<i64> {
    for object in objects {
        sqlx::query(
            "INSERT INTO detection_marks (rule, subject, window_start, object) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(rule)
        .bind(subject)
        .bind(window_start)
        .bind(object)
        .execute(&mut **tx)
        .await?;
    }
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM detection_marks WHERE rule = $1 AND subject = $2 AND window_start = $3",
    )
    .bind(rule)
    .bind(subject)
    .bind(window_start)
    .fetch_one(&mut **tx)
    .await?)
}

/// Adds to a subject's tally in its window, and returns the tally: one statement.
async fn tally_in(
    tx: &mut sqlx::Transaction<'static, Db>,
    rule: &str,
    subject: &str,
    window_start: UnixTime,
    n: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO detection_tallies (rule, subject, window_start, n) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (rule, subject, window_start) DO UPDATE SET n = detection_tallies.n + excluded.n RETURNING n",
    )
    .bind(rule)
    .bind(subject)
    .bind(window_start)
    .bind(n)
    .fetch_one(&mut **tx)
    .await?)
}

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
            let n = mark_in(&mut tx, rule, subject, window_start, objects).await?;
            tx.commit().await?;
            Ok(n)
        })
    }

    fn mark_all<'a>(&'a self, marks: &'a [Mark]) -> BoxFuture<'a, Result<Vec<i64>>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let counts = mark_all_in(&mut tx, marks).await?;
            tx.commit().await?;
            Ok(counts)
        })
    }

    fn prune_marks(&self, before: UnixTime) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let a = sqlx::query("DELETE FROM detection_marks WHERE window_start < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?;
            let b = sqlx::query("DELETE FROM detection_tallies WHERE window_start < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(a.rows_affected() + b.rows_affected())
        })
    }

    fn record_volume<'a>(
        &'a self,
        subject: &'a str,
        window_start: UnixTime,
        seen: i64,
        keep_since: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            sqlx::query("DELETE FROM detection_volume WHERE subject = $1 AND window_start < $2")
                .bind(subject)
                .bind(keep_since)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO detection_volume (subject, window_start, seen) VALUES ($1, $2, $3) \
                 ON CONFLICT (subject, window_start) DO UPDATE SET seen = excluded.seen",
            )
            .bind(subject)
            .bind(window_start)
            .bind(seen)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn usual_volume<'a>(&'a self, subject: &'a str, since: UnixTime, before: UnixTime) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            let n: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(seen) FROM detection_volume WHERE subject = $1 AND window_start >= $2 AND window_start < $3",
            )
            .bind(subject)
            .bind(since)
            .bind(before)
            .fetch_one(&self.pool)
            .await?;
            Ok(n.unwrap_or(0))
        })
    }

    fn raise_alert<'a>(&'a self, a: &'a NewAlert) -> BoxFuture<'a, Result<Raised>> {
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
            if done.rows_affected() == 1 {
                return Ok(Raised { new: true, lifted: false });
            }
            let lifted: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT lifted_at FROM alerts WHERE rule = $1 AND subject = $2 AND window_start = $3",
            )
            .bind(&a.rule)
            .bind(&a.subject)
            .bind(a.window_start)
            .fetch_optional(&self.pool)
            .await?;
            Ok(Raised { new: false, lifted: lifted.flatten().is_some() })
        })
    }

    fn alerts(&self, limit: i64) -> BoxFuture<'_, Result<Vec<AlertRow>>> {
        Box::pin(async move {
            let rows =
                sqlx::query(concat!("SELECT ", alert_columns!(), " FROM alerts ORDER BY created_at DESC, id LIMIT $1"))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
            rows.iter().map(alert_row).collect()
        })
    }

    fn alert<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<AlertRow>>> {
        Box::pin(async move {
            sqlx::query(concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(alert_row)
                .transpose()
        })
    }

    fn settle_alert<'a>(
        &'a self,
        _grant: &'a authz::Grant<authz::ManageAlerts>,
        id: &'a str,
        how: Settle,
        by: &'a str,
        note: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let sql = match how {
                // Lifting acknowledges too.
                Settle::Lift => {
                    "UPDATE alerts SET lifted_at = $2, lifted_by = $3, note = $4, \
                     acknowledged_at = COALESCE(acknowledged_at, $2), acknowledged_by = COALESCE(acknowledged_by, $3) \
                     WHERE id = $1 AND lifted_at IS NULL"
                }
                Settle::Acknowledge => {
                    "UPDATE alerts SET acknowledged_at = $2, acknowledged_by = $3, note = $4 \
                     WHERE id = $1 AND acknowledged_at IS NULL"
                }
            };
            let done = sqlx::query(sql).bind(id).bind(now).bind(by).bind(note).execute(&self.pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn require_step_up(&self, session: domain::SessionId, now: UnixTime) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE sessions SET step_up_at = $2, mfa_at = NULL, mfa_passkey = FALSE WHERE id = $1 AND ended_at IS NULL",
            )
            .bind(session.as_uuid())
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn set_client_suspended<'a>(
        &'a self,
        _grant: &'a authz::Grant<authz::ManageAlerts>,
        client: domain::ClientId,
        at: Option<UnixTime>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let sql = if at.is_some() {
                "UPDATE api_clients SET suspended_at = $2 WHERE id = $1 AND suspended_at IS NULL"
            } else {
                "UPDATE api_clients SET suspended_at = $2 WHERE id = $1 AND suspended_at IS NOT NULL"
            };
            let done = sqlx::query(sql).bind(client.as_uuid()).bind(at).execute(&self.pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn set_session_suspended<'a>(
        &'a self,
        _grant: &'a authz::Grant<authz::ManageAlerts>,
        session: domain::SessionId,
        at: Option<UnixTime>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let sql = if at.is_some() {
                "UPDATE sessions SET suspended_at = $2 WHERE id = $1 AND suspended_at IS NULL AND ended_at IS NULL"
            } else {
                "UPDATE sessions SET suspended_at = $2 WHERE id = $1 AND suspended_at IS NOT NULL AND ended_at IS NULL"
            };
            let done = sqlx::query(sql).bind(session.as_uuid()).bind(at).execute(&self.pool).await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn set_module_switch<'a>(
        &'a self,
        _grant: &'a authz::Grant<authz::SwitchModules>,
        module: &'a str,
        scope: &'a str,
        off: Option<(UnixTime, &'a str, &'a str)>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = match off {
                Some((at, by, reason)) => sqlx::query(
                    "INSERT INTO module_switches (module, scope, off_at, off_by, reason) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT DO NOTHING",
                )
                .bind(module)
                .bind(scope)
                .bind(at)
                .bind(by)
                .bind(reason)
                .execute(&self.pool)
                .await?,
                None => {
                    sqlx::query("DELETE FROM module_switches WHERE module = $1 AND scope = $2")
                        .bind(module)
                        .bind(scope)
                        .execute(&self.pool)
                        .await?
                }
            };
            Ok(done.rows_affected() == 1)
        })
    }

    fn module_switches(&self) -> BoxFuture<'_, Result<Vec<SwitchRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT module, scope, off_at, off_by, reason FROM module_switches ORDER BY off_at, module, scope",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(SwitchRow {
                        module: r.try_get("module")?,
                        scope: r.try_get("scope")?,
                        off_at: r.try_get("off_at")?,
                        off_by: r.try_get("off_by")?,
                        reason: r.try_get("reason")?,
                    })
                })
                .collect()
        })
    }

    fn module_off<'a>(&'a self, module: &'a str, practice: Option<&'a str>) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM module_switches WHERE module = $1 AND (scope = '*' OR scope = $2)",
            )
            .bind(module)
            .bind(practice.unwrap_or("*"))
            .fetch_one(&self.pool)
            .await?;
            Ok(n > 0)
        })
    }

    fn honeytokens(&self) -> BoxFuture<'_, Result<Vec<(String, String)>>> {
        Box::pin(async move {
            let rows =
                sqlx::query("SELECT object_id, kind FROM honeytokens ORDER BY object_id").fetch_all(&self.pool).await?;
            rows.iter().map(|r| Ok((r.try_get("object_id")?, r.try_get("kind")?))).collect()
        })
    }

    fn record_security_action<'a>(
        &'a self,
        at: UnixTime,
        by: &'a str,
        action: &'a str,
        object: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO security_actions (id, at, by_account, action, object, reason) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(at)
            .bind(by)
            .bind(action)
            .bind(object)
            .bind(reason)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn security_actions(&self, limit: i64) -> BoxFuture<'_, Result<Vec<SecurityAction>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT at, by_account, action, object, reason FROM security_actions ORDER BY at DESC, id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(SecurityAction {
                        at: r.try_get("at")?,
                        by: r.try_get("by_account")?,
                        action: r.try_get("action")?,
                        object: r.try_get("object")?,
                        reason: r.try_get("reason")?,
                    })
                })
                .collect()
        })
    }

    fn plant_canaries<'a>(&'a self, c: &'a Canaries) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let planted: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM honeytokens").fetch_one(&mut *tx).await?;
            if planted > 0 {
                return Ok(false);
            }
            // A patient's account that cannot sign in (no password, disabled), enrolled nowhere:
            // in no one's lists.
            sqlx::query(
                "INSERT INTO accounts (id, kind, email, display_name, password_hash, created_at, disabled_at) \
                 VALUES ($1, 'patient', $2, $3, NULL, $4, $4)",
            )
            .bind(c.account.as_uuid())
            .bind(&c.email)
            .bind(&c.name)
            .bind(c.now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO patients (id, account_id, nhi, name, date_of_birth, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(c.patient.as_uuid())
            .bind(c.account.as_uuid())
            .bind(&c.nhi)
            .bind(&c.name)
            .bind(&c.date_of_birth)
            .bind(c.now)
            .execute(&mut *tx)
            .await?;
            let mut tokens = vec![(c.patient.to_string(), "patient")];
            for d in &c.documents {
                tokens.push((d.to_string(), "document"));
            }
            for r in &c.records {
                tokens.push((r.to_string(), "health_record"));
            }
            for (id, kind) in tokens {
                sqlx::query("INSERT INTO honeytokens (object_id, kind, created_at) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(kind)
                    .bind(c.now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }
}

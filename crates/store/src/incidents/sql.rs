// The incidents store's SQL, shared by both engines (included by `mod.rs`). Format with
// `rustfmt --edition 2024 incidents/sql.rs` (CI checks it).

use crate::incidents::{
    CampaignRow, ClaimedNotice, CodeRow, Contact, Impact, IncidentAction, IncidentRow, IncidentStore, NewCampaign,
    NewIncident, NewNotice, NoticeRow, ObjectFacts, RevisionRow, ScopeObject, ScopePatient,
};
use crate::{Result, SequencedEvent};
use authz::{Grant, LeadIncidents, ViewImpact, ViewIncidents};
use domain::{BoxFuture, UnixTime};
use sqlx::Row;

type DbRow = <Db as sqlx::Database>::Row;

/// Ids asked about in one statement.
const CHUNK: usize = 500;

/// `$start, $start+1, …` (n of them).
fn placeholders(start: usize, n: usize) -> String {
    (start..start + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

const INCIDENT_COLUMNS: &str = "id, title, description, discovered_at, declared_at, declared_by, from_alert, \
                                steps_taken, commissioner_told_at, closed_at";

fn incident_row(r: &DbRow) -> Result<IncidentRow> {
    Ok(IncidentRow {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        discovered_at: r.try_get("discovered_at")?,
        declared_at: r.try_get("declared_at")?,
        declared_by: r.try_get("declared_by")?,
        from_alert: r.try_get("from_alert")?,
        steps_taken: r.try_get("steps_taken")?,
        commissioner_told_at: r.try_get("commissioner_told_at")?,
        closed_at: r.try_get("closed_at")?,
    })
}

const REVISION_COLUMNS: &str = "incident_id, revision, indicators, note, tree_size, root, checkpoint, digest, \
                                confirmed, possible, objects, events, created_at, created_by";

fn revision_row(r: &DbRow) -> Result<RevisionRow> {
    Ok(RevisionRow {
        incident_id: r.try_get("incident_id")?,
        revision: r.try_get("revision")?,
        indicators: r.try_get("indicators")?,
        note: r.try_get("note")?,
        tree_size: r.try_get("tree_size")?,
        root: r.try_get("root")?,
        checkpoint: r.try_get("checkpoint")?,
        digest: r.try_get("digest")?,
        confirmed: r.try_get("confirmed")?,
        possible: r.try_get("possible")?,
        objects: r.try_get("objects")?,
        events: r.try_get("events")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

fn scope_patient(r: &DbRow) -> Result<ScopePatient> {
    Ok(ScopePatient { patient_id: r.try_get("patient_id")?, class: r.try_get("class")?, why: r.try_get("why")? })
}

fn scope_object(r: &DbRow) -> Result<ScopeObject> {
    Ok(ScopeObject {
        patient_id: r.try_get("patient_id")?,
        kind: r.try_get("kind")?,
        object_id: r.try_get("object_id")?,
        class: r.try_get("class")?,
        category: r.try_get("category")?,
        dated: r.try_get("dated")?,
        controller_id: r.try_get("controller_id")?,
        controller_name: r.try_get("controller_name")?,
        first_seq: r.try_get("first_seq")?,
    })
}

fn uuids(ids: &[String]) -> Vec<uuid::Uuid> {
    ids.iter().filter_map(|i| uuid::Uuid::parse_str(i).ok()).collect()
}

impl This {
    /// Runs `sql` (with `{ids}` standing for the placeholders) over `ids` in chunks.
    async fn by_ids(&self, sql: &str, ids: &[uuid::Uuid]) -> Result<Vec<DbRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let text = sql.replace("{ids}", &placeholders(1, chunk.len()));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(text.as_str()));
            for id in chunk {
                q = q.bind(*id);
            }
            out.extend(q.fetch_all(&self.pool).await?);
        }
        Ok(out)
    }
}

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

impl IncidentStore for This {
    fn create_incident<'a>(
        &'a self,
        _grant: &'a Grant<LeadIncidents>,
        i: &'a NewIncident,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO incidents (id, title, description, discovered_at, declared_at, declared_by, from_alert, \
                 steps_taken) VALUES ($1, $2, $3, $4, $5, $6, $7, '')",
            )
            .bind(&i.id)
            .bind(&i.title)
            .bind(&i.description)
            .bind(i.discovered_at)
            .bind(i.declared_at)
            .bind(&i.declared_by)
            .bind(&i.from_alert)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn update_incident<'a>(
        &'a self,
        _grant: &'a Grant<LeadIncidents>,
        id: &'a str,
        steps_taken: &'a str,
        commissioner_told_at: Option<UnixTime>,
        closed_at: Option<UnixTime>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE incidents SET steps_taken = $2, commissioner_told_at = $3, closed_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(steps_taken)
            .bind(commissioner_told_at)
            .bind(closed_at)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn incidents<'a>(&'a self, _grant: &'a Grant<ViewIncidents>) -> BoxFuture<'a, Result<Vec<IncidentRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY declared_at DESC, id"
            )))
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(incident_row).collect()
        })
    }

    fn incident<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<IncidentRow>>> {
        Box::pin(async move {
            let row =
                sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            row.as_ref().map(incident_row).transpose()
        })
    }

    fn add_revision<'a>(
        &'a self,
        _grant: &'a Grant<LeadIncidents>,
        r: &'a RevisionRow,
        patients: &'a [ScopePatient],
        objects: &'a [ScopeObject],
    ) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let number: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(MAX(revision), 0) + 1 AS BIGINT) FROM incident_revisions WHERE incident_id = $1",
            )
            .bind(&r.incident_id)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO incident_revisions ({REVISION_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            )))
            .bind(&r.incident_id)
            .bind(number)
            .bind(&r.indicators)
            .bind(&r.note)
            .bind(r.tree_size)
            .bind(&r.root)
            .bind(&r.checkpoint)
            .bind(&r.digest)
            .bind(r.confirmed)
            .bind(r.possible)
            .bind(r.objects)
            .bind(r.events)
            .bind(r.created_at)
            .bind(&r.created_by)
            .execute(&mut *tx)
            .await?;
            // Many rows a statement: an MMH-sized scope is hundreds of thousands of them.
            for chunk in patients.chunks(CHUNK / 5) {
                let values: Vec<String> =
                    (0..chunk.len()).map(|i| format!("($1, $2, {})", placeholders(3 + i * 3, 3))).collect();
                let text = format!(
                    "INSERT INTO incident_patients (incident_id, revision, patient_id, class, why) VALUES {}",
                    values.join(", ")
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(text.as_str())).bind(&r.incident_id).bind(number);
                for p in chunk {
                    q = q.bind(&p.patient_id).bind(&p.class).bind(&p.why);
                }
                q.execute(&mut *tx).await?;
            }
            for chunk in objects.chunks(CHUNK / 10) {
                let values: Vec<String> =
                    (0..chunk.len()).map(|i| format!("($1, $2, {})", placeholders(3 + i * 9, 9))).collect();
                let text = format!(
                    "INSERT INTO incident_objects (incident_id, revision, patient_id, kind, object_id, class, category, \
                     dated, controller_id, controller_name, first_seq) VALUES {}",
                    values.join(", ")
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(text.as_str())).bind(&r.incident_id).bind(number);
                for o in chunk {
                    q = q
                        .bind(&o.patient_id)
                        .bind(&o.kind)
                        .bind(&o.object_id)
                        .bind(&o.class)
                        .bind(&o.category)
                        .bind(&o.dated)
                        .bind(&o.controller_id)
                        .bind(&o.controller_name)
                        .bind(o.first_seq);
                }
                q.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(number)
        })
    }

    fn revisions<'a>(&'a self, incident: &'a str) -> BoxFuture<'a, Result<Vec<RevisionRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {REVISION_COLUMNS} FROM incident_revisions WHERE incident_id = $1 ORDER BY revision"
            )))
            .bind(incident)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(revision_row).collect()
        })
    }

    fn scope_patients<'a>(&'a self, incident: &'a str, revision: i64) -> BoxFuture<'a, Result<Vec<ScopePatient>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT patient_id, class, why FROM incident_patients WHERE incident_id = $1 AND revision = $2 \
                 ORDER BY patient_id",
            )
            .bind(incident)
            .bind(revision)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(scope_patient).collect()
        })
    }

    fn scope_objects<'a>(
        &'a self,
        incident: &'a str,
        revision: i64,
        patient: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Vec<ScopeObject>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT patient_id, kind, object_id, class, category, dated, controller_id, controller_name, first_seq \
                 FROM incident_objects WHERE incident_id = $1 AND revision = $2 AND ($3 IS NULL OR patient_id = $3) \
                 ORDER BY patient_id, kind, object_id",
            )
            .bind(incident)
            .bind(revision)
            .bind(patient)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(scope_object).collect()
        })
    }

    fn impacts<'a>(&'a self, grant: &'a Grant<ViewImpact>) -> BoxFuture<'a, Result<Vec<Impact>>> {
        Box::pin(async move {
            let patient = grant.object().to_string();
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {INCIDENT_COLUMNS}, \
                 (SELECT MAX(revision) FROM incident_revisions r WHERE r.incident_id = incidents.id) AS latest \
                 FROM incidents WHERE EXISTS (SELECT 1 FROM incident_revisions r WHERE r.incident_id = incidents.id) \
                 ORDER BY declared_at DESC, id"
            )))
            .fetch_all(&self.pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let incident = incident_row(r)?;
                let latest: i64 = r.try_get("latest")?;
                let mine = sqlx::query(
                    "SELECT patient_id, class, why FROM incident_patients \
                     WHERE incident_id = $1 AND revision = $2 AND patient_id = $3",
                )
                .bind(&incident.id)
                .bind(latest)
                .bind(&patient)
                .fetch_optional(&self.pool)
                .await?;
                out.push((incident, latest, mine.as_ref().map(scope_patient).transpose()?));
            }
            Ok(out)
        })
    }

    fn indicator_events<'a>(
        &'a self,
        _grant: &'a Grant<LeadIncidents>,
        below: u64,
        accounts: &'a [String],
        sessions: &'a [String],
        windows: &'a [(i64, i64)],
        by_time: bool,
    ) -> BoxFuture<'a, Result<Vec<SequencedEvent>>> {
        Box::pin(async move {
            const COLUMNS: &str = "seq, id, at_ms, actor_account, actor_role, actor_practice, session_id, ip, \
                                   user_agent, on_behalf, action, object_type, object_id, patient_id, practice_id, \
                                   outcome, request_id, module, format";
            let below = i64::try_from(below).unwrap_or(i64::MAX);
            let mut rows = Vec::new();
            for account in accounts {
                rows.extend(
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {COLUMNS} FROM audit_events WHERE actor_account = $1 AND seq < $2 ORDER BY seq"
                    )))
                    .bind(account)
                    .bind(below)
                    .fetch_all(&self.pool)
                    .await?,
                );
            }
            for session in sessions {
                rows.extend(
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {COLUMNS} FROM audit_events WHERE session_id = $1 AND seq < $2 ORDER BY seq"
                    )))
                    .bind(session)
                    .bind(below)
                    .fetch_all(&self.pool)
                    .await?,
                );
            }
            if by_time {
                for (from, to) in windows {
                    rows.extend(
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT {COLUMNS} FROM audit_events WHERE at_ms >= $1 AND at_ms < $2 AND seq < $3 \
                             ORDER BY seq"
                        )))
                        .bind(from)
                        .bind(to)
                        .bind(below)
                        .fetch_all(&self.pool)
                        .await?,
                    );
                }
            }
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let seq: i64 = r.try_get("seq")?;
                out.push(SequencedEvent {
                    seq: u64::try_from(seq).map_err(|_| crate::portable::corrupt("event seq"))?,
                    event: log::event_row(r)?,
                });
            }
            out.sort_by_key(|e| e.seq);
            out.dedup_by_key(|e| e.seq);
            Ok(out)
        })
    }

    fn document_facts<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<ObjectFacts>>> {
        Box::pin(async move {
            let rows = self
                .by_ids(
                    "SELECT id, patient_id, category, clinical_date, created_at, controller_id, controller_name \
                     FROM documents WHERE id IN ({ids})",
                    &uuids(ids),
                )
                .await?;
            rows.iter()
                .map(|r| {
                    let created: i64 = r.try_get("created_at")?;
                    Ok(ObjectFacts {
                        id: r.try_get::<uuid::Uuid, _>("id")?.to_string(),
                        patient_id: r.try_get::<uuid::Uuid, _>("patient_id")?.to_string(),
                        category: r.try_get("category")?,
                        dated: r.try_get::<Option<String>, _>("clinical_date")?.or_else(|| {
                            jiff::Timestamp::from_second(created).ok().map(|t| t.strftime("%Y-%m-%d").to_string())
                        }),
                        controller_id: r.try_get("controller_id")?,
                        controller_name: r.try_get("controller_name")?,
                    })
                })
                .collect()
        })
    }

    fn record_facts<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<ObjectFacts>>> {
        Box::pin(async move {
            let rows = self
                .by_ids(
                    "SELECT h.id, h.patient_id, h.category, h.effective, h.practice_id, p.name \
                     FROM health_records h JOIN practices p ON p.id = h.practice_id WHERE h.id IN ({ids})",
                    &uuids(ids),
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(ObjectFacts {
                        id: r.try_get::<uuid::Uuid, _>("id")?.to_string(),
                        patient_id: r.try_get::<uuid::Uuid, _>("patient_id")?.to_string(),
                        category: r.try_get("category")?,
                        dated: r.try_get("effective")?,
                        controller_id: r.try_get::<uuid::Uuid, _>("practice_id")?.to_string(),
                        controller_name: r.try_get("name")?,
                    })
                })
                .collect()
        })
    }

    fn practice_names<'a>(&'a self, ids: &'a [String]) -> BoxFuture<'a, Result<Vec<(String, String)>>> {
        Box::pin(async move {
            let rows = self.by_ids("SELECT id, name FROM practices WHERE id IN ({ids})", &uuids(ids)).await?;
            rows.iter().map(|r| Ok((r.try_get::<uuid::Uuid, _>("id")?.to_string(), r.try_get("name")?))).collect()
        })
    }

    fn first_practices<'a>(&'a self, patients: &'a [String]) -> BoxFuture<'a, Result<Vec<(String, String)>>> {
        Box::pin(async move {
            let rows = self
                .by_ids(
                    "SELECT patient_id, practice_id FROM enrolments WHERE patient_id IN ({ids}) \
                     ORDER BY patient_id, enrolled_at, practice_id",
                    &uuids(patients),
                )
                .await?;
            // The patient's first practice (the longest enrolled).
            let mut out: Vec<(String, String)> = Vec::new();
            for r in &rows {
                let patient = r.try_get::<uuid::Uuid, _>("patient_id")?.to_string();
                if out.last().is_none_or(|(p, _)| *p != patient) {
                    out.push((patient, r.try_get::<uuid::Uuid, _>("practice_id")?.to_string()));
                }
            }
            Ok(out)
        })
    }

    fn contacts<'a>(&'a self, patients: &'a [String]) -> BoxFuture<'a, Result<Vec<Contact>>> {
        Box::pin(async move {
            let rows = self
                .by_ids(
                    "SELECT p.id, p.account_id, p.name, p.nhi, a.email FROM patients p JOIN accounts a ON a.id = p.account_id \
                     WHERE p.id IN ({ids})",
                    &uuids(patients),
                )
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(Contact {
                        patient_id: r.try_get::<uuid::Uuid, _>("id")?.to_string(),
                        account_id: r.try_get::<uuid::Uuid, _>("account_id")?.to_string(),
                        name: r.try_get("name")?,
                        email: r.try_get("email")?,
                        nhi: r.try_get("nhi")?,
                    })
                })
                .collect()
        })
    }

    fn record_incident_action<'a>(&'a self, a: &'a IncidentAction) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO incident_actions (id, incident_id, at, by_account, action, target, affected, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&a.id)
            .bind(&a.incident_id)
            .bind(a.at)
            .bind(&a.by_account)
            .bind(&a.action)
            .bind(&a.target)
            .bind(a.affected)
            .bind(&a.reason)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn incident_actions<'a>(&'a self, incident: &'a str) -> BoxFuture<'a, Result<Vec<IncidentAction>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, incident_id, at, by_account, action, target, affected, reason FROM incident_actions \
                 WHERE incident_id = $1 ORDER BY at, id",
            )
            .bind(incident)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(IncidentAction {
                        id: r.try_get("id")?,
                        incident_id: r.try_get("incident_id")?,
                        at: r.try_get("at")?,
                        by_account: r.try_get("by_account")?,
                        action: r.try_get("action")?,
                        target: r.try_get("target")?,
                        affected: r.try_get("affected")?,
                        reason: r.try_get("reason")?,
                    })
                })
                .collect()
        })
    }

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
            for chunk in notices.chunks(CHUNK / 10) {
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

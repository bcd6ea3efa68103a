// The incidents store's SQL, shared by both engines (included by `mod.rs`). Format with
// `rustfmt --edition 2024 incidents/sql.rs` (CI checks it).

use crate::Result;
use crate::incidents::{
    Contact, DocumentFacts, Impact, IncidentAction, IncidentRow, IncidentStore, NewIncident, ObjectFacts, Reached,
    RevisionRow, ScopeObject, ScopePatient,
};
use authz::{Grant, LeadIncidents, ViewImpact, ViewIncidents};
use domain::{BoxFuture, UnixTime};
use sqlx::Row;

type DbRow = <Db as sqlx::Database>::Row;

/// Ids asked about in one statement.
const CHUNK: usize = 500;

use super::placeholders;

const LOG_COLUMNS: &str = concat!(
    "f.seq, f.at_ms, f.actor_account, f.session_id, f.ip, f.user_agent, f.module, f.action, f.object_type, ",
    "f.object_id, f.patient_id, f.practice_id, d.category, d.clinical_date, d.created_at AS document_created, ",
    "d.controller_id, d.controller_name"
);

/// What the scope reads of a filed event, and of the document it names (its key, the session
/// or account it is filed under, is known: it is what was asked for).
const FILED: [&str; 14] = [
    "f.seq",
    "f.at_ms",
    "f.account",
    "f.module",
    "f.action",
    "f.object_type",
    "f.object_id",
    "f.patient_id",
    "f.practice_id",
    "d.category",
    "d.clinical_date",
    "d.created_at",
    "d.controller_id",
    "d.controller_name",
];

impl This {
    /// The events filed under `key` (a session, or an account's events without one) below
    /// `upto`, those of `account` only if given, with the facts of the documents they name:
    /// their span cut into `WINDOWS` windows, each read as one JSON text, two at a time. (A
    /// window's text must stay under the engines' 1 GB limit: about 4 million events.)
    async fn filed(&self, key: &str, account: Option<&str>, upto: i64) -> Result<Vec<Reached>> {
        let span: (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT MIN(seq), MAX(seq) FROM audit_by_actor WHERE actor = $1 AND seq < $2")
                .bind(key)
                .bind(upto)
                .fetch_one(&self.pool)
                .await?;
        let (Some(first), Some(last)) = span else { return Ok(Vec::new()) };
        // The span cut into windows of leaf indexes, half of them read on each of two
        // connections at once.
        let step = ((last - first) / WINDOWS + 1).max(1);
        let windows: Vec<(i64, i64)> = (0..WINDOWS)
            .map(|w| (first + w * step, (first + (w + 1) * step).min(upto)))
            .filter(|(a, b)| a < b)
            .collect();
        let columns = FILED.join(", ");
        let sql = match PACKED {
            Some((open, close)) => format!(
                "SELECT {open}{columns}{close} AS packed FROM audit_by_actor f {DOCUMENT_JOIN} \
                 WHERE f.actor = $1 AND f.seq >= $2 AND f.seq < $3"
            ),
            None => format!(
                "SELECT {columns} FROM audit_by_actor f {DOCUMENT_JOIN} WHERE f.actor = $1 AND f.seq >= $2 AND f.seq < $3"
            ),
        };
        let half = |windows: Vec<(i64, i64)>| {
            let sql = sql.clone();
            async move {
                let mut out = Vec::new();
                for (from, to) in windows {
                    let query = sqlx::AssertSqlSafe(sql.as_str());
                    if PACKED.is_some() {
                        let text: Option<String> =
                            sqlx::query_scalar(query).bind(key).bind(from).bind(to).fetch_one(&self.pool).await?;
                        let rows: Vec<FiledRow> = match text {
                            Some(text) => serde_json::from_str(&text)
                                .map_err(|_| crate::portable::corrupt("the filed events' JSON"))?,
                            None => Vec::new(),
                        };
                        out.reserve(rows.len());
                        for row in rows {
                            out.push(filed_event(key, row)?);
                        }
                    } else {
                        // Each row made an event as it arrives, so the driver's buffers are
                        // reused rather than holding the whole answer.
                        use futures_util::TryStreamExt;
                        let mut rows =
                            sqlx::query_as::<_, FiledRow>(query).bind(key).bind(from).bind(to).fetch(&self.pool);
                        while let Some(row) = rows.try_next().await? {
                            out.push(filed_event(key, row)?);
                        }
                    }
                }
                Ok::<_, crate::StoreError>(out)
            }
        };
        let even: Vec<(i64, i64)> = windows.iter().step_by(2).copied().collect();
        let odd: Vec<(i64, i64)> = windows.iter().skip(1).step_by(2).copied().collect();
        let (mut a, b) = tokio::try_join!(half(even), half(odd))?;
        a.extend(b);
        // A session is one account's; the filter is kept for what the filing cannot promise.
        if let Some(account) = account {
            a.retain(|e| e.account.as_deref() == Some(account));
        }
        Ok(a)
    }
}

/// A filed event as `filed` reads it: the columns of `FILED`, in order.
type FiledRow = (
    i64,
    i64,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// A filed event as `filed` reads it. The filing's key is the session, or the account when the
/// event had none.
fn filed_event(key: &str, row: FiledRow) -> Result<Reached> {
    let (seq, at_ms, account, module, action, object_type, object_id, patient, practice) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8);
    let (category, clinical_date, created, controller_id, controller_name) = (row.9, row.10, row.11, row.12, row.13);
    let document = category.map(|category| DocumentFacts {
        category,
        dated: clinical_date.or_else(|| {
            created.and_then(|c| jiff::Timestamp::from_second(c).ok()).map(|t| t.strftime("%Y-%m-%d").to_string())
        }),
        controller_id: controller_id.unwrap_or_default(),
        controller_name: controller_name.unwrap_or_default(),
    });
    Ok(Reached {
        seq: u64::try_from(seq).map_err(|_| crate::portable::corrupt("event seq"))?,
        at_ms,
        session: (account.as_deref() != Some(key)).then(|| key.to_owned()),
        account,
        ip: None,
        user_agent: None,
        module,
        action,
        object_type,
        object_id,
        patient,
        practice,
        document,
    })
}

/// The facts of the document an event names, when the join found it.
fn document_facts_of(r: &DbRow) -> Result<Option<DocumentFacts>> {
    let Some(category) = r.try_get::<Option<String>, _>("category")? else { return Ok(None) };
    let created: Option<i64> = r.try_get("document_created")?;
    Ok(Some(DocumentFacts {
        category,
        dated: r.try_get::<Option<String>, _>("clinical_date")?.or_else(|| {
            created.and_then(|c| jiff::Timestamp::from_second(c).ok()).map(|t| t.strftime("%Y-%m-%d").to_string())
        }),
        controller_id: r.try_get::<Option<String>, _>("controller_id")?.unwrap_or_default(),
        controller_name: r.try_get::<Option<String>, _>("controller_name")?.unwrap_or_default(),
    }))
}

/// An event as the log keeps it (the columns of `LOG_COLUMNS`).
fn log_row(r: &DbRow) -> Result<Reached> {
    Ok(Reached {
        seq: u64::try_from(r.try_get::<i64, _>("seq")?).map_err(|_| crate::portable::corrupt("event seq"))?,
        at_ms: r.try_get("at_ms")?,
        account: r.try_get("actor_account")?,
        session: r.try_get("session_id")?,
        ip: Some(r.try_get("ip")?),
        user_agent: Some(r.try_get("user_agent")?),
        module: r.try_get("module")?,
        action: r.try_get("action")?,
        object_type: r.try_get("object_type")?,
        object_id: r.try_get("object_id")?,
        patient: r.try_get("patient_id")?,
        practice: r.try_get("practice_id")?,
        document: document_facts_of(r)?,
    })
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
            .await
            .map_err(crate::portable::map_unique)?;
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

    fn scope_patient<'a>(
        &'a self,
        incident: &'a str,
        revision: i64,
        patient: &'a str,
    ) -> BoxFuture<'a, Result<Option<ScopePatient>>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT patient_id, class, why FROM incident_patients \
                 WHERE incident_id = $1 AND revision = $2 AND patient_id = $3",
            )
            .bind(incident)
            .bind(revision)
            .bind(patient)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(scope_patient).transpose()
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
    ) -> BoxFuture<'a, Result<Vec<Reached>>> {
        Box::pin(async move {
            let below = i64::try_from(below).unwrap_or(i64::MAX);
            let filed: Option<i64> =
                sqlx::query_scalar("SELECT below FROM audit_filed").fetch_optional(&self.pool).await?;
            let upto = below.min(filed.unwrap_or(0));
            let mut out: Vec<Reached> = Vec::new();
            // Below the filing's mark: each session's events side by side, and each account's
            // under the sessions (and, without one, the account) it acted in.
            for session in sessions {
                out.append(&mut self.filed(session, None, upto).await?);
            }
            for account in accounts {
                let keys: Vec<String> = sqlx::query_scalar("SELECT actor FROM audit_actor_keys WHERE account = $1")
                    .bind(account)
                    .fetch_all(&self.pool)
                    .await?;
                for key in &keys {
                    out.append(&mut self.filed(key, Some(account), upto).await?);
                }
            }
            // Above it, events the tree builder has not reached yet, from the log itself.
            let mut whole = Vec::new();
            if upto < below && !(accounts.is_empty() && sessions.is_empty()) {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {LOG_COLUMNS} FROM audit_events f {DOCUMENT_JOIN} WHERE f.seq >= $1 AND f.seq < $2 \
                     AND f.outcome = 'allowed' AND f.patient_id IS NOT NULL ORDER BY f.seq"
                )))
                .bind(upto)
                .bind(below)
                .fetch_all(&self.pool)
                .await?;
                for r in &rows {
                    let e = log_row(r)?;
                    let mine = |v: &Option<String>, of: &[String]| v.as_ref().is_some_and(|v| of.contains(v));
                    if mine(&e.account, accounts) || mine(&e.session, sessions) {
                        whole.push(e);
                    }
                }
            }
            if by_time {
                for (from, to) in windows {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {LOG_COLUMNS} FROM audit_events f {DOCUMENT_JOIN} WHERE f.at_ms >= $1 AND f.at_ms < $2 \
                         AND f.seq < $3 AND f.outcome = 'allowed' AND f.patient_id IS NOT NULL ORDER BY f.seq"
                    )))
                    .bind(from)
                    .bind(to)
                    .bind(below)
                    .fetch_all(&self.pool)
                    .await?;
                    for r in &rows {
                        whole.push(log_row(r)?);
                    }
                }
            }
            // Each event once: read whole from the log when it was, as it says more.
            whole.append(&mut out);
            whole.sort_by_key(|e| e.seq);
            whole.dedup_by_key(|e| e.seq);
            Ok(whole)
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
}

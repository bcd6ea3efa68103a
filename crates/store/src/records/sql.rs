// The SQL of the records aggregate, one text for both engines: included by `mod.rs` once for
// `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its database). Format
// with `rustfmt --edition 2024 records/sql.rs` (CI checks it).

use crate::portable::{corrupt, map_unique};
use crate::{
    PatientKeyRow, RecordChange, RecordFilter, RecordKeyGrant, RecordKeyRow, RecordKeyWithPatientKey, RecordRow,
    RecordRules, RecordStore, Result, StoreError, StoredVersion,
};
use authz::Grant;
use domain::{AccountId, BoxFuture, PatientId, PracticeId, RecordCategory, RecordId, UnixTime};
use sqlx::Row;
use uuid::Uuid;

type DbRow = <Db as sqlx::Database>::Row;

/// The same columns, of `health_records h` joined to the report it is part of (`g`): an item of
/// a hidden report is hidden with it (its own mark stays its own, so showing the report again
/// does not show a result that was hidden by itself).
const H_COLUMNS: &str = "h.id, h.patient_id, h.practice_id, h.resource_type, h.source_id, h.version, h.category, \
    h.effective, h.status, h.held, h.auto_release_at, h.released_at, h.released_by, h.release_note, \
    COALESCE(h.hidden_at, g.hidden_at) AS hidden_at, h.hidden_by, h.hidden_reason, h.group_id, h.content, \
    h.created_at, h.updated_at \
    FROM health_records h LEFT JOIN health_records g ON g.id = h.group_id";

/// What may reach the patient, apart from their practices' category rules ($3: now): current,
/// hidden neither by itself nor with its report, and released (by a clinician, or by the
/// practice's days). `$2` is the (unused) practice of a staff grant.
const PATIENT_SEES: &str = "h.status = 'current' AND h.hidden_at IS NULL AND g.hidden_at IS NULL \
    AND (h.held = FALSE OR (h.auto_release_at IS NOT NULL AND h.auto_release_at <= $3)) AND $2 = $2";

/// Staff read only what their practice sent, and only while the patient is enrolled there.
const STAFF_SCOPE: &str = "h.practice_id = $2 AND EXISTS (SELECT 1 FROM enrolments e \
    WHERE e.patient_id = h.patient_id AND e.practice_id = $2)";

fn record_row(r: &DbRow) -> Result<RecordRow> {
    let uuid = |c: &str| r.try_get::<Option<Uuid>, _>(c);
    Ok(RecordRow {
        id: RecordId::from_uuid(r.try_get("id")?),
        patient: PatientId::from_uuid(r.try_get("patient_id")?),
        practice: PracticeId::from_uuid(r.try_get("practice_id")?),
        resource_type: r.try_get("resource_type")?,
        source_id: r.try_get("source_id")?,
        version: r.try_get("version")?,
        category: RecordCategory::parse(&r.try_get::<String, _>("category")?)
            .ok_or_else(|| corrupt("record category"))?,
        effective: r.try_get("effective")?,
        removed: r.try_get::<String, _>("status")? == "removed",
        held: r.try_get("held")?,
        auto_release_at: r.try_get("auto_release_at")?,
        released_at: r.try_get("released_at")?,
        released_by: uuid("released_by")?.map(AccountId::from_uuid),
        release_note: r.try_get("release_note")?,
        hidden_at: r.try_get("hidden_at")?,
        hidden_by: uuid("hidden_by")?.map(AccountId::from_uuid),
        hidden_reason: r.try_get("hidden_reason")?,
        group: uuid("group_id")?.map(RecordId::from_uuid),
        content: r.try_get("content")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn rules_row(r: &DbRow) -> Result<RecordRules> {
    let categories: String = r.try_get("categories")?;
    Ok(RecordRules {
        categories: categories.split(' ').filter_map(RecordCategory::parse).collect(),
        auto_release_days: r.try_get::<Option<i32>, _>("auto_release_days")?.map(i64::from),
    })
}

fn nil(p: Option<PatientId>) -> Uuid {
    p.map_or(Uuid::nil(), |p| p.as_uuid())
}

fn nil_practice(p: Option<PracticeId>) -> Uuid {
    p.map_or(Uuid::nil(), |p| p.as_uuid())
}

/// What a patient sees, narrowed for someone acting for them: only what a practice the patient
/// is enrolled at now (their link's) sent, never a former practice's.
fn proxied(grant: &Grant<authz::ReadRecords>, scope: &str) -> String {
    if grant.by_proxy() {
        format!(
            "{scope} AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = h.patient_id \
             AND e.practice_id = h.practice_id)"
        )
    } else {
        scope.to_owned()
    }
}

impl RecordStore for This {
    fn record_rules(&self, practice: PracticeId) -> BoxFuture<'_, Result<RecordRules>> {
        Box::pin(async move {
            let row = sqlx::query("SELECT categories, auto_release_days FROM record_rules WHERE practice_id = $1")
                .bind(practice.as_uuid())
                .fetch_optional(&self.pool)
                .await?;
            row.as_ref().map_or_else(|| Ok(RecordRules::default()), rules_row)
        })
    }

    fn patient_record_rules<'a>(
        &'a self,
        grant: RecordKeyGrant<'a>,
    ) -> BoxFuture<'a, Result<Vec<(PracticeId, RecordRules)>>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let rows = sqlx::query(
                "SELECT e.practice_id, r.categories, r.auto_release_days FROM enrolments e \
                 LEFT JOIN record_rules r ON r.practice_id = e.practice_id WHERE e.patient_id = $1",
            )
            .bind(patient.as_uuid())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let practice = PracticeId::from_uuid(r.try_get("practice_id")?);
                    let rules = if r.try_get::<Option<String>, _>("categories")?.is_some() {
                        rules_row(r)?
                    } else {
                        RecordRules::default()
                    };
                    Ok((practice, rules))
                })
                .collect()
        })
    }

    fn set_record_rules<'a>(
        &'a self,
        grant: &'a Grant<authz::SetRecordRules>,
        rules: &'a RecordRules,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let categories: Vec<&str> = rules.categories.iter().map(|c| c.as_str()).collect();
            let days = rules.auto_release_days.map(|d| i32::try_from(d).unwrap_or(i32::MAX));
            sqlx::query(
                "INSERT INTO record_rules (practice_id, categories, auto_release_days, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (practice_id) DO UPDATE \
                 SET categories = $2, auto_release_days = $3, updated_at = $4",
            )
            .bind(grant.object().as_uuid())
            .bind(categories.join(" "))
            .bind(days)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn records_key<'a>(&'a self, grant: RecordKeyGrant<'a>) -> BoxFuture<'a, Result<Option<RecordKeyWithPatientKey>>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let row = sqlx::query(
                "SELECT rk.key_version, rk.wrapped_key, k.master_key_id, k.wrapped, k.version AS key_row_version \
                 FROM record_keys rk LEFT JOIN patient_keys k \
                   ON k.patient_id = rk.patient_id AND k.version = rk.key_version \
                 WHERE rk.patient_id = $1",
            )
            .bind(patient.as_uuid())
            .fetch_optional(&self.pool)
            .await?;
            let Some(r) = row else { return Ok(None) };
            let key = RecordKeyRow {
                patient,
                key_version: r.try_get("key_version")?,
                wrapped_key: r.try_get("wrapped_key")?,
            };
            let under = match r.try_get::<Option<i32>, _>("key_row_version")? {
                Some(version) => Some(PatientKeyRow {
                    patient,
                    version,
                    master_key_id: r.try_get("master_key_id")?,
                    wrapped: r.try_get("wrapped")?,
                }),
                None => None,
            };
            Ok(Some((key, under)))
        })
    }

    fn insert_records_key<'a>(
        &'a self,
        grant: RecordKeyGrant<'a>,
        key: &'a RecordKeyRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            if Some(key.patient) != grant.patient() {
                return Err(StoreError::NotFound);
            }
            let done = sqlx::query(
                "INSERT INTO record_keys (patient_id, key_version, wrapped_key, created_at) \
                 SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM patient_keys \
                   WHERE patient_id = $1 AND version = $2 AND wrapped IS NOT NULL) \
                 ON CONFLICT (patient_id) DO NOTHING",
            )
            .bind(key.patient.as_uuid())
            .bind(key.key_version)
            .bind(&key.wrapped_key)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn stored_versions<'a>(
        &'a self,
        grant: &'a Grant<authz::SendRecords>,
        keys: &'a [(String, String)],
    ) -> BoxFuture<'a, Result<Vec<StoredVersion>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for (resource_type, source_id) in keys {
                let row = sqlx::query(
                    "SELECT id, patient_id, version FROM health_records \
                     WHERE practice_id = $1 AND resource_type = $2 AND source_id = $3",
                )
                .bind(grant.object().as_uuid())
                .bind(resource_type)
                .bind(source_id)
                .fetch_optional(&self.pool)
                .await?;
                if let Some(r) = row {
                    out.push(StoredVersion {
                        resource_type: resource_type.clone(),
                        source_id: source_id.clone(),
                        id: RecordId::from_uuid(r.try_get("id")?),
                        patient: PatientId::from_uuid(r.try_get("patient_id")?),
                        version: r.try_get("version")?,
                    });
                }
            }
            Ok(out)
        })
    }

    fn apply_records<'a>(
        &'a self,
        batches: &'a [(&'a Grant<authz::IngestRecords>, Vec<RecordChange>)],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            for (grant, changes) in batches {
                let (patient, practice) = (nil(grant.patient()), nil_practice(grant.via_practice()));
                for change in changes {
                    let done = match change {
                    RecordChange::Put { row, expected: None } => {
                        if row.patient.as_uuid() != patient || row.practice.as_uuid() != practice {
                            return Err(StoreError::NotFound);
                        }
                        sqlx::query(
                            "INSERT INTO health_records (id, patient_id, practice_id, resource_type, source_id, version, \
                             category, effective, status, held, auto_release_at, group_id, content, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)",
                        )
                        .bind(row.id.as_uuid())
                        .bind(patient)
                        .bind(practice)
                        .bind(&row.resource_type)
                        .bind(&row.source_id)
                        .bind(row.version)
                        .bind(row.category.as_str())
                        .bind(&row.effective)
                        .bind(if row.removed { "removed" } else { "current" })
                        .bind(row.held)
                        .bind(row.auto_release_at)
                        .bind(row.group.map(|g| g.as_uuid()))
                        .bind(&row.content)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| match map_unique(e) {
                            StoreError::Conflict(_) => StoreError::Conflict("This item (sent twice at once)"),
                            other => other,
                        })?
                    }
                    RecordChange::Put { row, expected: Some(old) } => {
                        sqlx::query(
                            "UPDATE health_records SET version = $5, category = $6, effective = $7, status = $8, \
                             group_id = COALESCE($9, group_id), content = $10, updated_at = $11, \
                             held = $12, auto_release_at = $13 \
                             WHERE id = $1 AND patient_id = $2 AND practice_id = $3 AND version = $4",
                        )
                        .bind(row.id.as_uuid())
                        .bind(patient)
                        .bind(practice)
                        .bind(old)
                        .bind(row.version)
                        .bind(row.category.as_str())
                        .bind(&row.effective)
                        .bind(if row.removed { "removed" } else { "current" })
                        .bind(row.group.map(|g| g.as_uuid()))
                        .bind(&row.content)
                        .bind(now)
                        .bind(row.held)
                        .bind(row.auto_release_at)
                        .execute(&mut *tx)
                        .await?
                    }
                    RecordChange::Link { source_id, group } => {
                        sqlx::query(
                            "UPDATE health_records SET group_id = $4, updated_at = $5 \
                             WHERE patient_id = $1 AND practice_id = $2 AND resource_type = 'Observation' AND source_id = $3",
                        )
                        .bind(patient)
                        .bind(practice)
                        .bind(source_id)
                        .bind(group.as_uuid())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                    }
                    RecordChange::Remove { resource_type, source_id } => {
                        sqlx::query(
                            "UPDATE health_records SET status = 'removed', updated_at = $5 \
                             WHERE patient_id = $1 AND practice_id = $2 AND resource_type = $3 AND source_id = $4",
                        )
                        .bind(patient)
                        .bind(practice)
                        .bind(resource_type)
                        .bind(source_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        continue; // removing what was never sent is not an error (FHIR deletes are idempotent)
                    }
                };
                    if done.rows_affected() != 1 {
                        return Err(StoreError::Conflict("This item (changed by another request meanwhile)"));
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn patient_records<'a>(
        &'a self,
        grant: &'a Grant<authz::ReadRecords>,
        filter: RecordFilter,
    ) -> BoxFuture<'a, Result<Vec<RecordRow>>> {
        Box::pin(async move {
            let staff = grant.via_practice().is_some();
            let scope = if staff { STAFF_SCOPE.to_owned() } else { proxied(grant, "h.status = 'current' AND $2 = $2") };
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {H_COLUMNS} WHERE h.patient_id = $1 AND ($3 = '' OR h.category = $3) AND {scope} \
                 ORDER BY COALESCE(h.effective, '') DESC, h.created_at DESC, h.id LIMIT $4"
            )))
            .bind(nil(grant.patient()))
            .bind(nil_practice(grant.via_practice()))
            .bind(filter.category.map_or("", RecordCategory::as_str))
            .bind(filter.limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(record_row).collect()
        })
    }

    fn record_summary<'a>(
        &'a self,
        grant: &'a Grant<authz::ReadRecords>,
        now: UnixTime,
        results: i64,
    ) -> BoxFuture<'a, Result<crate::RecordSummaryRows>> {
        Box::pin(async move {
            let staff_scope = format!("{STAFF_SCOPE} AND $3 = $3");
            let scope = if grant.via_practice().is_some() { staff_scope } else { proxied(grant, PATIENT_SEES) };
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT * FROM (SELECT {H_COLUMNS} WHERE h.patient_id = $1 AND {scope} \
                   AND h.category IN ('allergies', 'conditions', 'medications', 'recalls')) a \
                 UNION ALL SELECT * FROM (SELECT {H_COLUMNS} WHERE h.patient_id = $1 AND {scope} \
                   AND h.category = 'results' ORDER BY COALESCE(h.effective, '') DESC, h.created_at DESC, h.id LIMIT $4) r"
            )))
            .bind(nil(grant.patient()))
            .bind(nil_practice(grant.via_practice()))
            .bind(now)
            .bind(results)
            .fetch_all(&self.pool)
            .await?;
            let rows = rows.iter().map(record_row).collect::<Result<Vec<_>>>()?;
            let counts = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT h.practice_id, h.category, COUNT(*) AS n FROM health_records h \
                 LEFT JOIN health_records g ON g.id = h.group_id \
                 WHERE h.patient_id = $1 AND {scope} GROUP BY h.practice_id, h.category"
            )))
            .bind(nil(grant.patient()))
            .bind(nil_practice(grant.via_practice()))
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
            let counts = counts
                .iter()
                .map(|r| -> Result<(PracticeId, RecordCategory, i64)> {
                    Ok((
                        PracticeId::from_uuid(r.try_get("practice_id")?),
                        RecordCategory::parse(&r.try_get::<String, _>("category")?)
                            .ok_or_else(|| corrupt("record category"))?,
                        r.try_get("n")?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((rows, counts))
        })
    }

    fn record<'a>(&'a self, grant: &'a Grant<authz::ReadRecord>) -> BoxFuture<'a, Result<RecordRow>> {
        Box::pin(async move {
            let scope = if grant.via_practice().is_some() { STAFF_SCOPE } else { "h.status = 'current' AND $2 = $2" };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {H_COLUMNS} WHERE h.id = $1 AND h.patient_id = $3 AND {scope}"
            )))
            .bind(grant.object().as_uuid())
            .bind(nil_practice(grant.via_practice()))
            .bind(nil(grant.patient()))
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(record_row)
            .transpose()?
            .ok_or(StoreError::NotFound)
        })
    }

    fn held_results<'a>(
        &'a self,
        grant: &'a Grant<authz::ListHeldResults>,
        now: UnixTime,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<RecordRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {H_COLUMNS} WHERE h.practice_id = $1 AND h.held = TRUE AND h.status = 'current' \
                 AND (g.id IS NULL OR g.held = FALSE OR g.status <> 'current') \
                 AND (h.auto_release_at IS NULL OR h.auto_release_at > $2) \
                 AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = h.patient_id AND e.practice_id = $1) \
                 ORDER BY h.created_at, COALESCE(h.effective, ''), h.id LIMIT $3"
            )))
            .bind(grant.object().as_uuid())
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(record_row).collect()
        })
    }

    fn release_record<'a>(
        &'a self,
        grant: &'a Grant<authz::ReleaseRecord>,
        by: AccountId,
        note: Option<&'a str>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE health_records SET held = FALSE, released_at = $4, released_by = $5, notified_at = $4, \
                 release_note = CASE WHEN id = $1 THEN $6 ELSE release_note END, updated_at = $4 \
                 WHERE (id = $1 OR group_id = $1) AND patient_id = $2 AND practice_id = $3 AND held = TRUE \
                 AND status = 'current'",
            )
            .bind(grant.object().as_uuid())
            .bind(nil(grant.patient()))
            .bind(nil_practice(grant.via_practice()))
            .bind(now)
            .bind(by.as_uuid())
            .bind(note)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected())
        })
    }

    fn hide_record<'a>(
        &'a self,
        grant: &'a Grant<authz::HideRecord>,
        by: AccountId,
        reason: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE health_records SET hidden_at = $4, hidden_by = $5, hidden_reason = $6, updated_at = $4 \
                 WHERE id = $1 AND patient_id = $2 AND practice_id = $3 AND hidden_at IS NULL",
            )
            .bind(grant.object().as_uuid())
            .bind(nil(grant.patient()))
            .bind(nil_practice(grant.via_practice()))
            .bind(now)
            .bind(by.as_uuid())
            .bind(reason)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict("This item is hidden already"));
            }
            Ok(())
        })
    }

    fn auto_released_untold(&self, now: UnixTime, limit: i64) -> BoxFuture<'_, Result<Vec<crate::AutoReleased>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT h.id, h.patient_id, h.practice_id, h.category, \
                 (h.hidden_at IS NOT NULL OR g.hidden_at IS NOT NULL) AS hidden \
                 FROM health_records h LEFT JOIN health_records g ON g.id = h.group_id \
                 WHERE h.held = TRUE AND h.auto_release_at IS NOT NULL AND h.auto_release_at <= $1 \
                 AND h.notified_at IS NULL AND h.status = 'current' ORDER BY h.auto_release_at, h.id LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        RecordId::from_uuid(r.try_get("id")?),
                        PatientId::from_uuid(r.try_get("patient_id")?),
                        PracticeId::from_uuid(r.try_get("practice_id")?),
                        RecordCategory::parse(&r.try_get::<String, _>("category")?)
                            .ok_or_else(|| corrupt("record category"))?,
                        r.try_get("hidden")?,
                    ))
                })
                .collect()
        })
    }

    fn mark_told<'a>(&'a self, items: &'a [RecordId], now: UnixTime) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            for id in items {
                sqlx::query("UPDATE health_records SET notified_at = $2 WHERE id = $1")
                    .bind(id.as_uuid())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn unhide_record<'a>(&'a self, grant: &'a Grant<authz::UnhideRecord>, now: UnixTime) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE health_records SET hidden_at = NULL, hidden_by = NULL, hidden_reason = NULL, updated_at = $4 \
                 WHERE id = $1 AND patient_id = $2 AND practice_id = $3 AND hidden_at IS NOT NULL",
            )
            .bind(grant.object().as_uuid())
            .bind(nil(grant.patient()))
            .bind(nil_practice(grant.via_practice()))
            .bind(now)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::Conflict(
                    "This item is not hidden by itself (if its report is hidden, show the report)",
                ));
            }
            Ok(())
        })
    }
}

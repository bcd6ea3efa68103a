// The SQL of the documents aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 documents/sql.rs` (CI checks it).

use crate::portable::{corrupt, map_unique};
use crate::{DocumentRow, DocumentStore, DocumentWithKey, PatientKeyRow, Result, StoreError, StoreGrant};
use authz::Grant;
use domain::{AccountId, BoxFuture, ClientId, DocumentCategory, DocumentId, PatientId, PracticeId, UnixTime};
use sqlx::Row;
use uuid::Uuid;

type DbRow = <Db as sqlx::Database>::Row;

const COLUMNS: &str = "id, patient_id, version, category, title, filename, media_type, size, blob_key, \
    wrapped_key, key_version, aad_practice, clinical_date, author, source_org_id, source_org_name, \
    controller_id, controller_name, source_ref, pushed_by_practice, pushed_by_client, uploaded_by, \
    created_at, hidden_at, withdrawn_at, deleted_at";
const LIVE: &str = "deleted_at IS NULL AND withdrawn_at IS NULL";
const D_LIVE: &str = "d.deleted_at IS NULL AND d.withdrawn_at IS NULL";
// The same columns, of `documents d`, for queries that join another table.
const D_COLUMNS: &str = "d.id, d.patient_id, d.version, d.category, d.title, d.filename, d.media_type, d.size, \
    d.blob_key, d.wrapped_key, d.key_version, d.aad_practice, d.clinical_date, d.author, d.source_org_id, \
    d.source_org_name, d.controller_id, d.controller_name, d.source_ref, d.pushed_by_practice, \
    d.pushed_by_client, d.uploaded_by, d.created_at, d.hidden_at, d.withdrawn_at, d.deleted_at";

/// A document row read with its patient key (`WITH_KEY`), the key `None` if that version is gone.
fn doc_with_key(row: &DbRow) -> Result<DocumentWithKey> {
    let doc = doc_row(row)?;
    let key = match row.try_get::<Option<i32>, _>("key_row_version")? {
        Some(version) => Some(PatientKeyRow {
            patient: doc.patient,
            version,
            master_key_id: row.try_get("key_master_id")?,
            wrapped: row.try_get("key_wrapped")?,
        }),
        None => None,
    };
    Ok((doc, key))
}

/// The patient key columns and join that go with `D_COLUMNS` for [`doc_with_key`].
const WITH_KEY: &str = "k.master_key_id AS key_master_id, k.wrapped AS key_wrapped, k.version AS key_row_version \
    FROM documents d LEFT JOIN patient_keys k ON k.patient_id = d.patient_id AND k.version = d.key_version";

fn doc_row(r: &DbRow) -> Result<DocumentRow> {
    Ok(DocumentRow {
        id: DocumentId::from_uuid(r.try_get("id")?),
        patient: PatientId::from_uuid(r.try_get("patient_id")?),
        version: r.try_get("version")?,
        category: DocumentCategory::parse(&r.try_get::<String, _>("category")?)
            .map_err(|_| corrupt("document category"))?,
        title: r.try_get("title")?,
        filename: r.try_get("filename")?,
        media_type: r.try_get("media_type")?,
        size: r.try_get("size")?,
        blob_key: r.try_get("blob_key")?,
        wrapped_key: r.try_get("wrapped_key")?,
        key_version: r.try_get("key_version")?,
        aad_practice: r.try_get("aad_practice")?,
        clinical_date: r.try_get("clinical_date")?,
        author: r.try_get("author")?,
        source_org_id: r.try_get("source_org_id")?,
        source_org_name: r.try_get("source_org_name")?,
        controller_id: r.try_get("controller_id")?,
        controller_name: r.try_get("controller_name")?,
        source_ref: r.try_get("source_ref")?,
        pushed_by_practice: r.try_get::<Option<Uuid>, _>("pushed_by_practice")?.map(PracticeId::from_uuid),
        pushed_by_client: r.try_get::<Option<Uuid>, _>("pushed_by_client")?.map(ClientId::from_uuid),
        uploaded_by: r.try_get::<Option<Uuid>, _>("uploaded_by")?.map(AccountId::from_uuid),
        created_at: r.try_get("created_at")?,
        hidden_at: r.try_get("hidden_at")?,
        withdrawn_at: r.try_get("withdrawn_at")?,
        deleted_at: r.try_get("deleted_at")?,
    })
}

fn nil_or(p: Option<PracticeId>) -> Uuid {
    p.map_or(Uuid::nil(), |p| p.as_uuid())
}

/// Sets one column of the grant's live document (a patient's own), or answers not found.
async fn change_own_document<T>(
    pool: &sqlx::Pool<Db>,
    grant: &Grant<authz::ChangeDocument>,
    column: &'static str,
    value: T,
) -> Result<()>
where
    T: for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db> + Send,
{
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE documents SET {column} = $3 WHERE id = $1 AND patient_id = $2 AND {LIVE}"
    )))
    .bind(grant.object().as_uuid())
    .bind(grant.patient().map_or(Uuid::nil(), |p| p.as_uuid()))
    .bind(value)
    .execute(pool)
    .await?;
    if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) }
}

impl DocumentStore for This {
    fn add_blob_intent<'a>(&'a self, blob_key: &'a str, now: UnixTime) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO blob_intents (blob_key, created_at) VALUES ($1, $2)")
                .bind(blob_key)
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn commit_document<'a>(
        &'a self,
        grant: StoreGrant<'a>,
        d: &'a DocumentRow,
        quota: Option<i64>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if grant.patient() != Some(d.patient) {
                return Err(StoreError::NotFound);
            }
            let mut tx = self.begin().await?;
            // Lock the key version (a no-op update takes the row lock on PostgreSQL;
            // SQLite's write transaction is already exclusive): a rotation or erasure
            // of this patient's key waits for this commit, or this one sees it.
            let locked = sqlx::query(
                "UPDATE patient_keys SET version = version WHERE patient_id = $1 AND version = $2 AND wrapped IS NOT NULL",
            )
            .bind(d.patient.as_uuid())
            .bind(d.key_version)
            .execute(&mut *tx)
            .await?;
            if locked.rows_affected() != 1 {
                return Err(StoreError::Conflict("This patient key version"));
            }
            if let Some(quota) = quota {
                let used: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM documents \
                     WHERE patient_id = $1 AND category = 'patient_upload' AND {LIVE}"
                )))
                .bind(d.patient.as_uuid())
                .fetch_one(&mut *tx)
                .await?;
                if used.unwrap_or(0) + d.size > quota {
                    return Err(StoreError::Conflict("quota"));
                }
            }
            let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO documents ({COLUMNS}) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, \
                        $20, $21, $22, $23, NULL, NULL, NULL \
                 WHERE EXISTS (SELECT 1 FROM patient_keys k WHERE k.patient_id = $2 AND k.version = $11 \
                               AND k.wrapped IS NOT NULL)"
            )))
            .bind(d.id.as_uuid())
            .bind(d.patient.as_uuid())
            .bind(d.version)
            .bind(d.category.as_str())
            .bind(&d.title)
            .bind(&d.filename)
            .bind(&d.media_type)
            .bind(d.size)
            .bind(&d.blob_key)
            .bind(&d.wrapped_key)
            .bind(d.key_version)
            .bind(&d.aad_practice)
            .bind(&d.clinical_date)
            .bind(&d.author)
            .bind(&d.source_org_id)
            .bind(&d.source_org_name)
            .bind(&d.controller_id)
            .bind(&d.controller_name)
            .bind(&d.source_ref)
            .bind(d.pushed_by_practice.map(|p| p.as_uuid()))
            .bind(d.pushed_by_client.map(|c| c.as_uuid()))
            .bind(d.uploaded_by.map(|a| a.as_uuid()))
            .bind(d.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| match map_unique(e) {
                StoreError::Conflict(_) => StoreError::Conflict("This document"),
                other => other,
            })?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict("This patient key version"));
            }
            let cleared =
                sqlx::query("DELETE FROM blob_intents WHERE blob_key = $1").bind(&d.blob_key).execute(&mut *tx).await?;
            if cleared.rows_affected() != 1 {
                // The sweeper claimed this upload as abandoned: it is deleting the blob.
                return Err(StoreError::Conflict("This upload"));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn pushed_document<'a>(
        &'a self,
        grant: &'a Grant<authz::PushDocument>,
        source_org_id: &'a str,
        source_ref: &'a str,
    ) -> BoxFuture<'a, Result<Option<DocumentRow>>> {
        Box::pin(async move {
            let _ = grant;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM documents WHERE source_org_id = $1 AND source_ref = $2"
            )))
            .bind(source_org_id)
            .bind(source_ref)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(doc_row)
            .transpose()
        })
    }

    fn list_documents<'a>(
        &'a self,
        grant: &'a Grant<authz::ListDocuments>,
        include_hidden: bool,
    ) -> BoxFuture<'a, Result<Vec<DocumentWithKey>>> {
        Box::pin(async move {
            // Someone acting for the patient never sees what the patient hid.
            let include_hidden = include_hidden && !grant.by_proxy();
            // Staff see what their practice pushed (and only while the patient is
            // enrolled there); hiding is the patient's own view and does not apply.
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {D_COLUMNS}, {WITH_KEY} WHERE d.patient_id = $1 AND {D_LIVE} \
                 AND ($2 OR d.hidden_at IS NULL OR $3) \
                 AND ($3 = FALSE OR (d.pushed_by_practice = $4 AND EXISTS (SELECT 1 FROM enrolments e \
                      WHERE e.patient_id = d.patient_id AND e.practice_id = $4))) \
                 AND ($5 = FALSE OR d.pushed_by_practice IS NULL OR EXISTS (SELECT 1 FROM enrolments e \
                      WHERE e.patient_id = d.patient_id AND e.practice_id = d.pushed_by_practice)) \
                 ORDER BY d.created_at DESC, d.id"
            )))
            .bind(grant.object().as_uuid())
            .bind(include_hidden)
            .bind(grant.via_practice().is_some())
            .bind(nil_or(grant.via_practice()))
            // Someone acting for the patient sees what the patient's current practice (their
            // link's) sent and the patient's own uploads, never what a former practice sent:
            // the same documents the policy lets them open.
            .bind(grant.by_proxy())
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(doc_with_key).collect()
        })
    }

    fn document_for_read<'a>(
        &'a self,
        grant: &'a Grant<authz::ReadDocument>,
    ) -> BoxFuture<'a, Result<DocumentWithKey>> {
        Box::pin(async move {
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {D_COLUMNS}, {WITH_KEY} WHERE d.id = $1 AND d.patient_id = $2 AND d.deleted_at IS NULL AND d.withdrawn_at IS NULL \
                 AND ($3 = FALSE OR ((d.pushed_by_practice = $4 OR EXISTS (SELECT 1 FROM messages m \
                      JOIN message_threads t ON t.id = m.thread_id WHERE m.document_id = d.id AND t.practice_id = $4)) \
                      AND EXISTS (SELECT 1 FROM enrolments e WHERE e.patient_id = d.patient_id AND e.practice_id = $4)))"
            )))
            .bind(grant.object().as_uuid())
            .bind(grant.patient().map_or(Uuid::nil(), |p| p.as_uuid()))
            .bind(grant.via_practice().is_some())
            .bind(nil_or(grant.via_practice()))
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
            doc_with_key(&row)
        })
    }

    fn own_document<'a>(&'a self, grant: &'a Grant<authz::ChangeDocument>) -> BoxFuture<'a, Result<DocumentWithKey>> {
        Box::pin(async move {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {D_COLUMNS}, {WITH_KEY} WHERE d.id = $1 AND d.patient_id = $2 AND {D_LIVE}"
            )))
            .bind(grant.object().as_uuid())
            .bind(grant.patient().map_or(Uuid::nil(), |p| p.as_uuid()))
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(doc_with_key)
            .transpose()?
            .ok_or(StoreError::NotFound)
        })
    }

    fn unsealed_documents<'a>(
        &'a self,
        grant: &'a Grant<authz::MasterKeyCustody>,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<DocumentWithKey>>> {
        Box::pin(async move {
            let _ = grant;
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {D_COLUMNS}, {WITH_KEY} WHERE substr(d.title, 1, 10) <> 'sealed:v1:' \
                 OR substr(d.filename, 1, 10) <> 'sealed:v1:' OR substr(d.author, 1, 10) <> 'sealed:v1:' \
                 ORDER BY d.id LIMIT $1"
            )))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(doc_with_key).collect()
        })
    }

    fn seal_document_details<'a>(
        &'a self,
        grant: &'a Grant<authz::MasterKeyCustody>,
        row: &'a DocumentRow,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let _ = grant;
            sqlx::query("UPDATE documents SET title = $2, filename = $3, author = $4 WHERE id = $1")
                .bind(row.id.as_uuid())
                .bind(&row.title)
                .bind(&row.filename)
                .bind(&row.author)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn rename_document<'a>(
        &'a self,
        grant: &'a Grant<authz::ChangeDocument>,
        title: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { change_own_document(&self.pool, grant, "title", title.to_owned()).await })
    }

    fn hide_document<'a>(
        &'a self,
        grant: &'a Grant<authz::ChangeDocument>,
        hidden_at: Option<UnixTime>,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { change_own_document(&self.pool, grant, "hidden_at", hidden_at).await })
    }

    fn delete_document<'a>(
        &'a self,
        grant: &'a Grant<authz::ChangeDocument>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let key: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "UPDATE documents SET deleted_at = $3, wrapped_key = $4 \
                 WHERE id = $1 AND patient_id = $2 AND category = 'patient_upload' AND {LIVE} RETURNING blob_key"
            )))
            .bind(grant.object().as_uuid())
            .bind(grant.patient().map_or(Uuid::nil(), |p| p.as_uuid()))
            .bind(now)
            .bind(Vec::<u8>::new())
            .fetch_optional(&mut *tx)
            .await?;
            let key = blob_to_sweep(&mut tx, key).await?;
            tx.commit().await?;
            Ok(key)
        })
    }

    fn withdraw_document<'a>(
        &'a self,
        grant: &'a Grant<authz::WithdrawDocument>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<String>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let key: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "UPDATE documents SET withdrawn_at = $4, wrapped_key = $5 \
                 WHERE id = $1 AND patient_id = $2 AND pushed_by_practice = $3 AND {LIVE} RETURNING blob_key"
            )))
            .bind(grant.object().as_uuid())
            .bind(grant.patient().map_or(Uuid::nil(), |p| p.as_uuid()))
            .bind(nil_or(grant.via_practice()))
            .bind(now)
            .bind(Vec::<u8>::new())
            .fetch_optional(&mut *tx)
            .await?;
            let key = blob_to_sweep(&mut tx, key).await?;
            tx.commit().await?;
            Ok(key)
        })
    }

    fn storage_used<'a>(&'a self, grant: StoreGrant<'a>) -> BoxFuture<'a, Result<i64>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let used: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM documents WHERE patient_id = $1 \
                 AND category = 'patient_upload' AND {LIVE}"
            )))
            .bind(patient.as_uuid())
            .fetch_one(&self.pool)
            .await?;
            Ok(used.unwrap_or(0))
        })
    }

    fn document_counts<'a>(&'a self, grant: StoreGrant<'a>) -> BoxFuture<'a, Result<(i64, i64)>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT CAST(COALESCE(SUM(CASE WHEN category = 'patient_upload' THEN 1 ELSE 0 END), 0) AS BIGINT) AS own, \
                 CAST(COUNT(*) AS BIGINT) AS total FROM documents WHERE patient_id = $1 AND {LIVE}"
            )))
            .bind(patient.as_uuid())
            .fetch_one(&self.pool)
            .await?;
            Ok((row.try_get("own")?, row.try_get("total")?))
        })
    }

    fn claim_stale_blob_intents(&self, cutoff: UnixTime, limit: i64) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "DELETE FROM blob_intents WHERE blob_key IN (SELECT i.blob_key FROM blob_intents i \
                 WHERE i.created_at <= $1 AND NOT EXISTS \
                 (SELECT 1 FROM documents d WHERE d.blob_key = i.blob_key AND {LIVE}) \
                 ORDER BY i.created_at LIMIT $2) RETURNING blob_key"
            )))
            .bind(cutoff)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
        })
    }

    fn remove_blob_intent<'a>(&'a self, blob_key: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query("DELETE FROM blob_intents WHERE blob_key = $1").bind(blob_key).execute(&self.pool).await?;
            Ok(())
        })
    }

    fn live_blob_keys(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT blob_key FROM documents WHERE {LIVE} UNION SELECT blob_key FROM blob_intents"
            )))
            .fetch_all(&self.pool)
            .await?)
        })
    }

    fn unwrap_counts(&self, since_ms: i64) -> BoxFuture<'_, Result<Vec<(String, String, i64)>>> {
        Box::pin(async move {
            // The time index bounds the scan to the window asked about.
            let rows = sqlx::query(
                "SELECT COALESCE(actor_account, 'anonymous') AS actor, actor_role, COUNT(*) AS n FROM audit_events \
                 WHERE at_ms >= $1 AND action = 'unwrap' GROUP BY actor_account, actor_role ORDER BY n DESC, actor",
            )
            .bind(since_ms)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(|r| Ok((r.try_get("actor")?, r.try_get("actor_role")?, r.try_get("n")?))).collect()
        })
    }

    fn patient_by_nhi<'a>(&'a self, nhi: &'a str) -> BoxFuture<'a, Result<Option<PatientId>>> {
        Box::pin(async move {
            let id: Option<Uuid> = sqlx::query_scalar("SELECT id FROM patients WHERE nhi = $1")
                .bind(nhi)
                .fetch_optional(&self.pool)
                .await?;
            Ok(id.map(PatientId::from_uuid))
        })
    }
}

/// The blob of a document whose key was just shredded (`None`: no such live document, 404),
/// handed to the sweeper in the same transaction (an intent dated 0 is due at once).
async fn blob_to_sweep(tx: &mut sqlx::Transaction<'_, Db>, key: Option<String>) -> Result<String> {
    let key = key.ok_or(StoreError::NotFound)?;
    sqlx::query("INSERT INTO blob_intents (blob_key, created_at) VALUES ($1, 0) ON CONFLICT (blob_key) DO NOTHING")
        .bind(&key)
        .execute(&mut **tx)
        .await?;
    Ok(key)
}

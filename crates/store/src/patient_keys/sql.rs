// The SQL of the patient keys aggregate, one text for both engines: included by `mod.rs` once
// for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its database). Format
// with `rustfmt --edition 2024 patient_keys/sql.rs` (CI checks it).

use super::{KeyGrant, PatientKeyStore};
use crate::portable::map_unique;
use crate::{DocumentKey, PatientKeyRow, RecordKeyRow, Result, StoreError};
use authz::{Grant, KeyCustody, MasterKeyCustody};
use domain::{BoxFuture, DocumentId, PatientId, UnixTime};
use sqlx::Row;

type DbRow = <Db as sqlx::Database>::Row;

/// A live document (neither deleted nor withdrawn).
const LIVE: &str = "deleted_at IS NULL AND withdrawn_at IS NULL";

fn key_row(r: &DbRow) -> Result<PatientKeyRow> {
    Ok(PatientKeyRow {
        patient: PatientId::from_uuid(r.try_get("patient_id")?),
        version: r.try_get("version")?,
        master_key_id: r.try_get("master_key_id")?,
        wrapped: r.try_get("wrapped")?,
    })
}

impl PatientKeyStore for This {
    fn current_patient_key<'a>(&'a self, grant: KeyGrant<'a>) -> BoxFuture<'a, Result<Option<PatientKeyRow>>> {
        Box::pin(async move {
            let patient = grant.patient().ok_or(StoreError::NotFound)?;
            sqlx::query(
                "SELECT patient_id, version, master_key_id, wrapped FROM patient_keys \
                 WHERE patient_id = $1 ORDER BY version DESC LIMIT 1",
            )
            .bind(patient.as_uuid())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(key_row)
            .transpose()
        })
    }

    fn patient_key<'a>(
        &'a self,
        grant: &'a Grant<KeyCustody>,
        version: i32,
    ) -> BoxFuture<'a, Result<Option<PatientKeyRow>>> {
        Box::pin(async move {
            let patient = grant.object();
            sqlx::query(
                "SELECT patient_id, version, master_key_id, wrapped FROM patient_keys \
                 WHERE patient_id = $1 AND version = $2",
            )
            .bind(patient.as_uuid())
            .bind(version)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(key_row)
            .transpose()
        })
    }

    fn insert_patient_key<'a>(
        &'a self,
        grant: KeyGrant<'a>,
        k: &'a PatientKeyRow,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            if grant.patient() != Some(k.patient) {
                return Err(StoreError::NotFound);
            }
            let done = sqlx::query(
                "INSERT INTO patient_keys (patient_id, version, master_key_id, wrapped, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (patient_id, version) DO NOTHING",
            )
            .bind(k.patient.as_uuid())
            .bind(k.version)
            .bind(&k.master_key_id)
            .bind(&k.wrapped)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn keys_not_under<'a>(
        &'a self,
        _grant: &'a Grant<MasterKeyCustody>,
        master_key_id: &'a str,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<PatientKeyRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT patient_id, version, master_key_id, wrapped FROM patient_keys \
                 WHERE master_key_id <> $1 AND wrapped IS NOT NULL ORDER BY patient_id, version LIMIT $2",
            )
            .bind(master_key_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(key_row).collect()
        })
    }

    fn rewrap_patient_key<'a>(
        &'a self,
        _grant: &'a Grant<MasterKeyCustody>,
        k: &'a PatientKeyRow,
        old_master: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE patient_keys SET master_key_id = $3, wrapped = $4 \
                 WHERE patient_id = $1 AND version = $2 AND master_key_id = $5 AND wrapped IS NOT NULL",
            )
            .bind(k.patient.as_uuid())
            .bind(k.version)
            .bind(&k.master_key_id)
            .bind(&k.wrapped)
            .bind(old_master)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn document_keys<'a>(&'a self, grant: &'a Grant<KeyCustody>) -> BoxFuture<'a, Result<Vec<DocumentKey>>> {
        Box::pin(async move {
            let patient = grant.object();
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT id, key_version, wrapped_key FROM documents WHERE patient_id = $1 AND {LIVE} ORDER BY id"
            )))
            .bind(patient.as_uuid())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(DocumentKey {
                        id: DocumentId::from_uuid(r.try_get("id")?),
                        key_version: r.try_get("key_version")?,
                        wrapped_key: r.try_get("wrapped_key")?,
                    })
                })
                .collect()
        })
    }

    fn rotate_patient_key<'a>(
        &'a self,
        grant: &'a Grant<KeyCustody>,
        k: &'a PatientKeyRow,
        rewrapped: &'a [DocumentKey],
        records: Option<&'a RecordKeyRow>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            if k.patient != grant.object() {
                return Err(StoreError::NotFound);
            }
            let mut tx = self.begin().await?;
            sqlx::query(
                "INSERT INTO patient_keys (patient_id, version, master_key_id, wrapped, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(k.patient.as_uuid())
            .bind(k.version)
            .bind(&k.master_key_id)
            .bind(&k.wrapped)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| match map_unique(e) {
                StoreError::Conflict(_) => StoreError::Conflict("This patient key version"),
                other => other,
            })?;
            for d in rewrapped {
                let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE documents SET wrapped_key = $3, key_version = $4 \
                     WHERE id = $1 AND patient_id = $2 AND {LIVE}"
                )))
                .bind(d.id.as_uuid())
                .bind(k.patient.as_uuid())
                .bind(&d.wrapped_key)
                .bind(d.key_version)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict("This document"));
                }
            }
            if let Some(rk) = records {
                let done =
                    sqlx::query("UPDATE record_keys SET wrapped_key = $2, key_version = $3 WHERE patient_id = $1")
                        .bind(k.patient.as_uuid())
                        .bind(&rk.wrapped_key)
                        .bind(k.version)
                        .execute(&mut *tx)
                        .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict("This patient's records key"));
                }
            }
            // Destroy the old versions first: that locks their rows, so a commit under
            // one of them either finished before (and is counted next) or now fails.
            sqlx::query(
                "UPDATE patient_keys SET wrapped = NULL, destroyed_at = $3 \
                 WHERE patient_id = $1 AND version < $2 AND wrapped IS NOT NULL",
            )
            .bind(k.patient.as_uuid())
            .bind(k.version)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // Every live document must now be under the new version, or nothing changes.
            let stragglers: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM documents WHERE patient_id = $1 AND key_version <> $2 AND {LIVE}"
            )))
            .bind(k.patient.as_uuid())
            .bind(k.version)
            .fetch_one(&mut *tx)
            .await?;
            if stragglers != 0 {
                return Err(StoreError::Conflict("A document added during rotation"));
            }
            let records_behind: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM record_keys WHERE patient_id = $1 AND key_version <> $2")
                    .bind(k.patient.as_uuid())
                    .bind(k.version)
                    .fetch_one(&mut *tx)
                    .await?;
            if records_behind != 0 {
                return Err(StoreError::Conflict("A records key made during rotation"));
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn scrub_erased_keys(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.scrub_deleted_content())
    }

    fn destroy_patient_keys<'a>(&'a self, grant: &'a Grant<KeyCustody>, now: UnixTime) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let patient = grant.object();
            let mut tx = self.begin().await?;
            let done = sqlx::query(
                "UPDATE patient_keys SET wrapped = NULL, destroyed_at = $2 WHERE patient_id = $1 AND wrapped IS NOT NULL",
            )
            .bind(patient.as_uuid())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // The records key goes with the patient key (it could no longer be unwrapped), and
            // the sealed items with it: nothing of the record is left to open.
            for table in ["health_records", "record_keys"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE patient_id = $1")))
                    .bind(patient.as_uuid())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(done.rows_affected())
        })
    }
}

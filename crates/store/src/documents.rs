//! The documents part of the storage contract: documents, patient keys, blob intents and the API
//! clients organisations push with. Reads and changes of documents take a grant; their SQL repeats
//! the relationship the grant rests on.

use crate::{ApiClientRow, DocumentKey, DocumentRow, PatientKeyRow, Result};
use authz::{
    ChangeDocument, Grant, ListDocuments, ManagePractices, PushDocument, ReadDocument, UploadDocument, WithdrawDocument,
};
use domain::{BoxFuture, ClientId, PatientId, PracticeId, UnixTime};

/// What a grant to store a document is: a patient's own upload or an organisation's push.
#[derive(Debug, Clone, Copy)]
pub enum StoreGrant<'a> {
    /// The patient uploads their own.
    Upload(&'a Grant<UploadDocument>),
    /// An organisation pushes one in.
    Push(&'a Grant<PushDocument>),
}

impl StoreGrant<'_> {
    /// The patient the grant is for.
    #[must_use]
    pub fn patient(&self) -> Option<PatientId> {
        match self {
            Self::Upload(g) => g.patient(),
            Self::Push(g) => g.patient(),
        }
    }
}

/// Storage for documents and their keys.
pub trait DocumentStore: Send + Sync {
    /// The newest version of a patient's key, if they have one.
    fn current_patient_key(&self, patient: PatientId) -> BoxFuture<'_, Result<Option<PatientKeyRow>>>;
    /// One version of a patient's key.
    fn patient_key(&self, patient: PatientId, version: i32) -> BoxFuture<'_, Result<Option<PatientKeyRow>>>;
    /// Stores a patient's key unless that version exists already; true if it was stored.
    fn insert_patient_key<'a>(&'a self, key: &'a PatientKeyRow, now: UnixTime) -> BoxFuture<'a, Result<bool>>;
    /// Records that a blob may be written (before its first byte is).
    fn add_blob_intent<'a>(&'a self, blob_key: &'a str, now: UnixTime) -> BoxFuture<'a, Result<()>>;
    /// Commits a document whose blob is durable, and clears its blob intent, in one transaction.
    /// It first locks the patient key version the data key is wrapped with, so a rotation or an
    /// erasure and a commit for the same patient never interleave. Refused
    /// ([`crate::StoreError::Conflict`]) if the source already pushed this document, if that key
    /// version has been destroyed, if the upload's intent was swept, or (`quota`, for a
    /// patient's own uploads) if it would take their uploads past `quota` bytes.
    fn commit_document<'a>(
        &'a self,
        grant: StoreGrant<'a>,
        doc: &'a DocumentRow,
        quota: Option<i64>,
    ) -> BoxFuture<'a, Result<()>>;
    /// A document (live, withdrawn or deleted) an organisation pushed under its own identifier,
    /// for whichever patient.
    fn pushed_document<'a>(
        &'a self,
        grant: &'a Grant<PushDocument>,
        source_org_id: &'a str,
        source_ref: &'a str,
    ) -> BoxFuture<'a, Result<Option<DocumentRow>>>;
    /// The patient's live documents (a patient: all, hidden ones only if asked; staff: those
    /// their practice pushed), newest first.
    fn list_documents<'a>(
        &'a self,
        grant: &'a Grant<ListDocuments>,
        include_hidden: bool,
    ) -> BoxFuture<'a, Result<Vec<DocumentRow>>>;
    /// One live document to read, and the patient key its data key is wrapped under (none if
    /// that key version was destroyed), in one query: a key rotation cannot fall between them.
    fn document_for_read<'a>(
        &'a self,
        grant: &'a Grant<ReadDocument>,
    ) -> BoxFuture<'a, Result<(DocumentRow, Option<PatientKeyRow>)>>;
    /// One live document, to change.
    fn own_document<'a>(&'a self, grant: &'a Grant<ChangeDocument>) -> BoxFuture<'a, Result<DocumentRow>>;
    /// Renames a document.
    fn rename_document<'a>(&'a self, grant: &'a Grant<ChangeDocument>, title: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Hides a document from (or shows it again in) its patient's own list.
    fn hide_document<'a>(
        &'a self,
        grant: &'a Grant<ChangeDocument>,
        hidden_at: Option<UnixTime>,
    ) -> BoxFuture<'a, Result<()>>;
    /// Deletes a patient's own upload: the row keeps no key, and its blob is queued for removal.
    /// Returns the blob's key.
    fn delete_document<'a>(&'a self, grant: &'a Grant<ChangeDocument>, now: UnixTime) -> BoxFuture<'a, Result<String>>;
    /// Withdraws a pushed document, likewise; returns the blob's key.
    fn withdraw_document<'a>(
        &'a self,
        grant: &'a Grant<WithdrawDocument>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<String>>;
    /// Bytes the patient's own live uploads take (what their quota counts).
    fn storage_used(&self, patient: PatientId) -> BoxFuture<'_, Result<i64>>;
    /// Claims (removes and returns) up to `limit` blob intents older than `cutoff` whose blob no
    /// live document uses; the caller then deletes those blobs. An upload whose intent is
    /// claimed can no longer commit.
    fn claim_stale_blob_intents(&self, cutoff: UnixTime, limit: i64) -> BoxFuture<'_, Result<Vec<String>>>;
    /// Forgets a blob intent (its blob has been removed, or was never written).
    fn remove_blob_intent<'a>(&'a self, blob_key: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Every blob key a live document uses (for the full sweep).
    fn live_blob_keys(&self) -> BoxFuture<'_, Result<Vec<String>>>;

    // --- keys (the console) ---
    /// Up to `limit` live patient keys wrapped by a master key other than `master_key_id`.
    fn keys_not_under<'a>(&'a self, master_key_id: &'a str, limit: i64) -> BoxFuture<'a, Result<Vec<PatientKeyRow>>>;
    /// Replaces one patient key's wrapping, if it is still wrapped by `old_master`.
    fn rewrap_patient_key<'a>(&'a self, key: &'a PatientKeyRow, old_master: &'a str) -> BoxFuture<'a, Result<bool>>;
    /// A patient's live documents' keys.
    fn document_keys(&self, patient: PatientId) -> BoxFuture<'_, Result<Vec<DocumentKey>>>;
    /// Installs a new patient key version and the documents' data keys re-wrapped under it,
    /// and destroys the old versions, in one transaction.
    fn rotate_patient_key<'a>(
        &'a self,
        new_key: &'a PatientKeyRow,
        rewrapped: &'a [DocumentKey],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Destroys every version of a patient's key (erasure); returns how many were live.
    fn destroy_patient_keys(&self, patient: PatientId, now: UnixTime) -> BoxFuture<'_, Result<u64>>;
    /// Key unwraps per actor since a time (ms), most first: (actor account or client, role, count).
    fn unwrap_counts(&self, since_ms: i64) -> BoxFuture<'_, Result<Vec<(String, String, i64)>>>;
    /// The patient record with this NHI.
    fn patient_by_nhi<'a>(&'a self, nhi: &'a str) -> BoxFuture<'a, Result<Option<PatientId>>>;

    // --- API clients ---
    /// Stores a new API client.
    fn create_api_client<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        client: &'a ApiClientRow,
    ) -> BoxFuture<'a, Result<()>>;
    /// One API client.
    fn api_client(&self, id: ClientId) -> BoxFuture<'_, Result<Option<ApiClientRow>>>;
    /// Every API client.
    fn api_clients<'a>(&'a self, grant: &'a Grant<ManagePractices>) -> BoxFuture<'a, Result<Vec<ApiClientRow>>>;
    /// Replaces a live client's secret; false if there is no such live client.
    fn rotate_api_client<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        id: ClientId,
        secret_hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Revokes a client; false if there is no such live client.
    fn revoke_api_client<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        id: ClientId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Records that a practice receives documents from an organisation.
    fn add_agreement<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        practice: PracticeId,
        org_id: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
}

macro_rules! document_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use crate::portable::*;
            use crate::*;
            use authz::Grant;
            use domain::{AccountId, BoxFuture, ClientId, DocumentCategory, DocumentId, PatientId, PracticeId, UnixTime};
            use sqlx::Row;
            use uuid::Uuid;

            type DbRow = <$db as sqlx::Database>::Row;

            const COLUMNS: &str = "id, patient_id, version, category, title, filename, media_type, size, blob_key, \
                wrapped_key, key_version, aad_practice, clinical_date, author, source_org_id, source_org_name, \
                controller_id, controller_name, source_ref, pushed_by_practice, pushed_by_client, uploaded_by, \
                created_at, hidden_at, withdrawn_at, deleted_at";
            const LIVE: &str = "deleted_at IS NULL AND withdrawn_at IS NULL";
            // The same columns, of `documents d`, for queries that join another table.
            const D_COLUMNS: &str = "d.id, d.patient_id, d.version, d.category, d.title, d.filename, d.media_type, d.size, \
                d.blob_key, d.wrapped_key, d.key_version, d.aad_practice, d.clinical_date, d.author, d.source_org_id, \
                d.source_org_name, d.controller_id, d.controller_name, d.source_ref, d.pushed_by_practice, \
                d.pushed_by_client, d.uploaded_by, d.created_at, d.hidden_at, d.withdrawn_at, d.deleted_at";

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

            fn key_row(r: &DbRow) -> Result<PatientKeyRow> {
                Ok(PatientKeyRow {
                    patient: PatientId::from_uuid(r.try_get("patient_id")?),
                    version: r.try_get("version")?,
                    master_key_id: r.try_get("master_key_id")?,
                    wrapped: r.try_get("wrapped")?,
                })
            }

            fn client_row(r: &DbRow) -> Result<ApiClientRow> {
                Ok(ApiClientRow {
                    id: ClientId::from_uuid(r.try_get("id")?),
                    label: r.try_get("label")?,
                    org_id: r.try_get("org_id")?,
                    org_name: r.try_get("org_name")?,
                    practice: r.try_get::<Option<Uuid>, _>("practice_id")?.map(PracticeId::from_uuid),
                    secret_hash: r.try_get("secret_hash")?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            }

            fn nil_or(p: Option<PracticeId>) -> Uuid {
                p.map_or(Uuid::nil(), |p| p.as_uuid())
            }

            impl DocumentStore for $store {
                fn current_patient_key(&self, patient: PatientId) -> BoxFuture<'_, Result<Option<PatientKeyRow>>> {
                    Box::pin(async move {
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

                fn patient_key(&self, patient: PatientId, version: i32) -> BoxFuture<'_, Result<Option<PatientKeyRow>>> {
                    Box::pin(async move {
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

                fn insert_patient_key<'a>(&'a self, k: &'a PatientKeyRow, now: UnixTime) -> BoxFuture<'a, Result<bool>> {
                    Box::pin(async move {
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

                fn commit_document<'a>(&'a self, grant: StoreGrant<'a>, d: &'a DocumentRow, quota: Option<i64>) -> BoxFuture<'a, Result<()>> {
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
                        let cleared = sqlx::query("DELETE FROM blob_intents WHERE blob_key = $1")
                            .bind(&d.blob_key)
                            .execute(&mut *tx)
                            .await?;
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
                ) -> BoxFuture<'a, Result<Vec<DocumentRow>>> {
                    Box::pin(async move {
                        // Staff see what their practice pushed (and only while the patient is
                        // enrolled there); hiding is the patient's own view and does not apply.
                        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT {COLUMNS} FROM documents d WHERE d.patient_id = $1 AND {LIVE} \
                             AND ($2 OR d.hidden_at IS NULL OR $3) \
                             AND ($3 = FALSE OR (d.pushed_by_practice = $4 AND EXISTS (SELECT 1 FROM enrolments e \
                                  WHERE e.patient_id = d.patient_id AND e.practice_id = $4))) \
                             ORDER BY d.created_at DESC, d.id"
                        )))
                        .bind(grant.object().as_uuid())
                        .bind(include_hidden)
                        .bind(grant.via_practice().is_some())
                        .bind(nil_or(grant.via_practice()))
                        .fetch_all(&self.pool)
                        .await?;
                        rows.iter().map(doc_row).collect()
                    })
                }

                fn document_for_read<'a>(
                    &'a self,
                    grant: &'a Grant<authz::ReadDocument>,
                ) -> BoxFuture<'a, Result<(DocumentRow, Option<PatientKeyRow>)>> {
                    Box::pin(async move {
                        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT {D_COLUMNS}, k.master_key_id AS key_master_id, k.wrapped AS key_wrapped, \
                             k.version AS key_row_version FROM documents d \
                             LEFT JOIN patient_keys k ON k.patient_id = d.patient_id AND k.version = d.key_version \
                             WHERE d.id = $1 AND d.patient_id = $2 AND d.deleted_at IS NULL AND d.withdrawn_at IS NULL \
                             AND ($3 = FALSE OR (d.pushed_by_practice = $4 AND EXISTS (SELECT 1 FROM enrolments e \
                                  WHERE e.patient_id = d.patient_id AND e.practice_id = $4)))"
                        )))
                        .bind(grant.object().as_uuid())
                        .bind(grant.patient().map_or(Uuid::nil(), |p| p.as_uuid()))
                        .bind(grant.via_practice().is_some())
                        .bind(nil_or(grant.via_practice()))
                        .fetch_optional(&self.pool)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                        let doc = doc_row(&row)?;
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
                    })
                }

                fn own_document<'a>(&'a self, grant: &'a Grant<authz::ChangeDocument>) -> BoxFuture<'a, Result<DocumentRow>> {
                    Box::pin(async move {
                        sqlx::query(sqlx::AssertSqlSafe(format!(
                            "SELECT {COLUMNS} FROM documents WHERE id = $1 AND patient_id = $2 AND {LIVE}"
                        )))
                        .bind(grant.object().as_uuid())
                        .bind(grant.patient().map_or(Uuid::nil(), |p| p.as_uuid()))
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(doc_row)
                        .transpose()?
                        .ok_or(StoreError::NotFound)
                    })
                }

                fn rename_document<'a>(&'a self, grant: &'a Grant<authz::ChangeDocument>, title: &'a str) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE documents SET title = $3 WHERE id = $1 AND patient_id = $2 AND {LIVE}"
                        )))
                        .bind(grant.object().as_uuid())
                        .bind(grant.patient().map_or(Uuid::nil(), |p| p.as_uuid()))
                        .bind(title)
                        .execute(&self.pool)
                        .await?;
                        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) }
                    })
                }

                fn hide_document<'a>(&'a self, grant: &'a Grant<authz::ChangeDocument>, hidden_at: Option<UnixTime>) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "UPDATE documents SET hidden_at = $3 WHERE id = $1 AND patient_id = $2 AND {LIVE}"
                        )))
                        .bind(grant.object().as_uuid())
                        .bind(grant.patient().map_or(Uuid::nil(), |p| p.as_uuid()))
                        .bind(hidden_at)
                        .execute(&self.pool)
                        .await?;
                        if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) }
                    })
                }

                fn delete_document<'a>(&'a self, grant: &'a Grant<authz::ChangeDocument>, now: UnixTime) -> BoxFuture<'a, Result<String>> {
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
                        let key = key.ok_or(StoreError::NotFound)?;
                        sqlx::query("INSERT INTO blob_intents (blob_key, created_at) VALUES ($1, 0) ON CONFLICT (blob_key) DO NOTHING")
                            .bind(&key)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        Ok(key)
                    })
                }

                fn withdraw_document<'a>(&'a self, grant: &'a Grant<authz::WithdrawDocument>, now: UnixTime) -> BoxFuture<'a, Result<String>> {
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
                        let key = key.ok_or(StoreError::NotFound)?;
                        sqlx::query("INSERT INTO blob_intents (blob_key, created_at) VALUES ($1, 0) ON CONFLICT (blob_key) DO NOTHING")
                            .bind(&key)
                            .execute(&mut *tx)
                            .await?;
                        tx.commit().await?;
                        Ok(key)
                    })
                }

                fn storage_used(&self, patient: PatientId) -> BoxFuture<'_, Result<i64>> {
                    Box::pin(async move {
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

                fn keys_not_under<'a>(&'a self, master_key_id: &'a str, limit: i64) -> BoxFuture<'a, Result<Vec<PatientKeyRow>>> {
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

                fn rewrap_patient_key<'a>(&'a self, k: &'a PatientKeyRow, old_master: &'a str) -> BoxFuture<'a, Result<bool>> {
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

                fn document_keys(&self, patient: PatientId) -> BoxFuture<'_, Result<Vec<DocumentKey>>> {
                    Box::pin(async move {
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

                fn rotate_patient_key<'a>(&'a self, k: &'a PatientKeyRow, rewrapped: &'a [DocumentKey], now: UnixTime) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
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
                        tx.commit().await?;
                        Ok(())
                    })
                }

                fn destroy_patient_keys(&self, patient: PatientId, now: UnixTime) -> BoxFuture<'_, Result<u64>> {
                    Box::pin(async move {
                        let done = sqlx::query(
                            "UPDATE patient_keys SET wrapped = NULL, destroyed_at = $2 WHERE patient_id = $1 AND wrapped IS NOT NULL",
                        )
                        .bind(patient.as_uuid())
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                        Ok(done.rows_affected())
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
                        rows.iter()
                            .map(|r| Ok((r.try_get("actor")?, r.try_get("actor_role")?, r.try_get("n")?)))
                            .collect()
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

                fn create_api_client<'a>(&'a self, _grant: &'a Grant<authz::ManagePractices>, c: &'a ApiClientRow) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        sqlx::query(
                            "INSERT INTO api_clients (id, label, org_id, org_name, practice_id, secret_hash, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        )
                        .bind(c.id.as_uuid())
                        .bind(&c.label)
                        .bind(&c.org_id)
                        .bind(&c.org_name)
                        .bind(c.practice.map(|p| p.as_uuid()))
                        .bind(&c.secret_hash)
                        .bind(c.created_at)
                        .execute(&self.pool)
                        .await?;
                        Ok(())
                    })
                }

                fn api_client(&self, id: ClientId) -> BoxFuture<'_, Result<Option<ApiClientRow>>> {
                    Box::pin(async move {
                        sqlx::query(
                            "SELECT id, label, org_id, org_name, practice_id, secret_hash, created_at, revoked_at \
                             FROM api_clients WHERE id = $1",
                        )
                        .bind(id.as_uuid())
                        .fetch_optional(&self.pool)
                        .await?
                        .as_ref()
                        .map(client_row)
                        .transpose()
                    })
                }

                fn api_clients<'a>(&'a self, _grant: &'a Grant<authz::ManagePractices>) -> BoxFuture<'a, Result<Vec<ApiClientRow>>> {
                    Box::pin(async move {
                        let rows = sqlx::query(
                            "SELECT id, label, org_id, org_name, practice_id, secret_hash, created_at, revoked_at \
                             FROM api_clients ORDER BY created_at, id",
                        )
                        .fetch_all(&self.pool)
                        .await?;
                        rows.iter().map(client_row).collect()
                    })
                }

                fn rotate_api_client<'a>(&'a self, _grant: &'a Grant<authz::ManagePractices>, id: ClientId, secret_hash: &'a [u8], now: UnixTime) -> BoxFuture<'a, Result<bool>> {
                    Box::pin(async move {
                        let done = sqlx::query(
                            "UPDATE api_clients SET secret_hash = $2, rotated_at = $3 WHERE id = $1 AND revoked_at IS NULL",
                        )
                        .bind(id.as_uuid())
                        .bind(secret_hash)
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                        Ok(done.rows_affected() == 1)
                    })
                }

                fn revoke_api_client<'a>(&'a self, _grant: &'a Grant<authz::ManagePractices>, id: ClientId, now: UnixTime) -> BoxFuture<'a, Result<bool>> {
                    Box::pin(async move {
                        let done = sqlx::query("UPDATE api_clients SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                            .bind(id.as_uuid())
                            .bind(now)
                            .execute(&self.pool)
                            .await?;
                        Ok(done.rows_affected() == 1)
                    })
                }

                fn add_agreement<'a>(&'a self, _grant: &'a Grant<authz::ManagePractices>, practice: PracticeId, org_id: &'a str, now: UnixTime) -> BoxFuture<'a, Result<()>> {
                    Box::pin(async move {
                        sqlx::query(
                            "INSERT INTO document_agreements (practice_id, org_id, created_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (practice_id, org_id) DO NOTHING",
                        )
                        .bind(practice.as_uuid())
                        .bind(org_id)
                        .bind(now)
                        .execute(&self.pool)
                        .await?;
                        Ok(())
                    })
                }
            }
        };
    };
}

document_store!(crate::SqliteStore, sqlx::Sqlite);
document_store!(crate::PgStore, sqlx::Postgres);

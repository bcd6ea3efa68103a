//! The documents part of the storage contract: documents, patient keys, blob intents and the API
//! clients organisations push with. Reads and changes of documents take a grant; their SQL repeats
//! the relationship the grant rests on.

use crate::{DocumentRow, PatientKeyRow, Result};
use authz::{ChangeDocument, Grant, ListDocuments, PushDocument, ReadDocument, UploadDocument, WithdrawDocument};
use domain::{BoxFuture, PatientId, UnixTime};

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

/// A document row and the patient key its data key is wrapped under (`None` when that key
/// version was destroyed).
pub type DocumentWithKey = (DocumentRow, Option<PatientKeyRow>);

/// Storage for documents, their blobs and what they count against a patient's quota.
pub trait DocumentStore: Send + Sync {
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
    ) -> BoxFuture<'a, Result<Vec<DocumentWithKey>>>;
    /// One live document to read, and the patient key its data key is wrapped under (none if
    /// that key version was destroyed), in one query: a key rotation cannot fall between them.
    fn document_for_read<'a>(&'a self, grant: &'a Grant<ReadDocument>) -> BoxFuture<'a, Result<DocumentWithKey>>;
    /// One live document, to change, and the patient key its data key is wrapped under.
    fn own_document<'a>(&'a self, grant: &'a Grant<ChangeDocument>) -> BoxFuture<'a, Result<DocumentWithKey>>;
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
    /// Up to `limit` documents whose title, file name or author is not sealed yet (written
    /// before they were), with the key each is under: for the console to seal them.
    fn unsealed_documents<'a>(
        &'a self,
        grant: &'a Grant<authz::MasterKeyCustody>,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<DocumentWithKey>>>;
    /// Replaces a document's title, file name and author with their sealed forms.
    fn seal_document_details<'a>(
        &'a self,
        grant: &'a Grant<authz::MasterKeyCustody>,
        row: &'a DocumentRow,
    ) -> BoxFuture<'a, Result<()>>;
    /// Bytes the patient's own live uploads take (what their quota counts).
    fn storage_used<'a>(&'a self, grant: StoreGrant<'a>) -> BoxFuture<'a, Result<i64>>;
    /// How many live documents the patient has: (their own uploads, all).
    fn document_counts<'a>(&'a self, grant: StoreGrant<'a>) -> BoxFuture<'a, Result<(i64, i64)>>;
    /// Claims (removes and returns) up to `limit` blob intents older than `cutoff` whose blob no
    /// live document uses; the caller then deletes those blobs. An upload whose intent is
    /// claimed can no longer commit.
    fn claim_stale_blob_intents(&self, cutoff: UnixTime, limit: i64) -> BoxFuture<'_, Result<Vec<String>>>;
    /// Forgets a blob intent (its blob has been removed, or was never written).
    fn remove_blob_intent<'a>(&'a self, blob_key: &'a str) -> BoxFuture<'a, Result<()>>;
    /// Every blob key a live document uses (for the full sweep).
    fn live_blob_keys(&self) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Key unwraps per actor since a time (ms), most first: (actor account or client, role, count).
    fn unwrap_counts(&self, since_ms: i64) -> BoxFuture<'_, Result<Vec<(String, String, i64)>>>;
    /// The patient record with this NHI.
    fn patient_by_nhi<'a>(&'a self, nhi: &'a str) -> BoxFuture<'a, Result<Option<PatientId>>>;
}

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    include!("sql.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    include!("sql.rs");
}

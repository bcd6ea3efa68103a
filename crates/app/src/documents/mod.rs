//! Health documents (DESIGN §5): patients' uploads and documents organisations push in, each
//! encrypted under its own data key (wrapped by the patient's key, wrapped by the master key)
//! with the STREAM construction, streamed in and out without holding the document in memory.
//! A document becomes visible only once its blob is durable and its row committed; a blob intent
//! recorded before the first byte lets the sweeper remove whatever a crash leaves behind.

pub mod blobs;
mod clients;
pub mod content;
mod manage;
pub use manage::{DOCUMENTS_PER_PAGE, DocumentList};
pub use upload::{MAX_DOCUMENTS, MAX_OWN_DOCUMENTS};
mod read;
pub(crate) mod upload;

pub use crypto::KeyRing;
pub use read::parse_range;
pub use upload::Upload;

use crate::audit::{Caller, Outcome, Target};
use crate::documents::blobs::{BlobError, Blobs};
use crate::{App, AppError};
use bytes::Bytes;
use crypto::{DataKey, KeyError, PatientKey};
use domain::{Access, Module, ObjectKind, Verb};
use domain::{DocumentCategory, DocumentId, PatientId};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use std::sync::Arc;
use store::{DocumentRow, KeyGrant, PatientKeyRow};

#[expect(clippy::needless_pass_by_value, reason = "called through map_err")]
pub(crate) fn key_error(e: KeyError) -> AppError {
    AppError::Internal(format!("key operation failed: {e}"))
}

#[expect(clippy::needless_pass_by_value, reason = "called through map_err")]
pub(crate) fn blob_error(e: BlobError) -> AppError {
    AppError::Internal(format!("blob store: {e}"))
}

/// What the documents module needs: the blob store, the master keys and the limits.
#[derive(Debug)]
pub struct Vault {
    /// Where blobs live.
    pub blobs: Blobs,
    /// The master keys.
    pub keys: KeyRing,
    /// Largest document accepted, bytes.
    pub max_document_bytes: i64,
    /// Most one patient's documents may take, bytes.
    pub patient_quota_bytes: i64,
    /// Most documents of their own one patient may keep ([`MAX_OWN_DOCUMENTS`] in service).
    pub max_own_documents: i64,
}

/// Details of a push from an organisation's system.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushMeta {
    /// The patient's NHI.
    pub nhi: String,
    /// The document's category (not `patient_upload`).
    pub category: String,
    /// Its title.
    pub title: String,
    /// The file name to download it as.
    #[serde(default)]
    pub filename: Option<String>,
    /// The clinical date, `YYYY-MM-DD`.
    pub clinical_date: String,
    /// Who wrote it.
    pub author: String,
    /// The source's own identifier for this document: pushing it again changes nothing.
    pub source_document_id: String,
    /// The data controller's HPI id, when it is not the pushing organisation.
    #[serde(default)]
    pub controller_id: Option<String>,
    /// The data controller's name, likewise.
    #[serde(default)]
    pub controller_name: Option<String>,
}

/// The documents module's use cases, on the application's shared parts: [`App::documents`].
#[derive(Debug, Clone, Copy)]
pub struct Documents<'a> {
    app: &'a App,
}

impl App {
    /// The documents module: uploads, pushes, listing, reading and keeping documents.
    #[must_use]
    pub const fn documents(&self) -> Documents<'_> {
        Documents { app: self }
    }
}

/// A document as the people reading it see it: what it is, who it is from, when. The storage
/// row's keys and blob address never leave this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Its id.
    pub id: DocumentId,
    /// Whose it is.
    pub patient: PatientId,
    /// What kind of document.
    pub category: DocumentCategory,
    /// Its title.
    pub title: String,
    /// The file's name.
    pub filename: String,
    /// Its media type, as checked from its content.
    pub media_type: String,
    /// Its size in bytes.
    pub size: i64,
    /// The clinical date (`YYYY-MM-DD`), for letters.
    pub clinical_date: Option<String>,
    /// Its author, for letters.
    pub author: Option<String>,
    /// The organisation it came from (its HPI id), or the uploading account.
    pub source_org_id: String,
    /// The organisation it came from, by name.
    pub source_org_name: String,
    /// Who controls it (its HPI id).
    pub controller_id: String,
    /// Who controls it, by name.
    pub controller_name: String,
    /// When it was added.
    pub created_at: domain::UnixTime,
    /// When its patient hid it from their list, if they did.
    pub hidden_at: Option<domain::UnixTime>,
}

/// Where a document's sealed field opens: its id and the field's name (the AEAD's associated
/// data, so a value cannot be moved between documents or fields).
fn field_context(id: DocumentId, field: &str) -> String {
    format!("{id}/{field}")
}

/// Seals a document row's title, file name and author under its data key, before it is stored:
/// every value, whatever it looks like (a title typed as `sealed:v1:…` is sealed like any other).
pub(crate) fn seal_details(row: &mut DocumentRow, data_key: &DataKey) -> Result<(), AppError> {
    seal_details_where(row, data_key, |_| true)
}

/// Seals the values of a row stored before sealing that are not sealed yet (the start-up pass).
pub(crate) fn seal_older_details(row: &mut DocumentRow, data_key: &DataKey) -> Result<(), AppError> {
    seal_details_where(row, data_key, |v| !crypto::fields::is_sealed(v))
}

/// Seals one new value of a document's field (a rename).
pub(crate) fn seal_detail(id: DocumentId, field: &str, value: &str, data_key: &DataKey) -> Result<String, AppError> {
    crypto::fields::seal_field(data_key, &field_context(id, field), value).map_err(key_error)
}

fn seal_details_where(row: &mut DocumentRow, data_key: &DataKey, needs: impl Fn(&str) -> bool) -> Result<(), AppError> {
    let seal = |field: &str, value: &str| {
        if needs(value) {
            crypto::fields::seal_field(data_key, &field_context(row.id, field), value)
        } else {
            Ok(value.to_owned())
        }
    };
    let title = seal("title", &row.title).map_err(key_error)?;
    let filename = seal("filename", &row.filename).map_err(key_error)?;
    let author = row.author.as_deref().map(|a| seal("author", a)).transpose().map_err(key_error)?;
    (row.title, row.filename, row.author) = (title, filename, author);
    Ok(())
}

/// A stored row as its reader sees it: the details opened with its data key (`None` when the
/// patient's key was destroyed: the details are gone with the content).
pub(crate) fn open_details(mut row: DocumentRow, data_key: Option<&DataKey>) -> Result<Document, AppError> {
    if let Some(key) = data_key {
        let open = |field: &str, value: &str| {
            crypto::fields::open_field(key, &field_context(row.id, field), value)
                .map_err(|_| AppError::Internal(format!("document {}: its {field} does not open", row.id)))
        };
        let title = open("title", &row.title)?;
        let filename = open("filename", &row.filename)?;
        let author = row.author.as_deref().map(|a| open("author", a)).transpose()?;
        (row.title, row.filename, row.author) = (title, filename, author);
    } else {
        "A document that can no longer be opened (erased)".clone_into(&mut row.title);
        "erased".clone_into(&mut row.filename);
        row.author = None;
    }
    Ok(Document::opened(row))
}

impl Document {
    /// A row whose details are in the clear (opened, or just stored), as they are.
    pub(crate) fn opened(r: DocumentRow) -> Self {
        Self {
            id: r.id,
            patient: r.patient,
            category: r.category,
            title: r.title,
            filename: r.filename,
            media_type: r.media_type,
            size: r.size,
            clinical_date: r.clinical_date,
            author: r.author,
            source_org_id: r.source_org_id,
            source_org_name: r.source_org_name,
            controller_id: r.controller_id,
            controller_name: r.controller_name,
            created_at: r.created_at,
            hidden_at: r.hidden_at,
        }
    }
}

impl From<DocumentRow> for Document {
    /// For a row as stored, whose details may be sealed: a sealed value is never shown as it is
    /// stored (an idempotent push answers with the id only).
    fn from(r: DocumentRow) -> Self {
        let shown = |v: String, sealed: &str| if crypto::fields::is_sealed(&v) { sealed.to_owned() } else { v };
        let (title, filename) = (shown(r.title.clone(), "Document"), shown(r.filename.clone(), "document"));
        let author = r.author.clone().map(|a| shown(a, "")).filter(|a| !a.is_empty());
        Self { title, filename, author, ..Self::opened(r) }
    }
}

/// A document on its way out.
pub struct Download {
    /// The document.
    pub doc: Document,
    /// The byte range served (inclusive), when a range was asked for.
    pub range: Option<(u64, u64)>,
    /// Bytes in the body.
    pub length: u64,
    /// The plaintext, chunk by chunk. A chunk that fails authentication ends the stream with
    /// an error: no unauthenticated byte is ever released.
    pub body: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download").field("doc", &self.doc.id).field("length", &self.length).finish_non_exhaustive()
    }
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Blobs of abandoned uploads and deleted documents removed.
    pub intents: u64,
    /// Blobs no row knows of (older than the grace period) removed.
    pub strays: u64,
}

/// The associated data a document's chunks are bound to.
fn aad(doc: DocumentId, version: i32, patient: PatientId, practice: &str) -> Vec<u8> {
    format!("tiaki document v1\n{doc}\n{version}\n{patient}\n{practice}").into_bytes()
}

/// A cleaned title: 1 to 120 characters, no control characters.
fn clean_title(raw: &str) -> Result<String, AppError> {
    let t: String = raw.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_owned();
    if t.is_empty() || t.chars().count() > 120 {
        return Err(AppError::field("title", "Give the document a name of 1 to 120 characters."));
    }
    Ok(t)
}

impl App {
    /// Adds the documents module (without it, every document use case fails closed).
    #[must_use]
    pub fn with_documents(mut self, vault: Vault) -> Self {
        self.vault = Some(Arc::new(vault));
        self
    }

    pub(crate) fn vault(&self) -> Result<Arc<Vault>, AppError> {
        self.vault.clone().ok_or_else(|| AppError::Internal("the documents module is not configured".into()))
    }

    pub(crate) fn unwrap_event(&self, caller: &Caller, patient: PatientId, version: i32) -> store::AuditEvent {
        metrics::counter!("tiaki_key_unwraps_total").increment(1);
        let target = Target {
            access: Access::new(Module::Documents, ObjectKind::PatientKey, Verb::Unwrap),
            object_id: format!("{patient}/{version}"),
            patient: Some(patient),
            practice: None,
        };
        self.event(caller, &target, Outcome::Allowed)
    }

    /// The patient's current key (made on first use) and its version.
    pub(crate) async fn current_key(&self, vault: &Vault, grant: KeyGrant<'_>) -> Result<(PatientKey, i32), AppError> {
        let patient = grant.patient().ok_or(AppError::NotFound)?;
        for _ in 0..3 {
            if let Some(row) = self.store.current_patient_key(grant).await? {
                let wrapped = row.wrapped.ok_or_else(|| {
                    AppError::Gone(
                        "This person's documents have been erased; nothing more can be added for them.".into(),
                    )
                })?;
                return Ok((vault.keys.unwrap(&row.master_key_id, &wrapped)?, row.version));
            }
            let key = PatientKey::random().map_err(key_error)?;
            let (master_key_id, wrapped) = vault.keys.wrap(&key)?;
            let row = PatientKeyRow { patient, version: 1, master_key_id, wrapped: Some(wrapped) };
            if self.store.insert_patient_key(grant, &row, self.now()).await? {
                return Ok((key, 1));
            }
        }
        Err(AppError::Internal("could not settle the patient's key".into()))
    }

    // --- keys (the console) ---

    // --- API clients ---
}

pub(crate) fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().to_vec()
}

impl Documents<'_> {
    /// The largest document accepted, in MB (for the upload form).
    #[must_use]
    pub fn max_mb(&self) -> i64 {
        self.app.vault.as_ref().map_or(0, |v| v.max_document_bytes / (1024 * 1024))
    }
}

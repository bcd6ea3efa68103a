//! Health documents (DESIGN §5): patients' uploads and documents organisations push in, each
//! encrypted under its own data key (wrapped by the patient's key, wrapped by the master key)
//! with the STREAM construction, streamed in and out without holding the document in memory.
//! A document becomes visible only once its blob is durable and its row committed; a blob intent
//! recorded before the first byte lets the sweeper remove whatever a crash leaves behind.

use crate::audit::{Caller, Outcome, Target};
use crate::blobs::{BlobError, Blobs};
use crate::content::{self, Kind};
use crate::{App, AppError};
use authz::{ChangeDocument, ListDocuments, Platform, PushDocument, ReadDocument, UploadDocument, WithdrawDocument};
use bytes::Bytes;
use crypto::stream::{CHUNK, HEADER, Opener, SEALED_CHUNK, Sealer, TAG};
use crypto::{DataKey, KeyError, KeyProvider, PatientKey};
use domain::{Access, Module, ObjectKind, Verb};
use domain::{ClientId, DocumentCategory, DocumentId, PatientId};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use store::{ApiClientRow, DocumentRow, PatientKeyRow, StoreGrant};

/// The master keys: the one new patient keys are wrapped with, and any others still needed to
/// unwrap (during a rotation). Key files are re-read when a key id is met that is not loaded, so
/// a node keeps working after `tiaki keys rotate-master` has run beside it.
#[derive(Debug)]
pub struct KeyRing {
    providers: RwLock<Vec<Arc<dyn KeyProvider>>>,
    data_dir: Option<PathBuf>,
}

impl KeyRing {
    /// A ring of one provider (a token, or a key file that is never rotated underneath).
    #[must_use]
    pub fn single(provider: Arc<dyn KeyProvider>) -> Self {
        Self { providers: RwLock::new(vec![provider]), data_dir: None }
    }

    /// The key files in a data folder: `master.key`, and `master.key.next` while a rotation is
    /// under way.
    ///
    /// # Errors
    /// When `master.key` is missing or not a key.
    pub fn files(data_dir: &std::path::Path) -> Result<Self, AppError> {
        let providers = crate::keys::load_master_files(data_dir)?;
        Ok(Self { providers: RwLock::new(providers), data_dir: Some(data_dir.to_owned()) })
    }

    fn primary(&self) -> Result<Arc<dyn KeyProvider>, AppError> {
        self.providers
            .read()
            .map_err(|_| AppError::Internal("key ring lock poisoned".into()))?
            .first()
            .cloned()
            .ok_or_else(|| AppError::Internal("no master key is loaded".into()))
    }

    /// Re-reads the key files (a rotation may have begun or ended since they were loaded).
    ///
    /// # Errors
    /// When the files cannot be read.
    pub fn reload(&self) -> Result<(), AppError> {
        if let Some(dir) = &self.data_dir {
            let fresh = crate::keys::load_master_files(dir)?;
            let mut held = self.providers.write().map_err(|_| AppError::Internal("key ring lock poisoned".into()))?;
            // The files' first key becomes primary; no key once loaded is dropped (a rotation
            // may have retired a key that some patient key is still wrapped under).
            let mut merged = fresh;
            for p in held.iter() {
                if !merged.iter().any(|m| m.id() == p.id()) {
                    merged.push(p.clone());
                }
            }
            *held = merged;
        }
        Ok(())
    }

    fn find(&self, id: &str) -> Result<Option<Arc<dyn KeyProvider>>, AppError> {
        Ok(self
            .providers
            .read()
            .map_err(|_| AppError::Internal("key ring lock poisoned".into()))?
            .iter()
            .find(|p| p.id() == id)
            .cloned())
    }

    /// Wraps a patient key with the primary master key; returns its id and the wrapped key.
    ///
    /// # Errors
    /// When the provider fails.
    pub fn wrap(&self, key: &PatientKey) -> Result<(String, Vec<u8>), AppError> {
        // New patient keys are rare; re-reading the key files first means one is never wrapped
        // under a master key that a rotation has just retired.
        self.reload()?;
        let p = self.primary()?;
        Ok((p.id().to_owned(), p.wrap_patient_key(key).map_err(key_error)?))
    }

    /// Unwraps a patient key wrapped by master key `id`.
    ///
    /// # Errors
    /// When that master key is not available or the wrapped key does not unwrap.
    pub fn unwrap(&self, id: &str, wrapped: &[u8]) -> Result<PatientKey, AppError> {
        let provider = if let Some(p) = self.find(id)? {
            p
        } else {
            self.reload()?;
            self.find(id)?.ok_or_else(|| {
                AppError::Internal(format!(
                    "a patient key is wrapped by master key {id}, which is not loaded; restore that key file or token"
                ))
            })?
        };
        provider.unwrap_patient_key(wrapped).map_err(key_error)
    }

    /// The ids of the loaded master keys, primary first.
    #[must_use]
    pub fn ids(&self) -> Vec<String> {
        self.providers.read().map(|v| v.iter().map(|p| p.id().to_owned()).collect()).unwrap_or_default()
    }
}

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

/// A document on its way out.
pub struct Download {
    /// The document.
    pub doc: DocumentRow,
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

/// The sealed size of a document of `size` plaintext bytes.
fn sealed_len(size: u64) -> u64 {
    let chunks = size.div_ceil(CHUNK as u64).max(1);
    HEADER as u64 + size + chunks * TAG as u64
}

/// Parses a single `bytes=` range against a size; `None` for no (or an unusable multi-) range.
///
/// # Errors
/// [`AppError::RangeNotSatisfiable`] when the range lies outside the document.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, AppError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: serve the whole document (RFC 9110 allows it)
    }
    let (a, b) = spec.split_once('-').ok_or(AppError::RangeNotSatisfiable(size))?;
    let (a, b) = (a.trim(), b.trim());
    let bad = AppError::RangeNotSatisfiable(size);
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| bad)?;
        if n == 0 || size == 0 {
            return Err(AppError::RangeNotSatisfiable(size));
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| AppError::RangeNotSatisfiable(size))?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse().map_err(|_| AppError::RangeNotSatisfiable(size))?
        };
        if start >= size || end < start {
            return Err(AppError::RangeNotSatisfiable(size));
        }
        (start, end.min(size - 1))
    };
    Ok(Some(range))
}

/// Opens the chunks of one read, in order.
struct Decrypting {
    source: BoxStream<'static, Result<Bytes, BlobError>>,
    buf: Vec<u8>,
    opener: Opener,
    index: u64,
    last_index: u64,
    end_index: u64,
    size: u64,
    skip: usize,
    remaining: u64,
}

fn damaged(what: &str) -> std::io::Error {
    std::io::Error::other(format!("the document failed authentication ({what}); nothing more is released"))
}

impl Decrypting {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        if self.remaining == 0 || self.index > self.end_index {
            return Ok(None);
        }
        let is_last = self.index == self.last_index;
        let want = if is_last {
            usize::try_from(self.size - self.last_index * CHUNK as u64).map_err(|_| damaged("size"))? + TAG
        } else {
            SEALED_CHUNK
        };
        while self.buf.len() < want {
            match self.source.next().await {
                Some(Ok(b)) => self.buf.extend_from_slice(&b),
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                None => return Err(damaged("truncated")),
            }
        }
        let rest = self.buf.split_off(want);
        let mut chunk = std::mem::replace(&mut self.buf, rest);
        self.opener.open(&mut chunk, is_last).map_err(|_| damaged("chunk"))?;
        self.index += 1;
        let skip = std::mem::take(&mut self.skip).min(chunk.len());
        let mut out = chunk.split_off(skip);
        let take = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(out.len());
        out.truncate(take);
        self.remaining -= take as u64;
        Ok(Some(Bytes::from(out)))
    }
}

/// A cleaned title: 1 to 120 characters, no control characters.
fn clean_title(raw: &str) -> Result<String, AppError> {
    let t: String = raw.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_owned();
    if t.is_empty() || t.chars().count() > 120 {
        return Err(AppError::field("title", "Give the document a name of 1 to 120 characters."));
    }
    Ok(t)
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref().to_vec()
}

struct Incoming<'a> {
    grant: StoreGrant<'a>,
    row: DocumentRow,
    caller: &'a Caller,
    target: Target,
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

    /// The largest document accepted, in MB (for the upload form).
    #[must_use]
    pub fn max_document_mb(&self) -> i64 {
        self.vault.as_ref().map_or(0, |v| v.max_document_bytes / (1024 * 1024))
    }

    fn unwrap_event(&self, caller: &Caller, patient: PatientId, version: i32) -> store::AuditEvent {
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
    pub(crate) async fn current_key(&self, vault: &Vault, patient: PatientId) -> Result<(PatientKey, i32), AppError> {
        for _ in 0..3 {
            if let Some(row) = self.store.current_patient_key(patient).await? {
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
            if self.store.insert_patient_key(&row, self.now()).await? {
                return Ok((key, 1));
            }
        }
        Err(AppError::Internal("could not settle the patient's key".into()))
    }

    /// A patient uploads a document of their own. The body is streamed: encrypted chunk by
    /// chunk into the blob store, checked by content, limited in size and by the patient's quota.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient; [`AppError::UnsupportedContent`],
    /// [`AppError::TooLarge`] or [`AppError::Invalid`] for what cannot be accepted (nothing is
    /// kept); [`AppError::Internal`] when storage fails.
    pub async fn upload_document<S, E>(
        &self,
        caller: &Caller,
        patient: PatientId,
        filename: &str,
        title: Option<&str>,
        body: S,
    ) -> Result<DocumentRow, AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let id = DocumentId::random();
        let grant = self.decide::<UploadDocument>(caller, patient).await?;
        // The practice the patient is enrolled at is bound into the document's encryption.
        let practice = authz::Relations::patient_practices(&*self.store, patient)
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .first()
            .copied();
        let target = Target { practice, ..Target::of(&grant).about(&id) };
        let title = match title.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => Some(clean_title(t)?),
            None => None,
        };
        let account = caller.principal.account();
        let row = DocumentRow {
            id,
            patient,
            version: 1,
            category: DocumentCategory::PatientUpload,
            title: title.unwrap_or_default(),
            filename: filename.to_owned(),
            media_type: String::new(),
            size: 0,
            blob_key: Blobs::new_key(),
            wrapped_key: Vec::new(),
            key_version: 0,
            aad_practice: practice.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            clinical_date: None,
            author: None,
            source_org_id: account.map(|a| a.to_string()).unwrap_or_default(),
            source_org_name: "You".into(),
            controller_id: account.map(|a| a.to_string()).unwrap_or_default(),
            controller_name: "You (your own upload)".into(),
            source_ref: None,
            pushed_by_practice: None,
            pushed_by_client: None,
            uploaded_by: account,
            created_at: self.now(),
            hidden_at: None,
            withdrawn_at: None,
            deleted_at: None,
        };
        self.store_incoming(Incoming { grant: StoreGrant::Upload(&grant), row, caller, target }, body).await
    }

    /// An organisation's system pushes a document in for a patient (by NHI). Pushing the same
    /// `source_document_id` again returns the document already stored and changes nothing.
    /// Returns the document and whether it was new.
    ///
    /// # Errors
    /// [`AppError::NotFound`] (and an audited denial) for a patient outside the client's scope
    /// or an unknown NHI; [`AppError::Invalid`] for bad details; as for uploads otherwise.
    #[expect(clippy::too_many_lines, reason = "validation of every field, then one flow")]
    pub async fn push_document<S, E>(
        &self,
        caller: &Caller,
        meta: &PushMeta,
        body: S,
    ) -> Result<(DocumentRow, bool), AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let authz::Principal::Client { client, org_id, practice } = &caller.principal else {
            return Err(AppError::NotFound);
        };
        let mut problems = Vec::new();
        let nhi = domain::Nhi::parse(&meta.nhi);
        if nhi.is_err() {
            problems.push(crate::FieldError { field: "nhi", message: "Give a valid NHI number.".into() });
        }
        let category = DocumentCategory::parse(&meta.category).ok().filter(|c| c.is_clinical());
        if category.is_none() {
            problems.push(crate::FieldError {
                field: "category",
                message: "The category must be discharge_summary, referral, clinic_letter, result or correspondence."
                    .into(),
            });
        }
        let date_ok =
            time::Date::parse(&meta.clinical_date, time::macros::format_description!("[year]-[month]-[day]")).is_ok();
        if !date_ok {
            problems.push(crate::FieldError { field: "clinical_date", message: "Give the date as YYYY-MM-DD.".into() });
        }
        let title = clean_title(&meta.title);
        if title.is_err() {
            problems.push(crate::FieldError { field: "title", message: "Give a title of 1 to 120 characters.".into() });
        }
        let short =
            |s: &str, max: usize| !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control);
        if !short(&meta.author, 200) {
            problems
                .push(crate::FieldError { field: "author", message: "Give the author (up to 200 characters).".into() });
        }
        if !short(&meta.source_document_id, 200) {
            problems.push(crate::FieldError {
                field: "source_document_id",
                message: "Give your system's identifier for this document (up to 200 characters).".into(),
            });
        }
        if meta.controller_id.is_some() != meta.controller_name.is_some()
            || meta.controller_id.as_deref().is_some_and(|c| !short(c, 40))
            || meta.controller_name.as_deref().is_some_and(|c| !short(c, 200))
        {
            problems.push(crate::FieldError {
                field: "controller_id",
                message: "Give both controller_id (HPI id) and controller_name, or neither.".into(),
            });
        }
        let (Ok(nhi), Some(category), Ok(title), true) = (nhi, category, title, problems.is_empty()) else {
            return Err(AppError::Invalid(problems));
        };
        let client_row = self.store.api_client(*client).await?.ok_or(AppError::Unauthenticated)?;
        let patient = self.store.patient_by_nhi(nhi.as_str()).await?;
        let id = DocumentId::random();
        // Unknown NHI: the event names no patient, and records not found.
        let Some(patient) = patient else {
            return Err(self.refuse_unknown::<PushDocument>(caller, &id.to_string()).await);
        };
        let grant = self.decide::<PushDocument>(caller, patient).await?;
        let target = Target::of(&grant).about(&id);
        let patient = grant.object();
        let via = grant.via_practice().ok_or(AppError::NotFound)?;
        let source_ref = meta.source_document_id.trim().to_owned();
        if let Some(existing) = self.store.pushed_document(&grant, org_id, &source_ref).await? {
            return self.already_pushed(caller, target, existing, patient).await;
        }
        let filename = meta.filename.clone().unwrap_or_else(|| title.clone());
        let row = DocumentRow {
            id,
            patient,
            version: 1,
            category,
            title,
            filename,
            media_type: String::new(),
            size: 0,
            blob_key: Blobs::new_key(),
            wrapped_key: Vec::new(),
            key_version: 0,
            aad_practice: via.to_string(),
            clinical_date: Some(meta.clinical_date.clone()),
            author: Some(meta.author.trim().to_owned()),
            source_org_id: org_id.clone(),
            source_org_name: client_row.org_name.clone(),
            controller_id: meta.controller_id.clone().unwrap_or_else(|| org_id.clone()),
            controller_name: meta.controller_name.clone().unwrap_or_else(|| client_row.org_name.clone()),
            source_ref: Some(source_ref.clone()),
            // Only a practice's own system's documents are the practice's to see and withdraw;
            // a hospital's stay the hospital's (the receiving practice is bound in the AAD).
            pushed_by_practice: *practice,
            pushed_by_client: Some(*client),
            uploaded_by: None,
            created_at: self.now(),
            hidden_at: None,
            withdrawn_at: None,
            deleted_at: None,
        };
        let target_again = target.clone();
        match self.store_incoming(Incoming { grant: StoreGrant::Push(&grant), row, caller, target }, body).await {
            Ok(doc) => Ok((doc, true)),
            // The same document pushed twice at once: the first one in wins.
            Err(AppError::Conflict(_)) => match self.store.pushed_document(&grant, org_id, &source_ref).await? {
                Some(existing) => self.already_pushed(caller, target_again, existing, patient).await,
                None => Err(AppError::Conflict("The document could not be stored; send it again.".into())),
            },
            Err(e) => Err(e),
        }
    }

    /// A push of a `source_document_id` seen before: the same document for the same patient is
    /// returned unchanged; anything else is a clear conflict.
    async fn already_pushed(
        &self,
        caller: &Caller,
        target: Target,
        existing: DocumentRow,
        patient: PatientId,
    ) -> Result<(DocumentRow, bool), AppError> {
        if existing.patient != patient {
            return Err(AppError::Conflict(
                "This source_document_id was already used for another patient; give each document its own identifier."
                    .into(),
            ));
        }
        if existing.withdrawn_at.is_some() || existing.deleted_at.is_some() {
            return Err(AppError::Conflict(
                "This document was withdrawn; send a corrected one under a new source_document_id.".into(),
            ));
        }
        self.audit(vec![self.event(caller, &target.about(&existing.id), Outcome::Allowed)]).await?;
        Ok((existing, false))
    }

    #[expect(clippy::too_many_lines, reason = "the streaming pipeline reads best in one place")]
    async fn store_incoming<S, E>(&self, incoming: Incoming<'_>, mut body: S) -> Result<DocumentRow, AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let Incoming { grant, mut row, caller, target } = incoming;
        let vault = self.vault()?;
        // The quota is the patient's space for their own uploads; what providers send does not
        // count against it (and is never refused for it).
        let quota = matches!(grant, StoreGrant::Upload(_)).then_some(vault.patient_quota_bytes);
        let limit = match quota {
            Some(quota) => {
                let used = self.store.storage_used(row.patient).await?;
                if used >= quota {
                    return Err(AppError::TooLarge(format!(
                        "There is no room left: your uploads can take up to {} MB in all. Delete some of them first.",
                        quota / (1024 * 1024)
                    )));
                }
                vault.max_document_bytes.min(quota - used)
            }
            None => vault.max_document_bytes,
        };
        let (patient_key, key_version) = self.current_key(&vault, row.patient).await?;
        // The grant and the key unwrap are on the record before any byte is accepted.
        self.audit(vec![
            self.event(caller, &target, Outcome::Allowed),
            self.unwrap_event(caller, row.patient, key_version),
        ])
        .await?;
        let data_key = DataKey::random().map_err(key_error)?;
        row.wrapped_key = patient_key.wrap(&data_key).map_err(key_error)?;
        row.key_version = key_version;
        let aad = aad(row.id, row.version, row.patient, &row.aad_practice);
        let (mut sealer, header) =
            Sealer::new(data_key.bytes(), &aad).map_err(|e| AppError::Internal(e.to_string()))?;

        self.store.add_blob_intent(&row.blob_key, self.now()).await?;
        let mut writer = vault.blobs.writer(&row.blob_key).await.map_err(blob_error)?;
        let result: Result<(Kind, u64), AppError> = async {
            writer.write(&header).await.map_err(blob_error)?;
            let mut pending: Vec<u8> = Vec::with_capacity(2 * CHUNK);
            let mut tail: Vec<u8> = Vec::new();
            let mut kind: Option<Kind> = None;
            let mut total: u64 = 0;
            let too_large = || {
                AppError::TooLarge(if limit < vault.max_document_bytes {
                    "This document would take you past the space you have for documents. Delete some of your uploads first.".to_owned()
                } else {
                    format!("This document is too large: the limit is {} MB.", vault.max_document_bytes / (1024 * 1024))
                })
            };
            loop {
                let next = body.next().await;
                let done = match next {
                    Some(Ok(bytes)) => {
                        total += bytes.len() as u64;
                        if total > u64::try_from(limit).unwrap_or(0) {
                            return Err(too_large());
                        }
                        pending.extend_from_slice(&bytes);
                        false
                    }
                    Some(Err(e)) => {
                        return Err(AppError::Invalid(vec![crate::FieldError {
                            field: "file",
                            message: format!("The upload did not arrive complete ({e}); please try again."),
                        }]));
                    }
                    None => true,
                };
                // Seal every chunk known not to be the last; at the end, the rest is the last
                // (an empty document is one empty final chunk).
                let mut sealed_last = false;
                while pending.len() > CHUNK || (done && !sealed_last) {
                    let last = done && pending.len() <= CHUNK;
                    sealed_last = last;
                    let rest = if last { Vec::new() } else { pending.split_off(CHUNK) };
                    let mut chunk = std::mem::replace(&mut pending, rest);
                    if kind.is_none() {
                        kind = Some(content::sniff(&chunk[..chunk.len().min(content::HEAD)]).map_err(|r| AppError::UnsupportedContent(r.to_string()))?);
                    }
                    tail.extend_from_slice(&chunk);
                    if tail.len() > CHUNK {
                        tail.drain(..tail.len() - CHUNK);
                    }
                    sealer.seal(&mut chunk, last).map_err(|e| AppError::Internal(e.to_string()))?;
                    writer.write(&chunk).await.map_err(blob_error)?;
                }
                if done {
                    break;
                }
            }
            let kind = kind.ok_or_else(|| AppError::Internal("no content was sealed".into()))?;
            if kind == Kind::Docx {
                content::check_docx_tail(&tail, total).map_err(|r| AppError::UnsupportedContent(r.to_string()))?;
            }
            Ok((kind, total))
        }
        .await;
        let (kind, total) = match result {
            Ok(v) => v,
            Err(e) => {
                writer.abort().await;
                // Nothing was completed, so nothing is left but the intent; clear it now (the
                // sweeper would otherwise).
                if vault.blobs.delete(&row.blob_key).await.is_ok() {
                    let _ = self.store.remove_blob_intent(&row.blob_key).await;
                }
                return Err(e);
            }
        };
        writer.finish().await.map_err(blob_error)?;
        kind.media_type().clone_into(&mut row.media_type);
        row.size = i64::try_from(total).map_err(|_| AppError::TooLarge("This document is too large.".into()))?;
        row.filename = content::clean_filename(&row.filename, kind);
        if row.title.is_empty() {
            row.title = row.filename.clone();
        }
        let mut attempts = 0;
        let committed = loop {
            match self.store.commit_document(grant, &row, quota).await {
                Err(store::StoreError::Conflict("This patient key version")) if attempts < 3 => {
                    // The patient's key was rotated while the document arrived: wrap its data key
                    // under the new version (the blob, sealed with the data key, is unchanged).
                    attempts += 1;
                    let (patient_key, key_version) = self.current_key(&vault, row.patient).await?;
                    self.audit(vec![self.unwrap_event(caller, row.patient, key_version)]).await?;
                    row.wrapped_key = patient_key.wrap(&data_key).map_err(key_error)?;
                    row.key_version = key_version;
                }
                other => break other,
            }
        };
        match committed {
            Ok(()) => {}
            // Refused, so certainly not committed: the blob is an orphan. Remove it now if
            // possible; the intent stays until it is gone, so the sweeper finishes the job.
            Err(store::StoreError::Conflict(what)) => {
                if vault.blobs.delete(&row.blob_key).await.is_ok() {
                    let _ = self.store.remove_blob_intent(&row.blob_key).await;
                }
                return Err(match what {
                    "quota" => AppError::TooLarge(
                        "This document would take you past the space you have for your uploads. Delete some of them first."
                            .into(),
                    ),
                    "This upload" => {
                        AppError::Conflict("The upload took too long and was abandoned; please try again.".into())
                    }
                    "This document" => AppError::Conflict("This document is already stored.".into()),
                    _ => AppError::Conflict(
                        "The record's key changed while the document was arriving; please send it again.".into(),
                    ),
                });
            }
            // Unknown (the connection may have failed after the commit): leave the blob and its
            // intent; the sweeper removes the blob only if no committed document uses it.
            Err(e) => return Err(e.into()),
        }
        metrics::counter!("tiaki_documents_stored_total").increment(1);
        Ok(row)
    }

    /// The patient's documents (a patient: theirs, hidden ones only if asked; staff: those their
    /// practice pushed). One audit event is written for the listing.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else.
    pub async fn list_documents(
        &self,
        caller: &Caller,
        patient: PatientId,
        include_hidden: bool,
    ) -> Result<Vec<DocumentRow>, AppError> {
        let grant = self.decide::<ListDocuments>(caller, patient).await?;
        let docs = self.store.list_documents(&grant, include_hidden).await?;
        // One event naming every document the list showed (or the patient, for an empty list).
        let ids: Vec<String> = docs.iter().map(|d| d.id.to_string()).collect();
        let target = if ids.is_empty() { Target::of(&grant) } else { Target::of(&grant).about(&ids.join(",")) };
        self.audit(vec![self.event(caller, &target, Outcome::Allowed)]).await?;
        Ok(docs)
    }

    /// Opens a document to read it (optionally a byte range, as in an HTTP `Range` header). The
    /// read and the key unwrap are on the record before the first byte is served; the first
    /// chunk is authenticated before this returns, so a damaged or swapped blob is an error, not
    /// a download.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone who may not read it; [`AppError::Gone`] when the
    /// patient's key has been destroyed; [`AppError::RangeNotSatisfiable`]; [`AppError::Internal`]
    /// when the blob is missing, damaged or not this document's.
    pub async fn open_document(
        &self,
        caller: &Caller,
        doc: DocumentId,
        range: Option<&str>,
    ) -> Result<Download, AppError> {
        self.open_document_inner(caller, doc, range, true).await
    }

    pub(crate) async fn open_document_inner(
        &self,
        caller: &Caller,
        doc: DocumentId,
        range: Option<&str>,
        audited: bool,
    ) -> Result<Download, AppError> {
        let vault = self.vault()?;
        let grant = if audited {
            self.decide::<ReadDocument>(caller, doc).await?
        } else {
            authz::authorize::<ReadDocument, _>(&caller.principal, doc, &*self.store).await?
        };
        // The row and the patient key it is under, in one read behind the grant.
        let (row, key_row) = self.store.document_for_read(&grant).await?;
        let size = u64::try_from(row.size).map_err(|_| AppError::Internal("negative document size".into()))?;
        let range = parse_range(range, size)?;
        let wrapped = key_row.as_ref().and_then(|k| k.wrapped.clone()).ok_or_else(|| {
            AppError::Gone(
                "This document can no longer be opened: its key has been destroyed (the record was erased).".into(),
            )
        })?;
        if audited {
            self.audit(vec![
                self.event(caller, &Target::of(&grant), Outcome::Allowed),
                self.unwrap_event(caller, row.patient, row.key_version),
            ])
            .await?;
        }
        let master = key_row.map(|k| k.master_key_id).unwrap_or_default();
        let patient_key = vault.keys.unwrap(&master, &wrapped)?;
        let data_key = patient_key
            .unwrap(&row.wrapped_key)
            .map_err(|_| AppError::Internal(format!("document {} has a data key that does not unwrap", row.id)))?;
        let aad = aad(row.id, row.version, row.patient, &row.aad_practice);
        let last_index = size.div_ceil(CHUNK as u64).max(1) - 1;
        let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
        let (first_index, end_index) = if size == 0 { (0, 0) } else { (start / CHUNK as u64, end / CHUNK as u64) };
        let header = vault.blobs.get_range_bytes(&row.blob_key, 0..HEADER as u64).await;
        let (blob_size, header) =
            header.map_err(|e| AppError::Internal(format!("document {}: its blob cannot be read: {e}", row.id)))?;
        if blob_size != sealed_len(size) {
            tracing::error!(document = %row.id, "a document's blob has the wrong length: damaged or replaced");
            return Err(AppError::Internal(format!("document {} is damaged (blob length)", row.id)));
        }
        let from = HEADER as u64 + first_index * SEALED_CHUNK as u64;
        let to = (HEADER as u64 + (end_index + 1) * SEALED_CHUNK as u64).min(blob_size);
        let (_, source) =
            vault.blobs.read(&row.blob_key, Some(from..to)).await.map_err(|e| AppError::Internal(e.to_string()))?;
        let opener = Opener::new(data_key.bytes(), &aad, &header)
            .map_err(|_| AppError::Internal(format!("document {} is damaged (header)", row.id)))?
            .starting_at(u32::try_from(first_index).map_err(|_| AppError::Internal("too many chunks".into()))?);
        let length = if size == 0 { 0 } else { end - start + 1 };
        let mut state = Decrypting {
            source,
            buf: Vec::with_capacity(SEALED_CHUNK),
            opener,
            index: first_index,
            last_index,
            end_index,
            size,
            skip: usize::try_from(start - first_index * CHUNK as u64).unwrap_or(0),
            remaining: length,
        };
        // The first chunk is opened now, so a damaged or swapped blob fails before any header
        // goes out (for an empty document, the one empty chunk is still authenticated).
        let first = if size == 0 {
            state.remaining = 1;
            let r = state.next_chunk().await;
            state.remaining = 0;
            r.map(|_| None)
        } else {
            state.next_chunk().await
        };
        let first = first.map_err(|e| {
            tracing::error!(document = %row.id, error = %e, "a document failed authentication");
            AppError::Internal(format!("document {} failed authentication", row.id))
        })?;
        let rest =
            futures_util::stream::try_unfold(state, |mut s| async move { Ok(s.next_chunk().await?.map(|b| (b, s))) });
        let body = futures_util::stream::iter(first.map(Ok)).chain(rest).boxed();
        Ok(Download { doc: row, range: range.filter(|_| size > 0), length, body })
    }

    /// Renames one of the patient's documents.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient; [`AppError::Invalid`] for a bad name.
    pub async fn rename_document(&self, caller: &Caller, doc: DocumentId, title: &str) -> Result<(), AppError> {
        let grant = self.authorize::<ChangeDocument>(caller, doc).await?;
        let title = clean_title(title)?;
        Ok(self.store.rename_document(&grant, &title).await?)
    }

    /// Hides a document from the patient's own list, or shows it again.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient.
    pub async fn hide_document(&self, caller: &Caller, doc: DocumentId, hidden: bool) -> Result<(), AppError> {
        let grant = self.authorize::<ChangeDocument>(caller, doc).await?;
        Ok(self.store.hide_document(&grant, hidden.then(|| self.now())).await?)
    }

    /// Deletes one of the patient's own uploads (clinical documents can only be hidden).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient; [`AppError::Conflict`] for a clinical
    /// document.
    pub async fn delete_document(&self, caller: &Caller, doc: DocumentId) -> Result<(), AppError> {
        let grant = self.authorize::<authz::DeleteDocument>(caller, doc).await?.implied::<ChangeDocument>();
        let row = self.store.own_document(&grant).await?;
        if row.category.is_clinical() {
            return Err(AppError::Conflict(
                "Documents from your health providers cannot be deleted here, but you can hide them from your list."
                    .into(),
            ));
        }
        let key = self.store.delete_document(&grant, self.now()).await?;
        self.remove_blob(&key).await;
        Ok(())
    }

    /// The practice that pushed a document withdraws it.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but clinical staff of that practice.
    pub async fn withdraw_document(&self, caller: &Caller, doc: DocumentId) -> Result<PatientId, AppError> {
        let grant = self.authorize::<WithdrawDocument>(caller, doc).await?;
        let patient = grant.patient().ok_or(AppError::NotFound)?;
        let key = self.store.withdraw_document(&grant, self.now()).await?;
        self.remove_blob(&key).await;
        Ok(patient)
    }

    async fn remove_blob(&self, key: &str) {
        if let Ok(vault) = self.vault()
            && vault.blobs.delete(key).await.is_ok()
        {
            let _ = self.store.remove_blob_intent(key).await;
        }
    }

    // --- keys (the console) ---

    pub(crate) async fn console_patient(&self, nhi: &str) -> Result<PatientId, AppError> {
        let nhi = domain::Nhi::parse(nhi).map_err(|e| AppError::field("nhi", e.to_string()))?;
        self.store.patient_by_nhi(nhi.as_str()).await?.ok_or(AppError::NotFound)
    }

    // --- API clients ---

    /// Who an API client's bearer token belongs to (`None` for a wrong, revoked or unknown one).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn authenticate_client(&self, token: &str) -> Result<Option<authz::Principal>, AppError> {
        let Some((id, secret)) = token.strip_prefix("tiaki_").and_then(|t| t.split_once('_')) else {
            return Ok(None);
        };
        let Ok(id) = id.parse::<ClientId>() else { return Ok(None) };
        let Some(row) = self.store.api_client(id).await? else { return Ok(None) };
        let ok =
            aws_lc_rs::constant_time::verify_slices_are_equal(&sha256(secret.as_bytes()), &row.secret_hash).is_ok();
        if !ok || row.revoked_at.is_some() {
            metrics::counter!("tiaki_api_client_auth_failures_total").increment(1);
            return Ok(None);
        }
        Ok(Some(authz::Principal::Client { client: row.id, org_id: row.org_id, practice: row.practice }))
    }

    pub(crate) fn client_token(id: ClientId) -> (String, Vec<u8>) {
        use base64::Engine;
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::security::random_bytes::<32>());
        let id = id.as_uuid().simple().to_string();
        (format!("tiaki_{id}_{secret}"), sha256(secret.as_bytes()))
    }

    /// Operators see which organisations' systems can push documents.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator.
    pub async fn list_clients(&self, caller: &Caller) -> Result<Vec<ApiClientRow>, AppError> {
        let grant = self.authorize::<authz::ManageApiClients>(caller, Platform).await?;
        Ok(self.store.api_clients(&grant.implied()).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ranges_are_parsed_against_the_size() {
        assert_eq!(parse_range(None, 100).unwrap(), None);
        assert_eq!(parse_range(Some("bytes=0-9"), 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range(Some("bytes=90-"), 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range(Some("bytes=-10"), 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range(Some("bytes=-1000"), 100).unwrap(), Some((0, 99)));
        assert_eq!(parse_range(Some("bytes=50-5000"), 100).unwrap(), Some((50, 99)));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 100).unwrap(), None);
        for bad in ["bytes=100-", "bytes=9-3", "bytes=x-1", "bytes=-0", "bytes=5"] {
            assert!(matches!(parse_range(Some(bad), 100), Err(AppError::RangeNotSatisfiable(100))), "{bad}");
        }
        assert!(parse_range(Some("bytes=0-0"), 0).is_err());
    }

    #[test]
    fn sealed_lengths_match_the_cipher() {
        for n in [0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK] {
            let sealed = crypto::stream::seal_all(&[1; 32], b"x", &vec![0; n]).unwrap();
            assert_eq!(sealed.len() as u64, sealed_len(n as u64), "{n}");
        }
    }
}

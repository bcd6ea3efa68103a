//! Documents coming in: a patient's own uploads and the letters organisations' systems push,
//! streamed through content checks and encryption into the blob store, within size and quota.

use super::content::Kind;
use super::{Document, Documents, PushMeta, aad, blob_error, clean_title, content, key_error};
use crate::audit::{Caller, Outcome, Target};
use crate::documents::blobs::Blobs;
use crate::{App, AppError};
use authz::{PushDocument, UploadDocument};
use bytes::Bytes;
use crypto::DataKey;
use crypto::stream::{CHUNK, Sealer};
use domain::{DocumentCategory, DocumentId, PatientId};
use futures_util::{Stream, StreamExt};
use store::{DocumentRow, KeyGrant, StoreGrant};

/// Most documents of their own a patient may keep (review #10: uploads are never unlimited,
/// whatever their size).
pub const MAX_OWN_DOCUMENTS: i64 = 1_000;
/// Most documents of every kind kept for one patient.
pub const MAX_DOCUMENTS: i64 = 10_000;
/// Uploads one account or system may have arriving at once (review #12).
pub(crate) const UPLOADS_PER_SENDER: usize = 3;
/// Uploads a node takes at once, from everyone.
pub(crate) const UPLOADS_PER_NODE: usize = 64;

/// The uploads arriving now: per sender and in all, so that slow uploads cannot pile up
/// buffers and staging files without bound.
#[derive(Debug)]
pub(crate) struct UploadSlots {
    per_sender: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    node: std::sync::Arc<tokio::sync::Semaphore>,
}

impl Default for UploadSlots {
    fn default() -> Self {
        Self {
            per_sender: std::sync::Mutex::default(),
            node: std::sync::Arc::new(tokio::sync::Semaphore::new(UPLOADS_PER_NODE)),
        }
    }
}

/// One upload's place among those arriving; given back when dropped.
#[derive(Debug)]
pub(crate) struct UploadSlot<'a> {
    slots: &'a UploadSlots,
    sender: String,
    _node: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.slots.per_sender.lock()
            && let Some(n) = map.get_mut(&self.sender)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.sender);
            }
        }
    }
}

impl UploadSlots {
    /// A place for one more upload from `sender`, or a refusal to try again shortly.
    fn take(&self, sender: String) -> Result<UploadSlot<'_>, AppError> {
        let busy = || AppError::RateLimited(30);
        let node = self.node.clone().try_acquire_owned().map_err(|_| busy())?;
        let mut map = self.per_sender.lock().map_err(|_| AppError::Internal("upload slots poisoned".into()))?;
        let n = map.entry(sender.clone()).or_insert(0);
        if *n >= UPLOADS_PER_SENDER {
            return Err(busy());
        }
        *n += 1;
        Ok(UploadSlot { slots: self, sender, _node: node })
    }
}

/// An upload the policy has allowed, waiting for its body.
#[derive(Debug)]
pub struct Upload<'a> {
    app: &'a App,
    caller: Caller,
    grant: authz::Grant<UploadDocument>,
}

impl Upload<'_> {
    /// Streams the body in: encrypted chunk by chunk into the blob store, checked by content,
    /// limited in size and by the patient's quota.
    ///
    /// # Errors
    /// [`AppError::UnsupportedContent`], [`AppError::TooLarge`] or [`AppError::Invalid`] for
    /// what cannot be accepted (nothing is kept); [`AppError::Internal`] when storage fails.
    pub async fn finish<S, E>(self, filename: &str, title: Option<&str>, body: S) -> Result<Document, AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let (app, caller, grant) = (self.app, &self.caller, &self.grant);
        let patient = grant.object();
        let id = DocumentId::random();
        // The practice the patient is enrolled at is bound into the document's encryption.
        let practice = authz::Relations::patient_practices(&*app.store, patient)
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .first()
            .copied();
        let target = Target { practice, ..Target::of(grant).about(&id) };
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
            created_at: app.now(),
            hidden_at: None,
            withdrawn_at: None,
            deleted_at: None,
        };
        app.store_incoming(Incoming { grant: StoreGrant::Upload(grant), row, caller, target }, body)
            .await
            .map(Document::opened)
    }
}

struct Incoming<'a> {
    grant: StoreGrant<'a>,
    row: DocumentRow,
    caller: &'a Caller,
    target: Target,
}

impl App {
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
        let sender = match &caller.principal {
            authz::Principal::Client { client, .. } => format!("client:{client}"),
            p => p.account().map_or_else(|| "anonymous".to_owned(), |a| format!("account:{a}")),
        };
        let _slot = self.uploads.take(sender)?;
        let (own, all) = self.store.document_counts(grant).await?;
        if all >= MAX_DOCUMENTS || (matches!(grant, StoreGrant::Upload(_)) && own >= vault.max_own_documents) {
            return Err(AppError::TooLarge(if matches!(grant, StoreGrant::Upload(_)) {
                format!(
                    "You have {own} documents of your own here, the most Tiaki keeps for one person. Delete some you no \
                     longer need first."
                )
            } else {
                format!("This patient has {all} documents, the most Tiaki keeps for one person.")
            }));
        }
        // The quota is the patient's space for their own uploads; what providers send does not
        // count against it (and is never refused for it).
        let quota = matches!(grant, StoreGrant::Upload(_)).then_some(vault.patient_quota_bytes);
        let limit = match quota {
            Some(quota) => {
                let used = self.store.storage_used(grant).await?;
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
        let (patient_key, key_version) = self.current_key(&vault, KeyGrant::Storing(grant)).await?;
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
            if total == 0 {
                return Err(AppError::Invalid(vec![crate::FieldError {
                    field: "file",
                    message: "The file is empty. Choose the document again.".into(),
                }]));
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
        // The title, file name and author are sealed like the content (what is stored of them
        // names nothing); the caller gets the row with them in the clear.
        let plain = (row.title.clone(), row.filename.clone(), row.author.clone());
        super::seal_details(&mut row, &data_key)?;
        let mut attempts = 0;
        let committed = loop {
            match self.store.commit_document(grant, &row, quota).await {
                Err(store::StoreError::Conflict("This patient key version")) if attempts < 3 => {
                    // The patient's key was rotated while the document arrived: wrap its data key
                    // under the new version (the blob, sealed with the data key, is unchanged).
                    attempts += 1;
                    let (patient_key, key_version) = self.current_key(&vault, KeyGrant::Storing(grant)).await?;
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
        (row.title, row.filename, row.author) = plain;
        Ok(row)
    }
}

impl<'a> Documents<'a> {
    /// A patient uploads a document of their own: [`App::begin_upload`], then
    /// [`Upload::finish`] with the body.
    ///
    /// # Errors
    /// As for those two.
    pub async fn upload<S, E>(
        &self,
        caller: &Caller,
        patient: PatientId,
        filename: &str,
        title: Option<&str>,
        body: S,
    ) -> Result<Document, AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        self.begin_upload(caller, patient).await?.finish(filename, title, body).await
    }

    /// Asks whether `caller` may upload a document for `patient`, before any of the body is read:
    /// a refusal is recorded and answered as not found.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient; [`AppError::Internal`] when the
    /// relationships cannot be read.
    pub async fn begin_upload(&self, caller: &Caller, patient: PatientId) -> Result<Upload<'a>, AppError> {
        let grant = self.app.decide::<UploadDocument>(caller, patient).await?;
        self.app.guard_module(domain::detection::Switchable::Documents, Some(patient), None).await?;
        Ok(Upload { app: self.app, caller: caller.clone(), grant })
    }

    /// An organisation's system pushes a document in for a patient (by NHI). Pushing the same
    /// `source_document_id` again returns the document already stored and changes nothing.
    /// Returns the document and whether it was new.
    ///
    /// # Errors
    /// [`AppError::NotFound`] (and an audited denial) for a patient outside the client's scope
    /// or an unknown NHI; [`AppError::Invalid`] for bad details; as for uploads otherwise.
    pub async fn push<S, E>(&self, caller: &Caller, meta: &PushMeta, body: S) -> Result<(Document, bool), AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        self.push_row(caller, meta, body).await.map(|(row, created)| {
            // A new row comes back in the clear; an earlier one as stored (sealed).
            (if created { Document::opened(row) } else { Document::from(row) }, created)
        })
    }

    #[expect(clippy::too_many_lines, reason = "validation of every field, then one flow")]
    async fn push_row<S, E>(&self, caller: &Caller, meta: &PushMeta, body: S) -> Result<(DocumentRow, bool), AppError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send + Unpin,
        E: std::fmt::Display,
    {
        let authz::Principal::Client { client, org_id, practice, .. } = &caller.principal else {
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
        let client_row = self.app.store.api_client(*client).await?.ok_or(AppError::Unauthenticated)?;
        // The organisation responsible for a document (told if it is ever exposed) is the one
        // sending it: a system cannot name another controller (review #21).
        if meta.controller_id.as_deref().is_some_and(|c| !c.trim().eq_ignore_ascii_case(&client_row.org_id)) {
            return Err(AppError::field(
                "controller_id",
                format!(
                    "controller_id must be your organisation's HPI id ({}), or left out: a system names only its own \
                     organisation as responsible for what it sends.",
                    client_row.org_id
                ),
            ));
        }
        let patient = self.app.store.patient_by_nhi(nhi.as_str()).await?;
        let id = DocumentId::random();
        // Unknown NHI: the event names no patient, and records not found.
        let Some(patient) = patient else {
            return Err(self.app.refuse_unknown::<PushDocument>(caller, &id.to_string()).await);
        };
        let grant = self.app.decide::<PushDocument>(caller, patient).await?;
        let target = Target::of(&grant).about(&id);
        let patient = grant.object();
        let via = grant.via_practice().ok_or(AppError::NotFound)?;
        // Switched off: 503 with Retry-After, nothing kept; the system sends it again later.
        self.app.guard_module(domain::detection::Switchable::Documents, None, Some(via)).await?;
        let source_ref = meta.source_document_id.trim().to_owned();
        if let Some(existing) = self.app.store.pushed_document(&grant, org_id, &source_ref).await? {
            return self.app.already_pushed(caller, target, existing, patient).await;
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
            controller_id: client_row.org_id.clone(),
            controller_name: client_row.org_name.clone(),
            source_ref: Some(source_ref.clone()),
            // Only a practice's own system's documents are the practice's to see and withdraw;
            // a hospital's stay the hospital's (the receiving practice is bound in the AAD).
            pushed_by_practice: *practice,
            pushed_by_client: Some(*client),
            uploaded_by: None,
            created_at: self.app.now(),
            hidden_at: None,
            withdrawn_at: None,
            deleted_at: None,
        };
        let target_again = target.clone();
        match self.app.store_incoming(Incoming { grant: StoreGrant::Push(&grant), row, caller, target }, body).await {
            Ok(doc) => {
                // In the patient's inbox (and their proxies' with the documents scope at this
                // practice); emailed as "something new", nothing more.
                let notice = crate::notify::Notice {
                    kind: crate::notify::NoticeKind::Documents,
                    title: "A new health document has arrived",
                    link: Some(format!("/patients/{patient}/documents")),
                    practice: Some(via),
                };
                let mail = self.app.news(patient, &notice).await?;
                self.app.tell(&mail).await?;
                Ok((doc, true))
            }
            // The same document pushed twice at once: the first one in wins.
            Err(AppError::Conflict(_)) => match self.app.store.pushed_document(&grant, org_id, &source_ref).await? {
                Some(existing) => self.app.already_pushed(caller, target_again, existing, patient).await,
                None => Err(AppError::Conflict("The document could not be stored; send it again.".into())),
            },
            Err(e) => Err(e),
        }
    }
}

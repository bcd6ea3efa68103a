//! A patient's documents, listed and kept: renamed, hidden, deleted; and letters withdrawn by
//! the practice that sent them.

use super::{Document, Documents, clean_title};
use crate::audit::{Caller, Outcome, Target};
use crate::{App, AppError};
use authz::{ChangeDocument, ListDocuments, WithdrawDocument};
use domain::{DocumentId, PatientId};

/// Documents on one page of a patient's list.
pub const DOCUMENTS_PER_PAGE: i64 = 100;

/// One page of a patient's documents.
#[derive(Debug, Clone)]
pub struct DocumentList {
    /// The documents on this page, newest first.
    pub documents: Vec<Document>,
    /// How many there are in all.
    pub total: i64,
    /// This page, from 1.
    pub page: i64,
    /// How many pages there are (at least 1).
    pub pages: i64,
}

impl App {
    async fn remove_blob(&self, key: &str) {
        if let Ok(vault) = self.vault()
            && vault.blobs.delete(key).await.is_ok()
        {
            let _ = self.store.remove_blob_intent(key).await;
        }
    }
}

impl Documents<'_> {
    /// A page of the patient's documents, newest first, [`DOCUMENTS_PER_PAGE`] at a time (a
    /// patient: theirs, hidden ones only if asked; staff: those their practice pushed). One
    /// audit event is written for the page, naming the documents it shows — bounded however
    /// many the patient has (review #10).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else.
    pub async fn list(
        &self,
        caller: &Caller,
        patient: PatientId,
        include_hidden: bool,
        page: i64,
    ) -> Result<DocumentList, AppError> {
        let grant = self.app.decide::<ListDocuments>(caller, patient).await?;
        self.app.guard_module(domain::detection::Switchable::Documents, Some(patient), None).await?;
        let docs = self.app.store.list_documents(&grant, include_hidden).await?;
        let total = i64::try_from(docs.len()).unwrap_or(i64::MAX);
        let pages = ((total + DOCUMENTS_PER_PAGE - 1) / DOCUMENTS_PER_PAGE).max(1);
        let page = page.clamp(1, pages);
        let skip = usize::try_from((page - 1) * DOCUMENTS_PER_PAGE).unwrap_or(usize::MAX);
        let shown: Vec<_> =
            docs.into_iter().skip(skip).take(usize::try_from(DOCUMENTS_PER_PAGE).unwrap_or(100)).collect();
        let ids: Vec<String> = shown.iter().map(|(row, _)| row.id.to_string()).collect();
        let (documents, versions) = self.app.open_document_rows(shown)?;
        // One event naming every document the page shows (or the patient, for an empty list),
        // and one per key unwrapped, before anything is served.
        let target = if ids.is_empty() { Target::of(&grant) } else { Target::of(&grant).about(&ids.join(",")) };
        let mut events = vec![self.app.event(caller, &target, Outcome::Allowed)];
        events.extend(versions.into_iter().map(|version| self.app.unwrap_event(caller, patient, version)));
        self.app.audit(events).await?;
        Ok(DocumentList { documents, total, page, pages })
    }

    /// Renames one of the patient's own uploads. A clinical document keeps the title its
    /// provider gave it (its staff see that title; review #22): the patient can hide it instead.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient; [`AppError::Invalid`] for a bad name;
    /// [`AppError::Conflict`] for a clinical document.
    pub async fn rename(&self, caller: &Caller, doc: DocumentId, title: &str) -> Result<(), AppError> {
        let grant = self.app.authorize::<ChangeDocument>(caller, doc).await?;
        let (row, key) = self.app.store.own_document(&grant).await?;
        if row.category.is_clinical() {
            return Err(AppError::Conflict(
                "Documents from your health providers keep the title they were sent with, which is what your practice \
                 sees too. You can hide one from your list instead."
                    .into(),
            ));
        }
        let title = clean_title(title)?;
        // Sealed under the document's data key, like the title it replaces.
        let vault = self.app.vault()?;
        let key = key.and_then(|k| k.wrapped.map(|w| (k.version, k.master_key_id, w))).ok_or_else(|| {
            AppError::Gone("This document can no longer be opened: its key has been destroyed.".into())
        })?;
        self.app.audit(vec![self.app.unwrap_event(caller, row.patient, key.0)]).await?;
        let data_key = vault.keys.unwrap(&key.1, &key.2)?.unwrap(&row.wrapped_key).map_err(super::key_error)?;
        let sealed = super::seal_detail(row.id, "title", &title, &data_key)?;
        Ok(self.app.store.rename_document(&grant, &sealed).await?)
    }

    /// Hides a document from the patient's own list, or shows it again.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient.
    pub async fn hide(&self, caller: &Caller, doc: DocumentId, hidden: bool) -> Result<(), AppError> {
        let grant = self.app.authorize::<ChangeDocument>(caller, doc).await?;
        Ok(self.app.store.hide_document(&grant, hidden.then(|| self.app.now())).await?)
    }

    /// Deletes one of the patient's own uploads (clinical documents can only be hidden).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient; [`AppError::Conflict`] for a clinical
    /// document.
    pub async fn delete(&self, caller: &Caller, doc: DocumentId) -> Result<(), AppError> {
        let grant = self.app.authorize::<authz::DeleteDocument>(caller, doc).await?.implied::<ChangeDocument>();
        let (row, _) = self.app.store.own_document(&grant).await?;
        if row.category.is_clinical() {
            return Err(AppError::Conflict(
                "Documents from your health providers cannot be deleted here, but you can hide them from your list."
                    .into(),
            ));
        }
        let key = self.app.store.delete_document(&grant, self.app.now()).await?;
        self.app.remove_blob(&key).await;
        Ok(())
    }

    /// The practice that pushed a document withdraws it.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but clinical staff of that practice.
    pub async fn withdraw(&self, caller: &Caller, doc: DocumentId) -> Result<PatientId, AppError> {
        let grant = self.app.authorize::<WithdrawDocument>(caller, doc).await?;
        let patient = grant.patient().ok_or(AppError::NotFound)?;
        let key = self.app.store.withdraw_document(&grant, self.app.now()).await?;
        self.app.remove_blob(&key).await;
        Ok(patient)
    }
}

impl crate::App {
    /// Opens listed documents' details (their titles are sealed under each document's data key):
    /// the patient's key is unwrapped once per version among them. Returns the documents and the
    /// versions unwrapped, for the caller's unwrap events (written before anything is served).
    pub(crate) fn open_document_rows(
        &self,
        rows: Vec<store::DocumentWithKey>,
    ) -> Result<(Vec<super::Document>, Vec<i32>), AppError> {
        let vault = self.vault()?;
        let mut keys: std::collections::BTreeMap<i32, crypto::PatientKey> = std::collections::BTreeMap::new();
        let mut documents = Vec::with_capacity(rows.len());
        for (row, key) in rows {
            let data_key = match key.and_then(|k| k.wrapped.map(|w| (k.version, k.master_key_id, w))) {
                Some((version, master, wrapped)) => {
                    let patient_key = match keys.entry(version) {
                        std::collections::btree_map::Entry::Occupied(k) => k.into_mut(),
                        std::collections::btree_map::Entry::Vacant(v) => {
                            v.insert(vault.keys.unwrap(&master, &wrapped)?)
                        }
                    };
                    Some(patient_key.unwrap(&row.wrapped_key).map_err(super::key_error)?)
                }
                None => None,
            };
            documents.push(super::open_details(row, data_key.as_ref())?);
        }
        Ok((documents, keys.into_keys().collect()))
    }
}

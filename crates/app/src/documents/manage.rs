//! A patient's documents, listed and kept: renamed, hidden, deleted; and letters withdrawn by
//! the practice that sent them.

use super::clean_title;
use crate::audit::{Caller, Outcome, Target};
use crate::{App, AppError};
use authz::{ChangeDocument, ListDocuments, WithdrawDocument};
use domain::{DocumentId, PatientId};
use store::DocumentRow;

impl App {
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
}

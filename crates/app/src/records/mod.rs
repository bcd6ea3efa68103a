//! Health Records (issue 14): what a practice's own system sends of a patient's record —
//! conditions, medications, allergies, immunisations, results, consultation notes, recalls —
//! released to the patient by the practice's rules. Each item's clinical content is sealed
//! under the patient's records key (itself wrapped by their patient key, so erasing the patient
//! shreds it); reading unwraps it through the same counted, logged path as documents, and every
//! read is an access event naming the patient.

mod bundle;
pub mod demo;
pub mod export;
pub mod fhir;
pub mod ingest;
mod read;
mod release;
pub mod validate;

pub use read::{ItemView, RecordItem, Summary, TrendPoint};

use crate::audit::{Caller, Outcome, Target};
use crate::documents::key_error;
use crate::{App, AppError};
use crypto::DataKey;
use crypto::fields::FieldKey;
use domain::PatientId;
use fhir::Resource;
use store::{KeyGrant, RecordKeyGrant, RecordKeyRow, RecordRow};

/// The records module's use cases: [`App::records`].
#[derive(Debug, Clone, Copy)]
pub struct Records<'a> {
    app: &'a App,
}

impl App {
    /// The records module: ingest, release rules, patients' and clinicians' views, export.
    #[must_use]
    pub const fn records(&self) -> Records<'_> {
        Records { app: self }
    }
}

/// The associated data an item's content is sealed with: its id, version, patient and practice.
fn content_context(row: &RecordRow) -> String {
    format!("record/{}/{}/{}/{}", row.id, row.version, row.patient, row.practice)
}

/// Seals an item's clinical content (its FHIR JSON) under the patient's records key.
pub(crate) fn seal_content(key: &FieldKey, row: &RecordRow, json: &str) -> Result<String, AppError> {
    key.seal(&content_context(row), json).map_err(key_error)
}

/// Opens an item's content into its resource.
pub(crate) fn open_content(key: &FieldKey, row: &RecordRow) -> Result<Resource, AppError> {
    if !crypto::fields::is_sealed(&row.content) {
        return Err(AppError::Internal(format!("record {}: its content is not sealed", row.id)));
    }
    let json = key
        .open(&content_context(row), &row.content)
        .map_err(|_| AppError::Internal(format!("record {}: its content does not open", row.id)))?;
    Resource::parse_as(&row.resource_type, &json).map_err(|e| AppError::Internal(format!("record {}: {e}", row.id)))
}

/// Seals a short note on an item (a release comment, a reason to hide it).
pub(crate) fn seal_note(key: &FieldKey, id: domain::RecordId, field: &str, text: &str) -> Result<String, AppError> {
    key.seal(&format!("record/{id}/{field}"), text).map_err(key_error)
}

/// Opens a note sealed by [`seal_note`].
pub(crate) fn open_note(key: &FieldKey, row: &RecordRow, field: &str, stored: &str) -> Option<String> {
    // Only what Tiaki sealed: a plain value written into the column is not shown.
    crypto::fields::is_sealed(stored).then(|| key.open(&format!("record/{}/{field}", row.id), stored).ok())?
}

impl App {
    /// The patient's records key, made on their first item (under their patient key, made on
    /// first use too). The unwrap is counted and logged like a document's.
    pub(crate) async fn records_key_for_ingest(
        &self,
        caller: &Caller,
        grant: &authz::Grant<authz::IngestRecords>,
    ) -> Result<FieldKey, AppError> {
        self.sealing_key(caller, RecordKeyGrant::Ingest(grant), KeyGrant::Records(grant)).await
    }

    /// The patient's records key — the key their record items, booking reasons, notes and
    /// requests are sealed under — made on first use (under their patient key, made on first
    /// use too). Every unwrap is counted and logged.
    pub(crate) async fn sealing_key(
        &self,
        caller: &Caller,
        grant: RecordKeyGrant<'_>,
        key_grant: KeyGrant<'_>,
    ) -> Result<FieldKey, AppError> {
        let patient = grant.patient().ok_or(AppError::NotFound)?;
        for _ in 0..3 {
            if let Some(key) = self.open_records_key(caller, patient, grant).await? {
                return Ok(key);
            }
            let vault = self.vault()?;
            let (patient_key, version) = self.current_key(&vault, key_grant).await?;
            self.audit(vec![self.unwrap_event(caller, patient, version)]).await?;
            let key = DataKey::random().map_err(key_error)?;
            let row =
                RecordKeyRow { patient, key_version: version, wrapped_key: patient_key.wrap(&key).map_err(key_error)? };
            if self.store.insert_records_key(grant, &row, self.now()).await? {
                return FieldKey::new(&key).map_err(key_error);
            }
        }
        Err(AppError::Internal("could not settle the patient's records key".into()))
    }

    /// The patient's records key, if they have one: the patient key unwrapped by the master
    /// key (an unwrap event, counted, on the record first), then the records key.
    pub(crate) async fn open_records_key(
        &self,
        caller: &Caller,
        patient: PatientId,
        grant: RecordKeyGrant<'_>,
    ) -> Result<Option<FieldKey>, AppError> {
        let Some(stored) = self.store.records_key(grant).await? else { return Ok(None) };
        self.audit(vec![self.unwrap_event(caller, patient, stored.0.key_version)]).await?;
        self.unwrap_records_key(stored).map(Some)
    }

    /// Unwraps a records key read with [`store::RecordStore::records_key`]; the caller has put
    /// the unwrap event (`unwrap_event`) on the record, with whatever else the request wrote.
    pub(crate) fn unwrap_records_key(&self, (rk, under): store::RecordKeyWithPatientKey) -> Result<FieldKey, AppError> {
        let wrapped = under.as_ref().and_then(|k| k.wrapped.clone()).ok_or_else(|| {
            AppError::Gone("This person's record has been erased; it can no longer be opened.".into())
        })?;
        let vault = self.vault()?;
        let patient_key = vault.keys.unwrap(&under.map(|k| k.master_key_id).unwrap_or_default(), &wrapped)?;
        let key = patient_key
            .unwrap(&rk.wrapped_key)
            .map_err(|_| AppError::Internal("a records key does not unwrap".into()))?;
        FieldKey::new(&key).map_err(key_error)
    }

    /// A refusal of something that exists but is not the caller's to see (a held or hidden
    /// item asked for by its patient): recorded, and answered as not found.
    pub(crate) async fn refuse_seen<A: authz::Action>(&self, caller: &Caller, grant: &authz::Grant<A>) -> AppError {
        match self.audit(vec![self.event(caller, &Target::of(grant), Outcome::Denied)]).await {
            Ok(()) => AppError::NotFound,
            Err(e) => e,
        }
    }
}

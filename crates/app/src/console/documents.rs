//! The console's document work: master-key re-wrapping, patient-key rotation and erasure
//! (crypto-shredding), organisations' systems and agreements, the blob sweep, and the unaudited
//! read the audit benchmark compares against.

use super::Console;
use crate::AppError;
use crate::audit::{Caller, Outcome, Target};
#[cfg(feature = "bench")]
use crate::documents::Download;
use crate::documents::blobs::Blobs;
use crate::documents::{SweepReport, blob_error, key_error};
use crypto::PatientKey;
#[cfg(feature = "bench")]
use domain::DocumentId;
use domain::{ClientId, PracticeId};
use store::{ApiClientRow, DocumentKey, KeyGrant, PatientKeyRow};

/// An event of the console's, about `object` of `kind`: what was done, by whom (the server's
/// console), to which practice's or patient's thing (review #18: every console action is logged).
fn console_target(kind: domain::ObjectKind, verb: domain::Verb, object: &impl ToString) -> Target {
    let module = kind.module_before_v2();
    Target {
        access: domain::Access::new(module, kind, verb),
        object_id: object.to_string(),
        patient: None,
        practice: None,
    }
}

impl Console<'_> {
    async fn record(&self, targets: Vec<Target>) -> Result<(), AppError> {
        let caller = Caller::console(authz::Principal::Anonymous);
        let events = targets.iter().map(|t| self.app.event(&caller, t, Outcome::Allowed)).collect();
        self.app.audit(events).await
    }

    /// Re-wraps every patient key under the ring's primary master key (after a new master key
    /// was installed), calling `progress(done)` as it goes. Blobs are not touched.
    ///
    /// # Errors
    /// When a key cannot be unwrapped (its master key is not loaded) or storage fails.
    pub async fn rewrap_patient_keys(&self, mut progress: impl FnMut(u64)) -> Result<u64, AppError> {
        let vault = self.app.vault()?;
        vault.keys.reload()?;
        let ids = vault.keys.ids();
        let primary = ids.first().cloned().ok_or_else(|| AppError::Internal("no master key".into()))?;
        let mut done = 0u64;
        loop {
            let batch = self.app.store.keys_not_under(&authz::console::master_key_custody(), &primary, 200).await?;
            if batch.is_empty() {
                break;
            }
            // Each patient key unwrapped to be re-wrapped is an event, as every unwrap is.
            let caller = Caller::console(authz::Principal::Anonymous);
            let unwraps = batch.iter().map(|r| self.app.unwrap_event(&caller, r.patient, r.version)).collect();
            self.app.audit(unwraps).await?;
            for row in batch {
                let Some(wrapped) = &row.wrapped else { continue };
                let key = vault.keys.unwrap(&row.master_key_id, wrapped)?;
                let (master_key_id, wrapped) = vault.keys.wrap(&key)?;
                let new = PatientKeyRow { master_key_id, wrapped: Some(wrapped), ..row.clone() };
                self.app
                    .store
                    .rewrap_patient_key(&authz::console::master_key_custody(), &new, &row.master_key_id)
                    .await?;
                done += 1;
                progress(done);
            }
        }
        Ok(done)
    }

    /// Patient keys not yet under the primary master key.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn keys_left_to_rewrap(&self) -> Result<usize, AppError> {
        let vault = self.app.vault()?;
        vault.keys.reload()?;
        let primary = vault.keys.ids().first().cloned().unwrap_or_default();
        Ok(self.app.store.keys_not_under(&authz::console::master_key_custody(), &primary, 1_000_000).await?.len())
    }

    /// Gives a patient a new key and re-wraps their documents' data keys under it; the old key
    /// is destroyed. Blobs are not touched. Returns how many documents were re-wrapped.
    ///
    /// # Errors
    /// When the patient is unknown, their key is destroyed, or storage fails.
    pub async fn rotate_patient_key(&self, nhi: &str) -> Result<usize, AppError> {
        let vault = self.app.vault()?;
        let patient = self.app.console_patient(nhi).await?;
        let custody = authz::console::key_custody(patient);
        let (old_key, old_version) = self.app.current_key(&vault, KeyGrant::Custody(&custody)).await?;
        let caller = Caller::console(authz::Principal::Anonymous);
        self.app.audit(vec![self.app.unwrap_event(&caller, patient, old_version)]).await?;
        let new_key = PatientKey::random().map_err(key_error)?;
        let (master_key_id, wrapped) = vault.keys.wrap(&new_key)?;
        let new_row = PatientKeyRow { patient, version: old_version + 1, master_key_id, wrapped: Some(wrapped) };
        let mut rewrapped = Vec::new();
        for d in self.app.store.document_keys(&custody).await? {
            let pk = if d.key_version == old_version {
                None
            } else {
                let row = self.app.store.patient_key(&custody, d.key_version).await?;
                let w = row
                    .as_ref()
                    .and_then(|r| r.wrapped.clone())
                    .ok_or_else(|| AppError::Internal(format!("document {} is under a destroyed key version", d.id)))?;
                self.app.audit(vec![self.app.unwrap_event(&caller, patient, d.key_version)]).await?;
                Some(vault.keys.unwrap(&row.map(|r| r.master_key_id).unwrap_or_default(), &w)?)
            };
            let dk = pk.as_ref().unwrap_or(&old_key).unwrap(&d.wrapped_key).map_err(key_error)?;
            rewrapped.push(DocumentKey {
                id: d.id,
                key_version: new_row.version,
                wrapped_key: new_key.wrap(&dk).map_err(key_error)?,
            });
        }
        // The records key, likewise (it is under one version: the one it was made with, or the
        // last rotation's).
        let records = match self.app.store.records_key(store::RecordKeyGrant::Custody(&custody)).await? {
            Some((rk, under)) => {
                let pk = if rk.key_version == old_version {
                    None
                } else {
                    let row = under
                        .ok_or_else(|| AppError::Internal("the records key is under a destroyed key version".into()))?;
                    let w = row
                        .wrapped
                        .clone()
                        .ok_or_else(|| AppError::Internal("the records key is under a destroyed key version".into()))?;
                    self.app.audit(vec![self.app.unwrap_event(&caller, patient, rk.key_version)]).await?;
                    Some(vault.keys.unwrap(&row.master_key_id, &w)?)
                };
                let key = pk.as_ref().unwrap_or(&old_key).unwrap(&rk.wrapped_key).map_err(key_error)?;
                Some(store::RecordKeyRow {
                    patient,
                    key_version: new_row.version,
                    wrapped_key: new_key.wrap(&key).map_err(key_error)?,
                })
            }
            None => None,
        };
        match self.app.store.rotate_patient_key(&custody, &new_row, &rewrapped, records.as_ref(), self.app.now()).await {
            Ok(()) => {
                let target = Target {
                    patient: Some(patient),
                    ..console_target(domain::ObjectKind::PatientKey, domain::Verb::Update, &format!("{patient}/{}", new_row.version))
                };
                self.record(vec![target]).await?;
                Ok(rewrapped.len())
            }
            Err(store::StoreError::Conflict(_)) => Err(AppError::Conflict(
                "Documents were being stored for this patient during the rotation, so nothing was changed; run it again."
                    .into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Destroys every copy of a patient's key in the live database: all their documents become
    /// unreadable. The old values are scrubbed from the database's files at once; copies in
    /// backups made before now stay usable only while the master key in use today exists (so
    /// erasure is final for them once it is rotated and the retired key destroyed; see
    /// ARCHITECTURE.md, "Erasure"). Recorded in the access log, under the patient. Returns how
    /// many key versions were destroyed.
    ///
    /// # Errors
    /// When the patient is unknown or storage fails.
    pub async fn erase_patient_key(&self, nhi: &str) -> Result<u64, AppError> {
        let patient = self.app.console_patient(nhi).await?;
        let grant = authz::console::key_custody(patient);
        let destroyed = self.app.store.destroy_patient_keys(&grant, self.app.now()).await?;
        self.app.store.scrub_erased_keys().await?;
        let target = Target {
            access: domain::Access::new(
                domain::Module::Documents,
                domain::ObjectKind::PatientKey,
                domain::Verb::Delete,
            ),
            ..Target::of(&grant)
        };
        self.app
            .audit(vec![self.app.event(&Caller::console(authz::Principal::Anonymous), &target, Outcome::Allowed)])
            .await?;
        Ok(destroyed)
    }

    /// Seals the authenticator secrets stored in the clear (before this version), and re-wraps
    /// those whose key is under a master key other than the current one (after a rotation), so
    /// the retired master key can be destroyed. Returns how many were changed.
    ///
    /// # Errors
    /// When storage or a key fails.
    pub async fn reseal_secrets(&self) -> Result<u64, AppError> {
        let vault = self.app.vault()?;
        let current = vault.keys.wrap(&crypto::PatientKey::random().map_err(key_error)?)?.0;
        let grant = authz::console::master_key_custody();
        let (mut after, mut changed) = (None, u64::from(self.app.reseal_pepper(&grant).await?));
        loop {
            let page = self.app.store.totp_secrets(&grant, after, 500).await?;
            let Some(last) = page.last() else { return Ok(changed) };
            after = Some(last.0);
            for (account, stored) in page {
                let under = crate::identity::sealed::sealed_under(&stored);
                if crate::identity::sealed::is_sealed(&stored) && under == Some(current.as_str()) {
                    continue;
                }
                let plain = self.app.open_totp_secret(account, &stored)?;
                let sealed = self.app.seal_totp_secret(account, &plain)?;
                if self.app.store.replace_totp_secret(&grant, account, &stored, &sealed).await? {
                    changed += 1;
                }
            }
        }
    }

    /// Seals the title, file name and author of documents stored before they were sealed (the
    /// first start of this version does it; it is safe to run again). Each patient key it
    /// unwraps is an event. `progress` is told how many were sealed so far. Returns how many.
    ///
    /// # Errors
    /// When storage or a key fails.
    pub async fn seal_document_details(&self, mut progress: impl FnMut(u64)) -> Result<u64, AppError> {
        let vault = self.app.vault()?;
        let grant = authz::console::master_key_custody();
        let caller = Caller::console(authz::Principal::Anonymous);
        let mut done = 0_u64;
        loop {
            let batch = self.app.store.unsealed_documents(&grant, 200).await?;
            if batch.is_empty() {
                return Ok(done);
            }
            let mut unwrapped = std::collections::BTreeSet::new();
            let mut sealed = Vec::with_capacity(batch.len());
            for (mut row, key) in batch {
                let usable = key.and_then(|k| k.wrapped.map(|w| (k.version, k.master_key_id, w)));
                if let Some((version, master, wrapped)) = usable.filter(|_| !row.wrapped_key.is_empty()) {
                    let data_key = vault.keys.unwrap(&master, &wrapped)?.unwrap(&row.wrapped_key).map_err(key_error)?;
                    unwrapped.insert((row.patient, version));
                    crate::documents::seal_older_details(&mut row, &data_key)?;
                } else {
                    // Deleted, withdrawn or erased: nothing can open it any more, so its details
                    // are not kept either.
                    let gone = |v: &str| {
                        if crypto::fields::is_sealed(v) {
                            v.to_owned()
                        } else {
                            crypto::fields::SEALED_PREFIX.to_owned()
                        }
                    };
                    row.title = gone(&row.title);
                    row.filename = gone(&row.filename);
                    row.author = row.author.as_deref().map(gone);
                }
                sealed.push(row);
            }
            let events = unwrapped.iter().map(|&(p, v)| self.app.unwrap_event(&caller, p, v)).collect();
            self.app.audit(events).await?;
            if sealed.is_empty() {
                return Ok(done);
            }
            for row in &sealed {
                self.app.store.seal_document_details(&grant, row).await?;
                done += 1;
            }
            progress(done);
        }
    }

    /// How many patient-key unwraps each actor (account or API client) made in the last
    /// `minutes`, most first — the input the detectors read; an operator's first look in an
    /// incident.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn unwrap_counts(&self, minutes: i64) -> Result<Vec<(String, String, i64)>, AppError> {
        Ok(self.app.store.unwrap_counts(self.app.clock.now_ms() - minutes.max(0) * 60_000).await?)
    }

    /// Issues credentials to an organisation's system (the console). For a practice's own
    /// system give `practice_hpi`; otherwise the organisation reaches the patients of practices
    /// that agreed to receive from it. Returns the client and its token (shown once).
    ///
    /// # Errors
    /// [`AppError::Invalid`] for bad details; [`AppError::NotFound`] for an unknown practice.
    pub async fn create_client(
        &self,
        label: &str,
        org_id: &str,
        org_name: &str,
        practice_hpi: Option<&str>,
    ) -> Result<(ApiClientRow, String), AppError> {
        let grant = authz::console::manage_practices();
        let practice = match practice_hpi {
            Some(h) => Some(self.practice_by_hpi(h).await?.ok_or(AppError::NotFound)?.id),
            None => None,
        };
        let (org_id, org_name) = match (practice, practice_hpi) {
            // A practice's own system acts for that practice and no other organisation
            // (review #21): its documents are the practice's.
            (Some(_), Some(h)) => {
                let hpi = h.trim().to_ascii_uppercase();
                if !org_id.trim().is_empty() && !org_id.trim().eq_ignore_ascii_case(&hpi) {
                    return Err(AppError::field(
                        "org_id",
                        "A practice's own system acts for that practice: leave the organisation's HPI id out, or give the practice's.",
                    ));
                }
                (hpi, org_name.to_owned())
            }
            _ => (org_id.trim().to_ascii_uppercase(), org_name.to_owned()),
        };
        let ok = |s: &str, max| !s.trim().is_empty() && s.chars().count() <= max && !s.chars().any(char::is_control);
        if !ok(label, 120) || !ok(&org_id, 40) || !ok(&org_name, 200) {
            return Err(AppError::field("org", "Give a label, the organisation's HPI id and its name."));
        }
        let id = ClientId::random();
        let (token, hash) = crate::App::client_token(id)?;
        let row = ApiClientRow {
            suspended_at: None,
            id,
            label: label.trim().to_owned(),
            org_id,
            org_name: org_name.trim().to_owned(),
            practice,
            secret_hash: hash,
            created_at: self.app.now(),
            revoked_at: None,
            scopes: domain::ClientScopes::default(),
        };
        self.app.store.create_api_client(&grant, &row).await?;
        let target = Target { practice, ..console_target(domain::ObjectKind::ApiClient, domain::Verb::Create, &id) };
        self.record(vec![target]).await?;
        Ok((row, token))
    }

    /// Replaces a client's secret; the old one stops working at once. Returns the new token.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown or revoked client.
    pub async fn rotate_client(&self, id: ClientId) -> Result<String, AppError> {
        let (token, hash) = crate::App::client_token(id)?;
        if self.app.store.rotate_api_client(&authz::console::manage_practices(), id, &hash, self.app.now()).await? {
            self.record(vec![console_target(domain::ObjectKind::ApiClient, domain::Verb::Update, &id)]).await?;
            Ok(token)
        } else {
            Err(AppError::NotFound)
        }
    }

    /// Lets a practice's own client send that practice's health records (`POST /fhir/R4`), or
    /// stops it. Only a practice's own system may: another organisation's is refused.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown or revoked client; [`AppError::Invalid`] for
    /// records asked for a client that is not a practice's own.
    pub async fn set_client_records(&self, id: ClientId, records: bool) -> Result<(), AppError> {
        self.set_client_scope(id, |s| s.records = records, records).await
    }

    /// Lets a practice's own client read and write the practice's appointment book as FHIR
    /// (`/fhir/R4/appointments`, `/fhir/R4/Slot`, `/fhir/R4/Appointment`), or stops it.
    ///
    /// # Errors
    /// As [`Self::set_client_records`].
    pub async fn set_client_appointments(&self, id: ClientId, on: bool) -> Result<(), AppError> {
        self.set_client_scope(id, |s| s.appointments = on, on).await
    }

    async fn set_client_scope(
        &self,
        id: ClientId,
        change: impl FnOnce(&mut domain::ClientScopes),
        granting: bool,
    ) -> Result<(), AppError> {
        let grant = authz::console::manage_practices();
        let client =
            self.app.store.api_client(id).await?.filter(|c| c.revoked_at.is_none()).ok_or(AppError::NotFound)?;
        if granting && client.practice.is_none() {
            return Err(AppError::field(
                "scope",
                "Only a practice's own system can have this scope; this client is another organisation's.",
            ));
        }
        let mut scopes = client.scopes;
        change(&mut scopes);
        if self.app.store.set_api_client_scopes(&grant, id, scopes).await? {
            self.record(vec![console_target(domain::ObjectKind::ApiClient, domain::Verb::Update, &id)]).await?;
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// Revokes a client.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown or already revoked client.
    pub async fn revoke_client(&self, id: ClientId) -> Result<(), AppError> {
        if self.app.store.revoke_api_client(&authz::console::manage_practices(), id, self.app.now()).await? {
            self.record(vec![console_target(domain::ObjectKind::ApiClient, domain::Verb::Delete, &id)]).await?;
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// Every API client.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn clients(&self) -> Result<Vec<ApiClientRow>, AppError> {
        Ok(self.app.store.api_clients(&authz::console::manage_practices()).await?)
    }

    /// Records that a practice agrees to receive documents from an organisation.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown practice.
    pub async fn add_agreement(&self, practice_hpi: &str, org_id: &str) -> Result<PracticeId, AppError> {
        let practice = self.practice_by_hpi(practice_hpi).await?.ok_or(AppError::NotFound)?.id;
        let org = org_id.trim().to_ascii_uppercase();
        if org.is_empty() || org.len() > 40 {
            return Err(AppError::field("org", "Give the organisation's HPI id."));
        }
        self.app.store.add_agreement(&authz::console::manage_practices(), practice, &org, self.app.now()).await?;
        // Who may push to this practice's patients changed: on the record.
        let target = Target {
            practice: Some(practice),
            ..console_target(domain::ObjectKind::ApiClient, domain::Verb::Update, &format!("agreement:{org}"))
        };
        self.record(vec![target]).await?;
        Ok(practice)
    }

    /// Ends a practice's agreement to receive documents from an organisation: the
    /// organisation's next push for the practice's patients is refused (documents it already
    /// sent stay the patients'). Recorded in the access log.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown practice; [`AppError::Invalid`] when there is no
    /// such agreement.
    pub async fn remove_agreement(&self, practice_hpi: &str, org_id: &str) -> Result<PracticeId, AppError> {
        let practice = self.practice_by_hpi(practice_hpi).await?.ok_or(AppError::NotFound)?.id;
        let org = org_id.trim().to_ascii_uppercase();
        if !self.app.store.remove_agreement(&authz::console::manage_practices(), practice, &org).await? {
            return Err(AppError::field("org_id", "This practice has no agreement with that organisation."));
        }
        let target = Target::console::<authz::ManagePractices>(authz::Platform).about(&practice);
        self.app
            .audit(vec![self.app.event(&Caller::console(authz::Principal::Anonymous), &target, Outcome::Allowed)])
            .await?;
        Ok(practice)
    }

    /// Removes the blobs of abandoned uploads and deleted documents whose intents are older than
    /// `grace_secs`, and blobs no row knows of that are older than that.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn sweep_blobs(&self, grace_secs: i64) -> Result<SweepReport, AppError> {
        let vault = self.app.vault()?;
        let now = self.app.now();
        let mut report = SweepReport::default();
        loop {
            // Claimed intents are gone from the table, so their uploads can no longer commit;
            // a blob whose delete fails here is left to the stray sweep below, next time.
            let keys = self.app.store.claim_stale_blob_intents(now - grace_secs, 500).await?;
            if keys.is_empty() {
                break;
            }
            for key in &keys {
                vault.blobs.delete(key).await.map_err(blob_error)?;
                report.intents += 1;
            }
        }
        let known: std::collections::HashSet<String> = self.app.store.live_blob_keys().await?.into_iter().collect();
        for (key, modified) in vault.blobs.list().await.map_err(blob_error)? {
            if !known.contains(&key) && modified <= now - grace_secs {
                vault.blobs.delete(&key).await.map_err(blob_error)?;
                report.strays += 1;
            }
        }
        for (key, path, modified) in vault.blobs.staging_files() {
            if !known.contains(&key) && modified <= now - grace_secs {
                std::fs::remove_file(&path)
                    .map_err(|e| AppError::Internal(format!("cannot remove {}: {e}", path.display())))?;
                report.strays += 1;
            }
        }
        Ok(report)
    }

    /// The blob store, for operators' tools and tests.
    ///
    /// # Errors
    /// When documents are not configured.
    pub fn blobs(&self) -> Result<Blobs, AppError> {
        Ok(self.app.vault()?.blobs.clone())
    }

    /// [`App::open_document`] with the same authorisation but no audit events: only for the
    /// benchmark that measures what auditing costs (compiled only with the `bench` feature).
    ///
    /// # Errors
    /// As for [`App::open_document`].
    #[cfg(feature = "bench")]
    pub async fn open_document_unaudited(
        &self,
        caller: &Caller,
        doc: DocumentId,
        range: Option<&str>,
    ) -> Result<Download, AppError> {
        self.app.open_document_inner(caller, doc, range, false).await
    }
}

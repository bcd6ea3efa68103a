//! Health records: what a practice's own system sends of a patient's record. The patient reads
//! what their practice released; clinical staff of the practice that sent an item read it (held
//! and hidden ones too) and decide what the patient sees; the practice's own API client, with the
//! records scope, sends items for its enrolled patients. Nobody else reaches any of it.

use super::{own_practice, patient_or_their_practice, practice_system, practice_system_for, proxy_of};
use crate::{Action, Denied, Grant, Policy, Principal, Relations, action, capabilities, decided_by};
use domain::proxies::ProxyState;
use domain::{PatientId, PracticeId, RecordId};

action!(
    /// Read a patient's record (profile and, later, the records a practice releases).
    ViewPatient, PatientId, "patient.view", Records, Patient, Read
);
action!(
    /// Read a patient's health record: the summary, a category (a patient: what was released to
    /// them; clinical staff: what their practice sent, held and hidden items marked).
    ReadRecords, PatientId, "patient.records.read", Records, PatientRecord, Read
);
action!(
    /// Read one item of a health record (a result with its trend).
    ReadRecord, RecordId, "record.read", Records, HealthRecord, Read
);
action!(
    /// Download one's whole record (HIPC rule 6): the patient only.
    ExportRecords, PatientId, "patient.records.export", Records, PatientRecord, Export
);
action!(
    /// Send items of a patient's record in, as their practice's own system.
    IngestRecords, PatientId, "patient.records.ingest", Records, HealthRecord, Push
);
action!(
    /// Send health records in at all, as a practice's own system with the records scope (what
    /// is stored under which source id; each patient's items still need [`IngestRecords`]).
    SendRecords, PracticeId, "practice.records.send", Records, HealthRecord, Push
);
action!(
    /// Release a held result to the patient.
    ReleaseRecord, RecordId, "record.release", Records, HealthRecord, Release
);
action!(
    /// Hide an item from the patient (with a reason).
    HideRecord, RecordId, "record.hide", Records, HealthRecord, Hide
);
action!(
    /// Show a hidden item to the patient again.
    UnhideRecord, RecordId, "record.unhide", Records, HealthRecord, Unhide
);
action!(
    /// See the practice's results awaiting release.
    ListHeldResults, PracticeId, "practice.records.held", Records, HealthRecord, List
);
action!(
    /// Set what the practice releases to its patients.
    SetRecordRules, PracticeId, "practice.records.rules", Records, RecordRules, Update
);

/// The patient, staff of a practice they are enrolled at, or anyone acting for them under a
/// live link whatever its scopes (the person they act for, by name, is the least a proxy sees).
async fn patient_practice_or_proxy<A: Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Proxy { account, patient: acting_for, at, .. } if *acting_for == patient => {
            let practices = rel.patient_practices(patient).await?;
            let links = rel.proxy_terms(*account, patient).await?;
            // A live link whose practice is the only one the patient is enrolled at.
            if links.iter().any(|t| t.state(*at) == ProxyState::Live && practices.iter().all(|p| *p == t.practice)) {
                Ok(Grant::new(patient, Some(patient), Some(*account)).for_proxy())
            } else {
                Err(Denied::NotFound)
            }
        }
        _ => patient_or_their_practice(p, patient, rel).await,
    }
}

decided_by!(ViewPatient => patient_practice_or_proxy);

impl Policy for SetRecordRules {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, capabilities::MANAGE_PRACTICE).await
    }
}

impl Policy for ReadRecords {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Staff { role, .. } if !capabilities::may(*role, capabilities::READ_RECORDS) => {
                Err(Denied::NotFound)
            }
            _ => patient_or_their_practice(p, patient, rel).await,
        }
    }
}

impl Policy for ExportRecords {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, _r: &R) -> Result<Grant<Self>, Denied> {
        // The patient alone: the download holds their whole access history too.
        match p {
            Principal::Patient { patient: own, account, .. } if *own == patient => {
                Ok(Grant::new(patient, Some(patient), Some(*account)))
            }
            _ => Err(Denied::NotFound),
        }
    }
}

/// The item's patient, or clinical staff of the practice that sent it while the patient is
/// still enrolled there. (Whether the patient may see this particular item — released, not
/// hidden — is the use case's to check, with the practice's rules; the grant says whose it is.)
async fn record_reader<A: Action<Object = RecordId>, R: Relations + ?Sized>(
    p: &Principal,
    record: RecordId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Patient { patient: own, account, .. } => match rel.record_owner(record).await? {
            Some(o) if o.patient == *own => Ok(Grant::new(record, Some(o.patient), Some(*account))),
            _ => Err(Denied::NotFound),
        },
        Principal::Proxy { .. } => match rel.record_owner(record).await? {
            Some(o) => proxy_of(p, record, o.patient, Some(o.practice), rel).await,
            None => Err(Denied::NotFound),
        },
        Principal::Staff { .. } => record_clinician(p, record, rel).await,
        _ => Err(Denied::NotFound),
    }
}

/// Clinical staff of the practice that sent the item, for a patient still enrolled there.
async fn record_clinician<A: Action<Object = RecordId>, R: Relations + ?Sized>(
    p: &Principal,
    record: RecordId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    if !matches!(p, Principal::Staff { .. }) {
        return Err(Denied::NotFound);
    }
    super::owning_practice_staff(p, record, rel.record_owner(record).await?, capabilities::RELEASE_RECORDS, rel).await
}

decided_by!(
    ReadRecord => record_reader,
    ReleaseRecord => record_clinician,
    HideRecord => record_clinician,
    UnhideRecord => record_clinician,
);

impl Policy for ListHeldResults {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, capabilities::RELEASE_RECORDS).await
    }
}

impl Policy for SendRecords {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        practice_system(p, practice, rel, |s| s.records).await
    }
}

impl Policy for IngestRecords {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        // Only a practice's own system, with the records scope, for a patient enrolled there.
        practice_system_for(p, patient, rel, |s| s.records).await
    }
}

//! Health documents: a patient's own, and the letters organisations push in. A patient reaches
//! all of theirs; staff only what their practice sent, in the roles that need it; an
//! organisation's system pushes only for the patients of practices that receive from it.

use super::patient_or_their_practice;
use crate::{Action, Denied, Grant, Policy, Principal, Relations, action, capabilities, decided_by, implies};
use domain::{DocumentId, PatientId, StaffRole};

action!(
    /// List a patient's documents (a patient: all of theirs; staff: those their practice pushed).
    ListDocuments, PatientId, "patient.documents.list", Documents, Document, List
);
action!(
    /// Upload a document of one's own.
    UploadDocument, PatientId, "patient.documents.upload", Documents, Document, Create
);
action!(
    /// Read (download) one document.
    ReadDocument, DocumentId, "document.read", Documents, Document, Read
);
action!(
    /// Rename or hide one's own document.
    ChangeDocument, DocumentId, "document.change", Documents, Document, Update
);
action!(
    /// Delete one's own upload.
    DeleteDocument, DocumentId, "document.delete", Documents, Document, Delete
);
action!(
    /// Withdraw a document one's practice pushed.
    WithdrawDocument, DocumentId, "document.withdraw", Documents, Document, Withdraw
);
action!(
    /// Push a document in for a patient, as an organisation's system.
    PushDocument, PatientId, "patient.documents.push", Documents, Document, Push
);

action!(
    /// Custody of one patient's document keys: rotating them, or destroying them to erase the
    /// patient's documents. The console's only (`authz::console::key_custody`); no policy grants it.
    KeyCustody, PatientId, "patient.keys.custody", Documents, PatientKey, Update
);
action!(
    /// Custody of the master keys: re-wrapping every patient key under a new master key. The
    /// console's only (`authz::console::master_key_custody`).
    MasterKeyCustody, crate::Platform, "platform.master_keys.custody", Documents, PatientKey, Update
);

implies!(DeleteDocument => ChangeDocument);

impl Policy for ListDocuments {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Staff { role, .. } if !capabilities::may(*role, capabilities::LIST_DOCUMENTS) => {
                Err(Denied::NotFound)
            }
            _ => patient_or_their_practice(p, patient, rel).await,
        }
    }
}

impl Policy for UploadDocument {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Patient { .. } | Principal::Proxy { .. } => super::the_patient(p, patient, rel).await,
            _ => Err(Denied::NotFound),
        }
    }
}

/// The owner of a live document, when the principal is that patient.
async fn own_document<A: Action<Object = DocumentId>, R: Relations + ?Sized>(
    p: &Principal,
    doc: DocumentId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    if let Principal::Patient { patient: own, account, .. } = p
        && let Some(owner) = rel.document_owner(doc).await?
        && owner.patient == *own
    {
        return Ok(Grant::new(doc, Some(owner.patient), Some(*account)).owned_by(owner.pushed_by_practice));
    }
    Err(Denied::NotFound)
}

/// A document the patient sent with a message to the staff member's practice: its clinicians
/// read it, while the patient is enrolled there.
async fn attached_for_own_practice<A: Action<Object = DocumentId>, R: Relations + ?Sized>(
    p: &Principal,
    doc: DocumentId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    if let Principal::Staff { practice, account, role, .. } = p
        && capabilities::may(*role, capabilities::READ_CLINICAL_CONTENT)
        && let Some(owner) = rel.document_owner(doc).await?
        && owner.attached_for == Some(*practice)
        && rel.patient_practices(owner.patient).await?.contains(practice)
    {
        return Ok(Grant::new(doc, Some(owner.patient), Some(*account)).through(*practice));
    }
    Err(Denied::NotFound)
}

/// A document the staff member's practice pushed, for a patient still enrolled there.
async fn pushed_by_own_practice<A: Action<Object = DocumentId>, R: Relations + ?Sized>(
    p: &Principal,
    doc: DocumentId,
    rel: &R,
    roles: &[StaffRole],
) -> Result<Grant<A>, Denied> {
    if let Principal::Staff { practice, account, role, .. } = p
        && roles.contains(role)
        && let Some(owner) = rel.document_owner(doc).await?
        && owner.pushed_by_practice == Some(*practice)
        && rel.patient_practices(owner.patient).await?.contains(practice)
    {
        return Ok(Grant::new(doc, Some(owner.patient), Some(*account)).through(*practice));
    }
    Err(Denied::NotFound)
}

impl Policy for ReadDocument {
    async fn decide<R: Relations + ?Sized>(p: &Principal, doc: DocumentId, rel: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Patient { .. } => own_document(p, doc, rel).await,
            // Someone acting for the patient, with the documents scope: never a document the
            // patient hid.
            Principal::Proxy { .. } => match rel.document_owner(doc).await? {
                Some(o) if !o.hidden_by_patient => super::proxy_of(p, doc, o.patient, o.pushed_by_practice, rel)
                    .await
                    .map(|g| g.owned_by(o.pushed_by_practice)),
                _ => Err(Denied::NotFound),
            },
            Principal::Staff { .. } => {
                match pushed_by_own_practice(p, doc, rel, capabilities::READ_CLINICAL_CONTENT).await {
                    Err(Denied::NotFound) => attached_for_own_practice(p, doc, rel).await,
                    other => other,
                }
            }
            _ => Err(Denied::NotFound),
        }
    }
}

decided_by!(ChangeDocument => own_document, DeleteDocument => own_document);

impl Policy for WithdrawDocument {
    async fn decide<R: Relations + ?Sized>(p: &Principal, doc: DocumentId, rel: &R) -> Result<Grant<Self>, Denied> {
        pushed_by_own_practice(p, doc, rel, capabilities::WITHDRAW_DOCUMENT).await
    }
}

impl Policy for PushDocument {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        let Principal::Client { org_id, practice, .. } = p else {
            return Err(Denied::NotFound);
        };
        let enrolled = rel.patient_practices(patient).await?;
        // A practice's client reaches its own enrolled patients; another organisation's, the
        // patients of practices that agreed to receive from it. The grant names the practice.
        let via = match practice {
            Some(own) => enrolled.contains(own).then_some(*own),
            None => rel.receiving_practices(org_id).await?.into_iter().find(|pr| enrolled.contains(pr)),
        };
        via.map(|pr| Grant::new(patient, Some(patient), None).through(pr)).ok_or(Denied::NotFound)
    }
}

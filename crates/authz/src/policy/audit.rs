//! The access log: a patient and their practice's privacy officer see (and export) the
//! patient's access history; operators export the whole log.

use super::operator;
use crate::{Denied, Grant, Platform, Principal, Relations, action, capabilities, decided_by, implies};
use domain::PatientId;

action!(
    /// See who has accessed a patient's information.
    ViewAccessHistory, PatientId, "patient.access_history.view", Audit, AccessHistory, Read
);
action!(
    /// Download a patient's access history (FHIR `AuditEvent`s).
    ExportAccessHistory, PatientId, "patient.access_history.export", Audit, AccessHistory, Export
);
action!(
    /// Export the access log for a time range (as FHIR `AuditEvent` resources).
    ExportAudit, Platform, "platform.audit.export", Audit, AuditLog, Export
);

implies!(ExportAccessHistory => ViewAccessHistory);

/// The patient, or a privacy officer of a practice they are enrolled at.
async fn patient_or_privacy_officer<A: crate::Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Patient { patient: own, account, .. } if *own == patient => {
            Ok(Grant::new(patient, Some(patient), Some(*account)))
        }
        // A practice's privacy officer answers its patients' questions about access.
        Principal::Staff { practice, account, role, .. }
            if capabilities::may(*role, capabilities::VIEW_ACCESS_HISTORY) =>
        {
            if rel.patient_practices(patient).await?.contains(practice) {
                // Through their practice: they see only its part of the history.
                Ok(Grant::new(patient, Some(patient), Some(*account)).through(*practice))
            } else {
                Err(Denied::NotFound)
            }
        }
        _ => Err(Denied::NotFound),
    }
}

decided_by!(
    ViewAccessHistory => patient_or_privacy_officer,
    ExportAccessHistory => patient_or_privacy_officer,
    ExportAudit => operator,
);

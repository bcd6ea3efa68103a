//! Health records: a patient's record, for the patient and the staff of their practices.

use super::patient_or_their_practice;
use crate::{Denied, Grant, Policy, Principal, Relations, action};
use domain::PatientId;

action!(
    /// Read a patient's record (profile and, later, the records a practice releases).
    ViewPatient, PatientId, "patient.view", Records, Patient, Read
);

impl Policy for ViewPatient {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        patient_or_their_practice(p, patient, rel).await
    }
}

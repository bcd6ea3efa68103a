//! Health records: a patient's record, for the patient and the staff of their practices.

use super::patient_or_their_practice;
use crate::{action, decided_by};
use domain::PatientId;

action!(
    /// Read a patient's record (profile and, later, the records a practice releases).
    ViewPatient, PatientId, "patient.view", Records, Patient, Read
);

decided_by!(ViewPatient => patient_or_their_practice);

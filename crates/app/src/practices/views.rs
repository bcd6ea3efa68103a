//! What the practices module shows: its own types, so no storage row crosses into `web`.

use domain::{AccountId, PatientId, PracticeId, StaffRole};

/// A patient as their practice (or they themself) see the record's details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    /// Their id.
    pub id: PatientId,
    /// Their NHI number.
    pub nhi: String,
    /// Their name.
    pub name: String,
    /// Their date of birth, `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// Their email address.
    pub email: String,
    /// Whether they have activated their account.
    pub active: bool,
}

impl From<store::PatientRow> for Patient {
    fn from(r: store::PatientRow) -> Self {
        Self { id: r.id, nhi: r.nhi, name: r.name, date_of_birth: r.date_of_birth, email: r.email, active: r.active }
    }
}

/// A practice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Practice {
    /// Its id.
    pub id: PracticeId,
    /// Its name.
    pub name: String,
    /// Its HPI facility id.
    pub hpi_facility_id: String,
    /// Its region.
    pub region: String,
}

impl From<store::PracticeRow> for Practice {
    fn from(r: store::PracticeRow) -> Self {
        Self { id: r.id, name: r.name, hpi_facility_id: r.hpi_facility_id, region: r.region }
    }
}

/// A practice with its counts, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PracticeSummary {
    /// The practice.
    pub practice: Practice,
    /// How many staff it has.
    pub staff: i64,
    /// How many patients are enrolled.
    pub patients: i64,
}

impl From<store::PracticeSummary> for PracticeSummary {
    fn from(r: store::PracticeSummary) -> Self {
        Self { practice: r.practice.into(), staff: r.staff, patients: r.patients }
    }
}

/// A member of a practice's staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    /// Their account.
    pub account: AccountId,
    /// Their name.
    pub name: String,
    /// Their email address.
    pub email: String,
    /// Their role.
    pub role: StaffRole,
    /// Whether they have set a password.
    pub active: bool,
}

impl From<store::StaffRow> for StaffMember {
    fn from(r: store::StaffRow) -> Self {
        Self { account: r.account, name: r.name, email: r.email, role: r.role, active: r.active }
    }
}

/// A practice asking to enrol the patient, as the patient sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentRequest {
    /// The practice.
    pub practice: PracticeId,
    /// Its name.
    pub practice_name: String,
    /// When it asked (Unix seconds).
    pub requested_at: i64,
}

impl From<store::EnrolmentRequest> for EnrolmentRequest {
    fn from(r: store::EnrolmentRequest) -> Self {
        Self { practice: r.practice, practice_name: r.practice_name, requested_at: r.requested_at }
    }
}

/// An enrolment the practice asked for that the person has not accepted, as the practice sees
/// it: the NHI it gave, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwaitingPatient {
    /// The NHI the practice gave.
    pub nhi: String,
    /// When it asked (Unix seconds).
    pub requested_at: i64,
}

impl From<store::AwaitingPatient> for AwaitingPatient {
    fn from(r: store::AwaitingPatient) -> Self {
        Self { nhi: r.nhi, requested_at: r.requested_at }
    }
}

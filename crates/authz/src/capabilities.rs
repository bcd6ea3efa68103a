//! Least privilege inside a practice: which staff roles may do what. The policies below use
//! these lists, and the pages use the same ones (through the application) to decide which
//! buttons and links to show, so a button never promises what the policy refuses. The table in
//! ARCHITECTURE.md ("Who may do what inside a practice") gives the reason for each row.

use domain::StaffRole;

/// Read clinical content (download a letter the practice sent): clinical roles only.
pub const READ_CLINICAL_CONTENT: &[StaffRole] = &[StaffRole::Gp, StaffRole::Nurse];
/// Withdraw a letter the practice sent: a clinical decision, so clinical roles only.
pub const WITHDRAW_DOCUMENT: &[StaffRole] = &[StaffRole::Gp, StaffRole::Nurse];
/// List a patient's documents from the practice (metadata: category, title, dates), to
/// file and route them: clinical roles and reception.
pub const LIST_DOCUMENTS: &[StaffRole] = &[StaffRole::Gp, StaffRole::Nurse, StaffRole::Admin];
/// See who accessed a patient's information: the privacy officer.
pub const VIEW_ACCESS_HISTORY: &[StaffRole] = &[StaffRole::PrivacyOfficer];
/// Enrol patients.
pub const ENROL_PATIENTS: &[StaffRole] = &[StaffRole::Admin, StaffRole::Gp, StaffRole::Nurse];
/// Invite staff and change the practice's settings.
pub const MANAGE_PRACTICE: &[StaffRole] = &[StaffRole::Admin];

/// Whether `role` is in `allowed`.
#[must_use]
pub fn may(role: StaffRole, allowed: &[StaffRole]) -> bool {
    allowed.contains(&role)
}
/// Read a patient's health record as the practice sent it (held and hidden items marked):
/// clinical roles only.
pub const READ_RECORDS: &[StaffRole] = &[StaffRole::Gp, StaffRole::Nurse];
/// Release a held result to the patient, or hide an item from them: a clinical decision.
pub const RELEASE_RECORDS: &[StaffRole] = &[StaffRole::Gp, StaffRole::Nurse];
/// Run the practice's book: the day list, booking and cancelling for patients, marking who
/// came, blocking slots: reception and clinicians.
pub const RUN_BOOK: &[StaffRole] = &[StaffRole::Admin, StaffRole::Gp, StaffRole::Nurse];
/// Keep patients' long-term lists and prepare repeat requests: clinical roles.
pub const PREPARE_REPEATS: &[StaffRole] = &[StaffRole::Gp, StaffRole::Nurse];
/// Approve or decline a repeat prescription: prescribers (GPs).
pub const PRESCRIBE: &[StaffRole] = &[StaffRole::Gp];
/// Set up, renew and end proxies for the practice's patients, after checking identity at the
/// desk: reception (admins) and clinicians.
pub const SET_UP_PROXIES: &[StaffRole] = &[StaffRole::Admin, StaffRole::Gp, StaffRole::Nurse];
/// Read and answer the practice's patient messages, assign them, keep internal notes: reception
/// (admins) triages, clinicians answer.
pub const HANDLE_MESSAGES: &[StaffRole] = &[StaffRole::Admin, StaffRole::Gp, StaffRole::Nurse];

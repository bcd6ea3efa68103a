//! Grants for work the system does on its own behalf from the command line (`tiaki admin`,
//! `tiaki demo`): a person at the server's console with access to its data folder is already
//! beyond any check this crate could make. Never reachable from a request (`web/clippy.toml`
//! bans this module).

use crate::{
    ExportAudit, Grant, KeyCustody, ManageAccounts, ManageOperators, ManagePractices, ManageStaff, MasterKeyCustody,
    Platform, SetUpBook, UnenrolPatient, ViewPatient,
};
use domain::{PatientId, PracticeId};

/// The console may manage practices.
pub const fn manage_practices() -> Grant<ManagePractices> {
    Grant::new(Platform, None, None)
}
/// The console may export the access log.
pub const fn export_audit() -> Grant<ExportAudit> {
    Grant::new(Platform, None, None)
}
/// The console may invite operators.
pub const fn manage_operators() -> Grant<ManageOperators> {
    Grant::new(Platform, None, None)
}
/// The console may disable and enable accounts.
pub const fn manage_accounts() -> Grant<ManageAccounts> {
    Grant::new(Platform, None, None)
}
/// The console may end a patient's enrolment at a practice (`tiaki admin unenrol`); the
/// caller has found the patient by NHI and the practice by HPI id.
pub const fn unenrol(patient: PatientId, practice: PracticeId) -> Grant<UnenrolPatient> {
    Grant::new(patient, Some(patient), None).through(practice)
}
/// The console may manage a practice's staff (the caller has checked the practice exists).
pub const fn manage_staff(practice: PracticeId) -> Grant<ManageStaff> {
    Grant::new(practice, None, None)
}
/// The console may rotate or destroy one patient's keys (`tiaki documents rotate-key`, erasure).
pub const fn key_custody(patient: PatientId) -> Grant<KeyCustody> {
    Grant::new(patient, Some(patient), None)
}
/// The console may re-wrap every patient key under a new master key (`tiaki keys rotate-master`).
pub const fn master_key_custody() -> Grant<MasterKeyCustody> {
    Grant::new(Platform, None, None)
}

/// The console may read a patient's details, to tell them something (the job that tells
/// patients of results their practice's rule released).
pub const fn view_patient(patient: PatientId) -> Grant<ViewPatient> {
    Grant::new(patient, Some(patient), None)
}

/// The console may keep a practice's book: the job that adds each day's slots from the weekly
/// templates, and `tiaki demo`.
pub const fn set_up_book(practice: PracticeId) -> Grant<SetUpBook> {
    Grant::new(practice, None, None)
}

/// The detectors may suspend an organisation's system and read alerts' evidence (work the
/// system does on its own behalf, as events are written).
pub const fn manage_alerts() -> Grant<crate::ManageAlerts> {
    Grant::new(Platform, None, None)
}

/// The console may switch modules off and on (the kill switch, from the server when the portal
/// itself is the problem).
pub const fn switch_modules() -> Grant<crate::SwitchModules> {
    Grant::new(Platform, None, None)
}

/// The console may lead incidents (`tiaki incident …`, run by the incident lead at the server).
pub const fn lead_incidents() -> Grant<crate::LeadIncidents> {
    Grant::new(Platform, None, None)
}

/// The console may see incidents and produce their reports (`tiaki incident report`).
pub const fn view_incidents() -> Grant<crate::ViewIncidents> {
    Grant::new(Platform, None, None)
}

/// The console may produce incidents' reports.
pub const fn report_incidents() -> Grant<crate::ReportIncidents> {
    Grant::new(Platform, None, None)
}

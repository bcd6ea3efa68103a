//! Grants for work the system does on its own behalf from the command line (`tiaki admin`,
//! `tiaki demo`): a person at the server's console with access to its data folder is already
//! beyond any check this crate could make. Never reachable from a request (`web/clippy.toml`
//! bans this module).

use crate::{ExportAudit, Grant, ManageOperators, ManagePractices, ManageStaff, Platform};
use domain::PracticeId;

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
/// The console may manage a practice's staff (the caller has checked the practice exists).
pub const fn manage_staff(practice: PracticeId) -> Grant<ManageStaff> {
    Grant::new(practice, None, None)
}

//! Identity: operators invite operators and set the platform's passkey rule; a practice's
//! admins reset a staff member's second factors.

use super::{operator, practice_admin};
use crate::{Platform, action, decided_by, implies};
use domain::{PatientId, PracticeId};

action!(
    /// Manage operators (the permission storage takes; people ask for [`InviteOperator`]).
    ManageOperators, Platform, "platform.operators.manage", Identity, OperatorInvitation, Create
);
action!(
    /// Invite another operator.
    InviteOperator, Platform, "platform.operators.invite", Identity, OperatorInvitation, Create
);
action!(
    /// Require staff to use passkeys (or not), platform-wide.
    SetPasskeyPolicy, Platform, "platform.passkey_policy.set", Identity, PasskeyPolicy, Update
);
action!(
    /// Disable or enable any account (the permission storage takes; people ask for one of the
    /// narrower actions below).
    ManageAccounts, Platform, "platform.accounts.manage", Identity, Account, Update
);
action!(
    /// Disable an account, with a reason: it can no longer sign in and its sessions end.
    DisableAccount, Platform, "platform.accounts.disable", Identity, Account, Disable
);
action!(
    /// Enable a disabled account again.
    EnableAccount, Platform, "platform.accounts.enable", Identity, Account, Enable
);
action!(
    /// Ask for a patient's second factors to be reset (an operator; a second one approves).
    RequestPatientReset, Platform, "platform.patient_reset.request", Identity, AccountFactors, Create
);
action!(
    /// Approve another operator's request to reset a patient's second factors.
    ApprovePatientReset, Platform, "platform.patient_reset.approve", Identity, AccountFactors, Update
);
action!(
    /// Reset the second factors of a member of the practice's staff.
    ResetStaffFactors, PracticeId, "practice.staff.reset_factors", Identity, AccountFactors, Update
);
action!(
    /// Reset the second factors of a patient enrolled at the admin's own practice, after
    /// checking who they are (never an operator: they see no patients).
    ResetPatientFactors, PatientId, "practice.patients.reset_factors", Identity, AccountFactors, Update
);

implies!(RequestPatientReset => ManageAccounts, ApprovePatientReset => ManageAccounts);
implies!(DisableAccount => ManageAccounts, EnableAccount => ManageAccounts, InviteOperator => ManageOperators, SetPasskeyPolicy => ManagePractices, ResetStaffFactors => ManageStaff);
use super::practices::{ManagePractices, ManageStaff};

decided_by!(
    ManageAccounts => operator,
    DisableAccount => operator,
    EnableAccount => operator,
    RequestPatientReset => operator,
    ApprovePatientReset => operator,
    ManageOperators => operator,
    InviteOperator => operator,
    SetPasskeyPolicy => operator,
    ResetStaffFactors => practice_admin,
    ResetPatientFactors => super::practices::admin_of_their_practice,
);

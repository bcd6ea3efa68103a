//! Identity: operators invite operators and set the platform's passkey rule; a practice's
//! admins reset a staff member's second factors.

use super::{operator, practice_admin};
use crate::{Denied, Grant, Platform, Policy, Principal, Relations, action, implies};
use domain::PracticeId;

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
    /// Reset the second factors of a member of the practice's staff.
    ResetStaffFactors, PracticeId, "practice.staff.reset_factors", Identity, AccountFactors, Update
);

implies!(InviteOperator => ManageOperators, SetPasskeyPolicy => ManagePractices, ResetStaffFactors => ManageStaff);
use super::practices::{ManagePractices, ManageStaff};

impl Policy for ManageOperators {
    async fn decide<R: Relations + ?Sized>(p: &Principal, _: Platform, _rel: &R) -> Result<Grant<Self>, Denied> {
        operator(p)
    }
}

impl Policy for InviteOperator {
    async fn decide<R: Relations + ?Sized>(p: &Principal, _: Platform, _rel: &R) -> Result<Grant<Self>, Denied> {
        operator(p)
    }
}

impl Policy for SetPasskeyPolicy {
    async fn decide<R: Relations + ?Sized>(p: &Principal, _: Platform, _rel: &R) -> Result<Grant<Self>, Denied> {
        operator(p)
    }
}

impl Policy for ResetStaffFactors {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        practice_admin(p, practice, rel).await
    }
}

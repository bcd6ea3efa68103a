//! Practices: operators create and list them and manage organisations' systems; a practice's
//! staff list its patients and enrol new ones; its admins manage its staff and its rules.

use super::{operator, own_practice, practice_admin};
use crate::{Denied, Grant, Platform, Principal, Relations, action, capabilities, decided_by, implies};
use domain::{PatientId, PracticeId, StaffRole};

action!(
    /// List the patients enrolled at a practice.
    ListPracticePatients, PracticeId, "practice.patients.list", Practices, Patient, List
);
action!(
    /// Enrol a patient at a practice.
    EnrolPatient, PracticeId, "practice.patients.enrol", Practices, Enrolment, Create
);
action!(
    /// End a patient's enrolment at the practice (its admins): its staff lose access to the
    /// patient from that moment.
    UnenrolPatient, PatientId, "practice.patients.unenrol", Practices, Enrolment, Delete
);
action!(
    /// Leave a practice (the patient themself): its staff lose access to them from that moment.
    LeavePractice, PracticeId, "patient.practices.leave", Practices, Enrolment, Delete
);
action!(
    /// See the practices asking to enrol the patient (the patient themself).
    ReviewEnrolmentRequests, PatientId, "patient.enrolment_requests.list", Practices, Enrolment, List
);
action!(
    /// Accept or decline a practice's request to enrol the patient (the patient themself; the
    /// store finds no request unless one stands for them).
    AnswerEnrolmentRequest, PracticeId, "patient.enrolment_requests.answer", Practices, Enrolment, Update
);
action!(
    /// Manage a practice's staff (the permission storage takes; people ask for one of the
    /// narrower actions below).
    ManageStaff, PracticeId, "practice.staff.manage", Practices, Staff, Update
);
action!(
    /// See a practice's staff.
    ListStaff, PracticeId, "practice.staff.list", Practices, Staff, List
);
action!(
    /// Remove someone from a practice's staff: they lose all access at once.
    RemoveStaff, PracticeId, "practice.staff.remove", Practices, Staff, Delete
);
action!(
    /// Change the role of a member of a practice's staff.
    ChangeStaffRole, PracticeId, "practice.staff.role.change", Practices, Staff, Update
);
action!(
    /// Invite someone to a practice's staff.
    InviteStaff, PracticeId, "practice.staff.invite", Practices, StaffInvitation, Create
);
action!(
    /// Require the practice's patients to use a second factor (or not).
    SetPatientMfaPolicy, PracticeId, "practice.patient_mfa.set", Practices, PatientMfaPolicy, Update
);
action!(
    /// Manage the platform's practices and organisations' systems (the permission storage
    /// takes; people ask for one of the narrower actions below).
    ManagePractices, Platform, "platform.practices.manage", Practices, Practice, Update
);
action!(
    /// List the platform's practices.
    ListPractices, Platform, "platform.practices.list", Practices, Practice, List
);
action!(
    /// Create a practice.
    CreatePractice, Platform, "platform.practices.create", Practices, Practice, Create
);
action!(
    /// See the organisations' systems allowed to push documents.
    ManageApiClients, Platform, "platform.api_clients.list", Practices, ApiClient, List
);

implies!(
    ListStaff => ManageStaff,
    InviteStaff => ManageStaff,
    RemoveStaff => ManageStaff,
    ChangeStaffRole => ManageStaff,
    SetPatientMfaPolicy => ManageStaff,
    ListPractices => ManagePractices,
    CreatePractice => ManagePractices,
    ManageApiClients => ManagePractices,
);

/// Any member of the practice's staff.
async fn any_staff<A: crate::Action<Object = PracticeId>, R: Relations + ?Sized>(
    p: &Principal,
    practice: PracticeId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    own_practice(p, practice, rel, &StaffRole::ALL).await
}

/// The practice's staff whose role enrols patients.
async fn enrolling_staff<A: crate::Action<Object = PracticeId>, R: Relations + ?Sized>(
    p: &Principal,
    practice: PracticeId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    own_practice(p, practice, rel, capabilities::ENROL_PATIENTS).await
}

/// An admin of a practice the patient is enrolled at (the grant names that practice).
pub(crate) async fn admin_of_their_practice<A: crate::Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Staff { practice, role, account, .. }
            if capabilities::may(*role, capabilities::MANAGE_PRACTICE)
                && rel.patient_practices(patient).await?.contains(practice) =>
        {
            Ok(Grant::new(patient, Some(patient), Some(*account)).through(*practice))
        }
        _ => Err(Denied::NotFound),
    }
}

/// The patient themself, at a practice they are enrolled at.
async fn patient_enrolled_there<A: crate::Action<Object = PracticeId>, R: Relations + ?Sized>(
    p: &Principal,
    practice: PracticeId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Patient { patient, account, .. } if rel.patient_practices(*patient).await?.contains(&practice) => {
            Ok(Grant::new(practice, Some(*patient), Some(*account)))
        }
        _ => Err(Denied::NotFound),
    }
}

/// The patient themself (the grant names them).
async fn the_patient<A: crate::Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    _rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Patient { patient: own, account, .. } if *own == patient => {
            Ok(Grant::new(patient, Some(patient), Some(*account)))
        }
        _ => Err(Denied::NotFound),
    }
}

/// A patient, about a practice's request to them (the grant names the patient).
async fn patient_asked<A: crate::Action<Object = PracticeId>, R: Relations + ?Sized>(
    p: &Principal,
    practice: PracticeId,
    _rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Patient { patient, account, .. } => Ok(Grant::new(practice, Some(*patient), Some(*account))),
        _ => Err(Denied::NotFound),
    }
}

decided_by!(
    ReviewEnrolmentRequests => the_patient,
    AnswerEnrolmentRequest => patient_asked,
    UnenrolPatient => admin_of_their_practice,
    LeavePractice => patient_enrolled_there,
    ListPracticePatients => any_staff,
    EnrolPatient => enrolling_staff,
    ManageStaff => practice_admin,
    ListStaff => practice_admin,
    InviteStaff => practice_admin,
    RemoveStaff => practice_admin,
    ChangeStaffRole => practice_admin,
    SetPatientMfaPolicy => practice_admin,
    ManagePractices => operator,
    ListPractices => operator,
    CreatePractice => operator,
    ManageApiClients => operator,
);

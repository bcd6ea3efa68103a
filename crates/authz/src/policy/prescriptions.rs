//! Repeat prescriptions: the patient's long-term list (kept by the practice's clinicians), the
//! patient's requests, and the practice's triage — nurses prepare, prescribers (GPs) approve or
//! decline. Who may request for whom is decided here, on the patient (proxies: issue 16).

use super::{own_practice, owning_patient, owning_practice_staff, patient_or_their_practice, the_patient};
use crate::{Action, Denied, Grant, Policy, Principal, Relations, action, capabilities, decided_by};
use domain::{PatientId, PracticeId, RepeatRequestId};

action!(
    /// Set the practice's online repeats: on or off, fee, turnaround, pharmacies.
    SetUpRepeats, PracticeId, "practice.repeats.set_up", Prescriptions, RepeatSettings, Update
);
action!(
    /// Read a patient's long-term list and their requests.
    ReadRepeatList, PatientId, "patient.repeats.read", Prescriptions, RepeatList, Read
);
action!(
    /// Keep a patient's long-term list: mark medications repeat-eligible, exclude them, add them.
    ManageRepeatList, PatientId, "patient.repeats.manage", Prescriptions, RepeatList, Update
);
action!(
    /// Ask for repeat prescriptions.
    RequestRepeat, PatientId, "patient.repeats.request", Prescriptions, RepeatRequest, Request
);
action!(
    /// See the practice's queue of requests.
    ListRepeatQueue, PracticeId, "practice.repeats.queue", Prescriptions, RepeatRequest, List
);
action!(
    /// Read one request.
    ReadRepeatRequest, RepeatRequestId, "repeat_request.read", Prescriptions, RepeatRequest, Read
);
action!(
    /// Take a request into review (prepare it for the prescriber).
    ReviewRepeatRequest, RepeatRequestId, "repeat_request.review", Prescriptions, RepeatRequest, Review
);
action!(
    /// Approve a request (a prescriber).
    ApproveRepeatRequest, RepeatRequestId, "repeat_request.approve", Prescriptions, RepeatRequest, Approve
);
action!(
    /// Decline a request, with a reason the patient reads (a prescriber).
    DeclineRepeatRequest, RepeatRequestId, "repeat_request.decline", Prescriptions, RepeatRequest, Decline
);

impl Policy for SetUpRepeats {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, capabilities::MANAGE_PRACTICE).await
    }
}

impl Policy for ListRepeatQueue {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, capabilities::PREPARE_REPEATS).await
    }
}

/// The patient themself, or clinical staff of a practice they are enrolled at.
async fn patient_or_clinician<A: Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Staff { role, .. } if !capabilities::may(*role, capabilities::PREPARE_REPEATS) => {
            Err(Denied::NotFound)
        }
        _ => patient_or_their_practice(p, patient, rel).await,
    }
}

/// Clinical staff of a practice the patient is enrolled at.
async fn their_clinician<A: Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Staff { role, .. } if capabilities::may(*role, capabilities::PREPARE_REPEATS) => {
            patient_or_their_practice(p, patient, rel).await
        }
        _ => Err(Denied::NotFound),
    }
}

decided_by!(
    ReadRepeatList => patient_or_clinician,
    ManageRepeatList => their_clinician,
    RequestRepeat => the_patient,
);

/// Staff of the request's practice in `roles`, the patient still enrolled there.
async fn request_staff<A: Action<Object = RepeatRequestId>, R: Relations + ?Sized>(
    p: &Principal,
    id: RepeatRequestId,
    rel: &R,
    roles: &[domain::StaffRole],
) -> Result<Grant<A>, Denied> {
    if !matches!(p, Principal::Staff { .. }) {
        return Err(Denied::NotFound);
    }
    owning_practice_staff(p, id, rel.repeat_request_owner(id).await?, roles, rel).await
}

async fn request_reader<A: Action<Object = RepeatRequestId>, R: Relations + ?Sized>(
    p: &Principal,
    id: RepeatRequestId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Patient { .. } | Principal::Proxy { .. } => {
            owning_patient(p, id, rel.repeat_request_owner(id).await?, rel).await
        }
        _ => request_staff(p, id, rel, capabilities::PREPARE_REPEATS).await,
    }
}

async fn preparer<A: Action<Object = RepeatRequestId>, R: Relations + ?Sized>(
    p: &Principal,
    id: RepeatRequestId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    request_staff(p, id, rel, capabilities::PREPARE_REPEATS).await
}

async fn prescriber<A: Action<Object = RepeatRequestId>, R: Relations + ?Sized>(
    p: &Principal,
    id: RepeatRequestId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    request_staff(p, id, rel, capabilities::PRESCRIBE).await
}

decided_by!(
    ReadRepeatRequest => request_reader,
    ReviewRepeatRequest => preparer,
    ApproveRepeatRequest => prescriber,
    DeclineRepeatRequest => prescriber,
);

//! Incidents: operators lead them (declare, revise, remediate, notify, report); each patient
//! sees their own impact status; anyone may check a reference code on the public page.

use super::{operator, the_patient};
use crate::{Denied, Grant, Platform, Principal, Relations, action, decided_by};
use domain::PatientId;

action!(
    /// See incidents, their revisions, scope and campaigns (the incident console).
    ViewIncidents, Platform, "platform.incidents.view", Incidents, Incident, Read
);
action!(
    /// Declare an incident, revise its indicators, remediate and notify: the incident lead's work.
    LeadIncidents, Platform, "platform.incidents.lead", Incidents, Incident, Update
);
action!(
    /// Produce an incident's reports (a controlling organisation's, the regulator's).
    ReportIncidents, Platform, "platform.incidents.report", Incidents, IncidentReport, Export
);
action!(
    /// See one's own impact status (the banner): the patient themself.
    ViewImpact, PatientId, "patient.impact.view", Incidents, Incident, Read
);
action!(
    /// Check a reference code from a message claiming to be from Tiaki: anyone, signed in or not.
    CheckReference, Platform, "platform.reference.check", Incidents, ReferenceCode, Check
);

/// Anyone at all, signed in or not (the public page answers only what the code itself says).
#[allow(clippy::unused_async)]
async fn anyone<R: Relations + ?Sized>(p: &Principal, _: Platform, _rel: &R) -> Result<Grant<CheckReference>, Denied> {
    let account = match p {
        Principal::Patient { account, .. }
        | Principal::Person { account, .. }
        | Principal::Proxy { account, .. }
        | Principal::Staff { account, .. }
        | Principal::Operator { account, .. } => Some(*account),
        Principal::Anonymous | Principal::Client { .. } => None,
    };
    Ok(Grant::new(Platform, None, account))
}

/// The patient themself (not someone acting for them: a proxy's own status is theirs).
async fn own_impact<R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
) -> Result<Grant<ViewImpact>, Denied> {
    match p {
        Principal::Patient { .. } => the_patient(p, patient, rel).await,
        _ => Err(Denied::NotFound),
    }
}

decided_by!(
    ViewIncidents => operator,
    LeadIncidents => operator,
    ReportIncidents => operator,
    ViewImpact => own_impact,
    CheckReference => anyone,
);

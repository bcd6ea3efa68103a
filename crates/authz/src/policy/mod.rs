//! The policies, one file per module. Each action is declared with what the access log calls
//! it, and decided here; everything not explicitly allowed is denied.

pub mod appointments;
pub mod audit;
pub mod detection;
pub mod documents;
pub mod identity;
pub mod incidents;
pub mod messages;
pub mod practices;
pub mod prescriptions;
pub mod proxies;
pub mod records;

use crate::{Action, Denied, Grant, Principal, RecordOwner, Relations};
use domain::{ClientScopes, PatientId, PracticeId, StaffRole};

/// The patient themself, or staff of a practice they are enrolled at (the grant names it).
pub(crate) async fn patient_or_their_practice<A: Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Patient { patient: own, account, .. } if *own == patient => {
            Ok(Grant::new(patient, Some(patient), Some(*account)))
        }
        Principal::Staff { practice, account, .. } => {
            if rel.patient_practices(patient).await?.contains(practice) {
                Ok(Grant::new(patient, Some(patient), Some(*account)).through(*practice))
            } else {
                Err(Denied::NotFound)
            }
        }
        Principal::Proxy { .. } => proxy_of(p, patient, patient, None, rel).await,
        _ => Err(Denied::NotFound),
    }
}

/// Someone acting for `patient` under a live proxy link whose scopes include the action's
/// module (appointments, prescriptions, messages, records, documents). The link is loaded and
/// judged here, at the request's time, on every request: a revoked, expired or aged-out link,
/// one not yet accepted, or one without the scope, grants nothing. Other modules (accounts,
/// practices, the access log) are never a proxy's.
///
/// A link reaches only what belongs to the practice that set it up: an object of another
/// practice (`object_practice`) is refused, and the patient as a whole (their lists, their own
/// uploads) only while that practice is the only one they are enrolled at — lists that span
/// practices are never a proxy's.
pub(crate) async fn proxy_of<A: Action, R: Relations + ?Sized>(
    p: &Principal,
    object: A::Object,
    patient: PatientId,
    object_practice: Option<PracticeId>,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    let Principal::Proxy { account, patient: acting_for, at, .. } = p else { return Err(Denied::NotFound) };
    if *acting_for != patient {
        return Err(Denied::NotFound);
    }
    let links = rel.proxy_terms(*account, patient).await?;
    let Some(link) = links.iter().find(|t| t.allows(A::ACCESS.module, *at)) else { return Err(Denied::NotFound) };
    let within = match object_practice {
        Some(practice) => practice == link.practice,
        None => rel.patient_practices(patient).await?.iter().all(|p| *p == link.practice),
    };
    if within { Ok(Grant::new(object, Some(patient), Some(*account)).for_proxy()) } else { Err(Denied::NotFound) }
}

/// The patient themself, or someone acting for them within scope ([`proxy_of`]).
pub(crate) async fn the_patient<A: Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Patient { patient: own, account, .. } if *own == patient => {
            Ok(Grant::new(patient, Some(patient), Some(*account)))
        }
        Principal::Proxy { .. } => proxy_of(p, patient, patient, None, rel).await,
        _ => Err(Denied::NotFound),
    }
}

/// Staff of this practice in one of `roles`.
pub(crate) async fn own_practice<A: Action<Object = PracticeId>, R: Relations + ?Sized>(
    p: &Principal,
    practice: PracticeId,
    rel: &R,
    roles: &[StaffRole],
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Staff { practice: own, role, account, .. } if *own == practice && roles.contains(role) => {
            if rel.practice_exists(practice).await? {
                Ok(Grant::new(practice, None, Some(*account)))
            } else {
                Err(Denied::NotFound)
            }
        }
        _ => Err(Denied::NotFound),
    }
}

/// A practice's admins; and operators, who set up a practice's first admin.
pub(crate) async fn practice_admin<A: Action<Object = PracticeId>, R: Relations + ?Sized>(
    p: &Principal,
    practice: PracticeId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    if let Principal::Operator { account, .. } = p {
        return if rel.practice_exists(practice).await? {
            Ok(Grant::new(practice, None, Some(*account)))
        } else {
            Err(Denied::NotFound)
        };
    }
    own_practice(p, practice, rel, crate::capabilities::MANAGE_PRACTICE).await
}

/// Operators only.
pub(crate) async fn operator<A: Action<Object = crate::Platform>, R: Relations + ?Sized>(
    p: &Principal,
    _: crate::Platform,
    _rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Operator { account, .. } => Ok(Grant::new(crate::Platform, None, Some(*account))),
        _ => Err(Denied::NotFound),
    }
}

/// Staff in `roles` of the practice that owns an object (an item it sent, an appointment in its
/// book, a request sent to it), while the object's patient is still enrolled there.
pub(crate) async fn owning_practice_staff<A: Action, R: Relations + ?Sized>(
    p: &Principal,
    object: A::Object,
    owner: Option<RecordOwner>,
    roles: &[StaffRole],
    rel: &R,
) -> Result<Grant<A>, Denied> {
    if let Principal::Staff { practice, account, role, .. } = p
        && roles.contains(role)
        && let Some(o) = owner
        && o.practice == *practice
        && rel.patient_practices(o.patient).await?.contains(practice)
    {
        return Ok(Grant::new(object, Some(o.patient), Some(*account)).through(*practice));
    }
    Err(Denied::NotFound)
}

/// The object's own patient, or someone acting for them within scope (the practice that owns
/// it is named for the access log).
pub(crate) async fn owning_patient<A: Action, R: Relations + ?Sized>(
    p: &Principal,
    object: A::Object,
    owner: Option<RecordOwner>,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match (p, owner) {
        (Principal::Patient { patient, account, .. }, Some(o)) if o.patient == *patient => {
            Ok(Grant::new(object, Some(o.patient), Some(*account)).owned_by(Some(o.practice)))
        }
        (Principal::Proxy { .. }, Some(o)) => {
            Ok(proxy_of(p, object, o.patient, Some(o.practice), rel).await?.owned_by(Some(o.practice)))
        }
        _ => Err(Denied::NotFound),
    }
}

/// A practice's own system holding a scope (`scope` picks it), for that practice.
pub(crate) async fn practice_system<A: Action<Object = PracticeId>, R: Relations + ?Sized>(
    p: &Principal,
    practice: PracticeId,
    rel: &R,
    scope: fn(&ClientScopes) -> bool,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Client { practice: Some(own), scopes, .. }
            if *own == practice && scope(scopes) && rel.practice_exists(practice).await? =>
        {
            Ok(Grant::new(practice, None, None).through(practice))
        }
        _ => Err(Denied::NotFound),
    }
}

/// A practice's own system holding a scope, for a patient enrolled at that practice.
pub(crate) async fn practice_system_for<A: Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
    scope: fn(&ClientScopes) -> bool,
) -> Result<Grant<A>, Denied> {
    let Principal::Client { practice: Some(own), scopes, .. } = p else {
        return Err(Denied::NotFound);
    };
    if scope(scopes) && rel.patient_practices(patient).await?.contains(own) {
        Ok(Grant::new(patient, Some(patient), None).through(*own))
    } else {
        Err(Denied::NotFound)
    }
}

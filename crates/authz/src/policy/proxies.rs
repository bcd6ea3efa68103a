//! Proxy access: a practice sets up, after checking identity, who may act for a patient; the
//! patient sees who acts for them, accepts (when past the cut-off age) and revokes; the proxy
//! switches their session to the person they act for. What a proxy may then do in each module
//! is decided by `proxy_of` in `policy/mod.rs`, which every module's patient rules go through.

use super::own_practice;
use crate::{Denied, Grant, Policy, Principal, Relations, ViewPatient, action, capabilities, implies};
use domain::proxies::ProxyState;
use domain::{PatientId, PracticeId, ProxyId};

action!(
    /// Set up (or renew) someone's right to act for a patient, after checking their identity.
    SetUpProxy, PatientId, "patient.proxies.set_up", Practices, Proxy, Create
);
action!(
    /// See who may act for a patient.
    ListProxies, PatientId, "patient.proxies.list", Practices, Proxy, List
);
action!(
    /// Accept a proxy the practice set up (the patient themself, when past the cut-off age).
    AcceptProxy, ProxyId, "proxy.accept", Practices, Proxy, Accept
);
action!(
    /// End a proxy's right: the patient, the practice, or the proxy stepping down.
    RevokeProxy, ProxyId, "proxy.revoke", Practices, Proxy, Revoke
);
action!(
    /// Switch a session to the record of a person one acts for.
    ActFor, PatientId, "patient.act_for", Practices, Proxy, Switch
);
action!(
    /// Set the practice's proxy rules (the age at which a child's record becomes their own).
    SetProxyRules, PracticeId, "practice.proxy_rules.set", Practices, ProxyRules, Update
);

// Setting up a proxy reads the patient's details (their age decides the rules).
implies!(SetUpProxy => ViewPatient);

/// Staff of a practice the patient is enrolled at, in a role that may set up proxies.
async fn proxy_staff<A: crate::Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    if let Principal::Staff { practice, account, role, .. } = p
        && capabilities::may(*role, capabilities::SET_UP_PROXIES)
        && rel.patient_practices(patient).await?.contains(practice)
    {
        return Ok(Grant::new(patient, Some(patient), Some(*account)).through(*practice));
    }
    Err(Denied::NotFound)
}

impl Policy for SetUpProxy {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        proxy_staff(p, patient, rel).await
    }
}

impl Policy for ListProxies {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Patient { patient: own, account, .. } if *own == patient => {
                Ok(Grant::new(patient, Some(patient), Some(*account)))
            }
            _ => proxy_staff(p, patient, rel).await,
        }
    }
}

impl Policy for AcceptProxy {
    async fn decide<R: Relations + ?Sized>(p: &Principal, id: ProxyId, rel: &R) -> Result<Grant<Self>, Denied> {
        // Only the patient, signed in as themself: nobody accepts a proxy for them, the proxy
        // least of all.
        if let Principal::Patient { patient, account, .. } = p
            && let Some(o) = rel.proxy_owner(id).await?
            && o.patient == *patient
            && o.proxy != *account
        {
            return Ok(Grant::new(id, Some(o.patient), Some(*account)).owned_by(Some(o.practice)));
        }
        Err(Denied::NotFound)
    }
}

impl Policy for RevokeProxy {
    async fn decide<R: Relations + ?Sized>(p: &Principal, id: ProxyId, rel: &R) -> Result<Grant<Self>, Denied> {
        let Some(o) = rel.proxy_owner(id).await? else { return Err(Denied::NotFound) };
        let grant = |account| Grant::new(id, Some(o.patient), Some(account)).owned_by(Some(o.practice));
        match p {
            // The patient themself, or the proxy stepping down.
            Principal::Patient { patient, account, .. } if o.patient == *patient || o.proxy == *account => {
                Ok(grant(*account))
            }
            Principal::Proxy { account, .. } if o.proxy == *account => Ok(grant(*account)),
            // The practice that set it up can always end it (its patient or not, any more).
            Principal::Staff { practice, account, role, .. }
                if *practice == o.practice && capabilities::may(*role, capabilities::SET_UP_PROXIES) =>
            {
                Ok(grant(*account).through(*practice))
            }
            _ => Err(Denied::NotFound),
        }
    }
}

impl Policy for ActFor {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        // The session it would become: the proxy, acting for that person, judged now.
        if let Principal::Proxy { account, patient: acting_for, at, .. } = p
            && *acting_for == patient
            && rel.proxy_terms(*account, patient).await?.iter().any(|t| t.state(*at) == ProxyState::Live)
        {
            return Ok(Grant::new(patient, Some(patient), Some(*account)).for_proxy());
        }
        Err(Denied::NotFound)
    }
}

impl Policy for SetProxyRules {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, capabilities::MANAGE_PRACTICE).await
    }
}

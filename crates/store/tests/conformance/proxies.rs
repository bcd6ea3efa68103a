//! Proxy links and the inbox on both engines: a link's terms (the age rule worked out from the
//! date of birth and the practice's cut-off), one open link per pair, acceptance, revocation
//! reaching the sessions acting under it, who is told of news, and each account's own inbox.

#![allow(clippy::too_many_lines)]

use super::*;
use authz::{AcceptProxy, ActFor, ListProxies, RevokeProxy, SetProxyRules, SetUpProxy};
use domain::proxies::{ProxyScopes, ProxyState, Relationship};

fn patient_born(nhi: &str, email: &str, dob: &str) -> NewPatient {
    NewPatient {
        date_of_birth: DateOfBirth::parse(dob, time::macros::date!(2026 - 01 - 01)).unwrap(),
        ..new_patient(nhi, email)
    }
}

async fn enrol_at(store: &Arc<dyn Store>, practice: PracticeId, p: &NewPatient) -> Result<()> {
    let g = authorize::<EnrolPatient, _>(&admin_of(practice), practice, &**store).await?;
    let token = format!("proxy-{}", p.nhi.as_str());
    store.enrol_patient(&g, p, &invite(InvitationPurpose::ActivatePatient, token.as_bytes(), "x@example.nz")).await?;
    Ok(())
}

fn link(proxy: AccountId, by: AccountId, scopes: &str, needs_acceptance: bool) -> NewProxy {
    NewProxy {
        id: ProxyId::random(),
        proxy,
        relationship: if needs_acceptance { Relationship::Carer } else { Relationship::Parent },
        scopes: ProxyScopes::parse(scopes),
        starts_at: NOW,
        expires_at: needs_acceptance.then_some(NOW + 86_400 * 30),
        needs_acceptance,
        identity_check: "passport sighted".into(),
        created_by: by,
        accepted_on_authority: false,
        invite: None,
        reinvite: None,
    }
}

fn as_proxy(account: AccountId, patient: PatientId, at: UnixTime) -> Principal {
    Principal::Proxy { account, session: SessionId::random(), patient, relationship: Relationship::Parent, at }
}

pub(crate) async fn proxy_links_are_judged_and_reach_sessions_and_inboxes(store: Arc<dyn Store>) -> Result<()> {
    let a = make_practice(&store, "FAA111-A").await?;
    let parent = new_patient("ZPX1008", "parent@example.nz");
    let child = patient_born("ZPX1016", "child@example.nz", "2013-02-01");
    let adult = new_patient("ZPX1024", "adult@example.nz");
    for p in [&parent, &child, &adult] {
        enrol_at(&store, a, p).await?;
    }
    let staff = admin_of(a);
    // The practice sets up a parent's link to the child: no acceptance; it ends on the 14th
    // birthday (the default cut-off), worked out from the date of birth.
    let set_up = authorize::<SetUpProxy, _>(&staff, child.id, &*store).await?;
    let first = link(parent.account, adult.account, "appointments,messages", false);
    store.set_up_proxy(&set_up, &first, NOW).await?;
    let terms = store.proxy_terms(parent.account, child.id).await?;
    assert_eq!(terms.len(), 1);
    assert_eq!(terms[0].ends_on.map(|d| d.to_string()).as_deref(), Some("2027-02-01"));
    assert_eq!(terms[0].state(NOW), ProxyState::Live);
    assert!(terms[0].scopes.appointments && terms[0].scopes.messages && !terms[0].scopes.records);
    // The practice's cut-off is read on every judgement: at 16 the same link runs two years on.
    assert_eq!(store.proxy_cutoff(a).await?, 14);
    let rules = authorize::<SetProxyRules, _>(&staff, a, &*store).await?;
    store.set_proxy_cutoff(&rules, 16, NOW).await?;
    let later = store.proxy_terms(parent.account, child.id).await?;
    assert_eq!(later[0].ends_on.map(|d| d.to_string()).as_deref(), Some("2029-02-01"));
    store.set_proxy_cutoff(&rules, 14, NOW).await?;
    // Set up again: a renewal ends the open link first; one open link per pair.
    let second = link(parent.account, adult.account, "appointments", false);
    store.set_up_proxy(&set_up, &second, NOW + 1).await?;
    let terms = store.proxy_terms(parent.account, child.id).await?;
    assert_eq!(terms.len(), 1, "{terms:?}");
    assert!(!terms[0].scopes.messages);
    let owner = store.proxy_owner(second.id).await?.unwrap();
    assert_eq!((owner.patient, owner.practice, owner.proxy), (child.id, a, parent.account));
    // Nobody is their own proxy.
    let own = link(child.account, adult.account, "appointments", false);
    assert!(matches!(store.set_up_proxy(&set_up, &own, NOW).await, Err(StoreError::NotFound)));
    // The patient sees every link (the renewed one as revoked), the practice its own.
    let child_self = Principal::Patient { account: child.account, session: SessionId::random(), patient: child.id };
    let listed = authorize::<ListProxies, _>(&child_self, child.id, &*store).await?;
    let rows = store.patient_proxies(&listed, NOW + 2).await?;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.iter().filter(|r| r.terms.revoked_at.is_none()).count(), 1);
    let by_staff = authorize::<ListProxies, _>(&staff, child.id, &*store).await?;
    assert_eq!(store.patient_proxies(&by_staff, NOW + 2).await?.len(), 2);
    assert_eq!(store.acting_links(parent.account).await?.len(), 1);
    assert_eq!(store.acting_links(parent.account).await?[0].patient_name, "Aroha Test");

    // An adult's link waits for the patient's acceptance, once.
    let set_up_adult = authorize::<SetUpProxy, _>(&staff, adult.id, &*store).await?;
    let carer = link(parent.account, adult.account, "prescriptions", true);
    store.set_up_proxy(&set_up_adult, &carer, NOW).await?;
    assert_eq!(store.proxy_terms(parent.account, adult.id).await?[0].state(NOW), ProxyState::AwaitingAcceptance);
    let adult_self = Principal::Patient { account: adult.account, session: SessionId::random(), patient: adult.id };
    let accept = authorize::<AcceptProxy, _>(&adult_self, carer.id, &*store).await?;
    assert!(store.accept_proxy(&accept, NOW + 5).await?);
    assert!(!store.accept_proxy(&accept, NOW + 6).await?, "answered once");
    assert_eq!(store.proxy_terms(parent.account, adult.id).await?[0].state(NOW + 10), ProxyState::Live);

    // The parent's session opens the child's record; revoking the link closes it at once.
    let session = NewSession {
        id: SessionId::random(),
        token_hash: b"proxy-session".to_vec(),
        account: parent.account,
        created_at: NOW,
        absolute_expires_at: NOW + 1000,
        ip: "192.0.2.1".into(),
        user_agent: "test".into(),
        mfa_at: None,
        setup_ok_at: None,
        mfa_passkey: false,
    };
    store.create_session(&session).await?;
    let act = authorize::<ActFor, _>(&as_proxy(parent.account, child.id, NOW + 10), child.id, &*store).await?;
    store.act_for(session.id, &act).await?;
    let subject = store.session_subject(b"proxy-session", NOW + 10, NOW - 100, "x").await?.unwrap();
    let acting = subject.acting_for.clone().unwrap();
    assert_eq!((acting.patient, acting.name.as_str()), (child.id, "Aroha Test"));
    assert_eq!(acting.link.map(|(r, s)| (r, s.appointments)), Some((Relationship::Parent, true)));
    // News of the child reaches the child and the parent (the caller judges the terms).
    let told = store.recipients(child.id, "appointments").await?;
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told.iter().any(|r| r.account == parent.account && r.proxy.is_some() && r.email_on));
    assert!(told.iter().any(|r| r.account == child.account && r.proxy.is_none()));
    let revoke = authorize::<RevokeProxy, _>(&child_self, second.id, &*store).await?;
    assert!(store.revoke_proxy(&revoke, child.account, NOW + 20).await?);
    assert!(!store.revoke_proxy(&revoke, child.account, NOW + 21).await?, "ended once");
    let subject = store.session_subject(b"proxy-session", NOW + 20, NOW - 100, "x").await?.unwrap();
    assert!(subject.acting_for.is_none(), "the session is back on the parent's own record");
    assert!(store.proxy_terms(parent.account, child.id).await?.is_empty());
    assert_eq!(store.recipients(child.id, "appointments").await?.len(), 1);

    // The inbox: notices written with their mails, counted unread in the session, read once.
    let notice = |account, kind: &str, deliver| NewMail {
        id: uuid::Uuid::new_v4(),
        recipient: "parent@example.nz".into(),
        subject: "There is something new in your Tiaki inbox".into(),
        body: "Kia ora".into(),
        created_at: NOW + 30,
        notice: Some(NewNotice {
            id: NoticeId::random(),
            account,
            patient: Some(child.id),
            kind: kind.into(),
            title: "An appointment was booked".into(),
            link: Some("/appointments/x".into()),
        }),
        deliver,
    };
    store.tell(&[notice(parent.account, "appointments", true), notice(parent.account, "messages", false)]).await?;
    let inbox = store.notices(parent.account, 10).await?;
    assert_eq!(inbox.len(), 2);
    assert_eq!(inbox[0].patient.as_ref().map(|(p, _)| *p), Some(child.id));
    assert!(store.notices(child.account, 10).await?.is_empty(), "an inbox is its account's own");
    let subject = store.session_subject(b"proxy-session", NOW + 30, NOW - 100, "x").await?.unwrap();
    assert_eq!(subject.unread_notices, 2);
    // Only the delivered one went to the outbox.
    let queued = store.claim_mail(NOW + 40, NOW + 100, 50).await?;
    assert_eq!(queued.iter().filter(|m| m.subject.starts_with("There is something new")).count(), 1);
    assert_eq!(store.mark_notices_read(child.account, Some(inbox[0].id), NOW + 31).await?, 0, "not theirs");
    assert_eq!(store.mark_notices_read(parent.account, Some(inbox[0].id), NOW + 31).await?, 1);
    assert_eq!(store.mark_notices_read(parent.account, None, NOW + 32).await?, 1);
    assert_eq!(store.session_subject(b"proxy-session", NOW + 32, NOW - 100, "x").await?.unwrap().unread_notices, 0);
    store.set_notice_pref(parent.account, "appointments", false).await?;
    store.set_notice_pref(parent.account, "appointments", false).await?;
    assert_eq!(store.notice_prefs(parent.account).await?, vec![("appointments".to_owned(), false)]);
    let told = store.recipients(adult.id, "appointments").await?;
    assert!(told.iter().any(|r| r.account == parent.account && !r.email_on), "{told:?}");
    Ok(())
}

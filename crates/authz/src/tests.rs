#![allow(clippy::unwrap_used)]
use super::*;
use domain::{AccountId, BoxFuture, ClientId, DocumentId, PatientId, PracticeId, SessionId, StaffRole};

#[derive(Default)]
struct Fixed {
    enrolled: Vec<(PatientId, PracticeId)>,
    practices: Vec<PracticeId>,
    documents: Vec<(DocumentId, DocumentOwner)>,
    agreements: Vec<(String, PracticeId)>,
    appointments: Vec<(domain::AppointmentId, crate::RecordOwner)>,
    requests: Vec<(domain::RepeatRequestId, crate::RecordOwner)>,
    proxies: Vec<(domain::ProxyId, crate::ProxyOwner, domain::proxies::ProxyTerms)>,
}

impl Relations for Fixed {
    fn patient_practices(&self, patient: PatientId) -> BoxFuture<'_, Result<Vec<PracticeId>, RelationsError>> {
        let v = self.enrolled.iter().filter(|(p, _)| *p == patient).map(|(_, pr)| *pr).collect();
        Box::pin(async move { Ok(v) })
    }
    fn practice_exists(&self, practice: PracticeId) -> BoxFuture<'_, Result<bool, RelationsError>> {
        let v = self.practices.contains(&practice);
        Box::pin(async move { Ok(v) })
    }
    fn document_owner(&self, document: DocumentId) -> BoxFuture<'_, Result<Option<DocumentOwner>, RelationsError>> {
        let v = self.documents.iter().find(|(d, _)| *d == document).map(|(_, o)| *o);
        Box::pin(async move { Ok(v) })
    }
    fn receiving_practices<'a>(&'a self, org: &'a str) -> BoxFuture<'a, Result<Vec<PracticeId>, RelationsError>> {
        let v = self.agreements.iter().filter(|(o, _)| o == org).map(|(_, p)| *p).collect();
        Box::pin(async move { Ok(v) })
    }
    fn record_owner(
        &self,
        _record: domain::RecordId,
    ) -> BoxFuture<'_, Result<Option<crate::RecordOwner>, RelationsError>> {
        Box::pin(async move { Ok(None) })
    }
    fn appointment_owner(
        &self,
        id: domain::AppointmentId,
    ) -> BoxFuture<'_, Result<Option<crate::RecordOwner>, RelationsError>> {
        let v = self.appointments.iter().find(|(a, _)| *a == id).map(|(_, o)| *o);
        Box::pin(async move { Ok(v) })
    }
    fn repeat_request_owner(
        &self,
        id: domain::RepeatRequestId,
    ) -> BoxFuture<'_, Result<Option<crate::RecordOwner>, RelationsError>> {
        let v = self.requests.iter().find(|(r, _)| *r == id).map(|(_, o)| *o);
        Box::pin(async move { Ok(v) })
    }
    fn proxy_terms(
        &self,
        account: AccountId,
        patient: PatientId,
    ) -> BoxFuture<'_, Result<Vec<domain::proxies::ProxyTerms>, RelationsError>> {
        let v = self
            .proxies
            .iter()
            .filter(|(_, o, t)| o.proxy == account && o.patient == patient && t.revoked_at.is_none())
            .map(|(_, _, t)| t.clone())
            .collect();
        Box::pin(async move { Ok(v) })
    }
    fn thread_owner(&self, _id: domain::ThreadId) -> BoxFuture<'_, Result<Option<crate::RecordOwner>, RelationsError>> {
        Box::pin(async move { Ok(None) })
    }
    fn proxy_owner(&self, id: domain::ProxyId) -> BoxFuture<'_, Result<Option<crate::ProxyOwner>, RelationsError>> {
        let v = self.proxies.iter().find(|(p, _, _)| *p == id).map(|(_, o, _)| *o);
        Box::pin(async move { Ok(v) })
    }
}

/// A proxy reaches the person they act for only within the link's scopes and dates, only while
/// it is live, and never the modules no scope names; the patient alone accepts.
#[tokio::test]
async fn a_proxy_acts_only_within_a_live_links_scopes() {
    use domain::proxies::{ProxyScopes, ProxyTerms, Relationship};
    let (child, other, a) = (PatientId::random(), PatientId::random(), PracticeId::random());
    let (parent, link) = (AccountId::random(), domain::ProxyId::random());
    let terms = ProxyTerms {
        practice: a,
        scopes: ProxyScopes { appointments: true, ..ProxyScopes::default() },
        relationship: Relationship::Parent,
        starts_at: 1_000,
        expires_at: Some(2_000),
        needs_acceptance: false,
        accepted_at: None,
        revoked_at: None,
        ends_on: None,
    };
    let owner = crate::ProxyOwner { patient: child, practice: a, proxy: parent };
    let rel = Fixed {
        enrolled: vec![(child, a), (other, a)],
        practices: vec![a],
        proxies: vec![(link, owner, terms)],
        ..Fixed::default()
    };
    let proxy = |patient, at| Principal::Proxy {
        account: parent,
        session: SessionId::random(),
        patient,
        relationship: Relationship::Parent,
        at,
    };
    let now = proxy(child, 1_500);
    let g = authorize::<ListAppointments, _>(&now, child, &rel).await.unwrap();
    assert!(g.by_proxy() && g.actor() == Some(parent) && g.patient() == Some(child));
    assert!(authorize::<BookAppointment, _>(&now, child, &rel).await.is_ok());
    assert!(authorize::<ViewPatient, _>(&now, child, &rel).await.is_ok(), "the person's name, any scope");
    assert!(authorize::<ActFor, _>(&now, child, &rel).await.is_ok());
    // Out of scope, out of time, or someone else: nothing.
    for denied in [
        authorize::<ReadRecords, _>(&now, child, &rel).await.is_err(),
        authorize::<ListDocuments, _>(&now, child, &rel).await.is_err(),
        authorize::<RequestRepeat, _>(&now, child, &rel).await.is_err(),
        authorize::<ViewAccessHistory, _>(&now, child, &rel).await.is_err(),
        authorize::<ListProxies, _>(&now, child, &rel).await.is_err(),
        authorize::<ListAppointments, _>(&proxy(child, 999), child, &rel).await.is_err(),
        authorize::<ListAppointments, _>(&proxy(child, 2_000), child, &rel).await.is_err(),
        authorize::<ActFor, _>(&proxy(child, 2_000), child, &rel).await.is_err(),
        authorize::<ListAppointments, _>(&proxy(other, 1_500), other, &rel).await.is_err(),
        authorize::<ListAppointments, _>(&now, other, &rel).await.is_err(),
        authorize::<AcceptProxy, _>(&now, link, &rel).await.is_err(),
    ] {
        assert!(denied);
    }
    // Only the link's practice: an appointment at another practice is not the proxy's, and once
    // the child is enrolled elsewhere too, lists spanning practices are not either.
    let (here, elsewhere) = (domain::AppointmentId::random(), domain::AppointmentId::random());
    let b = PracticeId::random();
    let mut rel = rel;
    rel.appointments = vec![
        (here, crate::RecordOwner { patient: child, practice: a }),
        (elsewhere, crate::RecordOwner { patient: child, practice: b }),
    ];
    assert!(authorize::<ReadAppointment, _>(&now, here, &rel).await.is_ok());
    assert!(authorize::<ReadAppointment, _>(&now, elsewhere, &rel).await.is_err());
    rel.enrolled.push((child, b));
    assert!(authorize::<ListAppointments, _>(&now, child, &rel).await.is_err());
    assert!(authorize::<ViewPatient, _>(&now, child, &rel).await.is_err());
    assert!(authorize::<ReadAppointment, _>(&now, here, &rel).await.is_ok());
    rel.enrolled.pop();
    // The proxy may step down; the patient accepts; a stranger does neither.
    assert!(authorize::<RevokeProxy, _>(&now, link, &rel).await.is_ok());
    let me = Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient: child };
    assert!(authorize::<AcceptProxy, _>(&me, link, &rel).await.is_ok());
    let stranger = Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient: other };
    assert!(authorize::<RevokeProxy, _>(&stranger, link, &rel).await.is_err());
    assert!(authorize::<AcceptProxy, _>(&stranger, link, &rel).await.is_err());
}

#[tokio::test]
async fn documents_reach_their_patient_the_pushing_practice_and_scoped_clients_only() {
    let (p1, p2) = (PatientId::random(), PatientId::random());
    let (a, b) = (PracticeId::random(), PracticeId::random());
    let (upload, letter) = (DocumentId::random(), DocumentId::random());
    let rel = Fixed {
        enrolled: vec![(p1, a), (p2, b)],
        practices: vec![a, b],
        documents: vec![
            (
                upload,
                DocumentOwner { patient: p1, pushed_by_practice: None, hidden_by_patient: false, attached_for: None },
            ),
            (
                letter,
                DocumentOwner {
                    patient: p1,
                    pushed_by_practice: Some(a),
                    hidden_by_patient: false,
                    attached_for: None,
                },
            ),
        ],
        agreements: vec![("G00001-A".into(), b)],
        ..Fixed::default()
    };
    let patient = |patient| Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient };
    let staff = |practice, role| Principal::Staff {
        account: AccountId::random(),
        session: SessionId::random(),
        practice,
        role,
    };
    assert!(authorize::<ReadDocument, _>(&patient(p1), upload, &rel).await.is_ok());
    assert!(authorize::<ReadDocument, _>(&patient(p2), upload, &rel).await.is_err());
    assert!(authorize::<ChangeDocument, _>(&patient(p1), letter, &rel).await.is_ok());
    // Staff read only what their practice pushed, never a patient's own uploads.
    assert!(authorize::<ReadDocument, _>(&staff(a, StaffRole::Gp), letter, &rel).await.is_ok());
    assert!(authorize::<ReadDocument, _>(&staff(a, StaffRole::Gp), upload, &rel).await.is_err());
    assert!(authorize::<ReadDocument, _>(&staff(b, StaffRole::Gp), letter, &rel).await.is_err());
    assert!(authorize::<WithdrawDocument, _>(&staff(a, StaffRole::Nurse), letter, &rel).await.is_ok());
    assert!(authorize::<WithdrawDocument, _>(&staff(a, StaffRole::PrivacyOfficer), letter, &rel).await.is_err());
    assert!(authorize::<UploadDocument, _>(&staff(a, StaffRole::Gp), p1, &rel).await.is_err());
    assert!(authorize::<ReadDocument, _>(&staff(a, StaffRole::Gp), DocumentId::random(), &rel).await.is_err());
    let client = |org: &str, practice| Principal::Client {
        client: ClientId::random(),
        org_id: org.into(),
        practice,
        scopes: domain::ClientScopes::default(),
    };
    let own = authorize::<PushDocument, _>(&client("F1", Some(a)), p1, &rel).await.unwrap();
    assert_eq!(own.via_practice(), Some(a));
    assert!(authorize::<PushDocument, _>(&client("F1", Some(a)), p2, &rel).await.is_err());
    let hospital = authorize::<PushDocument, _>(&client("G00001-A", None), p2, &rel).await.unwrap();
    assert_eq!(hospital.via_practice(), Some(b), "the agreeing practice");
    assert!(authorize::<PushDocument, _>(&client("G00001-A", None), p1, &rel).await.is_err());
    assert!(authorize::<PushDocument, _>(&client("G99999-Z", None), p2, &rel).await.is_err());
    assert!(authorize::<ReadDocument, _>(&client("F1", Some(a)), letter, &rel).await.is_err());
}

/// The role × action table of ARCHITECTURE.md, cell by cell, for staff of the practice that
/// sent the letter; and the letter is out of reach the moment the patient leaves.
#[tokio::test]
async fn inside_a_practice_each_role_reaches_only_what_its_work_needs() {
    let (p1, a) = (PatientId::random(), PracticeId::random());
    let letter = DocumentId::random();
    let mut rel = Fixed {
        enrolled: vec![(p1, a)],
        practices: vec![a],
        documents: vec![(
            letter,
            DocumentOwner { patient: p1, pushed_by_practice: Some(a), hidden_by_patient: false, attached_for: None },
        )],
        ..Fixed::default()
    };
    let staff =
        |role| Principal::Staff { account: AccountId::random(), session: SessionId::random(), practice: a, role };
    // (role, view patient, list documents, read letter, withdraw letter, access history,
    //  enrol, manage staff)
    let table = [
        (StaffRole::Gp, [true, true, true, true, false, true, false]),
        (StaffRole::Nurse, [true, true, true, true, false, true, false]),
        (StaffRole::Admin, [true, true, false, false, false, true, true]),
        (StaffRole::PrivacyOfficer, [true, false, false, false, true, false, false]),
    ];
    for (role, want) in table {
        let s = staff(role);
        let got = [
            authorize::<ViewPatient, _>(&s, p1, &rel).await.is_ok(),
            authorize::<ListDocuments, _>(&s, p1, &rel).await.is_ok(),
            authorize::<ReadDocument, _>(&s, letter, &rel).await.is_ok(),
            authorize::<WithdrawDocument, _>(&s, letter, &rel).await.is_ok(),
            authorize::<ViewAccessHistory, _>(&s, p1, &rel).await.is_ok(),
            authorize::<EnrolPatient, _>(&s, a, &rel).await.is_ok(),
            authorize::<ManageStaff, _>(&s, a, &rel).await.is_ok(),
        ];
        assert_eq!(got, want, "{role:?}");
    }
    // The patient leaves the practice: its staff lose the letter and the patient at once.
    rel.enrolled.clear();
    for role in StaffRole::ALL {
        let s = staff(role);
        assert!(authorize::<ReadDocument, _>(&s, letter, &rel).await.is_err(), "{role:?}");
        assert!(authorize::<WithdrawDocument, _>(&s, letter, &rel).await.is_err(), "{role:?}");
        assert!(authorize::<ListDocuments, _>(&s, p1, &rel).await.is_err(), "{role:?}");
        assert!(authorize::<ViewPatient, _>(&s, p1, &rel).await.is_err(), "{role:?}");
    }
    // What the practice pushed stays the patient's.
    let me = Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient: p1 };
    assert!(authorize::<ReadDocument, _>(&me, letter, &rel).await.is_ok());
}

#[tokio::test]
async fn patients_see_only_themselves_and_staff_only_their_practice() {
    let (p1, p2) = (PatientId::random(), PatientId::random());
    let (a, b) = (PracticeId::random(), PracticeId::random());
    let rel = Fixed { enrolled: vec![(p1, a), (p2, b)], practices: vec![a, b], ..Fixed::default() };
    let me = Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient: p1 };
    assert_eq!(authorize::<ViewPatient, _>(&me, p1, &rel).await.unwrap().patient(), Some(p1));
    assert!(matches!(authorize::<ViewPatient, _>(&me, p2, &rel).await, Err(Denied::NotFound)));
    let staff = |practice, role| Principal::Staff {
        account: AccountId::random(),
        session: SessionId::random(),
        practice,
        role,
    };
    let via = authorize::<ViewPatient, _>(&staff(a, StaffRole::Nurse), p1, &rel).await.unwrap();
    assert_eq!(via.via_practice(), Some(a), "a staff grant names the practice it rests on");
    assert_eq!(authorize::<ViewPatient, _>(&me, p1, &rel).await.unwrap().via_practice(), None);
    assert!(authorize::<ViewPatient, _>(&staff(b, StaffRole::Gp), p1, &rel).await.is_err());
    assert!(authorize::<ManageStaff, _>(&staff(a, StaffRole::Nurse), a, &rel).await.is_err());
    assert!(authorize::<ManageStaff, _>(&staff(a, StaffRole::Admin), a, &rel).await.is_ok());
    assert!(authorize::<ManageStaff, _>(&staff(a, StaffRole::Admin), b, &rel).await.is_err());
    assert!(authorize::<ManagePractices, _>(&staff(a, StaffRole::Admin), Platform, &rel).await.is_err());
    let op = Principal::Operator { account: AccountId::random(), session: SessionId::random() };
    assert!(authorize::<ViewPatient, _>(&op, p1, &rel).await.is_err());
    assert!(authorize::<ManagePractices, _>(&op, Platform, &rel).await.is_ok());
    assert!(authorize::<ViewPatient, _>(&Principal::Anonymous, p1, &rel).await.is_err());
}

/// Each action says what the access log calls it; actions that share a permission still name
/// what was done, and a grant says whose the object is for the log.
#[tokio::test]
async fn a_grant_says_what_the_access_log_records() {
    use domain::{Access, Module, ObjectKind, Verb};
    let read = Access::new(Module::Documents, ObjectKind::Document, Verb::Read);
    assert_eq!(ReadDocument::ACCESS, read);
    assert_eq!(DeleteDocument::ACCESS.verb, Verb::Delete);
    assert_eq!(ChangeDocument::ACCESS.verb, Verb::Update);
    assert_eq!(ViewPatient::ACCESS.module, Module::Records);
    let narrower = [ListStaff::ACCESS, InviteStaff::ACCESS, SetPatientMfaPolicy::ACCESS, ResetStaffFactors::ACCESS];
    for (i, a) in narrower.iter().enumerate() {
        assert!(narrower.iter().skip(i + 1).all(|b| b != a), "{a:?} is named twice");
    }
    let (p1, a) = (PatientId::random(), PracticeId::random());
    let letter = DocumentId::random();
    let rel = Fixed {
        enrolled: vec![(p1, a)],
        practices: vec![a],
        documents: vec![(
            letter,
            DocumentOwner { patient: p1, pushed_by_practice: Some(a), hidden_by_patient: false, attached_for: None },
        )],
        ..Fixed::default()
    };
    let me = Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient: p1 };
    let g = authorize::<ReadDocument, _>(&me, letter, &rel).await.unwrap();
    assert_eq!((g.access(), g.patient(), g.practice(), g.via_practice()), (read, Some(p1), Some(a), None));
    let gp = Principal::Staff {
        account: AccountId::random(),
        session: SessionId::random(),
        practice: a,
        role: StaffRole::Gp,
    };
    let g = authorize::<ListPracticePatients, _>(&gp, a, &rel).await.unwrap();
    assert_eq!((g.practice(), g.patient()), (Some(a), None), "a practice object is filed under itself");
    // A refusal is located for the log: whose the object is, and whether it exists at all.
    assert_eq!(letter.locate(&rel).await.unwrap(), Located { exists: true, patient: Some(p1), practice: Some(a) });
    assert!(!DocumentId::random().locate(&rel).await.unwrap().exists);
    assert_eq!(PatientId::random().locate(&rel).await.unwrap(), Located::default());
}

#[tokio::test]
async fn appointments_and_repeats_reach_each_role_as_its_work_needs() {
    let (p1, p2, a) = (PatientId::random(), PatientId::random(), PracticeId::random());
    let (appt, request) = (domain::AppointmentId::random(), domain::RepeatRequestId::random());
    let own = RecordOwner { patient: p1, practice: a };
    let mut rel = Fixed {
        enrolled: vec![(p1, a), (p2, a)],
        practices: vec![a],
        appointments: vec![(appt, own)],
        requests: vec![(request, own)],
        ..Fixed::default()
    };
    let staff =
        |role| Principal::Staff { account: AccountId::random(), session: SessionId::random(), practice: a, role };
    // (book for, list appointments, read one, cancel, mark, run the day, set up the book,
    //  read the repeat list, keep it, ask for repeats, the queue, review, approve, decline)
    let table = [
        (StaffRole::Gp, [true, true, true, true, true, true, false, true, true, false, true, true, true, true]),
        (StaffRole::Nurse, [true, true, true, true, true, true, false, true, true, false, true, true, false, false]),
        (StaffRole::Admin, [true, true, true, true, true, true, true, false, false, false, false, false, false, false]),
        (StaffRole::PrivacyOfficer, [false; 14]),
    ];
    for (role, want) in table {
        let s = staff(role);
        let got = [
            authorize::<BookAppointment, _>(&s, p1, &rel).await.is_ok(),
            authorize::<ListAppointments, _>(&s, p1, &rel).await.is_ok(),
            authorize::<ReadAppointment, _>(&s, appt, &rel).await.is_ok(),
            authorize::<CancelAppointment, _>(&s, appt, &rel).await.is_ok(),
            authorize::<MarkAppointment, _>(&s, appt, &rel).await.is_ok(),
            authorize::<RunBook, _>(&s, a, &rel).await.is_ok(),
            authorize::<SetUpBook, _>(&s, a, &rel).await.is_ok(),
            authorize::<ReadRepeatList, _>(&s, p1, &rel).await.is_ok(),
            authorize::<ManageRepeatList, _>(&s, p1, &rel).await.is_ok(),
            authorize::<RequestRepeat, _>(&s, p1, &rel).await.is_ok(),
            authorize::<ListRepeatQueue, _>(&s, a, &rel).await.is_ok(),
            authorize::<ReviewRepeatRequest, _>(&s, request, &rel).await.is_ok(),
            authorize::<ApproveRepeatRequest, _>(&s, request, &rel).await.is_ok(),
            authorize::<DeclineRepeatRequest, _>(&s, request, &rel).await.is_ok(),
        ];
        assert_eq!(got, want, "{role:?}");
    }
    // The patient books, cancels and asks for themself; another patient of the same practice
    // reaches none of it; nobody marks or decides their own.
    let me = Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient: p1 };
    let them = Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient: p2 };
    assert!(authorize::<BookAppointment, _>(&me, p1, &rel).await.is_ok());
    assert!(authorize::<CancelAppointment, _>(&me, appt, &rel).await.is_ok());
    assert!(authorize::<RequestRepeat, _>(&me, p1, &rel).await.is_ok());
    assert!(authorize::<ReadRepeatRequest, _>(&me, request, &rel).await.is_ok());
    assert!(authorize::<MarkAppointment, _>(&me, appt, &rel).await.is_err());
    assert!(authorize::<ApproveRepeatRequest, _>(&me, request, &rel).await.is_err());
    for refused in [
        authorize::<BookAppointment, _>(&them, p1, &rel).await.is_err(),
        authorize::<ReadAppointment, _>(&them, appt, &rel).await.is_err(),
        authorize::<CancelAppointment, _>(&them, appt, &rel).await.is_err(),
        authorize::<RequestRepeat, _>(&them, p1, &rel).await.is_err(),
        authorize::<ReadRepeatRequest, _>(&them, request, &rel).await.is_err(),
    ] {
        assert!(refused);
    }
    // The patient leaves: the practice's staff lose their appointments and requests at once.
    rel.enrolled.retain(|(p, _)| *p != p1);
    for role in StaffRole::ALL {
        let s = staff(role);
        assert!(authorize::<ReadAppointment, _>(&s, appt, &rel).await.is_err(), "{role:?}");
        assert!(authorize::<ReadRepeatRequest, _>(&s, request, &rel).await.is_err(), "{role:?}");
        assert!(authorize::<BookAppointment, _>(&s, p1, &rel).await.is_err(), "{role:?}");
    }
}

//! Appointments and repeat prescriptions on both engines: a slot is taken at most once however
//! many race for it; a repeated booking or request is one; every read and change is scoped by
//! its grant.

#![allow(clippy::too_many_lines)]

use super::*;
use authz::{ApproveRepeatRequest, BookAppointment, CancelAppointment, ManageRepeatList, RequestRepeat, SetUpBook};
use domain::appointments::{AppointmentStatus, ClinicianKind, Modality, SlotStatus};
use domain::prescriptions::{Collection, RepeatStatus};
use store::appointments::{
    BookingGrant, NOT_BOOKED, NewAppointment, SLOT_TAKEN, SlotGrant, SlotRow, TOO_MANY_BOOKINGS,
};
use store::prescriptions::{
    ALREADY_REQUESTED, ListGrant, NOT_REQUESTABLE, NewRepeatRequest, RepeatDecision, RepeatMedicationRow, RequestGrant,
};

fn patient_principal(p: &NewPatient) -> Principal {
    Principal::Patient { account: p.account, session: SessionId::random(), patient: p.id }
}

async fn enrolled(store: &Arc<dyn Store>, practice: PracticeId, nhis: &[String]) -> Result<Vec<NewPatient>> {
    let mut out = Vec::new();
    for (n, nhi) in nhis.iter().enumerate() {
        let p = new_patient(nhi, &format!("care{n}-{}@example.nz", nhi.to_lowercase()));
        let g = authorize::<EnrolPatient, _>(&admin_of(practice), practice, &**store).await?;
        store
            .enrol_patient(
                &g,
                &p,
                &invite(InvitationPurpose::ActivatePatient, format!("c{nhi}").as_bytes(), "x@example.nz"),
            )
            .await?;
        out.push(p);
    }
    Ok(out)
}

fn new_booking(slot: SlotId, max: Option<i64>) -> NewAppointment {
    NewAppointment {
        id: AppointmentId::random(),
        slot,
        reason: None,
        booked_by: None,
        max_future: max,
        source_id: None,
        reminded: false,
    }
}

pub(crate) async fn one_slot_is_booked_once_however_many_race(store: Arc<dyn Store>) -> Result<()> {
    let a = make_practice(&store, "FAA111-A").await?;
    let b = make_practice(&store, "FBB222-B").await?;
    let nhis = testkit::appointments::test_nhis("ZCR", 52);
    let patients = enrolled(&store, a, &nhis[..51]).await?;
    let stranger = enrolled(&store, b, &nhis[51..]).await?.remove(0);
    let setup = console::set_up_book(a);
    let schedule = store
        .save_schedule(
            SlotGrant::SetUp(&setup),
            &store::appointments::ScheduleRow {
                id: ScheduleId::random(),
                practice: a,
                clinician: "Dr Aroha Ngata".into(),
                kind: ClinicianKind::Gp,
                location: "Main clinic".into(),
                online: true,
                active: true,
                source_id: None,
            },
            NOW,
        )
        .await?;
    let kind = store
        .save_appointment_type(
            SlotGrant::SetUp(&setup),
            &store::appointments::AppointmentTypeRow {
                id: AppointmentTypeId::random(),
                practice: a,
                name: "Standard".into(),
                minutes: 15,
                modality: Modality::InPerson,
                online: true,
                active: true,
            },
            NOW,
        )
        .await?;
    let slot = |n: i64| SlotRow {
        id: SlotId::random(),
        practice: a,
        schedule,
        type_id: kind,
        starts_at: NOW + 86_400 + n * 900,
        ends_at: NOW + 86_400 + (n + 1) * 900,
        status: SlotStatus::Free,
        from_template: true,
        source_id: None,
    };
    let wanted: Vec<SlotRow> = (0..4).map(slot).collect();
    assert_eq!(store.sync_template_slots(&setup, NOW, NOW + 2 * 86_400, &wanted, NOW).await?, (4, 0));
    assert_eq!(store.sync_template_slots(&setup, NOW, NOW + 2 * 86_400, &wanted, NOW).await?, (0, 0), "made once");
    let free = store.slots(SlotGrant::SetUp(&setup), NOW, NOW + 2 * 86_400, None, Some(SlotStatus::Free)).await?;
    assert_eq!(free.len(), 4);
    let target = free[0].id;

    // 50 patients race for one slot: exactly one books it.
    let mut tasks = Vec::new();
    for p in patients.iter().take(50) {
        let store = store.clone();
        let principal = patient_principal(p);
        tasks.push(tokio::spawn(async move {
            let g = authorize::<BookAppointment, _>(&principal, principal_patient(&principal), &*store).await.unwrap();
            store.book(BookingGrant::Portal(&g), a, &new_booking(target, Some(5)), &[], NOW).await
        }));
    }
    let (mut booked, mut taken) = (0, 0);
    for t in tasks {
        match t.await? {
            Ok(b) if b.fresh => booked += 1,
            Err(StoreError::Conflict(SLOT_TAKEN)) => taken += 1,
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!((booked, taken), (1, 49));
    let rows = store.slots(SlotGrant::SetUp(&setup), NOW, NOW + 2 * 86_400, None, Some(SlotStatus::Booked)).await?;
    assert_eq!(rows.iter().map(|s| s.id).collect::<Vec<_>>(), vec![target]);

    // One patient submits the same booking twice at once: one booking, returned to both.
    let p = &patients[50];
    let g = authorize::<BookAppointment, _>(&patient_principal(p), p.id, &*store).await?;
    let (b1, b2) = (new_booking(free[1].id, Some(1)), new_booking(free[1].id, Some(1)));
    let (one, two) = tokio::join!(
        store.book(BookingGrant::Portal(&g), a, &b1, &[], NOW),
        store.book(BookingGrant::Portal(&g), a, &b2, &[], NOW)
    );
    let (one, two) = (one?, two?);
    assert_eq!(one.appointment.id, two.appointment.id);
    assert_eq!([one.fresh, two.fresh].iter().filter(|f| **f).count(), 1);
    // At their limit (one), another slot is refused.
    let third = store.book(BookingGrant::Portal(&g), a, &new_booking(free[2].id, Some(1)), &[], NOW).await;
    assert!(matches!(third, Err(StoreError::Conflict(TOO_MANY_BOOKINGS))), "{third:?}");
    // Another practice's patient cannot reach this practice's slots at all.
    let gs = authorize::<BookAppointment, _>(&patient_principal(&stranger), stranger.id, &*store).await?;
    assert!(store.slot(SlotGrant::Book(&gs, a), free[2].id).await?.is_none());
    let refused = store.book(BookingGrant::Portal(&gs), a, &new_booking(free[2].id, None), &[], NOW).await;
    assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");

    // Cancelling frees the slot for someone else; the patient's list shows the cancellation.
    let own = authorize::<CancelAppointment, _>(&patient_principal(p), one.appointment.id, &*store).await?;
    assert!(
        authorize::<CancelAppointment, _>(&patient_principal(&patients[0]), one.appointment.id, &*store).await.is_err()
    );
    store.cancel_appointment(&own, Some(p.account), None, &[], NOW).await?;
    let again = store.cancel_appointment(&own, Some(p.account), None, &[], NOW).await;
    assert!(matches!(again, Err(StoreError::Conflict(NOT_BOOKED))), "{again:?}");
    assert!(store.slot(SlotGrant::SetUp(&setup), free[1].id).await?.is_some_and(|s| s.status == SlotStatus::Free));
    let list = authorize::<authz::ListAppointments, _>(&patient_principal(p), p.id, &*store).await?;
    let mine = store.patient_appointments(&list).await?;
    assert_eq!(mine.iter().map(|a| a.status).collect::<Vec<_>>(), vec![AppointmentStatus::Cancelled]);
    // A slot the practice blocks cannot be booked; a booked one cannot be blocked.
    let block = authorize::<authz::BlockSlots, _>(&admin_of(a), a, &*store).await?;
    store.block_slot(&block, free[3].id, true, NOW).await?;
    assert!(matches!(store.block_slot(&block, target, true, NOW).await, Err(StoreError::Conflict(_))));
    let blocked = store.book(BookingGrant::Portal(&g), a, &new_booking(free[3].id, Some(5)), &[], NOW).await;
    assert!(matches!(blocked, Err(StoreError::Conflict(SLOT_TAKEN))), "{blocked:?}");
    // Admins set up the book; nobody else.
    assert!(authorize::<SetUpBook, _>(&admin_of(a), b, &*store).await.is_err());
    Ok(())
}

fn principal_patient(p: &Principal) -> PatientId {
    match p {
        Principal::Patient { patient, .. } => *patient,
        _ => PatientId::random(),
    }
}

pub(crate) async fn a_repeat_item_is_in_one_open_request_at_a_time(store: Arc<dyn Store>) -> Result<()> {
    let a = make_practice(&store, "FAA111-A").await?;
    let nhis = testkit::appointments::test_nhis("ZCS", 2);
    let patients = enrolled(&store, a, &nhis).await?;
    let (p, other) = (&patients[0], &patients[1]);
    let gp = Principal::Staff {
        account: AccountId::random(),
        session: SessionId::random(),
        practice: a,
        role: StaffRole::Gp,
    };
    let manage = authorize::<ManageRepeatList, _>(&gp, p.id, &*store).await?;
    assert!(authorize::<ManageRepeatList, _>(&admin_of(a), p.id, &*store).await.is_err(), "clinical staff only");
    let med = |excluded| RepeatMedicationRow {
        id: RepeatMedicationId::random(),
        practice: a,
        patient: p.id,
        record: None,
        name: "sealed:v1:name".into(),
        excluded,
        last_issued: None,
        active: true,
    };
    let (statin, tramadol) = (med(false), med(true));
    store.save_repeat_medication(&manage, &statin, NOW).await?;
    store.save_repeat_medication(&manage, &tramadol, NOW).await?;
    let ask = authorize::<RequestRepeat, _>(&patient_principal(p), p.id, &*store).await?;
    assert!(authorize::<RequestRepeat, _>(&patient_principal(other), p.id, &*store).await.is_err());
    assert!(authorize::<RequestRepeat, _>(&gp, p.id, &*store).await.is_err(), "the patient asks, not staff");
    let request = |key: &str, items: Vec<RepeatMedicationId>| NewRepeatRequest {
        id: RepeatRequestId::random(),
        practice: a,
        collection: Collection::Practice,
        pharmacy: None,
        note: None,
        fee_cents: 1500,
        ready_by: "2027-01-19".into(),
        request_key: key.into(),
        requested_by: Some(p.account),
        items,
    };
    // The same form twice at once: one request.
    let (first, second) = (request("k1", vec![statin.id]), request("k1", vec![statin.id]));
    let (r1, r2) =
        tokio::join!(store.request_repeat(&ask, &first, &[], NOW), store.request_repeat(&ask, &second, &[], NOW));
    let (r1, r2) = (r1?, r2?);
    assert_eq!(r1.0.id, r2.0.id);
    assert_eq!([r1.1, r2.1].iter().filter(|f| **f).count(), 1);
    assert_eq!(
        store
            .repeat_requests(ListGrant::Read(
                &authorize::<authz::ReadRepeatList, _>(&patient_principal(p), p.id, &*store).await?
            ))
            .await?
            .len(),
        1
    );
    // A second open request for the same item, an excluded item, another patient's item: refused.
    let dup = store.request_repeat(&ask, &request("k2", vec![statin.id]), &[], NOW).await;
    assert!(matches!(dup, Err(StoreError::Conflict(ALREADY_REQUESTED))), "{dup:?}");
    let ex = store.request_repeat(&ask, &request("k3", vec![tramadol.id]), &[], NOW).await;
    assert!(matches!(ex, Err(StoreError::Conflict(NOT_REQUESTABLE))), "{ex:?}");
    let theirs = authorize::<RequestRepeat, _>(&patient_principal(other), other.id, &*store).await?;
    let stolen = store
        .request_repeat(
            &theirs,
            &NewRepeatRequest { request_key: "k4".into(), ..request("k4", vec![statin.id]) },
            &[],
            NOW,
        )
        .await;
    assert!(matches!(stolen, Err(StoreError::Conflict(NOT_REQUESTABLE))), "{stolen:?}");
    // A prescriber approves: the item is free for a new request, and was issued today.
    let nurse = Principal::Staff {
        account: AccountId::random(),
        session: SessionId::random(),
        practice: a,
        role: StaffRole::Nurse,
    };
    assert!(
        authorize::<ApproveRepeatRequest, _>(&nurse, r1.0.id, &*store).await.is_err(),
        "nurses prepare, GPs decide"
    );
    let approve = authorize::<ApproveRepeatRequest, _>(&gp, r1.0.id, &*store).await?;
    let d = RepeatDecision {
        from: &[RepeatStatus::Requested, RepeatStatus::InReview],
        to: RepeatStatus::Approved,
        by: None,
        outcome: Some("ready_to_collect"),
        reason: None,
        day: "2027-01-15",
    };
    let done = store.decide_repeat(RequestGrant::Approve(&approve), &d, &[], NOW).await?;
    assert_eq!(done.status, RepeatStatus::Approved);
    let again = store.decide_repeat(RequestGrant::Approve(&approve), &d, &[], NOW).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let list = store.repeat_list(ListGrant::Manage(&manage)).await?;
    assert_eq!(
        list.iter().find(|m| m.id == statin.id).and_then(|m| m.last_issued.clone()).as_deref(),
        Some("2027-01-15")
    );
    store.request_repeat(&ask, &request("k5", vec![statin.id]), &[], NOW).await?;
    Ok(())
}

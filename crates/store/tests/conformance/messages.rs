//! Messaging on both engines: a conversation is started only with a practice the patient is
//! enrolled at that takes messages; a form sent twice starts one; internal notes reach only the
//! practice; a patient's message opens a closed conversation; nobody is assigned from outside
//! the practice.

#![allow(clippy::too_many_lines)]

use super::*;
use authz::{ListThreads, ManageThread, ReadPracticeInbox, ReadThread, ReplyThread, SetUpMessaging, StartThread};
use domain::messages::{Team, ThreadStatus};
use store::messages::{
    CLINICIAN_OFF, MESSAGING_OFF, MessagingSettings, NewMessage, NewThread, ThreadChange, ThreadGrant,
};

fn message(author: Option<AccountId>, from_practice: bool, internal: bool, body: &str) -> NewMessage {
    NewMessage { id: MessageId::random(), author, from_practice, internal, body: body.into(), document: None }
}

pub(crate) async fn conversations_are_scoped_and_notes_stay_with_the_practice(store: Arc<dyn Store>) -> Result<()> {
    let a = make_practice(&store, "FAA111-A").await?;
    let b = make_practice(&store, "FBB222-B").await?;
    let p = new_patient("ZPX1008", "msg-p@example.nz");
    let g = authorize::<EnrolPatient, _>(&admin_of(a), a, &*store).await?;
    store.enrol_patient(&g, &p, &invite(InvitationPurpose::ActivatePatient, b"m1", "x@example.nz")).await?;
    let me = Principal::Patient { account: p.account, session: SessionId::random(), patient: p.id };
    let start = authorize::<StartThread, _>(&me, p.id, &*store).await?;
    let new = |practice, key: &str| NewThread {
        id: ThreadId::random(),
        practice,
        team: Some(Team::Nurses),
        clinician: None,
        subject: "sealed:subject".into(),
        request_key: key.into(),
        first: message(Some(p.account), false, false, "sealed:body"),
    };
    // Off until the practice turns it on.
    assert!(matches!(
        store.start_thread(&start, &new(a, "k1"), &[], NOW).await,
        Err(StoreError::Conflict(MESSAGING_OFF))
    ));
    let staff = admin_of(a);
    let setup = authorize::<SetUpMessaging, _>(&staff, a, &*store).await?;
    // A clinician named who is not on the practice's staff is left out.
    let settings = MessagingSettings {
        on: true,
        after_hours: "Call 111".into(),
        fee_notice: String::new(),
        reply_days: 2,
        clinicians: vec![AccountId::random()],
    };
    store.set_messaging(&setup, &settings, NOW).await?;
    let saved = store.messaging_settings(a).await?;
    assert!(saved.on && saved.clinicians.is_empty(), "{saved:?}");
    // Not enrolled at B: not found; a clinician who takes no messages: refused.
    assert!(matches!(store.start_thread(&start, &new(b, "k2"), &[], NOW).await, Err(StoreError::NotFound)));
    let to_someone = NewThread { team: None, clinician: Some(p.account), ..new(a, "k3") };
    assert!(matches!(
        store.start_thread(&start, &to_someone, &[], NOW).await,
        Err(StoreError::Conflict(CLINICIAN_OFF))
    ));
    let first = new(a, "k4");
    let (row, fresh) = store.start_thread(&start, &first, &[], NOW).await?;
    assert!(fresh && row.id == first.id && row.status == ThreadStatus::Open && row.team == Some(Team::Nurses));
    let (again, fresh) = store.start_thread(&start, &new(a, "k4"), &[], NOW + 1).await?;
    assert!(!fresh && again.id == first.id, "a form sent twice starts one conversation");
    let listed = authorize::<ListThreads, _>(&me, p.id, &*store).await?;
    assert_eq!(store.patient_threads(&listed).await?.len(), 1);
    // The practice replies and notes; the patient sees the reply, never the note.
    let reply = authorize::<ReplyThread, _>(&staff, first.id, &*store).await?;
    store.add_message(ThreadGrant::Reply(&reply), &message(None, true, false, "sealed:reply"), &[], NOW + 10).await?;
    let manage = authorize::<ManageThread, _>(&staff, first.id, &*store).await?;
    store.add_message(ThreadGrant::Manage(&manage), &message(None, true, true, "sealed:note"), &[], NOW + 11).await?;
    let mine = authorize::<ReadThread, _>(&me, first.id, &*store).await?;
    let (thread, messages) = store.thread(ThreadGrant::Read(&mine)).await?;
    assert_eq!(messages.len(), 2);
    assert!(messages.iter().all(|m| !m.internal));
    assert_eq!(thread.last_message_at, NOW + 10, "a note is not news for the patient");
    let theirs = authorize::<ReadThread, _>(&staff, first.id, &*store).await?;
    assert_eq!(store.thread(ThreadGrant::Read(&theirs)).await?.1.len(), 3);
    // A patient's grant cannot write as the practice or write notes.
    let mine_reply = authorize::<ReplyThread, _>(&me, first.id, &*store).await?;
    let forged = message(Some(p.account), true, true, "sealed:forged");
    assert!(matches!(
        store.add_message(ThreadGrant::Reply(&mine_reply), &forged, &[], NOW).await,
        Err(StoreError::NotFound)
    ));
    // Closed, then opened again by the patient's message; listed by state for the practice.
    store.manage_thread(&manage, ThreadChange::Status(ThreadStatus::Closed), NOW + 20).await?;
    let inbox = authorize::<ReadPracticeInbox, _>(&staff, a, &*store).await?;
    assert_eq!(store.practice_threads(&inbox, ThreadStatus::Closed).await?.len(), 1);
    assert!(store.practice_threads(&inbox, ThreadStatus::Open).await?.is_empty());
    store
        .add_message(
            ThreadGrant::Reply(&mine_reply),
            &message(Some(p.account), false, false, "sealed:more"),
            &[],
            NOW + 30,
        )
        .await?;
    assert_eq!(store.practice_threads(&inbox, ThreadStatus::Open).await?.len(), 1);
    // Nobody from outside the practice is assigned.
    assert!(matches!(
        store.manage_thread(&manage, ThreadChange::Assign(Some(p.account)), NOW).await,
        Err(StoreError::NotFound)
    ));
    // Read state, per side.
    store.mark_thread_read(&theirs, NOW + 40).await?;
    let (row, _) = store.thread(ThreadGrant::Read(&theirs)).await?;
    assert_eq!(row.practice_read_at, Some(NOW + 40));
    assert_eq!(row.patient_read_at, Some(NOW + 30));
    // Another practice's staff reach none of it.
    assert!(authorize::<ReadThread, _>(&admin_of(b), first.id, &*store).await.is_err());
    assert!(authorize::<ManageThread, _>(&me, first.id, &*store).await.is_err());
    Ok(())
}

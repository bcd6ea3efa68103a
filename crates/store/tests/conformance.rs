//! The storage conformance suite: every case runs against `SQLite` and against `PostgreSQL`.
//! `PostgreSQL` comes from `TIAKI_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! each case gets a fresh database, dropped afterwards. An unreachable server fails the suite.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::items_after_statements,
    clippy::cast_possible_truncation,
    missing_docs
)]

use anyhow::Result;
use authz::{EnrolPatient, ListPracticePatients, ManageStaff, Principal, ViewPatient, authorize, console};
use domain::*;
use sqlx::Connection;
use std::sync::Arc;
use store::*;

struct Engine {
    store: Arc<dyn Store>,
    // Dropped (the PostgreSQL database with it) when the case ends.
    _db: testkit::db::Database,
    _dir: Option<testkit::db::TempDir>,
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn sqlite() -> Result<Engine> {
    let dir = testkit::db::TempDir::new("conf")?;
    let db = testkit::db::Database::sqlite(&dir.0).await?;
    Ok(Engine { store: db.store().await?, _db: db, _dir: Some(dir) })
}

fn pg_admin_url() -> String {
    testkit::db::pg_admin_url()
}

/// A database cloned from the migrated template (faster than migrating each case).
async fn postgres() -> Result<Engine> {
    let db = testkit::db::Database::postgres(&pg_admin_url()).await?;
    Ok(Engine { store: db.store().await?, _db: db, _dir: None })
}

impl Engine {
    /// Closes the store before its database goes.
    fn finish(self) {
        drop(self.store);
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite_engine {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let e = super::sqlite().await.unwrap();
                super::$case(e.store.clone()).await.unwrap();
                e.finish();
            })*
        }
        mod postgres_engine {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let e = super::postgres().await.unwrap();
                super::$case(e.store.clone()).await.unwrap();
                e.finish();
            })*
        }
    };
}

conformance!(
    migrations_are_idempotent_and_secrets_stable,
    practices_are_unique_by_hpi_id,
    staff_invitations_are_single_use,
    enrolment_is_scoped_to_the_practice,
    patient_lists_come_a_page_at_a_time,
    sessions_expire_and_end,
    outbox_leases_retries_and_clears,
    first_operator_link_is_replaced_and_creates_the_account,
    concurrent_use_of_one_link_succeeds_once,
    audit_events_are_sequenced_into_one_merkle_tree,
    leases_go_to_one_holder_at_a_time,
    jobs_run_once_under_a_lease_with_retries,
    audit_history_is_per_patient_and_filtered,
    concurrent_appends_number_the_log_without_gaps,
    sign_in_attempts_are_claimed_one_at_a_time,
    records_are_scoped_versioned_released_and_hidden,
    one_slot_is_booked_once_however_many_race,
    a_repeat_item_is_in_one_open_request_at_a_time,
    proxy_links_are_judged_and_reach_sessions_and_inboxes,
    conversations_are_scoped_and_notes_stay_with_the_practice,
    detection_counts_distinct_objects_once_across_nodes,
    containment_state_is_kept_once,
    incidents_keep_revisions_and_send_each_notice_once,
);

#[path = "conformance/care.rs"]
mod care;
use care::{a_repeat_item_is_in_one_open_request_at_a_time, one_slot_is_booked_once_however_many_race};
#[path = "conformance/proxies.rs"]
mod proxies;
use proxies::proxy_links_are_judged_and_reach_sessions_and_inboxes;
#[path = "conformance/incidents.rs"]
mod incidents;
use incidents::incidents_keep_revisions_and_send_each_notice_once;
#[path = "conformance/messages.rs"]
mod messages;
use messages::conversations_are_scoped_and_notes_stay_with_the_practice;

/// The detectors' picture: distinct objects per rule, subject and window, the same whichever
/// connection (node) marks them, many at once; a new window starts from nothing and forgets
/// the old; an alert is raised once per rule, subject and window.
async fn detection_counts_distinct_objects_once_across_nodes(store: Arc<dyn Store>) -> Result<()> {
    let objects = |r: std::ops::Range<i32>| r.map(|n| format!("document:{n}")).collect::<Vec<_>>();
    assert_eq!(store.mark("enumeration", "s1", 600, &objects(0..5)).await?, 5);
    assert_eq!(store.mark("enumeration", "s1", 600, &objects(3..8)).await?, 8, "the same id counts once");
    assert_eq!(store.mark("enumeration", "s2", 600, &objects(0..2)).await?, 2, "per subject");
    assert_eq!(store.mark("bulk_document_reads", "s1", 600, &objects(0..1)).await?, 1, "per rule");
    // Twenty marks at once (as many requests on several nodes): twenty distinct, no error.
    let mut tasks = tokio::task::JoinSet::new();
    for n in 100..120 {
        let store = store.clone();
        tasks.spawn(async move { store.mark("enumeration", "s3", 600, &[format!("document:{n}")]).await });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    assert_eq!(store.mark("enumeration", "s3", 600, &[]).await?, 20);
    // The next window starts again; pruning forgets the windows before a time.
    assert_eq!(store.mark("enumeration", "s1", 1200, &objects(0..1)).await?, 1);
    assert!(store.prune_marks(1200).await? >= 8);
    assert_eq!(store.mark("enumeration", "s1", 600, &[]).await?, 0, "forgotten");
    assert_eq!(store.mark("enumeration", "s1", 1200, &[]).await?, 1, "kept");
    let alert = |window| store::NewAlert {
        id: uuid::Uuid::new_v4(),
        rule: "enumeration".into(),
        severity: "critical".into(),
        subject: "s1".into(),
        account: None,
        response: "suspend_session".into(),
        seen: 20,
        window_start: window,
        created_at: window + 5,
    };
    assert!(store.raise_alert(&alert(1200)).await?.new);
    assert_eq!(
        store.raise_alert(&alert(1200)).await?,
        store::Raised { new: false, lifted: false },
        "once per rule, subject and window"
    );
    assert!(store.raise_alert(&alert(1800)).await?.new);
    let alerts = store.alerts(10).await?;
    assert_eq!(alerts.len(), 2);
    assert_eq!((alerts[0].created_at, alerts[0].seen, alerts[0].acknowledged_at), (1805, 20, None), "newest first");
    // Acknowledged once, lifted once; a lifted window is not raised (nor suspended) again.
    let grant = authz::console::manage_alerts();
    let id = alerts[0].id.clone();
    assert!(store.settle_alert(&grant, &id, store::Settle::Acknowledge, "op", "looking", 1810).await?);
    assert!(!store.settle_alert(&grant, &id, store::Settle::Acknowledge, "op", "again", 1811).await?);
    assert!(store.settle_alert(&grant, &id, store::Settle::Lift, "op", "checked", 1812).await?);
    assert!(!store.settle_alert(&grant, &id, store::Settle::Lift, "op", "again", 1813).await?);
    let row = store.alert(&id).await?.ok_or_else(|| anyhow::anyhow!("the alert"))?;
    assert_eq!((row.acknowledged_at, row.lifted_at, row.note.as_deref()), (Some(1810), Some(1812), Some("checked")));
    assert_eq!(store.raise_alert(&alert(1800)).await?, store::Raised { new: false, lifted: true });
    assert!(store.alert("no such alert").await?.is_none());
    // Several marks in one transaction, in order.
    // Several marks and tallies in one transaction, in order.
    let marks = [
        store::Mark {
            rule: "bulk_document_reads",
            subject: "s9".into(),
            window_start: 60,
            objects: objects(0..3),
            tally: 0,
        },
        store::Mark { rule: "read_rate", subject: "s9".into(), window_start: 0, objects: Vec::new(), tally: 2 },
        store::Mark {
            rule: "bulk_document_reads",
            subject: "s9".into(),
            window_start: 60,
            objects: objects(2..4),
            tally: 0,
        },
        store::Mark { rule: "read_rate", subject: "s9".into(), window_start: 0, objects: Vec::new(), tally: 3 },
    ];
    assert_eq!(store.mark_all(&marks).await?, [3, 2, 4, 5]);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = store.clone();
        let m = store::Mark { rule: "read_rate", subject: "s9".into(), window_start: 0, objects: Vec::new(), tally: 1 };
        tasks.spawn(async move { store.mark_all(&[m]).await });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let m = store::Mark { rule: "read_rate", subject: "s9".into(), window_start: 0, objects: Vec::new(), tally: 1 };
    assert_eq!(store.mark_all(&[m]).await?, [16], "every tally counted, however many at once");
    Ok(())
}

/// Containment's state: a system's usual volume, the kill switch (per practice or everyone, once
/// each) and the operators' actions with their reasons.
async fn containment_state_is_kept_once(store: Arc<dyn Store>) -> Result<()> {
    // A system's usual volume: its busiest window in the span asked, older ones forgotten.
    store.record_volume("client:c", 0, 5, 0).await?;
    store.record_volume("client:c", 3600, 9, 0).await?;
    store.record_volume("client:c", 3600, 12, 0).await?;
    assert_eq!(store.usual_volume("client:c", 0, 7200).await?, 12);
    assert_eq!(store.usual_volume("client:c", 0, 3600).await?, 5);
    store.record_volume("client:c", 7200, 1, 3600).await?;
    assert_eq!(store.usual_volume("client:c", 0, 3600).await?, 0, "forgotten");
    // The kill switch: per practice or everyone, once each.
    let sw = authz::console::switch_modules();
    assert!(!store.module_off("documents", Some("p1")).await?);
    assert!(store.set_module_switch(&sw, "documents", "p1", Some((10, "op", "why"))).await?);
    assert!(!store.set_module_switch(&sw, "documents", "p1", Some((11, "op", "again"))).await?);
    assert!(store.module_off("documents", Some("p1")).await?);
    assert!(!store.module_off("documents", Some("p2")).await?);
    assert!(!store.module_off("records", Some("p1")).await?);
    assert!(store.set_module_switch(&sw, "documents", "*", Some((12, "op", "all"))).await?);
    assert!(store.module_off("documents", Some("p2")).await? && store.module_off("documents", None).await?);
    assert_eq!(store.module_switches().await?.len(), 2);
    assert!(store.set_module_switch(&sw, "documents", "*", None).await?);
    assert!(!store.set_module_switch(&sw, "documents", "*", None).await?);
    assert!(!store.module_off("documents", Some("p2")).await?);
    // Security actions keep their reasons, newest first.
    store.record_security_action(20, "op", "switch_off", "documents:p1", "why").await?;
    store.record_security_action(21, "op", "switch_on", "documents:p1", "checked").await?;
    let actions = store.security_actions(10).await?;
    assert_eq!(actions.iter().map(|a| a.reason.as_str()).collect::<Vec<_>>(), ["checked", "why"]);
    Ok(())
}

const NOW: UnixTime = 1_800_000_000;

fn invite(purpose: InvitationPurpose, token: &[u8], to: &str) -> NewInvitation {
    NewInvitation {
        token_hash: token.to_vec(),
        purpose,
        created_at: NOW,
        expires_at: NOW + 3600,
        mail: Some(NewMail {
            id: uuid::Uuid::new_v4(),
            recipient: to.into(),
            subject: "Welcome".into(),
            body: "link".into(),
            created_at: NOW,
            notice: None,
            deliver: true,
        }),
    }
}

fn account(kind: AccountKind, email: &str) -> NewAccount {
    NewAccount {
        id: AccountId::random(),
        kind,
        email: Email::parse(email).unwrap(),
        display_name: PersonName::parse("Test Person").unwrap(),
        created_at: NOW,
    }
}

async fn make_practice(store: &Arc<dyn Store>, hpi: &str) -> Result<PracticeId> {
    let id = PracticeId::random();
    store
        .create_practice(
            &console::manage_practices(),
            &NewPractice {
                id,
                name: PracticeName::parse(&format!("Practice {hpi}"))?,
                hpi_facility_id: HpiFacilityId::parse(hpi)?,
                region: Region::parse("Northland")?,
                created_at: NOW,
            },
        )
        .await?;
    Ok(id)
}

/// An operator account (no password yet), made as the console makes one.
async fn make_operator(store: &Arc<dyn Store>, email: &str, token: &[u8]) -> Result<AccountId> {
    let op = account(AccountKind::Operator, email);
    store
        .create_operator(&console::manage_operators(), &op, &invite(InvitationPurpose::JoinOperator, token, email))
        .await?;
    Ok(op.id)
}

fn admin_of(practice: PracticeId) -> Principal {
    Principal::Staff { account: AccountId::random(), session: SessionId::random(), practice, role: StaffRole::Admin }
}

fn new_patient(nhi: &str, email: &str) -> NewPatient {
    NewPatient {
        id: PatientId::random(),
        account: AccountId::random(),
        nhi: Nhi::parse(nhi).unwrap(),
        name: PersonName::parse("Aroha Test").unwrap(),
        date_of_birth: DateOfBirth::parse("1980-01-02", time::macros::date!(2026 - 01 - 01)).unwrap(),
        email: Email::parse(email).unwrap(),
        enrolled_by: None,
        at: NOW,
    }
}

async fn migrations_are_idempotent_and_secrets_stable(store: Arc<dyn Store>) -> Result<()> {
    store.migrate().await?;
    store.ping().await?;
    let first = store.secret("csrf", &[1; 32]).await?;
    let second = store.secret("csrf", &[2; 32]).await?;
    assert_eq!(first, vec![1; 32]);
    assert_eq!(second, first, "a secret, once stored, never changes");
    Ok(())
}

async fn practices_are_unique_by_hpi_id(store: Arc<dyn Store>) -> Result<()> {
    let a = make_practice(&store, "FZZ999-B").await?;
    let _b = make_practice(&store, "FAB123-C").await?;
    let dup = make_practice(&store, "fzz999-b").await;
    assert!(matches!(dup.unwrap_err().downcast::<StoreError>()?, StoreError::Conflict(w) if w.contains("HPI")));
    let list = store.list_practices(&console::manage_practices()).await?;
    assert_eq!(list.len(), 2);
    assert_eq!(store.practice(a).await?.unwrap().hpi_facility_id, "FZZ999-B");
    assert!(store.practice(PracticeId::random()).await?.is_none());
    Ok(())
}

async fn staff_invitations_are_single_use(store: Arc<dyn Store>) -> Result<()> {
    let p = make_practice(&store, "FZZ999-B").await?;
    let grant = authorize::<ManageStaff, _>(&admin_of(p), p, &*store).await?;
    let nurse = account(AccountKind::Staff, "nurse@example.nz");
    store
        .invite_staff(
            &grant,
            &nurse,
            StaffRole::Nurse,
            &invite(InvitationPurpose::JoinStaff, b"tok-1", "nurse@example.nz"),
        )
        .await?;
    assert_eq!(store.staff_membership(nurse.id).await?, Some((p, StaffRole::Nurse)));
    assert_eq!(store.pending_mail_count().await?, 1, "the invitation email is queued with the invitation");

    // The same email cannot be used twice, and the failed attempt leaves nothing behind.
    let again = account(AccountKind::Staff, "NURSE@example.nz");
    let err = store
        .invite_staff(&grant, &again, StaffRole::Gp, &invite(InvitationPurpose::JoinStaff, b"tok-2", "x@example.nz"))
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(w)) if w.contains("email")));
    assert_eq!(store.pending_mail_count().await?, 1);
    assert!(matches!(store.invitation(b"tok-2", NOW).await, Err(StoreError::Invitation(InvitationState::Unknown))));

    let view = store.invitation(b"tok-1", NOW).await?;
    assert_eq!(view.purpose, InvitationPurpose::JoinStaff);
    assert_eq!(view.account.unwrap().email, "nurse@example.nz");
    assert!(matches!(
        store.invitation(b"tok-1", NOW + 3600).await,
        Err(StoreError::Invitation(InvitationState::Expired))
    ));

    let acc = Acceptance { password_hash: "$argon2id$fake".into(), first_operator: None };
    assert!(matches!(
        store.accept_invitation(b"tok-1", NOW + 3600, &acc).await,
        Err(StoreError::Invitation(InvitationState::Expired))
    ));
    assert_eq!(store.accept_invitation(b"tok-1", NOW + 10, &acc).await?, nurse.id);
    assert!(matches!(
        store.accept_invitation(b"tok-1", NOW + 11, &acc).await,
        Err(StoreError::Invitation(InvitationState::Used))
    ));
    let stored = store.account_by_email(" Nurse@Example.nz").await?.unwrap();
    assert_eq!(stored.password_hash.as_deref(), Some("$argon2id$fake"));
    let listed = store.list_staff(&grant).await?;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].active);
    Ok(())
}

/// A practice's patients come a page at a time, searched by name or NHI (LIKE's own characters
/// match literally).
async fn patient_lists_come_a_page_at_a_time(store: Arc<dyn Store>) -> Result<()> {
    let a = make_practice(&store, "FAA111-A").await?;
    let enrol = authorize::<EnrolPatient, _>(&admin_of(a), a, &*store).await?;
    let mut p1 = new_patient("ZZZ0016", "one@example.nz");
    p1.name = PersonName::parse("Mere Smith")?;
    let p2 = new_patient("ZBN77VL", "two@example.nz");
    store.enrol_patient(&enrol, &p1, &invite(InvitationPurpose::ActivatePatient, b"q1", "one@example.nz")).await?;
    store.enrol_patient(&enrol, &p2, &invite(InvitationPurpose::ActivatePatient, b"q2", "two@example.nz")).await?;
    let list = authorize::<ListPracticePatients, _>(&admin_of(a), a, &*store).await?;
    let page = |search: &str, offset, limit| PatientQuery { search: search.into(), offset, limit };
    let (first, total) = store.list_patients(&list, &page("", 0, 1)).await?;
    let (second, _) = store.list_patients(&list, &page("", 1, 1)).await?;
    assert_eq!((first.len(), second.len(), total), (1, 1, 2));
    assert_eq!([first[0].id, second[0].id], [p2.id, p1.id], "in name order, a page at a time");
    let ids = |r: (Vec<PatientRow>, i64)| r.0.iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_patients(&list, &page("zbn7", 0, 50)).await?), [p2.id], "by the start of an NHI");
    assert_eq!(ids(store.list_patients(&list, &page("AROHA", 0, 50)).await?), [p2.id], "by part of a name");
    assert_eq!(ids(store.list_patients(&list, &page("mere", 0, 50)).await?), [p1.id]);
    assert_eq!(store.list_patients(&list, &page("%", 0, 50)).await?.1, 0, "% is matched as itself");
    assert_eq!(store.list_patients(&list, &page("_", 0, 50)).await?.1, 0, "_ too");
    let (past, total) = store.list_patients(&list, &page("", 5, 50)).await?;
    assert_eq!((past.len(), total), (0, 2), "past the end: nothing");
    Ok(())
}

async fn enrolment_is_scoped_to_the_practice(store: Arc<dyn Store>) -> Result<()> {
    let a = make_practice(&store, "FAA111-A").await?;
    let b = make_practice(&store, "FBB222-B").await?;
    let enrol_a = authorize::<EnrolPatient, _>(&admin_of(a), a, &*store).await?;
    let enrol_b = authorize::<EnrolPatient, _>(&admin_of(b), b, &*store).await?;

    let p1 = new_patient("ZZZ0016", "one@example.nz");
    let p2 = new_patient("ZBN77VL", "two@example.nz");
    assert_eq!(
        store
            .enrol_patient(&enrol_a, &p1, &invite(InvitationPurpose::ActivatePatient, b"p1", "one@example.nz"))
            .await?,
        Enrolled::New(p1.id)
    );
    assert_eq!(
        store
            .enrol_patient(&enrol_b, &p2, &invite(InvitationPurpose::ActivatePatient, b"p2", "two@example.nz"))
            .await?,
        Enrolled::New(p2.id)
    );
    // The same NHI at another practice is only a request, whatever the email; a wrong name is
    // recorded as such (and never put to the holder), and a right one then replaces it.
    let mut wrong = new_patient("zzz0016", "other@example.nz");
    wrong.name = PersonName::parse("Guess Name")?;
    let p1_again = new_patient("zzz0016", "other@example.nz");
    let ask = async |p: &NewPatient, t: &'static [u8]| {
        store.enrol_patient(&enrol_b, p, &invite(InvitationPurpose::ActivatePatient, t, "other@example.nz")).await
    };
    assert_eq!(ask(&wrong, b"p3").await?, Enrolled::Requested { patient: p1.id, identity_matched: false, fresh: true });
    assert_eq!(
        ask(&p1_again, b"p4").await?,
        Enrolled::Requested { patient: p1.id, identity_matched: true, fresh: true }
    );
    assert_eq!(
        ask(&wrong, b"p5").await?,
        Enrolled::Requested { patient: p1.id, identity_matched: false, fresh: false }
    );
    assert_eq!(store.pending_mail_count().await?, 2, "only new patients are sent an activation link");
    let list_b = authorize::<ListPracticePatients, _>(&admin_of(b), b, &*store).await?;
    assert!(
        store.list_patients(&list_b, &PatientQuery::default()).await?.0.iter().all(|p| p.id != p1.id),
        "B has nothing yet"
    );
    let waiting = store.awaiting_patients(&list_b, NOW).await?;
    assert_eq!(waiting.iter().map(|a| a.nhi.as_str()).collect::<Vec<_>>(), ["ZZZ0016"]);
    // The holder sees B's request and accepts it: then B has the enrolment.
    let holder = Principal::Patient { account: p1.account, session: SessionId::random(), patient: p1.id };
    let review = authorize::<authz::ReviewEnrolmentRequests, _>(&holder, p1.id, &*store).await?;
    let asking = store.enrolment_requests(&review, NOW).await?;
    assert_eq!(asking.iter().map(|r| r.practice).collect::<Vec<_>>(), [b]);
    assert!(store.enrolment_requests(&review, NOW + 31 * 86_400).await?.is_empty(), "a request lapses");
    let p2_holder = Principal::Patient { account: p2.account, session: SessionId::random(), patient: p2.id };
    let stranger = authorize::<authz::AnswerEnrolmentRequest, _>(&p2_holder, b, &*store).await?;
    assert!(matches!(store.answer_enrolment_request(&stranger, true, NOW).await, Err(StoreError::NotFound)));
    let answer = authorize::<authz::AnswerEnrolmentRequest, _>(&holder, b, &*store).await?;
    store.answer_enrolment_request(&answer, true, NOW).await?;
    assert!(matches!(store.answer_enrolment_request(&answer, false, NOW).await, Err(StoreError::NotFound)));
    assert!(store.awaiting_patients(&list_b, NOW).await?.is_empty());
    assert_eq!(ask(&p1_again, b"p6").await?, Enrolled::AlreadyEnrolled(p1.id));
    assert!(matches!(ask(&wrong, b"p7").await, Err(StoreError::Conflict("identity"))), "B sees the record now");

    let list_a = authorize::<ListPracticePatients, _>(&admin_of(a), a, &*store).await?;
    let list_b = authorize::<ListPracticePatients, _>(&admin_of(b), b, &*store).await?;
    let in_a: Vec<_> =
        store.list_patients(&list_a, &PatientQuery::default()).await?.0.into_iter().map(|p| p.id).collect();
    let mut in_b: Vec<_> =
        store.list_patients(&list_b, &PatientQuery::default()).await?.0.into_iter().map(|p| p.id).collect();
    in_b.sort();
    let mut want_b = vec![p1.id, p2.id];
    want_b.sort();
    assert_eq!(in_a, vec![p1.id]);
    assert_eq!(in_b, want_b);

    // Staff of A may see p1 but not p2; the relations the policy reads come from the store.
    assert!(authorize::<ViewPatient, _>(&admin_of(a), p2.id, &*store).await.is_err());
    let view = authorize::<ViewPatient, _>(&admin_of(a), p1.id, &*store).await?;
    let row = store.patient(&view).await?;
    assert_eq!((row.nhi.as_str(), row.email.as_str(), row.active), ("ZZZ0016", "one@example.nz", false));
    assert_eq!(store.patient_for_account(p1.account).await?, Some(p1.id));
    assert_eq!(store.patient_for_account(AccountId::random()).await?, None);

    // An NHI alone joins nothing: with another name it is only a request, never put to the holder.
    let mut imposter = new_patient("ZBN77VL", "imp@example.nz");
    imposter.name = PersonName::parse("Someone Else").unwrap();
    assert_eq!(
        store
            .enrol_patient(&enrol_a, &imposter, &invite(InvitationPurpose::ActivatePatient, b"p6", "imp@example.nz"))
            .await?,
        Enrolled::Requested { patient: p2.id, identity_matched: false, fresh: true }
    );
    assert_eq!(store.list_patients(&list_a, &PatientQuery::default()).await?.0.len(), 1);
    // The same email for a new NHI is refused and leaves nothing half-made.
    let clash = new_patient("ZAA0105", "one@example.nz");
    assert!(matches!(
        store.enrol_patient(&enrol_a, &clash, &invite(InvitationPurpose::ActivatePatient, b"p5", "x@example.nz")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.list_patients(&list_a, &PatientQuery::default()).await?.0.len(), 1);
    Ok(())
}

async fn sessions_expire_and_end(store: Arc<dyn Store>) -> Result<()> {
    let op = make_operator(&store, "op@example.nz", b"op").await?;
    let other = make_operator(&store, "op2@example.nz", b"op2").await?;
    let mk = |tok: &[u8], acct: AccountId| NewSession {
        id: SessionId::random(),
        token_hash: tok.to_vec(),
        account: acct,
        created_at: NOW,
        absolute_expires_at: NOW + 1000,
        ip: "192.0.2.1".into(),
        user_agent: "test".into(),
        mfa_at: None,
        setup_ok_at: None,
        mfa_passkey: false,
    };
    let s1 = mk(b"s1", op);
    let s2 = mk(b"s2", op);
    let s3 = mk(b"s3", other);
    for s in [&s1, &s2, &s3] {
        store.create_session(s).await?;
    }
    assert_eq!(store.live_session(b"s1", NOW + 1, NOW - 100).await?.unwrap().id, s1.id);
    assert!(store.live_session(b"nope", NOW + 1, NOW - 100).await?.is_none());
    assert!(store.live_session(b"s1", NOW + 1, NOW).await?.is_none(), "idle past the cutoff");
    assert!(store.live_session(b"s1", NOW + 1000, NOW - 100).await?.is_none(), "past absolute expiry");
    store.touch_session(s1.id, NOW + 50).await?;
    assert!(store.live_session(b"s1", NOW + 60, NOW + 40).await?.is_some(), "touching keeps it alive");
    assert_eq!(store.list_sessions(op, NOW + 60, NOW - 100).await?.first().unwrap().id, s1.id);

    assert!(!store.end_session(op, s3.id, NOW).await?, "one account cannot end another's session");
    assert!(store.live_session(b"s3", NOW + 1, NOW - 100).await?.is_some());
    assert!(store.end_session(op, s2.id, NOW).await?);
    assert!(!store.end_session(op, s2.id, NOW).await?);
    assert!(store.live_session(b"s2", NOW + 1, NOW - 100).await?.is_none());
    store.create_session(&mk(b"s4", op)).await?;
    assert_eq!(store.end_other_sessions(op, Some(s1.id), NOW).await?, 1);
    assert!(store.live_session(b"s1", NOW + 1, NOW - 100).await?.is_some());
    assert_eq!(store.end_other_sessions(op, None, NOW).await?, 1);
    assert!(store.list_sessions(op, NOW + 1, NOW - 100).await?.is_empty());
    assert_eq!(store.list_sessions(other, NOW + 1, NOW - 100).await?.len(), 1);

    // A disabled account: its sessions end, it gets no new one (whatever proved who it was),
    // and its unused links die; enabled again, it signs in again but the dead links stay dead.
    let mail = NewMail {
        id: uuid::Uuid::new_v4(),
        recipient: "other@example.nz".into(),
        subject: "Choose a new Tiaki password".into(),
        body: "a link".into(),
        created_at: NOW,
        notice: None,
        deliver: true,
    };
    store.create_link(LinkKind::PasswordReset, b"reset-other", other, (NOW, NOW + 3600), &mail).await?;
    store.spend_decoy_link(LinkKind::PasswordReset, b"decoy", NOW).await?;
    assert!(store.use_link(LinkKind::PasswordReset, b"decoy", NOW, None).await?.is_none(), "a decoy never works");
    let accounts = console::manage_accounts();
    assert!(store.set_account_disabled(&accounts, other, Some("password stolen"), NOW).await?);
    assert!(!store.set_account_disabled(&accounts, other, Some("again"), NOW).await?, "already disabled");
    assert_eq!(store.disabled_reason(&accounts, other).await?.as_deref(), Some("password stolen"));
    assert!(store.live_session(b"s3", NOW + 1, NOW - 100).await?.is_none(), "its session ended");
    assert!(matches!(store.create_session(&mk(b"s5", other)).await, Err(StoreError::NotFound)));
    assert!(store.peek_link(LinkKind::PasswordReset, b"reset-other", NOW + 1).await?.is_none());
    assert!(store.set_account_disabled(&accounts, other, None, NOW + 2).await?);
    assert_eq!(store.disabled_reason(&accounts, other).await?, None);
    store.create_session(&mk(b"s6", other)).await?;
    assert!(store.peek_link(LinkKind::PasswordReset, b"reset-other", NOW + 3).await?.is_none());
    Ok(())
}

async fn outbox_leases_retries_and_clears(store: Arc<dyn Store>) -> Result<()> {
    for i in 0..3 {
        store
            .enqueue_mail(&NewMail {
                id: uuid::Uuid::new_v4(),
                recipient: format!("r{i}@example.nz"),
                subject: "s".into(),
                body: format!("body {i}"),
                created_at: NOW + i,
                notice: None,
                deliver: true,
            })
            .await?;
    }
    let first = store.claim_mail(NOW + 5, NOW + 65, 2).await?;
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].attempts, 1);
    let second = store.claim_mail(NOW + 5, NOW + 65, 10).await?;
    assert_eq!(second.len(), 1, "leased messages are not handed out twice");
    assert!(store.claim_mail(NOW + 6, NOW + 66, 10).await?.is_empty());
    store.mail_sent(first[0].id, NOW + 6).await?;
    store.mail_failed(first[1].id, NOW + 100, "connection refused").await?;
    assert!(
        store.claim_mail(NOW + 70, NOW + 130, 10).await?.iter().all(|m| m.id == second[0].id),
        "a failed message waits for its retry time"
    );
    let retry = store.claim_mail(NOW + 200, NOW + 260, 10).await?;
    let again = retry.iter().find(|m| m.id == first[1].id).unwrap();
    assert_eq!(again.attempts, 2);
    assert_eq!(again.body, "body 1");
    assert_eq!(store.pending_mail_count().await?, 2);
    Ok(())
}

async fn first_operator_link_is_replaced_and_creates_the_account(store: Arc<dyn Store>) -> Result<()> {
    let mut first = invite(InvitationPurpose::FirstOperator, b"boot-1", "");
    first.mail = None;
    store.replace_first_operator_invitation(&first).await?;
    let mut second = invite(InvitationPurpose::FirstOperator, b"boot-2", "");
    second.mail = None;
    store.replace_first_operator_invitation(&second).await?;
    assert!(matches!(store.invitation(b"boot-1", NOW).await, Err(StoreError::Invitation(InvitationState::Unknown))));
    assert!(store.invitation(b"boot-2", NOW).await?.account.is_none());
    assert_eq!(store.active_operator_count().await?, 0);
    let op = account(AccountKind::Operator, "first@example.nz");
    let acc = Acceptance { password_hash: "$argon2id$x".into(), first_operator: Some(op.clone()) };
    assert_eq!(store.accept_invitation(b"boot-2", NOW, &acc).await?, op.id);
    assert_eq!(store.active_operator_count().await?, 1);
    assert_eq!(store.account(op.id).await?.unwrap().kind, AccountKind::Operator);
    assert_eq!(store.pending_mail_count().await?, 0);
    Ok(())
}

async fn concurrent_use_of_one_link_succeeds_once(store: Arc<dyn Store>) -> Result<()> {
    let op = account(AccountKind::Operator, "race@example.nz");
    store
        .create_operator(
            &console::manage_operators(),
            &op,
            &invite(InvitationPurpose::JoinOperator, b"race", "race@example.nz"),
        )
        .await?;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let acc = Acceptance { password_hash: format!("hash-{i}"), first_operator: None };
            s.accept_invitation(b"race", NOW, &acc).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await? {
            Ok(_) => ok += 1,
            Err(StoreError::Invitation(InvitationState::Used)) => {}
            Err(e) => panic!("unexpected: {e}"),
        }
    }
    assert_eq!(ok, 1);
    Ok(())
}

fn event(i: i64, patient: Option<&str>, object_type: &str) -> AuditEvent {
    AuditEvent {
        id: format!("00000000-0000-4000-8000-{i:012}"),
        at_ms: 1_000 + i,
        actor_account: Some("acct".into()),
        actor_role: "patient".into(),
        actor_practice: None,
        session: Some("sess".into()),
        ip: "192.0.2.1".into(),
        user_agent: "ua\nwith newline".into(),
        on_behalf: None,
        action: "read".into(),
        object_type: object_type.into(),
        object_id: format!("obj-{i}"),
        patient: patient.map(str::to_owned),
        practice: None,
        outcome: "allowed".into(),
        request_id: format!("req-{i}"),
        module: domain::ObjectKind::parse(object_type).map_or("identity", |k| k.module_before_v2().code()).into(),
        format: audit::event::FORMAT_V2,
    }
}

async fn audit_events_are_sequenced_into_one_merkle_tree(store: Arc<dyn Store>) -> Result<()> {
    use audit::merkle::{self, Accumulator, Nodes};
    let events: Vec<AuditEvent> = (0..37).map(|i| event(i, Some("p1"), "patient")).collect();
    store.append_audit_events(&events[..20]).await?;
    assert_eq!(store.audit_tree_size().await?, 0, "appended events wait for the sequencer");
    let (size, root) = store.sequence_audit(13).await?;
    assert_eq!(size, 13);
    store.append_audit_events(&events[20..]).await?;
    let (size, root2) = store.sequence_audit(1000).await?;
    assert_eq!(size, 37);
    assert_eq!(store.sequence_audit(1000).await?.0, 37, "nothing left to sequence");
    // The tree is exactly RFC 9162's over the canonical events, in time order.
    let mut acc = Accumulator::new();
    for e in &events {
        acc.push(e.leaf_hash());
    }
    assert_eq!(root2, acc.root());
    let mut first13 = Accumulator::new();
    for e in &events[..13] {
        first13.push(e.leaf_hash());
    }
    assert_eq!(root, first13.root());
    // Stored events read back identically, and the tree's leaves are their hashes.
    let stored = store.sequenced_events(0, 100).await?;
    assert_eq!(stored.len(), 37);
    let leaves = store.audit_node_range(0, 0, 37).await?;
    for (i, s) in stored.iter().enumerate() {
        assert_eq!(s.seq, i as u64);
        assert_eq!(s.event, events[i]);
        assert_eq!(leaves[i], (i as u64, events[i].leaf_hash()));
    }
    assert_eq!(store.audit_seq_of(&events[5].id).await?, Some(5));
    // Proofs from stored nodes verify.
    struct Loaded(std::collections::HashMap<(u32, u64), merkle::Hash>);
    impl Nodes for Loaded {
        type Error = ();
        fn perfect(&mut self, l: u32, i: u64) -> Result<merkle::Hash, ()> {
            self.0.get(&(l, i)).copied().ok_or(())
        }
    }
    let mut keys = Vec::new();
    for level in 0..6u32 {
        for idx in 0..(37u64 >> level) {
            keys.push((level, idx));
        }
    }
    let hashes = store.audit_nodes(&keys).await?;
    let mut loaded = Loaded(keys.into_iter().zip(hashes).collect());
    let proof = merkle::inclusion_proof(&mut loaded, 30, 37).map_err(|()| anyhow::anyhow!("missing node"))?;
    assert!(merkle::verify_inclusion(&events[30].leaf_hash(), 30, 37, &proof, &root2));
    let proof = merkle::consistency_proof(&mut loaded, 13, 37).map_err(|()| anyhow::anyhow!("missing node"))?;
    assert!(merkle::verify_consistency(13, 37, &root, &root2, &proof));
    // Checkpoints and cosignatures.
    store.add_checkpoint(&CheckpointRow { size: 13, root: root.to_vec(), note: "n13".into(), created_at: NOW }).await?;
    store
        .add_checkpoint(&CheckpointRow { size: 37, root: root2.to_vec(), note: "n37".into(), created_at: NOW })
        .await?;
    assert_eq!(store.latest_checkpoint().await?.map(|c| c.size), Some(37));
    assert_eq!(store.checkpoints().await?.iter().map(|c| c.size).collect::<Vec<_>>(), vec![13, 37]);
    assert_eq!(store.checkpoint_at(13).await?.map(|c| c.note), Some("n13".into()));
    assert_eq!(store.checkpoint_at(14).await?, None);
    let cosig =
        CosignatureRow { checkpoint_size: 37, witness: "w1".into(), signature_line: "line".into(), signed_at: 5 };
    store.add_cosignature(&cosig, NOW).await?;
    store.add_cosignature(&CosignatureRow { signed_at: 6, ..cosig.clone() }, NOW).await?;
    assert_eq!(store.cosignatures().await?, vec![CosignatureRow { signed_at: 6, ..cosig }]);
    // Duplicate event ids are refused and leave nothing behind.
    assert!(store.append_audit_events(&[event(99, None, "account"), events[0].clone()]).await.is_err());
    assert!(matches!(store.audit_seq_of(&event(99, None, "account").id).await, Err(StoreError::NotFound)));
    Ok(())
}

/// The job queue: an idempotency key enqueues once; a due job goes to one claimant at a time;
/// a lease that runs out lets another node take the job over; a failure retries after its
/// back-off until the attempts are spent; progress and completion need the lease.
async fn jobs_run_once_under_a_lease_with_retries(store: Arc<dyn Store>) -> Result<()> {
    let job = NewJob {
        kind: "sweep".into(),
        idempotency_key: "sweep:2026-11-27T11".into(),
        payload: "{}".into(),
        run_after: 100,
        max_attempts: 2,
    };
    assert!(store.enqueue_job(&job, "j1", 90).await?, "enqueued");
    assert!(!store.enqueue_job(&job, "j2", 91).await?, "the same key enqueues once");
    assert!(store.claim_job(&["sweep"], "node-a", 99, 160).await?.is_none(), "not due yet");
    assert!(store.claim_job(&["other"], "node-a", 100, 160).await?.is_none(), "only the kinds asked for");
    // Two nodes race for it: one wins.
    let (a, b) =
        tokio::join!(store.claim_job(&["sweep"], "node-a", 100, 160), store.claim_job(&["sweep"], "node-b", 100, 160));
    let winners = [a?, b?].into_iter().flatten().collect::<Vec<_>>();
    assert_eq!(winners.len(), 1, "one claimant at a time");
    let first = &winners[0];
    assert_eq!((first.id.as_str(), first.attempts, first.state), ("j1", 1, JobState::Running));
    let holder = first.lease_holder.clone().unwrap();
    let other = if holder == "node-a" { "node-b" } else { "node-a" };
    assert!(!store.job_progress("j1", other, 5, Some(10), 170).await?, "only the holder reports progress");
    assert!(store.job_progress("j1", &holder, 5, Some(10), 170).await?);
    // The holder goes quiet past its lease: another node takes the job over (a second attempt).
    assert!(store.claim_job(&["sweep"], other, 165, 230).await?.is_none(), "still leased");
    let taken = store.claim_job(&["sweep"], other, 171, 230).await?.expect("the lease ran out");
    assert_eq!((taken.attempts, taken.progress_done, taken.progress_total), (2, 5, Some(10)));
    assert!(!store.finish_job("j1", &holder, 172).await?, "the old holder no longer finishes it");
    // It fails on its last attempt: failed, not retried.
    assert!(store.fail_job("j1", other, "disk full", 300, 180).await?);
    let row = store.job_by_key("sweep:2026-11-27T11").await?.unwrap();
    assert_eq!((row.state, row.last_error.as_deref()), (JobState::Failed, Some("disk full")));
    assert!(store.claim_job(&["sweep"], "node-a", 1_000, 1_060).await?.is_none(), "a failed job stays failed");
    // A job with attempts left is retried after its back-off, then finished.
    let retry = NewJob { idempotency_key: "sweep:2026-11-27T12".into(), max_attempts: 3, ..job };
    store.enqueue_job(&retry, "j3", 200).await?;
    let c = store.claim_job(&["sweep"], "node-a", 200, 260).await?.unwrap();
    assert!(store.fail_job(&c.id, "node-a", "blob store unreachable", 230, 201).await?);
    assert!(store.claim_job(&["sweep"], "node-a", 229, 290).await?.is_none(), "backing off");
    let again = store.claim_job(&["sweep"], "node-a", 230, 290).await?.unwrap();
    assert_eq!(again.attempts, 2);
    assert!(store.finish_job("j3", "node-a", 231).await?);
    assert_eq!(store.job_by_key("sweep:2026-11-27T12").await?.unwrap().state, JobState::Done);
    assert!(store.claim_job(&["sweep"], "node-a", 10_000, 10_060).await?.is_none(), "done is done");
    Ok(())
}

async fn leases_go_to_one_holder_at_a_time(store: Arc<dyn Store>) -> Result<()> {
    assert!(store.take_lease("sequencer", "node-a", NOW, NOW + 30).await?);
    assert!(!store.take_lease("sequencer", "node-b", NOW + 10, NOW + 40).await?);
    assert!(store.take_lease("sequencer", "node-a", NOW + 10, NOW + 40).await?, "the holder renews");
    assert!(store.take_lease("sequencer", "node-b", NOW + 41, NOW + 70).await?, "an expired lease passes on");
    assert!(!store.take_lease("sequencer", "node-a", NOW + 42, NOW + 72).await?);
    assert!(store.take_lease("checkpointer", "node-a", NOW + 42, NOW + 72).await?, "leases are per job");
    Ok(())
}

async fn audit_history_is_per_patient_and_filtered(store: Arc<dyn Store>) -> Result<()> {
    let a = make_practice(&store, "FAA111-A").await?;
    let enrol = authorize::<EnrolPatient, _>(&admin_of(a), a, &*store).await?;
    let p1 = new_patient("ZZZ0016", "one@example.nz");
    store.enrol_patient(&enrol, &p1, &invite(InvitationPurpose::ActivatePatient, b"h1", "one@example.nz")).await?;
    let pid = p1.id.to_string();
    // What practice A's staff did, and (event 5) what another practice did for the same patient.
    let at = |mut e: AuditEvent, practice: String| {
        e.practice = Some(practice);
        e
    };
    let mut events = vec![
        at(event(1, Some(&pid), "patient"), a.to_string()),
        at(event(2, Some(&pid), "document"), a.to_string()),
        event(3, Some("someone-else"), "patient"),
    ];
    events.push(at(event(4, Some(&pid), "access_history"), a.to_string()));
    events.push(at(event(5, Some(&pid), "patient"), PracticeId::random().to_string()));
    store.append_audit_events(&events).await?;
    let grant = authorize::<authz::ViewAccessHistory, _>(&admin_of(a), p1.id, &*store).await;
    assert!(grant.is_err(), "an admin is not the privacy officer");
    let officer = Principal::Staff {
        account: AccountId::random(),
        session: SessionId::random(),
        practice: a,
        role: StaffRole::PrivacyOfficer,
    };
    let grant = authorize::<authz::ViewAccessHistory, _>(&officer, p1.id, &*store).await?;
    let all = HistoryFilter { from_ms: 0, to_ms: i64::MAX, modules: vec![], limit: 100 };
    // The same history whether no event, some or all have been filed by the tree builder.
    for filed in [0, 2, 5] {
        assert_eq!(store.sequence_audit(filed).await?.0, u64::try_from(filed)?);
        let rows = store.patient_history(&grant, &all).await?;
        let ids: Vec<&str> = rows.iter().map(|h| h.event.object_id.as_str()).collect();
        assert_eq!(ids, vec!["obj-4", "obj-2", "obj-1"], "newest first, only this patient ({filed} filed)");
        assert!(rows.iter().all(|h| h.event.ip.is_empty() && h.event.session.is_none()), "no addresses for an officer");
        let in_tree: Vec<Option<u64>> = rows.iter().map(|h| h.seq).collect();
        let f = u64::try_from(filed)?;
        let expected: Vec<Option<u64>> = [3u64, 1, 0].iter().map(|&s| (s < f).then_some(s)).collect();
        assert_eq!(in_tree, expected, "a leaf index is shown once the event is in the tree");
    }
    // The patient sees their whole history, the other practice's part and addresses included.
    let own = Principal::Patient { account: p1.account, session: SessionId::random(), patient: p1.id };
    let mine =
        store.patient_history(&authorize::<authz::ViewAccessHistory, _>(&own, p1.id, &*store).await?, &all).await?;
    let ids: Vec<&str> = mine.iter().map(|h| h.event.object_id.as_str()).collect();
    assert_eq!(ids, vec!["obj-5", "obj-4", "obj-2", "obj-1"]);
    assert!(mine.iter().all(|h| h.event.ip == "192.0.2.1"));
    let docs = HistoryFilter { modules: vec!["documents".into()], ..all.clone() };
    assert_eq!(store.patient_history(&grant, &docs).await?.len(), 1);
    let window = HistoryFilter { from_ms: 1_002, to_ms: 1_004, ..all };
    assert_eq!(store.patient_history(&grant, &window).await?.len(), 1);
    let range = store.audit_range(&console::export_audit(), 1_000, 1_004, 10).await?;
    assert_eq!(range.len(), 3);
    Ok(())
}

/// Appends from many tasks at once (as several nodes' writers would make them) number the log
/// without gaps or repeats, and every event is filed under its patient once the tree takes it.
async fn concurrent_appends_number_the_log_without_gaps(store: Arc<dyn Store>) -> Result<()> {
    let mut tasks = Vec::new();
    for t in 0..8i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for b in 0..5i64 {
                let batch: Vec<AuditEvent> =
                    (0..7).map(|k| event(t * 1_000 + b * 10 + k, Some(&format!("p{t}")), "document")).collect();
                store.append_audit_events(&batch).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    assert_eq!(store.unsequenced_audit_count().await?, 280);
    assert_eq!(store.sequence_audit(100).await?.0, 100);
    assert_eq!(store.sequence_audit(1_000).await?.0, 280);
    let stored = store.sequenced_events(0, 1_000).await?;
    let seqs: Vec<u64> = stored.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, (0..280).collect::<Vec<u64>>(), "one gap-free numbering");
    let mut ids: Vec<&str> = stored.iter().map(|s| s.event.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 280, "every event once");
    // Each task's own events keep the order it wrote them in.
    for t in 0..8 {
        let mine: Vec<&str> = stored
            .iter()
            .filter(|s| s.event.patient.as_deref() == Some(&format!("p{t}")))
            .map(|s| s.event.id.as_str())
            .collect();
        let mut sorted = mine.clone();
        sorted.sort_unstable();
        assert_eq!(mine, sorted);
    }
    Ok(())
}

/// Sign-in attempts claim their failure slot by compare-and-swap, for accounts and for emails
/// with no account; counters reset with their window and old ones are pruned.
async fn sign_in_attempts_are_claimed_one_at_a_time(store: Arc<dyn Store>) -> Result<()> {
    let id = make_operator(&store, "op@example.nz", b"op").await?;
    assert!(store.claim_sign_in_attempt(id, 0, NOW).await?);
    assert!(!store.claim_sign_in_attempt(id, 0, NOW).await?, "a count already claimed");
    assert!(store.claim_sign_in_attempt(id, 1, NOW + 1).await?);
    let a = store.account(id).await?.unwrap();
    assert_eq!((a.failed_sign_ins, a.last_failed_sign_in_at), (2, Some(NOW + 1)));
    // A right password gives its claim back.
    store.release_sign_in_attempt(id, Some(NOW)).await?;
    let a = store.account(id).await?.unwrap();
    assert_eq!((a.failed_sign_ins, a.last_failed_sign_in_at), (1, Some(NOW)));
    // Sixteen attempts at once that all read the same count: one goes on.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move { s.claim_sign_in_attempt(id, 1, NOW + 2).await }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await??);
    }
    assert_eq!(won, 1);
    // A finished sign-in clears the run, except at the cap.
    store.sign_in_succeeded(id, 100).await?;
    assert_eq!(store.account(id).await?.unwrap().failed_sign_ins, 0);
    for n in 0..100 {
        assert!(store.claim_sign_in_attempt(id, n, NOW + 3).await?);
    }
    store.sign_in_succeeded(id, 100).await?;
    assert_eq!(store.account(id).await?.unwrap().failed_sign_ins, 100, "only a new password clears the cap");
    // Emails with no account keep the same run, claimed the same way.
    assert_eq!(store.phantom_failures("mail:x").await?, None);
    assert!(store.claim_phantom_attempt("mail:x", 0, NOW).await?);
    assert!(!store.claim_phantom_attempt("mail:x", 0, NOW).await?);
    assert!(store.claim_phantom_attempt("mail:x", 1, NOW + 5).await?);
    assert_eq!(store.phantom_failures("mail:x").await?, Some((2, NOW + 5)));
    // Old counters go; the account's run does not.
    assert!(store.count_attempt("ip:192.0.2.1", 300, NOW).await?.attempts == 1);
    assert_eq!(
        store.count_attempt("ip:192.0.2.1", 300, NOW + 10).await?,
        WindowCount { attempts: 2, window_start: NOW }
    );
    assert_eq!(
        store.count_attempt("ip:192.0.2.1", 300, NOW + 300).await?,
        WindowCount { attempts: 1, window_start: NOW + 300 }
    );
    assert!(store.prune_sign_in_state(NOW + 40 * 86_400).await? >= 2);
    assert_eq!(store.phantom_failures("mail:x").await?, None);
    assert_eq!(store.account(id).await?.unwrap().failed_sign_ins, 100);
    Ok(())
}

/// A log written before events took their leaf index when appended (migrations up to 0004),
/// and before events named their module (0009): five events sequenced into the tree, three
/// still waiting. Upgrading keeps every event, every leaf index and the root, numbers the
/// waiting ones after the tree in the order the old sequencer would have taken them, and fills
/// in each old event's module without changing its leaf; new events then join the same tree.
mod upgrade {
    use super::*;
    use audit::merkle::Accumulator;

    fn hex(bytes: &[u8]) -> String {
        use std::fmt::Write;
        bytes.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Events of every kind there was, as the code before the typed vocabulary wrote them:
    /// format 1, with the module the upgrade fills in from the object kind.
    fn old_log() -> (Vec<AuditEvent>, Vec<String>) {
        let kinds =
            ["document", "patient", "account", "access_history", "enrolment", "session", "patient_key", "staff"];
        let events: Vec<AuditEvent> = (0..8)
            .map(|i| AuditEvent {
                format: audit::event::FORMAT_V1,
                ..event(i, Some(if i % 2 == 0 { "p1" } else { "p2" }), kinds[usize::try_from(i).unwrap_or(0)])
            })
            .collect();
        let mut acc = Accumulator::new();
        let mut sql = Vec::new();
        let text = |v: &Option<String>| {
            v.as_ref().map_or_else(|| "NULL".to_owned(), |s| format!("'{}'", s.replace('\'', "''")))
        };
        for (i, e) in events.iter().enumerate() {
            let sequenced = i < 5;
            let (seq, leaf) = if sequenced {
                let leaf = e.leaf_hash();
                let seq = acc.size();
                for (level, idx, hash) in std::iter::once((0, seq, leaf)).chain(acc.push(leaf)) {
                    sql.push(format!(
                        "INSERT INTO audit_nodes (level, idx, hash) VALUES ({level}, {idx}, {{hex:{}}})",
                        hex(&hash)
                    ));
                }
                (seq.to_string(), format!("{{hex:{}}}", hex(&leaf)))
            } else {
                ("NULL".to_owned(), "NULL".to_owned())
            };
            sql.push(format!(
                "INSERT INTO audit_events (id, seq, leaf_hash, at_ms, actor_account, actor_role, actor_practice, session_id, ip, user_agent, \
                 on_behalf, action, object_type, object_id, patient_id, practice_id, outcome, request_id) VALUES \
                 ('{}', {seq}, {leaf}, {}, {}, '{}', {}, {}, '{}', {}, {}, '{}', '{}', '{}', {}, {}, '{}', '{}')",
                e.id,
                e.at_ms,
                text(&e.actor_account),
                e.actor_role,
                text(&e.actor_practice),
                text(&e.session),
                e.ip,
                text(&Some(e.user_agent.clone())),
                text(&e.on_behalf),
                e.action,
                e.object_type,
                e.object_id,
                text(&e.patient),
                text(&e.practice),
                e.outcome,
                e.request_id,
            ));
        }
        // The waiting ones were written out of time order; the old sequencer took them by time.
        let n = sql.len();
        sql.swap(n - 1, n - 3);
        (events, sql)
    }

    async fn check_upgraded(store: Arc<dyn Store>, events: &[AuditEvent]) -> Result<()> {
        assert_eq!(store.audit_tree_size().await?, 5, "the tree is as it was");
        assert_eq!(store.unsequenced_audit_count().await?, 3, "the waiting events still wait");
        // The sequenced events were filed by actor (migration 0024), by session and by account;
        // the waiting ones are read from the log.
        let lead = authz::console::lead_incidents();
        for (accounts, sessions) in [(vec![], vec!["sess".to_owned()]), (vec!["acct".to_owned()], vec![])] {
            let found = store.indicator_events(&lead, 8, &accounts, &sessions, &[], false).await?;
            assert_eq!(found.iter().map(|e| e.seq).collect::<Vec<_>>(), (0..8).collect::<Vec<u64>>());
            assert!(found.iter().take(5).all(|e| e.ip.is_none()), "filed: {found:?}");
            assert!(found.iter().skip(5).all(|e| e.ip.is_some()), "from the log: {found:?}");
        }
        let mut acc = Accumulator::new();
        for e in events {
            acc.push(e.leaf_hash());
        }
        assert_eq!(
            store.sequence_audit(100).await?,
            (8, acc.root()),
            "the same tree the old sequencer would have made"
        );
        let stored = store.sequenced_events(0, 100).await?;
        assert_eq!(
            stored.iter().map(|s| s.event.clone()).collect::<Vec<_>>(),
            events,
            "every event, unchanged, in order"
        );
        let leaves = store.audit_node_range(0, 0, 8).await?;
        assert_eq!(leaves.len(), stored.len(), "a leaf for every event");
        assert!(stored.iter().zip(&leaves).all(|(s, (i, h))| *i == s.seq && *h == s.event.leaf_hash()));
        assert_eq!(store.audit_seq_of(&events[2].id).await?, Some(2));
        let modules: Vec<&str> = stored.iter().map(|s| s.event.module.as_str()).collect();
        assert_eq!(
            modules,
            ["documents", "records", "identity", "audit", "practices", "identity", "documents", "practices"],
            "each old event's module is filled in from its object kind"
        );
        // New events (format 2, committing to their module) follow on the same tree, and the
        // whole log, old leaves and new, still hashes to what a verifier recomputes.
        let new: Vec<AuditEvent> = (8..11).map(|i| event(i, Some("p1"), "document")).collect();
        store.append_audit_events(&new).await?;
        for e in &new {
            acc.push(e.leaf_hash());
        }
        assert_eq!(store.sequence_audit(100).await?, (11, acc.root()), "old and new leaves in one tree");
        let all = store.sequenced_events(0, 100).await?;
        assert_eq!(all.iter().map(|s| s.event.format).collect::<Vec<_>>(), [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2]);
        let leaves = store.audit_node_range(0, 0, 11).await?;
        assert!(all.iter().zip(&leaves).all(|(s, (i, h))| *i == s.seq && *h == s.event.leaf_hash()));
        Ok(())
    }

    /// An empty database migrated up to (not including) `version`, filled by `sql` (with
    /// `{hex:..}` for byte strings), then opened and migrated to today by the store. Returns the
    /// store and what removes the database afterwards.
    async fn upgraded_from(postgres: bool, version: i64, sql: Vec<String>) -> (Arc<dyn Store>, OldDatabase) {
        if postgres {
            let admin = pg_admin_url();
            let name = format!("tiaki_upgrade_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            let url = format!("{base}/{name}");
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let mut old = sqlx::migrate!("./migrations/postgres");
            old.migrations =
                std::borrow::Cow::Owned(old.migrations.iter().filter(|m| m.version < version).cloned().collect());
            old.run(&pool).await.unwrap();
            for q in sql {
                let q = q.replace("{hex:", "'\\x").replace('}', "'::bytea");
                sqlx::raw_sql(sqlx::AssertSqlSafe(q)).execute(&pool).await.unwrap();
            }
            pool.close().await;
            let store = connect(&url).await.unwrap();
            store.migrate().await.unwrap();
            (store, OldDatabase::Postgres(conn, name))
        } else {
            let dir = std::env::temp_dir().join(format!("tiaki-upgrade-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            let cleanup = tempdir::Dir(dir.clone());
            let url = format!("sqlite://{}/t.db", dir.display());
            let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
            let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true)).await.unwrap();
            let mut old = sqlx::migrate!("./migrations/sqlite");
            old.migrations =
                std::borrow::Cow::Owned(old.migrations.iter().filter(|m| m.version < version).cloned().collect());
            old.run(&pool).await.unwrap();
            for q in sql {
                let q = q.replace("{hex:", "X'").replace('}', "'");
                sqlx::raw_sql(sqlx::AssertSqlSafe(q)).execute(&pool).await.unwrap();
            }
            pool.close().await;
            let store = connect(&url).await.unwrap();
            store.migrate().await.unwrap();
            (store, OldDatabase::Sqlite(cleanup))
        }
    }

    /// What an upgrade test leaves behind, removed when dropped (a `PostgreSQL` database is
    /// dropped by [`OldDatabase::remove`]).
    enum OldDatabase {
        Sqlite(#[allow(dead_code)] tempdir::Dir),
        Postgres(sqlx::PgConnection, String),
    }

    impl OldDatabase {
        async fn remove(self) {
            if let Self::Postgres(mut conn, name) = self {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut conn)
                    .await;
            }
        }
    }

    async fn log_upgrades_without_loss(postgres: bool) {
        let (events, sql) = old_log();
        let (store, old) = upgraded_from(postgres, 5, sql).await;
        let result = check_upgraded(store, &events).await;
        old.remove().await;
        result.unwrap();
    }

    /// Live single-use tokens of every kind, written into the six tables that came before
    /// `single_use_tokens` (migration 0011): after the upgrade each one still works exactly
    /// once, and what it carried (a new address, failures counted, a ceremony's state) came with it.
    async fn tokens_upgrade_without_loss(postgres: bool) {
        let account = AccountId::random();
        // A UUID column is a UUID in PostgreSQL and 16 bytes in SQLite.
        let uuid = |u: uuid::Uuid| if postgres { format!("'{u}'") } else { format!("{{hex:{}}}", hex(u.as_bytes())) };
        let acc = uuid(account.as_uuid());
        let exp = NOW + 3600;
        let sql = vec![
            format!(
                "INSERT INTO accounts (id, kind, email, display_name, created_at) \
                 VALUES ({acc}, 'patient', 'old@example.nz', 'Old Tokens', {NOW})"
            ),
            format!(
                "INSERT INTO invitations (id, token_hash, purpose, account_id, created_at, expires_at) \
                 VALUES ({}, {{hex:01}}, 'activate_patient', {acc}, {NOW}, {exp})",
                uuid(uuid::Uuid::new_v4())
            ),
            format!(
                "INSERT INTO mfa_setup_links (token_hash, account_id, created_at, expires_at) VALUES ({{hex:02}}, {acc}, {NOW}, {exp})"
            ),
            format!(
                "INSERT INTO password_resets (token_hash, account_id, created_at, expires_at) VALUES ({{hex:03}}, {acc}, {NOW}, {exp})"
            ),
            format!(
                "INSERT INTO email_changes (token_hash, account_id, new_email, created_at, expires_at) \
                 VALUES ({{hex:04}}, {acc}, 'new@example.nz', {NOW}, {exp})"
            ),
            format!(
                "INSERT INTO mfa_challenges (token_hash, account_id, created_at, expires_at, failures) \
                 VALUES ({{hex:05}}, {acc}, {NOW}, {exp}, 3)"
            ),
            format!(
                "INSERT INTO webauthn_ceremonies (token_hash, account_id, purpose, state, expires_at) \
                 VALUES ({{hex:06}}, {acc}, 'register', 'state-1', {exp})"
            ),
        ];
        let (store, old) = upgraded_from(postgres, 11, sql).await;
        let result = async {
            let now = NOW + 60;
            let view = store.invitation(&[1], now).await?;
            assert_eq!((view.purpose, view.account.map(|a| a.id)), (InvitationPurpose::ActivatePatient, Some(account)));
            let someone_else = Some(AccountId::random());
            assert_eq!(store.use_link(LinkKind::FactorSetup, &[2], now, someone_else).await?, None, "not theirs");
            assert_eq!(store.use_link(LinkKind::FactorSetup, &[2], now, Some(account)).await?, Some(account));
            assert_eq!(
                store.use_link(LinkKind::FactorSetup, &[2], now, None).await?,
                None,
                "a set-up link still works once"
            );
            assert_eq!(store.peek_link(LinkKind::PasswordReset, &[3], now).await?, Some(account));
            assert_eq!(
                store.recent_mfa_failures(account, NOW).await?,
                3,
                "failures counted before the upgrade still count"
            );
            assert_eq!(store.mfa_challenge(&[5], now, 4).await?, Some(account));
            assert_eq!(store.mfa_challenge(&[5], now, 3).await?, None, "the challenge's own failures came too");
            let ceremony = store.take_ceremony(&[6], now).await?.expect("the ceremony survives");
            assert_eq!(
                (ceremony.purpose.as_str(), ceremony.state.as_str(), ceremony.account),
                ("register", "state-1", Some(account))
            );
            assert!(store.take_ceremony(&[6], now).await?.is_none(), "a ceremony is taken once");
            let changed = store.use_email_change(&[4], account, now).await?.expect("the email change survives");
            assert_eq!(changed.new_email, "new@example.nz");
            assert_eq!(store.use_email_change(&[4], account, now).await?, None);
            let acceptance = Acceptance { password_hash: "$argon2id$new".into(), first_operator: None };
            assert_eq!(store.accept_invitation(&[1], now, &acceptance).await?, account);
            assert!(matches!(store.invitation(&[1], now).await, Err(StoreError::Invitation(InvitationState::Used))));
            Ok::<_, anyhow::Error>(())
        }
        .await;
        old.remove().await;
        result.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_log_upgrades_without_loss() {
        log_upgrades_without_loss(false).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_log_upgrades_without_loss() {
        log_upgrades_without_loss(true).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_tokens_upgrade_without_loss() {
        tokens_upgrade_without_loss(false).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_tokens_upgrade_without_loss() {
        tokens_upgrade_without_loss(true).await;
    }
}

/// An item of a record as the store keeps it (its content is opaque to the store).
fn record_row(
    patient: PatientId,
    practice: PracticeId,
    kind: &str,
    source: &str,
    version: i64,
    category: RecordCategory,
) -> RecordRow {
    RecordRow {
        id: RecordId::random(),
        patient,
        practice,
        resource_type: kind.into(),
        source_id: source.into(),
        version,
        category,
        effective: Some(format!("2025-0{version}-01")),
        removed: false,
        held: category == RecordCategory::Results,
        auto_release_at: None,
        released_at: None,
        released_by: None,
        release_note: None,
        hidden_at: None,
        hidden_by: None,
        hidden_reason: None,
        group: None,
        content: format!("sealed:v1:{source}-{version}"),
        created_at: NOW,
        updated_at: NOW,
    }
}

#[expect(clippy::too_many_lines, reason = "one story of a record, step by step")]
async fn records_are_scoped_versioned_released_and_hidden(store: Arc<dyn Store>) -> Result<()> {
    use authz::{HideRecord, IngestRecords, ListHeldResults, ReadRecords, ReleaseRecord, SendRecords, UnhideRecord};
    let a = make_practice(&store, "FAA111-A").await?;
    let b = make_practice(&store, "FBB222-B").await?;
    let p1 = new_patient("ZZZ0016", "one@example.nz");
    let p2 = new_patient("ZBN77VL", "two@example.nz");
    for (practice, p, t) in [(a, &p1, b"r1"), (b, &p2, b"r2")] {
        let g = authorize::<EnrolPatient, _>(&admin_of(practice), practice, &*store).await?;
        store.enrol_patient(&g, p, &invite(InvitationPurpose::ActivatePatient, t, "x@example.nz")).await?;
    }
    let system = |practice, records| Principal::Client {
        client: ClientId::random(),
        org_id: "FAA111-A".into(),
        practice: Some(practice),
        scopes: ClientScopes { records, appointments: false },
    };
    // Only a practice's own system with the records scope, for its own enrolled patients.
    assert!(authorize::<SendRecords, _>(&system(a, false), a, &*store).await.is_err());
    assert!(authorize::<SendRecords, _>(&system(a, true), b, &*store).await.is_err());
    assert!(authorize::<IngestRecords, _>(&system(a, true), p2.id, &*store).await.is_err());
    let send = authorize::<SendRecords, _>(&system(a, true), a, &*store).await?;
    let ingest = authorize::<IngestRecords, _>(&system(a, true), p1.id, &*store).await?;

    // The records key is stored once, under a live patient key version.
    let key = RecordKeyRow { patient: p1.id, key_version: 1, wrapped_key: vec![7; 40] };
    assert!(
        !store.insert_records_key(RecordKeyGrant::Ingest(&ingest), &key, NOW).await?,
        "no patient key yet: nothing stored"
    );
    let pk = PatientKeyRow { patient: p1.id, version: 1, master_key_id: "m1".into(), wrapped: Some(vec![1; 40]) };
    assert!(store.insert_patient_key(KeyGrant::Records(&ingest), &pk, NOW).await?);
    assert!(store.insert_records_key(RecordKeyGrant::Ingest(&ingest), &key, NOW).await?);
    assert!(
        !store
            .insert_records_key(
                RecordKeyGrant::Ingest(&ingest),
                &RecordKeyRow { wrapped_key: vec![9; 40], ..key.clone() },
                NOW
            )
            .await?
    );
    let (got, under) = store.records_key(RecordKeyGrant::Ingest(&ingest)).await?.unwrap();
    assert_eq!((got, under.map(|k| k.version)), (key.clone(), Some(1)));

    // A transaction of items; the same source id again is a conflict, and nothing of it applies.
    let condition = record_row(p1.id, a, "Condition", "c1", 1, RecordCategory::Conditions);
    let report = record_row(p1.id, a, "DiagnosticReport", "r1", 1, RecordCategory::Results);
    let mut result = record_row(p1.id, a, "Observation", "o1", 1, RecordCategory::Results);
    result.group = Some(report.id);
    let put = |row: &RecordRow, expected| RecordChange::Put { row: Box::new(row.clone()), expected };
    store.apply_records(&[(&ingest, vec![put(&condition, None), put(&report, None), put(&result, None)])], NOW).await?;
    let keys = vec![("Condition".to_owned(), "c1".to_owned()), ("Observation".to_owned(), "nope".to_owned())];
    let stored = store.stored_versions(&send, &keys).await?;
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].id, stored[0].patient, stored[0].version), (condition.id, p1.id, 1));
    let other = record_row(p1.id, a, "Condition", "c2", 1, RecordCategory::Conditions);
    let again = store.apply_records(&[(&ingest, vec![put(&other, None), put(&condition, None)])], NOW).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert!(store.stored_versions(&send, &[("Condition".into(), "c2".into())]).await?.is_empty(), "all or nothing");
    // A newer version replaces the one expected; a stale expectation is a conflict.
    let v2 = RecordRow { version: 2, content: "sealed:v1:c1-2".into(), ..condition.clone() };
    store.apply_records(&[(&ingest, vec![put(&v2, Some(1))])], NOW + 1).await?;
    assert!(matches!(
        store.apply_records(&[(&ingest, vec![put(&v2, Some(1))])], NOW + 2).await,
        Err(StoreError::Conflict(_))
    ));
    // A row for another patient under this patient's grant is refused.
    let stray = record_row(p2.id, a, "Condition", "c3", 1, RecordCategory::Conditions);
    assert!(store.apply_records(&[(&ingest, vec![put(&stray, None)])], NOW).await.is_err());
    assert_eq!(store.record_owner(condition.id).await?, Some(authz::RecordOwner { patient: p1.id, practice: a }));

    // Who reads what: the patient all current items (the use case applies the rules), the
    // practice's GP what it sent; another practice's GP nothing.
    let patient = Principal::Patient { account: p1.account, session: SessionId::random(), patient: p1.id };
    let gp = |practice| Principal::Staff {
        account: AccountId::random(),
        session: SessionId::random(),
        practice,
        role: StaffRole::Gp,
    };
    assert!(authorize::<ReadRecords, _>(&gp(b), p1.id, &*store).await.is_err());
    let read = authorize::<ReadRecords, _>(&patient, p1.id, &*store).await?;
    let all = RecordFilter { category: None, limit: 100 };
    let mine = store.patient_records(&read, all).await?;
    assert_eq!(mine.len(), 3);
    assert_eq!(mine.iter().find(|r| r.id == condition.id).map(|r| r.version), Some(2));
    let results =
        store.patient_records(&read, RecordFilter { category: Some(RecordCategory::Results), limit: 100 }).await?;
    assert_eq!(results.len(), 2);
    assert!(results.iter().all(|r| r.held));

    // The queue lists the report (its result goes with it); releasing releases both, once.
    let queue = authorize::<ListHeldResults, _>(&gp(a), a, &*store).await?;
    let held = store.held_results(&queue, NOW, 10).await?;
    assert_eq!(held.iter().map(|r| r.id).collect::<Vec<_>>(), vec![report.id]);
    assert!(authorize::<ListHeldResults, _>(&gp(b), a, &*store).await.is_err());
    let release = authorize::<ReleaseRecord, _>(&gp(a), report.id, &*store).await?;
    let by = p2.account; // a real account (the clinician's, in the portal)
    assert_eq!(store.release_record(&release, by, Some("sealed:v1:note"), NOW + 5).await?, 2);
    assert_eq!(store.release_record(&release, by, None, NOW + 6).await?, 0);
    assert!(store.held_results(&queue, NOW, 10).await?.is_empty());
    let released = store.patient_records(&read, all).await?;
    assert!(released.iter().all(|r| !r.held));
    assert_eq!(
        released.iter().find(|r| r.id == report.id).and_then(|r| r.release_note.clone()).as_deref(),
        Some("sealed:v1:note")
    );
    assert!(authorize::<ReleaseRecord, _>(&gp(b), report.id, &*store).await.is_err());

    // Hidden: marked on the row (and on the report's results), once; shown again.
    let hide = authorize::<HideRecord, _>(&gp(a), report.id, &*store).await?;
    store.hide_record(&hide, by, "sealed:v1:why", NOW + 7).await?;
    assert!(matches!(store.hide_record(&hide, by, "sealed:v1:why", NOW + 8).await, Err(StoreError::Conflict(_))));
    let rows = store.patient_records(&read, all).await?;
    assert!(rows.iter().filter(|r| r.resource_type != "Condition").all(|r| r.hidden_at.is_some()));
    let unhide = authorize::<UnhideRecord, _>(&gp(a), report.id, &*store).await?;
    store.unhide_record(&unhide, NOW + 9).await?;
    assert!(store.patient_records(&read, all).await?.iter().all(|r| r.hidden_at.is_none()));
    // A result hidden by itself stays hidden when its report is hidden and shown again.
    let hide_result = authorize::<HideRecord, _>(&gp(a), result.id, &*store).await?;
    store.hide_record(&hide_result, by, "sealed:v1:own", NOW + 10).await?;
    store.hide_record(&hide, by, "sealed:v1:why", NOW + 11).await?;
    store.unhide_record(&unhide, NOW + 12).await?;
    let rows = store.patient_records(&read, all).await?;
    assert!(rows.iter().find(|r| r.id == result.id).is_some_and(|r| r.hidden_at.is_some()));
    assert!(rows.iter().find(|r| r.id == report.id).is_some_and(|r| r.hidden_at.is_none()));
    let unhide_result = authorize::<UnhideRecord, _>(&gp(a), result.id, &*store).await?;
    store.unhide_record(&unhide_result, NOW + 13).await?;

    // Removed by the sending system: gone from the patient's rows, kept for the practice.
    store
        .apply_records(
            &[(&ingest, vec![RecordChange::Remove { resource_type: "Condition".into(), source_id: "c1".into() }])],
            NOW,
        )
        .await?;
    assert_eq!(store.patient_records(&read, all).await?.len(), 2);
    let staff_read = authorize::<ReadRecords, _>(&gp(a), p1.id, &*store).await?;
    let kept = store.patient_records(&staff_read, all).await?;
    assert!(kept.iter().any(|r| r.id == condition.id && r.removed));

    // Release rules: the defaults, then the practice's own.
    assert_eq!(store.record_rules(a).await?, RecordRules::default());
    let admin_grant = authorize::<authz::SetRecordRules, _>(&admin_of(a), a, &*store).await?;
    let rules = RecordRules {
        categories: vec![RecordCategory::Allergies, RecordCategory::Results],
        auto_release_days: Some(3),
    };
    store.set_record_rules(&admin_grant, &rules, NOW).await?;
    assert_eq!(store.record_rules(a).await?, rules);
    assert_eq!(store.record_rules(b).await?, RecordRules::default());

    // Erasing the patient's keys takes the records key and the items with it.
    store.destroy_patient_keys(&console::key_custody(p1.id), NOW).await?;
    assert!(store.records_key(RecordKeyGrant::Ingest(&ingest)).await?.is_none());
    assert!(store.patient_records(&staff_read, all).await?.is_empty());
    assert_eq!(store.record_owner(condition.id).await?, None);
    Ok(())
}

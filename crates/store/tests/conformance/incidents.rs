//! Incidents' storage on both engines: the indicator accounts' and sessions' events found by
//! index below a tree size, revisions numbered once with their scope (in chunks), and campaigns
//! whose notices are released in stages, claimed by one sender at a time and settled once.

use super::*;
use store::incidents::{IncidentRow, NewCampaign, NewIncident, NewNotice, RevisionRow, ScopeObject, ScopePatient};

fn revision(incident: &str, note: &str) -> RevisionRow {
    RevisionRow {
        incident_id: incident.into(),
        revision: 0,
        indicators: "{}".into(),
        note: note.into(),
        tree_size: 10,
        root: "00".into(),
        checkpoint: "note".into(),
        digest: "d".into(),
        confirmed: 1,
        possible: 2,
        objects: 3,
        events: 4,
        created_at: 100,
        created_by: "console".into(),
    }
}

#[allow(clippy::too_many_lines, clippy::many_single_char_names)]
pub(crate) async fn incidents_keep_revisions_and_send_each_notice_once(store: Arc<dyn Store>) -> Result<()> {
    let lead = console::lead_incidents();
    // The attacker's events: by account, by session, filed below the tree the builder has built
    // (20 events) and read from the log above it; one refused and one about no patient, which
    // reach no one.
    let mut events = Vec::new();
    for i in 0..30 {
        let mut e = event(i, Some(&format!("p{}", i % 7)), "document");
        e.actor_account = Some(if i % 3 == 0 { "attacker" } else { "nurse" }.into());
        e.session = Some(if i % 5 == 0 { "stolen" } else { "other" }.into());
        e.practice = Some(format!("practice-{}", i % 2));
        if i == 9 {
            e.outcome = "denied".into();
        }
        if i == 24 {
            e.patient = None;
        }
        // Something the attacker did without a session (a system's call, say).
        if i == 27 {
            e.session = None;
        }
        events.push(e);
    }
    store.append_audit_events(&events).await?;
    let all = store.indicator_events(&lead, 30, &["attacker".into()], &["stolen".into()], &[], false).await?;
    assert_eq!(store.sequence_audit(20).await?.0, 20);
    let by_account = store.indicator_events(&lead, 20, &["attacker".into()], &[], &[], false).await?;
    assert_eq!(by_account.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![0, 3, 6, 12, 15, 18]);
    let both = store.indicator_events(&lead, 30, &["attacker".into()], &["stolen".into()], &[], false).await?;
    let seqs: Vec<u64> = both.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![0, 3, 5, 6, 10, 12, 15, 18, 20, 21, 25, 27], "each event once, in order");
    let same = |x: &store::incidents::Reached, y: &store::incidents::Reached| {
        (
            x.seq,
            x.at_ms,
            &x.account,
            &x.session,
            &x.module,
            &x.action,
            &x.object_type,
            &x.object_id,
            &x.patient,
            &x.practice,
        ) == (
            y.seq,
            y.at_ms,
            &y.account,
            &y.session,
            &y.module,
            &y.action,
            &y.object_type,
            &y.object_id,
            &y.patient,
            &y.practice,
        )
    };
    assert_eq!(all.len(), both.len(), "found the same whether filed or not");
    assert!(all.iter().zip(&both).all(|(x, y)| same(x, y)), "{all:?}\n{both:?}");
    let third = &both[1];
    let e3 = &events[3];
    assert_eq!(
        (third.account.as_deref(), third.session.as_deref(), third.object_id.as_str(), third.patient.as_str()),
        (
            e3.actor_account.as_deref(),
            e3.session.as_deref(),
            e3.object_id.as_str(),
            e3.patient.as_deref().unwrap_or_default()
        )
    );
    assert_eq!(
        (third.at_ms, third.practice.as_deref(), third.module.as_str()),
        (e3.at_ms, e3.practice.as_deref(), e3.module.as_str())
    );
    assert_eq!(third.ip, None, "filed: found by id, without its address");
    assert_eq!(both[9].ip.as_deref(), Some("192.0.2.1"), "not yet filed: read whole from the log");
    let sessionless = both.last().ok_or_else(|| anyhow::anyhow!("none"))?;
    assert_eq!(
        (sessionless.seq, sessionless.session.as_deref(), sessionless.account.as_deref()),
        (27, None, Some("attacker"))
    );
    assert_eq!(store.sequence_audit(100).await?.0, 30);
    let filed = store.indicator_events(&lead, 30, &["attacker".into()], &["stolen".into()], &[], false).await?;
    assert!(filed.len() == all.len() && filed.iter().zip(&all).all(|(x, y)| same(x, y)), "all filed: the same again");
    let by_session = store.indicator_events(&lead, 30, &[], &["stolen".into()], &[], false).await?;
    assert_eq!(by_session.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![0, 5, 10, 15, 20, 25]);
    let by_time = store.indicator_events(&lead, 30, &[], &[], &[(1_008, 1_013)], true).await?;
    assert_eq!(by_time.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![8, 10, 11, 12], "the refused one is not");
    assert!(store.indicator_events(&lead, 30, &[], &[], &[(1_010, 1_013)], false).await?.is_empty());

    // Revisions are numbered once, with their scope, many rows at a time.
    let id = "0191c2a4-0000-7000-8000-00000000000a";
    store
        .create_incident(
            &lead,
            &NewIncident {
                id: id.into(),
                title: "Stolen password".into(),
                description: "What happened".into(),
                discovered_at: 50,
                declared_at: 60,
                declared_by: "console".into(),
                from_alert: None,
            },
        )
        .await?;
    let patients: Vec<ScopePatient> = (0..700)
        .map(|i| ScopePatient {
            patient_id: format!("patient-{i:04}"),
            class: if i % 2 == 0 { "confirmed" } else { "possible" }.into(),
            why: format!("event {i}"),
        })
        .collect();
    let objects: Vec<ScopeObject> = (0..1_100)
        .map(|i| ScopeObject {
            patient_id: format!("patient-{:04}", i % 700),
            kind: "document".into(),
            object_id: format!("doc-{i:05}"),
            class: "confirmed".into(),
            category: "discharge_summary".into(),
            dated: (i % 2 == 0).then(|| "2025-03-03".to_owned()),
            controller_id: "G00001-A".into(),
            controller_name: "Te Whatu Ora".into(),
            first_seq: i,
        })
        .collect();
    assert_eq!(store.add_revision(&lead, &revision(id, "first"), &patients, &objects).await?, 1);
    assert_eq!(store.add_revision(&lead, &revision(id, "second"), &patients[..3], &[]).await?, 2);
    let revs = store.revisions(id).await?;
    assert_eq!(
        revs.iter().map(|r| (r.revision, r.note.as_str())).collect::<Vec<_>>(),
        vec![(1, "first"), (2, "second")]
    );
    assert_eq!(store.scope_patients(id, 1).await?, patients);
    assert_eq!(store.scope_patients(id, 2).await?.len(), 3);
    assert_eq!(store.scope_objects(id, 1, None).await?.len(), 1_100);
    let one = store.scope_objects(id, 1, Some("patient-0001")).await?;
    assert_eq!(one.iter().map(|o| o.object_id.as_str()).collect::<Vec<_>>(), vec!["doc-00001", "doc-00701"]);
    assert_eq!(one[0].dated, None);
    let row: IncidentRow = store.incident(id).await?.unwrap();
    assert_eq!((row.title.as_str(), row.commissioner_told_at), ("Stolen password", None));
    assert!(store.update_incident(&lead, id, "Sessions ended", Some(70), None).await?);
    assert_eq!(store.incident(id).await?.unwrap().commissioner_told_at, Some(70));

    // A campaign of 120, half released: two senders claim disjoint notices, only the first 60.
    let campaign = NewCampaign {
        id: "c1".into(),
        incident_id: id.into(),
        revision: 1,
        created_at: 100,
        created_by: "console".into(),
        per_minute: 1_000,
        released_percent: 50,
    };
    let notices: Vec<NewNotice> = (0..120)
        .map(|i| NewNotice {
            id: format!("n{i:03}"),
            patient_id: format!("patient-{i:04}"),
            class: "confirmed".into(),
            kind: "notice".into(),
            position: i,
            code_hash: format!("code-{i}").into_bytes(),
            recipient: format!("p{i}@example.nz"),
            subject: "Subject".into(),
            body: "Body".into(),
        })
        .collect();
    store.create_campaign(&lead, &campaign, &notices, &[]).await?;
    let a = store.claim_notices("c1", "node-a", 200, 500, 40).await?;
    let b = store.claim_notices("c1", "node-b", 200, 500, 40).await?;
    assert_eq!((a.len(), b.len()), (40, 20), "only the released half");
    let mut ids: Vec<&str> = a.iter().chain(&b).map(|n| n.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 60, "no notice claimed twice");
    assert!(store.claim_notices("c1", "node-c", 200, 500, 40).await?.is_empty());
    // Going out needs the claim: another holder cannot.
    assert!(!store.notice_sending(&a[0].id, "node-b", 210, None).await?);
    assert!(store.notice_sending(&a[0].id, "node-a", 210, None).await?);
    assert!(store.notice_sending(&a[1].id, "node-a", 211, Some((&a[0].id, "sent", None))).await?);
    store.settle_notice(&a[1].id, "failed", Some("550 no such mailbox"), 212).await?;
    store.settle_notice(&a[2].id, "queued", Some("421 try later"), 212).await?;
    // A lapsed claim is claimed again; one that went out ("sending") never is.
    let again = store.claim_notices("c1", "node-c", 600, 900, 100).await?;
    assert_eq!(again.len(), 58, "the 57 claims that lapsed and the one put back");
    assert!(!again.iter().any(|n| n.id == a[0].id || n.id == a[1].id));
    let c = store.campaign("c1").await?.unwrap();
    assert_eq!((c.total, c.sent, c.failed, c.waiting, c.unconfirmed), (120, 1, 1, 118, 0));
    assert!(store.release_campaign(&lead, "c1", 30, 10).await?);
    assert_eq!(store.campaign("c1").await?.unwrap().released_percent, 50, "never less released");
    // The public check finds a code by its hash; a kept notice has no body once sent.
    let code = store.notice_by_code(b"code-0").await?.unwrap();
    assert_eq!((code.state.as_str(), code.patient_id.as_str()), ("sent", "patient-0000"));
    assert!(store.notice_by_code(b"code-none").await?.is_none());
    // Cancelled only while queued, and a patient has one notice per campaign.
    let c2 = NewCampaign { id: "c2".into(), ..campaign };
    // (A correction for patient 0, whose notice went.)
    let dup = NewNotice { id: "m1".into(), code_hash: b"m1".to_vec(), ..notices[0].clone() };
    store.create_campaign(&lead, &c2, std::slice::from_ref(&dup), &["n119".into(), a[0].id.clone()]).await?;
    let listed = store.incident_notices(id).await?;
    let state = |n: &str| listed.iter().find(|x| x.id == n).map(|x| x.state.clone()).unwrap();
    assert_eq!((state("n119").as_str(), state(&a[0].id).as_str()), ("cancelled", "sent"));
    let c3 = NewCampaign { id: "c3".into(), ..c2.clone() };
    let twice = NewNotice { id: "m2".into(), code_hash: b"m2".to_vec(), ..dup.clone() };
    let again = NewNotice { id: "m3".into(), code_hash: b"m3".to_vec(), ..dup };
    assert!(store.create_campaign(&lead, &c3, &[twice, again], &[]).await.is_err(), "one notice a patient a campaign");
    assert!(store.campaign("c3").await?.is_none(), "and nothing of it is kept");
    // Nor two waiting for one person across campaigns (two started at once): patient 100's is
    // still queued in c1.
    let c4 = NewCampaign { id: "c4".into(), ..c3 };
    let waiting = NewNotice { id: "m4".into(), code_hash: b"m4".to_vec(), ..notices[100].clone() };
    assert!(store.create_campaign(&lead, &c4, &[waiting], &[]).await.is_err(), "one waiting notice a person");
    assert!(store.scope_patient(id, 1, "patient-0002").await?.is_some_and(|p| p.class == "confirmed"));
    assert!(store.scope_patient(id, 2, "patient-0600").await?.is_none());

    // What the scope looks up: patients' contacts and first practices, practices' names
    // (ids that are not there, or not ids, are left out).
    let practice = make_practice(&store, "FAA111-A").await?;
    let p = new_patient("ZZZ0016", "inc@example.nz");
    let g = authorize::<EnrolPatient, _>(&admin_of(practice), practice, &*store).await?;
    store.enrol_patient(&g, &p, &invite(InvitationPurpose::ActivatePatient, b"inc", "inc@example.nz")).await?;
    let ids = vec![p.id.to_string(), PatientId::random().to_string(), "not-an-id".to_owned()];
    let contacts = store.contacts(&ids).await?;
    assert_eq!(contacts.len(), 1);
    assert_eq!((contacts[0].email.as_str(), contacts[0].nhi.as_str()), ("inc@example.nz", "ZZZ0016"));
    assert_eq!(contacts[0].account_id, p.account.to_string());
    assert_eq!(store.first_practices(&ids).await?, vec![(p.id.to_string(), practice.to_string())]);
    let names = store.practice_names(&[practice.to_string()]).await?;
    assert_eq!(names.len(), 1);
    assert!(store.document_facts(&ids).await?.is_empty() && store.record_facts(&ids).await?.is_empty());
    Ok(())
}

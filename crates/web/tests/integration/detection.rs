//! Detection and containment drills (issue 17), through the real router over the real store:
//! (a) a stolen patient password enumerating document ids is suspended after at most 20 misses
//! and gets nothing more; (b) a staff session reading the documents of many patients is
//! suspended within 50 documents; (e) with two nodes on one database, the counts are shared and
//! a session suspended on one node is refused on the other at its next request.

use crate::support::*;
use anyhow::{Result, anyhow};
use app::domain::detection::Thresholds;
use axum::http::StatusCode;
use serde_json::Value;

/// Whether the browser's session still works.
async fn signed_in(b: &mut Browser) -> Result<bool> {
    Ok(b.get("/api/v1/me").await?.status == StatusCode::OK)
}

/// (a) and (e): someone with patient 1's password asks for other people's documents by id, from
/// two nodes in turn. Twenty refused ids end the session on both nodes; the document they
/// finally find is not served; patient 1's own other session, and everyone else, carry on.
/// Signing in again with the stolen password buys twenty more: then the account is locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enumerating_session_is_suspended_after_twenty_misses_on_every_node() -> Result<()> {
    let w = World::new().await?;
    assert_eq!(w.t.app.detection_thresholds(), Thresholds::default(), "the shipped defaults");
    let mut attacker = w.signed_in("p1@example.nz", [127, 0, 90, 1]).await?;
    let mut elsewhere = w.t.browser_on_another_node([127, 0, 90, 1]).await?;
    elsewhere.cookies.clone_from(&attacker.cookies);
    let mut owner = w.signed_in("p1@example.nz", [127, 0, 90, 2]).await?;
    let mut misses = 0;
    for n in 0..19 {
        let b = if n % 2 == 0 { &mut attacker } else { &mut elsewhere };
        let r = b.get(&format!("/documents/{}/download", app::domain::DocumentId::random())).await?;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "miss {n}");
        misses += 1;
    }
    assert!(signed_in(&mut attacker).await?, "19 misses: still signed in");
    assert!(w.t.app.recent_alerts(10).await?.is_empty());
    // The twentieth (on the other node) ends it.
    let r = elsewhere.get(&format!("/documents/{}/download", app::domain::DocumentId::random())).await?;
    misses += 1;
    assert_ne!(r.status, StatusCode::OK);
    assert_eq!(misses, 20);
    // Nothing more, on either node: not even the patient's own letter.
    let letter = format!("/documents/{}/download", w.letter1);
    for b in [&mut attacker, &mut elsewhere] {
        assert!(!signed_in(b).await?, "suspended");
        assert!(!b.get(&letter).await?.status.is_success());
    }
    let alerts = w.t.app.recent_alerts(10).await?;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!((alerts[0].rule.as_str(), alerts[0].severity.as_str()), ("enumeration", "critical"));
    assert_eq!(alerts[0].response, "suspend_session");
    assert_eq!(alerts[0].seen, 20);
    // The account's other session, and everyone else, are untouched.
    assert!(signed_in(&mut owner).await?);
    assert_eq!(owner.get(&letter).await?.status, StatusCode::OK);
    // The password is still theirs: they sign in again and go on. Twice the limit across the
    // account's sessions locks the account: every session ends and no sign-in works, until an
    // operator (having checked with the holder) enables it; the holder is told.
    let mut again = w.signed_in("p1@example.nz", [127, 0, 90, 3]).await?;
    for n in 0..19 {
        let r = again.get(&format!("/documents/{}/download", app::domain::DocumentId::random())).await?;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "second session, miss {n}");
    }
    again.get(&format!("/documents/{}/download", app::domain::DocumentId::random())).await?;
    assert!(!signed_in(&mut again).await?);
    assert!(!signed_in(&mut owner).await?, "every session of a locked account ends");
    assert_ne!(w.t.browser([127, 0, 90, 4]).sign_in("p1@example.nz", PASSWORD).await?.status, StatusCode::SEE_OTHER);
    let alerts = w.t.app.recent_alerts(10).await?;
    assert!(alerts.iter().any(|a| a.response == "lock_account" && a.seen == 40), "{alerts:?}");
    assert!(subjects(&w.t).await?.iter().any(|s| s == "Your Tiaki account has been locked"));
    // An operator enables it again; the holder signs in.
    w.t.app.console().set_account_disabled("p1@example.nz", None).await.map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!(w.t.browser([127, 0, 90, 5]).sign_in("p1@example.nz", PASSWORD).await?.status, StatusCode::SEE_OTHER);
    Ok(())
}

/// (b): a member of staff's session opens one letter after another, each of a different patient.
/// It is suspended within 50 documents (at the 40th patient by default) and that read is not
/// served; a GP reading a few patients' letters, and the same GP's other session, are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_session_reading_many_patients_documents_is_suspended_within_fifty() -> Result<()> {
    let w = World::new().await?;
    let mut letters = Vec::new();
    for (n, nhi) in testkit::appointments::test_nhis("ZDT", 45).iter().enumerate() {
        enrol(&w.t, w.practice_a, nhi, &format!("bulk{n}@example.nz")).await?;
        let r = push(&w.t, &w.client_a, &push_meta(nhi, &format!("bulk-{n}")), &pdf("a letter", 1200)).await?;
        assert!(r.status.is_success(), "{}", r.body);
        let v: Value = serde_json::from_str(&r.body)?;
        letters.push(v["id"].as_str().ok_or_else(|| anyhow!("{}", r.body))?.to_owned());
    }
    let mut other = w.signed_in("gp-a@example.nz", [127, 0, 91, 2]).await?;
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 91, 1]).await?;
    let mut served = 0;
    for id in &letters {
        let r = gp.get(&format!("/documents/{id}/download")).await?;
        if r.status != StatusCode::OK {
            break;
        }
        served += 1;
    }
    let limit = Thresholds::default().bulk_patients;
    assert_eq!(served, limit - 1, "the read at the threshold is not served");
    assert!(served < 50);
    assert!(!signed_in(&mut gp).await?, "suspended");
    assert!(!gp.get(&format!("/documents/{}/download", letters[0])).await?.status.is_success(), "nothing more");
    let alerts = w.t.app.recent_alerts(10).await?;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!((alerts[0].rule.as_str(), alerts[0].seen), ("bulk_document_reads", limit));
    // The GP's other session reads a few letters as in any clinic: untouched.
    for id in letters.iter().take(5) {
        assert_eq!(other.get(&format!("/documents/{id}/download")).await?.status, StatusCode::OK);
    }
    assert_eq!(w.t.app.recent_alerts(10).await?.len(), 1);
    Ok(())
}

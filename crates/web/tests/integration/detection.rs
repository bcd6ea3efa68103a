//! Detection and containment drills (issue 17), through the real router over the real store:
//! (a) a stolen patient password enumerating document ids is suspended after at most 20 misses
//! and gets nothing more; (b) a staff session reading the documents of many patients must prove
//! its second factor again within a minute and is suspended within 50 documents; (c) a
//! practice's system used far beyond its usual volume is suspended; (d) a honeytoken read is an
//! alert at once and suspends the reader; (e) with two nodes on one database, the counts are
//! shared and a session suspended on one node is refused on the other at its next request;
//! (f) a normal clinic day raises nothing above "info". Then the security console: its evidence
//! and timeline, its actions (each with a reason and a recent second factor), the kill switch,
//! and the alerts that reach the security contacts and the webhook.

use crate::support::*;
use anyhow::{Result, anyhow};
use app::domain::Clock;
use app::domain::detection::{Limit, Thresholds};
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

/// Moves the fake clock to `secs` past the start of the next hour (so a drill's windows do not
/// roll over half-way).
fn start_of_hour(w: &World, secs: i64) {
    let now = Clock::now(&w.t.clock);
    w.t.clock.advance(3600 - now.rem_euclid(3600) + secs);
}

/// Whether the browser's session must prove its second factor again before going on.
async fn asked_to_step_up(b: &mut Browser) -> Result<bool> {
    let r = b.get("/home").await?;
    if r.status != StatusCode::SEE_OTHER || r.location() != "/account/security" {
        return Ok(false);
    }
    Ok(b.get("/account/security").await?.body.contains("reading faster than a person"))
}

/// The alerts raised so far: (rule, severity, response).
async fn alerts(w: &World) -> Result<Vec<(String, String, String)>> {
    Ok(w.t.app.recent_alerts(100).await?.into_iter().map(|a| (a.rule, a.severity, a.response)).collect())
}

/// (b): a member of staff's session opens one letter after another, each of a different
/// patient, as fast as a script can. At the 30th read in a minute it must prove its second
/// factor again (a stolen session cookie stops there); the member of staff does, goes on, and
/// is suspended at the 40th patient, within 50 documents: that read is not served. The same
/// GP's other session, reading a few letters as in any clinic, is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_session_reading_many_patients_documents_is_stopped_within_fifty() -> Result<()> {
    let w = World::new().await?;
    let mut letters = Vec::new();
    for (n, nhi) in testkit::appointments::test_nhis("ZDT", 45).iter().enumerate() {
        enrol(&w.t, w.practice_a, nhi, &format!("bulk{n}@example.nz")).await?;
        let r = push(&w.t, &w.client_a, &push_meta(nhi, &format!("bulk-{n}")), &pdf("a letter", 1200)).await?;
        assert!(r.status.is_success(), "{}", r.body);
        let v: Value = serde_json::from_str(&r.body)?;
        letters.push(v["id"].as_str().ok_or_else(|| anyhow!("{}", r.body))?.to_owned());
    }
    start_of_hour(&w, 0);
    let mut other = w.signed_in("gp-a@example.nz", [127, 0, 91, 2]).await?;
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 91, 1]).await?;
    let t = Thresholds::default();
    let (mut requests, mut served, mut stepped_up) = (0, 0, false);
    let mut next = 0;
    while next < letters.len() {
        let r = gp.get(&format!("/documents/{}/download", letters[next])).await?;
        requests += 1;
        if r.status == StatusCode::OK {
            served += 1;
            next += 1;
            continue;
        }
        if !stepped_up && asked_to_step_up(&mut gp).await? {
            // Read-rate: the read that reached the limit is not served; the session goes on
            // only once the person proves their second factor again.
            assert_eq!(served, t.read_rate.at - 1, "stepped up at the read-rate limit");
            stepped_up = true;
            w.t.clock.advance(30);
            let code = testkit::totp_code(testkit::FIXTURE_TOTP, Clock::now(&w.t.clock));
            let v = gp.post("/account/security/confirm", &[("confirm_code", &code)]).await?;
            assert_eq!(v.status, StatusCode::SEE_OTHER, "{}", v.body);
            continue;
        }
        break;
    }
    assert!(stepped_up, "asked to prove the second factor again");
    assert_eq!(served, t.bulk_documents.at - 1, "the read at the 40th patient is not served");
    assert!(requests <= 50, "stopped within 50 documents ({requests} asked for)");
    assert!(!signed_in(&mut gp).await?, "suspended");
    assert!(!gp.get(&format!("/documents/{}/download", letters[0])).await?.status.is_success(), "nothing more");
    let raised = alerts(&w).await?;
    assert!(raised.contains(&("read_rate".into(), "warning".into(), "step_up".into())), "{raised:?}");
    assert!(
        raised.contains(&("bulk_document_reads".into(), "critical".into(), "suspend_session".into())),
        "{raised:?}"
    );
    // The GP's other session reads a few letters as in any clinic: untouched.
    for id in letters.iter().take(5) {
        assert_eq!(other.get(&format!("/documents/{id}/download")).await?.status, StatusCode::OK);
    }
    Ok(())
}

/// (c): practice A's system sends a handful of patients' letters an hour as usual; then, in one
/// hour, far more than ever (a stolen API token). Past both the floor and three times its
/// busiest hour of the week, it is suspended: refused until an operator resumes it, with a
/// critical alert. Practice B's system is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_system_used_far_beyond_its_usual_volume_is_suspended() -> Result<()> {
    let w = World::new().await?;
    // A small practice: the floor set low for the drill (the default is 500 patients an hour).
    let floor = 10;
    w.t.app.set_detection_thresholds(Thresholds {
        client_patients: Limit { at: floor, window_secs: 3600 },
        ..Thresholds::default()
    });
    let nhis = testkit::appointments::test_nhis("ZCV", 30);
    for (n, nhi) in nhis.iter().enumerate() {
        enrol(&w.t, w.practice_a, nhi, &format!("vol{n}@example.nz")).await?;
    }
    // Its usual hours: four patients each.
    for hour in 0..3 {
        start_of_hour(&w, 60);
        for (n, nhi) in nhis.iter().enumerate().skip(hour * 4).take(4) {
            let r = push(&w.t, &w.client_a, &push_meta(nhi, &format!("usual-{n}")), &pdf("usual", 1000)).await?;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
    }
    assert!(alerts(&w).await?.is_empty(), "a usual hour raises nothing");
    // A day later (its usual is what it did before yesterday: a stolen token cannot raise its own
    // baseline hour by hour), one hour with many more: at the floor (10) it is still within three
    // times its usual four; the twelfth patient crosses both.
    w.t.clock.advance(86_400);
    start_of_hour(&w, 60);
    let mut accepted = 0;
    for (n, nhi) in nhis.iter().enumerate() {
        let r = push(&w.t, &w.client_a, &push_meta(nhi, &format!("burst-{n}")), &pdf("burst", 1000)).await?;
        if r.status != StatusCode::CREATED {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
            break;
        }
        accepted += 1;
    }
    assert_eq!(accepted, 11, "the twelfth patient in the hour (three times the usual four) is refused");
    let r = push(&w.t, &w.client_a, &push_meta(&nhis[0], "after"), &pdf("after", 1000)).await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "suspended: refused from now on");
    let raised = alerts(&w).await?;
    assert_eq!(raised, [("client_volume".into(), "critical".into(), "suspend_client".into())]);
    // An operator resumes it after checking with the practice (the console's lift).
    let id = w.t.app.recent_alerts(1).await?[0].id.clone();
    let mut op = w.operator().await?;
    let r = op
        .post(
            &format!("/operator/security/alerts/{id}"),
            &[("action", "lift"), ("reason", "The practice migrated its patient list; confirmed by phone")],
        )
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = push(&w.t, &w.client_a, &push_meta(&nhis[0], "after"), &pdf("after", 1000)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "resumed: {}", r.body);
    Ok(())
}

/// (d): the canaries are planted where an enumerator or an insider would find them (the
/// patients and documents tables, robots.txt) and are in no one's lists; touching one is a
/// critical alert at once (well within a second) and suspends the session that did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_honeytoken_read_is_an_alert_at_once_and_suspends_the_reader() -> Result<()> {
    let w = World::new().await?;
    w.t.app.plant_honeytokens().await?;
    w.t.app.plant_honeytokens().await?;
    let tokens = w.t.app.honeytokens();
    assert_eq!(tokens.iter().filter(|(_, k)| k == "patient").count(), 1, "planted once: {tokens:?}");
    let doc = tokens
        .iter()
        .find(|(_, k)| k == "document")
        .map(|(id, _)| id.clone())
        .ok_or_else(|| anyhow!("no canary document"))?;
    let patient = tokens.iter().find(|(_, k)| k == "patient").map(|(id, _)| id.clone()).unwrap_or_default();
    let record = tokens.iter().find(|(_, k)| k == "health_record").map(|(id, _)| id.clone()).unwrap_or_default();
    // Where an enumerator looks.
    let robots = w.t.browser([127, 0, 93, 9]).get("/robots.txt").await?;
    assert!(robots.body.contains(&format!("Disallow: /documents/{doc}/download")), "{}", robots.body);
    // In no one's lists: the practices' patient lists and the GP's pages never name it.
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 93, 2]).await?;
    let practice = gp.get(&format!("/practices/{}", w.practice_a)).await?.body;
    assert!(!practice.contains("Tautahi") && !practice.contains(&patient));
    assert!(alerts(&w).await?.is_empty());
    // A patient's session asks for the canary letter (a stolen password, following robots.txt).
    let mut thief = w.signed_in("p1@example.nz", [127, 0, 93, 1]).await?;
    let started = std::time::Instant::now();
    let r = thief.get(&format!("/documents/{doc}/download")).await?;
    let raised = w.t.app.recent_alerts(10).await?;
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    assert_ne!(r.status, StatusCode::OK);
    let raised: Vec<_> = raised.iter().filter(|a| a.severity != "info").collect();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!((raised[0].rule.as_str(), raised[0].severity.as_str()), ("honeytoken", "critical"));
    assert!(!signed_in(&mut thief).await?, "the reader is suspended");
    // A member of staff browsing to the canary patient, or a record id, is suspended too.
    assert_ne!(gp.get(&format!("/patients/{patient}")).await?.status, StatusCode::OK);
    assert!(!signed_in(&mut gp).await?);
    let mut other = w.signed_in("p2@example.nz", [127, 0, 93, 3]).await?;
    other.get(&format!("/records/{record}")).await?;
    assert!(!signed_in(&mut other).await?);
    assert_eq!(w.t.app.recent_alerts(10).await?.iter().filter(|a| a.rule == "honeytoken").count(), 3);
    Ok(())
}

/// (f): a normal clinic day at realistic proportions raises nothing above "info" with the
/// defaults that ship, and suspends nothing: no session, no account, no system.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_clinic_day_raises_nothing_above_info() -> Result<()> {
    let w = World::new().await?;
    w.t.app.plant_honeytokens().await?;
    let report = testkit::normal_day::normal_day(&w, testkit::normal_day::DayPlan::default()).await?;
    assert!(report.documents_read >= 100 && report.sign_ins >= 40 && report.not_found > 0, "{report:?}");
    let raised = w.t.app.recent_alerts(1000).await?;
    let above: Vec<_> = raised.iter().filter(|a| a.severity != "info").collect();
    assert!(above.is_empty(), "a normal day raised {above:?}");
    let suspended =
        testkit::appointments::count(&w.t, "sessions WHERE suspended_at IS NOT NULL OR step_up_at IS NOT NULL").await?;
    assert_eq!(suspended, 0);
    assert_eq!(
        testkit::appointments::count(&w.t, "accounts WHERE disabled_at IS NOT NULL AND kind <> 'patient'").await?,
        0
    );
    assert_eq!(testkit::appointments::count(&w.t, "api_clients WHERE suspended_at IS NOT NULL").await?, 0);
    Ok(())
}

/// Twenty misses from patient 1's session, as in drill (a): the alert the console tests use.
async fn enumerate(w: &World, ip: [u8; 4]) -> Result<Browser> {
    let mut b = w.signed_in("p1@example.nz", ip).await?;
    for _ in 0..20 {
        b.get(&format!("/documents/{}/download", app::domain::DocumentId::random())).await?;
    }
    Ok(b)
}

/// The security console: an operator sees the alert with its evidence and timeline chart,
/// acknowledges it and lifts the suspension — each with a reason, and only with a second
/// factor proved in the last ten minutes — and each action is in the access log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_the_evidence_and_acts_with_a_reason_and_a_recent_second_factor() -> Result<()> {
    let mut w = World::new().await?;
    w.t.with_metrics()?;
    let mut suspect = enumerate(&w, [127, 0, 94, 1]).await?;
    assert!(!signed_in(&mut suspect).await?);
    let alert = w.t.app.recent_alerts(1).await?.remove(0);
    // /metrics counts alerts by rule and severity.
    let metrics = w.t.browser([127, 0, 0, 1]).get("/metrics").await?.body;
    assert!(metrics.contains(r#"tiaki_alerts_total{rule="enumeration",severity="critical"} 1"#), "{metrics}");
    let mut op = w.operator().await?;
    let page = op.get("/operator/security").await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Many refused ids from one session") && page.body.contains(&alert.id), "{}", page.body);
    let detail = op.get(&format!("/operator/security/alerts/{}", alert.id)).await?;
    assert_eq!(detail.status, StatusCode::OK);
    // The timeline: an SVG drawn on the server, with the twenty refusals in its summary.
    assert!(detail.body.contains("<svg") && detail.body.contains("<rect class=\"refused\""), "{}", detail.body);
    assert!(detail.body.contains(" reads and 20 refusals"), "{}", detail.body);
    assert!(detail.body.contains("not found"), "the events behind it are listed");
    // No reason: refused, nothing changes.
    let url = format!("/operator/security/alerts/{}", alert.id);
    let r = op.post(&url, &[("action", "acknowledge"), ("reason", "")]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(w.t.app.recent_alerts(1).await?[0].acknowledged_at.is_none());
    // Eleven minutes on, the sign-in's second factor is too old: a code must come with it.
    w.t.clock.advance(11 * 60);
    let r = op.post(&url, &[("action", "acknowledge"), ("reason", "Looking into it")]).await?;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("Confirm it"), "{}", r.body);
    let r = op.post(&url, &[("action", "acknowledge"), ("reason", "Looking into it"), ("code", "000000")]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a wrong code");
    assert!(w.t.app.recent_alerts(1).await?[0].acknowledged_at.is_none());
    w.t.clock.advance(30);
    let code = testkit::totp_code(testkit::FIXTURE_TOTP, Clock::now(&w.t.clock));
    let r = op.post(&url, &[("action", "acknowledge"), ("reason", "Looking into it"), ("code", &code)]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // Within ten minutes of that code, the lift needs none (the page again: the session's
    // token, and so its form token, changed when it proved the factor).
    op.get(&url).await?;
    let r = op.post(&url, &[("action", "lift"), ("reason", "Patient 1 mistyped links; checked by phone")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(signed_in(&mut suspect).await?, "the suspended session works again");
    let row = w.t.app.recent_alerts(1).await?.remove(0);
    assert!(row.acknowledged_at.is_some() && row.lifted_at.is_some());
    assert_eq!(row.note.as_deref(), Some("Patient 1 mistyped links; checked by phone"));
    let r = op.post(&url, &[("action", "lift"), ("reason", "again")]).await?;
    assert_eq!(r.status, StatusCode::CONFLICT, "lifted once");
    // Each action is an access event; the reasons are listed in the console.
    let bundle = w.t.app.console().export_audit_range(0, i64::MAX).await?;
    let codes: Vec<String> = bundle["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["resource"]["subtype"][0]["code"].as_str().map(str::to_owned))
        .collect();
    assert!(codes.iter().any(|c| c.contains("acknowledge")) && codes.iter().any(|c| c.contains("lift")), "{codes:?}");
    let page = op.get("/operator/security").await?.body;
    assert!(page.contains("Looking into it") && page.contains("checked by phone"));
    // Nobody else reaches the console: 404.
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 94, 3]).await?;
    assert_eq!(gp.get("/operator/security").await?.status, StatusCode::NOT_FOUND);
    assert_eq!(gp.get(&url).await?.status, StatusCode::NOT_FOUND);
    Ok(())
}

/// The kill switch: documents off for practice A. Its patients get a plain "temporarily
/// unavailable" page while the rest of the portal works; practice B is unaffected; a push for
/// practice A gets 503 with Retry-After, and the same push is accepted once it is back on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_takes_documents_off_for_one_practice_and_loses_nothing() -> Result<()> {
    let w = World::new().await?;
    let mut op = w.operator().await?;
    let practice = w.practice_a.to_string();
    // Bad input changes nothing.
    for fields in [
        vec![("module", "documents"), ("scope", practice.as_str()), ("state", "off"), ("reason", "")],
        vec![("module", "sharks"), ("scope", practice.as_str()), ("state", "off"), ("reason", "checking")],
        vec![("module", "documents"), ("scope", "not-a-practice"), ("state", "off"), ("reason", "checking")],
    ] {
        assert_eq!(op.post("/operator/security/switches", &fields).await?.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let off = [
        ("module", "documents"),
        ("scope", practice.as_str()),
        ("state", "off"),
        ("reason", "Checking a report of a wrong letter"),
    ];
    let r = op.post("/operator/security/switches", &off).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(op.post("/operator/security/switches", &off).await?.status, StatusCode::CONFLICT, "already off");
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 95, 1]).await?;
    let r = p1.get(&format!("/patients/{}/documents", w.patient1)).await?;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("temporarily unavailable"), "{}", r.body);
    assert_ne!(p1.get(&format!("/documents/{}/download", w.letter1)).await?.status, StatusCode::OK);
    assert_eq!(p1.get(&format!("/patients/{}/records", w.patient1)).await?.status, StatusCode::OK, "the rest works");
    assert_eq!(p1.get(&format!("/patients/{}", w.patient1)).await?.status, StatusCode::OK);
    let mut p2 = w.signed_in("p2@example.nz", [127, 0, 95, 2]).await?;
    assert_eq!(
        p2.get(&format!("/patients/{}/documents", w.patient2)).await?.status,
        StatusCode::OK,
        "practice B unaffected"
    );
    let r = push(&w.t, &w.client_a, &push_meta("ZZZ0016", "while-off"), &pdf("while off", 1500)).await?;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("300"));
    // Back on: the system sends the same letter again, and it is taken.
    let on = [
        ("module", "documents"),
        ("scope", practice.as_str()),
        ("state", "on"),
        ("reason", "Checked: the letter was right"),
    ];
    assert_eq!(op.post("/operator/security/switches", &on).await?.status, StatusCode::SEE_OTHER);
    let r = push(&w.t, &w.client_a, &push_meta("ZZZ0016", "while-off"), &pdf("while off", 1500)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let list = p1.get(&format!("/patients/{}/documents", w.patient1)).await?;
    assert_eq!(list.status, StatusCode::OK);
    // Health records off for practice A: its patients' record pages and its system's FHIR
    // bundles wait (503, Retry-After); its patients' documents are untouched.
    let records = [
        ("module", "records"),
        ("scope", practice.as_str()),
        ("state", "off"),
        ("reason", "Checking a result sent to the wrong patient"),
    ];
    assert_eq!(op.post("/operator/security/switches", &records).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(p1.get(&format!("/patients/{}/records", w.patient1)).await?.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(p1.get(&format!("/patients/{}/documents", w.patient1)).await?.status, StatusCode::OK);
    let bundle = testkit::records::bundle(
        "transaction",
        [
            testkit::records::patient_entry("urn:uuid:p", "ZZZ0016"),
            testkit::records::put(testkit::records::condition("c-off", "urn:uuid:p", "Asthma", "2015-03-01"), 1),
        ],
    );
    let r = testkit::records::ingest(&w.t, &w.client_a, &bundle).await?;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("300"));
    let records_on = [("module", "records"), ("scope", practice.as_str()), ("state", "on"), ("reason", "Checked")];
    assert_eq!(op.post("/operator/security/switches", &records_on).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(testkit::records::ingest(&w.t, &w.client_a, &bundle).await?.status, StatusCode::OK, "sent again, taken");
    // For everyone: practice B's patients too.
    let all = [("module", "documents"), ("scope", "*"), ("state", "off"), ("reason", "Platform-wide check")];
    assert_eq!(op.post("/operator/security/switches", &all).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(p2.get(&format!("/patients/{}/documents", w.patient2)).await?.status, StatusCode::SERVICE_UNAVAILABLE);
    Ok(())
}

/// Beyond the console, warning and critical alerts go to the security contacts by email (no
/// link, no name, no health data) and to a webhook as JSON signed with HMAC-SHA256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_the_security_contacts_and_a_signed_webhook() -> Result<()> {
    use std::sync::{Arc, Mutex};
    let w = World::new().await?;
    let received: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let sink = received.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let sig = headers.get("x-tiaki-signature").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                sink.lock().map(|mut v| v.push((sig, body))).ok();
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, hook).await });
    let secret = "a shared secret of some length";
    let settings = app::config::AlertSettings::new(
        Some(vec!["security@example.nz".into()]),
        Some(format!("http://127.0.0.1:{port}/hook")),
        Some(secret.into()),
    )
    .map_err(|e| anyhow!("{e}"))?;
    w.t.app.set_alert_settings(settings);
    enumerate(&w, [127, 0, 96, 1]).await?;
    w.t.app.console().run_due_jobs("test-node").await?;
    let got = received.lock().map(|v| v.clone()).map_err(|_| anyhow!("poisoned"))?;
    assert_eq!(got.len(), 1, "{got:?}");
    let (sig, body) = &got[0];
    assert_eq!(*sig, app::detection::signature(secret.as_bytes(), body.as_bytes()));
    let msg: app::detection::AlertMessage = serde_json::from_str(body)?;
    assert_eq!((msg.rule.as_str(), msg.severity.as_str(), msg.seen), ("enumeration", "critical", 20));
    assert!(!body.contains("p1@example.nz") && !body.contains("ZZZ0016"));
    let mail = testkit::mails(&w.t).await?;
    let alert_mail: Vec<_> = mail
        .iter()
        .filter(|(to, subject, _)| to == "security@example.nz" && subject == "Tiaki security alert")
        .collect();
    assert_eq!(alert_mail.len(), 1, "{mail:?}");
    assert!(!alert_mail[0].2.contains("://") && alert_mail[0].2.contains("critical"));
    // Config refuses half a webhook and a short secret, saying what to do.
    assert!(app::config::AlertSettings::new(None, Some("http://x.test/".into()), None).is_err());
    assert!(app::config::AlertSettings::new(None, Some("http://x.test/".into()), Some("short".into())).is_err());
    assert!(app::config::AlertSettings::new(Some(vec!["not an email".into()]), None, None).is_err());
    Ok(())
}

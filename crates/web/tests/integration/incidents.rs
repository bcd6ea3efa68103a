//! Incidents (issue 18), through the real router over the real store, with mail over real SMTP
//! (aiosmtpd on loopback). The Manage My Health drill end to end: a normal clinic day; then a
//! GP's stolen password lists and reads patients' letters from an attacker's network, and a
//! patient's stolen password reads their own hospital letter and is refused everyone else's.
//! The incident is declared from the attacker's address range; its scope has precision and
//! recall 1.0 against what the attacker was served (confirmed) and shown (possible); a staged
//! campaign tells each affected person exactly once; each patient's banner says what their
//! notice says; the organisations' and the regulator's reports agree with both. A revision
//! that moves a person sends them one correction and nobody anything else. Then the public
//! "is this genuine?" check.

use crate::mail::{delivered, free_port, start_smtp};
use crate::support::*;
use anyhow::{Result, anyhow};
use app::domain::Clock;
use app::domain::incidents::{Class, Indicators, Window};
use app::incidents::{Declaration, Remedy, Sender, Set};
use axum::http::StatusCode;
use std::collections::{BTreeMap, BTreeSet};
use testkit::normal_day::{DayPlan, normal_day};

const FROM: &str = "Tiaki <no-reply@tiaki.test>";

/// Each delivered notice: (recipient, subject, body).
fn notices(maildir: &std::path::Path) -> Vec<(String, String, String)> {
    delivered(maildir)
        .into_iter()
        .map(|m| {
            let header = |name: &str| {
                m.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned()).unwrap_or_default()
            };
            let to = header("To:");
            let to = to.rsplit_once('<').map_or(to.clone(), |(_, a)| a.trim_end_matches('>').to_owned());
            let body =
                m.split_once("\r\n\r\n").or_else(|| m.split_once("\n\n")).map_or("", |(_, b)| b).replace("\r\n", "\n");
            (to, header("Subject:"), body)
        })
        .collect()
}

/// What a notice lists as reached ("- …" lines after "shown the following information").
fn listed_items(body: &str) -> BTreeSet<String> {
    body.split_once("following information of yours:\n")
        .map_or("", |(_, rest)| rest.split("\n\n").next().unwrap_or(""))
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .map(str::to_owned)
        .collect()
}

fn code_of(body: &str) -> String {
    body.split_once("check that this message is from us:\n")
        .and_then(|(_, rest)| rest.lines().next())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A banner's heading and items, from the patient's page.
fn banner(page: &str) -> Option<(String, BTreeSet<String>)> {
    let section = page.split("<section class=\"banner").nth(1)?.split("</section>").next()?;
    let heading = section.split("<h2").nth(1)?.split_once('>')?.1.split("</h2>").next()?.to_owned();
    let items = section
        .split("<li>")
        .skip(1)
        .filter_map(|s| s.split("</li>").next())
        .map(|s| s.replace("&#39;", "'").replace("&#x27;", "'").replace("&amp;", "&"))
        .collect();
    Some((heading, items))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::too_many_lines,
    clippy::cast_possible_wrap,
    clippy::cast_precision_loss,
    clippy::many_single_char_names
)]
async fn the_mmh_drill_is_scoped_told_once_and_reported_the_same_everywhere() -> Result<()> {
    let w = World::new().await?;
    let day = normal_day(&w, DayPlan { patients_per_practice: 10, consultations: 4, children: 1, exports: 1 }).await?;
    let start = Clock::now(&w.t.clock);
    // A GP's stolen password, used from the attacker's network: eight patients' letters listed,
    // five read.
    let at_a: Vec<_> = day.patients.iter().filter(|p| p.practice == w.practice_a).collect();
    let mut gp = w.signed_in("gp-a@example.nz", [203, 0, 113, 66]).await?;
    let (mut served, mut shown) = (BTreeSet::new(), BTreeSet::new());
    // Signing in landed on the practice's page, which lists patients by name: each one listed
    // was shown to the attacker.
    let practice_page = gp.get(&format!("/practices/{}", w.practice_a)).await?.body;
    for link in practice_page.split("/patients/").skip(1) {
        if let Some(id) = link.get(..36).filter(|id| uuid::Uuid::parse_str(id).is_ok()) {
            shown.insert(id.to_owned());
        }
    }
    assert!(!shown.is_empty(), "the practice page lists patients");
    for p in at_a.iter().take(8) {
        assert_eq!(gp.get(&format!("/patients/{}/documents", p.id)).await?.status, StatusCode::OK);
        shown.insert(p.id.to_string());
    }
    for p in at_a.iter().take(5) {
        let (s, _, _) = gp.get_bytes(&format!("/documents/{}/download", p.practice_letter), None).await?;
        assert_eq!(s, StatusCode::OK);
        served.insert(p.id.to_string());
    }
    // A patient's stolen password (the Manage My Health attack): their own hospital letter is
    // served; everyone else's is refused.
    let at_b: Vec<_> = day.patients.iter().filter(|p| p.practice == w.practice_b).collect();
    let victim = at_b[0];
    let mut thief = w.signed_in(&victim.email, [203, 0, 113, 67]).await?;
    assert_eq!(thief.get(&format!("/patients/{}/documents", victim.id)).await?.status, StatusCode::OK);
    let (s, _, _) = thief.get_bytes(&format!("/documents/{}/download", victim.letter), None).await?;
    assert_eq!(s, StatusCode::OK);
    served.insert(victim.id.to_string());
    for other in at_b.iter().skip(1).take(5) {
        let (s, _, _) = thief.get_bytes(&format!("/documents/{}/download", other.letter), None).await?;
        assert_eq!(s, StatusCode::NOT_FOUND, "another patient's letter is not served");
    }
    let possible_truth: BTreeSet<String> = shown.difference(&served).cloned().collect();
    w.t.clock.advance(120);
    let end = Clock::now(&w.t.clock);

    // Declared from the attacker's address range and the hours of the attack.
    let lead = w.t.app.console().incident_lead();
    let incidents = w.t.app.incidents();
    let declaration = Declaration {
        title: "Patients' letters read with stolen passwords".into(),
        description: "Someone signed in with stolen passwords and opened patients' letters.".into(),
        discovered_at: end,
        indicators: Indicators {
            ips: vec!["203.0.113.0/24".into()],
            windows: vec![Window { from_ms: (start - 3_600) * 1000, to_ms: (end + 60) * 1000 }],
            ..Indicators::default()
        },
        from_alert: None,
    };
    let (id, first) = incidents.declare(&lead, &declaration).await.map_err(|e| anyhow!("{e:?}"))?;
    let scope = incidents.scope_of(&lead, &id, None).await.map_err(|e| anyhow!("{e:?}"))?;
    let of = |class: Class| -> BTreeSet<String> {
        scope.iter().filter(|(_, c, _)| *c == class).map(|(p, _, _)| p.clone()).collect()
    };
    let (confirmed, possible) = (of(Class::Confirmed), of(Class::Possible));
    for (name, got, truth) in [("confirmed", &confirmed, &served), ("possible", &possible, &possible_truth)] {
        let hits = got.intersection(truth).count();
        let (precision, recall) = (hits as f64 / got.len().max(1) as f64, hits as f64 / truth.len().max(1) as f64);
        eprintln!("{name}: {} found, {} true; precision {precision:.3}, recall {recall:.3}", got.len(), truth.len());
        assert_eq!(got, truth, "{name}: precision and recall must both be 1.0: {scope:?}");
    }
    let (n_confirmed, n_possible) = (served.len(), possible_truth.len());
    let everyone_told = n_confirmed + n_possible;
    assert_eq!((first.confirmed, first.possible), (n_confirmed as i64, n_possible as i64));
    assert!(scope.iter().all(|(_, _, why)| why.contains("IP 203.0.113.0/24")), "{scope:?}");
    assert!(
        incidents.verify(&lead, &id, |_, _| {}).await.map_err(|e| anyhow!("{e:?}"))?.problems.is_empty(),
        "the kept revision computes again from the log"
    );

    // Remediation for the set, recorded against the incident.
    let ended = incidents
        .remediate(&lead, &id, Set::Confirmed, &Remedy::EndSessions, "sign everyone affected out")
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    assert!(ended >= 2, "the GP's and the victim's sessions, at least: {ended}");
    assert_eq!(thief.get("/api/v1/me").await?.status, StatusCode::UNAUTHORIZED);

    // Notices: not before the Commissioner is told and the support line is set.
    let no = incidents.start_campaign(&lead, &id, 50, 10_000).await;
    assert!(matches!(no, Err(app::AppError::Conflict(_))), "{no:?}");
    incidents
        .set_details(&lead, &id, "We ended the sessions involved and are checking every access.", Some(end), false)
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    w.t.app.set_alert_settings(app::config::AlertSettings {
        support_phone: Some("0800 824 254".into()),
        ..app::config::AlertSettings::default()
    });
    let smtp = start_smtp(free_port()?).await?;
    let relay = Sender::Smtp(format!("127.0.0.1:{}", smtp.port));
    let c = incidents.start_campaign(&lead, &id, 50, 10_000).await.map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!(c.total, everyone_told as i64);
    incidents.send_campaign(&c.id, &relay, FROM, |_| {}).await.map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!(notices(&smtp.maildir).len(), everyone_told.div_ceil(2), "staged: the first half (rounded up) only");
    incidents.release(&lead, &id, &c.id, 100, 10_000).await.map_err(|e| anyhow!("{e:?}"))?;
    incidents.send_campaign(&c.id, &relay, FROM, |_| {}).await.map_err(|e| anyhow!("{e:?}"))?;
    let sent = notices(&smtp.maildir);
    let email_of: BTreeMap<String, String> = day.patients.iter().map(|p| (p.id.to_string(), p.email.clone())).collect();
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for (to, _, _) in &sent {
        *per.entry(to.clone()).or_default() += 1;
    }
    assert_eq!(per.len(), everyone_told, "every affected person");
    assert!(per.values().all(|n| *n == 1), "each exactly once: {per:?}");
    for (patient, email) in &email_of {
        let affected = confirmed.contains(patient) || possible.contains(patient);
        assert_eq!(per.contains_key(email), affected, "{email}: told if and only if affected");
    }
    assert!(incidents.start_campaign(&lead, &id, 100, 10_000).await.is_err(), "nobody is left to tell");

    // Every patient's banner says what their notice says.
    let by_email: BTreeMap<&str, &(String, String, String)> = sent.iter().map(|n| (n.0.as_str(), n)).collect();
    for (n, p) in day.patients.iter().enumerate() {
        let mut b = w.signed_in(&p.email, [10, 60, 0, u8::try_from(n % 250).unwrap_or(0) + 1]).await?;
        let page = b.get(&format!("/patients/{}", p.id)).await?.body;
        let (heading, items) = banner(&page).ok_or_else(|| anyhow!("no banner for {}", p.email))?;
        let class = scope.iter().find(|(q, _, _)| *q == p.id.to_string()).map_or(Class::NotAffected, |s| s.1);
        match (class, by_email.get(p.email.as_str())) {
            (Class::Confirmed, Some((_, subject, body))) => {
                assert!(heading.starts_with("Affected"), "{heading}");
                assert_eq!(subject, "Your health information was accessed without permission");
                assert!(!items.is_empty());
                assert_eq!(items, listed_items(body), "the banner lists what the notice lists");
            }
            (Class::Possible, Some((_, subject, _))) => {
                assert_eq!(heading, "Possibly affected");
                assert!(subject.contains("may have been"), "{subject}");
                assert!(items.is_empty());
            }
            (Class::NotAffected, None) => assert_eq!(heading, "No impact on you"),
            other => return Err(anyhow!("{}: banner and notice disagree: {other:?}", p.email)),
        }
    }

    // The organisations' reports and the regulator's agree with the banner and the campaign.
    let mut by_nhi: BTreeMap<String, Class> = BTreeMap::new();
    for (org, _, c, p) in incidents.controllers(&lead, &id).await.map_err(|e| anyhow!("{e:?}"))? {
        let r = incidents.controller_report(&lead, &id, &org).await.map_err(|e| anyhow!("{e:?}"))?;
        assert_eq!((r.confirmed, r.possible), (c, p));
        assert_eq!(r.csv().lines().count(), r.rows.len() + 1);
        for row in &r.rows {
            let e = by_nhi.entry(row.nhi.clone()).or_insert(row.class);
            if row.class.rank() > e.rank() {
                *e = row.class;
            }
        }
    }
    let count = |c: Class| by_nhi.values().filter(|x| **x == c).count();
    assert_eq!((count(Class::Confirmed), count(Class::Possible)), (confirmed.len(), possible.len()));
    assert!(
        incidents.controllers(&lead, &id).await.map_err(|e| anyhow!("{e:?}"))?.iter().any(|(o, ..)| o == "G00001-A")
    );
    let reg = incidents.regulator_report(&lead, &id).await.map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!((reg.confirmed, reg.possible), (n_confirmed as i64, n_possible as i64));
    assert_eq!(reg.notification["people_told"], everyone_told);
    assert_eq!(reg.notification["notices_sent"], everyone_told);
    assert!(reg.commissioner_told_at.is_some() && reg.who_may_hold_it.contains("203.0.113.0/24"));
    let mut op = w.operator().await?;
    let json = op.get(&format!("/operator/incidents/{id}/regulator?format=json")).await?;
    assert_eq!(json.status, StatusCode::OK);
    assert!(json.body.contains(&format!("\"confirmed\":{n_confirmed}")), "{}", json.body);
    let page = op.get(&format!("/operator/incidents/{id}")).await?;
    assert!(page.body.contains(&format!("<strong>{n_confirmed}</strong> confirmed affected")), "{}", page.body);

    // The public check: a genuine code says what it was and the person's status now.
    let victim_notice = by_email[victim.email.as_str()];
    let mut anyone = w.t.browser([198, 51, 100, 7]);
    anyone.get("/genuine").await?;
    let r = anyone.post("/genuine", &[("code", &code_of(&victim_notice.2).to_lowercase())]).await?;
    assert!(
        r.body.contains("This message is from Tiaki") && r.body.contains("<strong>Affected</strong>"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("discharge"), "no health detail on the public page");

    // A revision that takes the patient's stolen password out of the scope (it was theirs, from
    // their own new network): one correction to them, nothing to anyone else.
    let mut narrower = first.indicators.clone();
    narrower.ips = vec!["203.0.113.66/32".into()];
    let second = incidents
        .revise(&lead, &id, &narrower, "the .67 address was the patient's own")
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!((second.confirmed, second.possible), (n_confirmed as i64 - 1, n_possible as i64));
    let diff = incidents.diff(&lead, &id, 1, 2).await.map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!(diff.moved.len(), 1);
    assert_eq!(
        (diff.moved[0].patient_id.clone(), diff.moved[0].from, diff.moved[0].to),
        (victim.id.to_string(), Class::Confirmed, Class::NotAffected)
    );
    assert!(
        diff.removed.contains(&"IP 203.0.113.0/24".to_owned()) && diff.added.contains(&"IP 203.0.113.66/32".to_owned())
    );
    let c2 = incidents.start_campaign(&lead, &id, 100, 10_000).await.map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!(c2.total, 1);
    incidents.send_campaign(&c2.id, &relay, FROM, |_| {}).await.map_err(|e| anyhow!("{e:?}"))?;
    let after = notices(&smtp.maildir);
    assert_eq!(after.len(), sent.len() + 1);
    let correction = after.iter().find(|n| n.1.contains("correction")).ok_or_else(|| anyhow!("no correction"))?;
    assert_eq!(correction.0, victim.email);
    assert!(
        correction.2.contains("We wrote to you on")
            && correction.2.contains("none of your documents or health records were reached"),
        "{}",
        correction.2
    );
    let mut b = w.signed_in(&victim.email, [10, 61, 0, 1]).await?;
    let (heading, _) =
        banner(&b.get(&format!("/patients/{}", victim.id)).await?.body).ok_or_else(|| anyhow!("no banner"))?;
    assert_eq!(heading, "No impact on you", "the banner follows the latest revision");
    let r = anyone.post("/genuine", &[("code", &code_of(&victim_notice.2))]).await?;
    assert!(
        r.body.contains("<strong>No impact</strong>"),
        "the first notice's code now gives the status now: {}",
        r.body
    );

    // A code of another incident answers for that incident.
    let other = at_a[9];
    let mut stranger = w.signed_in("nurse-a@example.nz", [192, 0, 2, 50]).await?;
    assert_eq!(stranger.get(&format!("/patients/{}/documents", other.id)).await?.status, StatusCode::OK);
    let (id2, _) = incidents
        .declare(
            &lead,
            &Declaration {
                title: "A nurse's password used from abroad".into(),
                description: "Someone used a nurse's password to list a patient's letters.".into(),
                discovered_at: Clock::now(&w.t.clock),
                indicators: Indicators {
                    ips: vec!["192.0.2.50".into()],
                    windows: vec![Window { from_ms: end * 1000, to_ms: (Clock::now(&w.t.clock) + 60) * 1000 }],
                    ..Indicators::default()
                },
                from_alert: None,
            },
        )
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    incidents
        .set_details(&lead, &id2, "We ended the session and reset the nurse's password.", Some(end), false)
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    let c3 = incidents.start_campaign(&lead, &id2, 100, 10_000).await.map_err(|e| anyhow!("{e:?}"))?;
    incidents.send_campaign(&c3.id, &relay, FROM, |_| {}).await.map_err(|e| anyhow!("{e:?}"))?;
    // The new one (the nurse's patient may have had one of the first incident too).
    let third = notices(&smtp.maildir)
        .into_iter()
        .find(|n| n.0 == other.email && !after.iter().any(|a| code_of(&a.2) == code_of(&n.2)))
        .ok_or_else(|| anyhow!("no notice"))?;
    let r = anyone.post("/genuine", &[("code", &code_of(&third.2))]).await?;
    assert!(
        r.body.contains("A nurse&#39;s password used from abroad")
            && r.body.contains("<strong>Possibly affected</strong>"),
        "{}",
        r.body
    );
    assert!(!r.body.contains("stolen passwords"), "nothing of the other incident");
    Ok(())
}

/// The public page to a guesser: a made-up code and a malformed one get the same answer, word
/// for word; after ten checks in ten minutes an address is told to wait (429), whatever it
/// types; another address is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_check_tells_a_guesser_nothing_and_is_rate_limited() -> Result<()> {
    let w = World::new().await?;
    let mut b = w.t.browser([198, 51, 100, 20]);
    let form = b.get("/genuine").await?;
    assert_eq!(form.status, StatusCode::OK);
    assert!(!form.body.contains("not a message from Tiaki"));
    let made_up = b.post("/genuine", &[("code", &app::domain::incidents::new_reference())]).await?;
    let malformed = b.post("/genuine", &[("code", "<script>alert(1)</script>")]).await?;
    let empty = b.post("/genuine", &[("code", "")]).await?;
    for r in [&made_up, &malformed, &empty] {
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("This is not a message from Tiaki"), "{}", r.body);
        assert!(r.body.contains("never asks for them"));
    }
    assert_eq!(made_up.body, malformed.body, "never-existed and malformed read the same");
    assert_eq!(made_up.body, empty.body);
    for _ in 0..7 {
        assert_eq!(
            b.post("/genuine", &[("code", &app::domain::incidents::new_reference())]).await?.status,
            StatusCode::OK
        );
    }
    let limited = b.post("/genuine", &[("code", &app::domain::incidents::new_reference())]).await?;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.body.contains("Please wait") && !limited.body.contains("not a message from Tiaki"));
    let mut other = w.t.browser([198, 51, 100, 21]);
    other.get("/genuine").await?;
    assert_eq!(other.post("/genuine", &[("code", "nope")]).await?.status, StatusCode::OK);
    w.t.clock.advance(600);
    assert_eq!(b.post("/genuine", &[("code", "nope")]).await?.status, StatusCode::OK, "a new window");
    Ok(())
}

/// Remediation "require a second factor at next sign-in", for everyone confirmed: their
/// sessions end (the thief's too); their next sign-in with the password alone reaches only
/// sign-in security, which says why; with a second factor set up from the emailed code they are
/// in again. Nobody outside the set is touched, and the incident keeps what was done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_factor_is_required_of_the_chosen_set_and_of_no_one_else() -> Result<()> {
    let w = World::new().await?;
    let day = normal_day(&w, DayPlan { patients_per_practice: 3, consultations: 1, children: 0, exports: 0 }).await?;
    let start = Clock::now(&w.t.clock);
    let at_b: Vec<_> = day.patients.iter().filter(|p| p.practice == w.practice_b).collect();
    let (victim, bystander) = (at_b[0], at_b[1]);
    let mut thief = w.signed_in(&victim.email, [203, 0, 113, 80]).await?;
    let (s, _, _) = thief.get_bytes(&format!("/documents/{}/download", victim.letter), None).await?;
    assert_eq!(s, StatusCode::OK);
    let mut other = w.signed_in(&bystander.email, [10, 62, 0, 2]).await?;
    w.t.clock.advance(60);
    let end = Clock::now(&w.t.clock);
    let lead = w.t.app.console().incident_lead();
    let incidents = w.t.app.incidents();
    let (id, first) = incidents
        .declare(
            &lead,
            &Declaration {
                title: "A patient's letter read with their stolen password".into(),
                description: "Someone signed in with a patient's password and opened their letter.".into(),
                discovered_at: end,
                indicators: Indicators {
                    ips: vec!["203.0.113.80".into()],
                    windows: vec![Window { from_ms: (start - 60) * 1000, to_ms: (end + 60) * 1000 }],
                    ..Indicators::default()
                },
                from_alert: None,
            },
        )
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!((first.confirmed, first.possible), (1, 0));
    assert!(Remedy::parse("require_a_miracle").is_err(), "an unknown step is refused");
    let touched = incidents
        .remediate(
            &lead,
            &id,
            Set::Confirmed,
            &Remedy::parse("require_second_factor").map_err(|e| anyhow!("{e:?}"))?,
            "their password is out there",
        )
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!(touched, 1, "one confirmed person");
    assert_eq!(thief.get("/api/v1/me").await?.status, StatusCode::UNAUTHORIZED, "the thief's session ended");
    let elsewhere = format!("/patients/{}", bystander.id);
    assert_eq!(other.get(&elsewhere).await?.status, StatusCode::OK, "someone outside the set carries on");
    // The next sign-in with the password alone: sign-in security only, saying why.
    let home = format!("/patients/{}", victim.id);
    let mut again = w.signed_in(&victim.email, [10, 62, 0, 3]).await?;
    for path in [home.clone(), format!("{home}/documents")] {
        let r = again.get(&path).await?;
        assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/account/security"), "{path}");
    }
    let (s, _, _) = again.get_bytes(&format!("/documents/{}/download", victim.letter), None).await?;
    assert_ne!(s, StatusCode::OK, "no letter with a password alone");
    assert!(again.get("/account/security").await?.body.contains("after a security incident"));
    let mut bystander_again = w.signed_in(&bystander.email, [10, 62, 0, 4]).await?;
    assert_eq!(bystander_again.get(&elsewhere).await?.status, StatusCode::OK, "not asked of anyone else");
    // With a second factor, set up from the emailed code, they are in.
    crate::mfa::enable_totp(&w, &mut again).await?;
    assert_eq!(again.get(&home).await?.status, StatusCode::OK);
    let mut op = w.operator().await?;
    let page = op.get(&format!("/operator/incidents/{id}")).await?.body;
    assert!(page.contains("require_second_factor") && page.contains("their password is out there"), "{page}");

    // The same scope from the thief's session, found in the log's filing by actor: the letter
    // comes with the facts the documents module keeps (its controller, the hospital), the same
    // as looking the document up.
    let store = store::connect(&w.t.url).await?;
    let events = store.sequenced_events(0, 100_000).await?;
    let session = events
        .iter()
        .find(|e| e.event.ip == "203.0.113.80")
        .and_then(|e| e.event.session.clone())
        .ok_or_else(|| anyhow!("the thief's session is in the log"))?;
    let by_session = Indicators { sessions: vec![session], ..Indicators::default() };
    let second =
        incidents.revise(&lead, &id, &by_session, "the thief's session").await.map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!((second.confirmed, second.possible), (1, 0));
    let objects = store.scope_objects(&id, second.number, Some(&victim.id.to_string())).await?;
    let letter = objects
        .iter()
        .find(|o| o.object_id == victim.letter)
        .ok_or_else(|| anyhow!("the letter is in the scope: {objects:?}"))?;
    let facts = store.document_facts(std::slice::from_ref(&victim.letter)).await?;
    assert_eq!(facts.len(), 1);
    assert_eq!(
        (&letter.category, &letter.dated, &letter.controller_id, &letter.controller_name),
        (&facts[0].category, &facts[0].dated, &facts[0].controller_id, &facts[0].controller_name)
    );
    assert_ne!(letter.controller_name, "Unknown organisation");
    assert_eq!(letter.class, "confirmed");
    Ok(())
}

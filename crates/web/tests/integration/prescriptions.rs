//! Repeat prescriptions through the real router: the long-term list (from the health record,
//! and kept by the practice), the patient's request with its fee and ready-by day, triage by a
//! nurse and a GP, and every bad request refused with nothing changed.

use crate::appointments::id_in;
use crate::support::*;
use anyhow::{Result, anyhow};
use app::domain::StaffRole;
use axum::http::StatusCode;
use testkit::appointments::count;
use testkit::records::{bundle, ingest, medication, patient_entry, put};

const P1: &str = "urn:uuid:6b1a3c0e-0000-4000-8000-000000000001";

/// The `item-<id>` checkboxes a repeats page offers.
fn items(body: &str) -> Vec<String> {
    body.split("name=\"item-").skip(1).filter_map(|s| s.split('"').next()).map(str::to_owned).collect()
}

fn request_key(body: &str) -> String {
    body.split("name=\"request_key\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default().to_owned()
}

/// A GP of practice A puts a medication on patient 1's list; patient 1 (signed in as `p`)
/// asks for it. Returns the request's id.
pub(crate) async fn one_request(w: &World, p: &mut Browser) -> Result<String> {
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 8, 1]).await?;
    let list = format!("/patients/{}/repeats/list", w.patient1);
    gp.get(&format!("/patients/{}/repeats", w.patient1)).await?;
    assert_eq!(gp.post(&list, &[("name", "Salbutamol inhaler 100 mcg")]).await?.status, StatusCode::SEE_OTHER);
    let page = p.get(&format!("/patients/{}/repeats", w.patient1)).await?;
    let item = items(&page.body).into_iter().next().ok_or_else(|| anyhow!("nothing offered: {}", page.body))?;
    let r = p
        .post(
            &format!("/patients/{}/repeats", w.patient1),
            &[(&format!("item-{item}"), "1"), ("collection", "practice"), ("request_key", &request_key(&page.body))],
        )
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    Ok(id_in(r.location()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_asks_a_nurse_prepares_a_gp_approves_and_the_patient_sees_each_step() -> Result<()> {
    let w = World::new().await?;
    staff(&w.t, w.practice_a, "nurse-a@example.nz", StaffRole::Nurse).await?;
    // The practice's system marks a medication repeat-eligible in the health record.
    let r = ingest(
        &w.t,
        &w.client_a,
        &bundle(
            "transaction",
            vec![patient_entry(P1, "ZZZ0016"), put(medication("m1", P1, "Atorvastatin 40 mg", "One at night"), 1)],
        ),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 8, 2]).await?;
    admin.get(&format!("/practices/{}/repeat-rules", w.practice_a)).await?;
    let r = admin
        .post(
            &format!("/practices/{}/repeat-rules", w.practice_a),
            &[
                ("repeats_on", "1"),
                ("fee", "15.50"),
                ("working_days", "2"),
                ("pharmacies", "Unichem Kawakawa\nKerikeri Pharmacy"),
            ],
        )
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // The GP adds one the practice keeps here, and one to ask about at the practice.
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 8, 3]).await?;
    let list = format!("/patients/{}/repeats/list", w.patient1);
    gp.get(&format!("/patients/{}/repeats", w.patient1)).await?;
    gp.post(&list, &[("name", "Metformin 500 mg")]).await?;
    gp.post(&list, &[("name", "Tramadol 50 mg"), ("excluded", "1")]).await?;
    let mut p = w.signed_in("p1@example.nz", [127, 0, 8, 4]).await?;
    let page = p.get(&format!("/patients/{}/repeats", w.patient1)).await?;
    assert!(page.body.contains("Atorvastatin 40 mg — One at night"), "{}", page.body);
    assert!(page.body.contains("Tramadol 50 mg — <strong>ask at the practice</strong>"));
    // Friday 15 January 2027: two working days is Tuesday 19 January; the fee is shown first.
    assert!(page.body.contains("$15.50") && page.body.contains("Tuesday 19 January"), "{}", page.body);
    let offered = items(&page.body);
    assert_eq!(offered.len(), 2, "the excluded one has no checkbox");
    let key = request_key(&page.body);
    let fields = [
        (format!("item-{}", offered[0]), "1".to_owned()),
        (format!("item-{}", offered[1]), "1".to_owned()),
        ("collection".into(), "pharmacy".into()),
        ("pharmacy".into(), "Kerikeri Pharmacy".into()),
        ("note".into(), "Running out on Monday".into()),
        ("request_key".into(), key.clone()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let path = format!("/patients/{}/repeats", w.patient1);
    let mut twin = p.clone();
    let news_before = mails(&w.t).await?.into_iter().filter(|m| m.1 == app::notify::NEWS_SUBJECT).count();
    // Sent twice at once (a double click): one request.
    let (first, second) = tokio::join!(p.post(&path, &fields), twin.post(&path, &fields));
    let (first, second) = (first?, second?);
    assert_eq!(
        (first.status, second.status),
        (StatusCode::SEE_OTHER, StatusCode::SEE_OTHER),
        "{} {}",
        first.body,
        second.body
    );
    assert_eq!(id_in(first.location()), id_in(second.location()));
    assert_eq!(count(&w.t, "repeat_requests").await?, 1);
    let id = id_in(first.location());
    let news: Vec<_> = mails(&w.t).await?.into_iter().filter(|m| m.1 == app::notify::NEWS_SUBJECT).collect();
    assert_eq!(news.len(), news_before + 1, "one request, one notice");
    let (_, _, body) = news.last().cloned().unwrap_or_default();
    assert!(!body.contains("http") && !body.contains("Atorvastatin") && !body.contains("prescription"), "{body}");
    let mine = p.get(&format!("/repeats/{id}")).await?;
    assert!(
        mine.body.contains("Requested")
            && mine.body.contains("Sent to Kerikeri Pharmacy")
            && mine.body.contains("Running out on Monday")
    );
    // The nurse takes it into review (but may not approve); the GP approves.
    let mut nurse = w.signed_in("nurse-a@example.nz", [127, 0, 8, 5]).await?;
    let queue = nurse.get(&format!("/practices/{}/repeats", w.practice_a)).await?;
    assert!(queue.body.contains(&format!("/repeats/{id}")), "{}", queue.body);
    assert_eq!(
        nurse.post(&format!("/repeats/{id}"), &[("action", "sent_to_pharmacy")]).await?.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(nurse.post(&format!("/repeats/{id}"), &[("action", "review")]).await?.status, StatusCode::SEE_OTHER);
    assert!(p.get(&format!("/repeats/{id}")).await?.body.contains("In review"));
    assert_eq!(
        gp.post(&format!("/repeats/{id}"), &[("action", "sent_to_pharmacy")]).await?.status,
        StatusCode::SEE_OTHER
    );
    let done = p.get(&format!("/repeats/{id}")).await?;
    assert!(done.body.contains("Approved: Sent to the pharmacy"), "{}", done.body);
    assert!(p.get(&path).await?.body.contains("last issued 15 January 2027"));
    // The practice hides the medication's record item from the patient: it leaves their list.
    let record = crate::records::id_with(
        &crate::records::listed(&mut gp, w.patient1, "?category=medications").await?,
        "Atorvastatin",
    )
    .ok_or_else(|| anyhow!("no record item"))?;
    gp.get(&format!("/records/{record}")).await?;
    let hid = gp.post(&format!("/records/{record}/hide"), &[("reason", "Discussed in person first")]).await?;
    assert_eq!(hid.status, StatusCode::SEE_OTHER, "{}", hid.body);
    let page = p.get(&path).await?;
    assert!(!page.body.contains("Atorvastatin"), "a hidden item is not on the patient's list");
    assert!(page.body.contains("Metformin 500 mg"));
    // Once approved it cannot be decided again.
    let again = gp.post(&format!("/repeats/{id}"), &[("action", "decline"), ("reason", "no")]).await?;
    assert_eq!(again.status, StatusCode::CONFLICT);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_declines_are_refused_and_change_nothing() -> Result<()> {
    let w = World::new().await?;
    let mut p = w.signed_in("p1@example.nz", [127, 0, 8, 6]).await?;
    let id = one_request(&w, &mut p).await?;
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 8, 7]).await?;
    gp.post(&format!("/patients/{}/repeats/list", w.patient1), &[("name", "Oxycodone 5 mg"), ("excluded", "1")])
        .await?;
    let path = format!("/patients/{}/repeats", w.patient1);
    let meds: Vec<(uuid::Uuid, bool)> = testkit::appointments::medications(&w.t, w.patient1.as_uuid()).await?;
    let open_item = meds.iter().find(|m| !m.1).map(|m| m.0.to_string()).unwrap_or_default();
    let excluded_item = meds.iter().find(|m| m.1).map(|m| m.0.to_string()).unwrap_or_default();
    let before = count(&w.t, "repeat_requests").await?;
    for (fields, want, words) in [
        (vec![(format!("item-{excluded_item}"), "1")], StatusCode::CONFLICT, "ask at the practice"),
        (vec![(format!("item-{open_item}"), "1")], StatusCode::CONFLICT, "already asked for one of these"),
        (vec![(format!("item-{}", uuid::Uuid::new_v4()), "1")], StatusCode::CONFLICT, "not on your list"),
        (vec![], StatusCode::UNPROCESSABLE_ENTITY, "Choose at least one medication"),
    ] {
        let mut all: Vec<(String, &str)> = fields;
        all.push(("collection".into(), "practice"));
        let key = format!("k-{}", uuid::Uuid::new_v4());
        all.push(("request_key".into(), key.as_str()));
        let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let r = p.post(&path, &all).await?;
        assert_eq!(r.status, want, "{words}: {}", r.body);
        assert!(r.body.contains(words), "{words}: {}", r.body);
        assert_eq!(count(&w.t, "repeat_requests").await?, before);
    }
    // Another patient's request is not found; a decline needs a reason the patient reads.
    let mut other = w.signed_in("p2@example.nz", [127, 0, 8, 8]).await?;
    assert_eq!(other.get(&format!("/repeats/{id}")).await?.status, StatusCode::NOT_FOUND);
    let r = gp.post(&format!("/repeats/{id}"), &[("action", "decline"), ("reason", " ")]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(&w.t, "repeat_requests WHERE status = 'requested'").await?, 1);
    let r = gp
        .post(&format!("/repeats/{id}"), &[("action", "decline"), ("reason", "Please book a medication review first.")])
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let seen = p.get(&format!("/repeats/{id}")).await?;
    assert!(seen.body.contains("Your practice declined it: Please book a medication review first."), "{}", seen.body);
    assert!(
        seen.body.contains(&format!("href=\"/patients/{}/appointments/book\"", w.patient1)),
        "the booking page one click away"
    );
    // Sent on Friday 5 February 2027, two working days is Wednesday 10 February: Waitangi Day
    // (Saturday 6th) is observed on Monday 8th.
    let friday = jiff::civil::date(2027, 2, 5)
        .at(10, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get("Pacific/Auckland")?)?
        .timestamp()
        .as_second();
    w.t.clock.advance(friday - app::domain::Clock::now(&w.t.clock));
    let mut p = w.signed_in("p1@example.nz", [127, 0, 8, 10]).await?;
    let page = p.get(&path).await?;
    assert!(page.body.contains("Expected ready by <strong>Wednesday 10 February</strong>"), "{}", page.body);
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 8, 9]).await?;
    // Switched off: the page says what to do instead, and a request is refused.
    admin.get(&format!("/practices/{}/repeat-rules", w.practice_a)).await?;
    admin
        .post(
            &format!("/practices/{}/repeat-rules", w.practice_a),
            &[("fee", "0"), ("working_days", "2"), ("pharmacies", "")],
        )
        .await?;
    let page = p.get(&path).await?;
    assert!(page.body.contains("does not take repeat prescription requests in Tiaki"), "{}", page.body);
    let r = p
        .post(&path, &[(&format!("item-{open_item}"), "1"), ("collection", "practice"), ("request_key", "k-off")])
        .await?;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("Please phone the practice"));
    Ok(())
}

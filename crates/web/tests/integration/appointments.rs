//! Appointments through the real router: the practice sets up its book, a patient books (with a
//! sealed reason), sees the confirmation, cancels; the practice runs its day; bad bookings are
//! refused and change nothing; 50 patients race for one slot; times are right across daylight
//! saving and public holidays; the practice's system exchanges the book as FHIR.

use crate::support::*;
use anyhow::{Result, anyhow};
use app::appointments::BookForm;
use app::domain::Clock;
use app::domain::{PatientId, SlotId};
use axum::http::StatusCode;
use serde_json::{Value, json};
use testkit::appointments::{Book, appointments, batch, count, set_up, slots, statuses, sync, test_nhis};

/// The slot ids a booking page offers, in order.
pub(crate) fn offered(body: &str) -> Vec<String> {
    body.split("name=\"slot\" value=\"").skip(1).filter_map(|s| s.split('"').next()).map(str::to_owned).collect()
}

/// The id in a redirect to `/appointments/<id>` (or `/repeats/<id>`).
pub(crate) fn id_in(location: &str) -> String {
    location.rsplit('/').next().unwrap_or_default().split('?').next().unwrap_or_default().to_owned()
}

async fn admin(w: &World) -> Result<Browser> {
    w.signed_in("admin-a@example.nz", [127, 0, 7, 1]).await
}

/// Practice A's book set up, and patient 1 signed in.
async fn ready(w: &World) -> Result<(Book, Browser)> {
    let mut a = admin(w).await?;
    let book = testkit::appointments::book(&w.t, &mut a, w.practice_a.as_uuid()).await?;
    Ok((book, w.signed_in("p1@example.nz", [127, 0, 7, 2]).await?))
}

/// One appointment and one repeat request of patient 1's at practice A (for the matrix).
pub(crate) async fn one_of_each(w: &World) -> Result<(String, String)> {
    let (_, mut p) = ready(w).await?;
    let page = p.get(&format!("/patients/{}/appointments/book", w.patient1)).await?;
    let slot = offered(&page.body).into_iter().next().ok_or_else(|| anyhow!("no slot offered"))?;
    let r = p.post(&format!("/patients/{}/appointments", w.patient1), &[("slot", &slot), ("reason", "matrix")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let appointment = id_in(r.location());
    let request = crate::prescriptions::one_request(w, &mut p).await?;
    Ok((appointment, request))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_books_sees_the_confirmation_and_cancels_and_the_practice_runs_its_day() -> Result<()> {
    let w = World::new().await?;
    let (book, mut p) = ready(&w).await?;
    let page = p.get(&format!("/patients/{}/appointments/book?clinician={}", w.patient1, book.gp)).await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Dr Aroha Ngata (GP), Main clinic"), "{}", page.body);
    assert!(!page.body.contains("— Nurse Mere Tane"), "only the GP's times");
    // 15 January 2027 is a Friday evening: Monday 18th is the first day with times, from 9:00.
    assert!(page.body.contains("Monday 18 January"), "{}", page.body);
    assert!(page.body.contains(">9:00 am</time>"));
    assert!(!page.body.contains("Long"), "a phone-only type is not offered online");
    let slot = offered(&page.body)[0].clone();
    let mails_before = mails(&w.t).await?.iter().filter(|m| m.1 == app::notify::NEWS_SUBJECT).count();
    let r = p
        .post(
            &format!("/patients/{}/appointments", w.patient1),
            &[("slot", &slot), ("reason", "Sore knee after a fall")],
        )
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.location().ends_with("?done=booked"));
    let id = id_in(r.location());
    let shown = p.get(r.location()).await?;
    assert!(
        shown.body.contains("Booked — confirmed") && shown.body.contains("Sore knee after a fall"),
        "{}",
        shown.body
    );
    // The email says only that there is news: no link, no clinician, no time, no reason.
    let news: Vec<_> = mails(&w.t).await?.into_iter().filter(|m| m.1 == app::notify::NEWS_SUBJECT).collect();
    assert_eq!(news.len(), mails_before + 1);
    let (to, _, body) = news.last().cloned().unwrap_or_default();
    assert_eq!(to, "p1@example.nz");
    for secret in ["http", "Aroha", "knee", "9:00", "appointment"] {
        assert!(!body.contains(secret), "the notice says {secret}: {body}");
    }
    // The reason is sealed at rest.
    let rows = appointments(&w.t).await?;
    let stored = rows.iter().find(|r| r.0.to_string() == id).and_then(|r| r.4.clone()).unwrap_or_default();
    assert!(stored.starts_with("sealed:") && !stored.contains("knee"), "{stored}");
    // The GP's day list shows the patient in that slot; the slot is no longer offered.
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 7, 3]).await?;
    let day = gp.get(&format!("/practices/{}/day?clinician={}&day=2027-01-18", w.practice_a, book.gp)).await?;
    assert!(day.body.contains(&format!("/appointments/{id}")), "{}", day.body);
    // The day list named the patient: an access event filed under them, about their appointment.
    let filed = |v: &Value| {
        v["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                let entity = e["resource"]["entity"].as_array().cloned().unwrap_or_default();
                entity.iter().any(|x| x["what"]["identifier"]["value"] == w.patient1.to_string())
                    && entity.iter().any(|x| x["what"]["identifier"]["value"] == id)
            })
            .count()
    };
    let before = filed(&w.t.app.console().export_audit_range(0, i64::MAX).await?);
    gp.get(&format!("/practices/{}/day?clinician={}&day=2027-01-18", w.practice_a, book.gp)).await?;
    let after = filed(&w.t.app.console().export_audit_range(0, i64::MAX).await?);
    assert_eq!(after, before + 1, "one event under the patient for the day list that named them");
    let again = p.get(&format!("/patients/{}/appointments/book", w.patient1)).await?;
    assert!(!offered(&again.body).contains(&slot));
    // The patient cancels (well before the cut-off): the slot is free again.
    let c = p.post(&format!("/appointments/{id}/cancel"), &[]).await?;
    assert_eq!(c.status, StatusCode::SEE_OTHER, "{}", c.body);
    let after = p.get(&format!("/patients/{}/appointments/book", w.patient1)).await?;
    assert!(offered(&after.body).contains(&slot));
    let list = p.get(&format!("/patients/{}/appointments", w.patient1)).await?;
    assert!(list.body.contains("Cancelled"), "{}", list.body);
    // Reception books for the patient (no online limits) and cancels with a reason they read.
    let mut reception = admin(&w).await?;
    let r = reception.post(&format!("/patients/{}/appointments", w.patient1), &[("slot", &slot)]).await?;
    assert!(r.location().ends_with("?done=booked_for"), "{} {}", r.status, r.body);
    let id2 = id_in(r.location());
    let none = reception.post(&format!("/appointments/{id2}/cancel"), &[("reason", "")]).await?;
    assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY, "the practice says why");
    let c = reception.post(&format!("/appointments/{id2}/cancel"), &[("reason", "Dr Ngata is unwell today")]).await?;
    assert_eq!(c.status, StatusCode::SEE_OTHER);
    let seen = p.get(&format!("/appointments/{id2}")).await?;
    assert!(seen.body.contains("Your practice cancelled this appointment: Dr Ngata is unwell today"), "{}", seen.body);
    // The reason is clinical: the GP reads it, reception does not.
    assert!(gp.get(&format!("/appointments/{id}")).await?.body.contains("Sore knee after a fall"));
    let desk = reception.get(&format!("/appointments/{id}")).await?;
    assert_eq!(desk.status, StatusCode::OK);
    assert!(!desk.body.contains("knee"), "reception sees the booking, not its reason");
    // The GP marks an appointment once it has started (not before); the patient cannot.
    let r = p.post(&format!("/patients/{}/appointments", w.patient1), &[("slot", &slot)]).await?;
    let id3 = id_in(r.location());
    let early = gp.post(&format!("/appointments/{id3}/mark"), &[("attended", "yes")]).await?;
    assert_eq!(early.status, StatusCode::CONFLICT);
    let odd = gp.post(&format!("/appointments/{id3}/mark"), &[("attended", "maybe")]).await?;
    assert_eq!(odd.status, StatusCode::UNPROCESSABLE_ENTITY);
    let starts = slots(&w.t, w.practice_a.as_uuid(), "booked").await?[0].1;
    w.t.clock.advance(starts + 300 - w.t.clock.now());
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 7, 8]).await?;
    let mut p = w.signed_in("p1@example.nz", [127, 0, 7, 9]).await?;
    let by_patient = p.post(&format!("/appointments/{id3}/mark"), &[("attended", "yes")]).await?;
    assert_eq!(by_patient.status, StatusCode::NOT_FOUND);
    let by_gp = gp.post(&format!("/appointments/{id3}/mark"), &[("attended", "yes")]).await?;
    assert_eq!(by_gp.status, StatusCode::SEE_OTHER);
    assert!(p.get(&format!("/appointments/{id3}")).await?.body.contains("Attended"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bookings_and_cancellations_are_refused_and_change_nothing() -> Result<()> {
    let w = World::new().await?;
    let (book, mut p) = ready(&w).await?;
    let practice = w.practice_a.as_uuid();
    let free = slots(&w.t, practice, "free").await?;
    let path = format!("/patients/{}/appointments", w.patient1);
    // The practice's system adds slots: one 60 days ahead, one of the phone-only type, one on a
    // day the practice then closes, one busy.
    let at = |days: i64, hour: i64| {
        jiff::Timestamp::from_second(testkit::START + days * 86_400 + hour * 3600)
            .map(|t| {
                t.to_zoned(jiff::tz::TimeZone::get("Pacific/Auckland").unwrap())
                    .strftime("%Y-%m-%dT%H:00:00%:z")
                    .to_string()
            })
            .unwrap_or_default()
    };
    let schedule = json!({ "resourceType": "Schedule", "id": "dr-n", "actor": [{ "display": "Dr Aroha Ngata" }, { "display": "Main clinic" }] });
    let slot = |id: &str, start: String, kind: &str, status: &str| {
        json!({ "resourceType": "Slot", "id": id, "schedule": { "reference": "Schedule/dr-n" }, "status": status,
                "start": start.clone(), "end": start.replace(":00:00+", ":15:00+"), "serviceType": [{ "text": kind }] })
    };
    let r = sync(
        &w.t,
        &w.client_a,
        &batch([
            schedule,
            slot("far", at(60, 0), "Standard", "free"),
            slot("phone", at(3, 1), "Long", "free"),
            slot("closed", at(10, 1), "Standard", "free"),
            slot("busy", at(4, 1), "Standard", "busy"),
        ]),
    )
    .await?;
    assert_eq!(statuses(&r), ["200 OK"; 5], "{}", r.body);
    let close_day = testkit::appointments::rows_day(&w.t, "closed").await?;
    set_up(
        &mut admin(&w).await?,
        practice,
        &[("action", "add_closure"), ("first_day", &close_day), ("reason", "Staff training")],
    )
    .await?;
    let before = count(&w.t, "appointments").await?;
    for (slot, want, words) in [
        (testkit::appointments::slot_by_source(&w.t, "far").await?, StatusCode::CONFLICT, "up to 28 days ahead"),
        (testkit::appointments::slot_by_source(&w.t, "phone").await?, StatusCode::CONFLICT, "cannot be booked online"),
        (testkit::appointments::slot_by_source(&w.t, "closed").await?, StatusCode::CONFLICT, "closed that day"),
        (
            testkit::appointments::slot_by_source(&w.t, "busy").await?,
            StatusCode::CONFLICT,
            "someone else has just booked",
        ),
        (SlotId::random().as_uuid(), StatusCode::NOT_FOUND, ""),
        (uuid::Uuid::nil(), StatusCode::NOT_FOUND, ""),
    ] {
        let r = p.post(&path, &[("slot", &slot.to_string())]).await?;
        assert_eq!(r.status, want, "{slot}: {}", r.body);
        assert!(r.body.contains(words), "{words}: {}", r.body);
        assert_eq!(count(&w.t, "appointments").await?, before, "nothing was booked");
    }
    assert_eq!(p.post(&path, &[("slot", "not-an-id")]).await?.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Taken by someone else; then the patient's limit (two upcoming).
    let (other, _) = enrol(&w.t, w.practice_a, "ZAA0067", "p9@example.nz").await?;
    book_as(&w, other, free[0].0).await?;
    let r = p.post(&path, &[("slot", &free[0].0.to_string())]).await?;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("someone else has just booked"));
    for s in &free[1..3] {
        assert_eq!(p.post(&path, &[("slot", &s.0.to_string())]).await?.status, StatusCode::SEE_OTHER);
    }
    let before = count(&w.t, "appointments").await?;
    let r = p.post(&path, &[("slot", &free[3].0.to_string())]).await?;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("as many upcoming appointments as your practice allows"), "{}", r.body);
    assert_eq!(count(&w.t, "appointments").await?, before);
    // A booking of the past: the clock moves past the first slot, which is now refused.
    let mine = appointments(&w.t).await?;
    let theirs = mine.iter().find(|a| a.1 == other.as_uuid()).map(|a| a.0).ok_or_else(|| anyhow!("no booking"))?;
    // Someone else's booking: 404, and it stays booked.
    let r = p.post(&format!("/appointments/{theirs}/cancel"), &[]).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(count(&w.t, "appointments WHERE status = 'booked'").await?, 3);
    // After the cut-off (two hours of working time) the page says to phone; cancelling is refused.
    let own = mine.iter().find(|a| a.1 == w.patient1.as_uuid()).map(|a| (a.0, a.2)).ok_or_else(|| anyhow!("none"))?;
    let starts = free.iter().find(|s| s.0 == own.1).map(|s| s.1).unwrap_or_default();
    w.t.clock.advance(starts - 3600 - w.t.clock.now());
    let mut p = w.signed_in("p1@example.nz", [127, 0, 7, 4]).await?;
    let page = p.get(&format!("/appointments/{}", own.0)).await?;
    assert!(page.body.contains("Please phone the practice"), "{}", page.body);
    let r = p.post(&format!("/appointments/{}/cancel", own.0), &[]).await?;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body.contains("too close to the appointment"));
    assert_eq!(count(&w.t, "appointments WHERE status = 'booked'").await?, 3);
    w.t.clock.advance(7200);
    let mut p = w.signed_in("p1@example.nz", [127, 0, 7, 5]).await?;
    let r = p.post(&path, &[("slot", &own.1.to_string())]).await?;
    assert_eq!(r.status, StatusCode::CONFLICT, "a past slot");
    let _ = book;
    Ok(())
}

/// Books a slot for a patient as the patient would (through the use case, with their principal).
pub(crate) async fn book_as(w: &World, patient: PatientId, slot: uuid::Uuid) -> Result<()> {
    let caller = patient_caller(w, patient).await?;
    w.t.app
        .appointments()
        .book(&caller, patient, &BookForm { slot: SlotId::from_uuid(slot), reason: String::new() })
        .await
        .map(|_| ())
        .map_err(|e| anyhow!("{e:?}"))
}

async fn patient_caller(w: &World, patient: PatientId) -> Result<app::Caller> {
    let account = testkit::appointments::account_of(&w.t, patient.as_uuid()).await?;
    Ok(app::Caller::console(app::Principal::Patient {
        account: app::domain::AccountId::from_uuid(account),
        session: app::domain::SessionId::random(),
        patient,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_patients_racing_for_one_slot_book_it_once_and_a_double_submit_books_once() -> Result<()> {
    let w = World::new().await?;
    let (_, mut p) = ready(&w).await?;
    let free = slots(&w.t, w.practice_a.as_uuid(), "free").await?;
    let mut callers = Vec::new();
    for (n, nhi) in test_nhis("ZCW", 50).iter().enumerate() {
        let (patient, _) = enrol(&w.t, w.practice_a, nhi, &format!("racer{n}@example.nz")).await?;
        callers.push((patient, patient_caller(&w, patient).await?));
    }
    let slot = SlotId::from_uuid(free[0].0);
    let mut tasks = Vec::new();
    for (patient, caller) in callers {
        let app = w.t.app.clone();
        tasks.push(tokio::spawn(async move {
            app.appointments().book(&caller, patient, &BookForm { slot, reason: String::new() }).await
        }));
    }
    let mut booked = 0;
    for t in tasks {
        match t.await? {
            Ok(_) => booked += 1,
            Err(app::AppError::Conflict(m)) => assert!(m.contains("someone else"), "{m}"),
            Err(e) => return Err(anyhow!("{e:?}")),
        }
    }
    assert_eq!(booked, 1);
    assert_eq!(count(&w.t, "appointments").await?, 1);
    // A double click: the same form twice at once books once, and both land on the booking.
    let form = [("slot", free[1].0.to_string())];
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let path = format!("/patients/{}/appointments", w.patient1);
    let mut twin = p.clone();
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
    assert_eq!(count(&w.t, "appointments").await?, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_are_at_the_right_local_time_across_daylight_saving_and_holidays() -> Result<()> {
    let w = World::new().await?;
    let mut a = admin(&w).await?;
    let practice = w.practice_a.as_uuid();
    let book = testkit::appointments::book(&w.t, &mut a, practice).await?;
    // Move to 20 March 2027 and open the book six months ahead.
    let march =
        jiff::civil::date(2027, 3, 20).to_zoned(jiff::tz::TimeZone::get("Pacific/Auckland")?)?.timestamp().as_second();
    w.t.clock.advance(march - w.t.clock.now());
    let mut a = admin(&w).await?;
    set_up(
        &mut a,
        practice,
        &[
            ("action", "rules"),
            ("booking_on", "1"),
            ("window_days", "180"),
            ("cancel_cutoff_hours", "24"),
            ("max_future", "5"),
        ],
    )
    .await?;
    let mut starts: Vec<String> = Vec::new();
    // The system reads at most 92 days at a time.
    for (from, to) in [("2027-03-22", "2027-06-20"), ("2027-06-21", "2027-09-19"), ("2027-09-20", "2027-09-30")] {
        let fhir = w.t.client(&w.client_a).get(&format!("/fhir/R4/Slot?start={from}&end={to}")).await?;
        assert_eq!(fhir.status, StatusCode::OK, "{}", fhir.body);
        let v: Value = serde_json::from_str(&fhir.body)?;
        starts.extend(
            v["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["resource"]["resourceType"] == "Slot")
                .filter(|e| e["resource"]["schedule"]["reference"] == format!("Schedule/{}", book.gp))
                .filter_map(|e| e["resource"]["start"].as_str().map(str::to_owned)),
        );
    }
    // 9:00 in Auckland: +13:00 before the first Sunday of April, +12:00 after it.
    for want in ["2027-04-02T09:00:00+13:00", "2027-04-05T09:00:00+12:00"] {
        assert!(starts.iter().any(|s| s == want), "{want} missing");
    }
    // No slots on Good Friday, Easter Monday, Anzac Day (observed Monday 26 April), King's
    // Birthday or Matariki 2027.
    for day in ["2027-03-26", "2027-03-29", "2027-04-26", "2027-06-07", "2027-06-25"] {
        assert!(!starts.iter().any(|s| s.starts_with(day)), "a slot on the holiday {day}");
    }
    assert!(starts.iter().any(|s| s.starts_with("2027-03-30")));
    // The day list names the holiday.
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 7, 6]).await?;
    let day = gp.get(&format!("/practices/{}/day?day=2027-03-29", w.practice_a)).await?;
    assert!(day.body.contains("Easter Monday (a public holiday)"), "{}", day.body);
    // A 24-hour cut-off for 9:00 on Tuesday 30 March counts no time over Easter: it is 9:00 on
    // Thursday 25 March.
    let mut p = w.signed_in("p1@example.nz", [127, 0, 7, 7]).await?;
    let tuesday = testkit::appointments::slot_at(&w.t, book.gp, "2027-03-30T09:00:00+13:00").await?;
    let r = p.post(&format!("/patients/{}/appointments", w.patient1), &[("slot", &tuesday.to_string())]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = p.get(r.location()).await?;
    assert!(page.body.contains("25 March 2027, 9:00 am"), "{}", page.body);
    // In September the window reaches the other change: +12:00 before the last Sunday, +13:00 after.
    let september =
        jiff::civil::date(2027, 9, 1).to_zoned(jiff::tz::TimeZone::get("Pacific/Auckland")?)?.timestamp().as_second();
    w.t.clock.advance(september - w.t.clock.now());
    let mut a = admin(&w).await?;
    set_up(
        &mut a,
        practice,
        &[
            ("action", "rules"),
            ("booking_on", "1"),
            ("window_days", "60"),
            ("cancel_cutoff_hours", "24"),
            ("max_future", "5"),
        ],
    )
    .await?;
    let fhir = w.t.client(&w.client_a).get("/fhir/R4/Slot?start=2027-09-20&end=2027-09-30").await?;
    for want in ["\"2027-09-24T09:00:00+12:00\"", "\"2027-09-27T09:00:00+13:00\""] {
        assert!(fhir.body.contains(want), "{want} missing");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_practice_system_exchanges_the_book_as_fhir_idempotently_and_only_its_own() -> Result<()> {
    let (w, everyone) = World::with_every_role().await?;
    let (book, mut p) = ready(&w).await?;
    let _ = book;
    let start = "2027-01-20T14:00:00+13:00";
    let bundle = batch([
        json!({ "resourceType": "Schedule", "identifier": [{ "value": "pms-dr-n" }], "actor": [{ "display": "Dr Aroha Ngata" }, { "display": "Main clinic" }], "specialty": [{ "coding": [{ "code": "gp" }] }] }),
        json!({ "resourceType": "Slot", "identifier": [{ "value": "pms-s1" }], "schedule": { "reference": "Schedule/pms-dr-n" }, "status": "free", "start": start, "end": "2027-01-20T14:15:00+13:00", "serviceType": [{ "text": "Standard" }] }),
        json!({ "resourceType": "Slot", "identifier": [{ "value": "pms-s2" }], "schedule": { "reference": "Schedule/pms-dr-n" }, "status": "free", "start": "2027-01-20T14:15:00+13:00", "end": "2027-01-20T14:30:00+13:00", "serviceType": [{ "text": "Standard" }] }),
        json!({ "resourceType": "Appointment", "identifier": [{ "value": "pms-a1" }], "status": "booked", "slot": [{ "reference": "Slot/pms-s2" }],
                "participant": [{ "actor": { "identifier": { "system": "https://standards.digital.health.nz/ns/nhi-id", "value": "ZZZ0016" } } }] }),
        json!({ "resourceType": "Observation" }),
    ]);
    let r = sync(&w.t, &w.client_a, &bundle).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(statuses(&r), ["200 OK", "200 OK", "200 OK", "201 Created", "422 Unprocessable Entity"]);
    // The same Bundle again changes nothing.
    let before = (count(&w.t, "slots").await?, count(&w.t, "appointments").await?, count(&w.t, "schedules").await?);
    let again = sync(&w.t, &w.client_a, &bundle).await?;
    assert_eq!(statuses(&again), ["200 OK", "200 OK", "200 OK", "200 OK", "422 Unprocessable Entity"]);
    assert_eq!(
        (count(&w.t, "slots").await?, count(&w.t, "appointments").await?, count(&w.t, "schedules").await?),
        before
    );
    // The patient sees the system's free slot and books it; the system reads the booking back.
    let page = p.get(&format!("/patients/{}/appointments/book", w.patient1)).await?;
    let s1 = testkit::appointments::slot_by_source(&w.t, "pms-s1").await?.to_string();
    assert!(offered(&page.body).contains(&s1));
    assert!(!offered(&page.body).contains(&testkit::appointments::slot_by_source(&w.t, "pms-s2").await?.to_string()));
    let r = p.post(&format!("/patients/{}/appointments", w.patient1), &[("slot", &s1)]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let read = w.t.client(&w.client_a).get("/fhir/R4/Appointment?start=2027-01-20&end=2027-01-20").await?;
    let v: Value = serde_json::from_str(&read.body)?;
    let found: Vec<&Value> = v["entry"].as_array().into_iter().flatten().map(|e| &e["resource"]).collect();
    assert_eq!(found.len(), 2, "{}", read.body);
    assert!(found.iter().all(|a| a["participant"][0]["actor"]["identifier"]["value"] == "ZZZ0016"));
    assert!(found.iter().any(|a| a["start"] == start && a["status"] == "booked"));
    // The system marks its slot busy: a slot booked here stays booked; a free one is no longer offered.
    let busy = batch([
        json!({ "resourceType": "Slot", "identifier": [{ "value": "pms-s1" }], "schedule": { "reference": "Schedule/pms-dr-n" }, "status": "busy", "start": start, "end": "2027-01-20T14:15:00+13:00", "serviceType": [{ "text": "Standard" }] }),
    ]);
    assert_eq!(statuses(&sync(&w.t, &w.client_a, &busy).await?), ["200 OK"]);
    assert_eq!(count(&w.t, "slots WHERE status = 'booked'").await?, 2);
    // The system may not move a slot booked here under its patient.
    let moved = batch([
        json!({ "resourceType": "Slot", "identifier": [{ "value": "pms-s1" }], "schedule": { "reference": "Schedule/pms-dr-n" }, "status": "busy", "start": "2027-01-21T10:00:00+13:00", "end": "2027-01-21T10:15:00+13:00", "serviceType": [{ "text": "Standard" }] }),
    ]);
    assert_eq!(statuses(&sync(&w.t, &w.client_a, &moved).await?), ["409 Conflict"]);
    // The system cancels its appointment: the slot is free again.
    let cancel =
        batch([json!({ "resourceType": "Appointment", "identifier": [{ "value": "pms-a1" }], "status": "cancelled" })]);
    assert_eq!(statuses(&sync(&w.t, &w.client_a, &cancel).await?), ["200 OK"]);
    // Sent again as booked, a cancelled appointment is that entry's conflict; the rest of the
    // batch still applies.
    let again_booked = batch([
        json!({ "resourceType": "Appointment", "identifier": [{ "value": "pms-a1" }], "status": "booked" }),
        json!({ "resourceType": "Slot", "identifier": [{ "value": "pms-s3" }], "schedule": { "reference": "Schedule/pms-dr-n" }, "status": "free", "start": "2027-01-20T15:00:00+13:00", "end": "2027-01-20T15:15:00+13:00", "serviceType": [{ "text": "Standard" }] }),
    ]);
    assert_eq!(statuses(&sync(&w.t, &w.client_a, &again_booked).await?), ["409 Conflict", "200 OK"]);
    assert!(
        offered(&p.get(&format!("/patients/{}/appointments/book", w.patient1)).await?.body)
            .contains(&testkit::appointments::slot_by_source(&w.t, "pms-s2").await?.to_string())
    );
    // Another practice's system reaches none of it: its ids and this practice's patients are unknown to it.
    let before = (count(&w.t, "slots").await?, count(&w.t, "appointments").await?);
    let theirs = batch([
        json!({ "resourceType": "Appointment", "identifier": [{ "value": "b-1" }], "status": "booked", "slot": [{ "reference": "Slot/pms-s2" }],
        "participant": [{ "actor": { "identifier": { "system": "https://standards.digital.health.nz/ns/nhi-id", "value": "ZZZ0016" } } }] }),
    ]);
    assert_eq!(statuses(&sync(&w.t, &everyone.client_b, &theirs).await?), ["404 Not Found"]);
    let read = w.t.client(&everyone.client_b).get("/fhir/R4/Appointment?start=2027-01-20&end=2027-01-20").await?;
    assert!(!read.body.contains("ZZZ0016"));
    // A hospital's system may not write a practice's book at all; nor may a body that is not a batch.
    assert_eq!(sync(&w.t, &everyone.hospital, &bundle).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(sync(&w.t, &w.client_a, "{").await?.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        sync(&w.t, &w.client_a, r#"{"resourceType":"Bundle","type":"collection"}"#).await?.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!((count(&w.t, "slots").await?, count(&w.t, "appointments").await?), before);
    // What the system reads, and the batch-response it gets, pass an independent FHIR R4
    // validator (tests/fhir-validate).
    let dir = testkit::db::TempDir::new("fhir-book")?;
    let mut files = Vec::new();
    for (name, body) in [
        ("slots.json", w.t.client(&w.client_a).get("/fhir/R4/Slot?start=2027-01-18&end=2027-01-22").await?.body),
        (
            "appointments.json",
            w.t.client(&w.client_a).get("/fhir/R4/Appointment?start=2027-01-20&end=2027-01-20").await?.body,
        ),
        ("response.json", again.body.clone()),
    ] {
        let path = dir.0.join(name);
        std::fs::write(&path, body)?;
        files.push(path);
    }
    let report = crate::records::validate(&files)?;
    assert!(report["checked"].as_u64().unwrap_or(0) > 10, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_day_before_a_patient_is_reminded_once_and_the_window_stays_filled() -> Result<()> {
    let w = World::new().await?;
    let (book, mut p) = ready(&w).await?;
    // Friday evening: book 9:00 on Monday 18 January.
    let monday = testkit::appointments::slot_at(&w.t, book.gp, "2027-01-18T09:00:00+13:00").await?;
    let r = p.post(&format!("/patients/{}/appointments", w.patient1), &[("slot", &monday.to_string())]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let news = |m: &Vec<(String, String, String)>| m.iter().filter(|m| m.1 == app::notify::NEWS_SUBJECT).count();
    let after_booking = news(&mails(&w.t).await?);
    // Saturday: not yet.
    w.t.clock.advance(12 * 3600);
    w.t.app.console().run_due_jobs("node-a").await?;
    assert_eq!(news(&mails(&w.t).await?), after_booking);
    // Sunday morning: one reminder (the email says only that there is news), and only one.
    w.t.clock.advance(24 * 3600);
    w.t.app.console().run_due_jobs("node-a").await?;
    assert_eq!(news(&mails(&w.t).await?), after_booking + 1);
    w.t.clock.advance(3600);
    w.t.app.console().run_due_jobs("node-a").await?;
    assert_eq!(news(&mails(&w.t).await?), after_booking + 1, "reminded once");
    // In the portal, the appointments page reminds them too.
    let mut p = w.signed_in("p1@example.nz", [127, 0, 7, 10]).await?;
    let page = p.get(&format!("/patients/{}/appointments", w.patient1)).await?;
    assert!(page.body.contains("Reminder: Tomorrow at 9:00 am"), "{}", page.body);
    // The window moves with the days: slots four weeks out appear without anyone touching the book.
    let last = slots(&w.t, w.practice_a.as_uuid(), "free").await?.iter().map(|s| s.1).max().unwrap_or_default();
    w.t.clock.advance(7 * 86_400);
    w.t.app.console().run_due_jobs("node-a").await?;
    let later = slots(&w.t, w.practice_a.as_uuid(), "free").await?.iter().map(|s| s.1).max().unwrap_or_default();
    assert!(later >= last + 5 * 86_400, "the window moved on a week: {last} → {later}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinicians_slots_never_overlap_when_the_book_changes() -> Result<()> {
    let w = World::new().await?;
    let (book, mut p) = ready(&w).await?;
    let practice = w.practice_a.as_uuid();
    // Book the first 9:00, then make standard appointments 30 minutes long.
    let monday = testkit::appointments::slot_at(&w.t, book.gp, "2027-01-18T09:00:00+13:00").await?;
    let r = p.post(&format!("/patients/{}/appointments", w.patient1), &[("slot", &monday.to_string())]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let mut desk = admin(&w).await?;
    set_up(
        &mut desk,
        practice,
        &[("action", "type"), ("name", "Standard"), ("minutes", "30"), ("modality", "in_person"), ("online", "1")],
    )
    .await?;
    let all = testkit::appointments::slot_spans(&w.t, practice).await?;
    for (i, x) in all.iter().enumerate() {
        for y in &all[i + 1..] {
            assert!(!(x.0 == y.0 && x.1 < y.2 && y.1 < x.2), "overlapping slots {x:?} {y:?}");
        }
    }
    assert!(all.iter().any(|s| s.2 - s.1 == 1800), "the new length is used");
    // A template line that overlaps another of the clinician's that day is refused.
    let (gp_book, standard) = (book.gp.to_string(), book.standard.to_string());
    let path = format!("/practices/{practice}/book-setup");
    let before = count(&w.t, "schedule_templates").await?;
    let r = desk
        .post(
            &path,
            &[
                ("action", "add_template"),
                ("clinician", &gp_book),
                ("type_id", &standard),
                ("weekday", "1"),
                ("start", "11:00"),
                ("end", "13:00"),
            ],
        )
        .await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("overlaps the clinician"), "{}", r.body);
    assert_eq!(count(&w.t, "schedule_templates").await?, before);
    Ok(())
}

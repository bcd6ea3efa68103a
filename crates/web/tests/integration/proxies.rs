//! Proxy access through the real router, with the fake clock: a parent acts for their child
//! until the birthday at the practice's cut-off (12, 14 or 16); an adult's proxy waits for the
//! patient, expires, and a revoked one loses access at its next request; every bad set-up or
//! switch is refused with nothing changed; and the in-portal inbox counts what arrives.

use crate::appointments::id_in;
use crate::support::*;
use anyhow::{Result, anyhow};
use axum::http::StatusCode;
use testkit::appointments::count;

/// 15 January 2027, 21:00 NZDT: the test clock's start.
const DAY: i64 = 86_400;

/// Reception of practice A sets up a proxy for `patient`.
async fn set_up(w: &World, patient: app::domain::PatientId, fields: &[(&str, &str)]) -> Result<Reply> {
    let mut reception = w.signed_in("admin-a@example.nz", [127, 0, 16, 1]).await?;
    reception.get(&format!("/patients/{patient}/proxies")).await?;
    reception.post(&format!("/patients/{patient}/proxies"), fields).await
}

/// The id of the first link listed on a proxies page.
fn first_link(body: &str) -> Result<String> {
    body.split("/proxies/")
        .skip(1)
        .filter_map(|s| s.split('/').next())
        .find(|s| s.len() == 36)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no link listed: {body}"))
}

/// A person with a Tiaki account of their own, enrolled at practice A and signed in.
async fn person(w: &World, nhi: &str, email: &str, ip: [u8; 4]) -> Result<Browser> {
    let (_, link) = enrol(&w.t, w.practice_a, nhi, email).await?;
    w.t.app
        .console()
        .set_password_by_link(&link, PASSWORD, PASSWORD, None, None)
        .await
        .map_err(|e| anyhow!("{e:?}"))?;
    w.signed_in(email, ip).await
}

async fn switch(b: &mut Browser, to: &str) -> Result<Reply> {
    b.get("/acting-for").await?;
    b.post("/acting-for", &[("to", to)]).await
}

/// A child born `age` years before 20 January 2027, with the practice's cut-off at `age`, whose
/// parent (patient 1) may book for them: the parent acts until the child's birthday, and not a
/// moment after — no job runs; the policy checks the date on the next request.
async fn a_parent_acts_until_the_cutoff(age: u8) -> Result<()> {
    let w = World::new().await?;
    let dob = format!("{}-01-20", 2027 - i32::from(age));
    let (child, _) = enrol_born(&w.t, w.practice_a, "ZPX1032", "child@example.nz", &dob).await?;
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 16, 2]).await?;
    admin.get(&format!("/practices/{}/proxy-rules", w.practice_a)).await?;
    let r =
        admin.post(&format!("/practices/{}/proxy-rules", w.practice_a), &[("cutoff_age", &age.to_string())]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = set_up(
        &w,
        child,
        &[
            ("email", "p1@example.nz"),
            ("relationship", "parent"),
            ("scope-appointments", "1"),
            ("scope-messages", "1"),
            ("identity_check", "Birth certificate and driver licence sighted"),
        ],
    )
    .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "a child's proxy needs no end date: {}", r.body);
    let mut parent = w.signed_in("p1@example.nz", [127, 0, 16, 3]).await?;
    let r = switch(&mut parent, &child.to_string()).await?;
    assert_eq!(r.location(), format!("/patients/{child}"));
    let home = parent.get(&format!("/patients/{child}")).await?;
    assert!(home.body.contains("You are acting for Pat Ient"), "every page says whose record: {}", home.body);
    // The person by name and date of birth; not their NHI number or email.
    assert!(!home.body.contains("ZPX1032") && !home.body.contains("child@example.nz"), "{}", home.body);
    let api = parent.get(&format!("/api/v1/patients/{child}")).await?;
    assert_eq!(api.status, StatusCode::OK);
    assert!(!api.body.contains("ZPX1032") && !api.body.contains("child@example.nz"), "{}", api.body);
    let appointments = format!("/patients/{child}/appointments");
    assert_eq!(parent.get(&appointments).await?.status, StatusCode::OK);
    // Out of scope: the records, documents and access history are not the parent's.
    for path in ["records", "documents", "access", "repeats"] {
        assert_eq!(parent.get(&format!("/patients/{child}/{path}")).await?.status, StatusCode::NOT_FOUND, "{path}");
    }
    // The parent's own record is not open while acting for the child.
    assert_eq!(parent.get(&format!("/patients/{}/appointments", w.patient1)).await?.status, StatusCode::NOT_FOUND);
    // Every access is an event naming the parent and, on whose behalf, the child.
    let events = count(
        &w.t,
        &format!(
            "audit_events WHERE actor_role = 'proxy:parent' AND patient_id IS NOT NULL AND on_behalf LIKE '%{child}%'"
        ),
    )
    .await?;
    assert!(events >= 2, "{events}");
    // The evening before the birthday the parent still acts; from midnight they do not.
    let birthday = app::domain::calendar::day_start(jiff::civil::date(2027, 1, 20));
    w.t.clock.advance(birthday - 1 - app::domain::Clock::now(&w.t.clock));
    let mut parent = w.signed_in("p1@example.nz", [127, 0, 16, 4]).await?;
    assert_eq!(switch(&mut parent, &child.to_string()).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(parent.get(&appointments).await?.status, StatusCode::OK);
    w.t.clock.advance(1);
    assert_eq!(parent.get(&appointments).await?.status, StatusCode::NOT_FOUND, "aged out at {age}");
    assert_eq!(switch(&mut parent, &child.to_string()).await?.status, StatusCode::NOT_FOUND);
    let page = parent.get("/acting-for").await?;
    assert!(page.body.contains("Ended at the age cut-off"), "{}", page.body);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parents_access_ends_on_the_childs_14th_birthday() -> Result<()> {
    a_parent_acts_until_the_cutoff(14).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_may_choose_12_or_16_instead() -> Result<()> {
    a_parent_acts_until_the_cutoff(12).await?;
    a_parent_acts_until_the_cutoff(16).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adults_proxy_waits_for_the_patient_expires_and_a_revoked_one_loses_access_at_once() -> Result<()> {
    let w = World::new().await?;
    let mut carer = person(&w, "ZPX1008", "carer@example.nz", [127, 0, 17, 1]).await?;
    let p1 = w.patient1.to_string();
    let appointments = format!("/patients/{p1}/appointments");
    let expires = app::domain::calendar::local_day(app::domain::Clock::now(&w.t.clock) + 60 * DAY).to_string();
    let r = set_up(
        &w,
        w.patient1,
        &[
            ("email", "carer@example.nz"),
            ("relationship", "carer"),
            ("scope-appointments", "1"),
            ("expires", &expires),
            ("identity_check", "Passport sighted"),
        ],
    )
    .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // Before the patient accepts, the carer sees nothing.
    assert_eq!(switch(&mut carer, &p1).await?.status, StatusCode::NOT_FOUND);
    let mut patient = w.signed_in("p1@example.nz", [127, 0, 17, 2]).await?;
    let page = patient.get(&format!("/patients/{p1}/proxies")).await?;
    assert!(page.body.contains("Waiting for the patient to accept"), "{}", page.body);
    let link = first_link(&page.body)?;
    // Nobody but the patient accepts: not the carer, not the practice.
    carer.get("/acting-for").await?;
    assert_eq!(carer.post(&format!("/proxies/{link}/accept"), &[]).await?.status, StatusCode::NOT_FOUND);
    let mut reception = w.signed_in("admin-a@example.nz", [127, 0, 17, 3]).await?;
    reception.get(&format!("/patients/{p1}/proxies")).await?;
    assert_eq!(reception.post(&format!("/proxies/{link}/accept"), &[]).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(count(&w.t, "proxies WHERE accepted_at IS NOT NULL").await?, 0);
    patient.get(&format!("/patients/{p1}/proxies")).await?;
    let r = patient.post(&format!("/proxies/{link}/accept"), &[]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(switch(&mut carer, &p1).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(carer.get(&appointments).await?.status, StatusCode::OK);
    // The patient revokes: the carer's open session loses access at its very next request.
    patient.get(&format!("/patients/{p1}/proxies")).await?;
    assert_eq!(patient.post(&format!("/proxies/{link}/revoke"), &[]).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(carer.get(&appointments).await?.status, StatusCode::NOT_FOUND);
    let home = carer.get("/acting-for").await?;
    assert!(!home.body.contains("You are acting for"), "back on their own record: {}", home.body);
    // Both are told it has ended.
    assert!(carer.get("/inbox").await?.body.contains("Your access to act for someone in Tiaki has ended"));
    assert!(patient.get("/inbox").await?.body.contains("access to act for you has ended"));
    // Renewed by the practice, accepted again, then past its end date: nothing.
    let r = set_up(
        &w,
        w.patient1,
        &[
            ("email", "carer@example.nz"),
            ("relationship", "carer"),
            ("scope-appointments", "1"),
            ("expires", &expires),
            ("identity_check", "Passport sighted"),
        ],
    )
    .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = patient.get(&format!("/patients/{p1}/proxies")).await?;
    let renewed = first_link(&page.body)?;
    assert_ne!(renewed, link);
    patient.post(&format!("/proxies/{renewed}/accept"), &[]).await?;
    w.t.clock.advance(62 * DAY);
    let mut carer = w.signed_in("carer@example.nz", [127, 0, 17, 4]).await?;
    assert_eq!(switch(&mut carer, &p1).await?.status, StatusCode::NOT_FOUND, "expired");
    assert_eq!(carer.get(&appointments).await?.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_proxy_set_ups_and_switches_are_refused_and_change_nothing() -> Result<()> {
    let w = World::new().await?;
    let mut carer = person(&w, "ZPX1008", "carer@example.nz", [127, 0, 18, 1]).await?;
    let too_far = app::domain::calendar::local_day(app::domain::Clock::now(&w.t.clock) + 600 * DAY).to_string();
    let base = [("email", "carer@example.nz"), ("relationship", "carer"), ("identity_check", "Passport sighted")];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, String)> {
        base.iter().chain(extra).map(|(k, v)| (*k, (*v).to_owned())).collect()
    };
    let mut cases: Vec<Case> = vec![
        ("no scope", with(&[("expires", "2027-06-30")]), "at least one part"),
        ("no end date for an adult", with(&[("scope-appointments", "1")]), "give an end date"),
        ("an unknown scope", with(&[("scope-billing", "1"), ("expires", "2027-06-30")]), "listed parts"),
        (
            "no identity check",
            vec![
                ("email", "carer@example.nz".into()),
                ("relationship", "carer".into()),
                ("scope-appointments", "1".into()),
                ("expires", "2027-06-30".into()),
            ],
            "checked their identity",
        ),
        (
            "an email with no account, and no name to invite",
            vec![
                ("email", "nobody@example.nz".into()),
                ("relationship", "carer".into()),
                ("scope-appointments", "1".into()),
                ("expires", "2027-06-30".into()),
                ("identity_check", "Passport".into()),
            ],
            "We cannot set up someone with this email address",
        ),
        (
            "not an email",
            vec![
                ("email", "carer at home".into()),
                ("relationship", "carer".into()),
                ("scope-appointments", "1".into()),
                ("expires", "2027-06-30".into()),
                ("identity_check", "Passport".into()),
            ],
            "email address",
        ),
        (
            "an authority for someone who is not a legal representative",
            with(&[("scope-appointments", "1"), ("expires", "2027-06-30"), ("authority", "EPOA sighted")]),
            "Only a GP or nurse can let a legal representative",
        ),
        (
            "a name that is not the account's (a mistyped email would bind a stranger)",
            with(&[("scope-appointments", "1"), ("expires", "2027-06-30"), ("name", "Someone Else Entirely")]),
            "We cannot set up someone with this email address",
        ),
        (
            "the patient themself",
            vec![
                ("email", "p1@example.nz".into()),
                ("relationship", "carer".into()),
                ("scope-appointments", "1".into()),
                ("expires", "2027-06-30".into()),
                ("identity_check", "Passport".into()),
            ],
            "We cannot set up someone with this email address",
        ),
        (
            "a member of staff's email",
            vec![
                ("email", "gp-a@example.nz".into()),
                ("name", "Someone Else".into()),
                ("relationship", "carer".into()),
                ("scope-appointments", "1".into()),
                ("expires", "2027-06-30".into()),
                ("identity_check", "Passport".into()),
            ],
            "We cannot set up someone with this email address",
        ),
        (
            "a made-up relationship",
            vec![
                ("email", "carer@example.nz".into()),
                ("relationship", "boss".into()),
                ("scope-appointments", "1".into()),
                ("expires", "2027-06-30".into()),
                ("identity_check", "Passport".into()),
            ],
            "who they are",
        ),
        ("a malformed date", with(&[("scope-appointments", "1"), ("expires", "30/06/2027")]), "YYYY-MM-DD"),
    ];
    let mut beyond = with(&[("scope-appointments", "1")]);
    beyond.push(("expires", too_far));
    cases.push(("beyond 18 months", beyond, "at most 18 months"));
    let accounts = count(&w.t, "accounts").await?;
    let invitations = "outbox WHERE subject = 'Your Tiaki account, to act for someone'";
    for (what, fields, says) in cases {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = set_up(&w, w.patient1, &fields).await?;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {}", r.body);
        assert!(r.body.contains(says), "{what}: {}", r.body);
        assert_eq!(count(&w.t, "proxies").await?, 0, "{what}");
        assert_eq!(count(&w.t, "accounts").await?, accounts, "{what}: nobody invited");
        assert_eq!(count(&w.t, invitations).await?, 0, "{what}: no invitation sent");
    }
    // Staff of another practice, and the patient, set up nothing (404).
    let mut other = w.signed_in("admin-b@example.nz", [127, 0, 18, 2]).await?;
    other.get("/acting-for").await?;
    let ok = [
        ("email", "carer@example.nz"),
        ("relationship", "carer"),
        ("scope-appointments", "1"),
        ("expires", "2027-06-30"),
        ("identity_check", "Passport"),
    ];
    assert_eq!(other.post(&format!("/patients/{}/proxies", w.patient1), &ok).await?.status, StatusCode::NOT_FOUND);
    let mut patient = w.signed_in("p1@example.nz", [127, 0, 18, 3]).await?;
    patient.get(&format!("/patients/{}/proxies", w.patient1)).await?;
    assert_eq!(patient.post(&format!("/patients/{}/proxies", w.patient1), &ok).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(count(&w.t, "proxies").await?, 0);
    // Switching to a person one does not act for, or to nonsense: 404, the session unchanged.
    for to in [w.patient2.to_string(), w.patient1.to_string(), "not-an-id".to_owned()] {
        assert_eq!(switch(&mut carer, &to).await?.status, StatusCode::NOT_FOUND, "{to}");
    }
    assert_eq!(count(&w.t, "sessions WHERE acting_for IS NOT NULL").await?, 0);
    // A link to accept or revoke that does not exist, or is someone else's: 404.
    let stranger = app::domain::ProxyId::random();
    carer.get("/acting-for").await?;
    assert_eq!(carer.post(&format!("/proxies/{stranger}/accept"), &[]).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(carer.post(&format!("/proxies/{stranger}/revoke"), &[]).await?.status, StatusCode::NOT_FOUND);
    // The practice's cut-off takes only 12, 14 or 16.
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 18, 4]).await?;
    admin.get(&format!("/practices/{}/proxy-rules", w.practice_a)).await?;
    let r = admin.post(&format!("/practices/{}/proxy-rules", w.practice_a), &[("cutoff_age", "18")]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(&w.t, "proxy_rules").await?, 0);
    Ok(())
}

/// A bad set-up: what it is, its fields, and what the page says.
type Case = (&'static str, Vec<(&'static str, String)>, &'static str);

/// A parent books for their child: the booking names the parent in the child's history, and
/// the notice lands in both inboxes (the parent's count goes up), with an email to the parent
/// that carries no link and no health content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_books_for_their_child_and_the_inbox_counts_the_news() -> Result<()> {
    let w = World::new().await?;
    let (child, _) = enrol_born(&w.t, w.practice_a, "ZPX1032", "child@example.nz", "2018-03-01").await?;
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 19, 1]).await?;
    testkit::appointments::book(&w.t, &mut admin, w.practice_a.as_uuid()).await?;
    let r = set_up(
        &w,
        child,
        &[
            ("email", "p1@example.nz"),
            ("relationship", "parent"),
            ("scope-appointments", "1"),
            ("identity_check", "Birth certificate sighted"),
        ],
    )
    .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let mut parent = w.signed_in("p1@example.nz", [127, 0, 19, 2]).await?;
    let inbox = parent.get("/inbox").await?;
    assert!(inbox.body.contains("You can act for someone in Tiaki"), "{}", inbox.body);
    let before = unread(&parent.get("/acting-for").await?.body);
    switch(&mut parent, &child.to_string()).await?;
    let page = parent.get(&format!("/patients/{child}/appointments/book")).await?;
    let slot = page
        .body
        .split("name=\"slot\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .ok_or_else(|| anyhow!("no slot offered: {}", page.body))?
        .to_owned();
    let to_parent = async || -> Result<Vec<(String, String, String)>> {
        Ok(mails(&w.t).await?.into_iter().filter(|m| m.1 == app::notify::NEWS_SUBJECT).collect())
    };
    let news_before = to_parent().await?;
    let r = parent.post(&format!("/patients/{child}/appointments"), &[("slot", &slot), ("reason", "Earache")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let appointment = id_in(r.location());
    // Two notices (the child's dormant account, the parent's), one email (the parent's).
    let after = unread(&parent.get(&format!("/patients/{child}")).await?.body);
    assert_eq!(after, before + 1, "the header counts the new notice");
    let news_after = to_parent().await?;
    assert_eq!(news_after.len(), news_before.len() + 1, "one email: the parent's, not the dormant child's");
    assert_eq!(
        news_after.iter().filter(|m| m.0 == "p1@example.nz").count(),
        news_before.iter().filter(|m| m.0 == "p1@example.nz").count() + 1
    );
    for (_, _, body) in &news_after {
        for secret in ["http", "Earache", "appointment", "/"] {
            assert!(!body.contains(secret), "{secret}: {body}");
        }
    }
    // The child's history names the parent.
    let events = count(
        &w.t,
        &format!("audit_events WHERE action = 'book' AND actor_role = 'proxy:parent' AND object_id = '{appointment}'"),
    )
    .await?;
    assert_eq!(events, 1);
    // Opening the notice reads it and goes to the appointment.
    let inbox = parent.get("/inbox").await?;
    let notice = inbox
        .body
        .split("/inbox/")
        .filter_map(|s| s.split('/').next())
        .find(|s| s.len() == 36)
        .ok_or_else(|| anyhow!("no notice: {}", inbox.body))?
        .to_owned();
    let r = parent.post(&format!("/inbox/{notice}/open"), &[]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with('/'), "{}", r.location());
    // Email for appointments switched off: the next notice arrives, no email.
    parent.get("/inbox").await?;
    let r = parent.post("/inbox/settings", &[("email-messages", "1")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let news = async || -> Result<usize> {
        Ok(mails(&w.t).await?.iter().filter(|m| m.1 == app::notify::NEWS_SUBJECT).count())
    };
    let mails_before = news().await?;
    parent.get(&format!("/appointments/{appointment}")).await?;
    let r = parent.post(&format!("/appointments/{appointment}/cancel"), &[("reason", "Better now")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(news().await?, mails_before, "no email for a kind switched off");
    let inbox = parent.get("/inbox").await?;
    assert!(inbox.body.contains("An appointment was cancelled"), "{}", inbox.body);
    // Security notices cannot be switched off.
    let r = parent.post("/inbox/settings", &[("email-nonsense", "1")]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    Ok(())
}

/// The unread count in the page header (0 when none is shown).
fn unread(body: &str) -> i64 {
    body.split("<span class=\"count\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A link reaches only what the practice that set it up holds: once the child is enrolled at
/// a second practice too, lists spanning both are no longer the parent's; the second practice
/// cannot replace the first one's link; and only a clinician shares records or documents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_reaches_only_what_the_practice_that_set_it_up_holds() -> Result<()> {
    let w = World::new().await?;
    let (child, _) = enrol_born(&w.t, w.practice_a, "ZPX1032", "child@example.nz", "2018-03-01").await?;
    let mut fields = vec![
        ("email", "p1@example.nz"),
        ("relationship", "parent"),
        ("scope-appointments", "1"),
        ("scope-records", "1"),
        ("identity_check", "Birth certificate sighted"),
    ];
    // Reception alone cannot share the health record.
    let r = set_up(&w, child, &fields).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Only a GP or nurse"), "{}", r.body);
    assert_eq!(count(&w.t, "proxies").await?, 0);
    fields.retain(|(k, _)| *k != "scope-records");
    assert_eq!(set_up(&w, child, &fields).await?.status, StatusCode::SEE_OTHER);
    let mut parent = w.signed_in("p1@example.nz", [127, 0, 21, 1]).await?;
    switch(&mut parent, &child.to_string()).await?;
    let appointments = format!("/patients/{child}/appointments");
    assert_eq!(parent.get(&appointments).await?.status, StatusCode::OK);
    // The child joins practice B as well: what spans both practices is no longer the parent's.
    rejoin_born(&w.t, w.practice_b, child, "ZPX1032", "2018-03-01").await?;
    assert_eq!(parent.get(&appointments).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(parent.get(&format!("/patients/{child}")).await?.status, StatusCode::NOT_FOUND);
    // Practice B cannot replace practice A's link.
    let mut b = w.signed_in("admin-b@example.nz", [127, 0, 21, 2]).await?;
    b.get(&format!("/patients/{child}/proxies")).await?;
    let r = b.post(&format!("/patients/{child}/proxies"), &fields).await?;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(count(&w.t, "proxies WHERE revoked_at IS NULL").await?, 1);
    Ok(())
}

/// Once the child has left a second practice, the parent acts again, but never sees what that
/// former practice sent: not in the document list, not by the document's id, not in the
/// health record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_never_sees_what_a_former_practice_sent() -> Result<()> {
    let w = World::new().await?;
    let (child, _) = enrol_born(&w.t, w.practice_a, "ZPX1032", "child@example.nz", "2018-03-01").await?;
    // A GP shares the documents (a clinician may).
    let mut nurse = w.signed_in("gp-a@example.nz", [127, 0, 22, 1]).await?;
    nurse.get(&format!("/patients/{child}/proxies")).await?;
    let fields = [
        ("email", "p1@example.nz"),
        ("relationship", "parent"),
        ("scope-appointments", "1"),
        ("scope-documents", "1"),
        ("scope-records", "1"),
        ("identity_check", "Birth certificate sighted"),
    ];
    let r = nurse.post(&format!("/patients/{child}/proxies"), &fields).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // Practice A sends a letter; the child joins practice B, which sends one too; then the child
    // leaves practice B.
    let before = count(&w.t, "documents").await?;
    let from_a = push(&w.t, &w.client_a, &push_meta("ZPX1032", "a-letter-1"), &pdf("from A", 2000)).await?;
    assert_eq!(from_a.status, StatusCode::CREATED, "{}", from_a.body);
    rejoin_born(&w.t, w.practice_b, child, "ZPX1032", "2018-03-01").await?;
    let client_b = w.practice_b_client().await?;
    // Each practice's system sends a condition too.
    let child_url = "urn:uuid:5b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3";
    for (token, id, text) in [(&w.client_a, "co-a", "Eczema noted by A"), (&client_b, "co-b", "Asthma noted by B")] {
        let body = testkit::records::bundle(
            "transaction",
            vec![
                testkit::records::patient_entry(child_url, "ZPX1032"),
                testkit::records::put(testkit::records::condition(id, child_url, text, "2024-05-01"), 1),
            ],
        );
        let r = testkit::records::ingest(&w.t, token, &body).await?;
        assert!(r.status.is_success(), "{}", r.body);
    }
    let from_b = push(&w.t, &client_b, &push_meta("ZPX1032", "b-letter-1"), &pdf("from B", 2000)).await?;
    assert_eq!(from_b.status, StatusCode::CREATED, "{}", from_b.body);
    let b_doc = from_b.body.split('"').find(|s| s.len() == 36).ok_or_else(|| anyhow!("{}", from_b.body))?.to_owned();
    let mut admin_b = w.signed_in("admin-b@example.nz", [127, 0, 22, 2]).await?;
    admin_b.get(&format!("/patients/{child}")).await?;
    let r = admin_b.post(&format!("/patients/{child}/unenrol"), &[]).await?;
    assert!(r.status.is_redirection() || r.status == StatusCode::OK, "{} {}", r.status, r.body);
    // The parent acts again, and sees practice A's letter only.
    let mut parent = w.signed_in("p1@example.nz", [127, 0, 22, 3]).await?;
    switch(&mut parent, &child.to_string()).await?;
    let list = parent.get(&format!("/patients/{child}/documents")).await?;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("/download"), "practice A's letter is listed: {}", list.body);
    assert!(!list.body.contains(&b_doc), "the former practice's letter is not listed");
    let api = parent.get(&format!("/api/v1/patients/{child}/documents")).await?;
    assert!(!api.body.contains(&b_doc), "nor in the API's list: {}", api.body);
    assert_eq!(parent.get(&format!("/documents/{b_doc}/download")).await?.status, StatusCode::NOT_FOUND);
    // Nor the former practice's health record: only what practice A sent.
    let records = parent.get(&format!("/patients/{child}/records/conditions")).await?;
    assert_eq!(records.status, StatusCode::OK, "{}", records.body);
    assert!(records.body.contains("Eczema noted by A"), "{}", records.body);
    assert!(!records.body.contains("Asthma noted by B"), "{}", records.body);
    let summary = parent.get(&format!("/patients/{child}/records")).await?;
    assert!(!summary.body.contains("Asthma noted by B"), "{}", summary.body);
    // The child (a patient in their own right) still has both.
    assert_eq!(count(&w.t, "documents").await?, before + 2, "both letters are kept");
    Ok(())
}

/// Someone with no Tiaki account is invited by email: they get a code (no link), make their
/// account with it, land on the people they act for, see nothing of the child's until they
/// switch, and then act within the link's scopes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_without_an_account_is_invited_by_email_and_acts_once_they_have_one() -> Result<()> {
    let w = World::new().await?;
    let (child, _) = enrol_born(&w.t, w.practice_a, "ZPX1032", "child@example.nz", "2018-03-01").await?;
    let fields = [
        ("email", "kui@example.nz"),
        ("name", "Kui Grandmother"),
        ("relationship", "carer"),
        ("scope-appointments", "1"),
        ("identity_check", "Driver licence sighted"),
    ];
    let r = set_up(&w, child, &fields).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // Set up again before they made their account (a lost email): invited again, one account.
    let accounts = count(&w.t, "accounts").await?;
    assert_eq!(set_up(&w, child, &fields).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(count(&w.t, "accounts").await?, accounts);
    let invitations = "outbox WHERE subject = 'Your Tiaki account, to act for someone'";
    assert_eq!(count(&w.t, invitations).await?, 2);
    let mails = mails(&w.t).await?;
    let (_, subject, body) =
        mails.iter().rev().find(|(to, ..)| to == "kui@example.nz").ok_or_else(|| anyhow!("no invitation"))?;
    assert_eq!(subject, "Your Tiaki account, to act for someone");
    assert!(!body.contains("://") && !body.contains("Mia") && !body.contains("ZPX1032"), "{body}");
    let code = code_in(body).ok_or_else(|| anyhow!("no code: {body}"))?;
    // The code typed at the sign-in page makes the account and signs them in.
    let mut kui = w.t.browser([127, 0, 23, 1]);
    kui.get("/activate").await?;
    let page = kui.post("/activate", &[("step", "code"), ("code", &code)]).await?;
    assert!(page.body.contains("Kia ora Kui Grandmother"), "{}", page.body);
    let r = kui.post("/activate", &[("code", &code), ("password", PASSWORD), ("confirm", PASSWORD)]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), "/acting-for", "someone with no record of their own starts with whom they act for");
    let people = kui.get("/acting-for").await?;
    assert!(people.body.contains(&child.to_string()) && !people.body.contains("Me ("), "{}", people.body);
    // Before switching, nothing of the child's; their own inbox is theirs.
    assert_eq!(kui.get(&format!("/patients/{child}")).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(kui.get(&format!("/patients/{child}/appointments")).await?.status, StatusCode::NOT_FOUND);
    let inbox = kui.get("/inbox").await?;
    assert!(inbox.body.contains("You can act for someone in Tiaki"), "{}", inbox.body);
    assert_eq!(switch(&mut kui, &child.to_string()).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(kui.get(&format!("/patients/{child}/appointments")).await?.status, StatusCode::OK);
    assert_eq!(kui.get(&format!("/patients/{child}/messages")).await?.status, StatusCode::NOT_FOUND, "not in scope");
    // Signing in again later lands on the same choice.
    let mut again = w.t.browser([127, 0, 23, 2]);
    assert_eq!(again.sign_in("kui@example.nz", PASSWORD).await?.location(), "/acting-for");
    Ok(())
}

/// A legal representative of an adult who cannot accept for themselves: with the authority the
/// practice saw recorded, the link is live without the patient's answer, and the patient is
/// told (and can still revoke it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_representative_of_an_adult_who_cannot_accept_acts_without_the_answer() -> Result<()> {
    let w = World::new().await?;
    let mut rep = person(&w, "ZPX1008", "epoa@example.nz", [127, 0, 24, 1]).await?;
    let expires = app::domain::calendar::local_day(app::domain::Clock::now(&w.t.clock) + 300 * DAY).to_string();
    let fields = [
        ("email", "epoa@example.nz"),
        ("relationship", "legal_representative"),
        ("scope-appointments", "1"),
        ("expires", expires.as_str()),
        ("authority", "Enduring power of attorney (welfare), activated, sighted"),
        ("identity_check", "Passport sighted"),
    ];
    // Reception may not: that the patient cannot answer is a clinician's judgement.
    let r = set_up(&w, w.patient1, &fields).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("Only a GP or nurse"), "{}", r.body);
    assert_eq!(count(&w.t, "proxies").await?, 0);
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 24, 4]).await?;
    gp.get(&format!("/patients/{}/proxies", w.patient1)).await?;
    let r = gp.post(&format!("/patients/{}/proxies", w.patient1), &fields).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(count(&w.t, "proxies WHERE accepted_at IS NOT NULL").await?, 1, "accepted on the authority");
    assert_eq!(switch(&mut rep, &w.patient1.to_string()).await?.status, StatusCode::SEE_OTHER, "live at once");
    assert_eq!(rep.get(&format!("/patients/{}/appointments", w.patient1)).await?.status, StatusCode::OK);
    // The practice sees the authority it recorded; the patient is told and may revoke.
    let mut reception = w.signed_in("admin-a@example.nz", [127, 0, 24, 2]).await?;
    let page = reception.get(&format!("/patients/{}/proxies", w.patient1)).await?;
    assert!(page.body.contains("authority: Enduring power of attorney"), "{}", page.body);
    let mut patient = w.signed_in("p1@example.nz", [127, 0, 24, 3]).await?;
    assert!(patient.get("/inbox").await?.body.contains("Someone can now act for you"));
    let page = patient.get(&format!("/patients/{}/proxies", w.patient1)).await?;
    let link = first_link(&page.body)?;
    assert_eq!(patient.post(&format!("/proxies/{link}/revoke"), &[]).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(rep.get(&format!("/patients/{}/appointments", w.patient1)).await?.status, StatusCode::NOT_FOUND);
    Ok(())
}

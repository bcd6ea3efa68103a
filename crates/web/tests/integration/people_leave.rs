//! People leave (security review #1): a practice removes a member of staff, an operator
//! disables an account. From the next request, on every node, the person has no way in: no
//! session, no sign-in, no link; and the log says who did it.

use crate::support::*;
use anyhow::{Result, anyhow};
use app::domain::{AccountId, SessionId, StaffRole};
use axum::http::StatusCode;

/// The account of a member of a practice's staff, by email.
async fn staff_account(w: &World, email: &str) -> Result<AccountId> {
    let probe = app::Principal::Staff {
        account: AccountId::random(),
        session: SessionId::random(),
        practice: w.practice_a,
        role: StaffRole::Admin,
    };
    let staff =
        w.t.app
            .practices()
            .list_staff(&app::Caller::console(probe), w.practice_a)
            .await
            .map_err(|e| anyhow!("{e:?}"))?;
    staff.iter().find(|s| s.email == email).map(|s| s.account).ok_or_else(|| anyhow!("{email} is not staff"))
}

/// Signs in on this node and hands the session to a browser on another node.
async fn signed_in_on_another_node(w: &World, email: &str, ip: [u8; 4]) -> Result<Browser> {
    let here = w.signed_in(email, ip).await?;
    let mut there = w.t.browser_on_another_node(ip).await?;
    there.cookies.clone_from(&here.cookies);
    there.csrf.clone_from(&here.csrf);
    Ok(there)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_of_staff_loses_every_way_in_at_once_on_every_node() -> Result<()> {
    let w = World::new().await?;
    let nurse_email = "nurse-a@example.nz";
    staff(&w.t, w.practice_a, nurse_email, StaffRole::Nurse).await?;
    let nurse_id = staff_account(&w, nurse_email).await?;
    let practice_page = format!("/practices/{}", w.practice_a);
    let letter = format!("/api/v1/documents/{}/content", w.letter1);
    // The nurse works on another node; a second session of theirs, and a reset link they asked for.
    let mut nurse = signed_in_on_another_node(&w, nurse_email, [127, 0, 70, 1]).await?;
    let mut nurse_elsewhere = w.signed_in(nurse_email, [127, 0, 70, 2]).await?;
    assert_eq!(nurse.get(&practice_page).await?.status, StatusCode::OK);
    assert_eq!(nurse.get(&letter).await?.status, StatusCode::OK);
    let mut stranger = w.t.browser([127, 0, 70, 3]);
    stranger.post("/signin/forgot", &[("email", nurse_email)]).await?;
    let reset = latest_code_to(&w.t, nurse_email).await?;
    assert_eq!(reset.len(), 19, "a reset code was sent: {reset}");

    let remove = format!("/practices/{}/staff/remove", w.practice_a);
    let nurse_field = nurse_id.to_string();
    // Nobody else can: not the GP, not another practice's admin, not the patient.
    for email in ["gp-a@example.nz", "admin-b@example.nz", "p1@example.nz"] {
        let mut b = w.signed_in(email, [127, 0, 70, 4]).await?;
        assert_eq!(b.post(&remove, &[("account", &nurse_field)]).await?.status, StatusCode::NOT_FOUND, "{email}");
    }
    // Bad input changes nothing: a malformed id, someone not on the staff, the admin themselves.
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 70, 5]).await?;
    let admin_id = admin_of(&w.t, w.practice_a).await?.to_string();
    for (account, says) in [
        ("not-an-id", "not on this practice"),
        (&AccountId::random().to_string()[..], "not on this practice"),
        (&admin_id[..], "cannot remove yourself"),
    ] {
        let r = admin.post(&remove, &[("account", account)]).await?;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{account}");
        assert!(r.body.contains(says), "{account}: {}", r.body);
    }
    assert_eq!(nurse.get(&practice_page).await?.status, StatusCode::OK, "nothing happened yet");
    let page = admin.get(&practice_page).await?.body;
    assert!(page.contains(&format!("value=\"{nurse_id}\"")) && page.contains("Remove Staff Person"));

    // The admin removes the nurse on this node.
    let r = admin.post(&remove, &[("account", &nurse_field)]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(admin.get(r.location()).await?.body.contains("They have been removed"));
    assert!(!admin.get(&practice_page).await?.body.contains(nurse_email), "gone from the staff list");

    // On the other node, the very next request: no session, no document, no practice.
    assert_eq!(nurse.get("/api/v1/me").await?.status, StatusCode::UNAUTHORIZED);
    assert_eq!(nurse.get(&letter).await?.status, StatusCode::UNAUTHORIZED);
    let r = nurse.get(&practice_page).await?;
    assert!(r.status.is_redirection() && r.location().starts_with("/signin"), "{} {}", r.status, r.location());
    assert_eq!(nurse_elsewhere.get("/api/v1/me").await?.status, StatusCode::UNAUTHORIZED, "every session ended");
    // No way back in: not the password, not the reset link, not a new link.
    let mut again = w.t.browser_on_another_node([127, 0, 70, 6]).await?;
    let r = again.sign_in(nurse_email, PASSWORD).await?;
    assert_ne!(r.status, StatusCode::SEE_OTHER, "the password no longer signs in");
    assert_eq!(again.get("/api/v1/me").await?.status, StatusCode::UNAUTHORIZED);
    let token = reset.clone();
    let new = "a brand new passphrase 2026";
    let r = stranger.post("/reset-password", &[("code", &token), ("password", new), ("confirm", new)]).await?;
    assert_ne!(r.status, StatusCode::SEE_OTHER, "the reset code died with the account: {}", r.body);
    assert_ne!(w.t.browser([127, 0, 70, 7]).sign_in(nurse_email, new).await?.status, StatusCode::SEE_OTHER);
    let before = subjects(&w.t).await?.len();
    stranger.post("/signin/forgot", &[("email", nurse_email)]).await?;
    let sent: Vec<String> = subjects(&w.t).await?.into_iter().skip(before).collect();
    assert!(sent.is_empty(), "no new link for a closed account: {sent:?}");
    assert!(subjects(&w.t).await?.iter().any(|s| s == "You no longer have access to Tiaki"), "they were told");

    // The log says who removed whom, and that the account was disabled.
    let log = logged(&w).await?;
    assert!(
        log.iter()
            .any(|e| e.action == "delete" && e.kind == "staff" && e.object == nurse_field && e.outcome == "allowed"),
        "the removal is in the log"
    );
    assert!(log.iter().any(|e| e.action == "disable" && e.object == nurse_field), "and the account's closing");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_admin_changes_a_role_and_it_applies_from_the_next_request() -> Result<()> {
    let w = World::new().await?;
    staff(&w.t, w.practice_a, "po-a@example.nz", StaffRole::PrivacyOfficer).await?;
    let po = staff_account(&w, "po-a@example.nz").await?.to_string();
    let mut officer = signed_in_on_another_node(&w, "po-a@example.nz", [127, 0, 71, 1]).await?;
    let history = format!("/patients/{}/access", w.patient1);
    assert_eq!(officer.get(&history).await?.status, StatusCode::OK);
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 71, 2]).await?;
    let role = format!("/practices/{}/staff/role", w.practice_a);
    let r = admin.post(&role, &[("account", &po), ("role", "surgeon")]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Choose a role"));
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 71, 3]).await?;
    assert_eq!(gp.post(&role, &[("account", &po), ("role", "admin")]).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(officer.get(&history).await?.status, StatusCode::OK, "nothing changed");
    let r = admin.post(&role, &[("account", &po), ("role", "nurse")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    // Still signed in, but a nurse now: no access history.
    assert_eq!(officer.get("/api/v1/me").await?.status, StatusCode::OK);
    assert_eq!(officer.get(&history).await?.status, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_disables_an_account_with_a_reason_and_enables_it_again() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = signed_in_on_another_node(&w, "p1@example.nz", [127, 0, 72, 1]).await?;
    let record = format!("/patients/{}", w.patient1);
    assert_eq!(p1.get(&record).await?.status, StatusCode::OK);
    let mut op = w.operator().await?;
    let accounts = "/operator/accounts";
    let disable = |email: &'static str, reason: &'static str| {
        vec![("account_email", email), ("account_reason", reason), ("action", "disable")]
    };
    // Only operators; every bad input is a clear 422 that changes nothing.
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 72, 2]).await?;
    assert_eq!(admin.post(accounts, &disable("p1@example.nz", "password stolen")).await?.status, StatusCode::NOT_FOUND);
    for (form, says) in [
        (disable("p1@example.nz", ""), "Say why"),
        (disable("p1@example.nz", "x"), "Say why"),
        (disable("nobody@example.nz", "password stolen"), "No account has that email"),
        (disable("op@example.nz", "password stolen"), "your own account"),
        (vec![("account_email", "p1@example.nz"), ("action", "enable")], "not disabled"),
        (vec![("account_email", "p1@example.nz"), ("action", "delete")], "disable or enable"),
    ] {
        let r = op.post(accounts, &form).await?;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{form:?}");
        assert!(r.body.contains(says), "{form:?}: {}", r.body);
    }
    assert_eq!(p1.get(&record).await?.status, StatusCode::OK, "nothing happened yet");

    let r = op.post(accounts, &disable("P1@example.nz", "phone and password stolen")).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(op.get(r.location()).await?.body.contains("The account is disabled"));
    assert_eq!(p1.get("/api/v1/me").await?.status, StatusCode::UNAUTHORIZED, "signed out on the other node");
    assert_ne!(w.t.browser([127, 0, 72, 3]).sign_in("p1@example.nz", PASSWORD).await?.status, StatusCode::SEE_OTHER);
    let r = op.post(accounts, &disable("p1@example.nz", "phone and password stolen")).await?;
    assert!(r.body.contains("already disabled"));
    let reason = w.t.app.identity().disabled_reason(&op_caller(), "p1@example.nz").await;
    assert_eq!(reason.map_err(|e| anyhow!("{e:?}"))?.map(|d| d.reason).as_deref(), Some("phone and password stolen"));
    assert!(subjects(&w.t).await?.iter().any(|s| s == "Your Tiaki account has been closed"));

    let r = op.post(accounts, &[("account_email", "p1@example.nz"), ("action", "enable")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let mut back = w.t.browser([127, 0, 72, 4]);
    assert_eq!(back.sign_in("p1@example.nz", PASSWORD).await?.location(), record, "signs in again");

    // The console does the same (`tiaki admin disable-account` / `enable-account`).
    let console = w.t.app.console();
    console.set_account_disabled("p2@example.nz", Some("left New Zealand")).await.map_err(|e| anyhow!("{e:?}"))?;
    assert_ne!(w.t.browser([127, 0, 72, 5]).sign_in("p2@example.nz", PASSWORD).await?.status, StatusCode::SEE_OTHER);
    assert!(
        console.set_account_disabled("p2@example.nz", Some("no")).await.is_err(),
        "a reason of 5 characters at least"
    );
    console.set_account_disabled("p2@example.nz", None).await.map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!(w.t.browser([127, 0, 72, 6]).sign_in("p2@example.nz", PASSWORD).await?.status, StatusCode::SEE_OTHER);

    let log = logged(&w).await?;
    let done = |action: &str| log.iter().filter(|e| e.action == action && e.outcome == "allowed").count();
    assert_eq!((done("disable"), done("enable")), (2, 2), "two disablings and two enablings");
    assert!(
        log.iter().any(|e| e.action == "disable" && e.outcome != "allowed"),
        "the practice admin's attempt is on the record as refused"
    );
    Ok(())
}

/// One event of the exported log, as the test reads it.
struct Logged {
    action: String,
    kind: String,
    object: String,
    outcome: String,
}

/// Every event in the log, from the operators' export (a FHIR `AuditEvent` bundle).
async fn logged(w: &World) -> Result<Vec<Logged>> {
    let bundle = w.t.app.console().export_audit_range(0, i64::MAX).await?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    Ok(bundle["entry"]
        .as_array()
        .ok_or_else(|| anyhow!("no entries"))?
        .iter()
        .map(|e| {
            let r = &e["resource"];
            // The object is the entity that is not the patient.
            let object = r["entity"].as_array().and_then(|es| es.iter().find(|x| x.get("description").is_some()));
            Logged {
                action: text(&r["subtype"][0]["code"]),
                kind: object.map(|o| text(&o["description"])).unwrap_or_default(),
                object: object.map(|o| text(&o["what"]["identifier"]["value"])).unwrap_or_default(),
                outcome: text(&r["outcomeDesc"]),
            }
        })
        .collect())
}

/// An operator as a caller of the identity service.
fn op_caller() -> app::Caller {
    app::Caller::console(app::Principal::Operator { account: AccountId::random(), session: SessionId::random() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_who_leaves_or_is_unenrolled_is_out_of_that_practices_reach_at_once() -> Result<()> {
    let w = World::new().await?;
    let record = format!("/patients/{}", w.patient1);
    let letter = format!("/api/v1/documents/{}/content", w.letter1);
    let mut gp = signed_in_on_another_node(&w, "gp-a@example.nz", [127, 0, 73, 1]).await?;
    assert_eq!(gp.get(&record).await?.status, StatusCode::OK);
    assert_eq!(gp.get(&letter).await?.status, StatusCode::OK);
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 73, 2]).await?;
    assert!(p1.get(&record).await?.body.contains("Leave Practice A"), "the patient's page offers it");
    // Only the patient, and only at a practice they are enrolled at.
    let leave_a = format!("/practices/{}/leave", w.practice_a);
    let leave_b = format!("/practices/{}/leave", w.practice_b);
    assert_eq!(p1.post(&leave_b, &[]).await?.status, StatusCode::NOT_FOUND, "not enrolled there");
    assert_eq!(gp.post(&leave_a, &[]).await?.status, StatusCode::NOT_FOUND, "staff cannot leave for them");
    let mut p2 = w.signed_in("p2@example.nz", [127, 0, 73, 3]).await?;
    assert_eq!(p2.post(&leave_a, &[]).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(gp.get(&record).await?.status, StatusCode::OK, "nothing happened yet");

    let r = p1.post(&leave_a, &[]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = p1.get(r.location()).await?;
    assert!(page.body.contains("You have left the practice"), "{} {} {}", r.location(), page.status, page.body);
    // On the other node, at once: the practice's staff reach neither the record nor the letter.
    assert_eq!(gp.get(&record).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(gp.get(&letter).await?.status, StatusCode::NOT_FOUND);
    assert!(!gp.get(&format!("/practices/{}", w.practice_a)).await?.body.contains(&w.patient1.to_string()));
    // What the practice sent stays the patient's.
    assert_eq!(p1.get(&letter).await?.status, StatusCode::OK);
    assert_eq!(p1.post(&leave_a, &[]).await?.status, StatusCode::NOT_FOUND, "left already");

    // A practice's admin ends an enrolment: only at their own practice.
    let unenrol = format!("/patients/{}/unenrol", w.patient2);
    let mut admin_a = w.signed_in("admin-a@example.nz", [127, 0, 73, 4]).await?;
    assert_eq!(admin_a.post(&unenrol, &[]).await?.status, StatusCode::NOT_FOUND, "not their patient");
    assert_eq!(p2.post(&unenrol, &[]).await?.status, StatusCode::NOT_FOUND, "patients leave, they do not unenrol");
    let mut admin_b = signed_in_on_another_node(&w, "admin-b@example.nz", [127, 0, 73, 5]).await?;
    let p2_record = format!("/patients/{}", w.patient2);
    assert!(admin_b.get(&p2_record).await?.body.contains("End enrolment at this practice"));
    let r = admin_b.post(&unenrol, &[]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("/practices/{}?done=unenrolled", w.practice_b));
    assert_eq!(admin_b.get(&p2_record).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(p2.get(&p2_record).await?.status, StatusCode::OK, "their account is still theirs");
    assert!(subjects(&w.t).await?.iter().any(|s| s == "A practice has ended your enrolment in Tiaki"));

    let log = logged(&w).await?;
    let ended: Vec<&Logged> =
        log.iter().filter(|e| e.kind == "enrolment" && e.action == "delete" && e.outcome == "allowed").collect();
    assert_eq!(ended.len(), 2, "both ends are on the record");
    Ok(())
}

//! Enrolment cannot capture an identity (review #2, #8): an NHI that already has an account is
//! only asked for, never joined silently; the practice learns nothing from its guess; only the
//! patient's own practice resets their sign-in, and they see it in their history.

use crate::support::*;
use anyhow::Result;
use axum::http::StatusCode;

async fn enrol_as(b: &mut Browser, w: &World, name: &str, email: &str) -> Result<(Reply, Reply)> {
    let page = b
        .post(
            &format!("/practices/{}/patients", w.practice_b),
            &[("nhi", "ZZZ0016"), ("name", name), ("date_of_birth", "1980-05-06"), ("email", email)],
        )
        .await?;
    let api = b
        .post_json(
            &format!("/api/v1/practices/{}/patients", w.practice_b),
            &format!(r#"{{"nhi":"ZZZ0016","name":"{name}","date_of_birth":"1980-05-06","email":"{email}"}}"#),
        )
        .await?;
    Ok((page, api))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_nhi_gives_another_practice_nothing_until_its_holder_accepts() -> Result<()> {
    let w = World::new().await?;
    let mut staff_b = w.signed_in("admin-b@example.nz", [127, 0, 12, 1]).await?;
    let mails_before = mails(&w.t).await?.len();

    // A wrong guess at the name, with another email: the answer says only "will be asked".
    let (wrong_page, wrong_api) = enrol_as(&mut staff_b, &w, "Guess Name", "attacker@example.nz").await?;
    assert_eq!(wrong_page.status, StatusCode::SEE_OTHER);
    assert!(wrong_page.location().ends_with("done=awaiting-confirmation"), "{}", wrong_page.location());
    assert_eq!(wrong_api.status, StatusCode::ACCEPTED);
    assert_eq!(mails(&w.t).await?.len(), mails_before, "a wrong guess asks nobody and mails nobody");
    let mut patient = w.signed_in("p1@example.nz", [127, 0, 13, 1]).await?;
    let own = format!("/patients/{}", w.patient1);
    assert!(!patient.get(&own).await?.body.contains("asking to see your records"));

    let waiting = |body: &str| {
        let after = body.split("Waiting for the patient").nth(1).unwrap_or_default();
        after.split("</section>").next().unwrap_or_default().to_owned()
    };
    let waiting_before = waiting(&staff_b.get(&format!("/practices/{}", w.practice_b)).await?.body);
    assert!(waiting_before.contains("ZZZ0016"));
    // The right name and date of birth, days later and still with another email: exactly the
    // same answer, and the waiting list (its date included) does not change either.
    w.t.clock.advance(3 * 86_400);
    staff_b = w.signed_in("admin-b@example.nz", [127, 0, 12, 2]).await?;
    patient = w.signed_in("p1@example.nz", [127, 0, 13, 2]).await?;
    let (right_page, right_api) = enrol_as(&mut staff_b, &w, "pat ient", "other@example.nz").await?;
    assert_eq!(waiting(&staff_b.get(&format!("/practices/{}", w.practice_b)).await?.body), waiting_before);
    assert_eq!(
        (right_page.status, right_page.location(), right_api.status, &right_api.body),
        (wrong_page.status, wrong_page.location(), wrong_api.status, &wrong_api.body),
        "the practice cannot tell a right guess from a wrong one"
    );
    assert!(right_api.body.contains("awaiting_confirmation") && !right_api.body.contains(&w.patient1.to_string()));
    let shown = staff_b.get(&format!("/practices/{}?done=awaiting-confirmation", w.practice_b)).await?.body;
    assert!(shown.contains("will be asked to confirm") && shown.contains("Waiting for the patient"));
    assert!(!shown.contains("p1@example.nz"), "the account's email is not shown to the practice");

    // The notice goes to the account's verified email only, once, with no link.
    let new: Vec<_> = mails(&w.t).await?.into_iter().filter(|(_, s, _)| s.contains("asks to see")).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    let (to, subject, body) = &new[0];
    assert_eq!((to.as_str(), subject.as_str()), ("p1@example.nz", "A practice asks to see your Tiaki records"));
    assert!(body.contains("Practice B") && !body.contains("http"), "{body}");

    // Until the holder accepts, practice B has nothing: not the record, not the documents.
    assert_eq!(staff_b.get(&own).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(staff_b.get(&format!("{own}/documents")).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(staff_b.get(&format!("/api/v1/patients/{}", w.patient1)).await?.status, StatusCode::NOT_FOUND);
    assert!(!shown.contains(&w.patient1.to_string()));

    // Another patient cannot answer it; a made-up answer changes nothing.
    let mut other = w.signed_in("p2@example.nz", [127, 0, 14, 1]).await?;
    let answer = format!("/practices/{}/enrolment-request", w.practice_b);
    assert_eq!(other.post(&answer, &[("answer", "accept")]).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(patient.post(&answer, &[("answer", "yes please")]).await?.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(staff_b.get(&own).await?.status, StatusCode::NOT_FOUND);

    // The holder sees who asks, and accepts: from then on B sees the record.
    let page = patient.get(&own).await?.body;
    assert!(page.contains("Practices asking to see your records") && page.contains("Accept Practice B"), "{page}");
    let r = patient.post(&answer, &[("answer", "accept")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().ends_with("done=request-accepted"));
    assert_eq!(staff_b.get(&own).await?.status, StatusCode::OK);
    assert_eq!(patient.post(&answer, &[("answer", "accept")]).await?.status, StatusCode::NOT_FOUND, "answered once");
    let history = patient.get(&format!("{own}/access")).await?.body;
    assert!(history.contains("Accepted a practice"), "the answer is in their history: {history}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_request_leaves_the_practice_waiting_and_seeing_nothing() -> Result<()> {
    let w = World::new().await?;
    let mut staff_b = w.signed_in("admin-b@example.nz", [127, 0, 12, 1]).await?;
    enrol_as(&mut staff_b, &w, "Pat Ient", "p1@example.nz").await?;
    let mut patient = w.signed_in("p1@example.nz", [127, 0, 13, 1]).await?;
    let answer = format!("/practices/{}/enrolment-request", w.practice_b);
    let r = patient.post(&answer, &[("answer", "decline")]).await?;
    assert!(r.location().ends_with("done=request-declined"));
    assert_eq!(staff_b.get(&format!("/patients/{}", w.patient1)).await?.status, StatusCode::NOT_FOUND);
    // Asking again within 30 days changes nothing and mails nobody.
    let before = mails(&w.t).await?.len();
    let (page, _) = enrol_as(&mut staff_b, &w, "Pat Ient", "p1@example.nz").await?;
    assert!(page.location().ends_with("done=awaiting-confirmation"));
    assert_eq!(mails(&w.t).await?.len(), before);
    assert!(!patient.get(&format!("/patients/{}", w.patient1)).await?.body.contains("Accept Practice B"));
    // The practice still sees it as waiting: a refusal is the patient's business.
    let shown = staff_b.get(&format!("/practices/{}", w.practice_b)).await?.body;
    assert!(shown.contains("Waiting for the patient") && shown.contains("ZZZ0016"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_patients_own_practice_resets_their_sign_in_and_they_see_it() -> Result<()> {
    let w = World::new().await?;
    let reset = |p: app::domain::PracticeId| format!("/practices/{p}/reset-factors");
    let fields = [("reset_email", "p1@example.nz"), ("checked", "Mere, photo ID at the front desk")];
    let reset_mail = |m: &Vec<(String, String, String)>| {
        m.iter().filter(|(to, s, _)| to == "p1@example.nz" && s == "Your Tiaki sign-in was reset").count()
    };

    // An operator sees no patients: a patient's reset is refused, as not found.
    let mut op = w.operator().await?;
    assert_eq!(op.post(&reset(w.practice_a), &fields).await?.status, StatusCode::NOT_FOUND);
    // Another practice's admin neither: the patient is not enrolled there.
    let mut admin_b = w.signed_in("admin-b@example.nz", [127, 0, 12, 1]).await?;
    assert_eq!(admin_b.post(&reset(w.practice_b), &fields).await?.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reset_mail(&mails(&w.t).await?), 0, "nothing was reset");
    // Nor from the server's console.
    let console = w.t.app.console().reset_factors("p1@example.nz", "Mere, photo ID at the front desk").await;
    assert!(matches!(console, Err(app::AppError::Invalid(ref f)) if f[0].message.contains("patient's account")));

    // The patient's own practice's admin may, and the patient's own history shows it.
    let mut admin_a = w.signed_in("admin-a@example.nz", [127, 0, 11, 1]).await?;
    let r = admin_a.post(&reset(w.practice_a), &fields).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(reset_mail(&mails(&w.t).await?), 1);
    let mut patient = w.signed_in("p1@example.nz", [127, 0, 13, 1]).await?;
    let history = patient.get(&format!("/patients/{}/access", w.patient1)).await?.body;
    assert!(history.contains("Reset the sign-in"), "the reset is in the patient's own history");
    assert!(history.contains("Practice A"));
    Ok(())
}

/// Issue 13, item 2: an operator resets a patient's sign-in only when a second operator approves
/// — never their own request — and the patient sees it in their history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_resets_a_patient_only_with_a_second_operators_approval() -> Result<()> {
    let w = World::new().await?;
    let link = w.t.app.console().create_operator("Second Operator", "op2@example.nz").await?;
    w.t.app.console().set_password_by_link(&link, PASSWORD, PASSWORD, None, None).await?;
    fixture_totp(&w.t, "op2@example.nz").await?;
    let reset_mails = || async {
        anyhow::Ok(
            mails(&w.t)
                .await?
                .iter()
                .filter(|(to, s, _)| to == "p1@example.nz" && s.contains("sign-in was reset"))
                .count(),
        )
    };
    let mut op1 = w.operator().await?;
    let check = "Ana, video call with photo ID";
    // Only a patient's account, and only with the check recorded.
    let r = op1.post("/operator/patient-resets", &[("reset_email", "gp-a@example.nz"), ("checked", check)]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = op1.post("/operator/patient-resets", &[("reset_email", "p1@example.nz"), ("checked", "ok")]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = op1.post("/operator/patient-resets", &[("reset_email", "p1@example.nz"), ("checked", check)]).await?;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/operator?done=reset-requested"));
    assert_eq!(reset_mails().await?, 0, "asking changes nothing");
    let page = op1.get("/operator").await?.body;
    assert!(page.contains("Waiting for a second operator") && page.contains("Yours: another operator approves it"));
    let id = page.split("name=\"request\" value=\"").nth(1).map(|s| s.split('"').next().unwrap_or_default().to_owned());
    assert!(id.is_none(), "no approve button for one's own request");
    // The same operator cannot approve it, even by posting the form.
    let mut op2 = w.signed_in("op2@example.nz", [127, 0, 0, 19]).await?;
    let page = op2.get("/operator").await?.body;
    let id =
        page.split("name=\"request\" value=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default().to_owned();
    assert_eq!(id.len(), 36, "the second operator sees it to approve");
    let own = op1.post("/operator/patient-resets/approve", &[("request", &id)]).await?;
    assert_eq!(own.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(own.body.contains("a second operator must approve it"));
    assert_eq!(reset_mails().await?, 0);
    // Nobody else can approve either.
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 0, 20]).await?;
    assert_eq!(
        admin.post("/operator/patient-resets/approve", &[("request", &id)]).await?.status,
        StatusCode::NOT_FOUND
    );
    // The second operator approves: reset, emailed, in the patient's own history; once only.
    let r = op2.post("/operator/patient-resets/approve", &[("request", &id)]).await?;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/operator?done=reset-approved"));
    assert_eq!(reset_mails().await?, 1);
    assert_eq!(
        op2.post("/operator/patient-resets/approve", &[("request", &id)]).await?.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let mut patient = w.signed_in("p1@example.nz", [127, 0, 13, 9]).await?;
    let history = patient.get(&format!("/patients/{}/access", w.patient1)).await?.body;
    assert!(history.contains("Reset the sign-in") && history.contains("approved by a second operator"), "{history}");
    Ok(())
}

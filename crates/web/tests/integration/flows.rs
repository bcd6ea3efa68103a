//! Sign-in, sessions and the practice and operator journeys, end to end through the router.

use crate::support::*;
use anyhow::Result;
use axum::http::{StatusCode, header};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_never_reveals_whether_an_email_exists() -> Result<()> {
    let w = World::new().await?;
    let mut b = w.t.browser([127, 0, 4, 1]);
    let wrong = b.sign_in("p1@example.nz", "not the password at all").await?;
    let unknown = b.sign_in("nobody@example.nz", "not the password at all").await?;
    let not_yet_active = {
        enrol(&w.t, w.practice_a, "ZAA0067", "inactive@example.nz").await?;
        b.sign_in("inactive@example.nz", "not the password at all").await?
    };
    for r in [&wrong, &unknown, &not_yet_active] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("The email or password is not right"));
    }
    let strip = |s: &str| s.replace(&extract_csrf(s).unwrap_or_default(), "");
    assert_eq!(
        strip(&wrong.body).replace("p1@example.nz", "X"),
        strip(&unknown.body).replace("nobody@example.nz", "X")
    );
    assert_eq!(
        strip(&not_yet_active.body).replace("inactive@example.nz", "X"),
        strip(&unknown.body).replace("nobody@example.nz", "X"),
        "an account not yet activated looks like no account"
    );
    // The same cost too: `secrets::an_unknown_email_costs_the_same_password_check_as_a_known_one`.
    assert!(!b.cookies.contains_key("tiaki_session"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_renewed_listed_ended_and_expire() -> Result<()> {
    let w = World::new().await?;
    let mut phone = w.t.browser([127, 0, 5, 1]);
    phone.get("/signin").await?;
    let pre = phone.cookies.get("tiaki_pre").cloned();
    assert!(pre.is_some(), "a pre-session cookie carries the sign-in form's CSRF binding");
    let r = phone.sign_in("p1@example.nz", PASSWORD).await?;
    let set_cookie: Vec<_> = r.headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
    let session_cookie = set_cookie.iter().find(|c| c.starts_with("tiaki_session=")).copied().unwrap_or_default();
    assert!(session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Strict"), "{session_cookie}");
    let token = phone.cookies["tiaki_session"].clone();
    assert_eq!(token.len(), 64, "256-bit token");
    let mut laptop = w.signed_in("p1@example.nz", [127, 0, 5, 2]).await?;
    assert_ne!(laptop.cookies["tiaki_session"], token, "each sign-in gets a new token");

    let page = laptop.get("/account/sessions").await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("127.0.5.1") && page.body.contains("127.0.5.2"));
    assert!(page.body.contains("Chrome on Linux"));
    assert!(page.body.contains("(this device)"));

    // End the phone's session from the laptop.
    let r = laptop.post("/account/sessions/end-others", &[]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(phone.get("/home").await?.location(), "/signin", "the phone is signed out");
    let home = format!("/patients/{}", w.patient1);
    assert_eq!(laptop.get("/home").await?.location(), home, "the laptop's session lives on");
    assert_eq!(laptop.get("/api/v1/me").await?.status, StatusCode::OK);

    // Idle expiry: 30 minutes without use ends the session.
    w.t.clock.advance(31 * 60);
    assert_eq!(laptop.get("/home").await?.location(), "/signin");

    // Sliding idle expiry: use within every 29 minutes keeps a session alive for 11 h 36 min,
    // far past the 30-minute idle limit…
    let mut busy = w.signed_in("p1@example.nz", [127, 0, 5, 3]).await?;
    for step in 1..=24 {
        w.t.clock.advance(29 * 60);
        let r = busy.get("/account/sessions").await?;
        assert_eq!(r.status, StatusCode::OK, "still signed in after {} minutes", step * 29);
        assert!(r.body.contains("(this device)"), "the sessions page itself, step {step}");
    }
    assert_eq!(busy.get("/home").await?.location(), home, "alive at 11 h 36 min");
    // …but activity does not keep it past the absolute 12 hours.
    w.t.clock.advance(29 * 60);
    assert_eq!(busy.get("/home").await?.location(), "/signin");
    assert_eq!(busy.get("/api/v1/me").await?.status, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session_on_the_server() -> Result<()> {
    let w = World::new().await?;
    let mut b = w.signed_in("p1@example.nz", [127, 0, 6, 1]).await?;
    let stolen = b.cookies["tiaki_session"].clone();
    let r = b.post("/signout", &[]).await?;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("You have signed out"));
    assert!(!b.cookies.contains_key("tiaki_session"));
    let mut thief = w.t.browser([127, 0, 6, 2]);
    thief.cookies.insert("tiaki_session".into(), stolen);
    assert_eq!(thief.get(&format!("/patients/{}", w.patient1)).await?.location(), "/signin");
    assert_eq!(thief.get("/api/v1/me").await?.status, StatusCode::UNAUTHORIZED);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_rate_limited_per_account_and_per_address() -> Result<()> {
    let w = World::new().await?;
    // Five failures from different addresses are free; then the account backs off (even the
    // right password waits, and is not checked)…
    for i in 0..5u8 {
        let mut b = w.t.browser([10, 1, 0, i]);
        assert_eq!(b.sign_in("p1@example.nz", "wrong password here").await?.status, StatusCode::UNAUTHORIZED);
    }
    let mut b = w.t.browser([10, 1, 1, 1]);
    let r = b.sign_in("p1@example.nz", PASSWORD).await?;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("2"));
    // …without affecting other accounts, and the back-off passes.
    assert_eq!(w.t.browser([10, 1, 1, 2]).sign_in("p2@example.nz", PASSWORD).await?.status, StatusCode::SEE_OTHER);
    w.t.clock.advance(2);
    assert_eq!(b.sign_in("p1@example.nz", PASSWORD).await?.status, StatusCode::SEE_OTHER);
    // One address trying many accounts is limited too.
    let mut sprayer = w.t.browser([10, 2, 0, 1]);
    let mut limited = false;
    for i in 0..40 {
        if sprayer.sign_in(&format!("user{i}@example.nz"), "password guess 1").await?.status
            == StatusCode::TOO_MANY_REQUESTS
        {
            limited = true;
            break;
        }
    }
    assert!(limited, "per-address limit applies");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_from_an_untrusted_peer_cannot_dodge_the_limit() -> Result<()> {
    let w = World::new().await?;
    let mut b = w.t.browser([10, 3, 0, 1]);
    let mut limited = false;
    for i in 0..40 {
        b.get("/signin").await?;
        let csrf = b.csrf.clone().unwrap_or_default();
        let body = serde_urlencoded::to_string([
            ("csrf", csrf.as_str()),
            ("email", &format!("u{i}@example.nz")),
            ("password", "guess guess guess"),
        ])?;
        let r = b
            .send_with_header(
                axum::http::Method::POST,
                "/signin",
                "x-forwarded-for",
                &format!("198.51.100.{i}"),
                body.into_bytes(),
            )
            .await?;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "a forged X-Forwarded-For is ignored");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn practice_admin_invites_staff_and_enrols_patients_who_activate() -> Result<()> {
    let w = World::new().await?;
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 7, 1]).await?;
    let page = admin.get(&format!("/practices/{}", w.practice_a)).await?;
    assert!(page.body.contains("Invite a member of staff") && page.body.contains("Enrol a patient"));
    let r = admin
        .post(
            &format!("/practices/{}/staff", w.practice_a),
            &[("staff_name", "Nora Nurse"), ("staff_email", "nora@example.nz"), ("role", "nurse")],
        )
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let again = admin
        .post(
            &format!("/practices/{}/staff", w.practice_a),
            &[("staff_name", "Nora Again"), ("staff_email", "NORA@example.nz"), ("role", "gp")],
        )
        .await?;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("already in use"));
    let bad_role = admin
        .post(
            &format!("/practices/{}/staff", w.practice_a),
            &[("staff_name", "X"), ("staff_email", "x@example.nz"), ("role", "superuser")],
        )
        .await?;
    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = admin
        .post(
            &format!("/practices/{}/patients", w.practice_a),
            &[
                ("nhi", "zaa0067"),
                ("name", "Wiremu Tane"),
                ("date_of_birth", "1975-02-03"),
                ("email", "wiremu@example.nz"),
            ],
        )
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = admin.get(r.location()).await?;
    assert!(page.body.contains("emailed a code"));
    assert!(page.body.contains("ZAA0067") && page.body.contains("Invited"));
    // A GP sees the patient list but not the staff admin.
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 7, 2]).await?;
    let page = gp.get(&format!("/practices/{}", w.practice_a)).await?;
    assert!(page.body.contains("ZAA0067") && !page.body.contains("Invite a member of staff"));
    // The nurse and the patient activate with their emailed codes, typed at the sign-in page.
    for (email, marker) in [("nora@example.nz", "Nora Nurse"), ("wiremu@example.nz", "Wiremu Tane")] {
        let link = latest_code_to(&w.t, email).await?;
        let mut b = w.t.browser([127, 0, 7, 3]);
        assert!(b.get("/signin").await?.body.contains("href=\"/activate\""), "the sign-in page leads to the code page");
        assert!(b.get("/activate").await?.body.contains("name=\"code\""));
        let page = b.post("/activate", &[("step", "code"), ("code", &link)]).await?;
        assert_eq!(page.status, StatusCode::OK, "{email}: {}", page.body);
        assert!(page.body.contains(marker), "{email}: the page greets them by name");
        let token = link.clone();
        let short = b.post("/activate", &[("code", &token), ("password", "short"), ("confirm", "short")]).await?;
        assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY, "{email}");
        let r = b.post("/activate", &[("code", &token), ("password", PASSWORD), ("confirm", PASSWORD)]).await?;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{email}: {}", r.body);
        assert_eq!(
            b.get("/api/v1/me").await?.status,
            if email.starts_with("nora") { StatusCode::FORBIDDEN } else { StatusCode::OK },
            "{email}: signed in (staff confined until a second factor)"
        );
        // The code worked once.
        let mut again = w.t.browser([127, 0, 7, 4]);
        let used = again.post("/activate", &[("code", &token), ("password", PASSWORD), ("confirm", PASSWORD)]).await?;
        assert_eq!(used.status, StatusCode::UNPROCESSABLE_ENTITY, "{email}: a used code opens nothing");
        assert!(used.body.contains("already been used"), "{email}: {}", used.body);
        assert!(!again.cookies.contains_key("tiaki_session"));
        // And the password now signs in.
        let mut later = w.t.browser([127, 0, 7, 5]);
        let r = later.sign_in(email, PASSWORD).await?;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{email}");
    }
    let page = admin.get(&format!("/practices/{}", w.practice_a)).await?;
    assert!(!page.body.contains("Invited"), "both show as active now");
    assert_eq!(
        gp.post(
            &format!("/practices/{}/staff", w.practice_a),
            &[("staff_name", "Y"), ("staff_email", "y@example.nz"), ("role", "nurse")]
        )
        .await?
        .status,
        StatusCode::NOT_FOUND
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_link_sets_up_the_first_operator_once() -> Result<()> {
    let t = TestApp::new().await?;
    let link = t.app.console().first_start_link().await?.unwrap_or_default();
    let token = link.clone();
    let mut b = t.browser([127, 0, 8, 1]);
    let page = b.post("/activate", &[("step", "code"), ("code", &token)]).await?;
    assert!(page.body.contains("Set up Tiaki"), "{}", page.body);
    let r = b
        .post(
            "/activate",
            &[("code", &token), ("name", ""), ("email", "not-an-email"), ("password", "short"), ("confirm", "short")],
        )
        .await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("There is a problem"));
    let r = b
        .post(
            "/activate",
            &[
                ("code", &token),
                ("name", "First Operator"),
                ("email", "first@example.nz"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // An operator must set up a second factor before anything else.
    assert_eq!(r.location(), "/account/security");
    assert_eq!(b.get("/operator").await?.location(), "/account/security", "confined to set-up");
    assert_eq!(b.get("/api/v1/me").await?.status, StatusCode::FORBIDDEN);
    assert!(b.get("/account/security").await?.body.contains("Your role needs a second step"));
    let r = b.post("/account/sessions/end-others", &[]).await?;
    assert_eq!(r.location(), "/account/security", "cannot sign anyone out before the second factor");
    set_up_authenticator(&mut b, &t).await?;
    assert_eq!(b.get("/operator").await?.status, StatusCode::OK, "this session proved the new factor");
    assert!(t.app.console().first_start_link().await?.is_none(), "no new link once an operator exists");
    // The used link sets up nobody else.
    let mut late = t.browser([127, 0, 8, 2]);
    let r = late.post("/activate", &[("step", "code"), ("code", &token)]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = late
        .post(
            "/activate",
            &[
                ("code", &token),
                ("name", "Second First"),
                ("email", "intruder@example.nz"),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("already been used"), "{}", r.body);
    assert!(!late.cookies.contains_key("tiaki_session"));
    assert_eq!(late.sign_in("intruder@example.nz", PASSWORD).await?.status, StatusCode::UNAUTHORIZED);
    // The operator adds a practice; its admin's invitation goes to the outbox.
    let mut op = b.clone();
    op.get("/operator").await?;
    let r = op
        .post(
            "/operator/practices",
            &[
                ("name", "Harbour Medical"),
                ("hpi_facility_id", "FHM123-C"),
                ("region", "Wellington"),
                ("admin_name", "Hine"),
                ("admin_email", "hine@example.nz"),
            ],
        )
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = op.get("/operator").await?;
    assert!(page.body.contains("Harbour Medical") && page.body.contains("FHM123-C"));
    let dup = op
        .post(
            "/operator/practices",
            &[
                ("name", "Copy"),
                ("hpi_facility_id", "fhm123-c"),
                ("region", "Wellington"),
                ("admin_name", "Other"),
                ("admin_email", "other@example.nz"),
            ],
        )
        .await?;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(dup.body.contains("HPI facility id is already in use"));
    assert_eq!(t.app.pending_mail().await?, 2, "the notice of the new authenticator, and the admin's invitation");
    // Operators are made by operators.
    let r = op
        .post("/operator/operators", &[("operator_name", "Second Op"), ("operator_email", "second@example.nz")])
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let dup =
        op.post("/operator/operators", &[("operator_name", "Copy"), ("operator_email", "SECOND@example.nz")]).await?;
    assert_eq!(dup.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(dup.body.contains("already in use"));
    assert_eq!(t.app.pending_mail().await?, 3);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_strict_security_headers() -> Result<()> {
    let w = World::new().await?;
    let mut b = w.signed_in("p1@example.nz", [127, 0, 9, 1]).await?;
    let r = b.get(&format!("/patients/{}", w.patient1)).await?;
    let h = |n: &str| r.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let csp = h("content-security-policy");
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
    );
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("referrer-policy"), "no-referrer");
    assert_eq!(h("cache-control"), "no-store");
    assert!(!h("x-request-id").is_empty());
    assert!(!r.body.contains("<script") && !r.body.contains("style="), "no inline script or style");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_only_invite_a_first_admin() -> Result<()> {
    let w = World::new().await?;
    let op = w.operator().await?;
    let _ = op;
    let caller = |p| app::Caller::console(p);
    let operator = app::Principal::Operator {
        account: app::domain::AccountId::random(),
        session: app::domain::SessionId::random(),
    };
    let form = |role: &str| app::InviteStaffForm {
        name: "Sneaky".into(),
        email: format!("{role}@sneaky.example"),
        role: role.into(),
    };
    let nurse = w.t.app.practices().invite_staff(&caller(operator.clone()), w.practice_a, &form("nurse")).await;
    assert!(
        matches!(nurse, Err(app::AppError::Invalid(ref f)) if f[0].message.contains("only invite a practice admin")),
        "{nurse:?}"
    );
    let admin = w.t.app.practices().invite_staff(&caller(operator.clone()), w.practice_a, &form("admin")).await;
    assert!(
        matches!(admin, Err(app::AppError::Invalid(ref f)) if f[0].message.contains("already has an active admin")),
        "{admin:?}"
    );
    // A practice whose admin has not joined yet can be given one.
    let (fresh, _) =
        w.t.app
            .console()
            .create_practice(&app::PracticeForm {
                name: "Fresh".into(),
                hpi_facility_id: "FFR001-A".into(),
                region: "Otago".into(),
                admin_name: "Never Joined".into(),
                admin_email: "never@example.nz".into(),
            })
            .await?;
    assert!(w.t.app.practices().invite_staff(&caller(operator), fresh, &form("admin")).await.is_ok());
    Ok(())
}

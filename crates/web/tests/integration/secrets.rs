//! Promises about secrets and relationships that no other test would notice breaking: tokens are
//! stored only as hashes, an unknown email costs the same password check as a known one, and a
//! practice's staff lose a patient's letters the moment the patient leaves.

use crate::support::*;
use anyhow::{Context, Result};
use axum::http::StatusCode;
use sqlx::{Connection, Row};

/// Every row of every table of the test's database, as lower-case text (blobs as hex), one
/// string per table.
async fn every_row(t: &TestApp) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                .fetch_all(&mut c)
                .await?;
        for table in tables {
            let cols: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info(\"{table}\")")))
                .fetch_all(&mut c)
                .await?
                .iter()
                .map(|r| r.get::<String, _>("name"))
                .collect();
            let expr = cols.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ");
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {expr} FROM \"{table}\"")))
                .fetch_all(&mut c)
                .await?;
            out.push((table, rows.join("\n").to_lowercase()));
        }
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&mut c)
        .await?;
        for table in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT t::text FROM \"{table}\" t")))
                    .fetch_all(&mut c)
                    .await?;
            out.push((table, rows.join("\n").to_lowercase()));
        }
    }
    assert!(out.len() > 20, "every table was read: {}", out.len());
    Ok(out)
}

/// Sessions, challenge and device cookies, activation, reset, set-up and email-change links,
/// passkey ceremonies and API client secrets: none is in the database as it was handed out —
/// as text or as bytes — only its hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_stored_only_as_hashes() -> Result<()> {
    let w = World::new().await?;
    let mut tokens: Vec<(String, String)> = Vec::new();
    // Live sessions of a patient, a member of staff and an operator, with their other cookies.
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 70, 1]).await?;
    let gp = w.signed_in("gp-a@example.nz", [127, 0, 70, 2]).await?;
    let op = w.operator().await?;
    // A password that is right, waiting for its second factor (the challenge cookie).
    let mut half = w.t.browser([127, 0, 70, 3]);
    half.sign_in("admin-a@example.nz", PASSWORD).await?;
    for b in [&p1, &gp, &op, &half] {
        for (name, value) in &b.cookies {
            if value.len() >= 32 {
                tokens.push((format!("cookie {name}"), value.clone()));
            }
        }
    }
    assert!(tokens.iter().any(|(n, _)| n == "cookie tiaki_session"), "{tokens:?}");
    // Emailed codes: an activation code not yet used.
    let mut codes: Vec<(String, String)> = Vec::new();
    let (_, code) = enrol(&w.t, w.practice_a, "ZAA0067", "new@example.nz").await?;
    codes.push(("activation code".into(), code));
    // A password-reset code.
    let mut anon = w.t.browser([127, 0, 70, 4]);
    anon.get("/signin/forgot").await?;
    assert_eq!(anon.post("/signin/forgot", &[("email", "p2@example.nz")]).await?.status, StatusCode::OK);
    codes.push(("reset code".into(), latest_code(&w.t, "Choose a new Tiaki password").await?));
    // A set-up code for a first factor.
    assert!(p1.post("/account/security/link", &[]).await?.body.contains("We have emailed you a set-up code"));
    codes.push(("set-up code".into(), latest_code(&w.t, "Set up your Tiaki authenticator app").await?));
    // An email-change code (the GP has a second factor, proved at sign-in minutes ago).
    let mut gp2 = gp.clone();
    gp2.get("/account/security").await?;
    let r =
        gp2.post("/account/security/email", &[("new_email", "gp-new@example.nz"), ("email_current", PASSWORD)]).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    codes.push(("email-change code".into(), latest_code(&w.t, "Confirm your new Tiaki email address").await?));
    // A passkey sign-in ceremony.
    let c: serde_json::Value = serde_json::from_str(&anon.post("/signin/passkey/options", &[]).await?.body)?;
    tokens.push(("passkey ceremony".into(), c["token"].as_str().context("a ceremony token")?.to_owned()));
    // An API client's secret (the part after its public id).
    // `tiaki_<id>_<secret>`, split as the portal splits it (the secret may itself hold `_`).
    let secret =
        w.client_a.strip_prefix("tiaki_").and_then(|t| t.split_once('_')).context("a client token")?.1.to_owned();
    tokens.push(("API client secret".into(), secret));

    for (what, token) in &tokens {
        assert!(token.len() >= 32, "{what}: {token}");
    }
    for (what, code) in &codes {
        assert_eq!(code.len(), 19, "{what}: {code}");
    }
    // The outbox is the one place a code must be whole: it is the mail waiting to be sent.
    // (What happens to delivered mail is the security review's #19, for its own issue.)
    let rows: Vec<_> = every_row(&w.t).await?.into_iter().filter(|(table, _)| table != "outbox").collect();
    for (what, token) in &tokens {
        // As text, as the bytes of that text (a blob or bytea shows as hex), or as the bytes
        // the hex stands for.
        let needles =
            [token.to_lowercase(), hex::encode(token.as_bytes()), hex::encode(hex::decode(token).unwrap_or_default())];
        for (table, text) in &rows {
            for needle in needles.iter().filter(|n| n.len() >= 32) {
                assert!(!text.contains(needle.as_str()), "{what} is stored as handed out, in table {table}");
            }
        }
    }
    // A code, with or without its dashes, in either case.
    for (what, code) in &codes {
        let bare = code.replace('-', "");
        for needle in [code.clone(), code.to_lowercase(), bare.clone(), bare.to_lowercase(), hex::encode(&bare)] {
            for (table, text) in &rows {
                assert!(!text.contains(needle.as_str()), "{what} is stored as handed out, in table {table}");
            }
        }
    }
    // The scan would see one: each of these tokens has a hash that is stored.
    let session = &tokens.iter().find(|(n, _)| n == "cookie tiaki_session").context("a session")?.1;
    let hash = hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, session.as_bytes()));
    assert!(rows.iter().any(|(_, text)| text.contains(&hash)), "the session's hash is found by the same scan");
    Ok(())
}

/// An email that has no account, one whose account is not yet active, a wrong password and the
/// right one each cost exactly one Argon2 check, so the time taken does not tell them apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_email_costs_the_same_password_check_as_a_known_one() -> Result<()> {
    let w = World::new().await?;
    enrol(&w.t, w.practice_a, "ZAA0067", "inactive@example.nz").await?;
    let mut costs = Vec::new();
    for (n, (email, password)) in [
        ("p1@example.nz", "not the password at all"),
        ("nobody@example.nz", "not the password at all"),
        ("inactive@example.nz", "not the password at all"),
        ("p2@example.nz", PASSWORD),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = w.t.browser([127, 0, 71, u8::try_from(n)?]);
        b.get("/signin").await?;
        let before = app::password_checks();
        let r = b.post("/signin", &[("email", email), ("password", password)]).await?;
        costs.push((email, r.status, app::password_checks() - before));
    }
    assert_eq!(
        costs,
        vec![
            ("p1@example.nz", StatusCode::UNAUTHORIZED, 1),
            ("nobody@example.nz", StatusCode::UNAUTHORIZED, 1),
            ("inactive@example.nz", StatusCode::UNAUTHORIZED, 1),
            ("p2@example.nz", StatusCode::SEE_OTHER, 1),
        ]
    );
    Ok(())
}

/// Staff read the letters their practice sent only while the patient is enrolled there: the
/// moment the enrolment ends, the letter, the list and the patient are gone for them, on the
/// page and the API; the patient keeps the letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_lose_a_patients_letters_when_the_patient_leaves_the_practice() -> Result<()> {
    let w = World::new().await?;
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 72, 1]).await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 72, 2]).await?;
    let paths = [
        format!("/documents/{}/download", w.letter1),
        format!("/api/v1/documents/{}/content", w.letter1),
        format!("/patients/{}/documents", w.patient1),
        format!("/patients/{}", w.patient1),
    ];
    for path in &paths {
        assert_eq!(gp.get(path).await?.status, StatusCode::OK, "{path} while enrolled");
    }
    // The patient leaves (there is no un-enrol page yet: the enrolment row goes).
    crate::mfa::sql(&w.t, "DELETE FROM enrolments").await?;
    for path in &paths {
        assert_eq!(gp.get(path).await?.status, StatusCode::NOT_FOUND, "{path} after leaving");
    }
    let (status, _, got) = p1.get_bytes(&format!("/api/v1/documents/{}/content", w.letter1), None).await?;
    assert_eq!(status, StatusCode::OK, "what the practice sent stays the patient's");
    assert!(got.starts_with(b"%PDF"));
    Ok(())
}

/// Review #13: `/metrics` (sign-in outcomes, the "under attack" switch) is not for the internet:
/// without a configured token it answers only a direct request from this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_only_this_machine() -> anyhow::Result<()> {
    let w = World::new().await?;
    let mut outside = w.t.browser([203, 0, 113, 9]);
    assert_eq!(outside.get("/metrics").await?.status, axum::http::StatusCode::NOT_FOUND);
    let mut here = w.t.browser([127, 0, 0, 1]);
    // The test portal runs no recorder: "not enabled", but not refused.
    assert_eq!(here.get("/metrics").await?.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    Ok(())
}

//! Every kind of bad input gets a clear 4xx and changes nothing.

use crate::support::*;
use anyhow::Result;
use axum::http::{Method, StatusCode};

async fn patient_count(w: &World) -> Result<usize> {
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 2, 1]).await?;
    let page = admin.get(&format!("/practices/{}", w.practice_a)).await?.body;
    Ok(page.matches("href=\"/patients/").count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_wrongly_typed_forms_are_refused() -> Result<()> {
    let w = World::new().await?;
    let before = patient_count(&w).await?;
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 0, 4]).await?;
    let csrf = admin.csrf.clone().unwrap_or_default();
    let path = format!("/practices/{}/patients", w.practice_a);
    // A field twice cannot be read as the form.
    let r = admin.post_raw(&path, &[("csrf", &csrf), ("nhi", "ZAA0067"), ("nhi", "ZAA0075")]).await?;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("could not be read"));
    // Not a form at all.
    let r = admin.send(Method::POST, &path, Some("text/plain"), b"nhi=ZAA0067".to_vec()).await?;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(patient_count(&w).await?, before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_refused() -> Result<()> {
    let w = World::new().await?;
    let before = patient_count(&w).await?;
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 0, 4]).await?;
    let path = format!("/api/v1/practices/{}/patients", w.practice_a);
    for (body, want) in [
        (r#"{"nhi": "ZAA0067", "#, StatusCode::BAD_REQUEST),
        (r#"{"nhi": "ZAA0067"}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"nhi":"ZAA0067","name":"A","date_of_birth":"1990-01-01","email":"a@b.nz","admin":true}"#,
            StatusCode::BAD_REQUEST,
        ),
        (r"[1,2,3]", StatusCode::BAD_REQUEST),
    ] {
        let r = admin.post_json(&path, body).await?;
        assert_eq!(r.status, want, "{body}");
        let json: serde_json::Value = serde_json::from_str(&r.body)?;
        assert!(json["error"].as_str().is_some_and(|s| !s.is_empty()), "{body}: {}", r.body);
    }
    let r = admin
        .send(
            Method::POST,
            &path,
            None,
            br#"{"nhi":"ZAA0067","name":"A","date_of_birth":"1990-01-01","email":"a@b.nz"}"#.to_vec(),
        )
        .await?;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Well-formed but invalid: every problem is named at once.
    let r =
        admin.post_json(&path, r#"{"nhi":"ZZZ0044","name":"","date_of_birth":"2999-01-01","email":"nope"}"#).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let json: serde_json::Value = serde_json::from_str(&r.body)?;
    let fields: Vec<&str> =
        json["fields"].as_array().map(|a| a.iter().filter_map(|f| f["field"].as_str()).collect()).unwrap_or_default();
    assert_eq!(fields, ["nhi", "name", "date_of_birth", "email"]);
    assert_eq!(patient_count(&w).await?, before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused() -> Result<()> {
    let w = World::new().await?;
    let before = patient_count(&w).await?;
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 0, 4]).await?;
    let big = "x".repeat(web::MAX_BODY_BYTES + 1);
    let r = admin.post(&format!("/practices/{}/patients", w.practice_a), &[("nhi", "ZAA0067"), ("name", &big)]).await?;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = admin
        .post_json(&format!("/api/v1/practices/{}/patients", w.practice_a), &format!(r#"{{"name":"{big}"}}"#))
        .await?;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(patient_count(&w).await?, before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_nhi_is_explained_and_nothing_is_enrolled() -> Result<()> {
    let w = World::new().await?;
    let before = patient_count(&w).await?;
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 0, 4]).await?;
    let path = format!("/practices/{}/patients", w.practice_a);
    let r = admin
        .post(
            &path,
            &[("nhi", "ZZZ0044"), ("name", "Bad Nhi"), ("date_of_birth", "1990-01-01"), ("email", "bad@example.nz")],
        )
        .await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("check character does not match"), "the reason is shown");
    assert!(r.body.contains("value=\"bad@example.nz\""), "what was typed is kept");
    assert!(r.body.contains("aria-invalid=\"true\""));
    let r = admin
        .post(
            &path,
            &[("nhi", "ABC"), ("name", "Bad Nhi"), ("date_of_birth", "1990-01-01"), ("email", "bad2@example.nz")],
        )
        .await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("7 characters"));
    assert_eq!(patient_count(&w).await?, before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_activation_code_is_refused_and_changes_nothing() -> Result<()> {
    let w = World::new().await?;
    let (_, link) = enrol(&w.t, w.practice_a, "ZAA0067", "late@example.nz").await?;
    let token = link.clone();
    w.t.clock.advance(7 * 86_400 + 1);
    let mut b = w.t.browser([127, 0, 3, 1]);
    let r = b.post("/activate", &[("step", "code"), ("code", &token)]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("expired") && r.body.contains("name=\"code\""), "{}", r.body);
    let r = b.post("/activate", &[("code", &token), ("password", PASSWORD), ("confirm", PASSWORD)]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!b.cookies.contains_key("tiaki_session"));
    assert_eq!(b.sign_in("late@example.nz", PASSWORD).await?.status, StatusCode::UNAUTHORIZED, "no password was set");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_activation_code_is_refused_and_changes_nothing() -> Result<()> {
    let w = World::new().await?;
    let (patient, link) = enrol(&w.t, w.practice_a, "ZAA0067", "once@example.nz").await?;
    let token = link.clone();
    let mut b = w.t.browser([127, 0, 3, 2]);
    assert_eq!(b.post("/activate", &[("step", "code"), ("code", &token)]).await?.status, StatusCode::OK);
    let r = b.post("/activate", &[("code", &token), ("password", PASSWORD), ("confirm", PASSWORD)]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("/patients/{patient}"), "activation signs the patient in");
    let mut attacker = w.t.browser([127, 0, 3, 3]);
    let r = attacker.post("/activate", &[("step", "code"), ("code", &token)]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("already been used"));
    let r = attacker
        .post(
            "/activate",
            &[
                ("code", &token),
                ("password", "another long passphrase here"),
                ("confirm", "another long passphrase here"),
            ],
        )
        .await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        attacker.sign_in("once@example.nz", "another long passphrase here").await?.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attacker.sign_in("once@example.nz", PASSWORD).await?.status,
        StatusCode::SEE_OTHER,
        "the first password stands"
    );
    // Unknown and malformed codes are simply not right (and a code's old link form is no code).
    for code in ["abc", "0000-0000-0000-0000", &"a".repeat(64), &"A".repeat(17)] {
        let r = attacker.post("/activate", &[("step", "code"), ("code", code)]).await?;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{code}");
        assert!(r.body.contains("That code is not right"), "{code}: {}", r.body);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_csrf_token_is_refused_and_changes_nothing() -> Result<()> {
    let w = World::new().await?;
    let before = patient_count(&w).await?;
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 0, 4]).await?;
    let path = format!("/practices/{}/patients", w.practice_a);
    let fields =
        [("nhi", "ZAA0067"), ("name", "Csrf Victim"), ("date_of_birth", "1990-01-01"), ("email", "csrf@example.nz")];
    let with = |csrf: &str| {
        let mut v = vec![("csrf", csrf.to_owned())];
        v.extend(fields.iter().map(|(k, v)| (*k, (*v).to_owned())));
        v
    };
    // No token, a wrong token, and a valid token from another browser's session.
    let other = w.signed_in("gp-a@example.nz", [127, 0, 0, 7]).await?;
    let others_token = other.csrf.clone().unwrap_or_default();
    for csrf in [String::new(), "00".repeat(32), others_token] {
        let body: Vec<(&str, String)> = with(&csrf);
        let body: Vec<(&str, &str)> = body.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = admin.post_raw(&path, &body).await?;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "csrf {csrf:?}");
        assert!(r.body.contains("could not be accepted"));
    }
    // A cross-site request is refused even with the right token.
    let good = admin.csrf.clone().unwrap_or_default();
    let body = serde_urlencoded::to_string(with(&good))?;
    let mut req_browser = admin.clone();
    let r =
        req_browser.send_with_header(Method::POST, &path, "sec-fetch-site", "cross-site", body.into_bytes()).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(patient_count(&w).await?, before);
    // The right token from the right browser works.
    assert_eq!(admin.post(&path, &fields).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(patient_count(&w).await?, before + 1);
    Ok(())
}

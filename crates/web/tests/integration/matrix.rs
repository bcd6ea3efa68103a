//! The authorisation matrix: every route in the route table × every role, with the status each
//! gets. The snapshot fails when a route is added, removed or changes behaviour; the explicit
//! assertions below fail if a snapshot were ever accepted that lets anyone past the line.

use crate::support::*;
use anyhow::Result;
use axum::http::{Method, StatusCode};
use std::collections::BTreeMap;
use web::routes::{Kind, ROUTES};

const ROLES: [&str; 6] =
    ["anonymous", "patient", "other_patient", "practice_staff", "other_practice_staff", "operator"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_against_every_role() -> Result<()> {
    let w = World::new().await?;
    let mut browsers = BTreeMap::new();
    browsers.insert("anonymous", w.t.browser([127, 0, 0, 1]));
    browsers.insert("patient", w.signed_in("p1@example.nz", [127, 0, 0, 2]).await?);
    browsers.insert("other_patient", w.signed_in("p2@example.nz", [127, 0, 0, 3]).await?);
    browsers.insert("practice_staff", w.signed_in("admin-a@example.nz", [127, 0, 0, 4]).await?);
    browsers.insert("other_practice_staff", w.signed_in("admin-b@example.nz", [127, 0, 0, 5]).await?);
    browsers.insert("operator", w.operator().await?);
    // A second session of the patient's, the object of the "end session" route.
    let _second = w.signed_in("p1@example.nz", [127, 0, 0, 6]).await?;
    let mut patient = browsers["patient"].clone();
    let sessions_page = patient.get("/account/sessions").await?.body;
    let target_session = sessions_page
        .split("/account/sessions/")
        .filter_map(|s| s.split('/').next())
        .find(|s| s.len() == 36)
        .unwrap_or_default()
        .to_owned();
    assert_eq!(target_session.len(), 36, "the patient's other session is listed");

    let mut lines = Vec::new();
    let mut seen = BTreeMap::new();
    for (n, route) in ROUTES.iter().enumerate() {
        let path = route
            .path
            .replace("{patient_id}", &w.patient1.to_string())
            .replace("{practice_id}", &w.practice_a.to_string())
            .replace("{session_id}", &target_session)
            .replace("{document_id}", &w.letter1.to_string())
            .replace("{passkey_id}", &uuid::Uuid::nil().to_string());
        assert!(!path.contains('{'), "the matrix does not know how to fill {} — add it", route.path);
        let mut cells = Vec::new();
        for role in ROLES {
            // Signing out ends the session it is sent with, so it gets a fresh one.
            let mut b = if route.path == "/signout" && role != "anonymous" {
                let email = match role {
                    "patient" => "p1@example.nz",
                    "other_patient" => "p2@example.nz",
                    "practice_staff" => "admin-a@example.nz",
                    "other_practice_staff" => "admin-b@example.nz",
                    _ => "op@example.nz",
                };
                w.signed_in(email, [127, 0, 1, 1]).await?
            } else {
                browsers[role].clone()
            };
            let reply = match (route.method, route.kind) {
                ("GET", _) => b.get(&path).await?,
                ("POST", Kind::Api) => {
                    b.post_json(&path, &format!(r#"{{"nhi":"ZAA0067","name":"New Patient","date_of_birth":"1990-01-01","email":"m{n}-{role}@example.nz"}}"#)).await?
                }
                ("POST", _) => {
                    let email = format!("m{n}-{role}@example.nz");
                    let hpi = format!("FMX{n:03}-A");
                    b.post(
                        &path,
                        &[
                            ("email", email.as_str()),
                            ("password", "not the password"),
                            ("token", "0000000000000000000000000000000000000000000000000000000000000000"),
                            ("nhi", "ZAA0075"),
                            ("name", "New Person"),
                            ("date_of_birth", "1990-01-01"),
                            ("staff_name", "New Staff"),
                            ("staff_email", email.as_str()),
                            ("role", "nurse"),
                            ("hpi_facility_id", hpi.as_str()),
                            ("region", "Otago"),
                            ("admin_name", "New Admin"),
                            ("admin_email", email.as_str()),
                            ("operator_name", "New Operator"),
                            ("operator_email", email.as_str()),
                        ],
                    )
                    .await?
                }
                _ => unreachable!(),
            };
            let cell = if reply.status.is_redirection() {
                let to = reply.location().split('?').next().unwrap_or_default().to_owned();
                let to = to
                    .replace(&w.patient1.to_string(), "{patient}")
                    .replace(&w.patient2.to_string(), "{other_patient}")
                    .replace(&w.practice_a.to_string(), "{practice}")
                    .replace(&w.practice_b.to_string(), "{other_practice}")
                    .replace(&w.letter1.to_string(), "{document}");
                format!("{}→{}", reply.status.as_u16(), to)
            } else {
                reply.status.as_u16().to_string()
            };
            seen.insert((route.method, route.path, role), reply.status);
            cells.push(format!("{role}={cell}"));
        }
        lines.push(format!("{} {}\n    {}", route.method, route.path, cells.join(" ")));
    }
    insta::assert_snapshot!("authorization_matrix", lines.join("\n"));

    // The line that must hold whatever the snapshot says: another patient's or another
    // practice's objects are 404 to everyone but their own people, and never 200.
    for route in ROUTES {
        let deny: &[&str] = if route.path.contains("{patient_id}") || route.path.contains("{document_id}") {
            &["other_patient", "other_practice_staff", "operator"]
        } else if route.path.contains("{practice_id}") {
            &["patient", "other_patient", "other_practice_staff"]
        } else if route.path.contains("{session_id}") {
            &["other_patient", "practice_staff", "other_practice_staff", "operator"]
        } else if route.path.starts_with("/operator") {
            &["patient", "other_patient", "practice_staff", "other_practice_staff"]
        } else {
            &[]
        };
        for role in deny {
            assert_eq!(
                seen[&(route.method, route.path, *role)],
                StatusCode::NOT_FOUND,
                "{} {} as {role}",
                route.method,
                route.path
            );
        }
        let public = [
            "/",
            "/signin",
            // Anyone may ask for a passkey sign-in challenge: it is the first step of signing in.
            "/signin/passkey/options",
            "/signout",
            "/activate",
            // "Forgot your password?" and its link are for people who cannot sign in.
            "/signin/forgot",
            "/reset-password",
            "/api/v1/audit/proof/inclusion",
            "/api/v1/audit/proof/consistency",
        ];
        if route.kind != Kind::Ops && !public.contains(&route.path) {
            let anon = seen[&(route.method, route.path, "anonymous")];
            assert!(
                anon == StatusCode::SEE_OTHER || anon == StatusCode::UNAUTHORIZED || anon == StatusCode::NOT_FOUND,
                "{} {} anonymous got {anon}",
                route.method,
                route.path
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_gets_404_for_another_patients_record_by_id_page_and_api() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 0, 2]).await?;
    let own = p1.get(&format!("/patients/{}", w.patient1)).await?;
    assert_eq!(own.status, StatusCode::OK);
    assert!(own.body.contains("ZZZ0016"));
    for path in [format!("/patients/{}", w.patient2), format!("/api/v1/patients/{}", w.patient2)] {
        let r = p1.get(&path).await?;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!r.body.contains("ZBN77VL") && !r.body.contains("p2@example.nz"), "nothing of patient 2 leaks: {path}");
    }
    // Indistinguishable from an id that does not exist, and from junk.
    let missing = p1.get(&format!("/patients/{}", app::domain::PatientId::random())).await?;
    let other = p1.get(&format!("/patients/{}", w.patient2)).await?;
    let junk = p1.get("/patients/not-an-id").await?;
    assert_eq!(missing.status, other.status);
    assert_eq!(missing.body, other.body);
    assert_eq!(junk.status, StatusCode::NOT_FOUND);
    // Staff of another practice likewise.
    let mut staff_b = w.signed_in("admin-b@example.nz", [127, 0, 0, 5]).await?;
    assert_eq!(staff_b.get(&format!("/patients/{}", w.patient1)).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(staff_b.get(&format!("/practices/{}", w.practice_a)).await?.status, StatusCode::NOT_FOUND);
    let _ = Method::GET;
    Ok(())
}

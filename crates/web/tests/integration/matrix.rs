//! The authorisation matrix: every route in the route table × every role, with the status each
//! gets. The snapshot fails when a route is added, removed or changes behaviour; the explicit
//! assertions below fail if a snapshot were ever accepted that lets anyone past the line.

use crate::support::*;
use anyhow::Result;
use axum::http::{Method, StatusCode};
use std::collections::BTreeMap;
use web::routes::{Kind, ROUTES};

/// A cell: the status, where a redirect goes, and whether a 2xx page is really a refusal (an
/// error summary on the page), so that a refusal served as 200 cannot pass for success.
fn cell(w: &World, ids: &[(&str, &str)], reply: &Reply) -> String {
    if reply.status.is_redirection() {
        let to = reply.location().split('?').next().unwrap_or_default().to_owned();
        let to = to
            .replace(&w.patient1.to_string(), "{patient}")
            .replace(&w.patient2.to_string(), "{other_patient}")
            .replace(&w.practice_a.to_string(), "{practice}")
            .replace(&w.practice_b.to_string(), "{other_practice}")
            .replace(&w.letter1.to_string(), "{document}");
        let to = ids.iter().fold(to, |to, (id, name)| to.replace(id, name));
        // Any other id (a proxy's own record) reads as one.
        let to = to
            .split('/')
            .map(|seg| if seg.len() == 36 && seg.parse::<uuid::Uuid>().is_ok() { "{id}" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        format!("{}→{}", reply.status.as_u16(), to)
    } else if reply.status.is_success() && reply.body.contains("role=\"alert\"") {
        format!("{}(refused)", reply.status.as_u16())
    } else {
        reply.status.as_u16().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_against_every_role() -> Result<()> {
    let (w, everyone) = World::with_every_role().await?;
    let mut browsers = BTreeMap::new();
    for (n, role) in ROLES.iter().enumerate() {
        // Each role from a network of its own, so that per-network limits do not colour the cells.
        let ip = [127, u8::try_from(n + 10)?, 0, 1];
        browsers.insert(*role, w.as_role(&everyone, role, ip).await?);
    }
    // Signing out ends the session it is sent with, so each role signs out a session of its own.
    let mut to_sign_out = BTreeMap::new();
    for role in ROLES {
        if let Some(email) = email_of(role).filter(|_| role != "unverified_staff") {
            to_sign_out.insert(role, w.signed_in(email, [127, 0, 1, 1]).await?);
        }
    }
    // A second session of the patient's, the object of the "end session" route.
    let _second = w.signed_in("p1@example.nz", [127, 0, 0, 60]).await?;
    let mut patient = browsers["patient"].clone();
    let sessions_page = patient.get("/account/sessions").await?.body;
    let target_session = sessions_page
        .split("/account/sessions/")
        .filter_map(|s| s.split('/').next())
        .find(|s| s.len() == 36)
        .unwrap_or_default()
        .to_owned();
    assert_eq!(target_session.len(), 36, "the patient's other session is listed");
    // A real passkey of an account that is none of the roles: another account's object for all.
    let (_, l3) = enrol(&w.t, w.practice_b, "ZAA0083", "p3@example.nz").await?;
    w.t.app
        .console()
        .set_password_by_link(&l3, PASSWORD, PASSWORD, None, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let passkey = crate::mfa::give_passkey(&w.t, "p3@example.nz").await?;
    // An item of patient 1's health record, sent by practice A's system (a condition: not held).
    let record = crate::records::one_condition(&w).await?;
    // An appointment of patient 1's at practice A, and a repeat request of theirs there.
    let (appointment, repeat) = crate::appointments::one_of_each(&w).await?;

    // A conversation of patient 1's with practice A.
    crate::messages::messaging_on(&w, false).await?;
    let thread = crate::messages::one_thread(&w, &mut browsers["patient"].clone(), "Matrix", "A question").await?;
    // A proxy link to patient 1 (the expired one: revoking it changes no other role's cells) and
    // a notice in patient 1's inbox.
    let link =
        everyone.proxies.iter().find(|(r, _)| *r == "expired_proxy").map(|(_, id)| id.to_string()).unwrap_or_default();
    let mut p1 = browsers["patient"].clone();
    let inbox = p1.get("/inbox").await?.body;
    let notice = inbox
        .split("/inbox/")
        .filter_map(|s| s.split('/').next())
        .find(|s| s.len() == 36)
        .unwrap_or_default()
        .to_owned();
    assert_eq!(notice.len(), 36, "patient 1 has a notice: {inbox}");
    // An alert of the detectors (its response lifts nothing: the matrix's posts change nothing).
    let alert = uuid::Uuid::new_v4().to_string();
    execute(
        &w.t,
        &format!(
            "INSERT INTO alerts (id, rule, severity, subject, account_id, response, seen, window_start, created_at) \
             VALUES ('{alert}', 'enumeration', 'critical', 'nobody', NULL, 'record', 20, 0, 1)"
        ),
    )
    .await?;
    // An incident (its page, reports and actions; the matrix posts its empty "details" form).
    let lead = w.t.app.console().incident_lead();
    let declaration = app::incidents::Declaration {
        title: "Matrix incident".into(),
        description: "Someone used a stolen password to read patients' letters.".into(),
        discovered_at: app::domain::Clock::now(&w.t.clock),
        indicators: app::domain::incidents::Indicators {
            sessions: vec![uuid::Uuid::new_v4().to_string()],
            ..Default::default()
        },
        from_alert: None,
    };
    let (incident, _) = w.t.app.incidents().declare(&lead, &declaration).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let ids = [
        (incident.as_str(), "{incident}"),
        (alert.as_str(), "{alert}"),
        (record.as_str(), "{record}"),
        (appointment.as_str(), "{appointment}"),
        (repeat.as_str(), "{repeat}"),
        (link.as_str(), "{proxy}"),
        (notice.as_str(), "{notice}"),
        (thread.as_str(), "{thread}"),
    ];
    let mut lines = Vec::new();
    let mut seen = BTreeMap::new();
    for (n, route) in ROUTES.iter().enumerate() {
        let path = route
            .path
            .replace("{patient_id}", &w.patient1.to_string())
            .replace("{practice_id}", &w.practice_a.to_string())
            .replace("{session_id}", &target_session)
            .replace("{document_id}", &w.letter1.to_string())
            .replace("{passkey_id}", &passkey.to_string())
            .replace("{record_id}", &record)
            .replace("{category}", "conditions")
            .replace("{appointment_id}", &appointment)
            .replace("{repeat_request_id}", &repeat)
            .replace("{proxy_id}", &link)
            .replace("{notice_id}", &notice)
            .replace("{thread_id}", &thread)
            .replace("{alert_id}", &alert)
            .replace("{incident_id}", &incident)
            .replace("{incident_action}", "details");
        assert!(!path.contains('{'), "the matrix does not know how to fill {} — add it", route.path);
        let mut cells = Vec::new();
        for role in ROLES {
            let mut b = match to_sign_out.get(role) {
                Some(own) if route.path == "/signout" => own.clone(),
                _ => browsers[role].clone(),
            };
            let reply = match (route.method, route.kind) {
                ("GET", _) => b.get(&path).await?,
                // An organisation's push, for the patient, as each role would send it.
                ("POST", Kind::Api) if route.path == "/api/v1/documents" => {
                    let (ct, body) = multipart(&[
                        ("metadata", None, push_meta("ZZZ0016", &format!("matrix-{role}")).as_bytes()),
                        ("file", Some("letter.pdf"), &pdf(&format!("matrix {role}"), 2000)),
                    ]);
                    b.send(Method::POST, &path, Some(&ct), body).await?
                }
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
            // Ending an enrolment is undone after each cell (the patient is enrolled again), so
            // that every role is tried against the same world and later routes are unaffected.
            if route.path.ends_with("/leave") || route.path.ends_with("/unenrol") {
                rejoin(&w.t, w.practice_a, w.patient1, "ZZZ0016").await?;
            }
            // A proxy's session switched back to its own record by the switcher's cell is put back
            // on patient 1's, so that the routes after it are still tried as that proxy.
            if route.path == "/acting-for"
                && route.method == "POST"
                && let Some((_, email, ..)) = PROXIES.iter().find(|(r, ..)| *r == role)
            {
                let patient = if w.t.url.starts_with("sqlite:") {
                    format!("X'{}'", w.patient1.as_uuid().simple())
                } else {
                    format!("'{}'", w.patient1)
                };
                execute(
                    &w.t,
                    &format!(
                        "UPDATE sessions SET acting_for = {patient} WHERE ended_at IS NULL AND account_id = \
                             (SELECT id FROM accounts WHERE email = '{email}')"
                    ),
                )
                .await?;
            }
            // The invited carer's session is put back on nobody.
            if route.path == "/acting-for" && route.method == "POST" && role == "invited_carer" {
                execute(
                    &w.t,
                    &format!(
                        "UPDATE sessions SET acting_for = NULL WHERE ended_at IS NULL AND account_id = \
                             (SELECT id FROM accounts WHERE email = '{INVITED_CARER}')"
                    ),
                )
                .await?;
            }
            // Release rules saved from the matrix's form (no categories) are put back.
            if route.path.ends_with("/record-rules") && route.method == "POST" && reply.status.is_redirection() {
                let defaults = ["allergies", "conditions", "medications", "immunisations", "results", "recalls"];
                let fields: Vec<(&str, &str)> = defaults.iter().map(|c| (*c, "1")).collect();
                let mut admin = browsers["reception"].clone();
                admin.get(&format!("/practices/{}/record-rules", w.practice_a)).await?;
                assert!(admin.post(&path, &fields).await?.status.is_redirection());
            }
            seen.insert((route.method, route.path, role), (reply.status, cell(&w, &ids, &reply)));
            cells.push(format!("{role}={}", cell(&w, &ids, &reply)));
        }
        lines.push(format!("{} {}\n    {}", route.method, route.path, cells.join(" ")));
    }
    insta::assert_snapshot!("authorization_matrix", lines.join("\n"));

    let status = |method: &str, path: &str, role: &str| seen[&(method, path, role)].0;
    // The line that must hold whatever the snapshot says: another patient's or another
    // practice's objects are 404 to everyone but their own people, and never 200.
    for route in ROUTES {
        let objects = [
            "{patient_id}",
            "{document_id}",
            "{record_id}",
            "{appointment_id}",
            "{repeat_request_id}",
            "{proxy_id}",
            "{thread_id}",
        ];
        let deny: &[&str] = if objects.iter().any(|p| route.path.contains(p)) {
            &["other_patient", "other_practice_staff", "other_practice_admin", "operator"]
        } else if route.path == "/practices/{practice_id}/leave" {
            // The one practice route that is the patient's: leaving their own practice.
            &["other_patient", "other_practice_staff", "other_practice_admin", "operator"]
        } else if route.path.contains("{notice_id}") {
            // A notice is its account's alone.
            &["other_patient", "reception", "gp", "nurse", "other_practice_staff", "operator", "proxy"]
        } else if route.path.contains("{practice_id}") {
            &[
                "patient",
                "other_patient",
                "other_practice_staff",
                "other_practice_admin",
                "proxy",
                "revoked_proxy",
                "invited_carer",
            ]
        } else if route.path.contains("{session_id}") {
            &["other_patient", "reception", "gp", "other_practice_staff", "operator"]
        } else if route.path.starts_with("/operator") {
            &["patient", "other_patient", "reception", "gp", "other_practice_staff"]
        } else {
            &[]
        };
        for role in deny {
            assert_eq!(
                status(route.method, route.path, role),
                StatusCode::NOT_FOUND,
                "{} {} as {role}",
                route.method,
                route.path
            );
        }
        // People acting for patient 1: a link that is expired, aged out or revoked reaches
        // nothing of patient 1's; a live one reaches only the routes of the modules in its
        // scopes (and the person's home page, their name: the least a proxy sees).
        let patients_object = objects.iter().any(|p| route.path.contains(p)) && !route.path.contains("{proxy_id}");
        if patients_object {
            let home = route.path == "/patients/{patient_id}" || route.path == "/api/v1/patients/{patient_id}";
            for (role, scope) in [
                ("expired_proxy", &[][..]),
                ("aged_out_proxy", &[][..]),
                ("revoked_proxy", &[][..]),
                // Not switched to patient 1: nothing of theirs, whatever the link allows.
                ("invited_carer", &[][..]),
                ("proxy_without_scope", &["/messages"][..]),
                ("proxy", &["/appointments", "/repeats", "/book"][..]),
            ] {
                let live = matches!(role, "proxy" | "proxy_without_scope");
                if (live && home) || scope.iter().any(|m| route.path.contains(m)) {
                    continue;
                }
                assert_eq!(
                    status(route.method, route.path, role),
                    StatusCode::NOT_FOUND,
                    "{} {} as {role}, out of its scopes",
                    route.method,
                    route.path
                );
            }
        }
        // Nobody without a verified second factor, and no organisation's system, reaches a
        // patient's or a practice's pages or data (a system only pushes).
        if objects.iter().chain(&["{practice_id}"]).any(|p| route.path.contains(p)) {
            for role in ["unverified_staff", "practice_client", "other_practice_client", "hospital_client"] {
                let s = status(route.method, route.path, role);
                assert!(!s.is_success(), "{} {} as {role}: {s}", route.method, route.path);
            }
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
            // "Is this message from Tiaki?" is for anyone holding a message, signed in or not.
            "/genuine",
            "/api/v1/audit/proof/inclusion",
            "/api/v1/audit/proof/consistency",
        ];
        if route.kind != Kind::Ops && !public.contains(&route.path) {
            let anon = status(route.method, route.path, "anonymous");
            assert!(
                anon == StatusCode::SEE_OTHER || anon == StatusCode::UNAUTHORIZED || anon == StatusCode::NOT_FOUND,
                "{} {} anonymous got {anon}",
                route.method,
                route.path
            );
        }
    }

    // Inside the practice: the role × action table of ARCHITECTURE.md.
    let download = "/documents/{document_id}/download";
    let content = "/api/v1/documents/{document_id}/content";
    for (path, role, want) in [
        // Clinical content: GP and nurse read the letter; reception and the privacy officer do not.
        (download, "gp", StatusCode::OK),
        (download, "nurse", StatusCode::OK),
        (download, "reception", StatusCode::NOT_FOUND),
        (download, "privacy_officer", StatusCode::NOT_FOUND),
        (content, "gp", StatusCode::OK),
        (content, "reception", StatusCode::NOT_FOUND),
        (content, "privacy_officer", StatusCode::NOT_FOUND),
        // Reception files and routes: it lists what the practice sent; the privacy officer does not.
        ("/patients/{patient_id}/documents", "reception", StatusCode::OK),
        ("/patients/{patient_id}/documents", "privacy_officer", StatusCode::NOT_FOUND),
        ("/api/v1/patients/{patient_id}/documents", "reception", StatusCode::OK),
        ("/api/v1/patients/{patient_id}/documents", "privacy_officer", StatusCode::NOT_FOUND),
        // The privacy officer sees access history; nobody else at the practice does.
        ("/patients/{patient_id}/access", "privacy_officer", StatusCode::OK),
        ("/patients/{patient_id}/access", "gp", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/access", "nurse", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/access", "reception", StatusCode::NOT_FOUND),
        ("/api/v1/patients/{patient_id}/audit-events", "privacy_officer", StatusCode::OK),
        ("/api/v1/patients/{patient_id}/audit-events", "gp", StatusCode::NOT_FOUND),
        // A patient's own uploads are theirs alone: no member of staff uploads for them.
        ("/patients/{patient_id}/documents", "gp", StatusCode::OK),
        // Health records are clinical content: GP and nurse, not reception or the privacy officer.
        ("/patients/{patient_id}/records", "nurse", StatusCode::OK),
        ("/patients/{patient_id}/records", "reception", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/records", "privacy_officer", StatusCode::NOT_FOUND),
        ("/api/v1/patients/{patient_id}/records", "reception", StatusCode::NOT_FOUND),
        ("/records/{record_id}", "gp", StatusCode::OK),
        ("/records/{record_id}", "reception", StatusCode::NOT_FOUND),
        ("/api/v1/records/{record_id}", "patient", StatusCode::OK),
        ("/practices/{practice_id}/results", "reception", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/results", "gp", StatusCode::OK),
        // Reception runs the book with the clinicians; the privacy officer does not; only the
        // admin sets it up. Repeats are clinical: GP and nurse, not reception.
        ("/practices/{practice_id}/day", "reception", StatusCode::OK),
        ("/practices/{practice_id}/day", "privacy_officer", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/book-setup", "reception", StatusCode::OK),
        ("/practices/{practice_id}/book-setup", "gp", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/appointments", "patient", StatusCode::OK),
        ("/patients/{patient_id}/appointments", "reception", StatusCode::OK),
        ("/patients/{patient_id}/appointments", "privacy_officer", StatusCode::NOT_FOUND),
        ("/appointments/{appointment_id}", "patient", StatusCode::OK),
        ("/appointments/{appointment_id}", "gp", StatusCode::OK),
        ("/appointments/{appointment_id}", "privacy_officer", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/repeats", "patient", StatusCode::OK),
        ("/patients/{patient_id}/repeats", "nurse", StatusCode::OK),
        ("/patients/{patient_id}/repeats", "reception", StatusCode::NOT_FOUND),
        ("/repeats/{repeat_request_id}", "gp", StatusCode::OK),
        ("/repeats/{repeat_request_id}", "reception", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/repeats", "nurse", StatusCode::OK),
        ("/practices/{practice_id}/repeats", "reception", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/repeat-rules", "gp", StatusCode::NOT_FOUND),
        ("/fhir/R4/Slot", "practice_client", StatusCode::UNPROCESSABLE_ENTITY),
        ("/fhir/R4/Slot", "hospital_client", StatusCode::NOT_FOUND),
        ("/fhir/R4/Appointment", "hospital_client", StatusCode::NOT_FOUND),
        // What patients see is the practice's decision: its admin sets it.
        ("/practices/{practice_id}/record-rules", "gp", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/record-rules", "reception", StatusCode::OK),
    ] {
        assert_eq!(status("GET", path, role), want, "GET {path} as {role}");
    }
    for (path, role, want) in [
        // Releasing and hiding are clinical decisions; only the patient downloads their record;
        // only a practice's own system (with the records scope) sends records.
        ("/records/{record_id}/release", "reception", StatusCode::NOT_FOUND),
        ("/records/{record_id}/hide", "privacy_officer", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/export", "gp", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/export", "patient", StatusCode::OK),
        ("/fhir/R4", "hospital_client", StatusCode::FORBIDDEN),
        ("/fhir/R4", "gp", StatusCode::UNAUTHORIZED),
        // Patients ask for repeats themselves (proxies: issue 16); a nurse may not approve.
        ("/patients/{patient_id}/repeats", "gp", StatusCode::NOT_FOUND),
        ("/repeats/{repeat_request_id}", "patient", StatusCode::NOT_FOUND),
        ("/appointments/{appointment_id}/mark", "patient", StatusCode::NOT_FOUND),
        ("/appointments/{appointment_id}/mark", "privacy_officer", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/block", "privacy_officer", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/book-setup", "gp", StatusCode::NOT_FOUND),
        ("/fhir/R4/appointments", "hospital_client", StatusCode::NOT_FOUND),
        ("/fhir/R4/appointments", "gp", StatusCode::UNAUTHORIZED),
        // Withdrawing a letter is a clinical decision.
        ("/documents/{document_id}/withdraw", "reception", StatusCode::NOT_FOUND),
        ("/documents/{document_id}/withdraw", "privacy_officer", StatusCode::NOT_FOUND),
        ("/documents/{document_id}/withdraw", "nurse", StatusCode::SEE_OTHER),
        // Only the practice admin invites staff; the privacy officer enrols nobody.
        ("/practices/{practice_id}/staff", "gp", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/staff", "nurse", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/staff", "privacy_officer", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/staff", "reception", StatusCode::SEE_OTHER),
        ("/practices/{practice_id}/patients", "privacy_officer", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/reset-factors", "gp", StatusCode::NOT_FOUND),
        // Only the practice's admins (and operators) remove staff or change their roles.
        ("/practices/{practice_id}/staff/remove", "gp", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/staff/remove", "nurse", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/staff/remove", "privacy_officer", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/staff/remove", "other_practice_admin", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/staff/remove", "patient", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/staff/role", "nurse", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/staff/role", "operator", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/staff/role", "other_practice_admin", StatusCode::NOT_FOUND),
        // A patient leaves only their own practice; only its admin ends their enrolment there.
        ("/practices/{practice_id}/leave", "patient", StatusCode::SEE_OTHER),
        ("/practices/{practice_id}/leave", "other_patient", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/leave", "gp", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/unenrol", "reception", StatusCode::SEE_OTHER),
        ("/patients/{patient_id}/unenrol", "gp", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/unenrol", "patient", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/unenrol", "other_practice_admin", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/unenrol", "operator", StatusCode::NOT_FOUND),
        // Only operators disable accounts.
        ("/operator/accounts", "reception", StatusCode::NOT_FOUND),
        ("/operator/accounts", "patient", StatusCode::NOT_FOUND),
        ("/operator/accounts", "privacy_officer", StatusCode::NOT_FOUND),
        ("/practices/{practice_id}/patient-mfa", "nurse", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/documents", "gp", StatusCode::NOT_FOUND),
        ("/patients/{patient_id}/documents", "reception", StatusCode::NOT_FOUND),
        // Patients' own documents are changed only by them.
        ("/documents/{document_id}/rename", "gp", StatusCode::NOT_FOUND),
        ("/documents/{document_id}/hide", "reception", StatusCode::NOT_FOUND),
        // Organisations' systems: a practice's reaches its enrolled patients, a hospital's those
        // of practices that agreed to receive from it, another practice's nobody here.
        ("/api/v1/documents", "practice_client", StatusCode::CREATED),
        ("/api/v1/documents", "hospital_client", StatusCode::CREATED),
        ("/api/v1/documents", "other_practice_client", StatusCode::NOT_FOUND),
        ("/api/v1/documents", "patient", StatusCode::UNAUTHORIZED),
        ("/api/v1/documents", "gp", StatusCode::UNAUTHORIZED),
    ] {
        assert_eq!(status("POST", path, role), want, "POST {path} as {role}");
    }
    // Another account's real passkey is never removed by anyone else.
    let remove = "/account/security/passkeys/{passkey_id}/remove";
    assert_eq!(crate::mfa::passkeys_of(&w.t, "p3@example.nz").await?, 1);
    for role in ROLES {
        let s = status("POST", remove, role);
        // Not found, or "confirm it's you" first (asked before the passkey is even looked up).
        assert!(
            [StatusCode::NOT_FOUND, StatusCode::CONFLICT, StatusCode::SEE_OTHER, StatusCode::FORBIDDEN].contains(&s),
            "{role}: {s}"
        );
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
    Ok(())
}

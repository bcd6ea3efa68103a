//! The access log through the router: every route that touches patient information writes the
//! right event (allowed, denied and not found alike), reads fail closed when events cannot be
//! written, the log verifies — and stops verifying after any of a thousand random tamperings —
//! proofs check out against an independent RFC 9162 verifier, witnesses cosign, and patients
//! see who looked.

use crate::support::*;
use anyhow::{Context, Result, bail};
use audit::merkle::{self, Hash};
use audit::note::{Checkpoint, Note, Verifier};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use sqlx::{Connection, Executor};
use web::routes::ROUTES;

/// Every event so far, as FHIR `AuditEvent`s, oldest first.
async fn events(w: &World) -> Result<Vec<Value>> {
    let bundle = w.t.app.console().export_audit_range(0, i64::MAX).await?;
    Ok(bundle["entry"].as_array().cloned().unwrap_or_default().into_iter().map(|e| e["resource"].clone()).collect())
}

fn patient_of(e: &Value) -> Option<String> {
    e["entity"]
        .as_array()?
        .iter()
        .find(|x| x["role"]["code"] == "1")
        .and_then(|x| x["what"]["identifier"]["value"].as_str().map(str::to_owned))
}

fn object_type(e: &Value) -> String {
    e["entity"].as_array().and_then(|a| a.last()).and_then(|x| x["description"].as_str()).unwrap_or_default().to_owned()
}

/// The events written by one request.
async fn after(w: &World, before: usize) -> Result<Vec<Value>> {
    Ok(events(w).await?.into_iter().skip(before).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_touching_a_patient_writes_the_right_event() -> Result<()> {
    let w = World::new().await?;
    let p1 = w.patient1.to_string();
    // Route → (FHIR subtype code, object type) expected for an allowed access. A new patient
    // route must be added here, or this test fails.
    let expected = [
        ("/patients/{patient_id}", "read", "patient"),
        ("/patients/{patient_id}/access", "read", "access_history"),
        ("/api/v1/patients/{patient_id}", "read", "patient"),
        ("/api/v1/patients/{patient_id}/audit-events", "", "access_history"),
        ("/patients/{patient_id}/documents", "search-type", "document"),
        ("/api/v1/patients/{patient_id}/documents", "search-type", "document"),
        ("/patients/{patient_id}/records", "read", "patient_record"),
        ("/patients/{patient_id}/records/{category}", "read", "patient_record"),
        ("/api/v1/patients/{patient_id}/records", "read", "patient_record"),
        ("/patients/{patient_id}/appointments", "search-type", "patient_appointments"),
        ("/patients/{patient_id}/appointments/book", "search-type", "patient_appointments"),
        ("/patients/{patient_id}/repeats", "read", "repeat_list"),
        ("/patients/{patient_id}/proxies", "search-type", "proxy"),
        ("/patients/{patient_id}/messages", "search-type", "patient_messages"),
    ];
    // Uploads (POST) are driven by `documents::every_document_route_writes_the_right_event`.
    let patient_routes: Vec<_> =
        ROUTES.iter().filter(|r| r.path.contains("{patient_id}") && r.method == "GET").collect();
    for r in &patient_routes {
        assert!(
            expected.iter().any(|(p, _, _)| *p == r.path),
            "{} touches a patient but this test has no expectation for it",
            r.path
        );
    }
    // Patient 2 is refused every one of patient 1's routes, one after another: the detectors
    // would rightly suspend that session part-way (they have their own drills).
    w.t.app.set_detection_thresholds(app::domain::detection::Thresholds {
        on: false,
        ..app::domain::detection::Thresholds::default()
    });
    let mut owner = w.signed_in("p1@example.nz", [127, 0, 20, 1]).await?;
    let mut other = w.signed_in("p2@example.nz", [127, 0, 20, 2]).await?;
    for (path, code, object) in expected {
        let url = path.replace("{patient_id}", &p1).replace("{category}", "conditions");
        // Allowed: the owner.
        let n = events(&w).await?.len();
        assert_eq!(owner.get(&url).await?.status, StatusCode::OK, "{url}");
        let new = after(&w, n).await?;
        let e = new
            .iter()
            .find(|e| object_type(e) == object)
            .with_context(|| format!("no {object} event for {url}: {new:#?}"))?;
        assert_eq!(patient_of(e).as_deref(), Some(p1.as_str()), "{url}");
        assert_eq!(e["outcomeDesc"], "allowed");
        if !code.is_empty() {
            assert_eq!(e["subtype"][0]["code"], code, "{url}");
        }
        assert_eq!(e["agent"][0]["role"][0]["text"], "patient");
        // Denied: another patient — logged as denied, naming the patient they tried to reach.
        let n = events(&w).await?.len();
        assert_eq!(other.get(&url).await?.status, StatusCode::NOT_FOUND, "{url}");
        let new = after(&w, n).await?;
        assert_eq!(new.len(), 1, "{url}: {new:#?}");
        assert_eq!(new[0]["outcomeDesc"], "denied", "{url}");
        assert_eq!(patient_of(&new[0]).as_deref(), Some(p1.as_str()));
        // Not found: an id that does not exist.
        let n = events(&w).await?.len();
        let ghost = app::domain::PatientId::random().to_string();
        assert_eq!(
            other.get(&path.replace("{patient_id}", &ghost).replace("{category}", "conditions")).await?.status,
            StatusCode::NOT_FOUND
        );
        let new = after(&w, n).await?;
        assert_eq!(new.len(), 1);
        assert_eq!(new[0]["outcomeDesc"], "not_found", "{url}");
        assert_eq!(patient_of(&new[0]), None, "no patient is named for an id that does not exist");
    }
    // A listing writes one event per patient listed, with the object ids returned.
    let mut staff = w.signed_in("admin-a@example.nz", [127, 0, 20, 3]).await?;
    enrol(&w.t, w.practice_a, "ZAA0067", "third@example.nz").await?;
    let n = events(&w).await?.len();
    assert_eq!(staff.get(&format!("/practices/{}", w.practice_a)).await?.status, StatusCode::OK);
    let listed: Vec<String> = after(&w, n)
        .await?
        .iter()
        .filter(|e| e["subtype"][0]["code"] == "search-type")
        .filter_map(patient_of)
        .collect();
    assert_eq!(listed.len(), 2, "both of practice A's patients, one event each");
    assert!(listed.contains(&p1));
    // Staff of another practice listing practice A is denied, and logged.
    let mut staff_b = w.signed_in("admin-b@example.nz", [127, 0, 20, 4]).await?;
    let n = events(&w).await?.len();
    assert_eq!(staff_b.get(&format!("/practices/{}", w.practice_a)).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(after(&w, n).await?[0]["outcomeDesc"], "denied");
    // Enrolment writes a create event for the patient.
    let n = events(&w).await?.len();
    staff
        .post(
            &format!("/practices/{}/patients", w.practice_a),
            &[("nhi", "ZAA0075"), ("name", "New One"), ("date_of_birth", "1990-01-01"), ("email", "new1@example.nz")],
        )
        .await?;
    let created: Vec<Value> = after(&w, n).await?.into_iter().filter(|e| e["subtype"][0]["code"] == "create").collect();
    assert!(created.iter().any(|e| patient_of(e).is_some() && object_type(e) == "enrolment"));
    // Sign-in failures and successes are events too.
    let n = events(&w).await?.len();
    w.t.browser([127, 0, 20, 5]).sign_in("p1@example.nz", "wrong wrong wrong").await?;
    let e = after(&w, n).await?;
    assert!(e.iter().any(|e| object_type(e) == "account" && e["outcomeDesc"] == "denied"));
    Ok(())
}

async fn raw(t: &TestApp, sql: &str) -> Result<()> {
    if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        c.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))).await?;
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        c.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_event_cannot_be_written_nothing_is_served() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 21, 1]).await?;
    let page = format!("/patients/{}", w.patient1);
    assert_eq!(p1.get(&page).await?.status, StatusCode::OK);
    // Make every insert into the log fail, in the database itself.
    if w.t.url.starts_with("sqlite:") {
        raw(&w.t, "CREATE TRIGGER audit_offline BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit offline'); END").await?;
    } else {
        raw(&w.t, "CREATE FUNCTION audit_offline() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit offline'; END $$ LANGUAGE plpgsql; \
                   CREATE TRIGGER audit_offline BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_offline()").await?;
    }
    for path in [page.clone(), format!("/api/v1/patients/{}", w.patient1)] {
        let r = p1.get(&path).await?;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert!(!r.body.contains("ZZZ0016") && !r.body.contains("p1@example.nz"), "no patient data is served: {path}");
    }
    let mut staff = w.signed_in("admin-a@example.nz", [127, 0, 21, 2]).await;
    let refused = staff.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.contains("500"),
        "even signing in needs its event (a refused write, not another failure): {refused}"
    );
    raw(&w.t, "DROP TRIGGER audit_offline").await.or_else(|_| Ok::<(), anyhow::Error>(()))?;
    if !w.t.url.starts_with("sqlite:") {
        raw(&w.t, "DROP TRIGGER IF EXISTS audit_offline ON audit_events").await?;
    }
    assert_eq!(p1.get(&page).await?.status, StatusCode::OK, "served again once the log is writable");
    staff = w.signed_in("admin-a@example.nz", [127, 0, 21, 2]).await;
    assert!(staff.is_ok());
    Ok(())
}

/// An RFC 9162 inclusion check written independently of the library: rebuild the root by
/// recursing over the tree shape (as RFC 6962 §2.1.1 defines the path), not by bit arithmetic.
fn independent_inclusion(leaf: Hash, index: u64, size: u64, proof: &[Hash]) -> Option<Hash> {
    fn go(leaf: Hash, m: u64, n: u64, proof: &[Hash]) -> Option<(Hash, usize)> {
        if n == 1 {
            return Some((leaf, 0));
        }
        let mut k = 1u64;
        while k * 2 < n {
            k *= 2;
        }
        let (sub, used) = if m < k { go(leaf, m, k, proof)? } else { go(leaf, m - k, n - k, proof)? };
        let sibling = *proof.get(used)?;
        let h = if m < k { merkle::node_hash(&sub, &sibling) } else { merkle::node_hash(&sibling, &sub) };
        Some((h, used + 1))
    }
    let (root, used) = go(leaf, index, size, proof)?;
    (used == proof.len()).then_some(root)
}

fn hashes(v: &Value) -> Vec<Hash> {
    v["hashes"]
        .as_array()
        .map(|a| a.iter().filter_map(|h| B64.decode(h.as_str()?).ok()?.try_into().ok()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_proofs_and_cosignatures_check_out() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 22, 1]).await?;
    for _ in 0..5 {
        p1.get(&format!("/patients/{}", w.patient1)).await?;
    }
    let first = w.t.app.access_log().tick(true).await?.checkpoint.context("a checkpoint at the first size")?;
    for _ in 0..7 {
        p1.get(&format!("/patients/{}", w.patient1)).await?;
    }
    w.t.clock.advance(61);
    let second = w.t.app.access_log().tick(false).await?.checkpoint.context("a checkpoint once the interval passed")?;
    assert!(second > first);
    let mut anyone = w.t.browser([127, 0, 22, 2]);
    let note_text = anyone.get("/audit/checkpoint").await?.body;
    let vkey = anyone.get("/audit/key").await?.body;
    let note = Note::parse(&note_text)?;
    let verifier = Verifier::parse(&vkey)?;
    assert!(
        note.signatures.iter().any(|s| verifier.verify(&note.body, s).is_some()),
        "the checkpoint is signed by the published key"
    );
    let cp = Checkpoint::parse_body(&note.body)?;
    assert_eq!((cp.origin.as_str(), cp.size), ("portal.test/audit", second));
    // Inclusion of every leaf, checked by the independent verifier and by the library's.
    let all = w.t.app.console().export_audit_range(0, i64::MAX).await?;
    assert!(all["total"].as_u64().unwrap_or_default() >= second);
    for index in 0..second {
        let proof: Value = serde_json::from_str(
            &anyone.get(&format!("/api/v1/audit/proof/inclusion?index={index}&size={second}")).await?.body,
        )?;
        let leaf: Hash = B64
            .decode(proof["leaf_hash"].as_str().unwrap_or_default())?
            .try_into()
            .map_err(|_| anyhow::anyhow!("leaf"))?;
        let path = hashes(&proof);
        assert_eq!(independent_inclusion(leaf, index, second, &path), Some(cp.root), "leaf {index}");
        assert!(merkle::verify_inclusion(&leaf, index, second, &path, &cp.root));
    }
    // Consistency between the two checkpoints.
    let proof: Value = serde_json::from_str(
        &anyone.get(&format!("/api/v1/audit/proof/consistency?old={first}&new={second}")).await?.body,
    )?;
    // The old root, rebuilt from the inclusion proof of leaf 0 at the old size.
    let old_root = {
        let p: Value = serde_json::from_str(
            &anyone.get(&format!("/api/v1/audit/proof/inclusion?index=0&size={first}")).await?.body,
        )?;
        let leaf: Hash =
            B64.decode(p["leaf_hash"].as_str().unwrap_or_default())?.try_into().map_err(|_| anyhow::anyhow!("leaf"))?;
        independent_inclusion(leaf, 0, first, &hashes(&p)).context("old root")?
    };
    assert!(merkle::verify_consistency(first, second, &old_root, &cp.root, &hashes(&proof)));
    assert_eq!(
        anyone.get(&format!("/api/v1/audit/proof/inclusion?index={second}&size={second}")).await?.status,
        StatusCode::NOT_FOUND,
        "no such leaf"
    );
    assert_eq!(
        anyone.get("/api/v1/audit/proof/consistency?old=5&new=999999").await?.status,
        StatusCode::NOT_FOUND,
        "no such tree"
    );
    assert_eq!(
        anyone.get("/api/v1/audit/proof/consistency?old=five&new=9").await?.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not numbers"
    );
    // A configured witness cosigns; a stranger's cosignature and a forged checkpoint are refused.
    let line = w.t.witness.cosign(&note.body, 1_800_000_100);
    let cosigned = format!("{note_text}{line}");
    let r =
        anyone.send(axum::http::Method::POST, "/audit/cosignature", Some("text/plain"), cosigned.into_bytes()).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stranger = audit::note::Signer::from_pkcs8("witness.test/w1", &audit::note::Signer::generate_pkcs8()?)?;
    let forged = format!("{note_text}{}", stranger.cosign(&note.body, 1_800_000_100));
    assert_eq!(
        anyone
            .send(axum::http::Method::POST, "/audit/cosignature", Some("text/plain"), forged.into_bytes())
            .await?
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let other_body = note.body.replace(&second.to_string(), &(second + 1).to_string());
    let fake = format!("{other_body}\n{}", w.t.witness.cosign(&other_body, 1).trim_start_matches('\n'));
    assert_eq!(
        anyone
            .send(axum::http::Method::POST, "/audit/cosignature", Some("text/plain"), fake.into_bytes())
            .await?
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let report = w.t.app.access_log().verify(None, true, |_, _| {}).await?;
    assert!(report.ok(), "the newest checkpoint is witnessed: {:?}", report.problems);
    assert_eq!(report.cosignatures, 1);
    // Once the log grows and a newer checkpoint is signed, it needs its own cosignature.
    p1.get(&format!("/patients/{}", w.patient1)).await?;
    w.t.clock.advance(61);
    w.t.app.access_log().tick(false).await?;
    let report = w.t.app.access_log().verify(None, true, |_, _| {}).await?;
    assert!(report.problems.iter().any(|p| p.contains("no valid witness cosignature")), "{:?}", report.problems);
    assert!(w.t.app.access_log().verify(None, false, |_, _| {}).await?.ok());
    // Against the published key it verifies; against any other key (say, one an intruder
    // re-signed a rewritten log with) it does not.
    assert!(w.t.app.access_log().verify(Some(vkey.trim()), false, |_, _| {}).await?.ok());
    let intruder = audit::note::Signer::from_pkcs8("portal.test/audit", &audit::note::Signer::generate_pkcs8()?)?;
    let report = w.t.app.access_log().verify(Some(&intruder.vkey()), false, |_, _| {}).await?;
    assert!(report.problems.iter().any(|p| p.contains("not signed by this log's key")), "{:?}", report.problems);
    Ok(())
}

/// A small deterministic generator, so a failing mutation can be reproduced from its number.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const TEXT_COLUMNS: &[&str] = &[
    "id",
    "actor_account",
    "actor_role",
    "actor_practice",
    "session_id",
    "ip",
    "user_agent",
    "on_behalf",
    "action",
    "object_type",
    "object_id",
    "patient_id",
    "practice_id",
    "outcome",
    "module",
    "request_id",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_random_tamperings_are_all_detected() -> Result<()> {
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 23, 1]).await?;
    let mut staff = w.signed_in("admin-a@example.nz", [127, 0, 23, 2]).await?;
    // A log with several checkpoints; everything is covered by the last one.
    for round in 0..4 {
        for _ in 0..6 {
            p1.get(&format!("/patients/{}", w.patient1)).await?;
            staff.get(&format!("/practices/{}", w.practice_a)).await?;
        }
        w.t.clock.advance(61);
        w.t.app.access_log().tick(round == 0).await?;
    }
    let tick = w.t.app.access_log().tick(true).await?;
    let n = tick.size;
    assert!(n > 40, "{n} events");
    assert!(w.t.app.access_log().verify(None, false, |_, _| {}).await?.ok(), "the untouched log verifies");
    assert!(w.t.app.access_log().latest_checkpoint().await?.is_some());
    raw(&w.t, "CREATE TABLE backup_events AS SELECT * FROM audit_events; CREATE TABLE backup_checkpoints AS SELECT * FROM audit_checkpoints; \
               CREATE TABLE backup_nodes AS SELECT * FROM audit_nodes").await?;
    let restore = "DELETE FROM audit_cosignatures; DELETE FROM audit_events; DELETE FROM audit_checkpoints; DELETE FROM audit_nodes; \
                   INSERT INTO audit_events SELECT * FROM backup_events; INSERT INTO audit_checkpoints SELECT * FROM backup_checkpoints; \
                   INSERT INTO audit_nodes SELECT * FROM backup_nodes";
    let mut rng = Rng(0x7ea5_1a7e_u64 ^ u64::from(w.t.url.starts_with("postgres")));
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..1000u32 {
        let a = rng.below(n);
        let b = (a + 1 + rng.below(n - 1)) % n;
        let (kind, sql) = match rng.below(7) {
            6 => (
                "edit a tree node",
                format!(
                    "UPDATE audit_nodes SET hash = (SELECT hash FROM audit_nodes n2 WHERE n2.level = 0 AND n2.idx = {b}) WHERE level = 0 AND idx = {a}"
                ),
            ),
            0 => {
                let col = TEXT_COLUMNS[usize::try_from(rng.below(TEXT_COLUMNS.len() as u64))?];
                ("edit a field", format!("UPDATE audit_events SET {col} = COALESCE({col}, '') || 'x' WHERE seq = {a}"))
            }
            1 => (
                "edit the time",
                format!("UPDATE audit_events SET at_ms = at_ms + {} WHERE seq = {a}", 1 + rng.below(1000)),
            ),
            2 => ("delete an event", format!("DELETE FROM audit_events WHERE seq = {a}")),
            3 => (
                "swap two events",
                format!(
                    "UPDATE audit_events SET seq = -1 WHERE seq = {a}; UPDATE audit_events SET seq = {a} WHERE seq = {b}; UPDATE audit_events SET seq = {b} WHERE seq = -1"
                ),
            ),
            4 => ("truncate the tail", format!("DELETE FROM audit_events WHERE seq >= {}", n - 1 - rng.below(n / 2))),
            _ => {
                let which = rng.below(3);
                let sql = match which {
                    0 => "UPDATE audit_checkpoints SET note = REPLACE(note, '\n\n', '\nx\n\n') WHERE size = (SELECT MAX(size) FROM audit_checkpoints)".to_owned(),
                    1 => format!("UPDATE audit_checkpoints SET root = (SELECT root FROM audit_checkpoints c2 WHERE c2.size < audit_checkpoints.size ORDER BY c2.size LIMIT 1), note = note WHERE size = (SELECT MAX(size) FROM audit_checkpoints) AND {a} >= 0"),
                    _ => "UPDATE audit_checkpoints SET note = (SELECT note FROM audit_checkpoints c2 WHERE c2.size < audit_checkpoints.size ORDER BY c2.size LIMIT 1) WHERE size = (SELECT MAX(size) FROM audit_checkpoints)".to_owned(),
                };
                ("replace a checkpoint", sql)
            }
        };
        raw(&w.t, &sql).await.with_context(|| format!("mutation {i}: {sql}"))?;
        let report = w.t.app.access_log().verify(None, false, |_, _| {}).await?;
        if report.ok() {
            bail!("mutation {i} ({kind}) was not detected: {sql}");
        }
        *counts.entry(kind).or_insert(0) += 1;
        raw(&w.t, restore).await?;
    }
    assert!(w.t.app.access_log().verify(None, false, |_, _| {}).await?.ok(), "restored, it verifies again");
    eprintln!("{} detected 1000/1000 tamperings over {n} events: {counts:?}", backend());
    assert_eq!(counts.values().sum::<u32>(), 1000);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patients_and_privacy_officers_see_who_looked() -> Result<()> {
    let w = World::new().await?;
    staff(&w.t, w.practice_a, "privacy-a@example.nz", app::domain::StaffRole::PrivacyOfficer).await?;
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 24, 1]).await?;
    assert_eq!(gp.get(&format!("/patients/{}", w.patient1)).await?.status, StatusCode::OK);
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 24, 2]).await?;
    p1.get(&format!("/patients/{}", w.patient1)).await?;
    let page = p1.get(&format!("/patients/{}/access", w.patient1)).await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Who has looked at my records"));
    assert!(
        page.body.contains("Staff Person") && page.body.contains("GP") && page.body.contains("Practice A"),
        "the GP's read, with name, role and practice"
    );
    assert!(page.body.contains("You"), "the patient's own reads");
    // Filters: a date range before anything happened shows nothing; a bad date is explained.
    let empty = p1.get(&format!("/patients/{}/access?from=2020-01-01&to=2020-01-02", w.patient1)).await?;
    assert!(empty.body.contains("Nothing was recorded"));
    let bad = p1.get(&format!("/patients/{}/access?from=yesterday", w.patient1)).await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let docs = p1.get(&format!("/patients/{}/access?module=documents", w.patient1)).await?;
    assert!(docs.body.contains("Sent a document to the portal"), "the practice's push of the letter");
    assert!(
        docs.body.contains("Practice A (their system)") && !docs.body.contains("Unknown account"),
        "an organisation's system is named by its organisation, as the patient knows it"
    );
    assert!(!docs.body.contains("Viewed the patient record"), "only the documents module");
    // The practice's privacy officer sees it; the GP does not.
    let mut officer = w.signed_in("privacy-a@example.nz", [127, 0, 24, 3]).await?;
    let page = officer.get(&format!("/patients/{}/access", w.patient1)).await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Access history for Pat Ient"));
    assert_eq!(gp.get(&format!("/patients/{}/access", w.patient1)).await?.status, StatusCode::NOT_FOUND);
    // FHIR export.
    let r = p1.get(&format!("/api/v1/patients/{}/audit-events", w.patient1)).await?;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/fhir+json"));
    let bundle: Value = serde_json::from_str(&r.body)?;
    assert_eq!(bundle["resourceType"], "Bundle");
    let first = &bundle["entry"][0]["resource"];
    assert_eq!(first["resourceType"], "AuditEvent");
    assert_eq!(first["type"]["code"], "rest");
    assert!(first["recorded"].as_str().is_some_and(|s| s.ends_with('Z')));
    // Operators export a range; others are refused.
    let mut op = w.operator().await?;
    let r = op.get("/api/v1/audit-events?from=2020-01-01&to=2030-12-31").await?;
    assert_eq!(r.status, StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&r.body)?["total"].as_u64().unwrap_or_default() > 5);
    assert_eq!(p1.get("/api/v1/audit-events?from=2020-01-01&to=2030-12-31").await?.status, StatusCode::NOT_FOUND);
    Ok(())
}

/// Events written before events named their module (format 1) keep verifying, read the same
/// on the access-history page, and cannot be moved to another module unnoticed; every event
/// written now names its module and commits to it (format 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_from_before_the_typed_vocabulary_still_verifies_and_reads_the_same() -> Result<()> {
    let w = World::new().await?;
    let p1 = w.patient1.to_string();
    // What the earlier code wrote when a staff member opened the letter: no module in the leaf.
    let old = store::AuditEvent {
        id: uuid::Uuid::new_v4().to_string(),
        at_ms: app::domain::Clock::now_ms(&w.t.clock),
        actor_role: "staff:gp".into(),
        ip: "192.0.2.7".into(),
        action: "read".into(),
        object_type: "document".into(),
        object_id: w.letter1.to_string(),
        patient: Some(p1.clone()),
        outcome: "allowed".into(),
        module: "documents".into(),
        format: audit::event::FORMAT_V1,
        ..store::AuditEvent::default()
    };
    w.t.app.console().record_events(vec![old.clone()]).await?;
    let mut me = w.signed_in("p1@example.nz", [127, 0, 26, 1]).await?;
    assert_eq!(me.get(&format!("/patients/{p1}")).await?.status, StatusCode::OK);
    let tick = w.t.app.access_log().tick(true).await?;
    let report = w.t.app.access_log().verify(None, false, |_, _| {}).await?;
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.events, tick.size);
    // The page reads the old event as it always did: a GP opened a document.
    let docs = me.get(&format!("/patients/{p1}/access?module=documents")).await?;
    assert!(docs.body.contains("Opened a document") && docs.body.contains("GP"), "{}", docs.body);
    // Every event written now names its module in the log and in its leaf.
    let formats = sqlx_rows(&w.t, "SELECT module, format FROM audit_events WHERE format = 2").await?;
    assert!(!formats.is_empty() && formats.iter().all(|(m, _)| app::domain::Module::parse(m).is_some()), "{formats:?}");
    // Moving the old event to another module is caught, though its leaf does not cover it.
    raw(&w.t, &format!("UPDATE audit_events SET module = 'records' WHERE id = '{}'", old.id)).await?;
    let report = w.t.app.access_log().verify(None, false, |_, _| {}).await?;
    assert!(
        report.problems.iter().any(|p| p.contains(&old.id) && p.contains("written before events named their module")),
        "{:?}",
        report.problems
    );
    raw(&w.t, &format!("UPDATE audit_events SET module = 'documents' WHERE id = '{}'", old.id)).await?;
    // A new event's module is in its leaf.
    raw(&w.t, "UPDATE audit_events SET module = 'documents' WHERE format = 2 AND module = 'records'").await?;
    assert!(!w.t.app.access_log().verify(None, false, |_, _| {}).await?.ok(), "a new event moved to another module");
    Ok(())
}

/// `(module, format)` of the rows a query returns.
async fn sqlx_rows(t: &TestApp, sql: &str) -> Result<Vec<(String, i64)>> {
    use sqlx::Row;
    if t.url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(&mut c).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, i64::from(r.try_get::<i16, _>(1)?)))).collect()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).fetch_all(&mut c).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get::<i64, _>(1)?))).collect()
    }
}

fn raw_event(i: u64, node: &str) -> store::AuditEvent {
    store::AuditEvent {
        id: uuid::Uuid::new_v4().to_string(),
        at_ms: 1_800_000_000_000 + i64::try_from(i).unwrap_or_default(),
        actor_role: "system".into(),
        ip: node.into(),
        action: "read".into(),
        object_type: "test".into(),
        object_id: i.to_string(),
        outcome: "allowed".into(),
        module: "audit".into(),
        ..store::AuditEvent::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_keep_one_tree_and_one_sequencer_at_a_time() -> Result<()> {
    let t = TestApp::new().await?;
    let a = t.app.clone();
    let b = t.another_node().await?;
    // Both nodes write and tick concurrently.
    let work = |app: std::sync::Arc<app::App>, node: &'static str| async move {
        let mut leaders = 0;
        for round in 0..20u64 {
            let events = (0..25).map(|i| raw_event(round * 100 + i, node)).collect();
            app.console().record_events(events).await?;
            if app.access_log().tick(round % 5 == 0).await?.leader {
                leaders += 1;
            }
        }
        anyhow::Ok(leaders)
    };
    let (la, lb) = tokio::join!(work(a.clone(), "node-a"), work(b.clone(), "node-b"));
    let (la, lb) = (la?, lb?);
    assert!(la == 0 || lb == 0, "while the lease is held, only its holder sequences (a={la}, b={lb})");
    // When the holder goes quiet past the lease, the other node takes over.
    t.clock.advance(31);
    let (ta, tb) = if la > 0 {
        (b.access_log().tick(true).await?, a.access_log().tick(true).await?)
    } else {
        (a.access_log().tick(true).await?, b.access_log().tick(true).await?)
    };
    assert!(ta.leader && !tb.leader, "the lease passed to the other node");
    assert_eq!(ta.size, 1000, "one tree holding every event from both nodes");
    let report = a.access_log().verify(None, false, |_, _| {}).await?;
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.events, 1000);
    assert_eq!(a.access_log().latest_checkpoint().await?, b.access_log().latest_checkpoint().await?);
    Ok(())
}

/// Retention: nothing goes while it is within the retention period; events older than it go from
/// the start of the log up to a signed checkpoint; what remains — and every checkpoint — still
/// verifies; and a removal of events that are still to be kept is reported as such.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_past_their_retention_go_and_the_rest_still_verifies() -> Result<()> {
    use app::domain::Clock;
    const YEAR: i64 = 31_557_600;
    let w = World::new().await?;
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 25, 1]).await?;
    for _ in 0..5 {
        p1.get(&format!("/patients/{}", w.patient1)).await?;
    }
    let first = w.t.app.access_log().tick(true).await?.checkpoint.context("a checkpoint over the first events")?;
    w.t.clock.advance(9 * YEAR);
    assert_eq!(w.t.app.console().prune_audit().await?, 0, "nine years on, everything is kept");
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 25, 2]).await?;
    for _ in 0..3 {
        p1.get(&format!("/patients/{}", w.patient1)).await?;
    }
    let second = w.t.app.access_log().tick(true).await?.checkpoint.context("a checkpoint over the newer events")?;
    w.t.clock.advance(2 * YEAR);
    assert_eq!(w.t.app.console().prune_audit().await?, first, "eleven years on, exactly the first events go");
    assert_eq!(w.t.app.console().prune_audit().await?, 0, "and only once");
    let kept = events(&w).await?;
    assert_eq!(u64::try_from(kept.len())?, second - first, "the newer events are all still there");
    let report = w.t.app.access_log().verify(None, false, |_, _| {}).await?;
    assert!(report.ok(), "{:?}", report.problems);
    assert!(report.retention_note.is_some_and(|n| n.contains(&format!("{first} oldest events"))));
    // Proofs for the kept events still come from the same tree.
    let proof = w.t.app.access_log().inclusion_proof(first, second).await?;
    assert_eq!(proof.tree_size, second);
    // Events still to be kept, removed under the pretence of retention, are reported.
    raw(
        &w.t,
        &format!(
            "DELETE FROM audit_events WHERE seq < {}; UPDATE audit_pruned SET below = {}, cutoff_ms = {}",
            second - 1,
            second - 1,
            (w.t.clock.now() - YEAR) * 1000
        ),
    )
    .await?;
    let report = w.t.app.access_log().verify(None, false, |_, _| {}).await?;
    assert!(!report.ok());
    assert!(report.problems.iter().any(|p| p.contains("less than 10 years ago")), "{:?}", report.problems);
    assert!(report.problems.iter().any(|p| p.contains("no signed checkpoint at that size")), "{:?}", report.problems);
    Ok(())
}

/// Review #20: a request id the client sends is not taken as the server's; the access log
/// carries the id the server minted (the one it answers with), never the client's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_request_id_never_reaches_the_access_log() -> Result<()> {
    use axum::body::Body;
    use tower::ServiceExt;
    let w = World::new().await?;
    let p1 = w.signed_in("p1@example.nz", [127, 0, 74, 1]).await?;
    let cookies: Vec<String> = p1.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let victims = "0192f1a0-7c4e-7d2a-9b1e-5a6c7d8e9f00";
    let mut req = axum::http::Request::builder()
        .uri(format!("/patients/{}", w.patient1))
        .header(axum::http::header::COOKIE, cookies.join("; "))
        .header("x-request-id", victims)
        .body(Body::empty())?;
    req.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 74, 1], 1))));
    let res = w.t.router.clone().oneshot(req).await?;
    assert_eq!(res.status(), StatusCode::OK);
    let ours = res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(uuid::Uuid::parse_str(&ours).is_ok() && ours != victims, "the server minted its own: {ours}");
    let log = w.t.app.console().export_audit_range(0, i64::MAX).await?.to_string();
    assert!(!log.contains(victims), "the client's id is nowhere in the log");
    assert!(log.contains(&ours), "the read is logged under the server's id");
    Ok(())
}

/// Review #4: a privacy officer answers questions about access at their own practice; they see
/// neither what the patient's other practices did nor where the patient connected from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privacy_officer_sees_only_their_practices_part_of_a_history() -> Result<()> {
    let w = World::new().await?;
    staff(&w.t, w.practice_b, "po-b@example.nz", app::domain::StaffRole::PrivacyOfficer).await?;
    rejoin(&w.t, w.practice_b, w.patient1, "ZZZ0016").await?;
    let record = format!("/patients/{}", w.patient1);
    let mut patient = w.signed_in("p1@example.nz", [10, 9, 8, 7]).await?;
    assert_eq!(patient.get(&format!("{record}/documents")).await?.status, StatusCode::OK);
    let mut admin_a = w.signed_in("admin-a@example.nz", [127, 0, 31, 1]).await?;
    assert_eq!(admin_a.get(&record).await?.status, StatusCode::OK);
    let mut admin_b = w.signed_in("admin-b@example.nz", [127, 0, 32, 1]).await?;
    let b_view = admin_b.get(&record).await?;
    assert_eq!(b_view.status, StatusCode::OK);
    // Review #25: staff see their own practice in "Enrolled at", not the patient's others.
    assert!(b_view.body.contains("Practice B") && !b_view.body.contains("Practice A"), "{}", b_view.body);
    let own_view = patient.get(&record).await?.body;
    assert!(own_view.contains("Practice A") && own_view.contains("Practice B"), "the patient sees both");

    // The patient sees everything, their own addresses included (the positive control).
    let own = patient.get(&format!("{record}/access")).await?.body;
    assert!(own.contains("Practice A") && own.contains("Practice B"));
    let own_export = patient.get(&format!("/api/v1/patients/{}/audit-events", w.patient1)).await?.body;
    assert!(own_export.contains("10.9.8.7"));

    let mut po_b = w.signed_in("po-b@example.nz", [127, 0, 33, 1]).await?;
    let page = po_b.get(&format!("{record}/access")).await?;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Practice B"), "their own practice's reads are there");
    assert!(!page.body.contains("Practice A"), "another practice's reads are not");
    let export = po_b.get(&format!("/api/v1/patients/{}/audit-events", w.patient1)).await?;
    assert_eq!(export.status, StatusCode::OK);
    let bundle: Value = serde_json::from_str(&export.body)?;
    let practice_a = w.practice_a.to_string();
    for entry in bundle["entry"].as_array().context("entries")? {
        let text = entry.to_string();
        assert!(!text.contains("10.9.8.7") && !text.contains("127.0.3"), "no addresses: {text}");
        assert!(!text.contains(&practice_a), "nothing of practice A: {text}");
    }
    assert!(!bundle["entry"].as_array().context("entries")?.is_empty());
    Ok(())
}

/// Review #18: what the server's console does is on the record too — issuing, rotating and
/// revoking a system's credentials, agreeing to receive a hospital's documents, and every
/// patient key it unwraps to rotate one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_action_writes_events() -> Result<()> {
    let w = World::new().await?;
    let console = w.t.app.console();
    let count = |what: &'static str| {
        let app = w.t.app.clone();
        async move {
            let text = app.console().export_audit_range(0, i64::MAX).await?.to_string();
            anyhow::Ok(text.matches(what).count())
        }
    };
    let clients = count("urn:tiaki:api_client").await?;
    let (client, _) = console.create_client("Hospital feed", "G00042-K", "Te Whatu Ora", None).await?;
    console.rotate_client(client.id).await?;
    console.add_agreement("FAA111-A", "G00042-K").await?;
    console.revoke_client(client.id).await?;
    assert_eq!(count("urn:tiaki:api_client").await? - clients, 4, "create, rotate, agreement, revoke");
    let unwraps = count("\"code\":\"unwrap\"").await?;
    assert!(console.rotate_patient_key("ZZZ0016").await? >= 1);
    assert!(count("\"code\":\"unwrap\"").await? > unwraps, "the rotation's unwrap is an event");
    Ok(())
}

/// Review #11: the practice's page shows its patients a page at a time (with a search), and
/// writes one event per patient shown — not one per patient enrolled on every load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_practice_page_shows_a_page_of_patients_and_logs_only_those() -> Result<()> {
    let w = World::new().await?;
    let mut made = 0;
    'numbers: for n in 0..1000 {
        for check in 0..10 {
            let nhi = format!("ZAB{n:03}{check}");
            if app::domain::Nhi::parse(&nhi).is_ok() {
                enrol(&w.t, w.practice_a, &nhi, &format!("bulk{made}@example.nz")).await?;
                made += 1;
                if made == 60 {
                    break 'numbers;
                }
                break;
            }
        }
    }
    let listed = |w: &World| {
        let url = w.t.url.clone();
        async move {
            let sql = "SELECT COUNT(*) FROM audit_events WHERE action = 'list' AND object_type = 'patient'";
            let n: i64 = if url.starts_with("sqlite:") {
                let mut c = sqlx::SqliteConnection::connect(&url).await?;
                sqlx::query_scalar(sql).fetch_one(&mut c).await?
            } else {
                let mut c = sqlx::PgConnection::connect(&url).await?;
                sqlx::query_scalar(sql).fetch_one(&mut c).await?
            };
            anyhow::Ok(n)
        }
    };
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 34, 1]).await?;
    let page = format!("/practices/{}", w.practice_a);
    let before = listed(&w).await?;
    let first = admin.get(&page).await?.body;
    assert_eq!(listed(&w).await? - before, 50, "one event per patient shown, 50 a page");
    assert!(first.contains("61 patients; page 1 of 2") && first.contains("Next page"), "{first}");
    let before = listed(&w).await?;
    let second = admin.get(&format!("{page}?page=2")).await?.body;
    assert_eq!(listed(&w).await? - before, 11);
    assert!(second.contains("page 2 of 2") && second.contains("Previous page"));
    let before = listed(&w).await?;
    let found = admin.get(&format!("{page}?q=zzz0016")).await?.body;
    assert_eq!(listed(&w).await? - before, 1, "a search shows (and logs) what it finds");
    assert!(found.contains("ZZZ0016") && found.contains("1 patient matching"));
    // Nonsense in the query string is the first page, not an error.
    assert_eq!(admin.get(&format!("{page}?page=abc&q=%25")).await?.status, StatusCode::OK);
    Ok(())
}

//! Health records (issue 14): ingest from a practice's system, release rules, what the patient
//! and the practice see, sealing at rest, the export, and an independent FHIR validator over
//! everything the API gives out.

use crate::documents::{contains, files_under, sql_strings};
use crate::support::records::*;
use crate::support::*;
use anyhow::{Result, anyhow};
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

const P1: &str = "urn:uuid:7f1c2a4e-0d55-4b7e-9a0e-1c1d2e3f4a5b";

/// A whole record for patient 1 (ZZZ0016), every item carrying `marker` so a scan can look
/// for it: an allergy, a condition, a medication with repeats, an immunisation, three `HbA1c`
/// results and a report grouping the latest, a consultation with its note, and a recall.
fn full_record(marker: &str, hba1c_version: u32) -> String {
    let mut report_results = Vec::new();
    let mut entries = vec![patient_entry(P1, "ZZZ0016")];
    entries.push(put(allergy("al-1", P1, &format!("Penicillin {marker}"), "Hives"), 1));
    entries.push(put(condition("co-1", P1, &format!("Type 2 diabetes {marker}"), "2018-06-01"), 1));
    entries.push(put(
        medication("me-1", P1, &format!("Metformin 500 mg tablets {marker}"), "One tablet twice a day with food"),
        1,
    ));
    entries.push(put(
        json!({
            "resourceType": "Immunization", "id": "im-1", "status": "completed",
            "vaccineCode": { "text": format!("Influenza vaccine {marker}") }, "patient": subject(P1),
            "occurrenceDateTime": "2025-04-20", "protocolApplied": [{ "doseNumberPositiveInt": 1 }]
        }),
        1,
    ));
    for (i, (v, d)) in [(62.0, "2023-03-01"), (55.0, "2024-03-01"), (48.0, "2025-03-01")].iter().enumerate() {
        let id = format!("ob-hba1c-{i}");
        let mut o = observation(&id, P1, ("4548-4", "HbA1c"), *v, "mmol/mol", (20.0, 40.0), d);
        o["note"] = json!([{ "text": format!("lab note {marker}") }]);
        entries.push(put(o, if i == 2 { hba1c_version } else { 1 }));
        if i == 2 {
            report_results.push(json!({ "reference": format!("Observation/{id}") }));
        }
    }
    entries.push(put(
        json!({
            "resourceType": "DiagnosticReport", "id": "dr-1", "status": "final",
            "code": { "text": "Diabetes review bloods" }, "subject": subject(P1),
            "effectiveDateTime": "2025-03-01", "result": report_results,
            "conclusion": format!("HbA1c above target {marker}")
        }),
        1,
    ));
    entries.push(put(
        json!({
            "resourceType": "Encounter", "id": "en-1", "status": "finished",
            "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
            "subject": subject(P1), "period": { "start": "2025-03-04" },
            "extension": [{ "url": "https://tiaki.nz/fhir/StructureDefinition/consultation-note", "valueString": format!("Discussed diet {marker}") }]
        }),
        1,
    ));
    entries.push(put(
        json!({
            "resourceType": "ServiceRequest", "id": "sr-1", "status": "active", "intent": "plan",
            "code": { "text": format!("Diabetes annual review {marker}") }, "subject": subject(P1),
            "occurrenceDateTime": "2026-03-01"
        }),
        1,
    ));
    bundle("transaction", entries)
}

fn json_of(r: &Reply) -> Result<Value> {
    serde_json::from_str(&r.body).map_err(|e| anyhow!("not JSON ({e}): {}", r.body))
}

/// The `OperationOutcome`'s issues: (code, first expression, diagnostics).
fn issues(r: &Reply) -> Result<Vec<(String, String, String)>> {
    let v = json_of(r)?;
    assert_eq!(v["resourceType"], "OperationOutcome", "{}", r.body);
    Ok(v["issue"]
        .as_array()
        .ok_or_else(|| anyhow!("no issues: {}", r.body))?
        .iter()
        .map(|i| {
            (
                i["code"].as_str().unwrap_or("").to_owned(),
                i["expression"][0].as_str().unwrap_or("").to_owned(),
                i["diagnostics"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect())
}

/// Ids of the items a record listing shows (`/api/v1/patients/{id}/records`).
pub(crate) async fn listed(b: &mut Browser, patient: app::domain::PatientId, query: &str) -> Result<Value> {
    let r = b.get(&format!("/api/v1/patients/{patient}/records{query}")).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/fhir+json");
    json_of(&r)
}

fn entry_texts(bundle: &Value) -> String {
    bundle["entry"]
        .as_array()
        .map(|e| e.iter().map(|x| x["resource"].to_string()).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// The id Tiaki gave an item, found through the clinician's listing by the words in it.
pub(crate) fn id_with(bundle: &Value, words: &str) -> Option<String> {
    bundle["entry"].as_array()?.iter().find(|e| e["resource"].to_string().contains(words))?["resource"]["id"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_practice_system_sends_a_record_and_the_patient_sees_what_is_released() -> Result<()> {
    let w = World::new().await?;
    let r = ingest(&w.t, &w.client_a, &full_record("m-released", 1)).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = json_of(&r)?;
    assert_eq!(v["type"], "transaction-response");
    let statuses: Vec<&str> =
        v["entry"].as_array().unwrap().iter().map(|e| e["response"]["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "201 Created").count(), 10, "{statuses:?}");
    assert_eq!(record_rows(&w.t).await?, 10);

    // The patient: allergies first, the condition, the medication with its repeats, the recall;
    // no results yet (held until a clinician releases them), no consultation notes (not released
    // by default).
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 0, 2]).await?;
    let page = p1.get(&format!("/patients/{}/records", w.patient1)).await?;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    let allergy_at = body.find("Penicillin m-released").expect("the allergy is shown");
    assert!(allergy_at < body.find("Type 2 diabetes").expect("the condition is shown"), "allergies come first");
    assert!(body.contains("Metformin 500 mg tablets") && body.contains("You can ask your practice for more"));
    assert!(body.contains("Diabetes annual review") && body.contains("1 March 2026"), "the recall, in NZ date format");
    assert!(!body.contains("HbA1c") && !body.contains("Discussed diet"), "held results and notes stay out");
    let api = listed(&mut p1, w.patient1, "").await?;
    assert_eq!(api["total"], 5, "allergy, condition, medication, immunisation, recall: {api}");
    assert!(!entry_texts(&api).contains("HbA1c"));
    assert!(listed(&mut p1, w.patient1, "?category=results").await?["total"] == 0);

    // The GP sees everything the practice sent, held items marked, and releases the report.
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 0, 3]).await?;
    let all = listed(&mut gp, w.patient1, "").await?;
    assert_eq!(all["total"], 10);
    let report = id_with(&all, "Diabetes review bloods").unwrap();
    let staff_page = gp.get(&format!("/patients/{}/records", w.patient1)).await?;
    assert!(staff_page.body.contains("Awaiting release"));
    let queue = gp.get(&format!("/practices/{}/results", w.practice_a)).await?;
    assert!(queue.body.contains("Diabetes review bloods") && queue.body.contains("ZZZ0016"), "{}", queue.body);
    assert!(!queue.body.contains("ob-hba1c"), "a report's results are released with it, not listed apart");
    let before = mails(&w.t).await?.len();
    let released =
        gp.post(&format!("/records/{report}/release"), &[("note", "Your HbA1c is coming down well")]).await?;
    assert_eq!(released.status, StatusCode::SEE_OTHER, "{}", released.body);
    // The patient is told there is a new result, not what it is.
    let sent = mails(&w.t).await?;
    assert_eq!(sent.len(), before + 1);
    let (to, subject, text) = sent.iter().find(|m| m.1 == app::notify::NEWS_SUBJECT).expect("a notice");
    assert_eq!(to, "p1@example.nz");
    assert!(!subject.contains("HbA1c") && !text.contains("HbA1c") && !text.contains("diabetes"), "{text}");
    let inbox = p1.get("/inbox").await?;
    assert!(inbox.body.contains("A new result is in your health record"), "{}", inbox.body);
    // Releasing twice is refused, and changes nothing.
    assert_eq!(gp.post(&format!("/records/{report}/release"), &[]).await?.status, StatusCode::CONFLICT);

    // The released report and its result appear; the two earlier HbA1c results are still held.
    let results = listed(&mut p1, w.patient1, "?category=results").await?;
    assert_eq!(results["total"], 2, "{results}");
    let summary = p1.get(&format!("/patients/{}/records", w.patient1)).await?.body;
    assert!(
        summary.contains("Test results</a> <span class=\"tile-note\">2 items"),
        "counts from the database: {summary}"
    );
    assert!(summary.contains("Immunisations</a> <span class=\"tile-note\">1 item<"), "{summary}");
    let latest = id_with(&results, "\"value\":48").unwrap();
    let result_page = p1.get(&format!("/records/{latest}")).await?;
    assert_eq!(result_page.status, StatusCode::OK);
    assert!(result_page.body.contains("Higher than the usual range"));
    assert!(result_page.body.contains("20 to 40 mmol/mol"));
    // One point released: no chart yet, and the held ones are not in the table.
    assert!(!result_page.body.contains("<svg") && !result_page.body.contains("1 March 2023"));
    let report_page = p1.get(&format!("/records/{report}")).await?;
    assert!(report_page.body.contains("Your HbA1c is coming down well"), "the clinician's note");
    // The GP releases the earlier ones: the patient's result page now has its trend.
    for words in ["\"value\":62", "\"value\":55"] {
        let id = id_with(&all, words).unwrap();
        assert_eq!(gp.post(&format!("/records/{id}/release"), &[]).await?.status, StatusCode::SEE_OTHER);
    }
    let result_page = p1.get(&format!("/records/{latest}")).await?;
    assert!(result_page.body.contains("<svg") && result_page.body.contains("role=\"img\""));
    assert!(result_page.body.contains("<table") && result_page.body.contains("1 March 2023"), "the data table");
    assert!(!result_page.body.contains("<script") && !result_page.body.contains("style="), "no script or inline style");

    // The same version again changes nothing; a newer version replaces it; an older is refused.
    let again = ingest(&w.t, &w.client_a, &full_record("m-released", 1)).await?;
    assert_eq!(again.status, StatusCode::OK);
    assert!(json_of(&again)?["entry"].as_array().unwrap().iter().all(|e| e["response"]["status"] == "200 OK"));
    assert_eq!(record_rows(&w.t).await?, 10);
    let newer = ingest(&w.t, &w.client_a, &full_record("m-v2", 2)).await?;
    assert_eq!(newer.status, StatusCode::OK, "{}", newer.body);
    let older = ingest(&w.t, &w.client_a, &full_record("m-v1-late", 1)).await?;
    assert_eq!(older.status, StatusCode::CONFLICT, "{}", older.body);
    let found = issues(&older)?;
    assert!(found.iter().any(|(c, at, _)| c == "conflict" && at.ends_with("meta.versionId")), "{found:?}");
    let results = listed(&mut gp, w.patient1, "?category=results").await?;
    assert!(!entry_texts(&results).contains("m-v1-late"), "nothing of the refused transaction applied");

    // entered-in-error takes an item out of the patient's views; the practice keeps it.
    let mut wrong = allergy("al-1", P1, "Penicillin", "Hives");
    wrong["verificationStatus"] = json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": "entered-in-error" }] });
    let r =
        ingest(&w.t, &w.client_a, &bundle("transaction", vec![patient_entry(P1, "ZZZ0016"), put(wrong, 3)])).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!p1.get(&format!("/patients/{}/records", w.patient1)).await?.body.contains("Penicillin"));
    assert!(entry_texts(&listed(&mut gp, w.patient1, "").await?).contains("Penicillin"));
    // A DELETE likewise.
    let del = json!({ "request": { "method": "DELETE", "url": "Condition/co-1" } });
    let r = ingest(&w.t, &w.client_a, &bundle("batch", vec![del])).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(json_of(&r)?["type"], "batch-response");
    assert!(!p1.get(&format!("/patients/{}/records", w.patient1)).await?.body.contains("Type 2 diabetes"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bundles_get_an_operation_outcome_naming_the_problem_and_change_nothing() -> Result<()> {
    let (w, everyone) = World::with_every_role().await?;
    let good = |entries: Vec<Value>| {
        let mut all = vec![patient_entry(P1, "ZZZ0016")];
        all.extend(entries);
        bundle("transaction", all)
    };
    let cond = |id: &str| put(condition(id, P1, "Asthma", "2010-01-01"), 1);
    // A first item, so "nothing applied" is measured against a record that has something.
    assert_eq!(ingest(&w.t, &w.client_a, &good(vec![cond("base")])).await?.status, StatusCode::OK);
    let base = record_rows(&w.t).await?;
    let mut big = vec![patient_entry(P1, "ZZZ0016")];
    big.extend((0..1001).map(|i| cond(&format!("c{i}"))));
    let huge = format!(
        "{{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[],\"pad\":\"{}\"}}",
        "x".repeat(9 << 20)
    );
    let mut no_nhi = patient_entry(P1, "ZZZ0016");
    no_nhi["resource"]["identifier"] = json!([]);
    let mut two_official = patient_entry(P1, "ZZZ0016");
    two_official["resource"]["identifier"] = json!([{ "use": "official", "system": NHI, "value": "ZZZ0016" }, { "use": "official", "system": NHI, "value": "ZZZ0024" }]);
    let mut report = put(
        json!({ "resourceType": "DiagnosticReport", "id": "dr-x", "status": "final", "code": { "text": "Bloods" }, "subject": subject(P1), "result": [{ "reference": "Observation/nope" }] }),
        1,
    );
    report["fullUrl"] = json!("urn:uuid:11111111-2222-3333-4444-555555555555");
    let mut dup_a = cond("dup-a");
    dup_a["fullUrl"] = json!("urn:uuid:same");
    let mut dup_b = cond("dup-b");
    dup_b["fullUrl"] = json!("urn:uuid:same");
    let unversioned = {
        let mut e = cond("nov");
        e["resource"]["meta"] = json!({});
        e
    };
    let cases: Vec<(&str, String, &str, StatusCode, &str, &str)> = vec![
        // (what, body, token, status, issue code, where)
        (
            "malformed JSON",
            "{\"resourceType\": \"Bundle\", ".into(),
            &w.client_a,
            StatusCode::BAD_REQUEST,
            "structure",
            "Bundle",
        ),
        (
            "not a Bundle",
            json!({ "resourceType": "Patient" }).to_string(),
            &w.client_a,
            StatusCode::BAD_REQUEST,
            "invalid",
            "resourceType",
        ),
        (
            "a collection",
            bundle("collection", vec![cond("x")]),
            &w.client_a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "value",
            "Bundle.type",
        ),
        (
            "an unknown resource type",
            good(vec![
                json!({ "resource": { "resourceType": "Foo", "id": "f" }, "request": { "method": "PUT", "url": "Foo/f" } }),
            ]),
            &w.client_a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "structure",
            "Bundle.entry[1].resource",
        ),
        (
            "no NHI",
            bundle("transaction", vec![no_nhi, cond("y")]),
            &w.client_a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
            "Bundle.entry[0].resource.identifier",
        ),
        (
            "a wrong check digit",
            bundle("transaction", vec![patient_entry(P1, "ZZZ0017"), cond("y")]),
            &w.client_a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "value",
            "Bundle.entry[0].resource.identifier[0].value",
        ),
        (
            "two official NHIs",
            bundle("transaction", vec![two_official, cond("y")]),
            &w.client_a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invariant",
            "Bundle.entry[0].resource.identifier",
        ),
        (
            "an unknown patient",
            bundle("transaction", vec![patient_entry(P1, "ZZZ0024"), cond("y")]),
            &w.client_a,
            StatusCode::NOT_FOUND,
            "not-found",
            "Bundle.entry[1].resource",
        ),
        (
            "a patient of another practice",
            bundle("transaction", vec![patient_entry(P1, "ZBN77VL"), cond("y")]),
            &w.client_a,
            StatusCode::NOT_FOUND,
            "not-found",
            "Bundle.entry[1].resource",
        ),
        (
            "a client of another practice",
            good(vec![cond("y")]),
            &everyone.client_b,
            StatusCode::NOT_FOUND,
            "not-found",
            "Bundle.entry[1].resource",
        ),
        ("a hospital's client", good(vec![cond("y")]), &everyone.hospital, StatusCode::FORBIDDEN, "forbidden", ""),
        (
            "a subject that is not in the Bundle",
            bundle("transaction", vec![put(condition("z", "urn:uuid:missing", "Asthma", "2010"), 1)]),
            &w.client_a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-found",
            "Bundle.entry[0].resource.subject.reference",
        ),
        (
            "a result that does not exist",
            good(vec![report]),
            &w.client_a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-found",
            "Bundle.entry[1].resource.result[0].reference",
        ),
        (
            "a duplicate fullUrl",
            good(vec![dup_a, dup_b]),
            &w.client_a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "duplicate",
            "Bundle.entry[2].fullUrl",
        ),
        (
            "one name for two patients",
            bundle("transaction", vec![patient_entry(P1, "ZZZ0016"), patient_entry(P1, "ZZZ0024"), cond("y")]),
            &w.client_a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "duplicate",
            "Bundle.entry[1].resource",
        ),
        (
            "no version",
            good(vec![unversioned]),
            &w.client_a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
            "Bundle.entry[1].resource.meta.versionId",
        ),
        (
            "an older version after a newer one",
            good(vec![put(condition("base", P1, "Asthma", "2010-01-01"), 1)]),
            &w.client_a,
            StatusCode::OK,
            "",
            "",
        ),
        (
            "too many entries",
            bundle("transaction", big),
            &w.client_a,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            "Bundle.entry",
        ),
        ("too large", huge, &w.client_a, StatusCode::PAYLOAD_TOO_LARGE, "too-costly", "Bundle"),
        (
            "a bad date and missing words",
            good(vec![put(
                json!({ "resourceType": "Observation", "id": "o", "status": "final", "code": { "coding": [{ "code": "4548-4" }] }, "subject": subject(P1), "effectiveDateTime": "yesterday" }),
                1,
            )]),
            &w.client_a,
            StatusCode::UNPROCESSABLE_ENTITY,
            "required",
            "Bundle.entry[1].resource.code",
        ),
    ];
    for (what, body, token, status, code, at) in cases {
        let r = ingest(&w.t, token, &body).await?;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        if !code.is_empty() {
            assert_eq!(r.headers["content-type"], "application/fhir+json", "{what}");
            let found = issues(&r)?;
            assert!(found.iter().any(|(c, e, d)| c == code && e == at && !d.is_empty()), "{what}: {found:?}");
        }
        assert_eq!(record_rows(&w.t).await?, base, "{what}: nothing is applied");
    }
    // The version case above: the same version again is a no-op; now an older one after a
    // newer one is refused.
    assert_eq!(
        ingest(&w.t, &w.client_a, &good(vec![put(condition("base", P1, "Asthma (newer)", "2010-01-01"), 5)]))
            .await?
            .status,
        StatusCode::OK
    );
    let r = ingest(
        &w.t,
        &w.client_a,
        &good(vec![put(condition("base", P1, "Asthma (older)", "2010-01-01"), 4), cond("also-new")]),
    )
    .await?;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(issues(&r)?.iter().any(|(c, e, _)| c == "conflict" && e == "Bundle.entry[1].resource.meta.versionId"));
    assert_eq!(record_rows(&w.t).await?, base, "the other entry of the refused transaction is not applied");
    // Every problem of a transaction is listed at once.
    let r = ingest(
        &w.t,
        &w.client_a,
        &good(vec![
            put(json!({ "resourceType": "Immunization", "id": "i" }), 1),
            put(json!({ "resourceType": "Condition", "id": "c", "subject": subject(P1) }), 1),
        ]),
    )
    .await?;
    let found = issues(&r)?;
    for at in [
        "Bundle.entry[1].resource.status",
        "Bundle.entry[1].resource.vaccineCode",
        "Bundle.entry[1].resource.occurrenceDateTime",
        "Bundle.entry[1].resource.patient",
        "Bundle.entry[2].resource.code",
    ] {
        assert!(found.iter().any(|(_, e, _)| e == at), "{at} in {found:?}");
    }
    // Without a token, or with a browser's session, nothing at all.
    let mut anon = w.t.browser([10, 9, 9, 9]);
    let r =
        anon.send(Method::POST, "/fhir/R4", Some("application/fhir+json"), good(vec![cond("q")]).into_bytes()).await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // A batch applies what is good and reports the rest, entry by entry.
    let r = ingest(
        &w.t,
        &w.client_a,
        &bundle(
            "batch",
            vec![
                patient_entry(P1, "ZZZ0016"),
                cond("batch-ok"),
                put(condition("batch-bad", "urn:uuid:nobody", "X", "2010"), 1),
            ],
        ),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = json_of(&r)?;
    assert_eq!(v["entry"][1]["response"]["status"], "201 Created");
    assert_eq!(v["entry"][2]["response"]["outcome"]["resourceType"], "OperationOutcome");
    assert_eq!(record_rows(&w.t).await?, base + 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_and_hidden_items_never_reach_the_patient_and_do_reach_the_clinicians() -> Result<()> {
    let w = World::new().await?;
    assert_eq!(ingest(&w.t, &w.client_a, &full_record("m-hh", 1)).await?.status, StatusCode::OK);
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 0, 3]).await?;
    let all = listed(&mut gp, w.patient1, "").await?;
    let allergy = id_with(&all, "Penicillin").unwrap();
    let held = id_with(&all, "\"value\":62").unwrap();
    // The GP hides the allergy (with a reason) and leaves the results held.
    let r = gp.post(&format!("/records/{allergy}/hide"), &[("reason", "")]).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a reason is needed");
    let r = gp.post(&format!("/records/{allergy}/hide"), &[("reason", "Patient asked: shared tablet")]).await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 0, 2]).await?;
    let mut seen = String::new();
    for path in [
        format!("/patients/{}/records", w.patient1),
        format!("/patients/{}/records/allergies", w.patient1),
        format!("/patients/{}/records/results", w.patient1),
        format!("/api/v1/patients/{}/records", w.patient1),
        format!("/api/v1/patients/{}/records?category=allergies", w.patient1),
        format!("/api/v1/patients/{}/records?category=results", w.patient1),
    ] {
        let r = p1.get(&path).await?;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        seen.push_str(&r.body);
    }
    for (id, what) in [(&allergy, "hidden"), (&held, "held")] {
        assert_eq!(p1.get(&format!("/records/{id}")).await?.status, StatusCode::NOT_FOUND, "{what} page");
        assert_eq!(p1.get(&format!("/api/v1/records/{id}")).await?.status, StatusCode::NOT_FOUND, "{what} API");
        assert!(!seen.contains(id.as_str()), "{what} id in a listing");
    }
    assert!(!seen.contains("Penicillin") && !seen.contains("HbA1c") && !seen.contains("shared tablet"));
    // Counts too: the allergies tile says none, the results tile none.
    let summary = p1.get(&format!("/patients/{}/records", w.patient1)).await?.body;
    assert!(summary.contains("No allergies are recorded"));
    assert!(summary.contains("Test results</a> <span class=\"tile-note\">0 items"), "{summary}");
    // The export: nothing held or hidden in it either (stored, not compressed: a byte search
    // of the zip sees every entry's text).
    let zip = export_zip(&mut p1, w.patient1).await?;
    assert!(contains(&zip, b"Type 2 diabetes m-hh"), "the export holds the released record");
    for absent in
        [&b"Penicillin"[..], b"HbA1c", b"shared tablet", b"hidden_health_record", allergy.as_bytes(), held.as_bytes()]
    {
        assert!(!contains(&zip, absent), "{} in the export", String::from_utf8_lossy(absent));
    }
    // The clinicians see both, marked; the GP's read of the hidden item is marked as such in
    // the patient's history for the privacy officer, and not to the patient.
    let page = gp.get(&format!("/records/{allergy}")).await?;
    assert!(page.body.contains("Hidden from the patient") && page.body.contains("Patient asked: shared tablet"));
    gp.get(&format!("/patients/{}/records", w.patient1)).await?; // the whole record, the hidden allergy in it
    let history = p1.get(&format!("/patients/{}/access", w.patient1)).await?.body;
    let by_others = history
        .split("<tr")
        .filter(|row| row.contains("Opened an item of the health record") && !row.contains("\">You<"))
        .count();
    assert_eq!(by_others, 1, "the GP's one read of the item, no more: {history}");
    assert!(!history.contains(allergy.as_str()) && !history.contains(held.as_str()), "no item ids");
    assert!(
        !history.contains("hides") && !history.contains("Hid an item"),
        "the patient's copy says nothing of hiding"
    );
    staff(&w.t, w.practice_a, "po-a@example.nz", app::domain::StaffRole::PrivacyOfficer).await?;
    let mut po = w.signed_in("po-a@example.nz", [127, 0, 0, 4]).await?;
    let officer = po.get(&format!("/patients/{}/access", w.patient1)).await?.body;
    assert!(officer.contains("that the practice hides from the patient"), "{officer}");
    // A held result hidden from the patient is marked in the queue; releasing it tells nobody.
    assert_eq!(
        gp.post(&format!("/records/{held}/hide"), &[("reason", "Sensitive: discuss in person")]).await?.status,
        StatusCode::SEE_OTHER
    );
    let queue = gp.get(&format!("/practices/{}/results", w.practice_a)).await?.body;
    assert!(queue.contains("Hidden from the patient: Sensitive: discuss in person"), "{queue}");
    let before = mails(&w.t).await?.len();
    assert_eq!(gp.post(&format!("/records/{held}/release"), &[]).await?.status, StatusCode::SEE_OTHER);
    assert_eq!(mails(&w.t).await?.len(), before, "no notice of a result the patient cannot see");
    assert_eq!(p1.get(&format!("/records/{held}")).await?.status, StatusCode::NOT_FOUND);
    // Shown again, the patient sees it.
    assert_eq!(gp.post(&format!("/records/{allergy}/hide"), &[("show", "1")]).await?.status, StatusCode::SEE_OTHER);
    assert!(p1.get(&format!("/patients/{}/records", w.patient1)).await?.body.contains("Penicillin"));
    // Another patient, another practice's staff and the operator see none of it.
    let mut p2 = w.signed_in("p2@example.nz", [127, 0, 0, 5]).await?;
    assert_eq!(p2.get(&format!("/records/{allergy}")).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(p2.get(&format!("/api/v1/patients/{}/records", w.patient1)).await?.status, StatusCode::NOT_FOUND);
    let mut op = w.operator().await?;
    assert_eq!(op.get(&format!("/records/{allergy}")).await?.status, StatusCode::NOT_FOUND);
    // A practice that keeps results back entirely: the category is gone for its patients.
    let mut admin = w.signed_in("admin-a@example.nz", [127, 0, 0, 6]).await?;
    let r = admin
        .post(
            &format!("/practices/{}/record-rules", w.practice_a),
            &[("allergies", "1"), ("conditions", "1"), ("auto_release_days", "400")],
        )
        .await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "a day count out of range");
    let r = admin
        .post(&format!("/practices/{}/record-rules", w.practice_a), &[("allergies", "1"), ("conditions", "1")])
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(p1.get(&format!("/patients/{}/records/medications", w.patient1)).await?.status, StatusCode::NOT_FOUND);
    assert!(!p1.get(&format!("/patients/{}/records", w.patient1)).await?.body.contains("Metformin"));
    // Automatic release after N days.
    let r = admin
        .post(&format!("/practices/{}/record-rules", w.practice_a), &[("results", "1"), ("auto_release_days", "2")])
        .await?;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        ingest(
            &w.t,
            &w.client_a,
            &bundle(
                "transaction",
                vec![
                    patient_entry(P1, "ZZZ0016"),
                    put(
                        observation("ob-auto", P1, ("2093-3", "Cholesterol"), 4.1, "mmol/L", (0.0, 5.0), "2026-11-20"),
                        1
                    )
                ]
            )
        )
        .await?
        .status,
        StatusCode::OK
    );
    assert!(!entry_texts(&listed(&mut p1, w.patient1, "?category=results").await?).contains("Cholesterol"));
    w.t.clock.advance(3 * 86_400);
    // The patient is told once, by the job queue, without what it is.
    let told = |m: &(String, String, String)| m.0 == "p1@example.nz" && m.1 == app::notify::NEWS_SUBJECT;
    let before = mails(&w.t).await?.iter().filter(|m| told(m)).count();
    w.t.app.console().run_due_jobs("node-a").await?;
    w.t.clock.advance(3_600);
    w.t.app.console().run_due_jobs("node-a").await?;
    let notices: Vec<_> = mails(&w.t).await?.into_iter().filter(|m| told(m)).collect();
    assert_eq!(notices.len(), before + 1, "one notice for the released result, once");
    assert!(!notices.iter().any(|m| m.2.contains("Cholesterol")));
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 0, 2]).await?;
    let released = entry_texts(&listed(&mut p1, w.patient1, "?category=results").await?);
    assert!(released.contains("Cholesterol"));
    assert!(!released.contains("\"held\""), "released by the practice's rule, it is no longer marked held: {released}");
    Ok(())
}

async fn export_zip(b: &mut Browser, patient: app::domain::PatientId) -> Result<Vec<u8>> {
    let page = b.get(&format!("/patients/{patient}/records")).await?;
    assert_eq!(page.status, StatusCode::OK);
    let (status, headers, bytes) = b.post_bytes(&format!("/patients/{patient}/export"), &[]).await?;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(headers["content-type"], "application/zip");
    assert!(bytes.starts_with(b"PK\x03\x04"), "a zip");
    Ok(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_needs_a_recent_second_factor_and_is_rate_limited() -> Result<()> {
    let w = World::new().await?;
    assert_eq!(ingest(&w.t, &w.client_a, &full_record("m-ex", 1)).await?.status, StatusCode::OK);
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 0, 2]).await?;
    // Without a second factor on the account, it downloads at once.
    let zip = export_zip(&mut p1, w.patient1).await?;
    assert!(contains(&zip, b"record.json") && contains(&zip, b"README.txt") && contains(&zip, b"documents/001-"));
    assert!(contains(&zip, b"%PDF"), "the pushed letter's file is in it");
    // With an authenticator, a code from it within ten minutes is needed.
    fixture_totp(&w.t, "p1@example.nz").await?;
    let secret = FIXTURE_TOTP.to_vec();
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 0, 2]).await?;
    w.t.clock.advance(11 * 60);
    p1.get(&format!("/patients/{}/records", w.patient1)).await?;
    let (status, _, body) = p1.post_bytes(&format!("/patients/{}/export", w.patient1), &[]).await?;
    assert_eq!(status, StatusCode::FORBIDDEN, "no recent second factor");
    assert!(String::from_utf8_lossy(&body).contains("Confirm it"));
    w.t.clock.advance(30);
    let code = totp_code(&secret, app::domain::Clock::now(&w.t.clock));
    let (status, _, zip) = p1.post_bytes(&format!("/patients/{}/export", w.patient1), &[("code", &code)]).await?;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&zip));
    assert!(zip.starts_with(b"PK"));
    // Three an hour: the fourth is refused.
    let _ = export_zip(&mut p1, w.patient1).await?;
    p1.get(&format!("/patients/{}/records", w.patient1)).await?;
    let (status, _, _) = p1.post_bytes(&format!("/patients/{}/export", w.patient1), &[]).await?;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Staff cannot export a patient's record.
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 0, 3]).await?;
    gp.get(&format!("/patients/{}/records", w.patient1)).await?;
    let (status, _, _) = gp.post_bytes(&format!("/patients/{}/export", w.patient1), &[]).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Each export is one export event naming the patient and what was in it.
    let events = sql_strings(&w.t, "SELECT object_id FROM audit_events WHERE action = 'export' AND object_type = 'patient_record' AND outcome = 'allowed'").await?;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events[0].starts_with(&w.patient1.to_string())
            && events[0].contains("records")
            && events[0].contains("1 documents")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_sealed_at_rest_and_erased_with_the_patients_key() -> Result<()> {
    let w = World::new().await?;
    let marker = "zq-sealed-marker-7731";
    assert_eq!(ingest(&w.t, &w.client_a, &full_record(marker, 1)).await?.status, StatusCode::OK);
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 0, 3]).await?;
    let all = listed(&mut gp, w.patient1, "").await?;
    let report = id_with(&all, "Diabetes review bloods").unwrap();
    let allergy = id_with(&all, "Penicillin").unwrap();
    gp.post(&format!("/records/{report}/release"), &[("note", &format!("note {marker}"))]).await?;
    gp.post(&format!("/records/{allergy}/hide"), &[("reason", &format!("reason {marker}"))]).await?;
    if w.t.url.starts_with("sqlite:") {
        let files: Vec<_> =
            files_under(&w.t.data_dir).into_iter().filter(|f| f.to_string_lossy().contains("tiaki.db")).collect();
        assert!(!files.is_empty());
        for f in &files {
            assert!(!contains(&std::fs::read(f)?, marker.as_bytes()), "plaintext in {}", f.display());
            assert!(!contains(&std::fs::read(f)?, b"Type 2 diabetes"), "plaintext in {}", f.display());
        }
    } else {
        let tables =
            sql_strings(&w.t, "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'")
                .await?;
        for table in tables {
            for row in sql_strings(&w.t, &format!("SELECT t::text FROM {table} t")).await? {
                assert!(!row.contains(marker) && !row.contains("Type 2 diabetes"), "plaintext in table {table}");
            }
        }
    }
    // A key rotation keeps the record readable.
    assert!(w.t.app.console().rotate_patient_key("ZZZ0016").await.map_err(|e| anyhow!("{e:?}"))? >= 1);
    assert!(entry_texts(&listed(&mut gp, w.patient1, "").await?).contains(marker));
    // Erasing the patient's keys shreds the record with the documents.
    w.t.app.console().erase_patient_key("ZZZ0016").await.map_err(|e| anyhow!("{e:?}"))?;
    assert_eq!(record_rows(&w.t).await?, 0);
    assert_eq!(listed(&mut gp, w.patient1, "").await?["total"], 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_api_gives_out_passes_an_independent_fhir_validator() -> Result<()> {
    let w = World::new().await?;
    assert_eq!(ingest(&w.t, &w.client_a, &full_record("m-valid", 1)).await?.status, StatusCode::OK);
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 0, 3]).await?;
    let all = listed(&mut gp, w.patient1, "").await?;
    for words in ["Diabetes review bloods", "\"value\":62", "\"value\":55"] {
        let id = id_with(&all, words).unwrap();
        gp.post(&format!("/records/{id}/release"), &[]).await?;
    }
    let mut p1 = w.signed_in("p1@example.nz", [127, 0, 0, 2]).await?;
    let dir = tempdir()?;
    let mut files = Vec::new();
    let save = |files: &mut Vec<std::path::PathBuf>, name: &str, text: &str| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        files.push(path);
        Ok(())
    };
    save(&mut files, "clinician.json", &all.to_string())?;
    let patients = listed(&mut p1, w.patient1, "").await?;
    assert_eq!(patients["total"], 9, "everything but the consultation note");
    save(&mut files, "patient.json", &patients.to_string())?;
    for e in patients["entry"].as_array().unwrap() {
        let id = e["resource"]["id"].as_str().unwrap();
        let one = p1.get(&format!("/api/v1/records/{id}")).await?;
        assert_eq!(one.status, StatusCode::OK);
        save(&mut files, &format!("item-{id}.json"), &one.body)?;
    }
    let bad = ingest(&w.t, &w.client_a, "{").await?;
    save(&mut files, "outcome.json", &bad.body)?;
    let response = ingest(&w.t, &w.client_a, &full_record("m-valid", 1)).await?;
    save(&mut files, "response.json", &response.body)?;
    let zip = export_zip(&mut p1, w.patient1).await?;
    let record = zip_entry(&zip, "record.json")?;
    let record_json: Value = serde_json::from_slice(&record)?;
    assert_eq!(record_json["type"], "collection");
    let kinds: Vec<&str> = record_json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["resourceType"].as_str())
        .collect();
    for k in ["Patient", "Condition", "Observation", "DocumentReference", "AuditEvent"] {
        assert!(kinds.contains(&k), "{k} in the export: {kinds:?}");
    }
    save(&mut files, "export.json", std::str::from_utf8(&record)?)?;
    let report = validate(&files)?;
    assert_eq!(report["errors"], json!([]), "{report}");
    assert!(report["checked"].as_u64().unwrap() > 40, "{report}");
    // The validator is not a rubber stamp: a bad NHI and a missing status fail it.
    let mut broken = record_json.clone();
    broken["entry"][0]["resource"]["identifier"][0]["value"] = json!("ZZZ0017");
    save(&mut files, "broken.json", &broken.to_string())?;
    let report = validate(&files[files.len() - 1..])?;
    assert_ne!(report["errors"], json!([]), "{report}");
    Ok(())
}

fn tempdir() -> Result<std::path::PathBuf> {
    let d = std::env::temp_dir().join(format!("tiaki-fhir-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// The validator in `tests/fhir-validate` (`@medplum/core`'s, with the HL7 NZ Base NHI rules).
pub(crate) fn validate(files: &[std::path::PathBuf]) -> Result<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fhir-validate");
    if !root.join("node_modules/@medplum/core").exists() {
        return Err(anyhow!("install the validator first: (cd tests/fhir-validate && npm ci)"));
    }
    let out = std::process::Command::new("node").arg(root.join("validate.mjs")).args(files).output()?;
    let report: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        anyhow!(
            "validator output ({e}): {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok(report)
}

/// One stored entry of a zip (local headers; stored, not compressed: what the export writes).
fn zip_entry(zip: &[u8], name: &str) -> Result<Vec<u8>> {
    let mut at = 0;
    while at + 30 <= zip.len() && zip[at..].starts_with(b"PK\x03\x04") {
        let u16_at = |i: usize| usize::from(u16::from_le_bytes([zip[at + i], zip[at + i + 1]]));
        let (flags, method, name_len, extra_len) = (u16_at(6), u16_at(8), u16_at(26), u16_at(28));
        let start = at + 30 + name_len + extra_len;
        let this = std::str::from_utf8(&zip[at + 30..at + 30 + name_len])?;
        assert_eq!(method, 0, "stored");
        // Streamed entries have their sizes after the data (a data descriptor): find the next header.
        let end = if flags & 8 != 0 {
            let next =
                zip[start..].windows(4).position(|w| w == b"PK\x07\x08").ok_or_else(|| anyhow!("no descriptor"))?;
            start + next
        } else {
            let size = u32::from_le_bytes([zip[at + 18], zip[at + 19], zip[at + 20], zip[at + 21]]) as usize;
            start + size
        };
        if this == name {
            return Ok(zip[start..end].to_vec());
        }
        at = if flags & 8 != 0 { end + 16 } else { end };
        if flags & 8 != 0 && !zip[at..].starts_with(b"PK") {
            at += 8; // a ZIP64 descriptor
        }
    }
    Err(anyhow!("no {name} in the zip"))
}

/// The matrix's object: a condition of patient 1's, sent by practice A's system; its id.
pub(crate) async fn one_condition(w: &World) -> Result<String> {
    let body = bundle(
        "transaction",
        vec![patient_entry(P1, "ZZZ0016"), put(condition("matrix-1", P1, "Asthma", "2010-01-01"), 1)],
    );
    let r = ingest(&w.t, &w.client_a, &body).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut gp = w.signed_in("gp-a@example.nz", [127, 0, 9, 9]).await?;
    id_with(&listed(&mut gp, w.patient1, "").await?, "Asthma").ok_or_else(|| anyhow!("no record"))
}

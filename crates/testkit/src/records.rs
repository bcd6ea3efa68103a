//! Health-record fixtures: FHIR R4 Bundles as a practice's system sends them, built from small
//! parts, and the request that sends one to `POST /fhir/R4`.

use crate::{Reply, TestApp};
use anyhow::Result;
use axum::http::Method;
use serde_json::{Value, json};

/// The NHI naming system.
pub const NHI: &str = "https://standards.digital.health.nz/ns/nhi-id";

/// A Bundle of `kind` (`transaction`, `batch`…) with these entries.
#[must_use]
pub fn bundle(kind: &str, entries: impl IntoIterator<Item = Value>) -> String {
    json!({ "resourceType": "Bundle", "type": kind, "entry": entries.into_iter().collect::<Vec<_>>() }).to_string()
}

/// The patient's entry (matched by NHI), referred to as `urn:uuid:<…>` by the items after it.
#[must_use]
pub fn patient_entry(full_url: &str, nhi: &str) -> Value {
    json!({
        "fullUrl": full_url,
        "resource": { "resourceType": "Patient", "identifier": [{ "use": "official", "system": NHI, "value": nhi }] },
        "request": { "method": "PUT", "url": format!("Patient?identifier={NHI}|{nhi}") }
    })
}

/// An entry that puts `resource` (which has its `resourceType` and `id`) at `version`.
#[must_use]
pub fn put(mut resource: Value, version: u32) -> Value {
    resource["meta"] = json!({ "versionId": version.to_string() });
    let url = format!("{}/{}", resource["resourceType"].as_str().unwrap_or(""), resource["id"].as_str().unwrap_or(""));
    json!({ "fullUrl": format!("urn:tiaki-test:{url}"), "resource": resource, "request": { "method": "PUT", "url": url } })
}

/// A reference to the patient entry.
#[must_use]
pub fn subject(full_url: &str) -> Value {
    json!({ "reference": full_url })
}

/// A lab result with a value, unit and usual range.
#[must_use]
pub fn observation(
    id: &str,
    patient: &str,
    (code, name): (&str, &str),
    value: f64,
    unit: &str,
    range: (f64, f64),
    date: &str,
) -> Value {
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory", "display": "Laboratory" }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": code, "display": name }], "text": name },
        "subject": subject(patient),
        "effectiveDateTime": date,
        "valueQuantity": { "value": value, "unit": unit },
        "referenceRange": [{ "low": { "value": range.0, "unit": unit }, "high": { "value": range.1, "unit": unit } }]
    })
}

/// A condition, in words.
#[must_use]
pub fn condition(id: &str, patient: &str, text: &str, onset: &str) -> Value {
    json!({
        "resourceType": "Condition", "id": id,
        "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
        "code": { "text": text }, "subject": subject(patient), "onsetDateTime": onset
    })
}

/// An allergy, in words.
#[must_use]
pub fn allergy(id: &str, patient: &str, text: &str, reaction: &str) -> Value {
    json!({
        "resourceType": "AllergyIntolerance", "id": id,
        "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active" }] },
        "criticality": "high", "code": { "text": text }, "patient": subject(patient), "recordedDate": "2019-04-02",
        "reaction": [{ "manifestation": [{ "text": reaction }] }]
    })
}

/// A long-term medication with repeats.
#[must_use]
pub fn medication(id: &str, patient: &str, text: &str, dose: &str) -> Value {
    json!({
        "resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
        "medicationCodeableConcept": { "text": text }, "subject": subject(patient), "authoredOn": "2024-02-01",
        "dosageInstruction": [{ "text": dose }], "dispenseRequest": { "numberOfRepeatsAllowed": 2 }
    })
}

/// Sends a Bundle to `POST /fhir/R4` with a client's token.
///
/// # Errors
/// When the request cannot be made.
pub async fn ingest(t: &TestApp, token: &str, body: &str) -> Result<Reply> {
    t.client(token).send(Method::POST, "/fhir/R4", Some("application/fhir+json"), body.as_bytes().to_vec()).await
}

/// How many items of health records are stored (every patient, every state).
///
/// # Errors
/// When the database cannot be read.
pub async fn record_rows(t: &TestApp) -> Result<i64> {
    use sqlx::Connection;
    let sql = "SELECT COUNT(*) FROM health_records";
    if t.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&t.url).await?;
        Ok(sqlx::query_scalar(sql).fetch_one(&mut c).await?)
    } else {
        let mut c = sqlx::PgConnection::connect(&t.url).await?;
        Ok(sqlx::query_scalar(sql).fetch_one(&mut c).await?)
    }
}

//! A realistic health record for demo patients and benchmarks, as a practice's system would send
//! it: a FHIR R4 transaction Bundle. Made-up people with test NHIs; never for real patients.

use super::fhir::NHI_SYSTEM;
use serde_json::{Value, json};

fn entry(resource: &Value) -> Value {
    let kind = resource["resourceType"].as_str().unwrap_or_default();
    let id = resource["id"].as_str().unwrap_or_default();
    let mut r = resource.clone();
    r["meta"] = json!({ "versionId": "1" });
    json!({ "fullUrl": format!("urn:demo:{kind}/{id}"), "resource": r, "request": { "method": "PUT", "url": format!("{kind}/{id}") } })
}

fn lab(
    id: &str,
    patient: &str,
    (loinc, name): (&str, &str),
    value: f64,
    unit: &str,
    range: (Option<f64>, Option<f64>),
    date: &str,
) -> Value {
    let mut rr = json!({});
    if let Some(l) = range.0 {
        rr["low"] = json!({ "value": l, "unit": unit });
    }
    if let Some(h) = range.1 {
        rr["high"] = json!({ "value": h, "unit": unit });
    }
    json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory", "display": "Laboratory" }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": loinc, "display": name }], "text": name },
        "subject": { "reference": patient },
        "effectiveDateTime": date,
        "issued": format!("{date}T09:00:00+13:00"),
        "valueQuantity": { "value": value, "unit": unit },
        "referenceRange": [rr]
    })
}

/// The source id prefix of a patient's items (`<prefix>-…`), so several patients' records can
/// be sent by one system.
#[must_use]
pub fn prefix(nhi: &str) -> String {
    format!("demo-{}", nhi.to_ascii_lowercase())
}

/// A patient's record as one transaction Bundle: a few conditions, long-term medications (some
/// with repeats), allergies, the childhood immunisation schedule, about twenty lab results over
/// five years (`HbA1c`, lipids, `eGFR`) with a report grouping the latest, a consultation with its
/// note, and recalls. `variant` changes the numbers a little, so demo patients differ.
#[must_use]
#[expect(clippy::too_many_lines, reason = "a record, item by item")]
pub fn record_bundle(nhi: &str, variant: u32) -> String {
    let p = "urn:uuid:5d0c1f6e-8a3b-4c2d-9e1f-0a1b2c3d4e5f";
    let id = |s: &str| format!("{}-{s}", prefix(nhi));
    let v = f64::from(variant % 5);
    let mut items: Vec<Value> = vec![
        json!({ "resourceType": "AllergyIntolerance", "id": id("allergy-penicillin"),
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active" }] },
            "type": "allergy", "category": ["medication"], "criticality": "high",
            "code": { "text": "Penicillin" }, "patient": { "reference": p }, "recordedDate": "2009-05-14",
            "reaction": [{ "manifestation": [{ "text": "Hives and swelling of the lips" }], "severity": "moderate" }] }),
        json!({ "resourceType": "AllergyIntolerance", "id": id("allergy-elastoplast"),
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active" }] },
            "type": "intolerance", "criticality": "low", "code": { "text": "Sticking plaster (adhesive)" },
            "patient": { "reference": p }, "recordedDate": "2016-02-01",
            "reaction": [{ "manifestation": [{ "text": "Itchy rash where the plaster was" }] }] }),
        json!({ "resourceType": "Condition", "id": id("condition-diabetes"),
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
            "code": { "text": "Type 2 diabetes" }, "subject": { "reference": p }, "onsetDateTime": "2019-08-20" }),
        json!({ "resourceType": "Condition", "id": id("condition-blood-pressure"),
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
            "code": { "text": "High blood pressure" }, "subject": { "reference": p }, "onsetDateTime": "2017-03-02" }),
        json!({ "resourceType": "Condition", "id": id("condition-asthma"),
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
            "code": { "text": "Asthma" }, "subject": { "reference": p }, "onsetDateTime": "1998" }),
        json!({ "resourceType": "Condition", "id": id("condition-ankle"),
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved" }] },
            "code": { "text": "Sprained left ankle" }, "subject": { "reference": p }, "onsetDateTime": "2022-06-11", "abatementDateTime": "2022-08-01" }),
        json!({ "resourceType": "Condition", "id": id("condition-low-mood"),
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
            "code": { "text": "Low mood" }, "subject": { "reference": p }, "onsetDateTime": "2024-09-03" }),
        json!({ "resourceType": "MedicationRequest", "id": id("med-metformin"), "status": "active", "intent": "order",
            "medicationCodeableConcept": { "text": "Metformin 500 mg tablets" }, "subject": { "reference": p }, "authoredOn": "2025-09-01",
            "courseOfTherapyType": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy", "code": "continuous" }] },
            "dosageInstruction": [{ "text": "Take one tablet twice a day with food" }], "dispenseRequest": { "numberOfRepeatsAllowed": 2 } }),
        json!({ "resourceType": "MedicationRequest", "id": id("med-cilazapril"), "status": "active", "intent": "order",
            "medicationCodeableConcept": { "text": "Cilazapril 2.5 mg tablets" }, "subject": { "reference": p }, "authoredOn": "2025-09-01",
            "dosageInstruction": [{ "text": "Take one tablet each morning" }], "dispenseRequest": { "numberOfRepeatsAllowed": 2 } }),
        json!({ "resourceType": "MedicationRequest", "id": id("med-salbutamol"), "status": "active", "intent": "order",
            "medicationCodeableConcept": { "text": "Salbutamol 100 microgram inhaler" }, "subject": { "reference": p }, "authoredOn": "2025-05-20",
            "dosageInstruction": [{ "text": "One or two puffs when needed for wheeze" }] }),
        json!({ "resourceType": "MedicationStatement", "id": id("med-amoxicillin-old"), "status": "completed",
            "medicationCodeableConcept": { "text": "Doxycycline 100 mg capsules" }, "subject": { "reference": p },
            "effectivePeriod": { "start": "2025-11-02", "end": "2025-11-09" }, "dosage": [{ "text": "One capsule a day for seven days" }] }),
        json!({ "resourceType": "Encounter", "id": id("visit-2025-03"), "status": "finished",
            "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory" },
            "type": [{ "text": "Diabetes review with the nurse" }], "subject": { "reference": p },
            "period": { "start": "2025-03-12T10:15:00+13:00", "end": "2025-03-12T10:45:00+13:00" },
            "reasonCode": [{ "text": "Annual diabetes check" }],
            "extension": [{ "url": super::fhir::CONSULTATION_NOTE, "valueString": "Feet checked: good sensation, no sores. Talked about walking after dinner. Bloods in two weeks." }] }),
        json!({ "resourceType": "ServiceRequest", "id": id("recall-diabetes"), "status": "active", "intent": "plan",
            "code": { "text": "Diabetes annual review" }, "subject": { "reference": p }, "occurrenceDateTime": "2027-03-01",
            "reasonCode": [{ "text": "Yearly check of blood sugar, kidneys, eyes and feet" }] }),
        json!({ "resourceType": "ServiceRequest", "id": id("recall-flu"), "status": "active", "intent": "plan",
            "code": { "text": "Flu vaccine" }, "subject": { "reference": p }, "occurrenceDateTime": "2027-04-15" }),
    ];
    // The childhood schedule (New Zealand's), and recent flu vaccines.
    for (n, (vaccine, date, dose)) in [
        ("DTaP-IPV-HepB/Hib (six weeks)", "1985-05-01", 1),
        ("DTaP-IPV-HepB/Hib (three months)", "1985-06-12", 2),
        ("DTaP-IPV-HepB/Hib (five months)", "1985-08-14", 3),
        ("MMR (measles, mumps and rubella)", "1986-03-20", 1),
        ("MMR (measles, mumps and rubella)", "1988-03-22", 2),
        ("Tdap (tetanus, diphtheria and whooping cough)", "1996-05-10", 1),
        ("Influenza", "2024-04-18", 1),
        ("Influenza", "2025-04-22", 1),
    ]
    .into_iter()
    .enumerate()
    {
        items.push(json!({ "resourceType": "Immunization", "id": id(&format!("imm-{n}")), "status": "completed",
            "vaccineCode": { "text": vaccine }, "patient": { "reference": p }, "occurrenceDateTime": date,
            "protocolApplied": [{ "doseNumberPositiveInt": dose }] }));
    }
    // Lab results over five years, for the trend charts.
    let years = ["2021", "2022", "2023", "2024", "2025", "2026"];
    let mut latest = Vec::new();
    for (i, y) in years.iter().enumerate() {
        let t = f64::from(u32::try_from(i).unwrap_or(0));
        let date = format!("{y}-03-2{}", i % 9);
        let hba1c = lab(
            &id(&format!("hba1c-{y}")),
            p,
            ("4548-4", "HbA1c"),
            64.0 - 3.0 * t + v,
            "mmol/mol",
            (Some(20.0), Some(40.0)),
            &date,
        );
        items.push(hba1c);
        if i >= 1 {
            let chol = lab(
                &id(&format!("chol-{y}")),
                p,
                ("2093-3", "Total cholesterol"),
                6.1 - 0.3 * t + v / 10.0,
                "mmol/L",
                (None, Some(4.0)),
                &date,
            );
            let ldl = lab(
                &id(&format!("ldl-{y}")),
                p,
                ("13457-7", "LDL cholesterol"),
                3.9 - 0.2 * t,
                "mmol/L",
                (None, Some(1.8)),
                &date,
            );
            let egfr = lab(
                &id(&format!("egfr-{y}")),
                p,
                ("62238-1", "eGFR (kidney function)"),
                84.0 - 2.0 * t - v,
                "mL/min/1.73m2",
                (Some(60.0), None),
                &date,
            );
            items.extend([chol, ldl, egfr]);
        }
        if i == years.len() - 1 {
            latest = vec![
                id(&format!("hba1c-{y}")),
                id(&format!("chol-{y}")),
                id(&format!("ldl-{y}")),
                id(&format!("egfr-{y}")),
            ];
        }
    }
    items.push(json!({ "resourceType": "DiagnosticReport", "id": id("report-2026"), "status": "final",
        "code": { "text": "Diabetes review bloods" }, "subject": { "reference": p }, "effectiveDateTime": "2026-03-25",
        "result": latest.iter().map(|o| json!({ "reference": format!("Observation/{o}") })).collect::<Vec<_>>(),
        "conclusion": "HbA1c improving but still above target. Cholesterol improving." }));
    let mut entries = vec![json!({
        "fullUrl": p,
        "resource": { "resourceType": "Patient", "identifier": [{ "use": "official", "system": NHI_SYSTEM, "value": nhi }] },
        "request": { "method": "PUT", "url": format!("Patient?identifier={NHI_SYSTEM}|{nhi}") }
    })];
    entries.extend(items.iter().map(entry));
    json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries }).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_record_is_a_transaction_with_twenty_odd_results() {
        let b: serde_json::Value = serde_json::from_str(&super::record_bundle("ZZZ0016", 1)).unwrap_or_default();
        assert_eq!(b["type"], "transaction");
        let kinds: Vec<&str> = b["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["resource"]["resourceType"].as_str())
            .collect();
        let results = kinds.iter().filter(|k| **k == "Observation").count();
        assert!((18..=26).contains(&results), "{results} results");
        for k in [
            "Patient",
            "AllergyIntolerance",
            "Condition",
            "MedicationRequest",
            "Immunization",
            "DiagnosticReport",
            "Encounter",
            "ServiceRequest",
        ] {
            assert!(kinds.contains(&k), "{k}");
        }
    }
}

//! Checking one incoming resource: the elements FHIR requires, the ones Tiaki needs to show it
//! in plain words, dates in FHIR's formats, and a version it can order. Every problem is an
//! [`Issue`] at its `FHIRPath`, so a practice's system is told everything at once.

use super::fhir::{CodeableConcept, Issue, Resource};
use domain::RecordCategory;

/// What a checked resource is, for storing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Its category.
    pub category: RecordCategory,
    /// Its clinical date, for ordering.
    pub effective: Option<String>,
    /// Whether it says it was entered in error (removed from every patient view).
    pub entered_in_error: bool,
}

/// Whether a string is a FHIR `date` or `dateTime` (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or a date
/// with a time and a zone).
#[must_use]
pub fn is_fhir_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date_ok = match b.len() {
        4 => digits(0..4),
        7 => digits(0..4) && b[4] == b'-' && digits(5..7),
        _ => digits(0..4) && b.get(4) == Some(&b'-') && digits(5..7) && b.get(7) == Some(&b'-') && digits(8..10),
    };
    if !date_ok {
        return false;
    }
    if b.len() <= 10 {
        let month = s.get(5..7).and_then(|m| m.parse::<u8>().ok());
        let day = s.get(8..10).and_then(|d| d.parse::<u8>().ok());
        return month.is_none_or(|m| (1..=12).contains(&m)) && day.is_none_or(|d| (1..=31).contains(&d));
    }
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

fn words_required(issues: &mut Vec<Issue>, at: &str, field: &str, c: Option<&CodeableConcept>) {
    match c {
        None => issues.push(Issue::error("required", format!("{at}.{field}"), format!("{field} is required."))),
        Some(c) if c.words().is_none() => issues.push(Issue::error(
            "required",
            format!("{at}.{field}"),
            format!("{field} needs a text or a coding's display: patients read words, not codes."),
        )),
        Some(_) => {}
    }
}

fn required<T>(issues: &mut Vec<Issue>, at: &str, field: &str, v: Option<&T>) {
    if v.is_none() {
        issues.push(Issue::error("required", format!("{at}.{field}"), format!("{field} is required.")));
    }
}

fn date(issues: &mut Vec<Issue>, at: &str, field: &str, v: Option<&String>) {
    if let Some(d) = v
        && !is_fhir_date(d)
    {
        issues.push(Issue::error(
            "value",
            format!("{at}.{field}"),
            format!("{field} is not a FHIR date or dateTime: {d:?}."),
        ));
    }
}

fn status_in(issues: &mut Vec<Issue>, at: &str, v: Option<&String>, allowed: &[&str]) {
    match v {
        None => issues.push(Issue::error("required", format!("{at}.status"), "status is required.")),
        Some(s) if !allowed.contains(&s.as_str()) => issues.push(Issue::error(
            "value",
            format!("{at}.status"),
            format!("status {s:?} is not one of {}.", allowed.join(", ")),
        )),
        Some(_) => {}
    }
}

fn entered_in_error(c: Option<&CodeableConcept>) -> bool {
    c.is_some_and(|c| c.has_code("entered-in-error"))
}

const EVENT: &[&str] =
    &["preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error", "unknown"];
const OBSERVATION: &[&str] =
    &["registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"];
const REPORT: &[&str] = &[
    "registered",
    "partial",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "appended",
    "cancelled",
    "entered-in-error",
    "unknown",
];
const MED_STATEMENT: &[&str] =
    &["active", "completed", "entered-in-error", "intended", "stopped", "on-hold", "unknown", "not-taken"];
const MED_REQUEST: &[&str] =
    &["active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped", "draft", "unknown"];
const IMMUNIZATION: &[&str] = &["completed", "entered-in-error", "not-done"];
const ENCOUNTER: &[&str] = &[
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
];
const REQUEST: &[&str] = &["draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"];

/// Checks a clinical resource at `at` (for example `Bundle.entry[2].resource`); the patient and
/// id are checked by the caller.
///
/// # Errors
/// Every problem found.
#[expect(clippy::too_many_lines, reason = "one arm per resource type, each short")]
pub fn check(r: &Resource, at: &str) -> Result<Checked, Vec<Issue>> {
    let mut issues = Vec::new();
    let i = &mut issues;
    let (category, effective, eie) = match r {
        Resource::Patient(_) => {
            return Err(vec![Issue::error("invalid", at, "A Patient is matched by NHI, never stored as a record.")]);
        }
        Resource::Condition(c) => {
            words_required(i, at, "code", c.code.as_ref());
            date(i, at, "onsetDateTime", c.onset_date_time.as_ref());
            date(i, at, "recordedDate", c.recorded_date.as_ref());
            date(i, at, "abatementDateTime", c.abatement_date_time.as_ref());
            let eie = entered_in_error(c.verification_status.as_ref());
            (RecordCategory::Conditions, c.onset_date_time.clone().or_else(|| c.recorded_date.clone()), eie)
        }
        Resource::AllergyIntolerance(a) => {
            words_required(i, at, "code", a.code.as_ref());
            date(i, at, "onsetDateTime", a.onset_date_time.as_ref());
            date(i, at, "recordedDate", a.recorded_date.as_ref());
            if let Some(c) = &a.criticality
                && !["low", "high", "unable-to-assess"].contains(&c.as_str())
            {
                i.push(Issue::error(
                    "value",
                    format!("{at}.criticality"),
                    format!("criticality {c:?} is not low, high or unable-to-assess."),
                ));
            }
            let eie = entered_in_error(a.verification_status.as_ref());
            (RecordCategory::Allergies, a.recorded_date.clone().or_else(|| a.onset_date_time.clone()), eie)
        }
        Resource::MedicationStatement(m) => {
            status_in(i, at, m.status.as_ref(), MED_STATEMENT);
            words_required(i, at, "medicationCodeableConcept", m.medication_codeable_concept.as_ref());
            date(i, at, "effectiveDateTime", m.effective_date_time.as_ref());
            date(i, at, "dateAsserted", m.date_asserted.as_ref());
            let start = m.effective_period.as_ref().and_then(|p| p.start.clone());
            date(i, at, "effectivePeriod.start", start.as_ref());
            let eie = m.status.as_deref() == Some("entered-in-error");
            (
                RecordCategory::Medications,
                m.effective_date_time.clone().or(start).or_else(|| m.date_asserted.clone()),
                eie,
            )
        }
        Resource::MedicationRequest(m) => {
            status_in(i, at, m.status.as_ref(), MED_REQUEST);
            required(i, at, "intent", m.intent.as_ref());
            words_required(i, at, "medicationCodeableConcept", m.medication_codeable_concept.as_ref());
            date(i, at, "authoredOn", m.authored_on.as_ref());
            let eie = m.status.as_deref() == Some("entered-in-error");
            (RecordCategory::Medications, m.authored_on.clone(), eie)
        }
        Resource::Immunization(m) => {
            status_in(i, at, m.status.as_ref(), IMMUNIZATION);
            words_required(i, at, "vaccineCode", m.vaccine_code.as_ref());
            required(i, at, "occurrenceDateTime", m.occurrence_date_time.as_ref());
            date(i, at, "occurrenceDateTime", m.occurrence_date_time.as_ref());
            let eie = m.status.as_deref() == Some("entered-in-error");
            (RecordCategory::Immunisations, m.occurrence_date_time.clone(), eie)
        }
        Resource::Observation(o) => {
            status_in(i, at, o.status.as_ref(), OBSERVATION);
            words_required(i, at, "code", o.code.as_ref());
            date(i, at, "effectiveDateTime", o.effective_date_time.as_ref());
            date(i, at, "issued", o.issued.as_ref());
            if let Some(q) = &o.value_quantity
                && q.value.is_none_or(|v| !v.is_finite())
            {
                i.push(Issue::error("required", format!("{at}.valueQuantity.value"), "valueQuantity needs a number."));
            }
            let eie = o.status.as_deref() == Some("entered-in-error");
            (RecordCategory::Results, o.effective_date_time.clone().or_else(|| o.issued.clone()), eie)
        }
        Resource::DiagnosticReport(d) => {
            status_in(i, at, d.status.as_ref(), REPORT);
            words_required(i, at, "code", d.code.as_ref());
            date(i, at, "effectiveDateTime", d.effective_date_time.as_ref());
            date(i, at, "issued", d.issued.as_ref());
            let eie = d.status.as_deref() == Some("entered-in-error");
            (RecordCategory::Results, d.effective_date_time.clone().or_else(|| d.issued.clone()), eie)
        }
        Resource::Encounter(e) => {
            status_in(i, at, e.status.as_ref(), ENCOUNTER);
            required(i, at, "class", e.class.as_ref());
            let start = e.period.as_ref().and_then(|p| p.start.clone());
            date(i, at, "period.start", start.as_ref());
            for (n, x) in e.extension.iter().enumerate() {
                if x.url.is_none() {
                    i.push(Issue::error("required", format!("{at}.extension[{n}].url"), "An extension needs its url."));
                }
            }
            let eie = e.status.as_deref() == Some("entered-in-error");
            (RecordCategory::Notes, start, eie)
        }
        Resource::ServiceRequest(s) => {
            status_in(i, at, s.status.as_ref(), REQUEST);
            required(i, at, "intent", s.intent.as_ref());
            words_required(i, at, "code", s.code.as_ref());
            date(i, at, "occurrenceDateTime", s.occurrence_date_time.as_ref());
            let eie = s.status.as_deref() == Some("entered-in-error");
            (RecordCategory::Recalls, s.occurrence_date_time.clone().or_else(|| s.authored_on.clone()), eie)
        }
    };
    let _ = EVENT;
    if issues.is_empty() { Ok(Checked { category, effective, entered_in_error: eie }) } else { Err(issues) }
}

/// Whether an id is a FHIR id (1–64 of `A–Z a–z 0–9 - .`).
#[must_use]
pub fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]
    use super::*;

    #[test]
    fn fhir_dates_are_told_from_other_text() {
        for ok in ["2024", "2024-03", "2024-03-05", "2024-03-05T10:20:00+13:00", "2024-03-05T10:20:00Z"] {
            assert!(is_fhir_date(ok), "{ok}");
        }
        for bad in ["", "5/3/2024", "2024-13-01", "2024-03-32", "2024-03-05T10:20", "yesterday", "20240305"] {
            assert!(!is_fhir_date(bad), "{bad}");
        }
    }

    #[test]
    fn missing_words_and_bad_statuses_are_each_reported_at_their_place() {
        let r: Resource = serde_json::from_str(
            r#"{"resourceType":"Observation","status":"done","code":{"coding":[{"code":"4548-4"}]},"effectiveDateTime":"May"}"#,
        )
        .expect("a resource");
        let issues = check(&r, "Bundle.entry[0].resource").err().unwrap_or_default();
        let at: Vec<&str> = issues.iter().flat_map(|i| i.expression.iter().map(String::as_str)).collect();
        assert_eq!(
            at,
            [
                "Bundle.entry[0].resource.status",
                "Bundle.entry[0].resource.code",
                "Bundle.entry[0].resource.effectiveDateTime"
            ]
        );
    }
}

//! How an item of a health record reads on a page: plain words for everything a patient reads
//! (never codes), New Zealand dates, a result's flag ("higher than the usual range"), and the
//! trend chart, an SVG drawn here from numbers and escaped text (no script, no style).

use crate::present::{calendar_date, date_of};
use crate::views::RecordLine;
use app::records::fhir::{CONSULTATION_NOTE, CodeableConcept, Observation, Quantity, Resource};
use app::records::{RecordItem, TrendPoint};

/// A clinical date as New Zealanders write it: "5 March 2024", "March 2024", "2024".
pub(crate) fn clinical_date(s: &str) -> String {
    if s.len() > 10 {
        if let Ok(t) = s.parse::<jiff::Timestamp>() {
            return date_of(t.as_second());
        }
        return calendar_date(&s[..10.min(s.len())]);
    }
    if s.len() == 7
        && let Ok(d) = format!("{s}-01").parse::<jiff::civil::Date>()
    {
        return d.strftime("%B %Y").to_string();
    }
    calendar_date(s)
}

fn words(c: Option<&CodeableConcept>) -> String {
    c.and_then(CodeableConcept::words).unwrap_or("Unnamed item").to_owned()
}

/// A number as people write it: no trailing zeros, at most three decimals.
pub(super) fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_owned() }
}

fn quantity(q: &Quantity) -> String {
    let v = q.value.map(number).unwrap_or_default();
    let c = q.comparator.clone().unwrap_or_default();
    match q.unit.as_deref().or(q.code.as_deref()) {
        Some(u) => format!("{c}{v} {u}"),
        None => format!("{c}{v}"),
    }
}

/// The usual range of a result, in words.
fn usual_range(o: &Observation) -> Option<String> {
    let r = o.reference_range.first()?;
    let (low, high) = (r.low.as_ref().and_then(|q| q.value), r.high.as_ref().and_then(|q| q.value));
    let unit = r
        .low
        .as_ref()
        .or(r.high.as_ref())
        .and_then(|q| q.unit.clone())
        .or_else(|| o.value_quantity.as_ref().and_then(|q| q.unit.clone()))
        .unwrap_or_default();
    let unit = if unit.is_empty() { String::new() } else { format!(" {unit}") };
    match (low, high) {
        (Some(l), Some(h)) => Some(format!("{} to {}{unit}", number(l), number(h))),
        (Some(l), None) => Some(format!("{} or more{unit}", number(l))),
        (None, Some(h)) => Some(format!("up to {}{unit}", number(h))),
        (None, None) => r.text.clone(),
    }
}

/// "Higher than the usual range" and the like: from the value and the range, else from the
/// lab's interpretation.
pub(crate) fn flag(o: &Observation) -> Option<(&'static str, &'static str)> {
    const HIGH: (&str, &str) = ("Higher than the usual range", "flag-high");
    const LOW: (&str, &str) = ("Lower than the usual range", "flag-low");
    const IN: (&str, &str) = ("Within the usual range", "flag-normal");
    if let (Some(v), Some(r)) = (o.value_quantity.as_ref().and_then(|q| q.value), o.reference_range.first()) {
        let (low, high) = (r.low.as_ref().and_then(|q| q.value), r.high.as_ref().and_then(|q| q.value));
        if low.is_some() || high.is_some() {
            return Some(if high.is_some_and(|h| v > h) {
                HIGH
            } else if low.is_some_and(|l| v < l) {
                LOW
            } else {
                IN
            });
        }
    }
    let codes: Vec<&str> =
        o.interpretation.iter().flat_map(|c| c.coding.iter().filter_map(|x| x.code.as_deref())).collect();
    if codes.iter().any(|c| matches!(*c, "H" | "HH" | "HU")) {
        Some(HIGH)
    } else if codes.iter().any(|c| matches!(*c, "L" | "LL" | "LU")) {
        Some(LOW)
    } else if codes.iter().any(|c| matches!(*c, "A" | "AA")) {
        Some(("Outside the usual range", "flag-high"))
    } else if codes.contains(&"N") {
        Some(IN)
    } else {
        None
    }
}

fn status_words(s: Option<&str>) -> Option<String> {
    Some(
        match s? {
            "active" => "Current",
            "completed" | "finished" => "Completed",
            "stopped" => "Stopped",
            "on-hold" => "On hold",
            "intended" => "Planned",
            "not-taken" => "Not taken",
            "not-done" => "Not given",
            "final" => "Final",
            "preliminary" => "Preliminary",
            "amended" | "corrected" => "Corrected",
            "cancelled" | "revoked" => "Cancelled",
            "entered-in-error" => "Entered in error",
            other => return Some(other.replace('-', " ")),
        }
        .to_owned(),
    )
}

/// Whether a medication may be asked for again (the prescriptions module uses this mark).
pub(crate) fn repeats_allowed(r: &Resource) -> bool {
    match r {
        Resource::MedicationRequest(m) => {
            m.dispense_request.as_ref().and_then(|d| d.number_of_repeats_allowed).is_some_and(|n| n > 0)
                || m.course_of_therapy_type.as_ref().is_some_and(|c| c.has_code("continuous"))
        }
        _ => false,
    }
}

/// Whether an item is current (active conditions, medications being taken, recalls still due).
pub(super) fn current(r: &Resource) -> bool {
    match r {
        Resource::Condition(c) => c
            .clinical_status
            .as_ref()
            .is_none_or(|s| s.has_code("active") || s.has_code("recurrence") || s.has_code("relapse")),
        Resource::AllergyIntolerance(a) => a.clinical_status.as_ref().is_none_or(|s| s.has_code("active")),
        Resource::MedicationStatement(m) => matches!(m.status.as_deref(), Some("active" | "intended" | "on-hold")),
        Resource::MedicationRequest(m) => matches!(m.status.as_deref(), Some("active" | "on-hold")),
        Resource::ServiceRequest(s) => matches!(s.status.as_deref(), Some("active" | "on-hold" | "draft")),
        _ => true,
    }
}

fn notes(details: &mut Vec<(String, String)>, notes: &[app::records::fhir::Annotation]) {
    for n in notes.iter().filter_map(|n| n.text.clone()) {
        details.push(("Note".into(), n));
    }
}

/// One item as a line of a list.
#[expect(clippy::too_many_lines, reason = "one arm per kind of item, each short")]
pub(crate) fn line(i: &RecordItem, today: &str) -> RecordLine {
    let mut details: Vec<(String, String)> = Vec::new();
    let mut flag_of = None;
    let title = match &i.resource {
        Resource::Patient(_) => "Patient".to_owned(),
        Resource::Condition(c) => {
            if let Some(s) = c.clinical_status.as_ref().and_then(CodeableConcept::words) {
                details.push(("Status".into(), s.to_owned()));
            }
            if let Some(d) = &c.onset_date_time {
                details.push(("Since".into(), clinical_date(d)));
            }
            if let Some(d) = &c.abatement_date_time {
                details.push(("Resolved".into(), clinical_date(d)));
            }
            notes(&mut details, &c.note);
            words(c.code.as_ref())
        }
        Resource::AllergyIntolerance(a) => {
            let reactions: Vec<String> = a
                .reaction
                .iter()
                .flat_map(|r| r.manifestation.iter().filter_map(|m| m.words().map(str::to_owned)))
                .collect();
            if !reactions.is_empty() {
                details.push(("Reaction".into(), reactions.join(", ")));
            }
            if a.criticality.as_deref() == Some("high") {
                details.push(("Risk".into(), "High: a reaction could be serious".into()));
            }
            notes(&mut details, &a.note);
            words(a.code.as_ref())
        }
        Resource::MedicationStatement(m) => {
            if let Some(d) = m.dosage.iter().find_map(|d| d.text.clone().or_else(|| d.patient_instruction.clone())) {
                details.push(("How to take it".into(), d));
            }
            if let Some(s) = status_words(m.status.as_deref()) {
                details.push(("Status".into(), s));
            }
            notes(&mut details, &m.note);
            words(m.medication_codeable_concept.as_ref())
        }
        Resource::MedicationRequest(m) => {
            if let Some(d) =
                m.dosage_instruction.iter().find_map(|d| d.text.clone().or_else(|| d.patient_instruction.clone()))
            {
                details.push(("How to take it".into(), d));
            }
            if let Some(s) = status_words(m.status.as_deref()) {
                details.push(("Status".into(), s));
            }
            if let Some(n) = m.dispense_request.as_ref().and_then(|d| d.number_of_repeats_allowed).filter(|n| *n > 0) {
                details.push(("Repeats".into(), format!("{n} repeats on the prescription")));
            }
            notes(&mut details, &m.note);
            words(m.medication_codeable_concept.as_ref())
        }
        Resource::Immunization(m) => {
            if let Some(n) = m.protocol_applied.first().and_then(|p| p.dose_number_positive_int) {
                details.push(("Dose".into(), format!("Dose {n}")));
            }
            if m.status.as_deref() == Some("not-done") {
                details.push(("Status".into(), "Not given".into()));
            }
            notes(&mut details, &m.note);
            words(m.vaccine_code.as_ref())
        }
        Resource::Observation(o) => {
            let value = o
                .value_quantity
                .as_ref()
                .map(quantity)
                .or_else(|| o.value_string.clone())
                .or_else(|| o.value_codeable_concept.as_ref().and_then(CodeableConcept::words).map(str::to_owned));
            if let Some(v) = value {
                details.push(("Result".into(), v));
            }
            if let Some(r) = usual_range(o) {
                details.push(("Usual range".into(), r));
            }
            flag_of = flag(o);
            notes(&mut details, &o.note);
            words(o.code.as_ref())
        }
        Resource::DiagnosticReport(d) => {
            if let Some(c) = &d.conclusion {
                details.push(("The lab's conclusion".into(), c.clone()));
            }
            words(d.code.as_ref())
        }
        Resource::Encounter(e) => {
            let reasons: Vec<&str> = e.reason_code.iter().filter_map(CodeableConcept::words).collect();
            if !reasons.is_empty() {
                details.push(("Reason".into(), reasons.join(", ")));
            }
            for x in e.extension.iter().filter(|x| x.url.as_deref() == Some(CONSULTATION_NOTE)) {
                if let Some(t) = &x.value_string {
                    details.push(("Note".into(), t.clone()));
                }
            }
            e.r#type.first().and_then(CodeableConcept::words).unwrap_or("Consultation").to_owned()
        }
        Resource::ServiceRequest(s) => {
            if let Some(d) = &s.occurrence_date_time {
                let due = clinical_date(d);
                let overdue = d.get(..10).is_some_and(|day| day < today) && current(&i.resource);
                details.push(("Due".into(), if overdue { format!("{due} (overdue)") } else { due }));
            }
            let reasons: Vec<&str> = s.reason_code.iter().filter_map(CodeableConcept::words).collect();
            if !reasons.is_empty() {
                details.push(("Why".into(), reasons.join(", ")));
            }
            notes(&mut details, &s.note);
            words(s.code.as_ref())
        }
    };
    RecordLine {
        id: i.id.to_string(),
        title,
        date: i.effective.as_deref().map(clinical_date),
        details,
        flag: flag_of.map(|(w, _)| w.to_owned()),
        flag_class: flag_of.map_or("", |(_, c)| c).to_owned(),
        link: matches!(i.resource, Resource::Observation(_) | Resource::DiagnosticReport(_)),
        held: i.held,
        releases_on: i.auto_release_at.filter(|_| i.held).map(date_of),
        hidden: i.hidden,
        hidden_reason: i.hidden_reason.clone(),
        removed: i.removed,
        note: i.release_note.clone(),
        repeats: repeats_allowed(&i.resource),
    }
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A result's trend as an SVG line chart: points over time, the usual range as a band, every
/// value labelled by the data table beside it (the chart itself is an image with a title and a
/// description). Drawn in a 320 × 200 box that scales with the page.
#[expect(clippy::cast_precision_loss, reason = "chart coordinates")]
pub(crate) fn trend_svg(points: &[TrendPoint], low: Option<f64>, high: Option<f64>, title: &str, unit: &str) -> String {
    use std::fmt::Write;
    const WIDTH: f64 = 320.0;
    const HEIGHT: f64 = 200.0;
    const LEFT: f64 = 44.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 14.0;
    const BOTTOM: f64 = 34.0;
    let values: Vec<f64> = points.iter().map(|p| p.value).chain(low).chain(high).collect();
    let (mut min, mut max) = values.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    if (max - min).abs() < f64::EPSILON {
        min -= 1.0;
        max += 1.0;
    }
    let pad = (max - min) * 0.1;
    let (min, max) = (min - pad, max + pad);
    let count = points.len().max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let at_x = |i: usize| {
        if count == 1 { LEFT + plot_w / 2.0 } else { LEFT + plot_w * i as f64 / (count - 1) as f64 }
    };
    let at_y = |v: f64| TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - (v - min) / (max - min));
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"trend\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"100%\" role=\"img\" aria-labelledby=\"trend-title trend-desc\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"trend-title\">{t} over time</title><desc id=\"trend-desc\">{count} results from {first} to {last}; the table below lists each value.</desc>",
        t = esc(title),
        count = points.len(),
        first = esc(&points.first().map(|p| clinical_date(&p.date)).unwrap_or_default()),
        last = esc(&points.last().map(|p| clinical_date(&p.date)).unwrap_or_default()),
    );
    if let (Some(lo), Some(hi)) = (low, high) {
        let _ = write!(
            svg,
            "<rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{plot_w:.1}\" height=\"{:.1}\" fill=\"#e3f1e6\"/>",
            at_y(hi),
            (at_y(lo) - at_y(hi)).max(0.0)
        );
    }
    for v in [min + pad, f64::midpoint(min, max), max - pad] {
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#c9ccd1\" stroke-width=\"0.5\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#33373d\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 4.0,
            at_y(v) + 3.0,
            esc(&number((v * 100.0).round() / 100.0)),
            yy = at_y(v)
        );
    }
    let path: Vec<String> =
        points.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", at_x(i), at_y(p.value))).collect();
    if points.len() > 1 {
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#1d4f91\" stroke-width=\"2\"/>",
            path.join(" ")
        );
    }
    for (i, p) in points.iter().enumerate() {
        let out = high.is_some_and(|hv| p.value > hv) || low.is_some_and(|lv| p.value < lv);
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"{}\" fill=\"{}\"/>",
            at_x(i),
            at_y(p.value),
            if out { 4 } else { 3 },
            if out { "#b3261e" } else { "#1d4f91" }
        );
    }
    let year = |i: usize| points.get(i).map(|p| p.date.get(..4).unwrap_or("").to_owned()).unwrap_or_default();
    let _ = write!(
        svg,
        "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"10\" fill=\"#33373d\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#33373d\">{}</text>\
         <text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"10\" fill=\"#33373d\">{}</text></svg>",
        HEIGHT - BOTTOM + 14.0,
        esc(&year(0)),
        WIDTH - RIGHT,
        HEIGHT - BOTTOM + 14.0,
        esc(&year(points.len().saturating_sub(1))),
        HEIGHT - 4.0,
        esc(unit),
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::domain::RecordId;

    #[test]
    fn the_chart_escapes_what_a_practice_system_wrote() {
        let points = vec![
            TrendPoint { id: RecordId::random(), date: "2024-01-01".into(), value: 50.0 },
            TrendPoint { id: RecordId::random(), date: "2025-01-01".into(), value: 45.0 },
        ];
        let svg = trend_svg(&points, Some(20.0), Some(40.0), "<script>alert(1)</script>", "\"/><script>");
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;") && svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("fill=\"#b3261e\""), "points above the range are marked");
    }

    #[test]
    fn flags_are_words_from_the_range_or_the_interpretation() {
        let mut o: Observation = serde_json::from_str(
            r#"{"valueQuantity":{"value":48},"referenceRange":[{"low":{"value":20},"high":{"value":40}}]}"#,
        )
        .unwrap_or_default();
        assert_eq!(flag(&o).map(|f| f.0), Some("Higher than the usual range"));
        o.value_quantity = Some(Quantity { value: Some(10.0), ..Quantity::default() });
        assert_eq!(flag(&o).map(|f| f.0), Some("Lower than the usual range"));
        o.reference_range.clear();
        o.interpretation = vec![serde_json::from_str(r#"{"coding":[{"code":"N"}]}"#).unwrap_or_default()];
        assert_eq!(flag(&o).map(|f| f.0), Some("Within the usual range"));
        assert_eq!(clinical_date("2024-03-05"), "5 March 2024");
        assert_eq!(clinical_date("2024-03"), "March 2024");
        assert_eq!(clinical_date("2024-03-05T23:30:00Z"), "6 March 2024");
    }
}

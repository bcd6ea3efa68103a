//! An incident's scope, computed from the access log: every event below a signed checkpoint that
//! an indicator matches, classified. A document, record item, record or conversation served to
//! an indicator makes its patient **confirmed**; anything else an indicator reached about a
//! patient (a list naming their documents, their details, a key unlocked) makes them
//! **possible**; everyone else is not affected. Each object carries its category, date and
//! controlling organisation, and each patient the first event (and indicator) that put them
//! where they are.

use crate::AppError;
use domain::incidents::{Class, Indicators, Seen};
use std::collections::hash_map::Entry;

/// Maps keyed by ids from the log (not chosen by whoever reads them), hashed with a fast hash:
/// a scope looks up each of hundreds of thousands of events' patients and objects.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::fmt::Write as _;
use store::incidents::{DocumentFacts, Reached, ScopeObject, ScopePatient};

/// A computed scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Patients confirmed or possibly affected, by id.
    pub patients: Vec<ScopePatient>,
    /// What of theirs was reached.
    pub objects: Vec<ScopeObject>,
    /// Matching events.
    pub events: usize,
}

impl Scope {
    /// Patients in a class.
    #[must_use]
    pub fn count(&self, class: Class) -> usize {
        self.patients.iter().filter(|p| p.class == class.as_str()).count()
    }

    /// SHA-256 of the scope's canonical listing (patients, then objects, sorted), hex: what a
    /// recomputation must give again.
    #[must_use]
    pub fn digest(&self) -> String {
        let mut text = String::new();
        for p in &self.patients {
            let _ = writeln!(text, "p {} {}", p.patient_id, p.class);
        }
        for o in &self.objects {
            let _ = writeln!(text, "o {} {} {} {} {}", o.patient_id, o.kind, o.object_id, o.class, o.controller_id);
        }
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref())
    }
}

/// What one matching event reached: (kind, object id, class). A listing reaches each object it
/// named; an empty listing, or anything else about a patient, reaches the patient. (The event's
/// object id is moved, not copied: a scope reads hundreds of thousands of events.)
fn reached(action: &str, object_type: &str, object_id: String, patient: &str) -> Vec<(&'static str, String, Class)> {
    let served = matches!(action, "read" | "export");
    let one = |kind: &'static str, id: String, class: Class| vec![(kind, id, class)];
    match object_type {
        "document" if served => one("document", object_id, Class::Confirmed),
        "health_record" | "hidden_health_record" if served => one("health_record", object_id, Class::Confirmed),
        "patient_record" if served => one("patient_record", patient.to_owned(), Class::Confirmed),
        "message_thread" if served => one("message_thread", object_id, Class::Confirmed),
        // Medications (the repeat list, a request for repeats) are health information too.
        "repeat_list" if served => one("repeat_list", object_id, Class::Confirmed),
        "repeat_request" if served => one("repeat_request", object_id, Class::Confirmed),
        "document" if action == "list" && object_id != patient => object_id
            .split(',')
            .filter(|id| !id.is_empty())
            .map(|id| ("document", id.to_owned(), Class::Possible))
            .collect(),
        _ => one("patient", patient.to_owned(), Class::Possible),
    }
}

/// How an object was first reached in its class.
#[derive(Debug)]
struct ObjectSeen {
    class: Class,
    seq: i64,
    /// The event's practice.
    practice: Option<String>,
    /// The document's facts, when the event named it.
    document: Option<DocumentFacts>,
}

/// What the events found of one patient.
#[derive(Debug, Default)]
struct PatientSeen {
    /// Their class, the first event giving it, and why.
    first: Option<(Class, i64, String)>,
    /// What of theirs was reached: (kind, object) → how.
    objects: HashMap<(&'static str, String), ObjectSeen>,
}

/// The events that found each patient and object, before their facts are looked up.
#[derive(Debug, Default)]
struct Found {
    patients: HashMap<String, PatientSeen>,
    events: usize,
}

fn classify(indicators: &Indicators, events: Vec<Reached>) -> Found {
    let mut found = Found::default();
    for e in events {
        // The store gives only events served about a patient; the address and agent are known
        // for those read from the log whole (found by id, they are not needed to match).
        let seen = Seen {
            account: e.account.as_deref(),
            session: e.session.as_deref(),
            ip: e.ip.as_deref().unwrap_or_default(),
            user_agent: e.user_agent.as_deref().unwrap_or_default(),
            at_ms: e.at_ms,
            module: &e.module,
        };
        let Some(indicator) = indicators.which(seen) else { continue };
        let Reached { seq, action, object_type, object_id, patient, mut practice, mut document, .. } = e;
        let reached = reached(&action, &object_type, object_id, &patient);
        if reached.is_empty() {
            continue;
        }
        found.events += 1;
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let why = || format!("event {seq} ({action} {object_type} by {indicator})");
        let p = found.patients.entry(patient).or_default();
        let last = reached.len() - 1;
        for (i, (kind, id, class)) in reached.into_iter().enumerate() {
            let document = if kind == "document" && class == Class::Confirmed { document.take() } else { None };
            let practice = if i == last { practice.take() } else { practice.clone() };
            let seen = ObjectSeen { class, seq, practice, document };
            match p.objects.entry((kind, id)) {
                Entry::Vacant(v) => {
                    v.insert(seen);
                }
                Entry::Occupied(mut o) if class.rank() > o.get().class.rank() => {
                    o.insert(seen);
                }
                Entry::Occupied(mut o) => {
                    if o.get().document.is_none() {
                        o.get_mut().document = seen.document;
                    }
                }
            }
            if p.first.as_ref().is_none_or(|(c, _, _)| class.rank() > c.rank()) {
                p.first = Some((class, seq, why()));
            }
        }
    }
    found
}

/// Computes a scope over the log's events below `below`.
///
/// # Errors
/// When storage fails.
pub(crate) async fn compute(
    store: &dyn store::Store,
    grant: &authz::Grant<authz::LeadIncidents>,
    indicators: &Indicators,
    below: u64,
) -> Result<Scope, AppError> {
    let ids: Vec<String> = indicators.accounts.iter().chain(&indicators.clients).cloned().collect();
    let windows: Vec<(i64, i64)> = indicators.windows.iter().map(|w| (w.from_ms, w.to_ms)).collect();
    // Addresses and agents are not indexed: their windows are read whole.
    let by_time = !(indicators.ips.is_empty() && indicators.user_agents.is_empty());
    let events = store.indicator_events(grant, below, &ids, &indicators.sessions, &windows, by_time).await?;
    let found = classify(indicators, events);
    facts(store, found).await
}

/// Looks up what each object is and who controls it: the documents the events named came with
/// their facts; the rest (documents a listing named, record items) are looked up here.
async fn facts(store: &dyn store::Store, found: Found) -> Result<Scope, AppError> {
    let objects = || found.patients.iter().flat_map(|(p, seen)| seen.objects.iter().map(move |(k, o)| (p, k, o)));
    let ids_of = |kind: &str| -> Vec<String> {
        objects()
            .filter(|(_, (k, _), seen)| *k == kind && seen.document.is_none())
            .map(|(_, (_, id), _)| id.clone())
            .collect()
    };
    let documents: HashMap<String, store::incidents::ObjectFacts> =
        store.document_facts(&ids_of("document")).await?.into_iter().map(|f| (f.id.clone(), f)).collect();
    let records: HashMap<String, store::incidents::ObjectFacts> =
        store.record_facts(&ids_of("health_record")).await?.into_iter().map(|f| (f.id.clone(), f)).collect();
    let looked_up = |patient: &str, kind: &str, id: &str| {
        match kind {
            "document" => documents.get(id),
            "health_record" => records.get(id),
            _ => None,
        }
        .filter(|f| f.patient_id == patient)
    };
    // A record as a whole, a conversation or the patient's details: the practice the event was
    // in, or else the patient's practice.
    let unknown: Vec<(&String, &ObjectSeen)> = objects()
        .filter(|(p, (k, id), seen)| seen.document.is_none() && looked_up(p, k, id).is_none())
        .map(|(p, _, seen)| (p, seen))
        .collect();
    let wholes: Vec<String> =
        unknown.iter().filter(|(_, seen)| seen.practice.is_none()).map(|(p, _)| (*p).clone()).collect();
    let practice_of: HashMap<String, String> = store.first_practices(&wholes).await?.into_iter().collect();
    let mut practices: Vec<String> = unknown.iter().filter_map(|(_, seen)| seen.practice.clone()).collect();
    practices.extend(practice_of.values().cloned());
    practices.sort();
    practices.dedup();
    let names: HashMap<String, String> = store.practice_names(&practices).await?.into_iter().collect();
    // In one order, whatever order the events came in (the digest is of this listing): by
    // patient, and each patient's objects by kind and id.
    let mut by_patient: Vec<(String, PatientSeen)> = found.patients.into_iter().collect();
    by_patient.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut objects = Vec::with_capacity(by_patient.iter().map(|(_, p)| p.objects.len()).sum());
    let mut patients = Vec::with_capacity(by_patient.len());
    for (patient, seen) in by_patient {
        let mut theirs: Vec<((&'static str, String), ObjectSeen)> = seen.objects.into_iter().collect();
        theirs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for ((kind, id), seen) in theirs {
            // An object of another patient than the event said, or one the database never held
            // (a canary's id), is kept as what the event said.
            let (category, dated, controller_id, controller_name) = if let Some(f) = seen.document {
                (f.category, f.dated, f.controller_id, f.controller_name)
            } else if let Some(f) = looked_up(&patient, kind, &id) {
                (f.category.clone(), f.dated.clone(), f.controller_id.clone(), f.controller_name.clone())
            } else {
                let controller = seen.practice.or_else(|| practice_of.get(&patient).cloned()).unwrap_or_default();
                let name = names.get(&controller).cloned().unwrap_or_else(|| "Unknown organisation".into());
                let category = match kind {
                    "patient_record" => "health record",
                    "message_thread" => "messages",
                    "repeat_list" | "repeat_request" => "medications",
                    "patient" => "details",
                    _ => "unknown",
                };
                (category.to_owned(), None, controller, name)
            };
            objects.push(ScopeObject {
                patient_id: patient.clone(),
                kind: kind.to_owned(),
                object_id: id,
                class: seen.class.as_str().to_owned(),
                category,
                dated,
                controller_id,
                controller_name,
                first_seq: seen.seq,
            });
        }
        if let Some((class, _, why)) = seen.first {
            patients.push(ScopePatient { patient_id: patient, class: class.as_str().to_owned(), why });
        }
    }
    Ok(Scope { patients, objects, events: found.events })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(seq: u64, session: &str, action: &str, kind: &str, object: &str, patient: &str) -> Reached {
        Reached {
            seq,
            session: Some(session.into()),
            action: action.into(),
            object_type: kind.into(),
            object_id: object.into(),
            patient: patient.into(),
            ip: Some("203.0.113.9".into()),
            module: "documents".into(),
            ..Reached::default()
        }
    }

    #[test]
    fn served_is_confirmed_listed_is_possible_refused_and_others_are_nothing() {
        let s = "0191c2a4-0000-7000-8000-000000000001";
        let i = Indicators { sessions: vec![s.into()], ..Indicators::default() };
        let events = vec![
            event(1, s, "list", "document", "d1,d2", "p1"),
            event(2, s, "read", "document", "d1", "p1"),
            event(3, s, "list", "document", "d3", "p2"),
            event(4, "someone-else", "read", "document", "d4", "p3"),
            event(6, s, "read", "patient", "p4", "p4"),
            event(7, s, "read", "patient_record", "p5", "p5"),
        ];
        let f = classify(&i, events);
        let class = |p: &str| f.patients.get(p).and_then(|c| c.first.as_ref()).map(|c| c.0);
        assert_eq!(class("p1"), Some(Class::Confirmed));
        assert_eq!(class("p2"), Some(Class::Possible));
        assert_eq!(class("p3"), None, "not the indicator's");
        assert_eq!(class("p4"), Some(Class::Possible), "details seen, no document or record");
        assert_eq!(class("p5"), Some(Class::Confirmed), "the record was served");
        assert!(f.patients["p1"].first.as_ref().unwrap().2.starts_with("event 2 (read document by session"));
        let d1 = &f.patients["p1"].objects[&("document", "d1".to_owned())];
        assert_eq!((d1.class, d1.seq), (Class::Confirmed, 2), "listed then read: confirmed by the read");
        assert_eq!(f.patients["p1"].objects[&("document", "d2".to_owned())].class, Class::Possible);
        assert_eq!(f.events, 5, "the other session's is not counted");
    }
}

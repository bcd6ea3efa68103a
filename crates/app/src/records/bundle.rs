//! Reading an incoming Bundle, entry by entry, before anything is looked up: each entry's
//! request and resource, the Patient entries' NHIs under every name the Bundle uses for them,
//! which patient each item is about, and the same item sent twice. Every problem is an
//! [`Issue`] at its `FHIRPath`; nothing here touches storage.

use super::fhir::{IncomingEntry, Issue, NHI_SYSTEM, Reference, Resource};
use super::ingest::MAX_REPORT_RESULTS;
use super::validate::{check, is_fhir_id};
use std::collections::{HashMap, HashSet};

/// One entry, understood.
#[derive(Debug)]
pub(super) enum Op {
    /// A Patient entry: who the Bundle's references point at.
    Patient,
    /// Store this item.
    Put { resource: Box<Resource>, source_id: String, version: i64, nhi: String },
    /// Remove the item with this source id.
    Delete { resource_type: String, source_id: String },
}

/// The patients' NHIs the Bundle's Patient entries stand for, by every name they can be
/// referred to: `fullUrl` and `Patient/<id>`.
type PatientNames = HashMap<String, String>;

pub(super) fn at(i: usize) -> String {
    format!("Bundle.entry[{i}]")
}

/// The NHI a Patient resource carries, checked (HL7 NZ Base: at most one official NHI).
fn patient_nhi(p: &super::fhir::Patient, at: &str) -> Result<String, Vec<Issue>> {
    let mut issues = Vec::new();
    let nhis: Vec<(usize, &super::fhir::Identifier)> =
        p.identifier.iter().enumerate().filter(|(_, id)| id.system.as_deref() == Some(NHI_SYSTEM)).collect();
    if nhis.iter().filter(|(_, id)| id.r#use.as_deref() == Some("official")).count() > 1 {
        issues.push(Issue::error(
            "invariant",
            format!("{at}.identifier"),
            "A Patient has at most one official NHI (nz-pat-1).",
        ));
    }
    let chosen = nhis.iter().find(|(_, id)| id.r#use.as_deref() == Some("official")).or_else(|| nhis.first());
    let nhi = match chosen {
        None => {
            issues.push(Issue::error(
                "required",
                format!("{at}.identifier"),
                format!("The Patient needs an identifier with system {NHI_SYSTEM}: patients are matched by NHI."),
            ));
            None
        }
        Some((j, id)) => match domain::Nhi::parse(id.value.as_deref().unwrap_or("")) {
            Ok(n) => Some(n.as_str().to_owned()),
            Err(e) => {
                issues.push(Issue::error(
                    "value",
                    format!("{at}.identifier[{j}].value"),
                    format!("Not a valid NHI: {e}"),
                ));
                None
            }
        },
    };
    match nhi {
        Some(n) if issues.is_empty() => Ok(n),
        _ => Err(issues),
    }
}

/// The NHI a reference to the patient stands for: a Patient entry of the Bundle (by `fullUrl`
/// or `Patient/<id>`), or a logical reference by NHI.
fn resolve_patient(r: Option<&Reference>, names: &PatientNames, at: &str) -> Result<String, Issue> {
    let Some(r) = r else { return Err(Issue::error("required", at, "The patient reference is required.")) };
    if let Some(id) = &r.identifier
        && r.reference.is_none()
    {
        if id.system.as_deref() != Some(NHI_SYSTEM) {
            return Err(Issue::error(
                "value",
                format!("{at}.identifier.system"),
                format!("A patient is identified by NHI ({NHI_SYSTEM})."),
            ));
        }
        return domain::Nhi::parse(id.value.as_deref().unwrap_or(""))
            .map(|n| n.as_str().to_owned())
            .map_err(|e| Issue::error("value", format!("{at}.identifier.value"), format!("Not a valid NHI: {e}")));
    }
    let reference = r.reference.as_deref().unwrap_or("");
    names.get(reference).cloned().ok_or_else(|| {
        Issue::error(
            "not-found",
            format!("{at}.reference"),
            format!(
                "{reference:?} refers to no Patient in this Bundle (name the patient by a Patient entry or by NHI)."
            ),
        )
    })
}

fn version_of(r: &mut Resource, at: &str) -> Result<i64, Issue> {
    let (_, meta) = r.id_meta();
    let v = meta.as_ref().and_then(|m| m.version_id.clone());
    match v.as_deref().map(str::parse::<i64>) {
        Some(Ok(n)) if n >= 1 => Ok(n),
        Some(_) => Err(Issue::error(
            "value",
            format!("{at}.meta.versionId"),
            "meta.versionId must be a whole number from 1 up.",
        )),
        None => Err(Issue::error(
            "required",
            format!("{at}.meta.versionId"),
            "meta.versionId is required: versions decide whether an update applies.",
        )),
    }
}

/// A Patient entry: the NHI it stands for, under each name other entries may use for it
/// (`fullUrl`, `Patient/<id>`). One name, one patient: a second Patient entry may not take over
/// the first's name.
fn name_patient(
    p: &super::fhir::Patient,
    full_url: Option<&str>,
    id: Option<&str>,
    names: &mut PatientNames,
    at: &str,
) -> Result<(), Vec<Issue>> {
    let nhi = patient_nhi(p, at)?;
    let own_names = full_url.map(str::to_owned).into_iter().chain(id.map(|id| format!("Patient/{id}")));
    for name in own_names {
        if names.get(&name).is_some_and(|other| *other != nhi) {
            return Err(vec![Issue::error(
                "duplicate",
                at,
                format!("{name:?} already names another patient in this Bundle."),
            )]);
        }
        names.insert(name, nhi.clone());
    }
    Ok(())
}

/// Understands one entry; Patient entries add their names.
fn parse_entry(
    i: usize,
    e: &IncomingEntry,
    names: &mut PatientNames,
    pending_refs: &mut Vec<(usize, String, Option<Reference>)>,
) -> Result<Op, Vec<Issue>> {
    let here = at(i);
    let method = e.request.as_ref().and_then(|r| r.method.as_deref()).unwrap_or("");
    let url = e.request.as_ref().and_then(|r| r.url.as_deref()).unwrap_or("");
    if e.request.is_none() {
        return Err(vec![Issue::error(
            "required",
            format!("{here}.request"),
            "Each entry of a transaction or batch needs a request.",
        )]);
    }
    if method == "DELETE" {
        let Some((t, id)) = url.split_once('/').filter(|(t, id)| !t.is_empty() && is_fhir_id(id)) else {
            return Err(vec![Issue::error("value", format!("{here}.request.url"), "A DELETE names Type/id.")]);
        };
        return Ok(Op::Delete { resource_type: t.to_owned(), source_id: id.to_owned() });
    }
    if method != "PUT" && method != "POST" {
        return Err(vec![Issue::error(
            "not-supported",
            format!("{here}.request.method"),
            format!("{method:?}: use PUT, POST or DELETE."),
        )]);
    }
    let Some(raw) = &e.resource else {
        return Err(vec![Issue::error("required", format!("{here}.resource"), "A PUT or POST needs a resource.")]);
    };
    let ra = format!("{here}.resource");
    let mut resource: Resource = serde_json::from_str(raw.get())
        .map_err(|err| vec![Issue::error("structure", ra.clone(), format!("This resource cannot be read: {err}."))])?;
    let (id, _) = resource.id_meta();
    let id = id.clone();
    if let Resource::Patient(p) = &resource {
        return name_patient(p, e.full_url.as_deref(), id.as_deref(), names, &ra).map(|()| Op::Patient);
    }
    let mut issues = Vec::new();
    let source_id = match (&id, method, url.split_once('/')) {
        (Some(id), _, _) if !is_fhir_id(id) => {
            issues.push(Issue::error(
                "value",
                format!("{ra}.id"),
                "Not a FHIR id (1-64 letters, digits, '-' and '.').",
            ));
            String::new()
        }
        (Some(id), "PUT", Some((t, uid))) if uid != id || t != resource.type_name() => {
            issues.push(Issue::error(
                "value",
                format!("{here}.request.url"),
                format!("A PUT's url must be {}/{id}.", resource.type_name()),
            ));
            String::new()
        }
        (Some(id), _, _) => id.clone(),
        (None, _, _) => {
            issues.push(Issue::error(
                "required",
                format!("{ra}.id"),
                "The sending system's id for this item is required: it is how updates find it.",
            ));
            String::new()
        }
    };
    let version = version_of(&mut resource, &ra).map_err(|e| issues.push(e)).unwrap_or(0);
    if let Err(mut more) = check(&resource, &ra) {
        issues.append(&mut more);
    }
    let subject_at = resource.subject_mut().map(|(n, r)| (format!("{ra}.{n}"), r.clone()));
    if let Some((sa, r)) = subject_at {
        pending_refs.push((i, sa, r));
    }
    if let Resource::DiagnosticReport(d) = &resource {
        if d.result.len() > MAX_REPORT_RESULTS {
            issues.push(Issue::error(
                "too-costly",
                format!("{ra}.result"),
                format!("A report may group at most {MAX_REPORT_RESULTS} results."),
            ));
        }
        for (n, r) in d.result.iter().enumerate().take(MAX_REPORT_RESULTS) {
            if r.reference.is_none() {
                issues.push(Issue::error(
                    "required",
                    format!("{ra}.result[{n}].reference"),
                    "A result is referred to by reference.",
                ));
            }
        }
    }
    if issues.is_empty() {
        Ok(Op::Put { resource: Box::new(resource), source_id, version, nhi: String::new() })
    } else {
        Err(issues)
    }
}

/// The ingest's state, entry by entry.
pub(super) struct Plan {
    pub(super) ops: Vec<Result<Op, Vec<Issue>>>,
    /// `fullUrl` → `Type/source id`, for references between entries.
    pub(super) aliases: HashMap<String, String>,
}

/// Each entry understood on its own, then the references between them: which patient each item
/// is about, and the same source id sent twice.
pub(super) fn plan_of(entries: &[IncomingEntry]) -> Plan {
    let mut names = PatientNames::new();
    let mut refs = Vec::new();
    let mut plan = Plan { ops: Vec::with_capacity(entries.len()), aliases: HashMap::new() };
    let mut full_urls = HashSet::new();
    for (i, e) in entries.iter().enumerate() {
        let mut op = parse_entry(i, e, &mut names, &mut refs);
        if let Some(f) = &e.full_url
            && !full_urls.insert(f.clone())
        {
            let dup = Issue::error(
                "duplicate",
                format!("{}.fullUrl", at(i)),
                format!("fullUrl {f:?} is used by an earlier entry."),
            );
            match &mut op {
                Err(v) => v.push(dup),
                Ok(_) => op = Err(vec![dup]),
            }
        }
        if let (Ok(Op::Put { resource, source_id, .. }), Some(f)) = (&op, &e.full_url) {
            plan.aliases.insert(f.clone(), format!("{}/{source_id}", resource.type_name()));
        }
        plan.ops.push(op);
    }
    // The patient each item is about.
    for (i, sa, r) in refs {
        match resolve_patient(r.as_ref(), &names, &sa) {
            Ok(nhi) => {
                if let Some(Ok(Op::Put { nhi: n, .. })) = plan.ops.get_mut(i) {
                    *n = nhi;
                }
            }
            Err(issue) => push_issue(&mut plan.ops[i], issue),
        }
    }
    // Same source id twice in one Bundle.
    let mut seen = HashMap::new();
    for i in 0..plan.ops.len() {
        let key = match &plan.ops[i] {
            Ok(Op::Put { resource, source_id, .. }) => (resource.type_name().to_owned(), source_id.clone()),
            Ok(Op::Delete { resource_type, source_id }) => (resource_type.clone(), source_id.clone()),
            _ => continue,
        };
        if let Some(first) = seen.insert(key.clone(), i) {
            push_issue(
                &mut plan.ops[i],
                Issue::error(
                    "duplicate",
                    format!("{}.resource.id", at(i)),
                    format!("{}/{} is also entry {first}.", key.0, key.1),
                ),
            );
        }
    }
    plan
}

pub(super) fn push_issue(op: &mut Result<Op, Vec<Issue>>, issue: Issue) {
    match op {
        Err(v) => v.push(issue),
        Ok(_) => *op = Err(vec![issue]),
    }
}

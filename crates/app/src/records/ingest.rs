//! `POST /fhir/R4`: a practice's own system sends `transaction` or `batch` Bundles. Patients
//! are matched by NHI and must be enrolled at the practice; each item is kept by its source id
//! and version (the same version twice changes nothing; an older one never replaces a newer);
//! deletes and `entered-in-error` take an item out of every patient view. A transaction is all
//! or nothing: any problem answers an `OperationOutcome` listing every issue at its `FHIRPath`,
//! and nothing is applied. In a batch each entry stands alone.

use super::bundle::{Op, Plan, at, plan_of, push_issue};
use super::fhir::{IncomingBundle, Issue, OperationOutcome, Resource};
use super::validate::check;
use super::{Records, seal_content};
use crate::audit::{Caller, Outcome, Target};
use crate::{App, AppError};
use authz::{Grant, IngestRecords, SendRecords};
use domain::{PatientId, RecordId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use store::{RecordChange, RecordRow, StoredVersion};

/// Most entries one Bundle may carry.
pub const MAX_ENTRIES: usize = 1000;
/// Most results one report may group.
pub const MAX_REPORT_RESULTS: usize = 200;
/// Largest Bundle accepted, bytes.
pub const MAX_BUNDLE_BYTES: usize = 8 * 1024 * 1024;

/// A refused Bundle: the HTTP status and the `OperationOutcome` naming every problem.
#[derive(Debug)]
pub struct Refused {
    /// 400, 403, 404, 409, 413, 422, or 503 (switched off for now: send it again later).
    pub status: u16,
    /// What is wrong, where.
    pub outcome: OperationOutcome,
}

impl Refused {
    fn one(status: u16, issue: Issue) -> Self {
        Self { status, outcome: OperationOutcome::new(vec![issue]) }
    }
}

/// `Bundle.entry.response`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryResponse {
    /// `201 Created`, `200 OK`, `204 No Content`, or an error status for a batch entry.
    pub status: String,
    /// `Type/source id/_history/version`, for a stored item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// What was wrong with a batch entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OperationOutcome>,
}

/// The answer to an accepted Bundle: `transaction-response` or `batch-response`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleResponse {
    /// Always `Bundle`.
    pub resource_type: &'static str,
    /// `transaction-response` or `batch-response`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// One per entry, in order.
    pub entry: Vec<ResponseEntry>,
}

/// One entry of a [`BundleResponse`].
#[derive(Debug, Clone, Serialize)]
pub struct ResponseEntry {
    /// What happened.
    pub response: EntryResponse,
}

impl Records<'_> {
    /// Takes in a Bundle from a practice's system.
    ///
    /// # Errors
    /// [`Refused`] with every problem for a Bundle that cannot be applied (a transaction with
    /// any problem; anything that is not a transaction or batch); `AppError` inside it only for
    /// storage failures (500).
    pub async fn ingest(&self, caller: &Caller, body: &[u8]) -> Result<BundleResponse, Refused> {
        let app = self.app;
        if body.len() > MAX_BUNDLE_BYTES {
            return Err(Refused::one(
                413,
                Issue::error(
                    "too-costly",
                    "Bundle",
                    format!("A Bundle may be at most {} MiB; split it.", MAX_BUNDLE_BYTES >> 20),
                ),
            ));
        }
        let authz::Principal::Client { practice: Some(practice), .. } = &caller.principal else {
            return Err(Refused::one(
                403,
                Issue::error(
                    "forbidden",
                    "",
                    "Only a practice's own system sends health records; this client is another organisation's.",
                ),
            ));
        };
        let Ok(send) = app.decide::<SendRecords>(caller, *practice).await else {
            return Err(Refused::one(
                403,
                Issue::error(
                    "forbidden",
                    "",
                    "This client has no records scope: ask the platform's operators to allow it to send health records.",
                ),
            ));
        };
        // Switched off (the kill switch): 503, nothing kept; the system sends it again later.
        match app.guard_module(domain::detection::Switchable::Records, None, Some(*practice)).await {
            Ok(()) => {}
            Err(AppError::Unavailable(m)) => return Err(Refused::one(503, Issue::error("transient", "", m))),
            Err(e) => return Err(internal(&e)),
        }
        let bundle: IncomingBundle = serde_json::from_slice(body).map_err(|e| {
            let code = if e.is_syntax() || e.is_eof() { "structure" } else { "invalid" };
            Refused::one(400, Issue::error(code, "Bundle", format!("The body is not a FHIR JSON Bundle: {e}.")))
        })?;
        if bundle.resource_type != "Bundle" {
            return Err(Refused::one(
                400,
                Issue::error("invalid", "resourceType", format!("Expected a Bundle, got {:?}.", bundle.resource_type)),
            ));
        }
        let transaction = match bundle.kind.as_deref() {
            Some("transaction") => true,
            Some("batch") => false,
            other => {
                return Err(Refused::one(
                    422,
                    Issue::error(
                        "value",
                        "Bundle.type",
                        format!("Bundle.type is {other:?}: send a transaction or a batch."),
                    ),
                ));
            }
        };
        if bundle.entry.len() > MAX_ENTRIES {
            return Err(Refused::one(
                413,
                Issue::error(
                    "too-costly",
                    "Bundle.entry",
                    format!("A Bundle may have at most {MAX_ENTRIES} entries; this one has {}.", bundle.entry.len()),
                ),
            ));
        }
        let plan = plan_of(&bundle.entry);
        app.apply_plan(caller, &send, plan, transaction).await
    }
}

/// What stops a bundle part-way: a system the detectors have just suspended (401), or a
/// failure inside (500).
fn halted(e: &AppError) -> Refused {
    match e {
        AppError::Unauthenticated => {
            Refused::one(401, Issue::error("security", "", "This system's access is suspended."))
        }
        e => internal(e),
    }
}

fn internal(e: &AppError) -> Refused {
    tracing::error!(error = %e, "records ingest failed");
    Refused::one(
        500,
        Issue::error("exception", "", "Something went wrong on our side; nothing was applied. Try again."),
    )
}

/// An item ready to store.
struct Ready {
    entry: usize,
    row: RecordRow,
    expected: Option<i64>,
    status: &'static str,
    /// The report's results: source id, and whether it is stored already (else it must be in
    /// the Bundle and accepted).
    members: Vec<(String, bool)>,
}

impl App {
    #[expect(clippy::too_many_lines, reason = "the ingest's second half, in order")]
    async fn apply_plan(
        &self,
        caller: &Caller,
        send: &Grant<SendRecords>,
        mut plan: Plan,
        transaction: bool,
    ) -> Result<BundleResponse, Refused> {
        let practice = send.object();
        // Patients, by NHI: known and enrolled at this practice, or refused the same way.
        let mut grants: BTreeMap<String, Grant<IngestRecords>> = BTreeMap::new();
        let mut refused: HashSet<String> = HashSet::new();
        let nhis: Vec<String> = plan
            .ops
            .iter()
            .filter_map(|o| match o {
                Ok(Op::Put { nhi, .. }) => Some(nhi.clone()),
                _ => None,
            })
            .collect();
        for nhi in nhis {
            if grants.contains_key(&nhi) || refused.contains(&nhi) {
                continue;
            }
            // A refusal is an entry's answer; anything else (storage, or the detectors
            // containing this system) stops the whole bundle.
            let grant = if let Some(p) = self.store.patient_by_nhi(&nhi).await.map_err(|e| internal(&e.into()))? {
                match self.decide::<IngestRecords>(caller, p).await {
                    Ok(g) => Some(g),
                    Err(AppError::NotFound) => None,
                    Err(e) => return Err(halted(&e)),
                }
            } else {
                match self.refuse_unknown::<IngestRecords>(caller, &nhi).await {
                    AppError::NotFound => None,
                    e => return Err(halted(&e)),
                }
            };
            match grant {
                Some(g) => {
                    grants.insert(nhi, g);
                }
                None => {
                    refused.insert(nhi);
                }
            }
        }
        for (i, op) in plan.ops.iter_mut().enumerate() {
            if let Ok(Op::Put { nhi, .. }) = op
                && refused.contains(nhi.as_str())
            {
                let issue = Issue::error(
                    "not-found",
                    format!("{}.resource", at(i)),
                    format!("No patient with NHI {nhi} is enrolled at your practice."),
                );
                push_issue(op, issue);
            }
        }
        // What is stored already under these source ids.
        let keys: Vec<(String, String)> = plan
            .ops
            .iter()
            .filter_map(|o| match o {
                Ok(Op::Put { resource, source_id, .. }) => Some((resource.type_name().to_owned(), source_id.clone())),
                Ok(Op::Delete { resource_type, source_id }) => Some((resource_type.clone(), source_id.clone())),
                _ => None,
            })
            .collect();
        let stored: HashMap<(String, String), StoredVersion> = self
            .store
            .stored_versions(send, &keys)
            .await
            .map_err(|e| internal(&e.into()))?
            .into_iter()
            .map(|s| ((s.resource_type.clone(), s.source_id.clone()), s))
            .collect();
        // Observations a report may refer to: in this Bundle, or stored for the patient.
        let mut observations: HashMap<String, (String, String)> = HashMap::new(); // reference -> (nhi, source id)
        for op in &plan.ops {
            if let Ok(Op::Put { resource, source_id, nhi, .. }) = op
                && let Resource::Observation(_) = **resource
            {
                observations.insert(format!("Observation/{source_id}"), (nhi.clone(), source_id.clone()));
            }
        }
        let now = self.now();
        let mut ready: Vec<Ready> = Vec::new();
        let mut deletes: Vec<(usize, PatientId, String, String)> = Vec::new();
        let mut answers: Vec<Option<EntryResponse>> = vec![None; plan.ops.len()];
        let mut rules_cache = None;
        for (i, op) in plan.ops.iter_mut().enumerate() {
            match op {
                Ok(Op::Patient) => {
                    answers[i] = Some(EntryResponse { status: "200 OK".into(), location: None, outcome: None });
                }
                Ok(Op::Delete { resource_type, source_id }) => {
                    let (resource_type, source_id) = (resource_type.clone(), source_id.clone());
                    let Some(s) = stored.get(&(resource_type.clone(), source_id.clone())) else {
                        // Never sent: deleting it is already done (FHIR deletes are idempotent).
                        answers[i] =
                            Some(EntryResponse { status: "204 No Content".into(), location: None, outcome: None });
                        continue;
                    };
                    let patient = s.patient;
                    if !grants.values().any(|g| g.patient() == Some(patient)) {
                        let decided = match self.decide::<IngestRecords>(caller, patient).await {
                            Err(AppError::NotFound) => None,
                            Err(e) => return Err(halted(&e)),
                            Ok(g) => Some(g),
                        };
                        if let Some(g) = decided {
                            grants.insert(format!("patient:{patient}"), g);
                        } else {
                            push_issue(
                                op,
                                Issue::error(
                                    "not-found",
                                    format!("{}.request.url", at(i)),
                                    "This item's patient is no longer enrolled at your practice: it cannot be changed.",
                                ),
                            );
                            continue;
                        }
                    }
                    deletes.push((i, patient, resource_type, source_id));
                }
                Ok(Op::Put { resource, source_id, version, nhi }) => {
                    let (resource, source_id, version, nhi) =
                        (resource.clone(), source_id.clone(), &(*version), nhi.clone());
                    let version = *version;
                    let version = &version;
                    let Some(grant) = grants.get(nhi.as_str()) else { continue };
                    let patient = grant.patient().unwrap_or_else(PatientId::random);
                    let key = (resource.type_name().to_owned(), source_id.clone());
                    let ra = format!("{}.resource", at(i));
                    let mut members = Vec::new();
                    if let Resource::DiagnosticReport(d) = &*resource {
                        for (n, r) in d.result.iter().enumerate() {
                            let reference = r.reference.clone().unwrap_or_default();
                            let reference = plan.aliases.get(&reference).cloned().unwrap_or(reference);
                            let in_bundle = observations.get(&reference).is_some_and(|(n2, _)| *n2 == nhi);
                            let sid = reference.strip_prefix("Observation/").unwrap_or("").to_owned();
                            let stored_obs = stored
                                .get(&("Observation".to_owned(), sid.clone()))
                                .is_some_and(|s| s.patient == patient);
                            let stored_obs = stored_obs
                                || (!in_bundle
                                    && !sid.is_empty()
                                    && self.observation_exists(send, patient, &sid).await.map_err(|e| internal(&e))?);
                            if in_bundle || stored_obs {
                                members.push((sid, stored_obs));
                            } else {
                                push_issue(
                                    op,
                                    Issue::error(
                                        "not-found",
                                        format!("{ra}.result[{n}].reference"),
                                        format!("{reference:?} is neither in this Bundle nor stored for this patient."),
                                    ),
                                );
                            }
                        }
                        if op.is_err() {
                            continue;
                        }
                    }
                    let (id, expected, status) = match stored.get(&key) {
                        Some(s) if s.patient != patient => {
                            push_issue(
                                op,
                                Issue::error(
                                    "conflict",
                                    format!("{ra}.id"),
                                    format!("{}/{} is another patient's item.", key.0, key.1),
                                ),
                            );
                            continue;
                        }
                        Some(s) if s.version > *version => {
                            push_issue(
                                op,
                                Issue::error(
                                    "conflict",
                                    format!("{ra}.meta.versionId"),
                                    format!(
                                        "Version {version} is older than the stored version {}: an older version never replaces a newer one.",
                                        s.version
                                    ),
                                ),
                            );
                            continue;
                        }
                        Some(s) if s.version == *version => {
                            answers[i] = Some(EntryResponse {
                                status: "200 OK".into(),
                                location: Some(format!("{}/{}/_history/{version}", key.0, key.1)),
                                outcome: None,
                            });
                            continue; // the same version again: nothing to do
                        }
                        Some(s) => (s.id, Some(s.version), "200 OK"),
                        None => (RecordId::random(), None, "201 Created"),
                    };
                    let Ok(checked) = check(&resource, &ra) else { continue };
                    if rules_cache.is_none() {
                        rules_cache = Some(self.store.record_rules(practice).await.map_err(|e| internal(&e.into()))?);
                    }
                    let auto = rules_cache.as_ref().and_then(|r| r.auto_release_days);
                    let held = checked.category == domain::RecordCategory::Results;
                    let row = RecordRow {
                        id,
                        patient,
                        practice,
                        resource_type: key.0.clone(),
                        source_id: key.1.clone(),
                        version: *version,
                        category: checked.category,
                        effective: checked.effective.clone(),
                        removed: checked.entered_in_error,
                        held,
                        auto_release_at: auto.filter(|_| held).map(|d| now + d * 86_400),
                        released_at: None,
                        released_by: None,
                        release_note: None,
                        hidden_at: None,
                        hidden_by: None,
                        hidden_reason: None,
                        group: None,
                        content: serde_json::to_string(&*resource)
                            .map_err(|e| internal(&AppError::Internal(e.to_string())))?,
                        created_at: now,
                        updated_at: now,
                    };
                    answers[i] = Some(EntryResponse {
                        status: status.into(),
                        location: Some(format!("{}/{}/_history/{version}", key.0, key.1)),
                        outcome: None,
                    });
                    ready.push(Ready { entry: i, row, expected, status, members });
                }
                Err(_) => {}
            }
        }
        let errors: Vec<(usize, Vec<Issue>)> =
            plan.ops.iter().enumerate().filter_map(|(i, o)| o.as_ref().err().map(|v| (i, v.clone()))).collect();
        if transaction && !errors.is_empty() {
            let status = if errors
                .iter()
                .flat_map(|(_, v)| v)
                .all(|i| i.code == "not-found" && i.diagnostics.starts_with("No patient"))
            {
                404
            } else if errors.iter().flat_map(|(_, v)| v).any(|i| i.code == "conflict") {
                409
            } else {
                422
            };
            return Err(Refused {
                status,
                outcome: OperationOutcome::new(errors.into_iter().flat_map(|(_, v)| v).collect()),
            });
        }
        // Reports' results: in the Bundle (the row gets its report) or stored (a link). In a
        // batch, a result whose own entry was refused is left out rather than linked.
        let in_bundle: HashSet<(PatientId, String)> = ready
            .iter()
            .filter(|r| r.row.resource_type == "Observation")
            .map(|r| (r.row.patient, r.row.source_id.clone()))
            .collect();
        let report_of: HashMap<(PatientId, String), RecordId> = ready
            .iter()
            .flat_map(|r| {
                r.members
                    .iter()
                    .filter(|(m, stored)| *stored || in_bundle.contains(&(r.row.patient, m.clone())))
                    .map(move |(m, _)| ((r.row.patient, m.clone()), r.row.id))
            })
            .collect();
        let mut links: Vec<(PatientId, String, RecordId)> = Vec::new();
        for r in &mut ready {
            if r.row.resource_type == "Observation"
                && let Some(g) = report_of.get(&(r.row.patient, r.row.source_id.clone()))
            {
                r.row.group = Some(*g);
            }
        }
        for ((p, sid), g) in &report_of {
            if !in_bundle.contains(&(*p, sid.clone())) {
                links.push((*p, sid.clone(), *g));
            }
        }
        // Seal, per patient, under their records key.
        let mut by_patient: BTreeMap<PatientId, Vec<RecordChange>> = BTreeMap::new();
        let mut events = Vec::new();
        let mut keys: HashMap<PatientId, crypto::fields::FieldKey> = HashMap::new();
        for r in &mut ready {
            let Some(grant) = grants.values().find(|g| g.patient() == Some(r.row.patient)) else { continue };
            #[expect(clippy::map_entry, reason = "the entry cannot be held across the await")]
            if !keys.contains_key(&r.row.patient) {
                let key = self.records_key_for_ingest(caller, grant).await.map_err(|e| internal(&e))?;
                keys.insert(r.row.patient, key);
            }
            let Some(key) = keys.get(&r.row.patient) else { continue };
            r.row.content = seal_content(key, &r.row, &r.row.content).map_err(|e| internal(&e))?;
            events.push(self.event(caller, &Target::of(grant).about(&r.row.id), Outcome::Allowed));
            let _ = (r.entry, r.status);
            by_patient
                .entry(r.row.patient)
                .or_default()
                .push(RecordChange::Put { row: Box::new(r.row.clone()), expected: r.expected });
        }
        for (p, sid, g) in links {
            by_patient.entry(p).or_default().push(RecordChange::Link { source_id: sid, group: g });
        }
        for (i, p, t, sid) in &deletes {
            if let Some(s) = stored.get(&(t.clone(), sid.clone()))
                && let Some(g) = grants.values().find(|g| g.patient() == Some(*p))
            {
                {
                    events.push(self.event(
                        caller,
                        &Target {
                            access: domain::Access::new(
                                domain::Module::Records,
                                domain::ObjectKind::HealthRecord,
                                domain::Verb::Delete,
                            ),
                            ..Target::of(g).about(&s.id)
                        },
                        Outcome::Allowed,
                    ));
                    by_patient
                        .entry(*p)
                        .or_default()
                        .push(RecordChange::Remove { resource_type: t.clone(), source_id: sid.clone() });
                }
            }
            answers[*i] = Some(EntryResponse { status: "204 No Content".into(), location: None, outcome: None });
        }
        let batches: Vec<(&Grant<IngestRecords>, Vec<RecordChange>)> = by_patient
            .into_iter()
            .filter_map(|(p, changes)| grants.values().find(|g| g.patient() == Some(p)).map(|g| (g, changes)))
            .collect();
        match self.store.apply_records(&batches, now).await {
            Ok(()) => {}
            Err(store::StoreError::Conflict(what)) => {
                return Err(Refused::one(
                    409,
                    Issue::error("conflict", "Bundle", format!("{what}: nothing was applied; send the Bundle again.")),
                ));
            }
            Err(e) => return Err(internal(&e.into())),
        }
        // On the record once it is done (a refused transaction wrote nothing, so says nothing).
        if !events.is_empty() {
            self.audit(events).await.map_err(|e| internal(&e))?;
        }
        let entry = answers
            .into_iter()
            .zip(plan.ops.iter())
            .map(|(a, op)| ResponseEntry {
                response: match (a, op) {
                    (Some(a), _) => a,
                    (None, Err(issues)) => {
                        let status = if issues.iter().any(|i| i.code == "not-found") {
                            "404 Not Found"
                        } else {
                            "422 Unprocessable Entity"
                        };
                        EntryResponse {
                            status: status.into(),
                            location: None,
                            outcome: Some(OperationOutcome::new(issues.clone())),
                        }
                    }
                    (None, Ok(_)) => EntryResponse { status: "200 OK".into(), location: None, outcome: None },
                },
            })
            .collect();
        Ok(BundleResponse {
            resource_type: "Bundle",
            kind: if transaction { "transaction-response" } else { "batch-response" },
            entry,
        })
    }

    async fn observation_exists(
        &self,
        send: &Grant<SendRecords>,
        patient: PatientId,
        source_id: &str,
    ) -> Result<bool, AppError> {
        let keys = [("Observation".to_owned(), source_id.to_owned())];
        Ok(self.store.stored_versions(send, &keys).await?.iter().any(|s| s.patient == patient))
    }
}

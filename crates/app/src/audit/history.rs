//! "Who has looked at my records": a patient's access history (and a privacy officer's view of
//! it), and the FHIR `AuditEvent` export (IHE BALP style) for a patient or, for operators, a
//! time range.

use super::AccessLog;
use crate::audit::{Caller, Outcome, Target};
use crate::{AppError, FieldError};
use authz::{ExportAccessHistory, ExportAudit, Platform, Principal, ViewAccessHistory};
use domain::{AccountId, ClientId, Module, ObjectKind, PatientId, PracticeId, StaffRole, Verb};
use serde_json::{Value, json};
use std::collections::HashMap;
use store::{AuditEvent, HistoryFilter};

/// The groups a patient can filter their history by: (key, label, the modules in it).
pub const MODULES: &[(&str, &str, &[Module])] = &[
    ("records", "Health records and details", &[Module::Records, Module::Practices]),
    ("documents", "Documents", &[Module::Documents]),
    ("appointments", "Appointments", &[Module::Appointments]),
    ("prescriptions", "Repeat prescriptions", &[Module::Prescriptions]),
    ("messages", "Messages", &[Module::Messaging]),
    ("history", "This access history", &[Module::Audit]),
];

/// The filters on the history page, as typed.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct HistoryQuery {
    /// From this date, `YYYY-MM-DD` (inclusive).
    pub from: String,
    /// To this date, `YYYY-MM-DD` (inclusive).
    pub to: String,
    /// One of [`MODULES`]' keys, or empty for all.
    pub module: String,
}

/// One line of the history, in words.
#[derive(Debug, Clone)]
pub struct HistoryLine {
    /// The event's id.
    pub event_id: String,
    /// Its leaf index in the log, once sequenced (for an inclusion proof).
    pub seq: Option<u64>,
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// "You", or the person's name.
    pub who: String,
    /// Their role, in words.
    pub role: String,
    /// Their practice, for staff.
    pub practice: Option<String>,
    /// What happened, in words.
    pub what: String,
    /// The module's label.
    pub module: &'static str,
    /// `allowed`, `denied` or `not_found`.
    pub outcome: String,
    /// The break-glass reason or on-whose-behalf note, if any.
    pub on_behalf: Option<String>,
}

fn module_of(module: &str) -> &'static str {
    let module = Module::parse(module);
    MODULES.iter().find(|(_, _, m)| module.is_some_and(|x| m.contains(&x))).map_or("Other", |(_, label, _)| label)
}

/// What an event was, in words. The patient's own view never shows that an item is hidden from
/// them (a practice hides an item for a reason — coercion, a sensitive result — that the person
/// reading the patient's screen may be): a read of a hidden item reads as any item's, and hiding
/// or showing one as an update. Their practice's privacy officer sees it as it was.
fn describe(verb: &str, object: &str, patients_view: bool) -> String {
    match (Verb::parse(verb), ObjectKind::parse(object)) {
        (Some(Verb::Read), Some(ObjectKind::HiddenHealthRecord)) if patients_view => {
            "Opened an item of the health record".into()
        }
        (Some(Verb::Hide | Verb::Unhide), Some(ObjectKind::HealthRecord)) if patients_view => {
            "Updated the health record".into()
        }
        (Some(Verb::Read), Some(ObjectKind::Patient)) => "Viewed the patient record".into(),
        (Some(Verb::List), Some(ObjectKind::Patient)) => "Saw the record in the practice's patient list".into(),
        (Some(Verb::Create), Some(ObjectKind::Enrolment)) => "Enrolled the patient, or asked to".into(),
        (Some(Verb::Accept), Some(ObjectKind::Enrolment)) => "Accepted a practice's request to enrol them".into(),
        (Some(Verb::Decline), Some(ObjectKind::Enrolment)) => "Declined a practice's request to enrol them".into(),
        (Some(Verb::Delete), Some(ObjectKind::Enrolment)) => "Ended the enrolment at the practice".into(),
        (Some(Verb::Book), Some(ObjectKind::Appointment)) => "Booked an appointment".into(),
        (Some(Verb::Cancel), Some(ObjectKind::Appointment)) => "Cancelled an appointment".into(),
        (Some(Verb::Read), Some(ObjectKind::Appointment)) => "Opened an appointment".into(),
        (Some(Verb::List), Some(ObjectKind::PatientAppointments)) => "Looked at the appointments".into(),
        (Some(Verb::Request), Some(ObjectKind::RepeatRequest)) => "Asked for a repeat prescription".into(),
        (Some(Verb::Read), Some(ObjectKind::RepeatRequest)) => "Opened a repeat prescription request".into(),
        (Some(Verb::Read), Some(ObjectKind::RepeatList)) => "Looked at the repeat prescriptions list".into(),
        (Some(Verb::Create), Some(ObjectKind::Proxy)) => "Let someone act for the patient".into(),
        (Some(Verb::Accept), Some(ObjectKind::Proxy)) => "Accepted someone acting for them".into(),
        (Some(Verb::Revoke), Some(ObjectKind::Proxy)) => "Ended someone's right to act for them".into(),
        (Some(Verb::List), Some(ObjectKind::Proxy)) => "Looked at who can act for them".into(),
        (Some(Verb::Switch), Some(ObjectKind::Proxy)) => "Opened the record to act for them".into(),
        (Some(Verb::Send), Some(ObjectKind::MessageThread)) => "Sent a message".into(),
        (Some(Verb::Read), Some(ObjectKind::MessageThread)) => "Read a conversation with the practice".into(),
        (Some(Verb::List), Some(ObjectKind::PatientMessages)) => "Looked at the messages".into(),
        (Some(Verb::MfaReset), _) => "Reset the sign-in (passkeys, authenticator app, recovery codes)".into(),
        (Some(Verb::Read), Some(ObjectKind::AccessHistory)) => "Viewed this access history".into(),
        (Some(Verb::Export), Some(ObjectKind::AccessHistory)) => "Exported this access history".into(),
        (Some(Verb::Read), Some(ObjectKind::Document)) => "Opened a document".into(),
        (Some(Verb::List), Some(ObjectKind::Document)) => "Listed documents".into(),
        (Some(Verb::Create), Some(ObjectKind::Document)) => "Uploaded a document".into(),
        (Some(Verb::Push), Some(ObjectKind::Document)) => "Sent a document to the portal".into(),
        (Some(Verb::Update), Some(ObjectKind::Document)) => "Renamed, hid or showed a document".into(),
        (Some(Verb::Delete), Some(ObjectKind::Document)) => "Deleted a document".into(),
        (Some(Verb::Withdraw), Some(ObjectKind::Document)) => "Withdrew a document it had sent".into(),
        (Some(Verb::Unwrap), Some(ObjectKind::PatientKey)) => "Unlocked the encryption key for your records".into(),
        (Some(Verb::Read), Some(ObjectKind::PatientRecord)) => "Viewed the health record".into(),
        (Some(Verb::Export), Some(ObjectKind::PatientRecord)) => "Downloaded the whole record".into(),
        (Some(Verb::Read), Some(ObjectKind::HealthRecord)) => "Opened an item of the health record".into(),
        (Some(Verb::Read), Some(ObjectKind::HiddenHealthRecord)) => {
            "Opened an item of the health record that the practice hides from the patient".into()
        }
        (Some(Verb::Push), Some(ObjectKind::HealthRecord)) => "Sent an item of the health record to the portal".into(),
        (Some(Verb::Delete), Some(ObjectKind::HealthRecord)) => "Took an item out of the health record".into(),
        (Some(Verb::Release), Some(ObjectKind::HealthRecord)) => "Released a result to the patient".into(),
        (Some(Verb::Hide), Some(ObjectKind::HealthRecord)) => {
            "Hid an item of the health record from the patient".into()
        }
        (Some(Verb::Unhide), Some(ObjectKind::HealthRecord)) => {
            "Showed a hidden item of the health record again".into()
        }
        (Some(Verb::List), Some(ObjectKind::HealthRecord)) => {
            "Saw a result in the practice's list awaiting release".into()
        }
        _ => format!("{verb} {}", object.replace('_', " ")),
    }
}

/// An event as the patient's own copy of their history says it (their page, their export): a
/// read of an item their practice hides from them is a read of an item, and hiding or showing
/// one is an update (see [`describe`]). The log itself keeps what happened.
/// Items of the record are not named by id either (an id the patient cannot open would say
/// that it is held or hidden), and the practice's list of results awaiting release reads as a
/// view of the record.
#[must_use]
pub fn as_the_patient_sees_it(mut e: AuditEvent) -> AuditEvent {
    if e.object_type == ObjectKind::HiddenHealthRecord.code() {
        ObjectKind::HealthRecord.code().clone_into(&mut e.object_type);
    }
    if e.object_type == ObjectKind::HealthRecord.code() {
        if e.action == Verb::Hide.code() || e.action == Verb::Unhide.code() {
            Verb::Update.code().clone_into(&mut e.action);
        }
        if e.action == Verb::List.code() {
            Verb::Read.code().clone_into(&mut e.action);
            ObjectKind::PatientRecord.code().clone_into(&mut e.object_type);
        }
        "an item of the health record".clone_into(&mut e.object_id);
    }
    e
}

/// The patient's own copy of their history: each event as [`as_the_patient_sees_it`], and
/// without the per-item marks a clinician's view of the whole record adds for each hidden item
/// (their number would say how many items are hidden); the view of the record itself stays.
#[must_use]
pub fn patients_copy(events: Vec<AuditEvent>) -> Vec<AuditEvent> {
    let record_views: std::collections::HashSet<String> = events
        .iter()
        .filter(|e| e.object_type == ObjectKind::PatientRecord.code())
        .map(|e| e.request_id.clone())
        .collect();
    events
        .into_iter()
        .filter(|e| !(e.object_type == ObjectKind::HiddenHealthRecord.code() && record_views.contains(&e.request_id)))
        .map(as_the_patient_sees_it)
        .collect()
}

/// The organisation whose system acted, from an event's role (`client:<HPI id>`, also when
/// run from the server's console).
fn client_org(role: &str) -> Option<&str> {
    role.strip_prefix("console:").unwrap_or(role).strip_prefix("client:")
}

fn role_label(role: &str) -> String {
    if client_org(role).is_some() {
        return "A health provider's system, sending documents".into();
    }
    match role.strip_prefix("console:").unwrap_or(role) {
        "patient" => "Patient".into(),
        r if r.starts_with("proxy:") => domain::proxies::Relationship::parse(&r["proxy:".len()..]).map_or_else(
            || "Acting for the patient".into(),
            |rel| format!("Acting for the patient as their {}", rel.label()),
        ),
        "operator" => "Tiaki operator".into(),
        "console" => "Tiaki (run on the server by its operators)".into(),
        r => r
            .strip_prefix("staff:")
            .and_then(|s| StaffRole::parse(s).ok())
            .map_or_else(|| r.to_owned(), |s| s.label().to_owned()),
    }
}

/// The first millisecond of a New Zealand day given as `YYYY-MM-DD` (or of the next day, for
/// the inclusive end of a range): a patient's "from 1 March" means from midnight in New Zealand.
fn day_ms(text: &str, field: &'static str, end: bool) -> Result<Option<i64>, FieldError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let invalid = || FieldError { field, message: "Enter the date as YYYY-MM-DD.".into() };
    let d: jiff::civil::Date = text.trim().parse().map_err(|_| invalid())?;
    let d = if end { d.tomorrow().map_err(|_| invalid())? } else { d };
    let nz = jiff::tz::TimeZone::get("Pacific/Auckland").map_err(|_| invalid())?;
    let start = d.to_zoned(nz).map_err(|_| invalid())?;
    Ok(Some(start.timestamp().as_millisecond()))
}

pub(crate) fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// One event as a FHIR R4 `AuditEvent`, shaped after IHE Basic Audit Log Patterns.
#[must_use]
pub fn fhir_audit_event(e: &AuditEvent) -> Value {
    let (code, display, action) = match e.action.as_str() {
        "read" => ("read", "read", "R"),
        "list" | "search" => ("search-type", "search-type", "E"),
        "create" | "push" | "book" | "request" => ("create", "create", "C"),
        "update" | "cancel" | "review" | "approve" | "block" => ("update", "update", "U"),
        "delete" | "withdraw" => ("delete", "delete", "D"),
        // Sign-in, second-factor, key-unwrap and other events: the action itself, as a
        // Tiaki-specific subtype.
        other => ("", other, "E"),
    };
    let outcome = match e.outcome.as_str() {
        "allowed" => "0",
        "denied" | "not_found" => "4",
        _ => "8",
    };
    let mut entity = Vec::new();
    if let Some(p) = &e.patient {
        entity.push(json!({
            "what": { "identifier": { "system": "urn:tiaki:patient", "value": p } },
            "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person" },
            "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient" }
        }));
    }
    let mut object = json!({
        "what": { "identifier": { "system": format!("urn:tiaki:{}", e.object_type), "value": e.object_id } },
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object" },
        "description": e.object_type
    });
    // The request it was part of (AuditEvent.entity.detail is the element for such facts; work
    // done at the console has none, and FHIR allows no empty strings).
    if !e.request_id.is_empty() {
        object["detail"] = json!([{ "type": "request-id", "valueString": e.request_id }]);
    }
    entity.push(object);
    let mut agent = json!({
        "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP", "display": "information recipient" }] },
        "who": { "identifier": { "system": "urn:tiaki:account", "value": e.actor_account.clone().unwrap_or_else(|| "anonymous".into()) } },
        "requestor": true,
        "role": [{ "text": e.actor_role }],
        "network": { "address": e.ip, "type": "2" }
    });
    if let Some(s) = &e.session {
        agent["policy"] = json!([format!("urn:tiaki:session:{s}")]);
    }
    if let Some(reason) = &e.on_behalf {
        agent["purposeOfUse"] = json!([{ "text": reason }]);
    }
    let mut resource = json!({
        "resourceType": "AuditEvent",
        "id": e.id,
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation" },
        "action": action,
        "recorded": rfc3339(e.at_ms),
        "outcome": outcome,
        "outcomeDesc": e.outcome,
        "agent": [agent],
        "source": {
            "observer": { "display": "Tiaki" },
            "type": [{ "system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server" }]
        },
        "entity": entity
    });
    if code.is_empty() {
        resource["subtype"] = json!([{ "system": "urn:tiaki:action", "code": display, "display": display }]);
    } else {
        resource["subtype"] =
            json!([{ "system": "http://hl7.org/fhir/restful-interaction", "code": code, "display": display }]);
    }
    resource
}

pub(crate) fn bundle(events: &[AuditEvent]) -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "total": events.len(),
        "entry": events.iter().map(|e| json!({ "resource": fhir_audit_event(e) })).collect::<Vec<_>>()
    })
}

impl AccessLog<'_> {
    /// A patient's access history, newest first (at most 500 lines), for the patient or their
    /// practice's privacy officer. Viewing it is itself recorded.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else; [`AppError::Invalid`] for malformed dates.
    pub async fn access_history(
        &self,
        caller: &Caller,
        patient: PatientId,
        q: &HistoryQuery,
    ) -> Result<Vec<HistoryLine>, AppError> {
        let mut errors = Vec::new();
        let from = day_ms(&q.from, "from", false).map_err(|e| errors.push(e)).ok().flatten();
        let to = day_ms(&q.to, "to", true).map_err(|e| errors.push(e)).ok().flatten();
        let modules: Vec<String> = if q.module.is_empty() {
            Vec::new()
        } else if let Some((_, _, m)) = MODULES.iter().find(|(k, _, _)| *k == q.module) {
            m.iter().map(|m| m.code().to_owned()).collect()
        } else {
            errors.push(FieldError { field: "module", message: "Choose one of the listed modules.".into() });
            Vec::new()
        };
        let grant = self.app.authorize::<ViewAccessHistory>(caller, patient).await?;
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let filter = HistoryFilter { from_ms: from.unwrap_or(0), to_ms: to.unwrap_or(i64::MAX), modules, limit: 500 };
        let rows = self.app.store.patient_history(&grant, &filter).await?;
        let own_account = match &caller.principal {
            Principal::Patient { account, patient: p, .. } if *p == patient => Some(account.to_string()),
            _ => None,
        };
        let rows = if own_account.is_some() {
            // The patient's own copy (see `patients_copy`), the rows' other facts kept.
            let kept: std::collections::HashSet<String> =
                patients_copy(rows.iter().map(|r| r.event.clone()).collect()).into_iter().map(|e| e.id).collect();
            rows.into_iter()
                .filter(|r| kept.contains(&r.event.id))
                .map(|mut r| {
                    r.event = as_the_patient_sees_it(r.event);
                    r
                })
                .collect()
        } else {
            rows
        };
        let mut names: HashMap<String, String> = HashMap::new();
        let mut practices: HashMap<String, String> = HashMap::new();
        let mut lines = Vec::with_capacity(rows.len());
        for r in rows {
            let e = r.event;
            let org = client_org(&e.actor_role);
            let who = match &e.actor_account {
                Some(a) if Some(a) == own_account.as_ref() => "You".to_owned(),
                Some(a) => {
                    if !names.contains_key(a) {
                        // An organisation's system is named by its organisation, as the
                        // patient knows it; a person by their name.
                        let name = match (org, a.parse::<AccountId>(), a.parse::<ClientId>()) {
                            (Some(org), _, Ok(client)) => Some(self.app.store.api_client(client).await?.map_or_else(
                                || format!("{org} (their system)"),
                                |c| format!("{} (their system)", c.org_name),
                            )),
                            (None, Ok(id), _) => self.app.store.account(id).await?.map(|acc| acc.display_name),
                            _ => None,
                        };
                        names.insert(a.clone(), name.unwrap_or_else(|| "Unknown account".into()));
                    }
                    names[a].clone()
                }
                None => "Tiaki".to_owned(),
            };
            // Someone who acted for the patient is named with who they are to them: "Mere (your
            // parent or guardian)".
            let who = match e.actor_role.strip_prefix("proxy:").and_then(domain::proxies::Relationship::parse) {
                Some(rel) if own_account.is_some() => format!("{who} (your {})", rel.label()),
                Some(rel) => format!("{who} ({})", rel.label()),
                None => who,
            };
            let practice = match &e.actor_practice {
                Some(p) => {
                    if !practices.contains_key(p) {
                        let name = match p.parse::<PracticeId>() {
                            Ok(id) => self.app.store.practice(id).await?.map(|pr| pr.name),
                            Err(_) => None,
                        };
                        practices.insert(p.clone(), name.unwrap_or_default());
                    }
                    Some(practices[p].clone()).filter(|s| !s.is_empty())
                }
                None => None,
            };
            lines.push(HistoryLine {
                event_id: e.id.clone(),
                seq: r.seq,
                at_ms: e.at_ms,
                who,
                role: role_label(&e.actor_role),
                practice,
                what: describe(&e.action, &e.object_type, own_account.is_some()),
                module: module_of(&e.module),
                outcome: e.outcome.clone(),
                on_behalf: e.on_behalf.clone(),
            });
        }
        Ok(lines)
    }

    /// A patient's whole access history as a FHIR `Bundle` of `AuditEvent`s.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient or their practice's privacy officer.
    pub async fn export_patient(&self, caller: &Caller, patient: PatientId) -> Result<Value, AppError> {
        let grant = self.app.authorize::<ExportAccessHistory>(caller, patient).await?;
        let filter = HistoryFilter { from_ms: 0, to_ms: i64::MAX, modules: Vec::new(), limit: 100_000 };
        let rows = self.app.store.patient_history(&grant.implied(), &filter).await?;
        let patients_view = matches!(&caller.principal, Principal::Patient { patient: p, .. } if *p == patient);
        let events: Vec<AuditEvent> = rows.into_iter().rev().map(|r| r.event).collect();
        Ok(bundle(&if patients_view { patients_copy(events) } else { events }))
    }

    /// Every event from day `from` to day `to` (inclusive, `YYYY-MM-DD`, New Zealand days) as a FHIR `Bundle`
    /// (operators; at most 100,000).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator; [`AppError::Invalid`] for a bad range.
    pub async fn export_range(&self, caller: &Caller, from: &str, to: &str) -> Result<Value, AppError> {
        let grant = self.app.decide::<ExportAudit>(caller, Platform).await?;
        let range = Target::of(&grant).about(&format!("{from}..{to}"));
        self.app.audit(vec![self.app.event(caller, &range, Outcome::Allowed)]).await?;
        let mut errors = Vec::new();
        let from_ms = day_ms(from, "from", false).map_err(|e| errors.push(e)).ok().flatten();
        let to_ms = day_ms(to, "to", true).map_err(|e| errors.push(e)).ok().flatten();
        let (Some(from_ms), Some(to_ms)) = (from_ms, to_ms) else {
            if errors.is_empty() {
                errors.push(FieldError { field: "from", message: "Give both from and to as YYYY-MM-DD.".into() });
            }
            return Err(AppError::Invalid(errors));
        };
        if from_ms >= to_ms {
            return Err(AppError::field("to", "The end of the range must be after its start."));
        }
        let events = self.app.store.audit_range(&grant, from_ms, to_ms, 100_000).await?;
        Ok(bundle(&events))
    }
}

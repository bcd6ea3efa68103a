//! The practice's own system and the book, as FHIR R4: it sends `Schedule`, `Slot` and
//! `Appointment` resources in a batch Bundle (each known by its id there, so sending the same
//! resource again changes nothing), and reads slots and appointments back as search Bundles. The
//! practice system may stay the source of truth: a slot it marks busy cannot be booked here; a
//! booking made here is readable there.

use super::Appointments;
use crate::audit::Caller;
use crate::notify::{Notice, NoticeKind};
use crate::records::fhir::{Issue, OperationOutcome};
use crate::{App, AppError};
use authz::{SyncAppointment, SyncBook};
use domain::appointments::{AppointmentStatus, ClinicianKind, Modality, SlotStatus};
use domain::{AppointmentId, AppointmentTypeId, PracticeId, ScheduleId, SlotId, UnixTime};
use serde_json::{Value, json};
use store::StoreError;
use store::appointments::{
    AppointmentRow, AppointmentTypeRow, BookingGrant, NewAppointment, ScheduleRow, SlotGrant, SlotRow,
};

/// The NHI's identifier system.
const NHI_SYSTEM: &str = "https://standards.digital.health.nz/ns/nhi-id";
/// At most this many entries in one Bundle.
const MAX_ENTRIES: usize = 1000;

/// A failure of the whole Bundle: its status and outcome.
pub type Refused = (u16, OperationOutcome);

fn refuse(status: u16, code: &'static str, at: &str, text: &str) -> Refused {
    (status, OperationOutcome::new(vec![Issue::error(code, at, text)]))
}

fn instant(at: UnixTime) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_zoned(domain::calendar::nz().clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_default()
}

fn parse_instant(v: &Value) -> Option<UnixTime> {
    v.as_str()?.parse::<jiff::Timestamp>().ok().map(jiff::Timestamp::as_second)
}

/// A resource's id in the practice system: its first identifier's value, else its id.
fn source_id(r: &Value) -> Option<String> {
    r.pointer("/identifier/0/value")
        .or_else(|| r.get("id"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .map(str::to_owned)
}

fn reference_id<'v>(v: Option<&'v Value>, kind: &str) -> Option<&'v str> {
    v?.get("reference")?.as_str()?.strip_prefix(kind)?.strip_prefix('/')
}

/// One entry's answer.
fn answer(status: &str, location: Option<String>, issue: Option<Issue>) -> Value {
    let mut response = json!({ "status": status });
    if let Some(l) = location {
        response["location"] = json!(l);
    }
    if let Some(i) = issue {
        response["outcome"] = json!(OperationOutcome::new(vec![i]));
    }
    json!({ "response": response })
}

fn slot_status(code: &str) -> Option<SlotStatus> {
    match code {
        "free" => Some(SlotStatus::Free),
        "busy" | "busy-unavailable" | "busy-tentative" | "entered-in-error" => Some(SlotStatus::Busy),
        _ => None,
    }
}

fn appointment_status(code: &str) -> Option<AppointmentStatus> {
    match code {
        "booked" | "arrived" | "checked-in" | "pending" => Some(AppointmentStatus::Booked),
        "cancelled" | "entered-in-error" => Some(AppointmentStatus::Cancelled),
        "fulfilled" => Some(AppointmentStatus::Attended),
        "noshow" => Some(AppointmentStatus::DidNotAttend),
        _ => None,
    }
}

const fn fhir_status(s: AppointmentStatus) -> &'static str {
    match s {
        AppointmentStatus::Booked => "booked",
        AppointmentStatus::Cancelled => "cancelled",
        AppointmentStatus::Attended => "fulfilled",
        AppointmentStatus::DidNotAttend => "noshow",
    }
}

impl Appointments<'_> {
    /// Takes a batch Bundle of `Schedule`, `Slot` and `Appointment` resources from the
    /// practice's own system; answers a `batch-response` Bundle, an entry each, in order.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for a client that is not the practice's own with the appointments
    /// scope; `Err(Ok(refused))` for a body that is not such a Bundle.
    pub async fn sync(&self, caller: &Caller, body: &[u8]) -> Result<Result<Value, Refused>, AppError> {
        let app = self.app;
        let Some(practice) = client_practice(caller) else { return Err(AppError::NotFound) };
        let grant = app.authorize::<SyncBook>(caller, practice).await?;
        let Ok(bundle) = serde_json::from_slice::<Value>(body) else {
            return Ok(Err(refuse(400, "structure", "Bundle", "The body is not JSON.")));
        };
        if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Ok(Err(refuse(400, "structure", "", "Send a Bundle (resourceType \"Bundle\").")));
        }
        if bundle.get("type").and_then(Value::as_str) != Some("batch") {
            return Ok(Err(refuse(
                422,
                "value",
                "Bundle.type",
                "Send a batch Bundle: each entry is applied on its own and answered in the batch-response.",
            )));
        }
        let entries = bundle.get("entry").and_then(Value::as_array).cloned().unwrap_or_default();
        if entries.len() > MAX_ENTRIES {
            return Ok(Err(refuse(413, "too-costly", "Bundle.entry", "Send at most 1,000 entries in one Bundle.")));
        }
        let mut out = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("Bundle.entry[{i}].resource");
            let resource = entry.get("resource").cloned().unwrap_or(Value::Null);
            let result = match resource.get("resourceType").and_then(Value::as_str) {
                Some("Schedule") => app.sync_schedule(&grant, &resource, &at).await,
                Some("Slot") => app.sync_slot(&grant, &resource, &at).await,
                Some("Appointment") => app.sync_appointment(caller, &grant, &resource, &at).await,
                _ => Ok(answer(
                    "422 Unprocessable Entity",
                    None,
                    Some(Issue::error(
                        "not-supported",
                        at.clone(),
                        "Only Schedule, Slot and Appointment are taken here.",
                    )),
                )),
            };
            // An entry's own failure is that entry's answer; the others still apply.
            out.push(match result {
                Ok(v) => v,
                Err(AppError::Conflict(m)) => answer("409 Conflict", None, Some(Issue::error("conflict", at, m))),
                Err(AppError::NotFound) => answer(
                    "404 Not Found",
                    None,
                    Some(Issue::error("not-found", at, "Nothing of the practice's has this id.")),
                ),
                Err(AppError::Invalid(f)) => answer(
                    "422 Unprocessable Entity",
                    None,
                    Some(Issue::error("value", at, f.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" "))),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, entry = i, "a FHIR book entry failed; answered as 500 and the batch goes on");
                    answer(
                        "500 Internal Server Error",
                        None,
                        Some(Issue::error("exception", at, "This entry could not be applied; send it again later.")),
                    )
                }
            });
        }
        Ok(Ok(json!({ "resourceType": "Bundle", "type": "batch-response", "entry": out })))
    }

    /// The practice's slots (with their books) or appointments between two days, as a
    /// `searchset` Bundle, for its own system.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for any other client; [`AppError::Invalid`] for days that are
    /// not dates or more than 92 days apart.
    pub async fn search(&self, caller: &Caller, kind: &str, start: &str, end: &str) -> Result<Value, AppError> {
        let app = self.app;
        let Some(practice) = client_practice(caller) else { return Err(AppError::NotFound) };
        let grant = app.authorize::<SyncBook>(caller, practice).await?;
        let day = |s: &str, f: &'static str| {
            s.parse::<jiff::civil::Date>().map_err(|_| AppError::field(f, "Give a date as YYYY-MM-DD."))
        };
        let (from, to) = (day(start, "start")?, day(end, "end")?);
        if to < from || (to - from).get_days() > 92 {
            return Err(AppError::field("end", "Give an end on or after the start, at most 92 days later."));
        }
        let next = to.checked_add(jiff::Span::new().days(1)).unwrap_or(to);
        let (from, to) = (domain::calendar::day_start(from), domain::calendar::day_start(next));
        let schedules = app.store.schedules(practice).await?;
        let types = app.store.appointment_types(practice).await?;
        let entries: Vec<Value> = if kind == "Slot" {
            let slots = app.store.slots(SlotGrant::Sync(&grant), from, to, None, None).await?;
            let mut v: Vec<Value> = slots
                .iter()
                .map(|s| json!({ "fullUrl": format!("urn:uuid:{}", s.id), "resource": slot_json(s, &types), "search": { "mode": "match" } }))
                .collect();
            v.extend(
                schedules.iter().map(|s| json!({ "fullUrl": format!("urn:uuid:{}", s.id), "resource": schedule_json(s), "search": { "mode": "include" } })),
            );
            v
        } else {
            let rows = app.store.practice_appointments(&grant, from, to).await?;
            // The system read each of these patients' appointments: on the record, under each.
            let seen: Vec<_> = rows
                .iter()
                .map(|a| {
                    let t = crate::audit::Target::of(&grant).with_patient(a.patient).about(&a.id);
                    app.event(caller, &t, crate::audit::Outcome::Allowed)
                })
                .collect();
            if !seen.is_empty() {
                app.audit(seen).await?;
            }
            rows.iter()
                .map(|a| json!({ "fullUrl": format!("urn:uuid:{}", a.id), "resource": appointment_json(a, &types), "search": { "mode": "match" } }))
                .collect()
        };
        Ok(json!({ "resourceType": "Bundle", "type": "searchset", "total": entries.len(), "entry": entries }))
    }
}

fn client_practice(caller: &Caller) -> Option<PracticeId> {
    match &caller.principal {
        crate::Principal::Client { practice, .. } => *practice,
        _ => None,
    }
}

/// Adds the practice system's id as `identifier[0]` when there is one (FHIR has no empty arrays).
fn with_source(mut v: Value, source: Option<&String>) -> Value {
    if let Some(id) = source {
        v["identifier"] = json!([{ "value": id }]);
    }
    v
}

fn schedule_json(s: &ScheduleRow) -> Value {
    with_source(
        json!({
            "resourceType": "Schedule",
            "id": s.id.to_string(),
            "active": s.active,
            "specialty": [{ "coding": [{ "code": s.kind.as_str(), "display": s.kind.label() }] }],
            "actor": [{ "display": s.clinician }, { "display": s.location }],
        }),
        s.source_id.as_ref(),
    )
}

fn slot_json(s: &SlotRow, types: &[AppointmentTypeRow]) -> Value {
    with_source(slot_body(s, types), s.source_id.as_ref())
}

fn slot_body(s: &SlotRow, types: &[AppointmentTypeRow]) -> Value {
    let status = match s.status {
        SlotStatus::Free => "free",
        SlotStatus::Booked | SlotStatus::Busy => "busy",
        SlotStatus::Blocked => "busy-unavailable",
    };
    json!({
        "resourceType": "Slot",
        "id": s.id.to_string(),
        "schedule": { "reference": format!("Schedule/{}", s.schedule) },
        "serviceType": [{ "text": types.iter().find(|t| t.id == s.type_id).map_or("", |t| t.name.as_str()) }],
        "status": status,
        "start": instant(s.starts_at),
        "end": instant(s.ends_at),
    })
}

fn appointment_json(a: &AppointmentRow, types: &[AppointmentTypeRow]) -> Value {
    with_source(
        json!({
            "resourceType": "Appointment",
            "id": a.id.to_string(),
            "status": fhir_status(a.status),
            "serviceType": [{ "text": types.iter().find(|t| t.id == a.type_id).map_or("", |t| t.name.as_str()) }],
            "start": instant(a.starts_at),
            "end": instant(a.ends_at),
            "created": instant(a.created_at),
            "slot": [{ "reference": format!("Slot/{}", a.slot) }],
            "participant": [{
                "actor": { "identifier": { "system": NHI_SYSTEM, "value": a.patient_nhi }, "display": a.patient_name },
                "status": "accepted",
            }],
        }),
        a.source_id.as_ref(),
    )
}

impl App {
    async fn sync_schedule(&self, grant: &authz::Grant<SyncBook>, r: &Value, at: &str) -> Result<Value, AppError> {
        let Some(source) = source_id(r) else {
            return Ok(answer(
                "422 Unprocessable Entity",
                None,
                Some(Issue::error("required", format!("{at}.identifier"), "Give the schedule's id in your system.")),
            ));
        };
        let name = r.pointer("/actor/0/display").and_then(Value::as_str).map(str::trim).unwrap_or_default();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Ok(answer(
                "422 Unprocessable Entity",
                None,
                Some(Issue::error(
                    "required",
                    format!("{at}.actor[0].display"),
                    "Give the clinician's name (at most 100 characters).",
                )),
            ));
        }
        let kind = match r.pointer("/specialty/0/coding/0/code").and_then(Value::as_str) {
            None => ClinicianKind::Gp,
            Some(code) => match ClinicianKind::parse(code) {
                Some(k) => k,
                None => {
                    return Ok(answer(
                        "422 Unprocessable Entity",
                        None,
                        Some(Issue::error(
                            "code-invalid",
                            format!("{at}.specialty[0].coding[0].code"),
                            "Give the clinician's kind as gp or nurse.",
                        )),
                    ));
                }
            },
        };
        let location = r.pointer("/actor/1/display").and_then(Value::as_str).map_or("", str::trim);
        if location.chars().count() > 100 || location.chars().any(char::is_control) {
            return Ok(answer(
                "422 Unprocessable Entity",
                None,
                Some(Issue::error(
                    "value",
                    format!("{at}.actor[1].display"),
                    "Give the location in words (at most 100 characters).",
                )),
            ));
        }
        let row = ScheduleRow {
            id: ScheduleId::random(),
            practice: grant.object(),
            clinician: name.to_owned(),
            kind,
            location: if location.is_empty() { "The practice".into() } else { location.to_owned() },
            online: true,
            active: r.get("active").and_then(Value::as_bool).unwrap_or(true),
            source_id: Some(source),
        };
        let id = self.store.save_schedule(SlotGrant::Sync(grant), &row, self.now()).await?;
        Ok(answer("200 OK", Some(format!("Schedule/{id}")), None))
    }

    async fn sync_slot(&self, grant: &authz::Grant<SyncBook>, r: &Value, at: &str) -> Result<Value, AppError> {
        let bad = |path: &str, text: &str| {
            Ok(answer("422 Unprocessable Entity", None, Some(Issue::error("value", format!("{at}.{path}"), text))))
        };
        let Some(source) = source_id(r) else { return bad("identifier", "Give the slot's id in your system.") };
        let practice = grant.object();
        let Some(schedule_ref) = reference_id(r.get("schedule"), "Schedule") else {
            return bad("schedule", "Give the slot's schedule as a reference, Schedule/<id>.");
        };
        let schedules = self.store.schedules(practice).await?;
        let Some(schedule) =
            schedules.iter().find(|s| s.source_id.as_deref() == Some(schedule_ref) || s.id.to_string() == schedule_ref)
        else {
            return Ok(answer(
                "404 Not Found",
                None,
                Some(Issue::error(
                    "not-found",
                    format!("{at}.schedule"),
                    "No schedule of the practice has this id: send the Schedule first.",
                )),
            ));
        };
        let (Some(start), Some(end)) = (r.get("start").and_then(parse_instant), r.get("end").and_then(parse_instant))
        else {
            return bad("start", "Give start and end as instants with an offset (2027-04-05T09:00:00+12:00).");
        };
        if end <= start || end - start > 8 * 3600 {
            return bad("end", "The end must be after the start, within 8 hours.");
        }
        let Some(status) = r.get("status").and_then(Value::as_str).and_then(slot_status) else {
            return bad("status", "Give the status: free, busy, busy-unavailable or busy-tentative.");
        };
        let type_name = r
            .pointer("/serviceType/0/text")
            .or_else(|| r.pointer("/serviceType/0/coding/0/display"))
            .map_or(Some("Standard"), Value::as_str)
            .map(str::trim)
            .unwrap_or_default();
        if type_name.is_empty() || type_name.chars().count() > 60 || type_name.chars().any(char::is_control) {
            return bad("serviceType[0]", "Give the kind of appointment in words (at most 60 characters).");
        }
        let types = self.store.appointment_types(practice).await?;
        let type_id = if let Some(t) = types.iter().find(|t| t.name.eq_ignore_ascii_case(type_name)) {
            t.id
        } else {
            {
                // A type the practice has not set up here: taken, but not bookable online until
                // the practice says so.
                let row = AppointmentTypeRow {
                    id: AppointmentTypeId::random(),
                    practice,
                    name: type_name.chars().take(60).collect(),
                    minutes: i32::try_from((end - start) / 60).unwrap_or(15).clamp(5, 120),
                    modality: Modality::InPerson,
                    online: false,
                    active: true,
                };
                self.store.save_appointment_type(SlotGrant::Sync(grant), &row, self.now()).await?
            }
        };
        let row = SlotRow {
            id: SlotId::random(),
            practice,
            schedule: schedule.id,
            type_id,
            starts_at: start,
            ends_at: end,
            status,
            from_template: false,
            source_id: Some(source),
        };
        match self.store.sync_slot(grant, &row, self.now()).await {
            Ok(id) => Ok(answer("200 OK", Some(format!("Slot/{id}")), None)),
            Err(StoreError::Conflict(_)) => Ok(answer(
                "409 Conflict",
                None,
                Some(Issue::error(
                    "conflict",
                    at,
                    "It would move a slot booked in Tiaki (cancel that appointment first), or overlap another slot of this schedule.",
                )),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// A state the practice's system gives an appointment it knows (cancelled, fulfilled, no-show).
    async fn sync_existing(
        &self,
        caller: &Caller,
        grant: &authz::Grant<SyncBook>,
        existing: &AppointmentRow,
        status: AppointmentStatus,
        at: &str,
    ) -> Result<Value, AppError> {
        // Changing it is changing that patient's appointment: the policy is asked about them
        // (a patient who left the practice is out of its reach), and the change is recorded.
        let Ok(pgrant) = self.decide::<SyncAppointment>(caller, existing.patient).await else {
            return Ok(answer(
                "404 Not Found",
                None,
                Some(Issue::error("not-found", at, "No appointment of the practice's patients has this id.")),
            ));
        };
        if existing.status != status {
            match self.store.sync_appointment_status(grant, existing.id, status, self.now()).await {
                Ok(()) => {
                    let t = crate::audit::Target::of(&pgrant).about(&existing.id);
                    self.audit(vec![self.event(caller, &t, crate::audit::Outcome::Allowed)]).await?;
                }
                Err(StoreError::Conflict(_)) => {
                    return Ok(answer(
                        "409 Conflict",
                        None,
                        Some(Issue::error(
                            "conflict",
                            format!("{at}.status"),
                            "This appointment is cancelled: it cannot change state again. Book a new one.",
                        )),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(answer("200 OK", Some(format!("Appointment/{}", existing.id)), None))
    }

    async fn sync_appointment(
        &self,
        caller: &Caller,
        grant: &authz::Grant<SyncBook>,
        r: &Value,
        at: &str,
    ) -> Result<Value, AppError> {
        let bad = |path: &str, text: &str| {
            Ok(answer("422 Unprocessable Entity", None, Some(Issue::error("value", format!("{at}.{path}"), text))))
        };
        let Some(source) = source_id(r) else { return bad("identifier", "Give the appointment's id in your system.") };
        let Some(status) = r.get("status").and_then(Value::as_str).and_then(appointment_status) else {
            return bad("status", "Give the status: booked, cancelled, fulfilled or noshow.");
        };
        if let Some(existing) = self.store.appointment_by_source(grant, &source).await? {
            return self.sync_existing(caller, grant, &existing, status, at).await;
        }
        if status != AppointmentStatus::Booked {
            return bad("status", "A new appointment must be booked.");
        }
        let Some(slot_ref) = r.get("slot").and_then(|s| reference_id(s.get(0), "Slot")) else {
            return bad("slot[0]", "Give the appointment's slot as a reference, Slot/<id>.");
        };
        let Some(slot) = self.store.slot_by_source(grant, slot_ref).await? else {
            return Ok(answer(
                "404 Not Found",
                None,
                Some(Issue::error(
                    "not-found",
                    format!("{at}.slot[0]"),
                    "No slot of the practice has this id: send the Slot first.",
                )),
            ));
        };
        let nhi = r.get("participant").and_then(Value::as_array).and_then(|ps| {
            ps.iter().find_map(|p| {
                let id = p.pointer("/actor/identifier")?;
                (id.get("system")?.as_str()? == NHI_SYSTEM).then(|| id.get("value")?.as_str()).flatten()
            })
        });
        let Some(nhi) = nhi.and_then(|n| domain::Nhi::parse(n).ok()) else {
            return bad("participant", "Give the patient as a participant whose actor has an NHI identifier.");
        };
        let Some(patient) = self.store.patient_by_nhi(nhi.as_str()).await? else {
            return Ok(answer(
                "404 Not Found",
                None,
                Some(Issue::error(
                    "not-found",
                    format!("{at}.participant"),
                    "No patient of the practice has this NHI.",
                )),
            ));
        };
        let Ok(pgrant) = self.decide::<SyncAppointment>(caller, patient).await else {
            return Ok(answer(
                "404 Not Found",
                None,
                Some(Issue::error(
                    "not-found",
                    format!("{at}.participant"),
                    "No patient of the practice has this NHI.",
                )),
            ));
        };
        let new = NewAppointment {
            id: AppointmentId::random(),
            slot: slot.id,
            reason: None,
            booked_by: None,
            max_future: None,
            source_id: Some(source),
            reminded: false,
        };
        let notice = Notice {
            kind: NoticeKind::Appointments,
            title: "Your practice booked an appointment",
            link: Some(format!("/appointments/{}", new.id)),
            practice: Some(grant.object()),
        };
        let mail = self.news(patient, &notice).await?;
        match self.store.book(BookingGrant::Sync(&pgrant), grant.object(), &new, &mail, self.now()).await {
            Ok(b) => {
                if b.fresh {
                    let t = crate::audit::Target::of(&pgrant).about(&b.appointment.id);
                    self.audit(vec![self.event(caller, &t, crate::audit::Outcome::Allowed)]).await?;
                    self.mail_waker.notify_one();
                }
                Ok(answer(
                    if b.fresh { "201 Created" } else { "200 OK" },
                    Some(format!("Appointment/{}", b.appointment.id)),
                    None,
                ))
            }
            Err(StoreError::Conflict(_)) => Ok(answer(
                "409 Conflict",
                None,
                Some(Issue::error(
                    "conflict",
                    format!("{at}.slot[0]"),
                    "This slot is booked for another patient (or busy) in Tiaki.",
                )),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

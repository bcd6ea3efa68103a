//! Repeat prescriptions (issue 15): the patient's long-term list — the medications their
//! practice marked repeat-eligible in the health record it sends, and any it enters here —
//! requests from it (the fee and the day it will be ready shown before sending, NZ public
//! holidays respected), and the practice's triage: nurses prepare, prescribers approve or
//! decline with a reason the patient reads. Names, notes and reasons are sealed under the
//! patient's records key; every change tells the patient there is news, nothing more.

mod triage;

use crate::audit::Caller;
use crate::notify::{Notice, NoticeKind};
use crate::records::fhir::Resource;
use crate::{App, AppError};
use authz::{ManageRepeatList, ReadRepeatList, ReadRepeatRequest, RequestRepeat, SetUpRepeats};
use crypto::fields::FieldKey;
use domain::calendar::{add_working_days, local_day};
use domain::prescriptions::{Collection, RepeatStatus};
use domain::{PatientId, PracticeId, RecordCategory, RecordId, RepeatMedicationId, RepeatRequestId};
use jiff::civil::Date;
use store::appointments::RepeatRules;
use store::prescriptions::{
    ALREADY_REQUESTED, ListGrant, MOVED_ON, NOT_REQUESTABLE, NewRepeatRequest, RepeatMedicationRow, RepeatRequestRow,
    RequestGrant,
};
use store::{KeyGrant, RecordKeyGrant, StoreError};

/// The prescriptions module's use cases: [`App::prescriptions`].
#[derive(Debug, Clone, Copy)]
pub struct Prescriptions<'a> {
    app: &'a App,
}

impl App {
    /// The repeat-prescriptions module.
    #[must_use]
    pub const fn prescriptions(&self) -> Prescriptions<'_> {
        Prescriptions { app: self }
    }
}

/// A medication on the long-term list.
#[allow(clippy::struct_excessive_bools, reason = "independent facts about one item")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MedicationView {
    /// Its id.
    pub id: RepeatMedicationId,
    /// The practice.
    pub practice: PracticeId,
    /// Its name (and dose).
    pub name: String,
    /// Not for online requests: "ask at the practice".
    pub excluded: bool,
    /// Last issued (YYYY-MM-DD).
    pub last_issued: Option<String>,
    /// In an open request now.
    pub requested: bool,
    /// From the health record (rather than entered here).
    pub from_record: bool,
    /// On the list.
    pub active: bool,
}

/// A request as people read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    /// Its id.
    pub id: RepeatRequestId,
    /// The patient.
    pub patient: PatientId,
    /// The patient's name (for the practice).
    pub patient_name: String,
    /// Its state.
    pub status: RepeatStatus,
    /// The medications' names (none in the practice's queue, which opens no key).
    pub items: Vec<String>,
    /// How many medications it asks for.
    pub item_count: usize,
    /// Where to collect.
    pub collection: Collection,
    /// The pharmacy.
    pub pharmacy: Option<String>,
    /// The patient's note.
    pub note: Option<String>,
    /// The fee, cents.
    pub fee_cents: i32,
    /// Expected (YYYY-MM-DD).
    pub ready_by: String,
    /// For an approved one: sent to the pharmacy, or ready to collect.
    pub outcome: Option<String>,
    /// For a declined one: the practice's reason.
    pub decline_reason: Option<String>,
    /// Sent at.
    pub created_at: domain::UnixTime,
    /// Last changed.
    pub updated_at: domain::UnixTime,
}

/// The patient's repeats page.
#[derive(Debug, Clone)]
pub struct RepeatsPage {
    /// The practice the list is kept by (the first the patient is enrolled at with one).
    pub practice: Option<(PracticeId, String)>,
    /// Its rules (`repeats_on` false: the page says what to do instead).
    pub rules: RepeatRules,
    /// The list.
    pub items: Vec<MedicationView>,
    /// The requests, newest first.
    pub requests: Vec<RequestView>,
    /// When a request sent now would be ready.
    pub ready_by: Date,
}

/// A request, as the form sends it.
#[derive(Debug, Clone, Default)]
pub struct RequestForm {
    /// The medications.
    pub items: Vec<RepeatMedicationId>,
    /// "practice" or "pharmacy".
    pub collection: String,
    /// A pharmacy from the practice's list.
    pub pharmacy: String,
    /// Or one typed in.
    pub other_pharmacy: String,
    /// A note.
    pub note: String,
    /// The form's one-time key.
    pub request_key: String,
}

/// Whether a medication may be asked for again: the practice's system marks it continuing or
/// gives it repeats.
#[must_use]
pub fn repeats_allowed(r: &Resource) -> bool {
    match r {
        Resource::MedicationRequest(m) => {
            matches!(m.status.as_deref(), Some("active" | "on-hold"))
                && (m.dispense_request.as_ref().and_then(|d| d.number_of_repeats_allowed).is_some_and(|n| n > 0)
                    || m.course_of_therapy_type.as_ref().is_some_and(|c| c.has_code("continuous")))
        }
        _ => false,
    }
}

fn seal(key: &FieldKey, context: &str, text: &str) -> Result<String, AppError> {
    key.seal(context, text).map_err(crate::documents::key_error)
}

fn open(key: Option<&FieldKey>, context: &str, stored: Option<&str>) -> Option<String> {
    let (key, stored) = (key?, stored?);
    crypto::fields::is_sealed(stored).then(|| key.open(context, stored).ok())?
}

fn name_context(patient: PatientId, id: RepeatMedicationId) -> String {
    format!("repeat/{patient}/{id}/name")
}

fn request_context(id: RepeatRequestId, field: &str) -> String {
    format!("repeat_request/{id}/{field}")
}

fn conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(ALREADY_REQUESTED) => AppError::Conflict(
            "You have already asked for one of these, and the practice has not finished with that request yet.".into(),
        ),
        StoreError::Conflict(NOT_REQUESTABLE) => AppError::Conflict(
            "One of these cannot be asked for online (it is not on your list, or your practice asks you to ask at the \
             practice)."
                .into(),
        ),
        StoreError::Conflict(MOVED_ON) => {
            AppError::Conflict("This request has moved on already (someone else dealt with it).".into())
        }
        other => other.into(),
    }
}

/// Money as people read it: $15.00.
#[must_use]
pub fn dollars(cents: i32) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}

impl Prescriptions<'_> {
    /// The patient's long-term list and requests.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient and their practice's clinicians.
    pub async fn page(&self, caller: &Caller, patient: PatientId) -> Result<RepeatsPage, AppError> {
        let app = self.app;
        let grant = app.authorize::<ReadRepeatList>(caller, patient).await?;
        let practices = app.store.patient_practices(patient).await.map_err(|e| AppError::Internal(e.to_string()))?;
        let practice = grant.via_practice().or_else(|| practices.first().copied());
        let rules = match practice {
            Some(p) => app.store.practice_services(p).await?.repeats,
            None => RepeatRules::default(),
        };
        let name = match practice {
            Some(p) => app.store.practice(p).await?.map(|r| (p, r.name)),
            None => None,
        };
        let key = app.open_records_key(caller, patient, RecordKeyGrant::Repeats(&grant)).await?;
        // What the health record marks repeat-eligible joins the list the first time it is seen.
        if let Ok(record) = app.records().record(caller, patient, Some(RecordCategory::Medications)).await {
            let known: Vec<Option<RecordId>> =
                app.store.repeat_list(ListGrant::Read(&grant)).await?.iter().map(|m| m.record).collect();
            let fresh: Vec<_> = record
                .items
                .iter()
                .filter(|i| !i.removed && !i.hidden && repeats_allowed(&i.resource) && !known.contains(&Some(i.id)))
                .collect();
            if !fresh.is_empty() {
                let key = app
                    .sealing_key(
                        caller,
                        RecordKeyGrant::Repeats(&grant),
                        KeyGrant::Sealing(RecordKeyGrant::Repeats(&grant)),
                    )
                    .await?;
                let mut rows = Vec::new();
                for item in fresh {
                    let Resource::MedicationRequest(m) = &item.resource else { continue };
                    let words = m.medication_codeable_concept.as_ref().and_then(|c| c.words()).unwrap_or("Medication");
                    let dose = m.dosage_instruction.iter().find_map(|d| d.text.clone()).unwrap_or_default();
                    let text = if dose.is_empty() { words.to_owned() } else { format!("{words} — {dose}") };
                    let id = RepeatMedicationId::random();
                    rows.push(RepeatMedicationRow {
                        id,
                        practice: item.practice,
                        patient,
                        record: Some(item.id),
                        name: seal(&key, &name_context(patient, id), &text)?,
                        excluded: false,
                        last_issued: m.authored_on.as_deref().map(|d| d.chars().take(10).collect()),
                        active: true,
                    });
                }
                app.store.adopt_repeat_medications(ListGrant::Read(&grant), &rows, app.now()).await?;
            }
        }
        let key = match key {
            Some(k) => Some(k),
            None => app.open_records_key(caller, patient, RecordKeyGrant::Repeats(&grant)).await?,
        };
        let mut meds = app.store.repeat_list(ListGrant::Read(&grant)).await?;
        // A medication from the health record shows only while its item does (a practice may
        // hide an item from the patient, or its system remove it).
        if grant.via_practice().is_none() {
            let shown = app.visible_records(caller, patient).await;
            meds.retain(|m| m.record.is_none_or(|r| shown.contains(&r)));
        }
        let requests = app.store.repeat_requests(ListGrant::Read(&grant)).await?;
        let items = views(&meds, &requests, key.as_ref());
        let requests = requests.iter().map(|r| request_view(r, &meds, key.as_ref())).collect();
        let ready_by = add_working_days(local_day(app.now()), u32::try_from(rules.working_days).unwrap_or(2));
        Ok(RepeatsPage { practice: name, rules, items, requests, ready_by })
    }

    /// Sends a request. The same form sent twice (a double click, a retry) is one request.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient; [`AppError::Invalid`] for no items, a
    /// pharmacy missing, a note too long; [`AppError::Conflict`] for an excluded item, one not
    /// on the list, one already asked for, or a practice that takes no online requests.
    pub async fn request(
        &self,
        caller: &Caller,
        patient: PatientId,
        form: &RequestForm,
    ) -> Result<RequestView, AppError> {
        let app = self.app;
        let grant = app.decide::<RequestRepeat>(caller, patient).await?;
        if form.items.is_empty() {
            return Err(AppError::field("items", "Choose at least one medication."));
        }
        if form.items.len() > 20 {
            return Err(AppError::field("items", "Choose at most 20 medications in one request."));
        }
        let key_ok = !form.request_key.is_empty()
            && form.request_key.len() <= 64
            && form.request_key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !key_ok {
            return Err(AppError::field("request_key", "The form is out of date. Open the page again and send it."));
        }
        let mut list = app.store.repeat_list(ListGrant::Request(&grant)).await?;
        if list.iter().any(|m| m.record.is_some()) {
            let shown = app.visible_records(caller, patient).await;
            list.retain(|m| m.record.is_none_or(|r| shown.contains(&r)));
        }
        let mut practice = None;
        for id in &form.items {
            let Some(m) = list.iter().find(|m| m.id == *id && m.active) else {
                return Err(conflict(StoreError::Conflict(NOT_REQUESTABLE)));
            };
            if m.excluded {
                return Err(AppError::Conflict(
                    "One of these is marked \"ask at the practice\": it cannot be asked for online. Please phone or \
                     visit the practice."
                        .into(),
                ));
            }
            if practice.is_some_and(|p| p != m.practice) {
                return Err(AppError::field("items", "Ask each practice for its own medications separately."));
            }
            practice = Some(m.practice);
        }
        let practice = practice.ok_or(AppError::NotFound)?;
        let rules = app.store.practice_services(practice).await?.repeats;
        if !rules.repeats_on {
            return Err(AppError::Conflict(
                "Your practice does not take repeat prescription requests online. Please phone the practice.".into(),
            ));
        }
        let collection = Collection::parse(&form.collection)
            .ok_or_else(|| AppError::field("collection", "Choose where you will collect it."))?;
        let pharmacy = match collection {
            Collection::Practice => None,
            Collection::Pharmacy => {
                let typed = form.other_pharmacy.trim();
                let picked = form.pharmacy.trim();
                let name = if typed.is_empty() { picked } else { typed };
                if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                    return Err(AppError::field("pharmacy", "Choose a pharmacy, or type its name and suburb."));
                }
                if typed.is_empty() && !rules.pharmacies.iter().any(|p| p == picked) {
                    return Err(AppError::field("pharmacy", "Choose a pharmacy from the list, or type its name."));
                }
                Some(name.to_owned())
            }
        };
        let note = form.note.trim();
        if note.chars().count() > 1000 {
            return Err(AppError::field("note", "Keep the note under 1,000 characters."));
        }
        let id = RepeatRequestId::random();
        let key = app
            .sealing_key(caller, RecordKeyGrant::Request(&grant), KeyGrant::Sealing(RecordKeyGrant::Request(&grant)))
            .await?;
        let sealed = if note.is_empty() { None } else { Some(seal(&key, &request_context(id, "note"), note)?) };
        let new = NewRepeatRequest {
            id,
            practice,
            collection,
            pharmacy,
            note: sealed,
            fee_cents: rules.fee_cents,
            ready_by: add_working_days(local_day(app.now()), u32::try_from(rules.working_days).unwrap_or(2))
                .to_string(),
            request_key: form.request_key.clone(),
            requested_by: caller.principal.account(),
            items: form.items.clone(),
        };
        let notice = Notice {
            kind: NoticeKind::Prescriptions,
            title: "A repeat prescription request was sent",
            link: Some(format!("/repeats/{}", new.id)),
            practice: Some(new.practice),
        };
        let mail = app.news(patient, &notice).await?;
        let (row, fresh) = app.store.request_repeat(&grant, &new, &mail, app.now()).await.map_err(conflict)?;
        let target = crate::audit::Target::of(&grant).about(&row.id);
        app.audit(vec![app.event(caller, &target, crate::audit::Outcome::Allowed)]).await?;
        if fresh && mail.iter().any(|m| m.deliver) {
            app.mail_waker.notify_one();
        }
        Ok(request_view(&row, &list, Some(&key)))
    }

    /// One request.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but its patient and their practice's clinicians.
    pub async fn request_page(&self, caller: &Caller, id: RepeatRequestId) -> Result<RequestView, AppError> {
        let app = self.app;
        let grant = app.authorize::<ReadRepeatRequest>(caller, id).await?;
        let row = app.store.repeat_request(RequestGrant::Read(&grant)).await?;
        let key = app.open_records_key(caller, row.patient, RecordKeyGrant::RepeatRequest(&grant)).await?;
        let list = app.store.repeat_list_for_request(RequestGrant::Read(&grant)).await?;
        Ok(request_view(&row, &list, key.as_ref()))
    }

    /// The practice keeps a patient's list: adds a medication by name, marks one "ask at the
    /// practice" (or not), or takes one off the list.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient's practice's clinicians (or an item
    /// not theirs); [`AppError::Invalid`] for a name missing or too long.
    pub async fn keep_list(
        &self,
        caller: &Caller,
        patient: PatientId,
        item: Option<RepeatMedicationId>,
        name: &str,
        excluded: bool,
        active: bool,
    ) -> Result<(), AppError> {
        let app = self.app;
        let grant = app.authorize::<ManageRepeatList>(caller, patient).await?;
        let practice = grant.via_practice().ok_or(AppError::NotFound)?;
        let row = if let Some(id) = item {
            let mut row = app
                .store
                .repeat_list(ListGrant::Manage(&grant))
                .await?
                .into_iter()
                .find(|m| m.id == id)
                .ok_or(AppError::NotFound)?;
            row.excluded = excluded;
            row.active = active;
            row
        } else {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
                return Err(AppError::field("name", "Give the medication's name and dose (at most 200 characters)."));
            }
            let key = app
                .sealing_key(
                    caller,
                    RecordKeyGrant::ManageRepeats(&grant),
                    KeyGrant::Sealing(RecordKeyGrant::ManageRepeats(&grant)),
                )
                .await?;
            let id = RepeatMedicationId::random();
            RepeatMedicationRow {
                id,
                practice,
                patient,
                record: None,
                name: seal(&key, &name_context(patient, id), name)?,
                excluded,
                last_issued: None,
                active: true,
            }
        };
        app.store.save_repeat_medication(&grant, &row, app.now()).await?;
        Ok(())
    }

    /// The practice's rules for online repeats (its admins).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else.
    pub async fn rules(&self, caller: &Caller, practice: PracticeId) -> Result<RepeatRules, AppError> {
        let _grant = self.app.decide::<SetUpRepeats>(caller, practice).await?;
        Ok(self.app.store.practice_services(practice).await?.repeats)
    }

    /// Sets the practice's rules for online repeats.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but its admins; [`AppError::Invalid`] for a fee or
    /// turnaround out of range, or a pharmacy name too long.
    pub async fn set_rules(&self, caller: &Caller, practice: PracticeId, rules: &RepeatRules) -> Result<(), AppError> {
        let grant = self.app.authorize::<SetUpRepeats>(caller, practice).await?;
        if !(0..=100_000).contains(&rules.fee_cents) {
            return Err(AppError::field("fee", "Give a fee from $0 to $1,000."));
        }
        if !(1..=10).contains(&rules.working_days) {
            return Err(AppError::field("working_days", "Give a turnaround of 1 to 10 working days."));
        }
        if rules.pharmacies.len() > 50
            || rules.pharmacies.iter().any(|p| p.chars().count() > 200 || p.chars().any(char::is_control))
        {
            return Err(AppError::field(
                "pharmacies",
                "List at most 50 pharmacies, one per line, each under 200 characters.",
            ));
        }
        Ok(self.app.store.set_repeat_rules(&grant, rules, self.app.now()).await?)
    }
}

impl App {
    /// The medication items of the patient's health record they can see now (none if the
    /// record cannot be read).
    async fn visible_records(&self, caller: &Caller, patient: PatientId) -> Vec<RecordId> {
        self.records()
            .record(caller, patient, Some(RecordCategory::Medications))
            .await
            .map(|r| r.items.iter().filter(|i| !i.removed && !i.hidden).map(|i| i.id).collect())
            .unwrap_or_default()
    }
}

fn views(meds: &[RepeatMedicationRow], requests: &[RepeatRequestRow], key: Option<&FieldKey>) -> Vec<MedicationView> {
    meds.iter()
        .map(|m| MedicationView {
            id: m.id,
            practice: m.practice,
            name: open(key, &name_context(m.patient, m.id), Some(&m.name))
                .unwrap_or_else(|| "(cannot be shown)".into()),
            excluded: m.excluded,
            last_issued: m.last_issued.clone(),
            requested: requests.iter().any(|r| r.status.open() && r.items.contains(&m.id)),
            from_record: m.record.is_some(),
            active: m.active,
        })
        .collect()
}

fn request_view(r: &RepeatRequestRow, meds: &[RepeatMedicationRow], key: Option<&FieldKey>) -> RequestView {
    RequestView {
        id: r.id,
        patient: r.patient,
        patient_name: r.patient_name.clone(),
        status: r.status,
        items: r
            .items
            .iter()
            .filter_map(|i| meds.iter().find(|m| m.id == *i))
            .filter_map(|m| open(key, &name_context(m.patient, m.id), Some(&m.name)))
            .collect(),
        item_count: r.items.len(),
        collection: r.collection,
        pharmacy: r.pharmacy.clone(),
        note: open(key, &request_context(r.id, "note"), r.note.as_deref()),
        fee_cents: r.fee_cents,
        ready_by: r.ready_by.clone(),
        outcome: r.outcome.clone(),
        decline_reason: open(key, &request_context(r.id, "decline_reason"), r.decline_reason.as_deref()),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

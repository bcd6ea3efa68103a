//! Reading a record: the patient sees what their practice released (never a held or hidden
//! item, nor a category the practice keeps back), in every view; clinical staff of the practice
//! that sent it see all of it, held and hidden items marked, and their reads of hidden items are
//! marked as such in the patient's history. Releasing, hiding and the practice's rules are here
//! too.

use super::fhir::Resource;
use super::{Records, open_content, open_note};
use crate::audit::{Caller, Outcome, Target};
use crate::{App, AppError};
use authz::{Grant, ListHeldResults, ReadRecord, ReadRecords, ViewPatient};
use crypto::fields::FieldKey;
use domain::{Access, Module, ObjectKind, PatientId, PracticeId, RecordCategory, RecordId, UnixTime, Verb};
use std::collections::HashMap;
use store::{RecordFilter, RecordKeyGrant, RecordRow, RecordRules};

/// Most items one view opens.
pub const MAX_ITEMS: i64 = 2000;
/// The newest results the summary shows.
const SUMMARY_RESULTS: i64 = 5;

/// One item of a record, opened.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordItem {
    /// Its id.
    pub id: RecordId,
    /// Whose.
    pub patient: PatientId,
    /// The practice that sent it.
    pub practice: PracticeId,
    /// Its category.
    pub category: RecordCategory,
    /// The sending system's version.
    pub version: i64,
    /// Its clinical date.
    pub effective: Option<String>,
    /// The resource.
    pub resource: Resource,
    /// Held, awaiting a clinician (staff views only ever show this true).
    pub held: bool,
    /// When it releases itself, if the practice chose that.
    pub auto_release_at: Option<UnixTime>,
    /// Hidden from the patient (staff views only).
    pub hidden: bool,
    /// Why it was hidden (staff views only).
    pub hidden_reason: Option<String>,
    /// Removed by the sending system (staff views only).
    pub removed: bool,
    /// The clinician's note to the patient.
    pub release_note: Option<String>,
    /// When it was released.
    pub released_at: Option<UnixTime>,
    /// The report it belongs to.
    pub group: Option<RecordId>,
    /// When it arrived.
    pub created_at: UnixTime,
    /// When it last changed.
    pub updated_at: UnixTime,
}

/// A patient's record as one person may see it.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The items, newest first.
    pub items: Vec<RecordItem>,
    /// The categories shown (for a patient: those their practices release; staff: all).
    pub categories: Vec<RecordCategory>,
    /// Whether this is a clinician's view (held and hidden items included, marked).
    pub staff: bool,
    /// How many items of each category the view holds (the summary opens only what it shows).
    pub counts: Vec<(RecordCategory, usize)>,
}

/// What a view of the record opens: every item, or what the summary shows (allergies,
/// conditions, medications, recalls and the five newest results; the rest only counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    All,
    Summary,
}

/// One point of a result's trend.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// The item.
    pub id: RecordId,
    /// Its date (`YYYY-MM-DD…`).
    pub date: String,
    /// Its value.
    pub value: f64,
}

/// One item with what goes with it.
#[derive(Debug, Clone)]
pub struct ItemView {
    /// The item.
    pub item: RecordItem,
    /// For a result: the same test over time, oldest first (visible ones only, for a patient).
    pub trend: Vec<TrendPoint>,
    /// For a report: its results.
    pub members: Vec<RecordItem>,
    /// Whether this is a clinician's view.
    pub staff: bool,
}

impl RecordItem {
    /// The item as a FHIR resource Tiaki gives out: its id is Tiaki's, its version the sending
    /// system's, its patient `Patient/<Tiaki's patient id>`; a report's results are their own
    /// resources. In a clinician's view, held and hidden items carry a `meta.tag` saying so.
    #[must_use]
    pub fn as_fhir(&self) -> Resource {
        self.clone().into_fhir()
    }

    /// [`RecordItem::as_fhir`], taking the item.
    #[must_use]
    pub fn into_fhir(self) -> Resource {
        let mut r = self.resource;
        let (id, meta) = r.id_meta();
        *id = Some(self.id.to_string());
        let mut tags = Vec::new();
        for (on, code, display) in [
            (self.held, "held", "Held until a clinician releases it"),
            (self.hidden, "hidden", "Hidden from the patient"),
            (self.removed, "removed", "Removed by the sending system"),
        ] {
            if on {
                tags.push(super::fhir::Coding {
                    system: Some("https://tiaki.nz/fhir/CodeSystem/release".into()),
                    code: Some(code.into()),
                    display: Some(display.into()),
                });
            }
        }
        *meta = Some(super::fhir::Meta { version_id: Some(self.version.to_string()), last_updated: None, tag: tags });
        if let Some((_, subject)) = r.subject_mut() {
            *subject = Some(super::fhir::Reference {
                reference: Some(format!("Patient/{}", self.patient)),
                ..Default::default()
            });
        }
        if let Resource::DiagnosticReport(d) = &mut r {
            d.result.clear();
        }
        r
    }
}

/// An item opened for one reader. A patient's view carries no marks: what they see was released
/// to them (an item that released itself after the practice's days is simply released) and is
/// not hidden; the reason for hiding is the practice's alone.
fn item(key: &FieldKey, row: RecordRow, staff: bool) -> Result<RecordItem, AppError> {
    let resource = open_content(key, &row)?;
    let release_note = row.release_note.as_deref().and_then(|n| open_note(key, &row, "release_note", n));
    let hidden_reason =
        if staff { row.hidden_reason.as_deref().and_then(|n| open_note(key, &row, "hidden_reason", n)) } else { None };
    Ok(RecordItem {
        id: row.id,
        patient: row.patient,
        practice: row.practice,
        category: row.category,
        version: row.version,
        effective: row.effective,
        resource,
        held: staff && row.held,
        auto_release_at: row.auto_release_at.filter(|_| staff),
        hidden: staff && row.hidden_at.is_some(),
        hidden_reason,
        removed: row.removed,
        release_note,
        released_at: row.released_at,
        group: row.group,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

impl App {
    /// The rules of the patient's practices, and of any other practice the rows came from (a
    /// practice they have left): one read, and one more per such practice.
    async fn rules_for(
        &self,
        grant: RecordKeyGrant<'_>,
        rows: &[RecordRow],
    ) -> Result<(HashMap<PracticeId, RecordRules>, Vec<PracticeId>), AppError> {
        let enrolled = self.store.patient_record_rules(grant).await?;
        let ids: Vec<PracticeId> = enrolled.iter().map(|(p, _)| *p).collect();
        let mut rules: HashMap<PracticeId, RecordRules> = enrolled.into_iter().collect();
        for r in rows {
            if let std::collections::hash_map::Entry::Vacant(slot) = rules.entry(r.practice) {
                slot.insert(self.store.record_rules(r.practice).await?);
            }
        }
        Ok((rules, ids))
    }

    /// The rows a patient may see, under each practice's rules; and the categories their
    /// practices release (the defaults when they are enrolled nowhere).
    async fn visible_with_categories(
        &self,
        grant: RecordKeyGrant<'_>,
        rows: Vec<RecordRow>,
    ) -> Result<(Vec<RecordRow>, Vec<RecordCategory>, HashMap<PracticeId, RecordRules>), AppError> {
        let (rules, ids) = self.rules_for(grant, &rows).await?;
        let now = self.now();
        let enrolled: Vec<&RecordRules> = ids.iter().filter_map(|p| rules.get(p)).collect();
        let mut categories: Vec<RecordCategory> = if enrolled.is_empty() {
            RecordCategory::DEFAULT_RELEASED.to_vec()
        } else {
            enrolled.iter().flat_map(|r| r.categories.iter().copied()).collect()
        };
        categories.sort();
        categories.dedup();
        let rows = rows
            .into_iter()
            .filter(|r| rules.get(&r.practice).is_some_and(|ru| r.visible_to_patient(ru, now)))
            .collect();
        Ok((rows, categories, rules))
    }

    /// The rows a patient may see, under each practice's rules.
    pub(crate) async fn visible(
        &self,
        grant: RecordKeyGrant<'_>,
        rows: Vec<RecordRow>,
    ) -> Result<Vec<RecordRow>, AppError> {
        if rows.is_empty() {
            return Ok(rows);
        }
        Ok(self.visible_with_categories(grant, rows).await?.0)
    }

    /// The read events: the record's (or item's), and a hidden-item read for each hidden item a
    /// clinician was shown (so the patient's history says so).
    fn read_events<A: authz::Action>(
        &self,
        caller: &Caller,
        grant: &Grant<A>,
        rows: &[RecordRow],
        staff: bool,
    ) -> Vec<store::AuditEvent> {
        let mut events = vec![self.event(caller, &Target::of(grant), Outcome::Allowed)];
        for i in rows.iter().filter(|r| staff && r.hidden_at.is_some()) {
            let t = Target {
                access: Access::new(Module::Records, ObjectKind::HiddenHealthRecord, Verb::Read),
                object_id: i.id.to_string(),
                patient: Some(i.patient),
                practice: Some(i.practice),
            };
            events.push(self.event(caller, &t, Outcome::Allowed));
        }
        events
    }
}

impl Records<'_> {
    /// A patient's record (all of it, or one category): for the patient, what was released to
    /// them; for clinical staff of their practice, what it sent, held and hidden items marked.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else; [`AppError::Gone`] once the record was erased.
    pub async fn record(
        &self,
        caller: &Caller,
        patient: PatientId,
        category: Option<RecordCategory>,
    ) -> Result<Summary, AppError> {
        self.view(caller, patient, category, Opening::All).await
    }

    /// The summary of a patient's record: its allergies, conditions, medications and recalls,
    /// the five newest results, and how many items each category holds.
    ///
    /// # Errors
    /// As [`Records::record`].
    pub async fn summary(&self, caller: &Caller, patient: PatientId) -> Result<Summary, AppError> {
        self.view(caller, patient, None, Opening::Summary).await
    }

    async fn view(
        &self,
        caller: &Caller,
        patient: PatientId,
        category: Option<RecordCategory>,
        opening: Opening,
    ) -> Result<Summary, AppError> {
        let app = self.app;
        let grant = app.decide::<ReadRecords>(caller, patient).await?;
        app.guard_module(domain::detection::Switchable::Records, Some(patient), None).await?;
        let staff = grant.via_practice().is_some();
        // The summary reads only what it shows, and counts the rest in the database.
        let (rows, grouped) = if opening == Opening::Summary {
            let (mut rows, counts) = app.store.record_summary(&grant, app.now(), SUMMARY_RESULTS).await?;
            rows.sort_by(|a, b| {
                (b.effective.as_deref().unwrap_or(""), b.created_at)
                    .cmp(&(a.effective.as_deref().unwrap_or(""), a.created_at))
            });
            (rows, Some(counts))
        } else {
            (app.store.patient_records(&grant, RecordFilter { category, limit: MAX_ITEMS }).await?, None)
        };
        let (rows, categories, rules) = if staff {
            (rows, RecordCategory::ALL.to_vec(), HashMap::new())
        } else {
            app.visible_with_categories(RecordKeyGrant::Read(&grant), rows).await?
        };
        if category.is_some_and(|c| !categories.contains(&c)) {
            return Err(app.refuse_seen(caller, &grant).await);
        }
        // The read (and each hidden item a clinician is shown) and the key's unwrap go on the
        // record in one write, before anything is opened.
        let mut events = app.read_events(caller, &grant, &rows, staff);
        let stored_key =
            if rows.is_empty() { None } else { app.store.records_key(RecordKeyGrant::Read(&grant)).await? };
        if let Some((rk, _)) = &stored_key {
            events.push(app.unwrap_event(caller, patient, rk.key_version));
        }
        app.audit(events).await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut counts: Vec<(RecordCategory, usize)> = categories.iter().map(|c| (*c, 0)).collect();
        if let Some(grouped) = &grouped {
            // Counted in the database; for a patient, only where their practice releases it.
            for (practice, category, n) in grouped {
                let released = staff || rules.get(practice).is_some_and(|r| r.categories.contains(category));
                if let Some((_, total)) = counts.iter_mut().find(|(c, _)| c == category).filter(|_| released) {
                    *total += usize::try_from(*n).unwrap_or(0);
                }
            }
        }
        if let Some(stored) = stored_key {
            let key = app.unwrap_records_key(stored)?;
            let mut results = 0;
            for r in rows {
                if let Some((_, n)) = counts.iter_mut().find(|(c, _)| *c == r.category).filter(|_| grouped.is_none()) {
                    *n += 1;
                }
                let open = opening == Opening::All
                    || match r.category {
                        RecordCategory::Results => {
                            results += 1;
                            results <= 5
                        }
                        RecordCategory::Allergies
                        | RecordCategory::Conditions
                        | RecordCategory::Medications
                        | RecordCategory::Recalls => true,
                        RecordCategory::Immunisations | RecordCategory::Notes => false,
                    };
                if open {
                    items.push(item(&key, r, staff)?);
                }
            }
        }
        Ok(Summary { items, categories, staff, counts })
    }

    /// One item: a result with its trend, a report with its results.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone who may not see it (for the patient: held, hidden, in
    /// a category their practice keeps back, or removed).
    pub async fn item(&self, caller: &Caller, id: RecordId) -> Result<ItemView, AppError> {
        let app = self.app;
        let grant = app.decide::<ReadRecord>(caller, id).await?;
        let staff = grant.via_practice().is_some();
        let row = app.store.record(&grant).await?;
        let patient = row.patient;
        app.guard_module(domain::detection::Switchable::Records, Some(patient), None).await?;
        if !staff && app.visible(RecordKeyGrant::ReadOne(&grant), vec![row.clone()]).await?.is_empty() {
            return Err(app.refuse_seen(caller, &grant).await);
        }
        let list_grant = app.decide::<ReadRecords>(caller, patient).await?;
        // The read (a clinician's of a hidden item, marked so) and the key's unwrap, in one
        // write before anything is opened.
        let mut events = app.read_events(caller, &grant, std::slice::from_ref(&row), staff);
        if staff && row.hidden_at.is_some() {
            events.remove(0); // the hidden-item read stands for it
        }
        let stored_key = app
            .store
            .records_key(RecordKeyGrant::ReadOne(&grant))
            .await?
            .ok_or_else(|| AppError::Internal("a record without a records key".into()))?;
        events.push(app.unwrap_event(caller, patient, stored_key.0.key_version));
        app.audit(events).await?;
        let key = app.unwrap_records_key(stored_key)?;
        let this = item(&key, row, staff)?;
        let mut trend = Vec::new();
        let mut members = Vec::new();
        let related = matches!(this.resource, Resource::Observation(_) | Resource::DiagnosticReport(_));
        if related {
            let rows = app
                .store
                .patient_records(
                    &list_grant,
                    RecordFilter { category: Some(RecordCategory::Results), limit: MAX_ITEMS },
                )
                .await?;
            let rows = if staff { rows } else { app.visible(RecordKeyGrant::ReadOne(&grant), rows).await? };
            let test = match &this.resource {
                Resource::Observation(o) => o.code.as_ref().map(super::fhir::CodeableConcept::key),
                _ => None,
            };
            for r in rows {
                if r.id == this.id && test.is_none() {
                    continue;
                }
                let other = item(&key, r, staff)?;
                if other.group == Some(this.id) {
                    members.push(other.clone());
                }
                if let (Some(t), Resource::Observation(o)) = (&test, &other.resource)
                    && !other.removed
                    && o.code.as_ref().map(super::fhir::CodeableConcept::key).as_ref() == Some(t)
                    && let (Some(v), Some(d)) =
                        (o.value_quantity.as_ref().and_then(|q| q.value), other.effective.clone())
                {
                    trend.push(TrendPoint { id: other.id, date: d, value: v });
                }
            }
            trend.sort_by(|a, b| a.date.cmp(&b.date));
            members.sort_by(|a, b| a.effective.cmp(&b.effective));
        }
        Ok(ItemView { item: this, trend, members, staff })
    }

    /// The practice's results awaiting a clinician, oldest first, with whose each is (name, NHI).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the practice's clinical staff.
    pub async fn held_results(
        &self,
        caller: &Caller,
        practice: PracticeId,
    ) -> Result<Vec<(RecordItem, String, String)>, AppError> {
        let app = self.app;
        let grant = app.decide::<ListHeldResults>(caller, practice).await?;
        app.guard_module(domain::detection::Switchable::Records, None, Some(practice)).await?;
        let rows = app.store.held_results(&grant, app.now(), 200).await?;
        let mut keys: HashMap<PatientId, (FieldKey, String, String)> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        let mut events = vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)];
        for r in rows {
            #[expect(clippy::map_entry, reason = "the entry cannot be held across the awaits")]
            if !keys.contains_key(&r.patient) {
                let Some(key) =
                    app.open_records_key(caller, r.patient, RecordKeyGrant::Held(&grant, r.patient)).await?
                else {
                    continue;
                };
                let vg = app.decide::<ViewPatient>(caller, r.patient).await?;
                let p = app.store.patient(&vg).await?;
                keys.insert(r.patient, (key, p.name, p.nhi));
                events.push(app.event(
                    caller,
                    &Target::of(&grant).about(&r.patient).with_patient(r.patient),
                    Outcome::Allowed,
                ));
            }
            if let Some((key, name, nhi)) = keys.get(&r.patient) {
                out.push((item(key, r, true)?, name.clone(), nhi.clone()));
            }
        }
        app.audit(events).await?;
        Ok(out)
    }
}

//! What the practice decides a patient sees: releasing held results (and telling the patient,
//! never what they are), hiding items, the practice's release rules, and the job that announces
//! results a practice's days released.

use super::{Records, seal_note};
use crate::audit::{Caller, Outcome, Target};
use crate::notify::{Notice, NoticeKind};
use crate::{App, AppError};
use authz::{HideRecord, ReadRecord, ReleaseRecord, SetRecordRules, UnhideRecord};
use domain::{PatientId, PracticeId, RecordCategory, RecordId};
use std::collections::HashMap;
use store::{RecordKeyGrant, RecordRules};

impl Records<'_> {
    /// Releases a held result (a report with its results) to the patient, with an optional note
    /// to them, and tells them a new result is in their record — without saying what it is.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the sending practice's clinicians;
    /// [`AppError::Conflict`] when it is not held.
    pub async fn release(&self, caller: &Caller, id: RecordId, note: &str) -> Result<(), AppError> {
        let app = self.app;
        // The policy first: a stranger is told "not found", whatever the form held.
        let grant = app.decide::<ReleaseRecord>(caller, id).await?;
        let note = note.trim();
        if note.chars().count() > 2000 {
            return Err(AppError::field("note", "Keep the note to the patient under 2,000 characters."));
        }
        let patient = grant.patient().ok_or(AppError::NotFound)?;
        let by = caller.principal.account().ok_or(AppError::NotFound)?;
        let sealed = if note.is_empty() {
            None
        } else {
            let key = app
                .open_records_key(caller, patient, RecordKeyGrant::Release(&grant))
                .await?
                .ok_or(AppError::NotFound)?;
            Some(seal_note(&key, id, "release_note", note)?)
        };
        app.audit(vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
        if app.store.release_record(&grant, by, sealed.as_deref(), app.now()).await? == 0 {
            return Err(AppError::Conflict("This result is not awaiting release (it was released already).".into()));
        }
        // The patient is told only of what they can now see: not of a result hidden from them,
        // nor of one in a category their practice keeps back.
        let read = app.decide::<ReadRecord>(caller, id).await?;
        let row = app.store.record(&read).await?;
        let visible = !app.visible(RecordKeyGrant::ReadOne(&read), vec![row]).await?.is_empty();
        if visible {
            // In the inbox of the patient (and of anyone acting for them with the records scope
            // at this practice); emailed as "something new", nothing more.
            let notice = Notice {
                kind: NoticeKind::Results,
                title: "A new result is in your health record",
                link: Some(format!("/records/{id}")),
                practice: grant.via_practice(),
            };
            let mail = app.news(patient, &notice).await?;
            app.tell(&mail).await?;
        }
        Ok(())
    }

    /// Hides an item from the patient (and anyone acting for them), with a reason for the
    /// practice; or shows it again.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the sending practice's clinicians;
    /// [`AppError::Invalid`] without a reason; [`AppError::Conflict`] when already so.
    pub async fn set_hidden(&self, caller: &Caller, id: RecordId, hide: bool, reason: &str) -> Result<(), AppError> {
        let app = self.app;
        let conflict = |e: store::StoreError| match e {
            store::StoreError::Conflict(what) => AppError::Conflict(format!("{what}.")),
            other => other.into(),
        };
        if hide {
            let grant = app.decide::<HideRecord>(caller, id).await?;
            let reason = reason.trim();
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(AppError::field(
                    "reason",
                    "Say why it is hidden (at most 500 characters): your colleagues will see it.",
                ));
            }
            let patient = grant.patient().ok_or(AppError::NotFound)?;
            let by = caller.principal.account().ok_or(AppError::NotFound)?;
            let key =
                app.open_records_key(caller, patient, RecordKeyGrant::Hide(&grant)).await?.ok_or(AppError::NotFound)?;
            let sealed = seal_note(&key, id, "hidden_reason", reason)?;
            app.audit(vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
            app.store.hide_record(&grant, by, &sealed, app.now()).await.map_err(conflict)
        } else {
            let grant = app.decide::<UnhideRecord>(caller, id).await?;
            app.audit(vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
            app.store.unhide_record(&grant, app.now()).await.map_err(conflict)
        }
    }

    /// The practice's release rules (its admins).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else.
    pub async fn rules(&self, caller: &Caller, practice: PracticeId) -> Result<RecordRules, AppError> {
        let _grant = self.app.decide::<SetRecordRules>(caller, practice).await?;
        Ok(self.app.store.record_rules(practice).await?)
    }

    /// Sets what the practice releases to its patients, and after how many days results release
    /// themselves (none: only when a clinician releases them).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but its admins; [`AppError::Invalid`] for a day count
    /// outside 0–365.
    pub async fn set_rules(
        &self,
        caller: &Caller,
        practice: PracticeId,
        categories: &[RecordCategory],
        auto_release_days: Option<i64>,
    ) -> Result<(), AppError> {
        let grant = self.app.decide::<SetRecordRules>(caller, practice).await?;
        if auto_release_days.is_some_and(|d| !(0..=365).contains(&d)) {
            return Err(AppError::field(
                "auto_release_days",
                "Give a number of days from 0 to 365, or leave it empty.",
            ));
        }
        self.app.audit(vec![self.app.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
        let mut categories = categories.to_vec();
        categories.sort();
        categories.dedup();
        let rules = RecordRules { categories, auto_release_days };
        Ok(self.app.store.set_record_rules(&grant, &rules, self.app.now()).await?)
    }
}

impl App {
    /// Tells each patient, once, that results their practice's rule released after its days are
    /// in their record — without saying what they are; items hidden from them, or in a category
    /// their practice keeps back, are marked as told without a notice. Returns how many patients
    /// were told. (A clinician's release tells the patient at once: `Records::release`.)
    ///
    /// # Errors
    /// When storage fails.
    pub(crate) async fn tell_auto_released(&self) -> Result<usize, AppError> {
        let now = self.now();
        let mut told = 0;
        loop {
            let batch = self.store.auto_released_untold(now, 500).await?;
            if batch.is_empty() {
                return Ok(told);
            }
            let mut rules: HashMap<PracticeId, RecordRules> = HashMap::new();
            let mut patients: Vec<(PatientId, PracticeId)> = Vec::new();
            for (_, patient, practice, category, hidden) in &batch {
                if let std::collections::hash_map::Entry::Vacant(slot) = rules.entry(*practice) {
                    slot.insert(self.store.record_rules(*practice).await?);
                }
                let released = rules.get(practice).is_some_and(|r| r.categories.contains(category));
                if released && !hidden && !patients.contains(&(*patient, *practice)) {
                    patients.push((*patient, *practice));
                }
            }
            for (patient, practice) in &patients {
                let notice = Notice {
                    kind: NoticeKind::Results,
                    title: "A new result is in your health record",
                    link: Some(format!("/patients/{patient}/records/results")),
                    practice: Some(*practice),
                };
                let mail = self.news(*patient, &notice).await?;
                self.tell(&mail).await?;
                told += mail.iter().filter(|m| m.deliver).count();
            }
            let ids: Vec<RecordId> = batch.iter().map(|(id, ..)| *id).collect();
            self.store.mark_told(&ids, now).await?;
        }
    }
}

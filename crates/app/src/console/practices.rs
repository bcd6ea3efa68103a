//! The console's practice work: practices and staff made at the console, and enrolments that
//! hand back the activation link (for `tiaki demo`; staff never see a patient's link).

use super::Console;
use crate::audit::{Caller, Outcome, Target};
use crate::{AppError, EnrolForm, Enrolled, InviteStaffForm, PracticeForm};
use authz::Platform;
use domain::PracticeId;
use store::PracticeRow;

impl Console<'_> {
    /// Creates a practice from the console; returns it and its admin's invitation link.
    ///
    /// # Errors
    /// As for [`App::create_practice`].
    pub async fn create_practice(&self, form: &PracticeForm) -> Result<(PracticeId, String), AppError> {
        let target = Target::console::<authz::CreatePractice>(Platform);
        self.app
            .audit(vec![self.app.event(&Caller::console(authz::Principal::Anonymous), &target, Outcome::Allowed)])
            .await?;
        self.app.create_practice_with(&authz::console::manage_practices(), form, None).await
    }

    /// Invites staff to a practice from the console; returns the invitation link.
    ///
    /// # Errors
    /// As for [`App::invite_staff`].
    pub async fn invite_staff(&self, practice: PracticeId, form: &InviteStaffForm) -> Result<String, AppError> {
        if self.app.store.practice(practice).await?.is_none() {
            return Err(AppError::NotFound);
        }
        let target = Target::console::<authz::InviteStaff>(practice);
        self.app
            .audit(vec![self.app.event(&Caller::console(authz::Principal::Anonymous), &target, Outcome::Allowed)])
            .await?;
        self.app.invite_staff_with(&authz::console::manage_staff(practice), practice, form).await
    }

    /// Finds a practice by its HPI facility id (for the console).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn practice_by_hpi(&self, hpi: &str) -> Result<Option<PracticeRow>, AppError> {
        let all = self.app.store.list_practices(&authz::console::manage_practices()).await?;
        let wanted = hpi.trim().to_ascii_uppercase();
        Ok(all.into_iter().map(|s| s.practice).find(|p| p.hpi_facility_id == wanted))
    }

    /// Enrols a patient, returning the activation link too (for the console's `demo`; the web
    /// never shows a patient's link to staff).
    ///
    /// # Errors
    /// As for [`App::enrol_patient`].
    pub async fn enrol_with_link(
        &self,
        who: &Caller,
        practice: PracticeId,
        form: &EnrolForm,
    ) -> Result<(Enrolled, String), AppError> {
        self.app.enrol_returning_link(who, practice, form).await
    }

    /// Removes someone from a practice's staff from the console: as when the practice's admin
    /// does it (account disabled, sessions ended, links void, holder told).
    ///
    /// # Errors
    /// [`AppError::Invalid`] when the email is not current staff of that practice.
    pub async fn remove_staff(&self, practice: PracticeId, email: &str) -> Result<(), AppError> {
        let not_staff = || AppError::field("email", "That person is not on this practice's staff.");
        let account = self.app.account_named(email).await.map_err(|_| not_staff())?;
        let caller = Caller::console(authz::Principal::Anonymous);
        let target = Target::console::<authz::RemoveStaff>(practice);
        let grant = authz::console::manage_staff(practice);
        match self.app.change_staff_with(&grant, &caller, target, account.id, store::StaffChange::Remove).await {
            Err(AppError::Invalid(_)) => Err(not_staff()),
            other => other,
        }
    }

    /// Ends a patient's enrolment at a practice from the console (`tiaki admin unenrol`): as
    /// when the practice's admin does it (its staff lose access at once, the patient is told).
    ///
    /// # Errors
    /// [`AppError::Invalid`] for an unknown practice or NHI, or a patient not enrolled there.
    pub async fn unenrol(&self, practice_hpi: &str, nhi: &str) -> Result<(), AppError> {
        let practice = self
            .practice_by_hpi(practice_hpi)
            .await?
            .ok_or_else(|| AppError::field("practice", "No practice has that HPI facility id."))?;
        let patient =
            self.app.console_patient(nhi).await.map_err(|_| AppError::field("nhi", "No patient has that NHI."))?;
        let grant = authz::console::unenrol(patient, practice.id);
        let caller = Caller::console(authz::Principal::Anonymous);
        match self.app.end_enrolment(&caller, Target::of(&grant), store::EnrolmentGrant::from(&grant)).await {
            Err(AppError::NotFound) => Err(AppError::field("nhi", "That patient is not enrolled at this practice.")),
            other => other.map(|_| ()),
        }
    }
}

impl Console<'_> {
    /// A caller acting as a patient (their account, a session that is no session), for the work
    /// `tiaki demo` and the benchmarks do in patients' names: booking, asking for repeats.
    /// Everything it does still goes through the policy and the access log.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such patient.
    pub async fn as_patient(&self, patient: domain::PatientId) -> Result<Caller, AppError> {
        let row = self.app.store.patient(&authz::console::view_patient(patient)).await?;
        Ok(Caller::console(authz::Principal::Patient {
            account: row.account,
            session: domain::SessionId::random(),
            patient: row.id,
        }))
    }
}

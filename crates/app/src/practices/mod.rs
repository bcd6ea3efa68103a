//! Practices, their staff and their patients: what operators and practice staff do.

mod enrolment;
mod views;

pub use enrolment::{EnrolForm, Enrolled};

pub use views::{AwaitingPatient, EnrolmentRequest, Patient, Practice, PracticeSummary, StaffMember};

use crate::audit::{Caller, Outcome, Target};
use crate::notify::texts;
use crate::notify::texts::Security;
use crate::{App, AppError, FieldError};
use authz::{ListPracticePatients, ManagePractices, ManageStaff, Platform, ViewPatient};
use domain::{
    AccountId, AccountKind, Email, HpiFacilityId, PatientId, PersonName, PracticeId, PracticeName, Region, StaffRole,
    Verb,
};
use serde::Deserialize;
use store::{InvitationPurpose, NewAccount, NewPractice, StaffChange};

/// Patients on one page of a practice's list.
pub const PATIENTS_PER_PAGE: i64 = 50;

/// One page of a practice's patients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientList {
    /// The patients on this page.
    pub patients: Vec<Patient>,
    /// How many match in all.
    pub total: i64,
    /// This page, from 1.
    pub page: i64,
    /// How many pages there are (at least 1).
    pub pages: i64,
    /// The search the page is for (empty: everyone).
    pub search: String,
}

/// The practices module's use cases, on the application's shared parts: [`App::practices`].
#[derive(Debug, Clone, Copy)]
pub struct Practices<'a> {
    app: &'a App,
}

impl App {
    /// The practices module: practices, their staff, enrolling patients, a patient's record.
    #[must_use]
    pub const fn practices(&self) -> Practices<'_> {
        Practices { app: self }
    }
}

/// The operator's "new practice" form.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PracticeForm {
    /// The practice's name.
    pub name: String,
    /// Its HPI facility id.
    pub hpi_facility_id: String,
    /// Its region.
    pub region: String,
    /// The name of its first practice admin.
    pub admin_name: String,
    /// Their email; they are sent an invitation.
    pub admin_email: String,
}

/// The practice admin's "invite staff" form.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InviteStaffForm {
    /// Their name.
    pub name: String,
    /// Their email.
    pub email: String,
    /// `gp`, `nurse`, `admin` or `privacy_officer`.
    pub role: String,
}

pub(super) fn check<T, E: std::fmt::Display>(
    errors: &mut Vec<FieldError>,
    field: &'static str,
    r: Result<T, E>,
) -> Option<T> {
    r.map_err(|e| errors.push(FieldError { field, message: e.to_string() })).ok()
}

impl App {
    pub(crate) async fn create_practice_with(
        &self,
        grant: &authz::Grant<ManagePractices>,
        form: &PracticeForm,
        who: Option<&Caller>,
    ) -> Result<(PracticeId, String), AppError> {
        let mut errors = Vec::new();
        let name = check(&mut errors, "name", PracticeName::parse(&form.name));
        let hpi = check(&mut errors, "hpi_facility_id", HpiFacilityId::parse(&form.hpi_facility_id));
        let region = check(&mut errors, "region", Region::parse(&form.region));
        let admin_name = check(&mut errors, "admin_name", PersonName::parse(&form.admin_name));
        let admin_email = check(&mut errors, "admin_email", Email::parse(&form.admin_email));
        let (Some(name), Some(hpi), Some(region), Some(admin_name), Some(admin_email)) =
            (name, hpi, region, admin_name, admin_email)
        else {
            return Err(AppError::Invalid(errors));
        };
        if self.store.account_by_email(admin_email.as_str()).await?.is_some() {
            return Err(AppError::field("admin_email", "This email address is already in use."));
        }
        let practice =
            NewPractice { id: PracticeId::random(), name, hpi_facility_id: hpi, region, created_at: self.now() };
        self.store.create_practice(grant, &practice).await?;
        tracing::info!(event = "practice.created", practice = %practice.id, "practice created");
        let staff_grant = match who {
            Some(who) => self.authorize::<authz::InviteStaff>(who, practice.id).await?.implied(),
            None => authz::console::manage_staff(practice.id),
        };
        let link = self.invite(&staff_grant, practice.name.as_str(), admin_name, admin_email, StaffRole::Admin).await?;
        Ok((practice.id, link))
    }

    pub(crate) async fn invite_staff_with(
        &self,
        grant: &authz::Grant<ManageStaff>,
        practice: PracticeId,
        form: &InviteStaffForm,
    ) -> Result<String, AppError> {
        let mut errors = Vec::new();
        let name = check(&mut errors, "name", PersonName::parse(&form.name));
        let email = check(&mut errors, "email", Email::parse(&form.email));
        let role = check(&mut errors, "role", StaffRole::parse(&form.role));
        let (Some(name), Some(email), Some(role)) = (name, email, role) else {
            return Err(AppError::Invalid(errors));
        };
        let practice_name = self.store.practice(practice).await?.ok_or(AppError::NotFound)?.name;
        self.invite(grant, &practice_name, name, email, role).await
    }

    async fn invite(
        &self,
        grant: &authz::Grant<ManageStaff>,
        practice: &str,
        name: PersonName,
        email: Email,
        role: StaffRole,
    ) -> Result<String, AppError> {
        let (code, mut invite) = self.new_invitation(InvitationPurpose::JoinStaff)?;
        let now = self.now();
        let days = self.invitation_days();
        let text = texts::Email::StaffInvitation { practice, role: role.label(), code: &code, days };
        invite.mail = Some(texts::mail(email.as_str(), name.as_str(), &text, now));
        let account = NewAccount {
            id: AccountId::random(),
            kind: AccountKind::Staff,
            email,
            display_name: name,
            created_at: now,
        };
        self.store.invite_staff(grant, &account, role, &invite).await.map_err(|e| match AppError::from(e) {
            AppError::Conflict(m) => AppError::Invalid(vec![FieldError { field: "email", message: m }]),
            other => other,
        })?;
        tracing::info!(event = "staff.invited", practice = %grant.object(), account = %account.id, "staff invited");
        self.mail_waker.notify_one();
        Ok(code)
    }
}

impl Practices<'_> {
    /// A practice's public details, for page headings.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn practice(&self, id: PracticeId) -> Result<Option<Practice>, AppError> {
        Ok(self.app.store.practice(id).await?.map(Practice::from))
    }

    /// Every practice (operators).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator.
    pub async fn list(&self, who: &Caller) -> Result<Vec<PracticeSummary>, AppError> {
        let grant = self.app.authorize::<authz::ListPractices>(who, Platform).await?;
        Ok(self.app.store.list_practices(&grant.implied()).await?.into_iter().map(PracticeSummary::from).collect())
    }

    /// Creates a practice and invites its first admin (operators).
    ///
    /// # Errors
    /// [`AppError::Invalid`], [`AppError::Conflict`], or [`AppError::NotFound`] for non-operators.
    pub async fn create(&self, who: &Caller, form: &PracticeForm) -> Result<PracticeId, AppError> {
        let grant = self.app.authorize::<authz::CreatePractice>(who, Platform).await?;
        let (id, _link) = self.app.create_practice_with(&grant.implied(), form, Some(who)).await?;
        Ok(id)
    }

    /// The practice's staff (its admins, and operators).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else.
    pub async fn list_staff(&self, who: &Caller, practice: PracticeId) -> Result<Vec<StaffMember>, AppError> {
        let grant = self.app.authorize::<authz::ListStaff>(who, practice).await?;
        Ok(self.app.store.list_staff(&grant.implied()).await?.into_iter().map(StaffMember::from).collect())
    }

    /// Whether the practice requires its patients to use a second factor (its admins, and
    /// operators, see it).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else.
    pub async fn patients_need_mfa(&self, who: &Caller, practice: PracticeId) -> Result<bool, AppError> {
        let grant = authz::authorize::<ManageStaff, _>(&who.principal, practice, &*self.app.store).await?;
        Ok(self.app.store.patients_need_mfa(&grant).await?)
    }

    /// Turns on or off the practice's requirement that its patients use a second factor. Its
    /// patients without one are then asked, on every page, to set one up.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the practice's admins and operators;
    /// [`AppError::Invalid`] without a choice.
    pub async fn set_patients_need_mfa(
        &self,
        who: &Caller,
        practice: PracticeId,
        on: Option<bool>,
    ) -> Result<(), AppError> {
        let grant = self.app.authorize::<authz::SetPatientMfaPolicy>(who, practice).await?;
        let on = on.ok_or_else(|| AppError::field("on", "Choose whether to require a second step."))?;
        self.app.store.set_patients_need_mfa(&grant.implied(), on).await?;
        tracing::info!(practice = %practice, on, "the practice's second-factor requirement for patients changed");
        Ok(())
    }

    /// Invites a member of staff (the practice's admins, and operators).
    ///
    /// # Errors
    /// [`AppError::Invalid`], [`AppError::Conflict`], or [`AppError::NotFound`].
    pub async fn invite_staff(
        &self,
        who: &Caller,
        practice: PracticeId,
        form: &InviteStaffForm,
    ) -> Result<(), AppError> {
        let grant: authz::Grant<ManageStaff> = self.app.authorize::<authz::InviteStaff>(who, practice).await?.implied();
        if matches!(who.principal, authz::Principal::Operator { .. }) {
            // Operators set up a practice's admin, and only while it has none: an operator cannot
            // quietly give themselves a clinical account at a working practice.
            if StaffRole::parse(&form.role) != Ok(StaffRole::Admin) {
                return Err(AppError::field(
                    "role",
                    "Operators can only invite a practice admin; the practice invites its other staff.",
                ));
            }
            if self.app.store.list_staff(&grant).await?.iter().any(|s| s.role == StaffRole::Admin && s.active) {
                return Err(AppError::field(
                    "role",
                    "This practice already has an active admin, who invites its staff.",
                ));
            }
        }
        self.app.invite_staff_with(&grant, practice, form).await.map(|_| ())
    }

    /// Removes someone from the practice's staff (its admins; operators use `tiaki admin remove-staff`). From their next
    /// request, on every node, they have no access of any kind: the membership is marked
    /// removed, the account disabled, its sessions ended and its unused links voided, in one
    /// transaction; they are told by email. Admins cannot remove themselves (another admin, or
    /// the Tiaki team, can), so a practice is never left without anyone to manage it by mistake.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else; [`AppError::Invalid`] when the account is not
    /// current staff of this practice, or is the caller's own.
    pub async fn remove_staff(&self, who: &Caller, practice: PracticeId, account: &str) -> Result<(), AppError> {
        let grant = self.app.decide::<authz::RemoveStaff>(who, practice).await?;
        let account = staff_account(account)?;
        if who.principal.account() == Some(account) {
            return Err(AppError::field("staff", "You cannot remove yourself; ask another admin of the practice."));
        }
        self.app.change_staff_with(&grant.implied(), who, Target::of(&grant), account, StaffChange::Remove).await
    }

    /// Gives a member of the practice's staff another role (its admins), in
    /// effect from their next request.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else; [`AppError::Invalid`] for an unknown role, an
    /// account that is not current staff of this practice, or the caller's own.
    pub async fn change_staff_role(
        &self,
        who: &Caller,
        practice: PracticeId,
        account: &str,
        role: &str,
    ) -> Result<(), AppError> {
        let grant = self.app.decide::<authz::ChangeStaffRole>(who, practice).await?;
        let account = staff_account(account)?;
        let role = StaffRole::parse(role).map_err(|_| AppError::field("role", "Choose a role from the list."))?;
        if who.principal.account() == Some(account) {
            return Err(AppError::field(
                "staff",
                "You cannot change your own role; ask another admin of the practice.",
            ));
        }
        self.app.change_staff_with(&grant.implied(), who, Target::of(&grant), account, StaffChange::Role(role)).await
    }

    /// Ends a patient's enrolment at the admin's practice (its admins). From that moment its
    /// staff have no access to the patient; what the practice sent stays the patient's, and
    /// their account is theirs. The patient is told by email, naming the practice.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an admin of a practice the patient is enrolled at.
    pub async fn unenrol(&self, who: &Caller, patient: PatientId) -> Result<(), AppError> {
        let grant = self.app.decide::<authz::UnenrolPatient>(who, patient).await?;
        let enrolment = store::EnrolmentGrant::from(&grant);
        let account = self.app.end_enrolment(who, Target::of(&grant), enrolment).await?;
        let name = self.app.store.practice(enrolment.practice()).await?.map(|p| p.name).unwrap_or_default();
        self.app.notify(account, Security::EnrolmentEnded { practice: &name }).await
    }

    /// The patient leaves a practice. From that moment its staff have no access to them; what
    /// the practice sent stays theirs.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient, at a practice they are enrolled at.
    pub async fn leave(&self, who: &Caller, practice: PracticeId) -> Result<(), AppError> {
        let grant = self.app.decide::<authz::LeavePractice>(who, practice).await?;
        self.app.end_enrolment(who, Target::of(&grant), store::EnrolmentGrant::from(&grant)).await.map(|_| ())
    }

    /// A page of the patients enrolled at a practice (its staff), [`PATIENTS_PER_PAGE`] at a
    /// time, those whose name contains `search` or whose NHI starts with it (all when empty).
    /// One event per patient shown, written before the page is served — and only for those
    /// shown, so a busy practice's home page cannot flood the log (review #11).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else.
    pub async fn list_patients(
        &self,
        who: &Caller,
        practice: PracticeId,
        search: &str,
        page: i64,
    ) -> Result<PatientList, AppError> {
        let grant = self.app.decide::<ListPracticePatients>(who, practice).await?;
        let search: String = search.trim().chars().filter(|c| !c.is_control()).take(100).collect();
        let page = page.max(1);
        let query = store::PatientQuery {
            search: search.clone(),
            offset: (page - 1).saturating_mul(PATIENTS_PER_PAGE),
            limit: PATIENTS_PER_PAGE,
        };
        let (rows, total) = self.app.store.list_patients(&grant, &query).await?;
        let events = rows
            .iter()
            .map(|p| {
                self.app.event(
                    who,
                    &Target { patient: Some(p.id), ..Target::of(&grant).about(&p.id) },
                    Outcome::Allowed,
                )
            })
            .collect();
        self.app.audit(events).await?;
        Ok(PatientList {
            patients: rows.into_iter().map(Patient::from).collect(),
            total,
            page,
            pages: ((total + PATIENTS_PER_PAGE - 1) / PATIENTS_PER_PAGE).max(1),
            search,
        })
    }

    /// A patient's record: the patient themself, or staff of a practice they are enrolled at.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else, exactly as for a patient that does not exist.
    pub async fn view_patient(&self, who: &Caller, patient: PatientId) -> Result<(Patient, Vec<Practice>), AppError> {
        let grant = self.app.authorize::<ViewPatient>(who, patient).await?;
        let row = self.app.store.patient(&grant).await?;
        let mut practices = Vec::new();
        for id in authz::Relations::patient_practices(&*self.app.store, patient)
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .into_iter()
            // Staff see their own practice only: where else a patient is enrolled (a sexual
            // health or mental health service, say) is not theirs to know (review #25).
            .filter(|p| grant.via_practice().is_none_or(|own| own == *p))
        {
            if let Some(p) = self.app.store.practice(id).await? {
                practices.push(p.into());
            }
        }
        let mut row: Patient = row.into();
        if grant.by_proxy() {
            // Someone acting for the patient knows them by name and date of birth; their NHI
            // number and email are the patient's own.
            row.nhi = String::new();
            row.email = String::new();
        }
        Ok((row, practices))
    }
}

impl App {
    /// Ends an enrolment under its grant and records it (the patient's history shows it).
    pub(crate) async fn end_enrolment(
        &self,
        who: &Caller,
        target: Target,
        enrolment: store::EnrolmentGrant,
    ) -> Result<AccountId, AppError> {
        let target = Target { patient: Some(enrolment.patient()), practice: Some(enrolment.practice()), ..target };
        match self.store.end_enrolment(enrolment).await {
            Ok(account) => {
                self.audit(vec![self.event(who, &target, Outcome::Allowed)]).await?;
                Ok(account)
            }
            Err(store::StoreError::NotFound) => Err(AppError::NotFound),
            Err(e) => Err(e.into()),
        }
    }
}

/// The account a staff change names (a form field), after the policy has let the caller in.
fn staff_account(field: &str) -> Result<AccountId, AppError> {
    field.trim().parse().map_err(|_| AppError::field("staff", "That person is not on this practice's staff."))
}

impl App {
    /// Changes a member of staff under a grant to manage the practice's staff (a request's or
    /// the console's), recording it under `target` (the action asked for) naming the account.
    pub(crate) async fn change_staff_with(
        &self,
        grant: &authz::Grant<ManageStaff>,
        who: &Caller,
        target: Target,
        account: AccountId,
        change: StaffChange,
    ) -> Result<(), AppError> {
        let target = target.about(&account);
        match self.store.change_staff(grant, account, change, self.now()).await {
            Ok(()) => {}
            Err(store::StoreError::NotFound) => {
                self.audit(vec![self.event(who, &target, Outcome::NotFound)]).await?;
                return Err(AppError::field("staff", "That person is not on this practice's staff."));
            }
            Err(e) => return Err(e.into()),
        }
        let mut events = vec![self.event(who, &target, Outcome::Allowed)];
        if change == StaffChange::Remove {
            events.push(self.event(who, &Target::account(Verb::Disable, &account), Outcome::Allowed));
        }
        self.audit(events).await?;
        if change == StaffChange::Remove {
            self.notify(account, Security::StaffRemoved).await?;
        }
        Ok(())
    }
}

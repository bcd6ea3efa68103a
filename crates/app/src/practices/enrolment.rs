//! Enrolling patients: a new NHI gets a record, an account and an activation link; an NHI that
//! already has an account only gets a request its holder accepts or declines (issue 13).

use super::{AwaitingPatient, EnrolmentRequest, Practices, check};
use crate::audit::{Caller, Outcome, Target};
use crate::notify::texts;
use crate::notify::texts::Security;
use crate::{App, AppError, FieldError};
use authz::{EnrolPatient, ListPracticePatients};
use domain::{AccountId, DateOfBirth, Email, Nhi, PatientId, PersonName, PracticeId, Verb};
use serde::Deserialize;
use store::{InvitationPurpose, NewPatient};

/// What enrolling a patient did, as the practice may know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrolled {
    /// A new patient record and account; the activation link was emailed to them.
    New(PatientId),
    /// The patient was already enrolled at this practice; nothing changed.
    AlreadyEnrolled(PatientId),
    /// The NHI is already registered: the person will be asked to confirm, and nothing of this
    /// practice reaches their account until they do. The practice is told nothing more — not
    /// whether the name and date of birth it gave were right, nor the account's email.
    AwaitingConfirmation,
}

/// The "enrol a patient" form (also the JSON body of the enrolment API).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EnrolForm {
    /// Their NHI number.
    pub nhi: String,
    /// Their name.
    pub name: String,
    /// Their date of birth, `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// Their email; the activation link goes there.
    pub email: String,
}

impl App {
    /// Enrols a patient, returning the activation code too (for the console's `demo`; the web
    /// never shows a patient's code to staff).
    ///
    /// # Errors
    /// As for [`App::enrol_patient`].
    pub(crate) async fn enrol_returning_link(
        &self,
        who: &Caller,
        practice: PracticeId,
        form: &EnrolForm,
    ) -> Result<(Enrolled, String), AppError> {
        let grant = self.authorize::<EnrolPatient>(who, practice).await?; // the attempt, before anything changes
        let mut errors = Vec::new();
        let today = time::OffsetDateTime::from_unix_timestamp(self.now())
            .map(time::OffsetDateTime::date)
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let nhi = check(&mut errors, "nhi", Nhi::parse(&form.nhi));
        let name = check(&mut errors, "name", PersonName::parse(&form.name));
        let dob = check(&mut errors, "date_of_birth", DateOfBirth::parse(&form.date_of_birth, today));
        let email = check(&mut errors, "email", Email::parse(&form.email));
        let (Some(nhi), Some(name), Some(date_of_birth), Some(email)) = (nhi, name, dob, email) else {
            return Err(AppError::Invalid(errors));
        };
        let practice_name = self.store.practice(practice).await?.ok_or(AppError::NotFound)?.name;
        let (code, mut invite) = self.new_invitation(InvitationPurpose::ActivatePatient)?;
        let now = self.now();
        let days = self.invitation_days();
        let text = texts::Email::PatientActivation { practice: &practice_name, code: &code, days };
        invite.mail = Some(texts::mail(email.as_str(), name.as_str(), &text, now));
        let patient = NewPatient {
            id: PatientId::random(),
            account: AccountId::random(),
            nhi,
            name,
            date_of_birth,
            email,
            enrolled_by: who.principal.account(),
            at: now,
        };
        let outcome = self.store.enrol_patient(&grant, &patient, &invite).await.map_err(|e| match e {
            store::StoreError::Conflict("identity") => AppError::Invalid(vec![FieldError {
                field: "nhi",
                message: "This NHI number is registered with a different name or date of birth. Check them with the patient and their photo ID.".into(),
            }]),
            e => match AppError::from(e) {
                AppError::Conflict(m) => AppError::Invalid(vec![FieldError { field: "email", message: m }]),
                other => other,
            },
        })?;
        let answer = match outcome {
            store::Enrolled::New(id) | store::Enrolled::AlreadyEnrolled(id) => {
                // The enrolment itself, filed under the patient for their history.
                let t = Target { patient: Some(id), ..Target::of(&grant).about(&id) };
                self.audit(vec![self.event(who, &t, Outcome::Allowed)]).await?;
                if matches!(outcome, store::Enrolled::New(_)) {
                    Enrolled::New(id)
                } else {
                    Enrolled::AlreadyEnrolled(id)
                }
            }
            store::Enrolled::Requested { patient: id, identity_matched, fresh } => {
                // Filed under the patient, so their history shows which practice asked — and
                // one that asked with the wrong name or date of birth, which is worth knowing.
                let t = Target { patient: Some(id), ..Target::of(&grant).about(&id) };
                let outcome = if identity_matched { Outcome::Allowed } else { Outcome::Denied };
                self.audit(vec![self.event(who, &t, outcome)]).await?;
                if identity_matched && fresh {
                    self.ask_to_enrol(&grant, id, &practice_name).await?;
                } else {
                    // The same work as asking (the account read, one transaction), so the
                    // time taken says nothing about the guess either.
                    let account = self.store.patient_account(&grant, id).await?;
                    self.store.account(account).await?;
                    let decoy = crate::identity::credentials::new_token()?;
                    let hash = crate::identity::credentials::token_hash(&decoy);
                    self.store.spend_decoy_link(store::LinkKind::PasswordReset, &hash, now).await?;
                }
                Enrolled::AwaitingConfirmation
            }
        };
        tracing::info!(event = "patient.enrolled", practice = %practice, "patient enrolled");
        self.mail_waker.notify_one();
        Ok((answer, code))
    }

    /// Asks the holder of an existing patient account, by a notice to its verified email (and
    /// on their page in the portal), whether a practice may see their records. No link: they
    /// sign in as usual to answer.
    async fn ask_to_enrol(
        &self,
        grant: &authz::Grant<EnrolPatient>,
        patient: PatientId,
        practice_name: &str,
    ) -> Result<(), AppError> {
        let account = self.store.patient_account(grant, patient).await?;
        self.notify(account, Security::EnrolmentAsked { practice: practice_name }).await
    }
}

impl Practices<'_> {
    /// Enrols a patient whose identity the practice has checked, and emails them an activation
    /// link (practice admins, GPs and nurses).
    ///
    /// # Errors
    /// [`AppError::Invalid`] (every bad field at once), [`AppError::Conflict`], [`AppError::NotFound`].
    pub async fn enrol(&self, who: &Caller, practice: PracticeId, form: &EnrolForm) -> Result<Enrolled, AppError> {
        self.app.enrol_returning_link(who, practice, form).await.map(|(e, _)| e)
    }

    /// The practices asking to enrol the patient (the patient themself): each waits for them to
    /// accept or decline.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else.
    pub async fn enrolment_requests(
        &self,
        who: &Caller,
        patient: PatientId,
    ) -> Result<Vec<EnrolmentRequest>, AppError> {
        let grant = self.app.decide::<authz::ReviewEnrolmentRequests>(who, patient).await?;
        Ok(self.app.store.enrolment_requests(&grant, self.app.now()).await?.into_iter().map(Into::into).collect())
    }

    /// The patient accepts (the practice's staff see their record from now on) or declines a
    /// practice's request to enrol them. Recorded in their history either way; the practice is
    /// not told of a refusal.
    ///
    /// `answer` is `accept` or `decline`; returns whether they accepted.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient, or when no such request stands;
    /// [`AppError::Invalid`] for any other answer.
    pub async fn answer_enrolment_request(
        &self,
        who: &Caller,
        practice: PracticeId,
        answer: &str,
    ) -> Result<bool, AppError> {
        let grant = self.app.decide::<authz::AnswerEnrolmentRequest>(who, practice).await?;
        let accept = match answer {
            "accept" => true,
            "decline" => false,
            _ => {
                // A bad answer is explained only to someone a request stands for.
                let standing = match grant.patient() {
                    Some(p) => {
                        let review = self.app.decide::<authz::ReviewEnrolmentRequests>(who, p).await?;
                        self.app
                            .store
                            .enrolment_requests(&review, self.app.now())
                            .await?
                            .iter()
                            .any(|r| r.practice == practice)
                    }
                    None => false,
                };
                return Err(if standing {
                    AppError::field("answer", "Choose Accept or Decline.")
                } else {
                    AppError::NotFound
                });
            }
        };
        let verb = if accept { Verb::Accept } else { Verb::Decline };
        let mut target = Target::of(&grant);
        target.access = domain::Access::new(target.access.module, target.access.object, verb);
        target.practice = Some(practice);
        match self.app.store.answer_enrolment_request(&grant, accept, self.app.now()).await {
            Ok(_) => {
                self.app.audit(vec![self.app.event(who, &target, Outcome::Allowed)]).await?;
                tracing::info!(event = "enrolment.answered", practice = %practice, accept, "enrolment request answered");
                Ok(accept)
            }
            Err(store::StoreError::NotFound) => {
                self.app.audit(vec![self.app.event(who, &target, Outcome::NotFound)]).await?;
                Err(AppError::NotFound)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The enrolments the practice asked for in the last 30 days that the person has not
    /// accepted (its staff): only the NHI it gave and when.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else.
    pub async fn awaiting_patients(
        &self,
        who: &Caller,
        practice: PracticeId,
    ) -> Result<Vec<AwaitingPatient>, AppError> {
        let grant = authz::authorize::<ListPracticePatients, _>(&who.principal, practice, &*self.app.store).await?;
        Ok(self.app.store.awaiting_patients(&grant, self.app.now()).await?.into_iter().map(Into::into).collect())
    }
}

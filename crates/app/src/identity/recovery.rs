//! Getting back in without a second factor at hand: a single-use set-up code emailed to the
//! holder, and a practice's (or the Tiaki team's) reset of an account's factors after checking
//! who the person is.

use super::Identity;
use super::mfa::SETUP_LINK_SECS;
use crate::audit::{Caller, Outcome, Target};
use crate::identity::SignedIn;
use crate::identity::credentials::{code_hash, new_code, new_token, token_hash};
use crate::notify::texts;
use crate::notify::texts::Security;
use crate::{App, AppError};
use domain::AccountId;
use domain::Verb;
use store::LinkKind;

impl Identity<'_> {
    /// Emails the account holder a single-use code that lets the session it is typed into add a first
    /// second factor (a password alone never can).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn send_setup_link(&self, caller: &Caller, who: &SignedIn) -> Result<(), AppError> {
        let code = new_code()?;
        let hash = code_hash(&code).ok_or_else(|| AppError::Internal("a new code did not read back".into()))?;
        let now = self.app.now();
        let Some(row) = self.app.store.account(who.account).await? else { return Err(AppError::Unauthenticated) };
        let mail = texts::mail(&row.email, &row.display_name, &texts::Email::FactorSetup { code: &code }, now);
        self.app
            .store
            .create_link(LinkKind::FactorSetup, &hash, who.account, (now, now + SETUP_LINK_SECS), &mail)
            .await?;
        self.app.mail_waker.notify_one();
        self.app
            .audit(vec![self.app.event(
                caller,
                &Target::account(Verb::MfaSetupLinkSend, &who.account),
                Outcome::Allowed,
            )])
            .await?;
        Ok(())
    }

    /// Takes an emailed set-up code: this session may now add a first second factor, under a
    /// new token (returned).
    ///
    /// # Errors
    /// [`AppError::LinkExpired`] for a used, expired, unknown or someone else's code.
    pub async fn open_setup_link(&self, caller: &Caller, who: &SignedIn, code: &str) -> Result<String, AppError> {
        let target = Target::account(Verb::MfaSetupLinkOpen, &who.account);
        let Some(hash) = code_hash(code) else {
            self.app.audit(vec![self.app.event(caller, &target, Outcome::Denied)]).await?;
            return Err(AppError::LinkExpired);
        };
        // Only the holder's own code is used: anyone else typing it leaves it live for them.
        match self.app.store.use_link(LinkKind::FactorSetup, &hash, self.app.now(), Some(who.account)).await? {
            Some(account) if account == who.account => {
                // What the session may do widens: it continues under a new token (review #23).
                let session_token = new_token()?;
                self.app.store.allow_factor_setup(who.session, self.app.now(), &token_hash(&session_token)).await?;
                self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
                Ok(session_token)
            }
            _ => {
                self.app.audit(vec![self.app.event(caller, &target, Outcome::Denied)]).await?;
                Err(AppError::LinkExpired)
            }
        }
    }

    /// Resets the second factors of a patient or member of staff of the practice, by a practice
    /// admin after checking who they are in person or by phone (`checked`: who checked and how,
    /// recorded in the access log). Ends all their sessions and emails them. Operators reset
    /// only staff: they see no patients, so a patient is to them as if not there. A patient's
    /// reset is filed under them, so their own history shows it.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the practice's admins and operators;
    /// [`AppError::Invalid`] without the check, or for an email that is not of one of the
    /// practice's patients (admins) or staff.
    pub async fn reset_factors_at_practice(
        &self,
        caller: &Caller,
        practice: domain::PracticeId,
        email: &str,
        checked: &str,
    ) -> Result<bool, AppError> {
        let grant = self.app.decide::<authz::ResetStaffFactors>(caller, practice).await?;
        let checked = identity_check(checked)?;
        let account = self.app.store.account_by_email(&email.trim().to_lowercase()).await?;
        if let Some(a) = &account {
            if self.app.store.staff_membership(a.id).await?.is_some_and(|(p, _)| p == practice) {
                let target = Target::of(&grant).about(&a.id);
                return self.app.reset_factors_of(caller, a.id, checked, target).await;
            }
            if let Some(patient) = self.app.store.patient_for_account(a.id).await?
                && let Ok(patient_grant) = self.app.decide::<authz::ResetPatientFactors>(caller, patient).await
                && patient_grant.via_practice() == Some(practice)
            {
                let target = Target::of(&patient_grant).about(&a.id);
                return self.app.reset_factors_of(caller, a.id, checked, target).await;
            }
        }
        self.app.audit(vec![self.app.event(caller, &Target::of(&grant), Outcome::NotFound)]).await?;
        Err(AppError::field("reset_email", "No patient or member of staff of this practice has that email address."))
    }
}

impl App {
    /// Removes an account's factors, ends its sessions, records who checked the identity (under
    /// `target`'s patient and practice) and emails the holder. Returns whether they had an authenticator or a passkey.
    pub(crate) async fn reset_factors_of(
        &self,
        caller: &Caller,
        account: AccountId,
        checked: &str,
        target: Target,
    ) -> Result<bool, AppError> {
        let had = self.store.remove_factors(account).await?;
        let ended = self.store.end_other_sessions(account, None, self.now()).await?;
        // Recorded as the reset it was, under the patient (if it was one) and the practice.
        let target = Target { access: domain::Access::account(Verb::MfaReset), ..target };
        let mut event = self.event(caller, &target, Outcome::Allowed);
        event.on_behalf = Some(format!("identity checked: {}", checked.chars().take(200).collect::<String>()));
        self.audit(vec![event]).await?;
        self.notify(account, Security::SignInReset).await?;
        tracing::info!(account = %account, sessions_ended = ended, "second factors reset after an identity check");
        Ok(had)
    }
}

/// The record of an identity check: who checked and how, in at least ten characters.
pub(crate) fn identity_check(checked: &str) -> Result<&str, AppError> {
    let checked = checked.trim();
    if checked.chars().count() < 10 || checked.chars().any(char::is_control) {
        return Err(AppError::field(
            "checked",
            "Say who checked the person's identity and how (for example \"Mere, photo ID at the front desk\").",
        ));
    }
    Ok(checked)
}

/// How long an operator's request to reset a patient's factors waits for a second operator.
const PATIENT_RESET_SECS: i64 = 86_400;

/// A request to reset a patient's second factors, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientResetView {
    /// Its id (the approval form sends it back).
    pub id: uuid::Uuid,
    /// The patient's email.
    pub email: String,
    /// The operator who asked.
    pub requested_by: String,
    /// Whether the viewer is that operator (who cannot approve it).
    pub own: bool,
    /// Who checked the patient's identity, and how.
    pub checked: String,
    /// When it was asked (Unix seconds).
    pub requested_at: i64,
}

impl Identity<'_> {
    /// An operator asks for a patient's second factors to be reset, after an identity check:
    /// nothing happens until a second operator approves (operators see no patients, so no one
    /// of them alone can strip a patient's protection). Recorded.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator; [`AppError::Invalid`] without the check
    /// or for an email that is not a patient's.
    pub async fn request_patient_reset(&self, caller: &Caller, email: &str, checked: &str) -> Result<(), AppError> {
        let grant = self.app.decide::<authz::RequestPatientReset>(caller, authz::Platform).await?;
        let checked = identity_check(checked)?;
        let account = self.app.store.account_by_email(&email.trim().to_lowercase()).await?;
        let Some(account) = account.filter(|a| a.kind == domain::AccountKind::Patient) else {
            return Err(AppError::field(
                "reset_email",
                "No patient has that email address. (Operators and staff are reset from their practice page or the console.)",
            ));
        };
        let requester = caller.principal.account().ok_or(AppError::NotFound)?;
        let now = self.app.now();
        let request = store::PatientResetRequest {
            id: uuid::Uuid::new_v4(),
            account: account.id,
            email: account.email.clone(),
            requested_by: requester,
            requested_by_name: String::new(),
            checked: checked.to_owned(),
            requested_at: now,
        };
        self.app.store.request_patient_reset(&grant.implied(), &request, now + PATIENT_RESET_SECS).await?;
        let patient = self.app.store.patient_for_account(account.id).await?;
        let target = Target { patient, ..Target::of(&grant).about(&account.id) };
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        Ok(())
    }

    /// The requests waiting for a second operator (operators).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else.
    pub async fn open_patient_resets(&self, caller: &Caller) -> Result<Vec<PatientResetView>, AppError> {
        let grant = self.app.authorize::<authz::ApprovePatientReset>(caller, authz::Platform).await?;
        let me = caller.principal.account();
        Ok(self
            .app
            .store
            .open_patient_resets(&grant.implied(), self.app.now())
            .await?
            .into_iter()
            .map(|r| PatientResetView {
                id: r.id,
                email: r.email,
                requested_by: r.requested_by_name,
                own: Some(r.requested_by) == me,
                checked: r.checked,
                requested_at: r.requested_at,
            })
            .collect())
    }

    /// A second operator approves a request: the patient's factors are reset (sessions ended,
    /// emailed, filed in the patient's own history with both operators' names on record).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator; [`AppError::Invalid`] for a request
    /// that is not waiting, has expired, or is the approver's own.
    pub async fn approve_patient_reset(&self, caller: &Caller, id: &str) -> Result<(), AppError> {
        let grant = self.app.decide::<authz::ApprovePatientReset>(caller, authz::Platform).await?;
        let approver = caller.principal.account().ok_or(AppError::NotFound)?;
        let refused = || {
            AppError::field(
                "request",
                "That request is not waiting any more (approved, or older than a day), or it is your own: a second operator must approve it.",
            )
        };
        let id = id.trim().parse::<uuid::Uuid>().map_err(|_| refused())?;
        let Some(request) =
            self.app.store.approve_patient_reset(&grant.implied(), id, approver, self.app.now()).await?
        else {
            self.app.audit(vec![self.app.event(caller, &Target::of(&grant).about(&id), Outcome::Denied)]).await?;
            return Err(refused());
        };
        let patient = self.app.store.patient_for_account(request.account).await?;
        let target = Target { patient, ..Target::of(&grant).about(&request.account) };
        let checked =
            format!("{}; asked by {}, approved by a second operator", request.checked, request.requested_by_name);
        self.app.reset_factors_of(caller, request.account, &checked, target).await.map(|_| ())
    }
}

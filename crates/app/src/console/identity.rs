//! The console's identity work: the first operator's link, operators made at the console,
//! passwords set from a link without signing in, and second factors reset after an identity check.

use super::Console;
use crate::AppError;
use crate::audit::{Caller, Outcome, Target};
use crate::identity::recovery::identity_check;
use authz::Principal;
use domain::AccountId;
use store::InvitationPurpose;

impl Console<'_> {
    /// Creates an operator account from the console and mails (and returns) its link.
    ///
    /// # Errors
    /// [`AppError::Invalid`] for bad details, [`AppError::Conflict`] for an email in use.
    pub async fn create_operator(&self, name: &str, email: &str) -> Result<String, AppError> {
        let target = Target::console::<authz::InviteOperator>(authz::Platform);
        self.app.audit(vec![self.app.event(&Caller::console(Principal::Anonymous), &target, Outcome::Allowed)]).await?;
        self.app.create_operator_with(&authz::console::manage_operators(), name, email).await
    }

    /// Uses a link to set a password without signing in (the console's `demo` uses this).
    ///
    /// # Errors
    /// As for [`App::accept_invitation`].
    pub async fn set_password_by_link(
        &self,
        token: &str,
        password: &str,
        confirm: &str,
        name: Option<&str>,
        email: Option<&str>,
    ) -> Result<AccountId, AppError> {
        self.app.set_password_with_link(token, password, confirm, name, email).await
    }

    /// What the first start tells: nothing once an operator has set a password; else a new
    /// first-operator link when none that still works was made before, or when that one
    /// expires (review #25: a link is printed once, not at every start for anyone with access
    /// to the server's log).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn first_start(&self) -> Result<FirstStart, AppError> {
        if self.app.store.active_operator_count().await? > 0 {
            return Ok(FirstStart::Done);
        }
        match self.app.store.first_operator_invitation_expiry(self.app.now()).await? {
            Some(expires_at) => Ok(FirstStart::LinkStillWorks(expires_at)),
            None => Ok(self.first_start_link().await?.map_or(FirstStart::Done, FirstStart::NewLink)),
        }
    }

    /// If no operator has set a password yet, makes a fresh first-start link (any earlier one
    /// stops working) and returns it (`tiaki admin first-operator-link`, when the printed one
    /// was lost).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn first_start_link(&self) -> Result<Option<String>, AppError> {
        if self.app.store.active_operator_count().await? > 0 {
            return Ok(None);
        }
        let (code, invite) = self.app.new_invitation(InvitationPurpose::FirstOperator)?;
        self.app.store.replace_first_operator_invitation(&invite).await?;
        Ok(Some(code))
    }

    /// Resets an operator's or staff member's second factors from the server's console, after a
    /// person has checked their identity (`checked`: who checked and how, recorded in the access
    /// log). Ends all their sessions and emails them (no link). Returns whether they had an
    /// authenticator. Never a patient's: their practice's admin resets those, having seen them.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown email; [`AppError::Invalid`] without the check or
    /// for a patient's account.
    pub async fn reset_factors(&self, email: &str, checked: &str) -> Result<bool, AppError> {
        let checked = identity_check(checked)?;
        let account = self.app.store.account_by_email(&email.trim().to_lowercase()).await?.ok_or(AppError::NotFound)?;
        if account.kind == domain::AccountKind::Patient {
            return Err(AppError::field(
                "email",
                "That is a patient's account. A patient's sign-in is reset by an admin of their practice, who checks \
                 who they are (Practice page, \"Reset someone's sign-in\").",
            ));
        }
        let target = crate::audit::Target::account(domain::Verb::MfaReset, &account.id);
        self.app.reset_factors_of(&Caller::console(authz::Principal::Anonymous), account.id, checked, target).await
    }

    /// Disables an account from the console with a reason (`Some`), or enables it (`None`).
    ///
    /// # Errors
    /// As for [`crate::identity::Identity::disable_account`].
    pub async fn set_account_disabled(&self, email: &str, reason: Option<&str>) -> Result<(), AppError> {
        let account = self.app.account_named(email).await?;
        let caller = Caller::console(Principal::Anonymous);
        self.app.set_disabled_with(&authz::console::manage_accounts(), &caller, &account, reason).await
    }
}

/// What a start of the server tells about the first operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstStart {
    /// An operator has set a password: nothing.
    Done,
    /// A new one-time link (printed once).
    NewLink(String),
    /// The link printed before still works until then (Unix seconds).
    LinkStillWorks(domain::UnixTime),
}

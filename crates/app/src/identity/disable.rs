//! Closing an account: an operator disables any account with a reason (a compromised account,
//! someone who has left) and can enable it again. A disabled account cannot sign in, use a link
//! or keep a session, on any node, from the next request.

use super::Identity;
use crate::audit::{Caller, Outcome, Target};
use crate::notify::texts::Security;
use crate::{App, AppError};
use domain::Verb;
use store::AccountRow;

/// The longest reason kept with a disabled account.
const REASON_MAX: usize = 200;

/// A disabled account, as the operators' page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledAccount {
    /// The account's email.
    pub email: String,
    /// Why it was disabled.
    pub reason: String,
}

impl Identity<'_> {
    /// Disables the account with this email, with a reason kept beside it (operators). Its
    /// sessions end and its unused links stop working at once; the holder is told by email.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but operators; [`AppError::Invalid`] for an unknown
    /// email, the caller's own account, the last operator who can sign in, an account already
    /// disabled, or a reason that is missing or longer than 200 characters.
    pub async fn disable_account(&self, caller: &Caller, email: &str, reason: &str) -> Result<(), AppError> {
        let grant = self.app.decide::<authz::DisableAccount>(caller, authz::Platform).await?;
        let account = self.account_named(caller, email).await?;
        self.app.set_disabled_with(&grant.implied(), caller, &account, Some(reason)).await
    }

    /// Enables a disabled account again (operators). The holder signs in with their password
    /// as before; a staff member removed by their practice stays removed (their practice
    /// invites them again).
    ///
    /// # Errors
    /// As for [`Identity::disable_account`]; [`AppError::Invalid`] when the account is not disabled.
    pub async fn enable_account(&self, caller: &Caller, email: &str) -> Result<(), AppError> {
        let grant = self.app.decide::<authz::EnableAccount>(caller, authz::Platform).await?;
        let account = self.account_named(caller, email).await?;
        self.app.set_disabled_with(&grant.implied(), caller, &account, None).await
    }

    /// Why the account with this email is disabled (`None` when it is not, or there is none).
    /// Operators only.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else.
    pub async fn disabled_reason(&self, caller: &Caller, email: &str) -> Result<Option<DisabledAccount>, AppError> {
        let grant = self.app.decide::<authz::ManageAccounts>(caller, authz::Platform).await?;
        let email = email.trim().to_lowercase();
        let Some(account) = self.app.store.account_by_email(&email).await? else { return Ok(None) };
        Ok(self.app.store.disabled_reason(&grant, account.id).await?.map(|reason| DisabledAccount { email, reason }))
    }

    async fn account_named(&self, caller: &Caller, email: &str) -> Result<AccountRow, AppError> {
        let account = self.app.account_named(email).await?;
        if caller.principal.account() == Some(account.id) {
            return Err(AppError::field("email", "You cannot disable or enable your own account."));
        }
        Ok(account)
    }
}

impl App {
    /// The account with this email, or a field error saying there is none.
    pub(crate) async fn account_named(&self, email: &str) -> Result<AccountRow, AppError> {
        self.store
            .account_by_email(&email.trim().to_lowercase())
            .await?
            .ok_or_else(|| AppError::field("email", "No account has that email address."))
    }

    /// Disables an account with `reason` (`Some`) or enables it (`None`), under a grant to
    /// manage accounts (an operator's or the console's); records it and, when disabling, tells
    /// the holder.
    pub(crate) async fn set_disabled_with(
        &self,
        grant: &authz::Grant<authz::ManageAccounts>,
        caller: &Caller,
        account: &AccountRow,
        reason: Option<&str>,
    ) -> Result<(), AppError> {
        let reason = reason.map(str::trim);
        if let Some(reason) = reason {
            let n = reason.chars().count();
            if !(5..=REASON_MAX).contains(&n) {
                return Err(AppError::field(
                    "reason",
                    "Say why in 5 to 200 characters (for example: \"left the practice\" or \"password stolen\").",
                ));
            }
            if account.kind == domain::AccountKind::Operator
                && account.disabled_at.is_none()
                && account.password_hash.is_some()
                && self.store.active_operator_count().await? <= 1
            {
                return Err(AppError::field(
                    "email",
                    "This is the last operator who can sign in; invite another first.",
                ));
            }
        }
        if !self.store.set_account_disabled(grant, account.id, reason, self.now()).await? {
            let why =
                if reason.is_some() { "That account is already disabled." } else { "That account is not disabled." };
            return Err(AppError::field("email", why));
        }
        let verb = if reason.is_some() { Verb::Disable } else { Verb::Enable };
        self.audit(vec![self.event(caller, &Target::account(verb, &account.id), Outcome::Allowed)]).await?;
        if reason.is_some() {
            self.notify(account.id, Security::AccountClosed).await?;
        }
        Ok(())
    }
}

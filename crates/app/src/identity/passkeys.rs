//! Passkeys (`WebAuthn`, issue 3) with `webauthn-rs`: an account holder registers several, names
//! and removes them, and signs in with one alone (a discoverable credential with user
//! verification: something they have plus a PIN or biometric) or uses one as the second factor
//! after their password. Each ceremony's server half is kept in the database under the hash of a
//! random token, for five minutes, and is used up when it is answered: a replayed assertion or an
//! answer to a stale challenge finds nothing. "Confirm it's you" (step-up) asks for a passkey or
//! a code again before factors change.

use super::Identity;
use crate::audit::{Caller, Outcome, Target};
use crate::identity::credentials::{new_token, plausible_token, token_hash};
use crate::identity::{Proof, SignInOutcome, SignedIn};
use crate::notify::texts::Security;
use crate::{App, AppError};
use domain::Verb;
use domain::{AccountId, UnixTime};
use store::PasskeyRow;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

/// How long a ceremony waits for its answer, seconds.
const CEREMONY_SECS: i64 = 300;
/// How recently a session must have proved a factor to change factors, seconds.
pub const STEP_UP_SECS: i64 = 600;
/// The longest passkey name.
const MAX_NAME: usize = 60;

/// A passkey as its holder sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyView {
    /// Its id (for removing it).
    pub id: uuid::Uuid,
    /// The name its holder gave it.
    pub name: String,
    /// When it was registered.
    pub created_at: UnixTime,
    /// When it was last used.
    pub last_used_at: Option<UnixTime>,
}

/// A ceremony for the page's script: the options for `navigator.credentials` and the token to
/// post back with the answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PasskeyChallenge {
    /// Posted back with the authenticator's answer.
    pub token: String,
    /// `{"publicKey": …}` for `navigator.credentials.create` or `.get`.
    pub options: serde_json::Value,
}

/// The relying party for a public URL; none when its host is an IP address (browsers refuse
/// passkeys there: the portal must be reached by name, e.g. `http://localhost:8080`).
pub(crate) fn relying_party(public_url: &str) -> Option<Webauthn> {
    let origin = Url::parse(public_url).ok()?;
    let host = origin.host_str()?.to_owned();
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return None;
    }
    WebauthnBuilder::new(&host, &origin).ok()?.rp_name("Tiaki").build().ok()
}

fn webauthn_failed(e: impl std::fmt::Display) -> AppError {
    tracing::info!(error = %e, "a passkey ceremony failed");
    AppError::field("passkey", "That passkey could not be used. Try again, or use another way to sign in.")
}

fn expired() -> AppError {
    AppError::field("passkey", "That passkey request has expired or was already used. Try again.")
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, AppError> {
    serde_json::to_string(v).map_err(|e| AppError::Internal(format!("webauthn state: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, AppError> {
    serde_json::from_str(s).map_err(|e| AppError::Internal(format!("webauthn state: {e}")))
}

/// The authenticator's answer, as posted by the page.
fn answer<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, AppError> {
    serde_json::from_str(s)
        .map_err(|_| AppError::field("passkey", "The browser's answer was not understood. Try again."))
}

/// A name as typed: trimmed, no control characters, 1 to 60 characters.
fn clean_name(name: &str) -> Result<String, AppError> {
    let name: String = name.trim().chars().filter(|c| !c.is_control()).collect();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(AppError::field(
            "name",
            "Give the passkey a name of up to 60 characters, such as \"My phone\", so you can tell your passkeys apart.",
        ));
    }
    Ok(name)
}

impl App {
    fn relying_party(&self) -> Result<&Webauthn, AppError> {
        self.webauthn.as_deref().ok_or_else(|| {
            AppError::Conflict(
                "Passkeys need the portal to be reached by its name, not an IP address (set TIAKI_PUBLIC_URL, for example to http://localhost:8080)."
                    .into(),
            )
        })
    }

    async fn start_ceremony(
        &self,
        account: Option<AccountId>,
        purpose: &str,
        state: &str,
        options: serde_json::Value,
    ) -> Result<PasskeyChallenge, AppError> {
        let token = new_token()?;
        let now = self.now();
        self.store.create_ceremony(&token_hash(&token), account, purpose, state, now, now + CEREMONY_SECS).await?;
        Ok(PasskeyChallenge { token, options })
    }

    /// Takes a ceremony once; it must be for `purpose` (and `account`, when given).
    async fn take_ceremony(
        &self,
        token: &str,
        purpose: &str,
        account: Option<AccountId>,
    ) -> Result<store::CeremonyRow, AppError> {
        if !plausible_token(token) {
            return Err(expired());
        }
        let row = self.store.take_ceremony(&token_hash(token), self.now()).await?.ok_or_else(expired)?;
        if row.purpose != purpose || (account.is_some() && row.account != account) {
            return Err(expired());
        }
        Ok(row)
    }

    fn stored_passkey(row: &PasskeyRow) -> Result<Passkey, AppError> {
        from_json(&row.credential)
    }

    /// Stores a passkey's counter after a use.
    async fn passkey_was_used(
        &self,
        row: &PasskeyRow,
        mut key: Passkey,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<(), AppError> {
        key.update_credential(result);
        self.store.passkey_used(row.id, &to_json(&key)?, self.now()).await?;
        Ok(())
    }

    /// Now, by the application's clock (seconds).
    #[must_use]
    pub fn clock_now(&self) -> UnixTime {
        self.now()
    }

    /// Whether the account has any second factor (authenticator app or passkey).
    pub(crate) async fn has_second_factor(&self, account: AccountId) -> Result<bool, AppError> {
        Ok(self.store.totp_factor(account).await?.is_some_and(|t| t.confirmed_at.is_some())
            || !self.store.passkeys(account).await?.is_empty())
    }

    /// Asks one of `account`'s passkeys to prove itself (second factor or step-up).
    async fn begin_passkey_check(&self, account: AccountId, purpose: &str) -> Result<PasskeyChallenge, AppError> {
        let keys: Vec<Passkey> =
            self.store.passkeys(account).await?.iter().map(Self::stored_passkey).collect::<Result<_, _>>()?;
        if keys.is_empty() {
            return Err(AppError::Conflict("This account has no passkey.".into()));
        }
        let (rcr, state) = self.relying_party()?.start_passkey_authentication(&keys).map_err(webauthn_failed)?;
        let options = serde_json::to_value(&rcr).map_err(|e| AppError::Internal(e.to_string()))?;
        self.start_ceremony(Some(account), purpose, &to_json::<PasskeyAuthentication>(&state)?, options).await
    }

    /// Checks the answer to [`Self::begin_passkey_check`]; true when one of the account's
    /// passkeys proved itself.
    async fn finish_passkey_check(
        &self,
        account: AccountId,
        purpose: &str,
        token: &str,
        response: &str,
    ) -> Result<bool, AppError> {
        let rp = self.relying_party()?;
        let ceremony = self.take_ceremony(token, purpose, Some(account)).await?;
        let state: PasskeyAuthentication = from_json(&ceremony.state)?;
        let cred: PublicKeyCredential = answer(response)?;
        let Some(row) =
            self.store.passkey_by_credential(cred.get_credential_id()).await?.filter(|r| r.account == account)
        else {
            return Ok(false);
        };
        let key = Self::stored_passkey(&row)?;
        match rp.finish_passkey_authentication(&cred, &state) {
            Ok(result) => {
                self.passkey_was_used(&row, key, &result).await?;
                Ok(true)
            }
            Err(e) => {
                tracing::info!(error = %e, "a passkey did not verify");
                Ok(false)
            }
        }
    }

    /// Marks the session as having just proved a factor (new token); the confirmation event.
    pub(crate) async fn confirmed(&self, caller: &Caller, who: &SignedIn) -> Result<String, AppError> {
        let new = new_token()?;
        self.store.mark_session_mfa(who.session, self.now(), &token_hash(&new)).await?;
        self.audit(vec![self.event(caller, &Target::account(Verb::MfaConfirm, &who.account), Outcome::Allowed)])
            .await?;
        Ok(new)
    }
}

/// Why a session held back by the passkeys-only rule cannot add the passkey itself.
pub(crate) const PASSKEY_LINK_NEEDED: &str = "Your role must sign in with a passkey, and the first one is added with a code \
     we email you: choose \"Email me a set-up code\", type it in this browser, add the passkey, then sign out and sign in \
     with it.";

impl Identity<'_> {
    /// Whether passkeys can be used at this portal's address.
    #[must_use]
    pub fn passkeys_available(&self) -> bool {
        self.app.webauthn.is_some()
    }

    /// Whether the operator requires passkeys of operators and practice admins.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn passkeys_required(&self) -> Result<bool, AppError> {
        Ok(self.app.store.platform_flag(crate::identity::PASSKEYS_REQUIRED).await?)
    }

    /// Turns on or off the requirement that operators and practice admins sign in with a
    /// passkey (phishing-resistant). Their sessions opened otherwise then reach only sign-in
    /// security, where they add or use one. Operators only.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but operators; [`AppError::Conflict`] when the operator
    /// has no passkey themselves; [`AppError::Invalid`] without a choice.
    pub async fn set_passkeys_required(&self, caller: &Caller, on: Option<bool>) -> Result<(), AppError> {
        let grant = self.app.authorize::<authz::SetPasskeyPolicy>(caller, authz::Platform).await?;
        let on = on.ok_or_else(|| AppError::field("on", "Choose whether to require passkeys."))?;
        let own = match &caller.principal {
            authz::Principal::Operator { account, .. } => self.app.store.passkeys(*account).await?.len(),
            _ => 0,
        };
        if on && own == 0 {
            return Err(AppError::Conflict(
                "Add a passkey to your own account first (under Sign-in security): once passkeys are required, a code no longer opens the operator pages."
                    .into(),
            ));
        }
        self.app.store.set_platform_flag(&grant.implied(), crate::identity::PASSKEYS_REQUIRED, on).await?;
        tracing::info!(on, "the passkey requirement for operators and practice admins changed");
        Ok(())
    }

    /// Whether the account an open sign-in challenge is for has a passkey.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn challenge_has_passkey(&self, challenge: &str) -> Result<bool, AppError> {
        match self.app.open_challenge_account(challenge).await {
            Ok(account) => Ok(self.app.webauthn.is_some() && !self.app.store.passkeys(account).await?.is_empty()),
            Err(AppError::LinkExpired) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether this session proved a second factor in the last ten minutes.
    #[must_use]
    pub fn recently_confirmed(&self, who: &SignedIn) -> bool {
        who.mfa_at.is_some_and(|t| t >= self.app.now() - STEP_UP_SECS)
    }

    /// The account's passkeys.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn passkeys(&self, who: &SignedIn) -> Result<Vec<PasskeyView>, AppError> {
        Ok(self
            .app
            .store
            .passkeys(who.account)
            .await?
            .into_iter()
            .map(|p| PasskeyView { id: p.id, name: p.name, created_at: p.created_at, last_used_at: p.last_used_at })
            .collect())
    }

    /// Starts registering a passkey. A first factor needs a session opened by an emailed link
    /// (a password alone never adds one); with factors already set up, the session must have
    /// proved one in the last ten minutes. A session held back by the passkeys-only rule needs
    /// the emailed link too, whatever it proved.
    ///
    /// # Errors
    /// [`AppError::Conflict`] when the session may not add one now, or passkeys are unavailable.
    pub async fn begin_passkey_registration(&self, who: &SignedIn) -> Result<PasskeyChallenge, AppError> {
        let rp = self.app.relying_party()?;
        if who.needs_passkey && !who.may_add_factor {
            // The passkey that satisfies a passkeys-only rule cannot come from a session proved by
            // a code (a phishing proxy relays codes): it needs the emailed set-up link.
            return Err(AppError::Conflict(PASSKEY_LINK_NEEDED.into()));
        }
        if self.app.has_second_factor(who.account).await? {
            if !self.recently_confirmed(who) {
                return Err(AppError::Conflict(
                    "For your safety, confirm it's you (with a passkey or a code) before adding a passkey.".into(),
                ));
            }
        } else if !who.may_add_factor {
            return Err(AppError::Conflict(crate::identity::mfa::SETUP_LINK_NEEDED.into()));
        }
        let account = self.app.store.account(who.account).await?.ok_or(AppError::Unauthenticated)?;
        let existing: Vec<_> = self
            .app
            .store
            .passkeys(who.account)
            .await?
            .iter()
            .filter_map(|p| App::stored_passkey(p).ok().map(|k| k.cred_id().clone()))
            .collect();
        let (ccr, state) = rp
            .start_passkey_registration(who.account.as_uuid(), &account.email, &account.display_name, Some(existing))
            .map_err(webauthn_failed)?;
        let mut options = serde_json::to_value(&ccr).map_err(|e| AppError::Internal(e.to_string()))?;
        // A discoverable credential, so that it can sign in on its own.
        if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut()) {
            sel.insert("residentKey".into(), "required".into());
            sel.insert("requireResidentKey".into(), true.into());
        }
        self.app.start_ceremony(Some(who.account), "register", &to_json::<PasskeyRegistration>(&state)?, options).await
    }

    /// Finishes registering a passkey with the browser's answer. Returns new recovery codes when
    /// the account had none (shown once) and the session's new token. The holder is emailed.
    ///
    /// # Errors
    /// [`AppError::Invalid`] for a bad name, an expired or used request, or an answer that does
    /// not verify; [`AppError::Conflict`] when that passkey is registered already.
    pub async fn finish_passkey_registration(
        &self,
        caller: &Caller,
        who: &SignedIn,
        token: &str,
        name: &str,
        response: &str,
    ) -> Result<(Option<Vec<String>>, String), AppError> {
        let rp = self.app.relying_party()?;
        let name = clean_name(name)?;
        let ceremony = self.app.take_ceremony(token, "register", Some(who.account)).await?;
        let state: PasskeyRegistration = from_json(&ceremony.state)?;
        let reg: RegisterPublicKeyCredential = answer(response)?;
        let target = Target::account(Verb::MfaPasskeyAdd, &who.account);
        let key = match rp.finish_passkey_registration(&reg, &state) {
            Ok(k) => k,
            Err(e) => {
                self.app.audit(vec![self.app.event(caller, &target, Outcome::Denied)]).await?;
                return Err(webauthn_failed(e));
            }
        };
        let now = self.app.now();
        let row = PasskeyRow {
            id: uuid::Uuid::new_v4(),
            account: who.account,
            name,
            credential: to_json(&key)?,
            created_at: now,
            last_used_at: None,
        };
        if !self.app.store.add_passkey(&row, key.cred_id().as_ref()).await? {
            return Err(AppError::Conflict("That passkey is already registered.".into()));
        }
        let codes = if self.app.store.recovery_codes_left(who.account).await? == 0 {
            let (shown, hashes) =
                crate::identity::mfa::new_recovery_codes(self.app.recovery_pepper().await?.as_deref(), who.account)?;
            self.app.store.replace_recovery_codes(who.account, &hashes).await?;
            Some(shown)
        } else {
            None
        };
        // This session has just proved a factor: it gets a new token, and any other session
        // (perhaps opened with a stolen password) ends.
        let new = new_token()?;
        self.app.store.mark_session_mfa(who.session, now, &token_hash(&new)).await?;
        // Registering is not signing in with it: a session held back by the passkeys-only rule
        // stays held back until the holder signs in again with the passkey.
        self.app.store.end_other_sessions(who.account, Some(who.session), now).await?;
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        self.app.notify(who.account, Security::PasskeyAdded).await?;
        Ok((codes, new))
    }

    /// Removes one of the account's passkeys; the session must have proved a factor in the last
    /// ten minutes. The holder is emailed.
    ///
    /// # Errors
    /// [`AppError::Conflict`] without a recent confirmation, or when it is the last factor of an
    /// account that must keep one; [`AppError::NotFound`] for a passkey that is not theirs.
    pub async fn remove_passkey(&self, caller: &Caller, who: &SignedIn, id: uuid::Uuid) -> Result<(), AppError> {
        let target = Target::account(Verb::MfaPasskeyRemove, &who.account);
        if !self.recently_confirmed(who) {
            self.app.audit(vec![self.app.event(caller, &target, Outcome::Denied)]).await?;
            return Err(AppError::Conflict(
                "For your safety, confirm it's you (with a passkey or a code) before removing a passkey.".into(),
            ));
        }
        let keys = self.app.store.passkeys(who.account).await?;
        if !keys.iter().any(|k| k.id == id) {
            return Err(AppError::NotFound);
        }
        let has_totp = self.app.store.totp_factor(who.account).await?.is_some_and(|t| t.confirmed_at.is_some());
        if keys.len() == 1
            && !has_totp
            && who.kind != domain::AccountKind::Patient
            && self.app.settings.staff_mfa_required
        {
            return Err(AppError::Conflict(
                "This is your only second factor, and staff accounts must keep one. Add another passkey or an authenticator app first."
                    .into(),
            ));
        }
        if !self.app.store.remove_passkey(who.account, id).await? {
            return Err(AppError::NotFound);
        }
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        self.app.notify(who.account, Security::PasskeyRemoved).await?;
        Ok(())
    }

    /// Starts a sign-in with a passkey alone: the browser offers the passkeys it holds for this
    /// portal. Counted against the caller's address like password attempts.
    ///
    /// # Errors
    /// [`AppError::RateLimited`] after too many attempts from one address; when passkeys are
    /// unavailable or storage fails.
    pub async fn begin_passkey_sign_in(&self, caller: &Caller) -> Result<PasskeyChallenge, AppError> {
        if caller.ip.is_some() {
            let attack = usize::from(self.app.under_attack().await?);
            self.app.limit_address(caller, attack).await?;
        }
        let (rcr, state) = self.app.relying_party()?.start_discoverable_authentication().map_err(webauthn_failed)?;
        let mut options = serde_json::to_value(&rcr).map_err(|e| AppError::Internal(e.to_string()))?;
        // Asked for by a button, not offered in the email field's autofill.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        self.app.start_ceremony(None, "sign_in", &to_json::<DiscoverableAuthentication>(&state)?, options).await
    }

    /// Finishes a sign-in with a passkey alone (user verification is required, so it counts as
    /// both factors).
    ///
    /// # Errors
    /// [`AppError::Invalid`] for an expired or used request or an answer that does not verify.
    pub async fn finish_passkey_sign_in(
        &self,
        caller: &Caller,
        token: &str,
        response: &str,
    ) -> Result<SignInOutcome, AppError> {
        let rp = self.app.relying_party()?;
        let ceremony = self.app.take_ceremony(token, "sign_in", None).await?;
        let state: DiscoverableAuthentication = from_json(&ceremony.state)?;
        let cred: PublicKeyCredential = answer(response)?;
        let (user, cred_id) = rp.identify_discoverable_authentication(&cred).map_err(webauthn_failed)?;
        let row = self.app.store.passkey_by_credential(cred_id).await?.filter(|r| r.account.as_uuid() == user);
        let Some(row) = row else {
            metrics::counter!("tiaki_sign_in_total", "outcome" => "passkey_unknown").increment(1);
            self.app
                .audit(vec![self.app.event(caller, &Target::account(Verb::SignInPasskey, &user), Outcome::NotFound)])
                .await?;
            return Err(webauthn_failed("no such passkey"));
        };
        let target = Target::account(Verb::SignInPasskey, &row.account);
        let key = App::stored_passkey(&row)?;
        match rp.finish_discoverable_authentication_v2(&cred, state, &key) {
            Ok(result) => {
                self.app.passkey_was_used(&row, key, &result).await?;
                metrics::counter!("tiaki_sign_in_total", "outcome" => "succeeded").increment(1);
                self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
                self.app.open_session(row.account, caller, Verb::SignIn, Proof::Passkey).await
            }
            Err(e) => {
                metrics::counter!("tiaki_sign_in_total", "outcome" => "passkey_failed").increment(1);
                self.app.audit(vec![self.app.event(caller, &target, Outcome::Denied)]).await?;
                Err(webauthn_failed(e))
            }
        }
    }

    /// After a correct password: asks the account's passkey (the sign-in challenge names the
    /// account).
    ///
    /// # Errors
    /// [`AppError::LinkExpired`] when the sign-in challenge is gone.
    pub async fn begin_passkey_second_factor(&self, challenge: &str) -> Result<PasskeyChallenge, AppError> {
        let account = self.app.open_challenge_account(challenge).await?;
        self.app.begin_passkey_check(account, "second_factor").await
    }

    /// Finishes a sign-in whose second factor is a passkey.
    ///
    /// # Errors
    /// [`AppError::LinkExpired`] when the sign-in challenge is gone; [`AppError::Invalid`] when
    /// the passkey does not verify.
    pub async fn finish_passkey_second_factor(
        &self,
        caller: &Caller,
        challenge: &str,
        token: &str,
        response: &str,
    ) -> Result<SignInOutcome, AppError> {
        let account = self.app.open_challenge_account(challenge).await?;
        if self.app.finish_passkey_check(account, "second_factor", token, response).await? {
            self.app.second_factor_passed(caller, challenge, account, false, Proof::Passkey).await
        } else {
            self.app.second_factor_failed(caller, challenge, account).await?;
            Err(webauthn_failed("the passkey did not verify"))
        }
    }

    /// "Confirm it's you" with a passkey: starts the check.
    ///
    /// # Errors
    /// [`AppError::Conflict`] when the account has no passkey.
    pub async fn begin_passkey_confirm(&self, who: &SignedIn) -> Result<PasskeyChallenge, AppError> {
        self.app.begin_passkey_check(who.account, "confirm").await
    }

    /// "Confirm it's you" with a passkey: on success the session counts as freshly confirmed for
    /// ten minutes; returns its new token.
    ///
    /// # Errors
    /// [`AppError::Invalid`] when the passkey does not verify.
    pub async fn finish_passkey_confirm(
        &self,
        caller: &Caller,
        who: &SignedIn,
        token: &str,
        response: &str,
    ) -> Result<String, AppError> {
        let target = Target::account(Verb::MfaConfirm, &who.account);
        if !self.app.finish_passkey_check(who.account, "confirm", token, response).await? {
            self.app.audit(vec![self.app.event(caller, &target, Outcome::Denied)]).await?;
            return Err(webauthn_failed("the passkey did not verify"));
        }
        self.app.store.mark_session_passkey(who.session).await?;
        self.app.confirmed(caller, who).await
    }
}

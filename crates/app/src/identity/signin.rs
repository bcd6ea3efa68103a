//! Signing in with a password under the credential-stuffing defences (see [`crate::ratelimit`]),
//! the breached-password check, and the ways to a new password or email: "Forgot your password?",
//! changing it while signed in, and changing the email (both after a recent second factor).

use super::Identity;
use crate::audit::{Caller, Outcome, Target};
use crate::identity::SignedIn;
use crate::identity::credentials::{
    self, code_hash, hash_password, new_code, new_token, plausible_token, token_hash, verify_password,
};
use crate::identity::mfa::SignInStep;
use crate::identity::ratelimit::{
    self, DEVICE_FORGET_AFTER, FREE_FAILURES, LOCK_AFTER, PER_DEVICE, PER_IP, PER_NET, UNKNOWN_PER_MINUTE_UNDER_ATTACK,
    WINDOW,
};
use crate::notify::texts;
use crate::notify::texts::Security;
use crate::{App, AppError, FieldError};
use domain::Verb;
use domain::{AccountId, Email};
use std::net::IpAddr;
use store::{AccountRow, LinkKind, WindowCount};

/// How long a password-reset code works, seconds.
const RESET_LINK_SECS: i64 = 3600;
/// At most one reset code per account in this many seconds (more requests send nothing).
const RESET_EVERY_SECS: i64 = 900;
/// How long an email-change code works, seconds.
const EMAIL_LINK_SECS: i64 = 3600;
/// Attempts at a current password (changing password or email) per account per window.
const PER_ACCOUNT_CHECKS: i64 = 5;
/// Attempts at a current password per account per day.
const PER_ACCOUNT_CHECKS_A_DAY: i64 = 20;
/// What a session is told when a change needs a fresh second factor.
pub(crate) const CONFIRM_FIRST: &str =
    "For your safety, confirm it's you (with a passkey or a code from your app) first. You then have 10 minutes.";

/// The window over which refusals by a limit are summarised in the access log, seconds.
const REFUSAL_SUMMARY_SECS: i64 = 60;

/// 10, 100, 1,000, …
const fn is_power_of_ten(mut n: i64) -> bool {
    if n < 10 {
        return false;
    }
    while n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

/// Refuses once a counter is past its limit, with the seconds left in its window.
fn within(c: WindowCount, limit: i64, window: i64, now: domain::UnixTime) -> Result<(), AppError> {
    if c.attempts > limit {
        return Err(AppError::RateLimited(u64::try_from(window - (now - c.window_start)).unwrap_or(1).max(1)));
    }
    Ok(())
}

impl App {
    /// Whether an attempt may go on to a password check. Known browsers have their own limit;
    /// everyone else meets the address and network limits, under attack the node's cap, and the
    /// run of failures: the account's back-off and cap or, for an email with no account, a
    /// stand-in kept the same way (so the answers do not tell which emails have an account).
    /// An attempt that goes on is counted as the next failure first, so parallel attempts cannot
    /// slip past the back-off or the cap; returns the account's new count.
    async fn admit(
        &self,
        caller: &Caller,
        key: &str,
        account: Option<&AccountRow>,
        known_device: Option<&[u8]>,
    ) -> Result<Option<i32>, AppError> {
        let now = self.now();
        if let Some(device) = known_device {
            let c = self.store.count_attempt(&format!("dev:{}", hex::encode(device)), WINDOW, now).await?;
            return within(c, PER_DEVICE, WINDOW, now).map(|()| None);
        }
        let attack = usize::from(self.under_attack().await?);
        self.limit_address(caller, attack).await?;
        if attack == 1 {
            self.unknown_browsers.hit(now, 60, UNKNOWN_PER_MINUTE_UNDER_ATTACK).map_err(AppError::RateLimited)?;
        }
        let phantom = || format!("mail:{}", hex::encode(&token_hash(&format!("mail:{key}"))[..16]));
        let (failures, last) = match account {
            Some(a) => (a.failed_sign_ins, a.last_failed_sign_in_at),
            None => self.store.phantom_failures(&phantom()).await?.map_or((0, None), |(n, at)| (n, Some(at))),
        };
        if failures >= LOCK_AFTER {
            return Err(AppError::SignInPaused);
        }
        let wait = ratelimit::backoff(failures, FREE_FAILURES[attack]);
        if let Some(last) = last
            && now - last < wait
        {
            return Err(AppError::RateLimited(u64::try_from(wait - (now - last)).unwrap_or(1).max(1)));
        }
        let claimed = match account {
            Some(a) => self.store.claim_sign_in_attempt(a.id, failures, now).await?,
            None => self.store.claim_phantom_attempt(&phantom(), failures, now).await?,
        };
        if !claimed {
            // Another attempt on this email went first: one at a time.
            return Err(AppError::RateLimited(1));
        }
        Ok(account.map(|_| failures + 1))
    }

    /// Records a request refused by a limit, summarised so that refusals cannot flood the
    /// access log (kept for ten years): per network and kind of request, the first refusal in
    /// each minute is written, and after it only the 10th, 100th, 1,000th… with the count —
    /// a handful of events a minute however fast the requests come.
    pub(crate) async fn audit_refusal(&self, caller: &Caller, target: &Target) -> Result<(), AppError> {
        let ip = caller.ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let key = format!("refused:{}:{}", target.access.verb.code(), ratelimit::net_key(ip));
        let n = self.store.count_attempt(&key, REFUSAL_SUMMARY_SECS, self.now()).await?.attempts;
        if n == 1 || is_power_of_ten(n) {
            let mut event = self.event(caller, target, Outcome::Denied);
            if n > 1 {
                event.on_behalf = Some(format!("refused by a limit {n} times from this network this minute"));
            }
            self.audit(vec![event]).await?;
        }
        Ok(())
    }

    /// Counts a request against its address's and network's limits (sign-in attempts, passkey
    /// challenges and reset requests share them).
    pub(crate) async fn limit_address(&self, caller: &Caller, attack: usize) -> Result<(), AppError> {
        let now = self.now();
        let ip = caller.ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let c = self.store.count_attempt(&ratelimit::ip_key(ip), WINDOW, now).await?;
        within(c, PER_IP[attack], WINDOW, now)?;
        let c = self.store.count_attempt(&ratelimit::net_key(ip), WINDOW, now).await?;
        within(c, PER_NET[attack], WINDOW, now)
    }

    /// Counts a sign-in that did not succeed towards the platform's per-minute totals.
    async fn count_failure(&self) -> Result<(), AppError> {
        for (minute, n) in self.failures.add(self.now()) {
            self.store.add_sign_in_failures(minute, n).await?;
        }
        Ok(())
    }

    /// Whether failed sign-ins platform-wide are spiking (asked of the database every few seconds).
    pub(crate) async fn under_attack(&self) -> Result<bool, AppError> {
        let now = self.now();
        if let Some(v) = self.watch.cached(now) {
            return Ok(v);
        }
        if let Some((minute, n)) = self.failures.take() {
            self.store.add_sign_in_failures(minute, n).await?;
        }
        let minutes = self.store.sign_in_failures_since(now - now.rem_euclid(60) - 60 - 86_400).await?;
        let v = ratelimit::is_spike(&minutes, now);
        self.watch.keep(now, v);
        metrics::gauge!("tiaki_sign_in_under_attack").set(if v { 1.0 } else { 0.0 });
        if v {
            tracing::warn!(event = "sign_in.under_attack", "failed sign-ins are spiking: sign-in limits are tightened");
            // The detection module's alert: once an hour while it lasts (every node asks; the
            // database raises it once).
            self.sign_in_spike(minutes.iter().map(|(_, n)| *n).max().unwrap_or(0)).await?;
        }
        Ok(v)
    }

    /// A wrong password (or none to check): counted platform-wide, and against the known browser
    /// it came from (the account's count was claimed before the check). The holder is told when
    /// the account reaches the cap.
    async fn sign_in_failed(
        &self,
        account: Option<&AccountRow>,
        known_device: Option<&[u8]>,
        claimed: Option<i32>,
    ) -> Result<(), AppError> {
        self.count_failure().await?;
        let Some(account) = account else { return Ok(()) };
        if let Some(device) = known_device {
            if self.store.device_sign_in_failed(account.id, device, DEVICE_FORGET_AFTER).await? {
                tracing::info!(event = "sign_in.device_forgotten", account = %account.id, "a browser was forgotten after wrong passwords");
            }
            return Ok(());
        }
        if claimed == Some(LOCK_AFTER) {
            self.notify(account.id, Security::SignInPaused).await?;
        }
        Ok(())
    }

    /// Whether a password is too common or on the operator's breached list.
    async fn password_is_breached(&self, password: &str, account: &AccountRow) -> bool {
        self.password_problem(password, &[&account.email, &account.display_name]).await.is_some()
    }

    /// What is wrong with a new password, if anything: the rules, the common-password lists and
    /// the breached list.
    pub(crate) async fn password_problem(&self, password: &str, who: &[&str]) -> Option<String> {
        if let Some(problem) = credentials::password_problem(password, who) {
            return Some(problem);
        }
        let list = self.breached.clone()?;
        let password = password.to_owned();
        match tokio::task::spawn_blocking(move || list.contains(&password)).await {
            Ok(Ok(true)) => Some(
                "This password has appeared in a data breach on another website, so others may try it. Choose one you have not used anywhere else."
                    .into(),
            ),
            Ok(Ok(false)) => None,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the breached-password list cannot be read");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "the breached-password check failed");
                None
            }
        }
    }

    /// Mails the holder a code to choose a new password, unless one went in the last 15 minutes
    /// (then it does the same work with a code that never works: the time taken says nothing).
    async fn send_reset_link(&self, account: &AccountRow, breached: bool) -> Result<bool, AppError> {
        let now = self.now();
        if self.store.links_since(LinkKind::PasswordReset, account.id, now - RESET_EVERY_SECS).await? > 0 {
            self.store.spend_decoy_link(LinkKind::PasswordReset, &token_hash(&new_token()?), now).await?;
            return Ok(false);
        }
        let code = new_code()?;
        let hash = code_hash(&code).ok_or_else(|| AppError::Internal("a new code did not read back".into()))?;
        let mail = texts::mail(
            &account.email,
            &account.display_name,
            &texts::Email::PasswordReset { breached, code: &code },
            now,
        );
        self.store.create_link(LinkKind::PasswordReset, &hash, account.id, (now, now + RESET_LINK_SECS), &mail).await?;
        self.mail_waker.notify_one();
        Ok(true)
    }

    /// Where an account's mail goes decides who can reset its password and add its factors, so
    /// a password alone never moves it: only a session that has proved a second factor may.
    async fn may_change_email(&self, caller: &Caller, who: &SignedIn, target: &Target) -> Result<(), AppError> {
        if who.needs_second_factor || who.must_change_password || !self.has_second_factor(who.account).await? {
            self.audit(vec![self.event(caller, target, Outcome::Denied)]).await?;
            return Err(AppError::Conflict(
                "To change your email address, first set up a passkey or an authenticator app below: a password alone \
                 cannot change where your account's messages go."
                    .into(),
            ));
        }
        Ok(())
    }

    /// Checks the signed-in person's current password, after the step-up check: wrong answers
    /// are limited per account.
    async fn current_password_ok(
        &self,
        caller: &Caller,
        who: &SignedIn,
        current: (&'static str, &str),
        target: &Target,
    ) -> Result<AccountRow, AppError> {
        let (field, current) = current;
        if self.has_second_factor(who.account).await? && !self.identity().recently_confirmed(who) {
            self.audit(vec![self.event(caller, target, Outcome::Denied)]).await?;
            return Err(AppError::Conflict(CONFIRM_FIRST.into()));
        }
        let account = self.store.account(who.account).await?.ok_or(AppError::Unauthenticated)?;
        let now = self.now();
        let c = self.store.count_attempt(&format!("pw:{}", who.account), WINDOW, now).await?;
        let day = self.store.count_attempt(&format!("pw-day:{}", who.account), 86_400, now).await?;
        if let Err(e) =
            within(c, PER_ACCOUNT_CHECKS, WINDOW, now).and_then(|()| within(day, PER_ACCOUNT_CHECKS_A_DAY, 86_400, now))
        {
            self.audit(vec![self.event(caller, target, Outcome::Denied)]).await?;
            return Err(e);
        }
        if !verify_password(current.to_owned(), account.password_hash.clone()).await {
            self.audit(vec![self.event(caller, target, Outcome::Denied)]).await?;
            return Err(AppError::field(field, "That is not your current password."));
        }
        Ok(account)
    }

    async fn check_new_password(
        &self,
        account: &AccountRow,
        password: &str,
        confirm: &str,
        field: &'static str,
    ) -> Result<(), AppError> {
        if let Some(problem) = self.password_problem(password, &[&account.email, &account.display_name]).await {
            return Err(AppError::Invalid(vec![FieldError { field, message: problem }]));
        }
        if password != confirm {
            return Err(AppError::field("confirm", "The two passwords are not the same."));
        }
        Ok(())
    }

    async fn password_changed_notice(&self, account: AccountId) -> Result<(), AppError> {
        self.notify(account, Security::PasswordChanged).await
    }
}

impl Identity<'_> {
    /// Signs in with email and password. The answer for an unknown email, a wrong password, an
    /// account not yet activated or a disabled one is the same, after the same work. `device` is
    /// the browser's device cookie: a browser the account finished a sign-in with before is not
    /// held back by a flood of failures from elsewhere.
    ///
    /// # Errors
    /// [`AppError::BadCredentials`]; [`AppError::RateLimited`] when a limit holds the attempt
    /// back (no password is checked); [`AppError::SignInPaused`] after 100 consecutive failures
    /// from unknown browsers; [`AppError::PasswordMustChange`] for a right password found on the
    /// breached list of an account with no second factor (a reset code is mailed instead).
    pub async fn sign_in(
        &self,
        caller: &Caller,
        email: &str,
        password: &str,
        device: Option<&str>,
    ) -> Result<SignInStep, AppError> {
        let key = email.trim().to_lowercase();
        let account =
            if key.is_empty() || key.len() > 254 { None } else { self.app.store.account_by_email(&key).await? };
        let device_hash = device.filter(|d| plausible_token(d)).map(|d| token_hash(&format!("device:{d}")));
        let known = match (&account, &device_hash) {
            (Some(a), Some(h)) => self.app.store.known_device(a.id, h).await?,
            _ => false,
        };
        let failed = |account: Option<AccountId>| {
            Target::account(Verb::SignIn, &account.map_or_else(|| "unknown".to_owned(), |a| a.to_string()))
        };
        let claimed =
            match self.app.admit(caller, &key, account.as_ref(), device_hash.as_deref().filter(|_| known)).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    // Held back, not checked: recorded, but not counted towards a spike (addresses
                    // hammering a paused account must not put the whole platform under attack).
                    let outcome = if matches!(e, AppError::SignInPaused) { "paused" } else { "rate_limited" };
                    metrics::counter!("tiaki_sign_in_total", "outcome" => outcome).increment(1);
                    self.app.audit_refusal(caller, &failed(account.as_ref().map(|a| a.id))).await?;
                    return Err(e);
                }
            };
        let usable = account.as_ref().filter(|a| a.disabled_at.is_none());
        let ok = verify_password(password.to_owned(), usable.and_then(|a| a.password_hash.clone())).await;
        let Some(account) = usable.filter(|_| ok) else {
            self.app.sign_in_failed(account.as_ref(), device_hash.as_deref().filter(|_| known), claimed).await?;
            metrics::counter!("tiaki_sign_in_total", "outcome" => "failed").increment(1);
            tracing::info!(event = "sign_in.failed", "sign-in failed");
            self.app
                .audit(vec![self.app.event(caller, &failed(account.as_ref().map(|a| a.id)), Outcome::Denied)])
                .await?;
            return Err(AppError::BadCredentials);
        };
        if claimed.is_some() {
            self.app.store.release_sign_in_attempt(account.id, account.last_failed_sign_in_at).await?;
        }
        if self.app.password_is_breached(password, account).await {
            self.app.store.mark_password_breached(account.id, self.app.now()).await?;
            metrics::counter!("tiaki_sign_in_total", "outcome" => "breached_password").increment(1);
            let target = Target::account(Verb::SignInBreachedPassword, &account.id);
            self.app.audit(vec![self.app.event(caller, &target, Outcome::Denied)]).await?;
            if !self.app.has_second_factor(account.id).await? {
                // The password alone is all anyone needs, and it is known to be out there: no
                // session; the holder gets a code to choose a new one.
                self.app.send_reset_link(account, true).await?;
                return Err(AppError::PasswordMustChange);
            }
        }
        let step = self.app.after_password(account.id, caller).await?;
        if let SignInStep::Done(outcome) = &step {
            metrics::counter!("tiaki_sign_in_total", "outcome" => "succeeded").increment(1);
            tracing::info!(event = "sign_in.succeeded", account = %account.id, session = %outcome.signed_in.session, "signed in");
        }
        Ok(step)
    }

    /// "Forgot your password?": mails a code to choose a new one, if the email is an activated
    /// account's (at most one every 15 minutes). The answer is the same whatever the email.
    ///
    /// # Errors
    /// [`AppError::RateLimited`] when this address has asked too often.
    pub async fn request_password_reset(&self, caller: &Caller, email: &str) -> Result<(), AppError> {
        let target = Target::account(Verb::PasswordResetRequest, &"by_email");
        if let Err(e) = self.app.limit_address(caller, 1).await {
            self.app.audit_refusal(caller, &target).await?;
            return Err(e);
        }
        let key = email.trim().to_lowercase();
        let account =
            if key.is_empty() || key.len() > 254 { None } else { self.app.store.account_by_email(&key).await? };
        if let Some(a) = account.filter(|a| a.disabled_at.is_none() && a.password_hash.is_some()) {
            let sent = self.app.send_reset_link(&a, false).await?;
            let target = Target::account(Verb::PasswordResetRequest, &a.id);
            self.app
                .audit(vec![self.app.event(caller, &target, if sent { Outcome::Allowed } else { Outcome::Denied })])
                .await?;
        } else {
            // The same work as for an account (a look-up of recent links, one transaction), so
            // the answer's timing does not say whether the email has one (review #16).
            let now = self.app.now();
            self.app.store.links_since(LinkKind::PasswordReset, AccountId::random(), now - RESET_EVERY_SECS).await?;
            self.app.store.spend_decoy_link(LinkKind::PasswordReset, &token_hash(&new_token()?), now).await?;
            self.app.audit(vec![self.app.event(caller, &target, Outcome::NotFound)]).await?;
        }
        Ok(())
    }

    /// The email a live password-reset code is for (the page shows it).
    ///
    /// # Errors
    /// [`AppError::LinkExpired`] for a used, expired or unknown code.
    pub async fn password_reset_for(&self, code: &str) -> Result<String, AppError> {
        let Some(hash) = code_hash(code) else { return Err(AppError::LinkExpired) };
        let account = self
            .app
            .store
            .peek_link(LinkKind::PasswordReset, &hash, self.app.now())
            .await?
            .ok_or(AppError::LinkExpired)?;
        Ok(self.app.store.account(account).await?.ok_or(AppError::LinkExpired)?.email)
    }

    /// Uses a password-reset code: the new password is set, every session ends, and the holder
    /// is told. It does not sign in: the person signs in with the new password (and their
    /// second factor, if they have one).
    ///
    /// # Errors
    /// [`AppError::Invalid`] for an unacceptable password; [`AppError::LinkExpired`] for a used,
    /// expired or unknown code. Nothing changes on any error.
    pub async fn reset_password(
        &self,
        caller: &Caller,
        code: &str,
        password: &str,
        confirm: &str,
    ) -> Result<(), AppError> {
        let Some(code) = code_hash(code) else { return Err(AppError::LinkExpired) };
        let now = self.app.now();
        let id = self.app.store.peek_link(LinkKind::PasswordReset, &code, now).await?.ok_or(AppError::LinkExpired)?;
        let account = self.app.store.account(id).await?.ok_or(AppError::LinkExpired)?;
        self.app.check_new_password(&account, password, confirm, "password").await?;
        let hash = hash_password(password.to_owned()).await.map_err(AppError::Internal)?;
        let id = self.app.store.use_password_reset(&code, now, &hash).await?.ok_or(AppError::LinkExpired)?;
        self.app
            .audit(vec![self.app.event(caller, &Target::account(Verb::PasswordReset, &id), Outcome::Allowed)])
            .await?;
        self.app.password_changed_notice(id).await
    }

    /// Changes the signed-in account's password, given the current one. Needs a second factor
    /// proved in the last ten minutes when the account has one. Every other session ends.
    ///
    /// # Errors
    /// [`AppError::Conflict`] without a recent confirmation; [`AppError::Invalid`] for a wrong
    /// current password or an unacceptable new one; [`AppError::RateLimited`] after too many
    /// wrong current passwords.
    pub async fn change_password(
        &self,
        caller: &Caller,
        who: &SignedIn,
        current: &str,
        password: &str,
        confirm: &str,
    ) -> Result<String, AppError> {
        let target = Target::account(Verb::PasswordChange, &who.account);
        let account = self.app.current_password_ok(caller, who, ("current", current), &target).await?;
        if current == password {
            return Err(AppError::field("password", "Choose a password different from your current one."));
        }
        self.app.check_new_password(&account, password, confirm, "password").await?;
        let hash = hash_password(password.to_owned()).await.map_err(AppError::Internal)?;
        // The session continues under a new token (review #23): one copied before the change
        // no longer works after it.
        let token = new_token()?;
        self.app.store.change_password(who.account, &hash, who.session, &token_hash(&token), self.app.now()).await?;
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        self.app.password_changed_notice(who.account).await?;
        Ok(token)
    }

    /// Starts changing the signed-in account's email, given the current password (and a recent
    /// second factor when the account has one): a code goes to the new address, and the old one
    /// is told. An address already in use gets no code, but the answer is the same.
    ///
    /// # Errors
    /// As for [`App::change_password`], and [`AppError::Invalid`] for a malformed email.
    pub async fn request_email_change(
        &self,
        caller: &Caller,
        who: &SignedIn,
        current: &str,
        new_email: &str,
    ) -> Result<(), AppError> {
        let email = Email::parse(new_email).map_err(|e| AppError::field("new_email", e.to_string()))?;
        let target = Target::account(Verb::EmailChangeRequest, &who.account);
        self.app.may_change_email(caller, who, &target).await?;
        let account = self.app.current_password_ok(caller, who, ("email_current", current), &target).await?;
        if email.as_str() == account.email {
            return Err(AppError::field("new_email", "That is already your email address."));
        }
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        // The holder is told whether or not the address is free: what they are told (and
        // when) says nothing about other people's addresses.
        self.app.notify(who.account, Security::EmailChangeAsked { new_email: email.as_str() }).await?;
        if self.app.store.account_by_email(email.as_str()).await?.is_some() {
            return Ok(());
        }
        let now = self.app.now();
        let code = new_code()?;
        let hash = code_hash(&code).ok_or_else(|| AppError::Internal("a new code did not read back".into()))?;
        self.app.store.create_email_change(&hash, who.account, email.as_str(), now, now + EMAIL_LINK_SECS).await?;
        let mail =
            texts::mail(email.as_str(), &account.display_name, &texts::Email::NewAddressCode { code: &code }, now);
        self.app.store.enqueue_mail(&mail).await?;
        self.app.mail_waker.notify_one();
        Ok(())
    }

    /// Types in an email-change code in the session of the account it is for: the account takes
    /// the new address, and both addresses are told. Returns the new address.
    ///
    /// # Errors
    /// [`AppError::LinkExpired`] for a used, expired, unknown or someone else's code;
    /// [`AppError::Conflict`] when another account took the address meanwhile.
    pub async fn confirm_email_change(&self, caller: &Caller, who: &SignedIn, code: &str) -> Result<String, AppError> {
        let target = Target::account(Verb::EmailChange, &who.account);
        self.app.may_change_email(caller, who, &target).await?;
        let Some(hash) = code_hash(code) else { return Err(AppError::LinkExpired) };
        let Some(changed) = self.app.store.use_email_change(&hash, who.account, self.app.now()).await? else {
            self.app.audit(vec![self.app.event(caller, &target, Outcome::Denied)]).await?;
            return Err(AppError::LinkExpired);
        };
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        let what = Security::EmailChanged { old_email: &changed.old_email, new_email: &changed.new_email };
        // The old address is told too, without a name: whoever reads it now may not be the holder.
        self.app
            .store
            .enqueue_mail(&texts::mail(&changed.old_email, "", &texts::Email::Security(what), self.app.now()))
            .await?;
        self.app.notify(who.account, what).await?;
        Ok(changed.new_email)
    }

    /// The signed-in account's email.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn account_email(&self, who: &SignedIn) -> Result<String, AppError> {
        Ok(self.app.store.account(who.account).await?.ok_or(AppError::Unauthenticated)?.email)
    }
}

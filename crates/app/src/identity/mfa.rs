//! Second factors (issue 3, first part): TOTP authenticators (RFC 6238, ±1 step, each step
//! accepted once) and ten single-use recovery codes, stored hashed. With an authenticator set up,
//! a correct password opens no session: it opens a five-minute challenge that only a correct
//! second factor turns into a session. Adding a factor or using a recovery code is emailed to the
//! account holder, with no link and nothing asked of them.

use super::Identity;
use crate::audit::{Caller, Outcome, Target};
use crate::identity::credentials::{new_token, plausible_token, random_bytes, token_hash};
use crate::identity::{Proof, SignInOutcome, SignedIn};
use crate::notify::texts::Security;
use crate::{App, AppError};
use domain::AccountId;
use domain::Verb;

/// How long a correct password waits for its second factor, seconds.
const CHALLENGE_SECS: i64 = 300;
/// Wrong codes a challenge tolerates before the sign-in must start again.
const MAX_FAILURES: i32 = 5;
/// Wrong codes an account tolerates across all its challenges in [`FAILURE_WINDOW`]: someone
/// with the password cannot open challenge after challenge to guess the 6 digits.
const MAX_ACCOUNT_FAILURES: i64 = 20;
/// The window for [`MAX_ACCOUNT_FAILURES`], seconds.
const FAILURE_WINDOW: i64 = 3600;
/// How long an emailed set-up link works, seconds.
pub(crate) const SETUP_LINK_SECS: i64 = 1800;
/// What a session opened by a password alone is told when it tries to add a factor.
pub(crate) const SETUP_LINK_NEEDED: &str = "To add a passkey or an authenticator app, first type the set-up code we email you, in this browser. A password alone can never add one.";
/// Recovery codes issued at a time.
const RECOVERY_CODES: usize = 10;
/// The alphabet of recovery codes: no 0/O, 1/I/L.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// Where a sign-in stands after the password.
#[derive(Debug)]
pub enum SignInStep {
    /// Signed in (the account has no second factor yet).
    Done(Box<SignInOutcome>),
    /// The password was right; the second factor is asked for next. Carries the challenge
    /// token (for a short-lived cookie), never a session.
    SecondFactor(String),
}

/// What the account's security page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaStatus {
    /// Whether an authenticator app is set up.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
}

/// An authenticator being set up: the secret as text and as a QR code (SVG, made here).
#[derive(Debug, Clone)]
pub struct TotpSetup {
    /// The secret in base32, grouped for typing.
    pub secret: String,
    /// The `otpauth://` URL the QR code holds.
    pub url: String,
    /// The QR code as an SVG document (no script, no style).
    pub qr_svg: String,
}

fn totp(secret: &[u8], account: &str) -> Result<totp_rs::Totp, AppError> {
    totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .with_issuer(Some("Tiaki"))
        .with_account_name(account.replace(':', ""))
        .build()
        .map_err(|e| AppError::Internal(format!("totp: {e}")))
}

/// The time step a typed code matches (±1 step of drift), if it matches one.
fn code_step(secret: &[u8], email: &str, code: &str, now: i64) -> Result<Option<i64>, AppError> {
    Ok(totp(secret, email)?
        .check(&normalise(code), u64::try_from(now).unwrap_or(0))
        .and_then(|s| i64::try_from(s).ok()))
}

/// What is stored of a recovery code: an HMAC-SHA-256 under the pepper the master key guards
/// (`None`: a bare SHA-256, as codes made before the pepper, or without a master key, are).
fn recovery_hash(pepper: Option<&[u8]>, account: AccountId, code: &str) -> Vec<u8> {
    let text = format!("recovery:{account}:{code}");
    match pepper {
        Some(p) => {
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, p);
            aws_lc_rs::hmac::sign(&key, text.as_bytes()).as_ref().to_vec()
        }
        None => token_hash(&text),
    }
}

/// A recovery code as typed: letters and digits only, upper case.
fn normalise(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect()
}

pub(crate) fn new_recovery_codes(
    pepper: Option<&[u8]>,
    account: AccountId,
) -> Result<(Vec<String>, Vec<Vec<u8>>), AppError> {
    let mut shown = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let raw: String =
            random_bytes::<10>()?.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect();
        hashes.push(recovery_hash(pepper, account, &raw));
        shown.push(format!("{}-{}", &raw[..5], &raw[5..]));
    }
    Ok((shown, hashes))
}

impl App {
    /// Uses one of the account's recovery codes once (as typed, normalised): the peppered hash,
    /// or the bare one of codes made before the pepper.
    async fn use_recovery_code(&self, account: AccountId, typed: &str, now: i64) -> Result<bool, AppError> {
        let pepper = self.recovery_pepper().await?;
        if self.store.use_recovery_code(account, &recovery_hash(pepper.as_deref(), account, typed), now).await? {
            return Ok(true);
        }
        Ok(pepper.is_some() && self.store.use_recovery_code(account, &recovery_hash(None, account, typed), now).await?)
    }

    /// Accepts a code from the account's authenticator once: it must match a time step later
    /// than the last one accepted (no replay, at sign-in or anywhere else).
    async fn accept_code(&self, account: AccountId, secret: &[u8], email: &str, code: &str) -> Result<bool, AppError> {
        let secret = self.open_totp_secret(account, secret)?;
        match code_step(&secret, email, code, self.now())? {
            Some(step) => Ok(self.store.accept_totp_step(account, step).await?),
            None => Ok(false),
        }
    }

    /// After a correct password: a session, or (with a second factor set up) a challenge.
    pub(crate) async fn after_password(&self, account: AccountId, caller: &Caller) -> Result<SignInStep, AppError> {
        if !self.has_second_factor(account).await? {
            return Ok(SignInStep::Done(Box::new(
                self.open_session(account, caller, Verb::SignIn, Proof::Password).await?,
            )));
        }
        let token = new_token()?;
        let now = self.now();
        self.store.create_mfa_challenge(&token_hash(&token), account, now, now + CHALLENGE_SECS).await?;
        self.audit(vec![self.event(caller, &Target::account(Verb::SignInPassword, &account), Outcome::Allowed)])
            .await?;
        metrics::counter!("tiaki_sign_in_total", "outcome" => "second_factor_asked").increment(1);
        Ok(SignInStep::SecondFactor(token))
    }

    /// The account an open sign-in challenge is for.
    pub(crate) async fn open_challenge_account(&self, challenge: &str) -> Result<AccountId, AppError> {
        if !plausible_token(challenge) {
            return Err(AppError::LinkExpired);
        }
        self.store.mfa_challenge(&token_hash(challenge), self.now(), MAX_FAILURES).await?.ok_or(AppError::LinkExpired)
    }

    /// A wrong second factor: counted against the challenge and the account, and recorded.
    pub(crate) async fn second_factor_failed(
        &self,
        caller: &Caller,
        challenge: &str,
        account: AccountId,
    ) -> Result<(), AppError> {
        self.store.fail_mfa_challenge(&token_hash(challenge)).await?;
        self.after_code_failure(account).await?;
        let target = Target::account(Verb::SignInSecondFactor, &account);
        self.audit(vec![self.event(caller, &target, Outcome::Denied)]).await?;
        metrics::counter!("tiaki_sign_in_total", "outcome" => "second_factor_failed").increment(1);
        Ok(())
    }

    /// A right second factor: the challenge is used up and a session opens.
    pub(crate) async fn second_factor_passed(
        &self,
        caller: &Caller,
        challenge: &str,
        account: AccountId,
        recovery_used: bool,
        proof: Proof,
    ) -> Result<SignInOutcome, AppError> {
        if !self.store.use_mfa_challenge(&token_hash(challenge), self.now(), MAX_FAILURES).await? {
            return Err(AppError::LinkExpired);
        }
        metrics::counter!("tiaki_sign_in_total", "outcome" => "succeeded").increment(1);
        let target = Target::account(Verb::SignInSecondFactor, &account);
        self.audit(vec![self.event(caller, &target, Outcome::Allowed)]).await?;
        if recovery_used {
            self.notify(account, Security::RecoveryCodeUsed).await?;
        }
        self.open_session(account, caller, Verb::SignIn, proof).await
    }

    /// Tells the account holder what happened to their account: in the inbox, and by email
    /// (a security notice is always emailed, never switched off).
    pub(crate) async fn notify(&self, account: AccountId, what: Security<'_>) -> Result<(), AppError> {
        let Some(row) = self.store.account(account).await? else { return Ok(()) };
        let mail = self.security_notice(account, &row.email, &row.display_name, what);
        self.tell(std::slice::from_ref(&mail)).await
    }

    /// When a wrong code brings the account to its cap, the holder is told (once per window): so
    /// many wrong codes mostly means someone else has the password.
    async fn after_code_failure(&self, account: AccountId) -> Result<(), AppError> {
        if self.store.recent_mfa_failures(account, self.now() - FAILURE_WINDOW).await? == MAX_ACCOUNT_FAILURES {
            self.notify(account, Security::ManyWrongCodes).await?;
        }
        Ok(())
    }

    /// Refuses further codes for an account that has had too many wrong ones lately (sign-in and
    /// factor changes alike).
    ///
    /// Each code to be checked first claims one of the account's [`MAX_ACCOUNT_FAILURES`] checks
    /// for the window, in one atomic step (as a password attempt is claimed before its hash is
    /// checked), so parallel guesses across many challenges cannot slip past the cap between a
    /// count and its update (review #15).
    pub(crate) async fn guard_code_guessing(
        &self,
        caller: &Caller,
        account: AccountId,
        verb: Verb,
    ) -> Result<(), AppError> {
        let now = self.now();
        let claimed = self.store.count_attempt(&format!("codes:{account}"), FAILURE_WINDOW, now).await?;
        if claimed.attempts > MAX_ACCOUNT_FAILURES
            || self.store.recent_mfa_failures(account, now - FAILURE_WINDOW).await? >= MAX_ACCOUNT_FAILURES
        {
            self.audit(vec![self.event(caller, &Target::account(verb, &account), Outcome::Denied)]).await?;
            if verb == Verb::SignInSecondFactor {
                metrics::counter!("tiaki_sign_in_total", "outcome" => "second_factor_locked").increment(1);
            }
            let left = FAILURE_WINDOW - (now - claimed.window_start);
            return Err(AppError::RateLimited(u64::try_from(left).unwrap_or(3600).max(1)));
        }
        Ok(())
    }
}

impl Identity<'_> {
    /// Whether a sign-in challenge is still open (for the second-factor page).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn challenge_open(&self, challenge: &str) -> Result<bool, AppError> {
        if !plausible_token(challenge) {
            return Ok(false);
        }
        Ok(self.app.store.mfa_challenge(&token_hash(challenge), self.app.now(), MAX_FAILURES).await?.is_some())
    }

    /// Finishes a sign-in with a code from the authenticator app or a recovery code. Each TOTP
    /// time step and each recovery code is accepted once; five wrong codes end the challenge.
    ///
    /// # Errors
    /// [`AppError::LinkExpired`] when the challenge is gone (expired, used or failed too often:
    /// sign in again); [`AppError::Invalid`] for a wrong code.
    pub async fn complete_sign_in(
        &self,
        caller: &Caller,
        challenge: &str,
        code: &str,
    ) -> Result<SignInOutcome, AppError> {
        let now = self.app.now();
        let account = self.app.open_challenge_account(challenge).await?;
        self.app.guard_code_guessing(caller, account, Verb::SignInSecondFactor).await?;
        let typed = normalise(code);
        let mut recovery_used = false;
        let accepted = if typed.len() == 6 && typed.bytes().all(|b| b.is_ascii_digit()) {
            match self.app.store.totp_factor(account).await? {
                Some(row) if row.confirmed_at.is_some() => {
                    let account_row = self.app.store.account(account).await?.ok_or(AppError::LinkExpired)?;
                    self.app.accept_code(account, &row.secret, &account_row.email, &typed).await?
                }
                _ => false,
            }
        } else if typed.len() == 10 {
            recovery_used = self.app.use_recovery_code(account, &typed, now).await?;
            recovery_used
        } else {
            false
        };
        if !accepted {
            self.app.second_factor_failed(caller, challenge, account).await?;
            return Err(AppError::field(
                "code",
                "That code is not right, or was already used. Enter the 6-digit code your authenticator app shows now, or one of your recovery codes.",
            ));
        }
        self.app.second_factor_passed(caller, challenge, account, recovery_used, Proof::SecondFactor).await
    }

    /// "Confirm it's you" with a code from the authenticator app: the session counts as freshly
    /// confirmed for ten minutes. Returns its new token.
    ///
    /// # Errors
    /// [`AppError::Invalid`] for a wrong or used code.
    pub async fn confirm_with_code(&self, caller: &Caller, who: &SignedIn, code: &str) -> Result<String, AppError> {
        let account = self.app.store.account(who.account).await?.ok_or(AppError::Unauthenticated)?;
        self.app.guard_code_guessing(caller, who.account, Verb::MfaConfirm).await?;
        let ok = match self.app.store.totp_factor(who.account).await? {
            Some(row) if row.confirmed_at.is_some() => {
                self.app.accept_code(who.account, &row.secret, &account.email, code).await?
            }
            _ => false,
        };
        if !ok {
            self.app.store.record_mfa_failure(who.account, self.app.now()).await?;
            self.app.after_code_failure(who.account).await?;
            self.app
                .audit(vec![self.app.event(caller, &Target::account(Verb::MfaConfirm, &who.account), Outcome::Denied)])
                .await?;
            return Err(AppError::field(
                "confirm_code",
                "That code is not right, or was already used. Enter the 6 digits the app shows now.",
            ));
        }
        self.app.confirmed(caller, who).await
    }

    /// Remembers the browser a sign-in came from (by its device cookie). A browser the account
    /// has not used before is emailed to the holder (no link) unless `quiet` (the activation that
    /// first set the password). Returns whether it was new.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn remember_device(
        &self,
        caller: &Caller,
        who: &SignedIn,
        device: &str,
        quiet: bool,
    ) -> Result<bool, AppError> {
        if !plausible_token(device) {
            return Ok(false);
        }
        let now = self.app.now();
        let new = self.app.store.remember_device(who.account, &token_hash(&format!("device:{device}")), now).await?;
        if new && !quiet {
            let when = time::OffsetDateTime::from_unix_timestamp(now)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc2822).ok())
                .unwrap_or_default();
            let from = caller.ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
            // The parsed browser only: the raw header is the sender's own text.
            let device = super::describe_device(&caller.user_agent);
            self.app.notify(who.account, Security::NewSignIn { device: &device, from: &from, when: &when }).await?;
        }
        Ok(new)
    }

    /// The account's second factors.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn mfa_status(&self, who: &SignedIn) -> Result<MfaStatus, AppError> {
        let totp = self.app.store.totp_factor(who.account).await?.is_some_and(|t| t.confirmed_at.is_some());
        Ok(MfaStatus { totp, recovery_codes_left: self.app.store.recovery_codes_left(who.account).await? })
    }

    /// Starts setting up an authenticator app: a fresh 160-bit secret, pending until a code from
    /// it is entered.
    ///
    /// # Errors
    /// [`AppError::Conflict`] when one is already set up.
    pub async fn begin_totp(&self, who: &SignedIn) -> Result<TotpSetup, AppError> {
        if !who.may_add_factor {
            return Err(AppError::Conflict(SETUP_LINK_NEEDED.into()));
        }
        let account = self.app.store.account(who.account).await?.ok_or(AppError::Unauthenticated)?;
        let secret = random_bytes::<20>()?;
        // Stored sealed under a key the master key wraps: the database alone gives no codes.
        let stored = self.app.seal_totp_secret(who.account, &secret)?;
        if !self.app.store.start_totp(who.account, &stored, self.app.now()).await? {
            return Err(AppError::Conflict("An authenticator app is already set up for this account.".into()));
        }
        let t = totp(&secret, &account.email)?;
        let url = t.to_url().map_err(|e| AppError::Internal(format!("totp url: {e}")))?;
        let qr = qrcode::QrCode::new(url.as_bytes()).map_err(|e| AppError::Internal(format!("qr: {e}")))?;
        let qr_svg = qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
        // Inline in the page: no XML prolog. The SVG holds only a rect and a path (no script,
        // no style attribute, so the page's CSP is unaffected).
        let qr_svg = qr_svg.trim_start_matches(r#"<?xml version="1.0" standalone="yes"?>"#).to_owned();
        let base32 = t.secret().to_base32();
        let secret =
            base32.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ");
        Ok(TotpSetup { secret, url, qr_svg })
    }

    /// Confirms the authenticator with a code from it; returns the ten recovery codes (shown
    /// once) and the session's new token (for the cookie). The account holder is emailed.
    ///
    /// # Errors
    /// [`AppError::Invalid`] for a wrong code; [`AppError::Conflict`] when nothing is pending.
    pub async fn confirm_totp(
        &self,
        caller: &Caller,
        who: &SignedIn,
        code: &str,
    ) -> Result<(Vec<String>, String), AppError> {
        if !who.may_add_factor {
            return Err(AppError::Conflict(SETUP_LINK_NEEDED.into()));
        }
        let account = self.app.store.account(who.account).await?.ok_or(AppError::Unauthenticated)?;
        let row =
            self.app.store.totp_factor(who.account).await?.filter(|r| r.confirmed_at.is_none()).ok_or_else(|| {
                AppError::Conflict("There is no authenticator app waiting to be confirmed; start again.".into())
            })?;
        let wrong = || AppError::field("code", "That code is not right. Enter the 6 digits the app shows now.");
        let secret = self.app.open_totp_secret(who.account, &row.secret)?;
        let step = code_step(&secret, &account.email, code, self.app.now())?.ok_or_else(wrong)?;
        let (shown, hashes) = new_recovery_codes(self.app.recovery_pepper().await?.as_deref(), who.account)?;
        if !self.app.store.confirm_totp(who.account, step, self.app.now(), &hashes).await? {
            return Err(wrong());
        }
        // This session has just proved the factor: it gets a new token, and any other session
        // (perhaps opened with a stolen password) ends.
        let token = new_token()?;
        self.app.store.mark_session_mfa(who.session, self.app.now(), &token_hash(&token)).await?;
        self.app.store.end_other_sessions(who.account, Some(who.session), self.app.now()).await?;
        self.app
            .audit(vec![self.app.event(caller, &Target::account(Verb::MfaTotpAdd, &who.account), Outcome::Allowed)])
            .await?;
        self.app.notify(who.account, Security::AuthenticatorAdded).await?;
        Ok((shown, token))
    }

    /// Replaces the recovery codes (the old set stops working), on a current code from the app.
    ///
    /// # Errors
    /// [`AppError::Invalid`] for a wrong or already used code.
    pub async fn regenerate_recovery_codes(
        &self,
        caller: &Caller,
        who: &SignedIn,
        code: &str,
    ) -> Result<Vec<String>, AppError> {
        let account = self.app.store.account(who.account).await?.ok_or(AppError::Unauthenticated)?;
        let wrong = || {
            AppError::field(
                "code",
                "That code is not right, or was already used. Enter the 6 digits the app shows now.",
            )
        };
        self.app.guard_code_guessing(caller, who.account, Verb::MfaRecoveryCodesReplace).await?;
        let row =
            self.app.store.totp_factor(who.account).await?.filter(|r| r.confirmed_at.is_some()).ok_or_else(wrong)?;
        if !self.app.accept_code(who.account, &row.secret, &account.email, code).await? {
            self.app.store.record_mfa_failure(who.account, self.app.now()).await?;
            self.app.after_code_failure(who.account).await?;
            let target = Target::account(Verb::MfaRecoveryCodesReplace, &who.account);
            self.app.audit(vec![self.app.event(caller, &target, Outcome::Denied)]).await?;
            return Err(wrong());
        }
        let (shown, hashes) = new_recovery_codes(self.app.recovery_pepper().await?.as_deref(), who.account)?;
        self.app.store.replace_recovery_codes(who.account, &hashes).await?;
        self.app
            .audit(vec![self.app.event(
                caller,
                &Target::account(Verb::MfaRecoveryCodesReplace, &who.account),
                Outcome::Allowed,
            )])
            .await?;
        Ok(shown)
    }

    /// Removes the account's authenticator and recovery codes, on a current code from the app or
    /// an unused recovery code (a stolen session alone cannot take the factor away). The account
    /// holder is emailed.
    ///
    /// # Errors
    /// [`AppError::Invalid`] for a wrong or used code; [`AppError::Conflict`] when none is set up.
    pub async fn remove_totp(&self, caller: &Caller, who: &SignedIn, code: &str) -> Result<(), AppError> {
        let account = self.app.store.account(who.account).await?.ok_or(AppError::Unauthenticated)?;
        let row = self
            .app
            .store
            .totp_factor(who.account)
            .await?
            .filter(|r| r.confirmed_at.is_some())
            .ok_or_else(|| AppError::Conflict("No authenticator app is set up.".into()))?;
        // Staff and operators must keep a second factor: the app goes only if a passkey stays.
        if who.kind != domain::AccountKind::Patient
            && self.app.settings.staff_mfa_required
            && self.app.store.passkeys(who.account).await?.is_empty()
        {
            return Err(AppError::Conflict(
                "This is your only second factor, and staff accounts must keep one. Add a passkey first.".into(),
            ));
        }
        let typed = normalise(code);
        let now = self.app.now();
        self.app.guard_code_guessing(caller, who.account, Verb::MfaTotpRemove).await?;
        let proved = if typed.len() == 6 && typed.bytes().all(|b| b.is_ascii_digit()) {
            self.app.accept_code(who.account, &row.secret, &account.email, &typed).await?
        } else {
            typed.len() == 10 && self.app.use_recovery_code(who.account, &typed, now).await?
        };
        let target = Target::account(Verb::MfaTotpRemove, &who.account);
        if !proved {
            self.app.store.record_mfa_failure(who.account, now).await?;
            self.app.after_code_failure(who.account).await?;
            self.app.audit(vec![self.app.event(caller, &target, Outcome::Denied)]).await?;
            return Err(AppError::field(
                "remove_code",
                "That code is not right, or was already used. Enter the 6 digits the app shows now, or a recovery code.",
            ));
        }
        self.app.store.remove_factors(who.account).await?;
        // No session keeps a proof of a factor that is gone; the others end.
        self.app.store.reset_session_mfa(who.account, Some(who.session), now).await?;
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        self.app.notify(who.account, Security::AuthenticatorRemoved).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn recovery_codes_are_ten_distinct_unambiguous_and_normalise_as_typed() {
        let a = AccountId::random();
        let (shown, hashes) = new_recovery_codes(None, a).unwrap();
        assert_eq!(shown.len(), 10);
        let mut unique = shown.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        for (code, hash) in shown.iter().zip(&hashes) {
            assert_eq!(code.len(), 11);
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']), "{code}");
            assert_eq!(&recovery_hash(None, a, &normalise(&code.to_lowercase().replace('-', " "))), hash);
            assert_ne!(&recovery_hash(None, AccountId::random(), &normalise(code)), hash, "bound to the account");
        }
    }

    #[test]
    fn totp_matches_rfc_6238_and_allows_one_step_of_drift() {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", 8 digits: 94287082 at 59 s.
        // Six digits are its last six.
        let t = totp(b"12345678901234567890", "x@example.nz").unwrap();
        assert_eq!(t.check("287082", 59), Some(1));
        assert_eq!(t.check("287082", 59 + 30), Some(1), "one step late is accepted");
        assert_eq!(t.check("287082", 59 + 60), None, "two steps late is not");
    }
}

//! Identity: signing in and out, sessions, and single-use links (activation and invitations);
//! passwords and their resets (`signin`), second factors (`mfa`, `passkeys`), the
//! credential-stuffing defences (`ratelimit`, `breached`) and the tokens and hashes they use
//! (`credentials`).

pub mod breached;
pub(crate) mod credentials;
pub(crate) mod disable;
pub(crate) mod mfa;
pub mod passkeys;
pub(crate) mod ratelimit;
pub(crate) mod recovery;
pub(crate) mod sealed;
pub(crate) mod signin;

use crate::audit::{Caller, Outcome, Target};
use crate::identity::credentials::{
    code_hash, csrf_ok, csrf_token, hash_password, new_code, new_token, plausible_token, token_hash,
};
use crate::notify::texts;
use crate::{App, AppError, FieldError};
use authz::Principal;
use domain::Verb;
use domain::{AccountId, AccountKind, Email, PatientId, PersonName, PracticeId, SessionId, StaffRole};
use store::{Acceptance, InvitationPurpose, NewAccount, NewInvitation, NewSession, SessionRow};

/// The identity module's use cases, on the application's shared parts: [`App::identity`].
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    app: &'a App,
}

impl App {
    /// The identity module: signing in and out, sessions, links, passwords, second factors.
    #[must_use]
    pub const fn identity(&self) -> Identity<'_> {
        Identity { app: self }
    }
}

/// One of an account's signed-in sessions, as its holder sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Its public handle.
    pub id: SessionId,
    /// When it began.
    pub created_at: domain::UnixTime,
    /// When it was last used.
    pub last_seen_at: domain::UnixTime,
    /// The address it signed in from.
    pub ip: String,
    /// The browser it signed in with.
    pub user_agent: String,
}

impl From<SessionRow> for Session {
    fn from(r: SessionRow) -> Self {
        Self { id: r.id, created_at: r.created_at, last_seen_at: r.last_seen_at, ip: r.ip, user_agent: r.user_agent }
    }
}

/// A verified session: who is asking, for the web layer.
#[derive(Debug, Clone)]
#[expect(clippy::struct_excessive_bools, reason = "independent facts about one session")]
pub struct SignedIn {
    /// The principal the policy sees.
    pub principal: Principal,
    /// The account.
    pub account: AccountId,
    /// What kind of account.
    pub kind: AccountKind,
    /// The account's display name.
    pub name: String,
    /// The session's public handle.
    pub session: SessionId,
    /// For staff: their practice and role.
    pub staff: Option<(PracticeId, StaffRole)>,
    /// For patients: the patient record the session has open — their own, or, when they act
    /// for someone, that person's (the pages show it from the patient's side).
    pub patient: Option<PatientId>,
    /// For patients: their own patient record.
    pub own_patient: Option<PatientId>,
    /// Whom the session acts for, when it does: every page says so.
    pub acting_for: Option<Acting>,
    /// Unread notices in the inbox.
    pub unread_notices: i64,
    /// Staff and operators (and patients of a practice that requires it) must prove a second
    /// factor; until this session has, `principal` is [`Principal::Anonymous`] (every grant is
    /// refused) and only second-factor set-up is open.
    pub needs_second_factor: bool,
    /// An incident lead asked this account to use a second factor and this session has not
    /// proved one (part of `needs_second_factor`; the page says why).
    pub second_factor_asked: bool,
    /// Whether this session may add a first second factor: it was opened by an emailed link, or
    /// has opened a set-up link since (a password alone never adds a factor).
    pub may_add_factor: bool,
    /// When this session last proved a second factor (sign-in or a later "confirm it's you").
    pub mfa_at: Option<domain::UnixTime>,
    /// A patient whose practice requires a second factor and who has none: every page asks
    /// them to set one up.
    pub mfa_prompt: bool,
    /// An operator or practice admin whose session was not opened with a passkey while the
    /// operator requires passkeys of them: like `needs_second_factor`, only sign-in security.
    pub needs_passkey: bool,
    /// The account's password was found on the breached/common list: like
    /// `needs_second_factor`, nothing is reachable but choosing a new one.
    pub must_change_password: bool,
    token: String,
}

/// The person a session acts for.
#[derive(Debug, Clone)]
pub struct Acting {
    /// Their patient record.
    pub patient: PatientId,
    /// Their name.
    pub name: String,
    /// Who the signed-in person is to them, in words ("parent or guardian").
    pub relationship: &'static str,
    /// What the link lets the person do (as the link says; the policy decides each request).
    pub scopes: domain::proxies::ProxyScopes,
}

impl SignedIn {
    /// Whether this is a person's own side of the portal — a patient, or someone a practice
    /// set up to act for patients — and the session is not confined to its sign-in security:
    /// their inbox, and the people they act for, are theirs.
    #[must_use]
    pub fn is_a_persons_own(&self) -> bool {
        self.kind == AccountKind::Patient && !self.needs_second_factor && !self.must_change_password
    }

    /// What CSRF tokens for this session are bound to.
    #[must_use]
    pub fn csrf_binding(&self) -> &str {
        &self.token
    }
}

/// A browser as people know it, from its User-Agent: "Firefox on Windows". Only these words
/// are ever shown or mailed, never the header itself (anyone can put text in it).
#[must_use]
pub fn describe_device(user_agent: &str) -> String {
    let browser = ["Edg", "Firefox", "Chrome", "Safari"]
        .into_iter()
        .find(|b| user_agent.contains(b))
        .map(|b| if b == "Edg" { "Edge" } else { b });
    let os = ["Android", "iPhone", "iPad", "Windows", "Mac OS", "Linux"]
        .into_iter()
        .find(|o| user_agent.contains(o))
        .map(|o| if o == "Mac OS" { "macOS" } else { o });
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => o.to_owned(),
        (None, None) => "An unrecognised browser".to_owned(),
    }
}

/// The platform switch requiring passkeys of operators and practice admins.
pub(crate) const PASSKEYS_REQUIRED: &str = "passkeys_required_for_admins";

/// What a new session was opened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proof {
    /// A password alone (or an emailed link).
    Password,
    /// A password and a code (authenticator app or recovery code).
    SecondFactor,
    /// A passkey (alone or after the password).
    Passkey,
}

/// The result of a successful sign-in or activation.
#[derive(Debug)]
pub struct SignInOutcome {
    /// The new session's bearer token, for the cookie.
    pub token: String,
    /// The session it opened.
    pub signed_in: SignedIn,
}

/// What an activation or invitation code shows before it is used.
#[derive(Debug, Clone)]
pub struct InvitationPage {
    /// What it is for.
    pub purpose: InvitationPurpose,
    /// The name of the person it is for (none for the first-start link).
    pub name: Option<String>,
    /// Their email (none for the first-start link).
    pub email: Option<String>,
}

/// What a code typed at the sign-in page is for.
#[derive(Debug, Clone)]
pub enum CodeFor {
    /// An invitation: activation, joining a practice or the platform, or the first start.
    Invitation(InvitationPage),
    /// Choosing a new password for the account with this email.
    PasswordReset {
        /// The account's email (the page shows it).
        email: String,
    },
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl App {
    pub(crate) async fn open_session(
        &self,
        account: AccountId,
        caller: &Caller,
        verb: Verb,
        proof: Proof,
    ) -> Result<SignInOutcome, AppError> {
        let second_factor = proof != Proof::Password;
        let ip = caller.ip.map_or_else(|| "console".to_owned(), |ip| ip.to_string());
        let user_agent = caller.user_agent.as_str();
        let now = self.now();
        let token = new_token()?;
        let session = NewSession {
            id: SessionId::random(),
            token_hash: token_hash(&token),
            account,
            created_at: now,
            absolute_expires_at: now + self.settings.session_absolute_secs,
            ip,
            user_agent: truncate(user_agent, 200),
            mfa_at: second_factor.then_some(now),
            // A session opened by an emailed link (activation or invitation) may add a first
            // second factor; one opened by a password alone may not.
            setup_ok_at: (verb == Verb::Activate).then_some(now),
            mfa_passkey: proof == Proof::Passkey,
        };
        match self.store.create_session(&session).await {
            Ok(()) => {}
            // Disabled between proving who they are and now: the same answer as a wrong password.
            Err(store::StoreError::NotFound) => return Err(AppError::BadCredentials),
            Err(e) => return Err(e.into()),
        }
        if verb == Verb::SignIn {
            // A finished sign-in ends the account's run of failed passwords, unless it reached
            // the cap: then only a new password does (the holder's own sign-ins from a known
            // browser cannot reopen the account to another hundred guesses).
            self.store.sign_in_succeeded(account, crate::identity::ratelimit::LOCK_AFTER).await?;
        }
        let signed_in = self
            .identity()
            .authenticate(&token)
            .await?
            .ok_or_else(|| AppError::Internal("new session not found".into()))?;
        let as_them = Caller { principal: signed_in.principal.clone(), ..caller.clone() };
        let target = Target::account(verb, &account);
        self.audit(vec![self.event(&as_them, &target, Outcome::Allowed)]).await?;
        Ok(SignInOutcome { token, signed_in })
    }

    pub(crate) async fn create_operator_with(
        &self,
        grant: &authz::Grant<authz::ManageOperators>,
        name: &str,
        email: &str,
    ) -> Result<String, AppError> {
        let mut errors = Vec::new();
        let display_name = PersonName::parse(name)
            .map_err(|e| errors.push(FieldError { field: "operator_name", message: e.to_string() }))
            .ok();
        let email = Email::parse(email)
            .map_err(|e| errors.push(FieldError { field: "operator_email", message: e.to_string() }))
            .ok();
        let (Some(display_name), Some(email)) = (display_name, email) else {
            return Err(AppError::Invalid(errors));
        };
        let now = self.now();
        let (code, mut invite) = self.new_invitation(InvitationPurpose::JoinOperator)?;
        let days = self.invitation_days();
        let text = texts::Email::OperatorInvitation { code: &code, days };
        invite.mail = Some(texts::mail(email.as_str(), display_name.as_str(), &text, now));
        let account =
            NewAccount { id: AccountId::random(), kind: AccountKind::Operator, email, display_name, created_at: now };
        self.store.create_operator(grant, &account, &invite).await.map_err(|e| match AppError::from(e) {
            AppError::Conflict(m) => AppError::field("operator_email", m),
            other => other,
        })?;
        self.mail_waker.notify_one();
        Ok(code)
    }

    /// Uses an invitation's code to set a password without signing in (the console's `demo` uses this).
    ///
    /// # Errors
    /// As for [`App::accept_invitation`].
    pub(crate) async fn set_password_with_link(
        &self,
        code: &str,
        password: &str,
        confirm: &str,
        name: Option<&str>,
        email: Option<&str>,
    ) -> Result<AccountId, AppError> {
        let page = self.identity().invitation(code).await?;
        let hash = code_hash(code).ok_or(AppError::NotFound)?;
        let mut errors = Vec::new();
        let first_operator = if page.purpose == InvitationPurpose::FirstOperator {
            let name = PersonName::parse(name.unwrap_or_default());
            let email = Email::parse(email.unwrap_or_default());
            if let Err(e) = &name {
                errors.push(FieldError { field: "name", message: e.to_string() });
            }
            if let Err(e) = &email {
                errors.push(FieldError { field: "email", message: e.to_string() });
            }
            match (name, email) {
                (Ok(display_name), Ok(email)) => Some(NewAccount {
                    id: AccountId::random(),
                    kind: AccountKind::Operator,
                    email,
                    display_name,
                    created_at: self.now(),
                }),
                _ => None,
            }
        } else {
            None
        };
        let who: Vec<String> =
            [page.name.clone(), page.email.clone(), name.map(str::to_owned), email.map(str::to_owned)]
                .into_iter()
                .flatten()
                .collect();
        let who: Vec<&str> = who.iter().map(String::as_str).collect();
        if let Some(problem) = self.password_problem(password, &who).await {
            errors.push(FieldError { field: "password", message: problem });
        } else if password != confirm {
            errors.push(FieldError { field: "confirm", message: "The two passwords are not the same.".into() });
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let password_hash = hash_password(password.to_owned()).await.map_err(AppError::Internal)?;
        let account =
            self.store.accept_invitation(&hash, self.now(), &Acceptance { password_hash, first_operator }).await?;
        tracing::info!(event = "invitation.accepted", account = %account, "invitation code used; password set");
        let target = Target::account(Verb::SetPassword, &account);
        self.audit(vec![self.event(&Caller::console(Principal::Anonymous), &target, Outcome::Allowed)]).await?;
        Ok(account)
    }

    pub(crate) const fn invitation_days(&self) -> i64 {
        self.settings.invitation_secs / 86_400
    }

    /// A new invitation and its code (no mail yet).
    pub(crate) fn new_invitation(&self, purpose: InvitationPurpose) -> Result<(String, NewInvitation), AppError> {
        let code = new_code()?;
        let now = self.now();
        let invite = NewInvitation {
            token_hash: code_hash(&code).ok_or_else(|| AppError::Internal("a new code did not read back".into()))?,
            purpose,
            created_at: now,
            expires_at: now + self.settings.invitation_secs,
            mail: None,
        };
        Ok((code, invite))
    }
}

impl Identity<'_> {
    /// A CSRF token bound to `binding` (the session token, or a pre-session cookie).
    #[must_use]
    pub fn csrf_token(&self, binding: &str) -> String {
        csrf_token(&self.app.csrf_key, binding)
    }

    /// Whether a submitted CSRF token matches `binding`.
    #[must_use]
    pub fn csrf_ok(&self, binding: &str, submitted: &str) -> bool {
        csrf_ok(&self.app.csrf_key, binding, submitted)
    }

    /// A new random value for a pre-session cookie.
    ///
    /// # Errors
    /// When the system's random number generator fails (nothing is made from a failed draw).
    pub fn new_browser_token(&self) -> Result<String, AppError> {
        new_token()
    }

    /// Resolves a session cookie to who is asking; `None` if it is not a live session.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn authenticate(&self, token: &str) -> Result<Option<SignedIn>, AppError> {
        if !plausible_token(token) {
            return Ok(None);
        }
        let now = self.app.now();
        // One read: the session, its account, what the account is linked to and the rules on
        // second factors that apply to it.
        let Some(subject) = self
            .app
            .store
            .session_subject(&token_hash(token), now, now - self.app.settings.session_idle_secs, PASSKEYS_REQUIRED)
            .await?
        else {
            return Ok(None);
        };
        let session = &subject.session;
        let account = session.account;
        // Only record activity once a minute: every request need not be a write.
        if now - session.last_seen_at >= 60 {
            self.app.store.touch_session(session.id, now).await?;
        }
        // A session switched to someone the account acts for is that proxy, whose every request
        // the policy judges against the live link; a link revoked since is no link at all, and
        // the session is back on the account's own record.
        let acting = match (&subject.kind, subject.acting_for.clone()) {
            (
                AccountKind::Patient,
                Some(store::SessionActing { patient: p, name, link: Some((relationship, scopes)) }),
            ) => Some((Acting { patient: p, name, relationship: relationship.label(), scopes }, relationship)),
            (_, Some(_)) => {
                self.app.store.act_as_self(session.id).await?;
                None
            }
            _ => None,
        };
        let (principal, staff, patient) = match subject.kind {
            AccountKind::Patient => match (&acting, subject.patient) {
                (Some((a, relationship)), _) => (
                    Principal::Proxy {
                        account,
                        session: session.id,
                        patient: a.patient,
                        relationship: *relationship,
                        at: now,
                    },
                    None,
                    Some(a.patient),
                ),
                (None, Some(patient)) => {
                    (Principal::Patient { account, session: session.id, patient }, None, Some(patient))
                }
                // Someone a practice invited to act for a patient, with no record of their own
                // here: until they switch to that person, they are no one's patient, and every
                // grant is refused (their inbox, the people they act for and their sign-in
                // security are their account's own); the access log names them.
                (None, None) => (Principal::Person { account, session: session.id }, None, None),
            },
            AccountKind::Staff => {
                let Some((practice, role)) = subject.staff else { return Ok(None) };
                (Principal::Staff { account, session: session.id, practice, role }, Some((practice, role)), None)
            }
            AccountKind::Operator => (Principal::Operator { account, session: session.id }, None, None),
        };
        // Staff and operators reach nothing until this session has proved a second factor —
        // and, when the operator requires it, operators and practice admins a passkey.
        let needs_passkey = (matches!(subject.kind, AccountKind::Operator)
            || matches!(staff, Some((_, domain::StaffRole::Admin))))
            && !session.mfa_passkey
            && self.app.settings.staff_mfa_required
            && subject.passkeys_required;
        // A patient of a practice that requires a second step is confined the same way: a
        // password alone (the MMH attack) reaches none of their data.
        // Someone who acts for a patient of such a practice is held to the same rule, whether or
        // not they are acting for them right now (their inbox holds that patient's notices).
        let patient_confined =
            subject.kind == AccountKind::Patient && session.mfa_at.is_none() && subject.patient_must_use_mfa;
        // A detector asked this session to prove its second factor again (reading faster than a
        // person reads): until it does, it reaches nothing but the second-factor page.
        let stepped_down =
            session.step_up_at.is_some_and(|at| session.mfa_at.is_none_or(|m| m < at)) && subject.has_second_factor;
        // An incident lead asked this account to use a second factor (its password may be in
        // someone else's hands): whatever its kind, a session without one reaches nothing else.
        let incident_asked = subject.second_factor_required_at.is_some() && session.mfa_at.is_none();
        let needs_second_factor = stepped_down
            || (matches!(subject.kind, AccountKind::Staff | AccountKind::Operator)
                && session.mfa_at.is_none()
                && self.app.settings.staff_mfa_required)
            || needs_passkey
            || patient_confined
            || incident_asked;
        let must_change_password = subject.password_breached_at.is_some();
        let principal = if needs_second_factor || must_change_password { Principal::Anonymous } else { principal };
        let mfa_prompt = patient.is_some()
            && session.mfa_at.is_none()
            && (subject.patient_must_use_mfa || subject.second_factor_required_at.is_some())
            && !subject.has_second_factor;
        Ok(Some(SignedIn {
            must_change_password,
            mfa_prompt,
            needs_passkey,
            needs_second_factor,
            second_factor_asked: incident_asked,
            may_add_factor: session.setup_ok_at.is_some(),
            mfa_at: session.mfa_at,
            principal,
            account,
            kind: subject.kind,
            session: session.id,
            name: subject.display_name,
            staff,
            patient,
            own_patient: subject.patient.filter(|_| subject.kind == AccountKind::Patient),
            acting_for: acting.map(|(a, _)| a),
            unread_notices: subject.unread_notices,
            token: token.to_owned(),
        }))
    }

    /// Ends the current session.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn sign_out(&self, caller: &Caller, who: &SignedIn) -> Result<(), AppError> {
        self.app.store.end_session(who.account, who.session, self.app.now()).await?;
        let target = Target::session(Verb::SignOut, &who.session);
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        tracing::info!(event = "sign_out", account = %who.account, session = %who.session, "signed out");
        Ok(())
    }

    /// The account's live sessions.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn sessions(&self, who: &SignedIn) -> Result<Vec<Session>, AppError> {
        let now = self.app.now();
        Ok(self
            .app
            .store
            .list_sessions(who.account, now, now - self.app.settings.session_idle_secs)
            .await?
            .into_iter()
            .map(Session::from)
            .collect())
    }

    /// Ends one of the account's own sessions.
    ///
    /// # Errors
    /// [`AppError::NotFound`] if it is not one of theirs (or already ended).
    pub async fn end_session(&self, caller: &Caller, who: &SignedIn, session: SessionId) -> Result<(), AppError> {
        let ended = self.app.store.end_session(who.account, session, self.app.now()).await?;
        let target = Target::session(Verb::SessionEnd, &session);
        self.app
            .audit(vec![self.app.event(caller, &target, if ended { Outcome::Allowed } else { Outcome::NotFound })])
            .await?;
        if ended { Ok(()) } else { Err(AppError::NotFound) }
    }

    /// Ends every other session of the account; returns how many.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn end_other_sessions(&self, caller: &Caller, who: &SignedIn) -> Result<u64, AppError> {
        let n = self.app.store.end_other_sessions(who.account, Some(who.session), self.app.now()).await?;
        let target = Target::session(Verb::SessionEnd, &"others");
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        Ok(n)
    }

    /// What an invitation's code leads to, without using it.
    ///
    /// # Errors
    /// [`AppError::NotFound`], [`AppError::LinkExpired`] or [`AppError::LinkUsed`].
    pub async fn invitation(&self, code: &str) -> Result<InvitationPage, AppError> {
        let hash = code_hash(code).ok_or(AppError::NotFound)?;
        let view = self.app.store.invitation(&hash, self.app.now()).await?;
        Ok(InvitationPage {
            purpose: view.purpose,
            name: view.account.as_ref().map(|a| a.display_name.clone()),
            email: view.account.map(|a| a.email),
        })
    }

    /// Uses an invitation's code: sets the password (for the first-start code, also the name
    /// and email) and signs the person in.
    ///
    /// # Errors
    /// [`AppError::Invalid`] for an unacceptable password or details; the link errors as for
    /// [`App::invitation`]. Nothing changes on any error.
    pub async fn accept_invitation(
        &self,
        caller: &Caller,
        code: &str,
        password: &str,
        confirm: &str,
        name: Option<&str>,
        email: Option<&str>,
    ) -> Result<SignInOutcome, AppError> {
        let account = self.app.set_password_with_link(code, password, confirm, name, email).await?;
        self.app.open_session(account, caller, Verb::Activate, Proof::Password).await
    }

    /// What a code typed at the sign-in page is for: an invitation (activation) or a password
    /// reset. Nothing is used.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for a code that is neither; [`AppError::LinkExpired`] or
    /// [`AppError::LinkUsed`] for an invitation's code that no longer works.
    pub async fn code_for(&self, code: &str) -> Result<CodeFor, AppError> {
        match self.invitation(code).await {
            Err(AppError::NotFound) => match self.password_reset_for(code).await {
                Ok(email) => Ok(CodeFor::PasswordReset { email }),
                Err(AppError::LinkExpired) => Err(AppError::NotFound),
                Err(e) => Err(e),
            },
            other => other.map(CodeFor::Invitation),
        }
    }

    /// An operator invites another operator, who is emailed a code.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator; otherwise as for the console.
    pub async fn invite_operator(&self, who: &Caller, name: &str, email: &str) -> Result<(), AppError> {
        let grant = self.app.authorize::<authz::InviteOperator>(who, authz::Platform).await?;
        self.app.create_operator_with(&grant.implied(), name, email).await.map(|_| ())
    }
}

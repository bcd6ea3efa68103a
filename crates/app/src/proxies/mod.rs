//! Proxy access (issue 16): a practice, having checked identity at the desk, lets someone act
//! for a patient — a parent for a child, a carer, a legal representative — in the modules it
//! chooses, from a start to an expiry (at most 18 months for an adult, renewable). A patient past
//! the practice's cut-off age accepts before the proxy sees anything, and can revoke at any
//! time; the practice can always revoke. A child's proxy ends by itself on the birthday at the
//! cut-off (12, 14 or 16): the policy checks the date on every request.
//!
//! The proxy switches their session between "me" and each person they act for; from then on
//! the policy (`authz::policy::proxy_of`) decides every request against the live link, and every
//! access is an event naming the proxy and, `on_behalf`, the patient.

use crate::audit::{Caller, Outcome, Target};
use crate::notify::texts;
use crate::notify::{Notice, NoticeKind};
use crate::{App, AppError, FieldError, SignedIn};
use authz::{AcceptProxy, ActFor, ListProxies, Principal, RevokeProxy, SetProxyRules, SetUpProxy};
use domain::calendar::{day_start, local_day};
use domain::proxies::{ADULT_MAX_SECS, CUTOFF_AGES, ProxyScopes, ProxyState, Relationship, under_age};
use domain::{Email, PersonName};
use domain::{PatientId, PracticeId, ProxyId};
use store::{NewAccount, NewInvitation, NewProxy, ProxyRow, StoreError};

/// The proxies module's use cases: [`App::proxies`].
#[derive(Debug, Clone, Copy)]
pub struct Proxies<'a> {
    app: &'a App,
}

impl App {
    /// Proxy access: setting up, accepting, revoking, and acting for someone.
    #[must_use]
    pub const fn proxies(&self) -> Proxies<'_> {
        Proxies { app: self }
    }
}

/// The practice's form to set up a proxy.
#[derive(Debug, Clone, Default)]
pub struct ProxyForm {
    /// The proxy's email: their Tiaki account's, or, for someone without one, where their
    /// invitation goes.
    pub email: String,
    /// The name of someone without a Tiaki account (ignored for someone with one).
    pub name: String,
    /// A legal representative of an adult who cannot accept for themselves: what the practice
    /// saw that gives them the authority (an enduring power of attorney, a welfare guardian
    /// order). Empty: the patient accepts, as usual.
    pub authority: String,
    /// Who they are to the patient (a [`Relationship`] code).
    pub relationship: String,
    /// The modules chosen (scope names).
    pub scopes: Vec<String>,
    /// From (`YYYY-MM-DD`, empty: today).
    pub starts: String,
    /// Until (`YYYY-MM-DD`, the end of that day; empty only for a child).
    pub expires: String,
    /// How identity was checked.
    pub identity_check: String,
}

/// A link, as the pages show it.
#[derive(Debug, Clone)]
pub struct ProxyView {
    /// Its id.
    pub id: ProxyId,
    /// The patient.
    pub patient: PatientId,
    /// The patient's name.
    pub patient_name: String,
    /// The proxy's name.
    pub proxy_name: String,
    /// The practice that set it up.
    pub practice: PracticeId,
    /// The practice's name.
    pub practice_name: String,
    /// Who the proxy is to the patient, in words.
    pub relationship: &'static str,
    /// What they may do, in words.
    pub scopes: Vec<&'static str>,
    /// Where it stands.
    pub state: ProxyState,
    /// From (`YYYY-MM-DD`).
    pub starts: String,
    /// Until (`YYYY-MM-DD`), if it ends.
    pub ends: Option<String>,
    /// How identity was checked (staff views only).
    pub identity_check: Option<String>,
}

/// Someone the signed-in person acts for, for the switcher.
#[derive(Debug, Clone)]
pub struct ActingFor {
    /// The patient.
    pub patient: PatientId,
    /// Their name.
    pub name: String,
    /// Who the person is to them, in words.
    pub relationship: &'static str,
    /// What they may do, in words.
    pub scopes: Vec<&'static str>,
    /// Where the link stands (only live ones can be switched to).
    pub state: ProxyState,
}

fn view(row: ProxyRow, now: i64, staff: bool) -> ProxyView {
    let t = &row.terms;
    let ends = match (t.expires_at.map(|e| local_day(e - 1)), t.ends_on) {
        (Some(a), Some(b)) => Some(a.min(b.yesterday().unwrap_or(b))),
        (Some(a), None) => Some(a),
        (None, Some(b)) => Some(b.yesterday().unwrap_or(b)),
        (None, None) => None,
    };
    ProxyView {
        id: row.id,
        patient: row.patient,
        patient_name: row.patient_name,
        proxy_name: row.proxy_name,
        practice: row.practice,
        practice_name: row.practice_name,
        relationship: t.relationship.label(),
        scopes: scope_labels(t.scopes),
        state: t.state(now),
        starts: local_day(t.starts_at).to_string(),
        ends: ends.map(|d| d.to_string()),
        identity_check: staff.then_some(row.identity_check),
    }
}

fn scope_labels(s: ProxyScopes) -> Vec<&'static str> {
    ProxyScopes::NAMES.iter().filter(|(n, _)| s.has(n)).map(|(_, l)| *l).collect()
}

/// What a set-up does about the proxy's account.
enum Invitation {
    /// Nothing: they have an account.
    None,
    /// A new account, and its invitation.
    New(NewAccount, NewInvitation),
    /// An account invited before that never made its password: a new invitation.
    Again(NewInvitation),
}

/// The account that acts for the patient.
struct ProxyAccount {
    id: domain::AccountId,
    email: String,
    name: String,
    /// Whether it has a password yet (an invited one hears of the link in its invitation).
    active: bool,
}

/// The patient is told of a new link (that it is live, or that it waits for their answer); so
/// is the proxy.
async fn tell_of_set_up(app: &App, patient: PatientId, proxy: &ProxyAccount, live: bool) -> Result<(), AppError> {
    let title = if live { "Someone can now act for you" } else { "Someone asks to act for you: please answer" };
    tell_both(app, patient, title, proxy, "You can act for someone in Tiaki").await
}

/// A notice about a link to the patient (and whoever else acts for them), and one to the proxy
/// in their own inbox (about no patient's data).
async fn tell_both(
    app: &App,
    patient: PatientId,
    to_patient: &'static str,
    proxy: &ProxyAccount,
    to_proxy: &'static str,
) -> Result<(), AppError> {
    let link = Some(format!("/patients/{patient}/proxies"));
    let notice = Notice { kind: NoticeKind::Proxies, title: to_patient, link, practice: None };
    let mut mails = app.news(patient, &notice).await?;
    mails.push(app.own_notice(proxy.id, &proxy.email, &proxy.name, to_proxy, Some("/acting-for".into()), proxy.active));
    app.tell(&mails).await
}

/// A legal representative's authority to act for an adult who cannot accept for themselves,
/// when the form gives one: only for a legal representative, and only of an adult (a child's
/// link needs no acceptance anyway).
fn authority_of<'f>(
    form: &'f ProxyForm,
    (relationship, child): (Option<Relationship>, bool),
    by: &Principal,
    errors: &mut Vec<FieldError>,
) -> Option<&'f str> {
    let authority = form.authority.trim();
    if authority.is_empty() {
        return None;
    }
    // Acting without the patient's answer is a clinical judgement (that the patient cannot
    // give one), never reception's alone: the same roles that may share the health record.
    if !clinician(by) {
        errors.push(FieldError {
            field: "authority",
            message: "Only a GP or nurse can let a legal representative act without the patient's answer.".into(),
        });
        return None;
    }
    if relationship != Some(Relationship::LegalRepresentative) || child {
        errors.push(FieldError {
            field: "authority",
            message: "Only a legal representative of an adult who cannot accept for themselves acts without the \
                      patient's answer. Leave this empty: the patient will be asked."
                .into(),
        });
        return None;
    }
    if authority.chars().count() > 200 {
        errors.push(FieldError {
            field: "authority",
            message: "Say what you saw in at most 200 characters (for example \"enduring power of attorney, \
                      activated, sighted\")."
                .into(),
        });
        return None;
    }
    Some(authority)
}

/// Whether the one setting up is a clinician (a role that reads health records).
fn clinician(by: &Principal) -> bool {
    matches!(by, Principal::Staff { role, .. } if authz::capabilities::may(*role, authz::capabilities::READ_RECORDS))
}

/// The form's relationship, scopes and identity check, each error noted.
fn terms_of<'f>(
    form: &'f ProxyForm,
    by: &Principal,
    errors: &mut Vec<FieldError>,
) -> (Option<Relationship>, ProxyScopes, &'f str) {
    let relationship = Relationship::parse(form.relationship.trim());
    if relationship.is_none() {
        errors.push(FieldError { field: "relationship", message: "Choose who they are to the patient.".into() });
    }
    let mut scopes = ProxyScopes::default();
    for s in &form.scopes {
        if ProxyScopes::NAMES.iter().any(|(n, _)| n == s) {
            scopes = ProxyScopes::parse(&format!("{},{s}", scopes.to_list()));
        } else {
            errors.push(FieldError { field: "scopes", message: "Choose from the listed parts of the portal.".into() });
        }
    }
    if scopes.is_empty() {
        errors.push(FieldError {
            field: "scopes",
            message: "Choose at least one part of the portal they may use for the patient.".into(),
        });
    }
    // Health records and documents are clinical content: only a clinician shares them (the
    // same roles that read them), never reception on its own.
    if (scopes.records || scopes.documents) && !clinician(by) {
        errors.push(FieldError {
            field: "scopes",
            message: "Only a GP or nurse can let someone see health records or documents.".into(),
        });
    }
    let check = form.identity_check.trim();
    if check.is_empty() || check.chars().count() > 200 {
        errors.push(FieldError {
            field: "identity_check",
            message: "Say how you checked their identity (for example \"passport sighted\"), in at most 200 \
                      characters."
                .into(),
        });
    }
    (relationship, scopes, check)
}

fn day(input: &str, field: &'static str, errors: &mut Vec<FieldError>) -> Option<jiff::civil::Date> {
    let input = input.trim();
    if input.is_empty() {
        return None;
    }
    input.parse().map_or_else(
        |_| {
            errors.push(FieldError { field, message: "Give the date as YYYY-MM-DD, for example 2027-03-01.".into() });
            None
        },
        Some,
    )
}

impl Proxies<'_> {
    /// The practice sets up (or renews) someone's right to act for a patient, after checking
    /// their identity. Someone without a Tiaki account is invited by email (a code). For a patient past the
    /// practice's cut-off age the link waits for the patient to accept it; for a child it ends
    /// by itself on the birthday at the cut-off. The patient (and the proxy) are told.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the practice's reception and clinicians;
    /// [`AppError::Invalid`] for a missing scope or identity check, an unknown account, a
    /// relationship not on the list, bad dates, or an adult's link without an expiry or beyond
    /// 18 months.
    pub async fn set_up(&self, caller: &Caller, patient: PatientId, form: &ProxyForm) -> Result<ProxyId, AppError> {
        let app = self.app;
        let grant = app.decide::<SetUpProxy>(caller, patient).await?;
        let practice = grant.via_practice().ok_or(AppError::NotFound)?;
        let now = app.now();
        let mut errors = Vec::new();
        let (relationship, scopes, check) = terms_of(form, &caller.principal, &mut errors);
        let starts = day(&form.starts, "starts", &mut errors);
        let expires = day(&form.expires, "expires", &mut errors);
        let starts_at = starts.map_or(now, |d| day_start(d).max(now));
        let expires_at = expires.and_then(|d| d.tomorrow().ok()).map(day_start);
        if let (Some(s), Some(e)) = (starts, expires)
            && e < s
        {
            errors.push(FieldError { field: "expires", message: "The end must be on or after the start.".into() });
        }
        if expires_at.is_some_and(|e| e <= now) {
            errors.push(FieldError { field: "expires", message: "The end must be in the future.".into() });
        }
        let person = app.store.patient(&grant.implied()).await?;
        let cutoff = app.store.proxy_cutoff(practice).await?;
        let child = domain::proxies::parse_dob(&person.date_of_birth).is_some_and(|dob| under_age(dob, cutoff, now));
        if !child {
            match expires_at {
                None => errors.push(FieldError {
                    field: "expires",
                    message: format!(
                        "The patient is {cutoff} or older: give an end date, at most 18 months from the start."
                    ),
                }),
                Some(e) if e - starts_at > ADULT_MAX_SECS => errors.push(FieldError {
                    field: "expires",
                    message: "An adult's proxy can run for at most 18 months; renew it when it ends.".into(),
                }),
                Some(_) => {}
            }
        }
        let authority = authority_of(form, (relationship, child), &caller.principal, &mut errors);
        let proxy = self.proxy_for(form, person.account, practice, &mut errors).await?;
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let (Some(relationship), Some((proxy, invitation))) = (relationship, proxy) else {
            return Err(AppError::NotFound);
        };
        let (invite, reinvite) = match invitation {
            Invitation::None => (None, None),
            Invitation::New(account, invite) => (Some((account, invite)), None),
            Invitation::Again(invite) => (None, Some(invite)),
        };
        let identity_check = match authority {
            Some(a) => format!("{check}; authority: {a}"),
            None => check.to_owned(),
        };
        let new = NewProxy {
            id: ProxyId::random(),
            proxy: proxy.id,
            relationship,
            scopes,
            starts_at,
            expires_at,
            needs_acceptance: !child,
            accepted_on_authority: authority.is_some(),
            identity_check,
            created_by: caller.principal.account().ok_or(AppError::NotFound)?,
            invite,
            reinvite,
        };
        app.store.set_up_proxy(&grant, &new, now).await.map_err(|e| match e {
            StoreError::Conflict(store::proxies::OTHER_PRACTICES_LINK) => AppError::Conflict(
                "Another practice set up this person's access for the patient; only that practice can change or \
                 end it."
                    .into(),
            ),
            e => e.into(),
        })?;
        app.audit(vec![app.event(caller, &Target::of(&grant).about(&new.id), Outcome::Allowed)]).await?;
        tell_of_set_up(app, patient, &proxy, child || new.accepted_on_authority).await?;
        if new.invite.is_some() || new.reinvite.is_some() {
            app.mail_waker.notify_one();
        }
        Ok(new.id)
    }

    /// The account that will act for the patient: a live patient account with the form's email
    /// (not the patient's own; when a name is given, it must be that account's), or, for an
    /// email no account has, a new one (with the form's name) and its invitation. An account
    /// invited before that never made its password is invited again. `None` with an error
    /// noted when it can be none of these; every such refusal says the same, so that the form
    /// tells nobody which addresses have accounts.
    async fn proxy_for(
        &self,
        form: &ProxyForm,
        own: domain::AccountId,
        practice: PracticeId,
        errors: &mut Vec<FieldError>,
    ) -> Result<Option<(ProxyAccount, Invitation)>, AppError> {
        const REFUSED: &str = "We cannot set up someone with this email address. Check it with the person, and give \
                               their full name as on the ID you checked: someone with no Tiaki account is invited to \
                               make one.";
        let app = self.app;
        let refuse = |errors: &mut Vec<FieldError>| errors.push(FieldError { field: "email", message: REFUSED.into() });
        let Ok(email) = Email::parse(form.email.trim()) else {
            errors.push(FieldError {
                field: "email",
                message: "Give the person's email address, for example name@example.nz.".into(),
            });
            return Ok(None);
        };
        let typed = form.name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        let practice_name = app.store.practice(practice).await?.ok_or(AppError::NotFound)?.name;
        let invitation = |name: &str| -> Result<NewInvitation, AppError> {
            let (code, mut invite) = app.new_invitation(store::InvitationPurpose::ActivatePatient)?;
            let text =
                texts::Email::ProxyInvitation { practice: &practice_name, code: &code, days: app.invitation_days() };
            invite.mail = Some(texts::mail(email.as_str(), name, &text, app.now()));
            Ok(invite)
        };
        match app.store.account_by_email(email.as_str()).await? {
            Some(a) if a.kind == domain::AccountKind::Patient && a.disabled_at.is_none() && a.id != own => {
                let theirs = a.display_name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
                if !typed.is_empty() && typed != theirs {
                    refuse(errors);
                    return Ok(None);
                }
                let active = a.password_hash.is_some();
                // Someone invited before who never made their password: invited again.
                let again = if active { Invitation::None } else { Invitation::Again(invitation(&a.display_name)?) };
                Ok(Some((ProxyAccount { id: a.id, email: a.email, name: a.display_name, active }, again)))
            }
            Some(_) => {
                refuse(errors);
                Ok(None)
            }
            None => {
                let Ok(name) = PersonName::parse(&form.name) else {
                    refuse(errors);
                    return Ok(None);
                };
                let invite = invitation(name.as_str())?;
                let account = NewAccount {
                    id: domain::AccountId::random(),
                    kind: domain::AccountKind::Patient,
                    email: email.clone(),
                    display_name: name.clone(),
                    created_at: app.now(),
                };
                let who = ProxyAccount {
                    id: account.id,
                    email: email.as_str().to_owned(),
                    name: name.as_str().to_owned(),
                    active: false,
                };
                Ok(Some((who, Invitation::New(account, invite))))
            }
        }
    }

    /// Who may act for the patient: every link for the patient, those the practice set up for
    /// its staff.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient and the practice's reception and
    /// clinicians.
    pub async fn of_patient(&self, caller: &Caller, patient: PatientId) -> Result<Vec<ProxyView>, AppError> {
        let app = self.app;
        let grant = app.authorize::<ListProxies>(caller, patient).await?;
        let staff = grant.via_practice().is_some();
        let now = app.now();
        Ok(app.store.patient_proxies(&grant, now).await?.into_iter().map(|r| view(r, now, staff)).collect())
    }

    /// The people the signed-in person acts for (open links, live or not yet).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn acting_for(&self, who: &SignedIn) -> Result<Vec<ActingFor>, AppError> {
        let now = self.app.now();
        Ok(self
            .app
            .store
            .acting_links(who.account)
            .await?
            .into_iter()
            .map(|r| ActingFor {
                patient: r.patient,
                name: r.patient_name,
                relationship: r.terms.relationship.label(),
                scopes: scope_labels(r.terms.scopes),
                state: r.terms.state(now),
            })
            .collect())
    }

    /// The patient accepts a proxy the practice set up.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but the patient (the proxy included);
    /// [`AppError::Conflict`] when it is revoked or needs no answer.
    pub async fn accept(&self, caller: &Caller, id: ProxyId) -> Result<(), AppError> {
        let app = self.app;
        let grant = app.decide::<AcceptProxy>(caller, id).await?;
        if !app.store.accept_proxy(&grant, app.now()).await? {
            return Err(AppError::Conflict("This request was already answered, or has been withdrawn.".into()));
        }
        app.audit(vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
        Ok(())
    }

    /// Ends a proxy: the patient, the practice, or the proxy stepping down. Sessions acting
    /// under it lose access at their next request.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else; [`AppError::Conflict`] when it ended already.
    pub async fn revoke(&self, caller: &Caller, id: ProxyId) -> Result<ProxyId, AppError> {
        let app = self.app;
        let grant = app.decide::<RevokeProxy>(caller, id).await?;
        let by = caller.principal.account().ok_or(AppError::NotFound)?;
        if !app.store.revoke_proxy(&grant, by, app.now()).await? {
            return Err(AppError::Conflict("This has already ended.".into()));
        }
        app.audit(vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
        // Both are told it has ended.
        if let Some(link) = app.store.proxy_link(id).await?
            && let Some(a) = app.store.account(link.proxy).await?
        {
            let active = a.password_hash.is_some() && a.disabled_at.is_none();
            let proxy = ProxyAccount { id: a.id, email: a.email, name: a.display_name, active };
            let (to_patient, to_proxy) =
                ("Someone's access to act for you has ended", "Your access to act for someone in Tiaki has ended");
            tell_both(app, link.patient, to_patient, &proxy, to_proxy).await?;
        }
        Ok(id)
    }

    /// Switches the session to the record of someone the person acts for (`None`: their own).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for someone they do not act for (or no longer, or not yet).
    pub async fn switch(&self, caller: &Caller, who: &SignedIn, to: Option<PatientId>) -> Result<(), AppError> {
        let app = self.app;
        let Some(patient) = to.filter(|p| Some(*p) != who.own_patient) else {
            app.store.act_as_self(who.session).await?;
            return Ok(());
        };
        // Only a session that may act at all (not one confined to its sign-in security) switches.
        if !who.is_a_persons_own() {
            return Err(app.refuse_unknown::<ActFor>(caller, &patient.to_string()).await);
        }
        let links = app.store.acting_links(who.account).await?;
        if !links.iter().any(|l| l.patient == patient) {
            // Someone they do not act for: refused as themself, naming nobody.
            return Err(app.refuse_unknown::<ActFor>(caller, &patient.to_string()).await);
        }
        let relationship =
            links.iter().find(|l| l.patient == patient).map_or(Relationship::Other, |l| l.terms.relationship);
        // The session it would become, judged now: the proxy acting for that person.
        let as_proxy = Caller {
            principal: Principal::Proxy {
                account: who.account,
                session: who.session,
                patient,
                relationship,
                at: app.now(),
            },
            ..caller.clone()
        };
        let grant = app.decide::<ActFor>(&as_proxy, patient).await?;
        app.store.act_for(who.session, &grant).await?;
        app.audit(vec![app.event(&as_proxy, &Target::of(&grant), Outcome::Allowed)]).await?;
        Ok(())
    }

    /// The practice's cut-off age, for its admins' settings page.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but its admins.
    pub async fn rules(&self, caller: &Caller, practice: PracticeId) -> Result<u8, AppError> {
        let _grant = self.app.decide::<SetProxyRules>(caller, practice).await?;
        Ok(self.app.store.proxy_cutoff(practice).await?)
    }

    /// The practice sets its cut-off age (12, 14 or 16).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but its admins; [`AppError::Invalid`] for another age.
    pub async fn set_cutoff(&self, caller: &Caller, practice: PracticeId, age: &str) -> Result<(), AppError> {
        let app = self.app;
        let grant = app.decide::<SetProxyRules>(caller, practice).await?;
        let Some(age) = age.trim().parse::<u8>().ok().filter(|a| CUTOFF_AGES.contains(a)) else {
            return Err(AppError::field("cutoff_age", "Choose 12, 14 or 16."));
        };
        app.store.set_proxy_cutoff(&grant, age, app.now()).await?;
        app.audit(vec![app.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
        Ok(())
    }
}

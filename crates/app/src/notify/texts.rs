//! Every email Tiaki sends, subject and words: nothing else in the code writes an email. An
//! email never carries a link, health content or a request to do more than sign in as usual:
//! the Manage My Health notices were followed by phishing that impersonated the portal, so a
//! Tiaki email that asks you to click is, by construction, not from Tiaki. Where an email has
//! to carry something (an activation or reset), it is a short code the person types into the
//! page they reached by typing the portal's address themselves.
//! `tests::no_email_has_a_link_or_health_content` renders each one.

use store::NewMail;

/// How every email that carries a code says where to type it.
const WHERE_TO_TYPE: &str = "go to the Tiaki sign-in page (type the portal's address yourself, or use your bookmark), \
                             choose \"I have a code from a Tiaki email\", and type this code";

/// The promise at the foot of every email.
const FOOT: &str =
    "Tiaki's emails never contain links, and Tiaki never asks for your password or codes by email or phone.";

/// An email, with what it says.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Email<'a> {
    /// A practice enrolled a patient: their activation code.
    PatientActivation { practice: &'a str, code: &'a str, days: i64 },
    /// A practice invited a staff member.
    StaffInvitation { practice: &'a str, role: &'a str, code: &'a str, days: i64 },
    /// An operator invited another.
    OperatorInvitation { code: &'a str, days: i64 },
    /// A practice set up someone with no Tiaki account to act for a patient.
    ProxyInvitation { practice: &'a str, code: &'a str, days: i64 },
    /// A code to choose a new password (`breached`: the password used was on the breached list).
    PasswordReset { breached: bool, code: &'a str },
    /// A code, sent to a new address, that makes it the account's.
    NewAddressCode { code: &'a str },
    /// A code that lets the session it is typed into add a first second factor.
    FactorSetup { code: &'a str },
    /// There is a notice in the inbox: that, and nothing more.
    News,
    /// What happened to the account: always emailed, and in the inbox too.
    Security(Security<'a>),
    /// To the platform's security contacts: a detector raised an alert (its rule, how serious,
    /// what was done, how many things it counted; no one's name, no health data).
    SecurityAlert { rule: &'a str, severity: &'a str, response: &'a str, seen: i64 },
}

/// The security notices: what happened to the account, in plain words.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Security<'a> {
    RecoveryCodeUsed,
    ManyWrongCodes,
    NewSignIn { device: &'a str, from: &'a str, when: &'a str },
    AuthenticatorAdded,
    AuthenticatorRemoved,
    SignInPaused,
    PasswordChanged,
    EmailChangeAsked { new_email: &'a str },
    EmailChanged { old_email: &'a str, new_email: &'a str },
    SignInReset,
    AccountClosed,
    AccountLocked,
    PasskeyAdded,
    PasskeyRemoved,
    EnrolmentAsked { practice: &'a str },
    EnrolmentEnded { practice: &'a str },
    StaffRemoved,
}

impl Security<'_> {
    /// The subject (and the inbox notice's title).
    pub(crate) const fn subject(&self) -> &'static str {
        match self {
            Self::RecoveryCodeUsed => "A recovery code was used to sign in to Tiaki",
            Self::ManyWrongCodes => "Many wrong sign-in codes on your Tiaki account",
            Self::NewSignIn { .. } => "New sign-in to your Tiaki account",
            Self::AuthenticatorAdded => "An authenticator app was added to your Tiaki account",
            Self::AuthenticatorRemoved => "The authenticator app was removed from your Tiaki account",
            Self::SignInPaused => "Sign-in to your Tiaki account is paused",
            Self::PasswordChanged => "Your Tiaki password was changed",
            Self::EmailChangeAsked { .. } => "A change of your Tiaki email address was asked for",
            Self::EmailChanged { .. } => "Your Tiaki email address was changed",
            Self::SignInReset => "Your Tiaki sign-in was reset",
            Self::AccountClosed => "Your Tiaki account has been closed",
            Self::AccountLocked => "Your Tiaki account has been locked",
            Self::PasskeyAdded => "A passkey was added to your Tiaki account",
            Self::PasskeyRemoved => "A passkey was removed from your Tiaki account",
            Self::EnrolmentAsked { .. } => "A practice asks to see your Tiaki records",
            Self::EnrolmentEnded { .. } => "A practice has ended your enrolment in Tiaki",
            Self::StaffRemoved => "You no longer have access to Tiaki",
        }
    }

    /// What happened, in a paragraph or two.
    fn text(&self) -> String {
        const NOT_YOU: &str = "If this was not you, contact your practice straight away.";
        match self {
            Self::RecoveryCodeUsed => "A recovery code was just used to sign in to your Tiaki account. Each code works \
                                       once.\n\nIf this was not you, contact your practice straight away: someone may \
                                       have your password and your codes."
                .into(),
            Self::ManyWrongCodes => "Someone has entered many wrong codes while signing in to your Tiaki account, so it \
                                     takes no codes for an hour. They got past your password, so it is probably known \
                                     to someone else.\n\nContact your practice: they can check who you are and help \
                                     you choose a new password."
                .into(),
            Self::NewSignIn { device, from, when } => format!(
                "Your Tiaki account was just signed in to from a browser it has not used before:\n\n  {device}\n  from \
                 {from}, {when} (UTC)\n\nIf this was you, there is nothing to do. If it was not, someone has your \
                 password: contact your practice straight away."
            ),
            Self::AuthenticatorAdded => format!(
                "An authenticator app was just set up for your Tiaki account. From now on, signing in asks for a code \
                 from it.\n\n{NOT_YOU}"
            ),
            Self::AuthenticatorRemoved => format!(
                "The authenticator app and recovery codes were just removed from your Tiaki account.\n\n{NOT_YOU}"
            ),
            Self::SignInPaused => "Someone has typed 100 wrong passwords for your Tiaki account, so it can no longer be \
                                   signed in to from a browser it has not used before.\n\nYou can still sign in from a \
                                   browser you have used before. Otherwise, choose a new password with \"Forgot your \
                                   password?\" on the Tiaki sign-in page (type the address of the portal yourself).\n\n\
                                   If the wrong passwords were not yours, someone is trying to get into your account: \
                                   choose a new password that you do not use anywhere else."
                .into(),
            Self::PasswordChanged => format!(
                "The password of your Tiaki account was just changed, and every other place it was signed in was \
                 signed out.\n\n{NOT_YOU}"
            ),
            Self::EmailChangeAsked { new_email } => format!(
                "Someone signed in to your Tiaki account asked to change its email address to {new_email}. It changes \
                 only when the code we sent there is typed in.\n\n{NOT_YOU}"
            ),
            Self::EmailChanged { old_email, new_email } => format!(
                "The email address of your Tiaki account was changed from {old_email} to {new_email}. Tiaki's \
                 messages now go to the new address.\n\n{NOT_YOU}"
            ),
            Self::SignInReset => "After checking who you are, your practice or the Tiaki team removed your passkeys, \
                                  authenticator app and recovery codes from your Tiaki account and signed you out \
                                  everywhere. Sign in with your password and set up a passkey or your app again under \
                                  Sign-in security.\n\nIf you did not ask for this, contact your practice straight away."
                .into(),
            Self::AccountClosed => "The Tiaki team has closed your Tiaki account: you have been signed out everywhere \
                                    and can no longer sign in.\n\nIf you did not expect this, contact your practice."
                .into(),
            Self::AccountLocked => "Your Tiaki account was just used to ask again and again for other people's \
                                    records, so Tiaki has locked it and signed it out everywhere. Someone else \
                                    probably has your password.\n\nContact your practice: once they have checked \
                                    who you are, the Tiaki team unlocks it, and you choose a new password that you \
                                    use nowhere else."
                .into(),
            // Not the passkey's name: that is text whoever added it chose.
            Self::PasskeyAdded => format!(
                "A passkey was just added to your Tiaki account. It can now be used to sign in; you can see and \
                 remove your passkeys under Sign-in security.\n\n{NOT_YOU}"
            ),
            // Not the passkey's name either: text someone chose goes in no email.
            Self::PasskeyRemoved => format!(
                "A passkey was just removed from your Tiaki account and can no longer be used to sign in; you can \
                 see the passkeys left under Sign-in security.\n\n{NOT_YOU}"
            ),
            Self::EnrolmentAsked { practice } => format!(
                "{practice} has asked to enrol you in Tiaki. It cannot see anything in your account unless you \
                 accept.\n\nTo answer, sign in to Tiaki as you usually do (type the address yourself): the request is \
                 on your home page, with Accept and Decline. If you do not know {practice}, decline, and tell your \
                 usual practice."
            ),
            Self::EnrolmentEnded { practice } => format!(
                "{practice} has ended your enrolment in Tiaki: its staff can no longer see your record or documents. \
                 Documents it sent you stay in your account.\n\nIf you did not expect this, contact the practice."
            ),
            Self::StaffRemoved => "Your practice has removed you from its staff in Tiaki, and your account has been \
                                   closed: you have been signed out everywhere and can no longer sign in.\n\nIf you \
                                   think this is a mistake, speak to your practice manager."
                .into(),
        }
    }
}

impl Email<'_> {
    /// The subject line.
    pub(crate) const fn subject(&self) -> &'static str {
        match self {
            Self::PatientActivation { .. } => "Activate your Tiaki patient portal account",
            Self::StaffInvitation { .. } => "Your Tiaki staff account",
            Self::OperatorInvitation { .. } => "Your Tiaki operator account",
            Self::ProxyInvitation { .. } => "Your Tiaki account, to act for someone",
            Self::PasswordReset { .. } => "Choose a new Tiaki password",
            Self::NewAddressCode { .. } => "Confirm your new Tiaki email address",
            Self::FactorSetup { .. } => "Set up your Tiaki authenticator app",
            Self::News => super::NEWS_SUBJECT,
            Self::Security(s) => s.subject(),
            Self::SecurityAlert { .. } => "Tiaki security alert",
        }
    }

    /// The body, greeting `name` (an empty name, or one that looks like a link — a name is
    /// text someone typed — greets no one by name).
    pub(crate) fn body(&self, name: &str) -> String {
        let hello = if name.trim().is_empty() || looks_like_a_link(name).is_some() {
            "Kia ora,".to_owned()
        } else {
            format!("Kia ora {},", name.trim())
        };
        let text = match self {
            Self::PatientActivation { practice, code, days } => format!(
                "{practice} has set up your Tiaki patient portal account.\n\nTo choose your password and start using \
                 it, {WHERE_TO_TYPE} within {days} days:\n\n    {code}\n\nThe code works once. If you did not expect \
                 this email, you can ignore it, or phone {practice}."
            ),
            Self::StaffInvitation { practice, role, code, days } => format!(
                "You have been invited to join {practice} on Tiaki as {role}.\n\nTo choose your password, \
                 {WHERE_TO_TYPE} within {days} days:\n\n    {code}\n\nThe code works once. If you did not expect \
                 this email, tell your practice manager."
            ),
            Self::OperatorInvitation { code, days } => format!(
                "You have been made a Tiaki platform operator.\n\nTo choose your password, {WHERE_TO_TYPE} within \
                 {days} days:\n\n    {code}\n\nThe code works once."
            ),
            Self::ProxyInvitation { practice, code, days } => format!(
                "{practice} has set up a Tiaki account for you, so that you can act for someone in your care, as \
                 you agreed with them.\n\nTo choose your password, {WHERE_TO_TYPE} within {days} days:\n\n    \
                 {code}\n\nThe code works once. If you did not expect this email, you can ignore it, or phone \
                 {practice}."
            ),
            Self::PasswordReset { breached, code } => {
                let why = if *breached {
                    "You signed in to Tiaki with a password that has appeared in a data breach on another website, or \
                     that is too common to be safe, so we cannot let it open your account. To choose a new one"
                } else {
                    "Someone (we hope you) asked to choose a new password for your Tiaki account. To do that"
                };
                format!(
                    "{why}, {WHERE_TO_TYPE} within an hour:\n\n    {code}\n\nIf you did not ask for this, do not \
                     type the code anywhere; your password stays as it is."
                )
            }
            Self::NewAddressCode { code } => format!(
                "To make this the email address of your Tiaki account, type this code on the page that asked for it \
                 (under Sign-in security, in the browser where you are signed in) within an hour:\n\n    {code}\n\n\
                 If you did not ask for this, ignore this message."
            ),
            Self::FactorSetup { code } => format!(
                "You asked to set up an authenticator app for Tiaki. Type this code on the page that asked for it \
                 (under Sign-in security, in the browser where you are signed in) within 30 minutes:\n\n    {code}\n\n\
                 If you did not ask for this, someone may know your password: do not type the code anywhere, and \
                 contact your practice."
            ),
            Self::News => "There is something new in your Tiaki inbox.\n\nTo read it, sign in to Tiaki as you \
                           usually do (type the address yourself, or use your bookmark)."
                .into(),
            Self::Security(s) => s.text(),
            Self::SecurityAlert { rule, severity, response, seen } => format!(
                "A detector has raised a {severity} alert: {rule}.\n\nWhat Tiaki did: {response}. It had counted \
                 {seen}.\n\nThe alert, its evidence and a timeline are in the security console of the operators' \
                 page: sign in as you usually do (type the address yourself). Acknowledge it there once someone is on it."
            ),
        };
        format!("{hello}\n\n{text}\n\n{FOOT}\n\nTiaki\n")
    }
}

/// What would make an email a link: a scheme, a host, a path or a query.
pub(crate) fn looks_like_a_link(text: &str) -> Option<&str> {
    text.split_whitespace().find(|w| {
        let w = w.trim_matches(|c: char| "\"'(),.:;!?".contains(c)).to_ascii_lowercase();
        w.contains("://")
            || w.starts_with("www.")
            || w.contains('/')
            || w.contains('?') && w.contains('=')
            || w.starts_with("mailto:")
            || w.contains("href")
            || !w.contains('@')
                && [".nz", ".com", ".org", ".net", ".health", ".test", ".io"].iter().any(|t| w.ends_with(t))
    })
}

/// The email `email` to `recipient`, greeting `name`, queued to be delivered.
pub(crate) fn mail(recipient: &str, name: &str, email: &Email<'_>, now: i64) -> NewMail {
    NewMail {
        id: uuid::Uuid::new_v4(),
        recipient: recipient.to_owned(),
        subject: email.subject().to_owned(),
        body: email.body(name),
        created_at: now,
        notice: None,
        deliver: true,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every email, filled with sample values: one of each kind, and each kind once (the
    /// exhaustive `kind` below fails to compile when a kind is added without a sample).
    pub(crate) fn every_email() -> Vec<Email<'static>> {
        const CODE: &str = "ABCD-EFGH-JKMN-PQRS";
        let practice = "Harbour Health";
        let security = [
            Security::RecoveryCodeUsed,
            Security::ManyWrongCodes,
            Security::NewSignIn { device: "Firefox on Windows", from: "203.0.113.7", when: "28 Nov 2026, 9:14 am" },
            Security::AuthenticatorAdded,
            Security::AuthenticatorRemoved,
            Security::SignInPaused,
            Security::PasswordChanged,
            Security::EmailChangeAsked { new_email: "aroha.new@example.nz" },
            Security::EmailChanged { old_email: "aroha@example.nz", new_email: "aroha.new@example.nz" },
            Security::SignInReset,
            Security::AccountClosed,
            Security::AccountLocked,
            Security::PasskeyAdded,
            Security::PasskeyRemoved,
            Security::EnrolmentAsked { practice },
            Security::EnrolmentEnded { practice },
            Security::StaffRemoved,
        ];
        let mut all = vec![
            Email::PatientActivation { practice, code: CODE, days: 14 },
            Email::StaffInvitation { practice, role: "nurse", code: CODE, days: 14 },
            Email::OperatorInvitation { code: CODE, days: 14 },
            Email::ProxyInvitation { practice, code: CODE, days: 14 },
            Email::PasswordReset { breached: false, code: CODE },
            Email::PasswordReset { breached: true, code: CODE },
            Email::NewAddressCode { code: CODE },
            Email::FactorSetup { code: CODE },
            Email::News,
            Email::SecurityAlert {
                rule: "Many refused ids from one session (enumeration)",
                severity: "critical",
                response: "Session suspended",
                seen: 20,
            },
        ];
        all.extend(security.into_iter().map(Email::Security));
        all
    }

    /// Which kind an email is (no wildcard: a new kind must be named here, and then sampled).
    fn kind(e: &Email<'_>) -> String {
        match e {
            Email::PatientActivation { .. }
            | Email::StaffInvitation { .. }
            | Email::OperatorInvitation { .. }
            | Email::ProxyInvitation { .. }
            | Email::PasswordReset { .. }
            | Email::NewAddressCode { .. }
            | Email::FactorSetup { .. }
            | Email::News
            | Email::SecurityAlert { .. } => e.subject().to_owned(),
            Email::Security(
                Security::RecoveryCodeUsed
                | Security::ManyWrongCodes
                | Security::NewSignIn { .. }
                | Security::AuthenticatorAdded
                | Security::AuthenticatorRemoved
                | Security::SignInPaused
                | Security::PasswordChanged
                | Security::EmailChangeAsked { .. }
                | Security::EmailChanged { .. }
                | Security::SignInReset
                | Security::AccountClosed
                | Security::AccountLocked
                | Security::PasskeyAdded
                | Security::PasskeyRemoved
                | Security::EnrolmentAsked { .. }
                | Security::EnrolmentEnded { .. }
                | Security::StaffRemoved,
            ) => format!("security: {}", e.subject()),
        }
    }

    /// Words that would put health information in an email.
    const HEALTH_WORDS: [&str; 22] = [
        "result",
        "medication",
        "medicine",
        "prescri",
        "repeat",
        "diagnos",
        "condition",
        "allerg",
        "immunis",
        "vaccin",
        "appointment",
        "referral",
        "discharge",
        "letter",
        "blood",
        "test",
        "clinic",
        "nhi",
        "message from",
        "doctor",
        "nurse said",
        "dr ",
    ];

    #[test]
    fn no_email_has_a_link_or_health_content() {
        let all = every_email();
        let kinds: std::collections::BTreeSet<String> = all.iter().map(kind).collect();
        assert_eq!(kinds.len(), 9 + 17, "every kind of email is sampled: {kinds:?}");
        for e in &all {
            for name in ["Aroha Ngata", "", "https://evil.example/reset", "www.tiaki-login.nz"] {
                let (subject, body) = (e.subject(), e.body(name));
                for text in [subject, body.as_str()] {
                    assert_eq!(looks_like_a_link(text), None, "{subject}: {body}");
                    let lower = text.to_lowercase();
                    for word in HEALTH_WORDS {
                        assert!(!lower.contains(word), "{subject} says {word:?}: {body}");
                    }
                }
                assert!(body.contains("never contain links"), "{subject}");
                let greets = if name.starts_with("Aroha") { "Kia ora Aroha Ngata,\n" } else { "Kia ora,\n" };
                assert!(body.starts_with(greets), "a name that looks like a link greets no one: {body}");
            }
        }
    }

    #[test]
    fn the_scan_would_catch_a_link() {
        for link in [
            "https://portal.tiaki.nz/activate?token=abc",
            "portal.tiaki.nz",
            "www.tiaki.nz",
            "/reset-password",
            "open it (http://x.test).",
            "mailto:help@tiaki.nz",
        ] {
            assert!(looks_like_a_link(&format!("Kia ora, {link} now")).is_some(), "{link}");
        }
        assert_eq!(looks_like_a_link("write to aroha@example.nz, or 203.0.113.7, at 9:14 am."), None);
    }

    #[test]
    fn codes_stand_on_a_line_of_their_own() {
        for e in every_email() {
            let body = e.body("Aroha Ngata");
            let carries = !matches!(e, Email::News | Email::Security(_) | Email::SecurityAlert { .. });
            assert_eq!(body.contains("\n    ABCD-EFGH-JKMN-PQRS\n"), carries, "{body}");
        }
    }
}

//! The access vocabulary: which module, what kind of object, and what was done to it. Every
//! access event says these three things, and detection rules and incident scope are queries
//! over them, so they are closed sets here rather than strings spelt by hand at each use.
//!
//! Each value is stored as a stable short code. Codes never change once events carry them
//! (the access log commits to them); a value may be added, never renamed.

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The stable code stored in the access log.
            #[must_use]
            pub const fn code(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The value a stored code stands for.
            #[must_use]
            pub fn parse(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

vocabulary!(
    /// The modules of DESIGN §3: the part of the portal an access happened in.
    Module {
        /// Accounts, sign-in, second factors, sessions.
        Identity = "identity",
        /// Practices, their staff, enrolment, integrations.
        Practices = "practices",
        /// Health records a practice releases.
        Records = "records",
        /// Health documents.
        Documents = "documents",
        /// Appointments.
        Appointments = "appointments",
        /// Repeat prescriptions.
        Prescriptions = "prescriptions",
        /// Messages with the practice.
        Messaging = "messaging",
        /// Notices sent to people.
        Notifications = "notifications",
        /// The access log itself.
        Audit = "audit",
        /// Detection of misuse.
        Detection = "detection",
        /// Incidents and who they touched.
        Incidents = "incidents",
    }
);

vocabulary!(
    /// What kind of object an access was to.
    ObjectKind {
        /// A person's account (its password, factors, email).
        Account = "account",
        /// A signed-in session.
        Session = "session",
        /// A practice.
        Practice = "practice",
        /// A practice's staff list.
        Staff = "staff",
        /// An invitation to join a practice's staff.
        StaffInvitation = "staff_invitation",
        /// An invitation to become an operator.
        OperatorInvitation = "operator_invitation",
        /// A staff member's second factors, as their practice sees them.
        AccountFactors = "account_factors",
        /// A practice's rule on patients' second factors.
        PatientMfaPolicy = "patient_mfa_policy",
        /// The platform's rule on staff passkeys.
        PasskeyPolicy = "passkey_policy",
        /// A patient's record (their details).
        Patient = "patient",
        /// A patient's enrolment at a practice.
        Enrolment = "enrolment",
        /// An organisation's system allowed to push documents.
        ApiClient = "api_client",
        /// A health document.
        Document = "document",
        /// A patient's document key.
        PatientKey = "patient_key",
        /// A patient's access history.
        AccessHistory = "access_history",
        /// The whole access log (operators' exports).
        AuditLog = "audit_log",
        /// One item of a patient's health record.
        HealthRecord = "health_record",
        /// An item of a patient's health record their practice hid from them (a staff read of
        /// one is marked as such in the patient's history).
        HiddenHealthRecord = "hidden_health_record",
        /// A patient's health record as a whole (the summary, a category, an export).
        PatientRecord = "patient_record",
        /// A practice's rules for releasing records to its patients.
        RecordRules = "record_rules",
        /// A practice's appointment book: its clinicians, appointment types, weekly templates,
        /// closures and booking rules.
        Schedule = "schedule",
        /// One appointment slot of a practice's book.
        Slot = "slot",
        /// One appointment (its patient, time and reason).
        Appointment = "appointment",
        /// A patient's appointments as a whole (the list, free slots offered to them).
        PatientAppointments = "patient_appointments",
        /// A patient's long-term (repeat-eligible) medication list.
        RepeatList = "repeat_list",
        /// A request for repeat prescriptions.
        RepeatRequest = "repeat_request",
        /// A practice's rules for online repeat prescriptions (fee, turnaround, pharmacies).
        RepeatSettings = "repeat_settings",
        /// A proxy's right to act for a patient (a parent's for a child, a carer's).
        Proxy = "proxy",
        /// A practice's rules for proxies (the age at which a child's record becomes theirs).
        ProxyRules = "proxy_rules",
        /// A notice in a person's in-portal inbox.
        Notice = "notice",
        /// A conversation between a patient and their practice.
        MessageThread = "message_thread",
        /// A patient's conversations as a whole (the list, starting a new one).
        PatientMessages = "patient_messages",
        /// A practice's message inbox as a whole.
        PracticeInbox = "practice_inbox",
        /// A practice's messaging settings.
        MessagingSettings = "messaging_settings",
        /// An alert a detector raised.
        Alert = "alert",
        /// A module's kill switch (for one practice or everyone).
        ModuleSwitch = "module_switch",
        /// An incident: its indicators, revisions and scope.
        Incident = "incident",
        /// An incident's notification campaign (its notices to the people affected).
        IncidentCampaign = "incident_campaign",
        /// An incident's report (for a controlling organisation, or the regulator).
        IncidentReport = "incident_report",
        /// A reference code someone checked on the public "is this message genuine?" page.
        ReferenceCode = "reference_code",
    }
);

vocabulary!(
    /// What was done.
    Verb {
        /// Read one object.
        Read = "read",
        /// Saw objects in a list.
        List = "list",
        /// Made a new object.
        Create = "create",
        /// Changed an object.
        Update = "update",
        /// Deleted an object.
        Delete = "delete",
        /// Exported objects out of the portal.
        Export = "export",
        /// An organisation's system sent an object in.
        Push = "push",
        /// The practice that sent an object took it back.
        Withdraw = "withdraw",
        /// A key was unwrapped to decrypt a patient's data.
        Unwrap = "unwrap",
        /// Signed in with a password (and, where needed, a second factor).
        SignIn = "sign_in",
        /// Signed in for the first time, from an activation or invitation link.
        Activate = "activate",
        /// The password step of a sign-in that needs a second one.
        SignInPassword = "sign_in.password",
        /// The second step of a sign-in.
        SignInSecondFactor = "sign_in.second_factor",
        /// Signed in with a passkey alone.
        SignInPasskey = "sign_in.passkey",
        /// A sign-in refused because the password is on the breached list.
        SignInBreachedPassword = "sign_in.breached_password",
        /// Signed out.
        SignOut = "sign_out",
        /// A session was ended from another one.
        SessionEnd = "session_end",
        /// Set a first password from an invitation.
        SetPassword = "set_password",
        /// Changed a password.
        PasswordChange = "password.change",
        /// Asked for a password-reset link.
        PasswordResetRequest = "password_reset.request",
        /// Reset a password from a link.
        PasswordReset = "password_reset",
        /// Asked to change the account's email.
        EmailChangeRequest = "email.change.request",
        /// Confirmed a change of email.
        EmailChange = "email.change",
        /// Confirmed a second factor.
        MfaConfirm = "mfa.confirm",
        /// Added an authenticator app.
        MfaTotpAdd = "mfa.totp.add",
        /// Removed an authenticator app.
        MfaTotpRemove = "mfa.totp.remove",
        /// Added a passkey.
        MfaPasskeyAdd = "mfa.passkey.add",
        /// Removed a passkey.
        MfaPasskeyRemove = "mfa.passkey.remove",
        /// Replaced the recovery codes.
        MfaRecoveryCodesReplace = "mfa.recovery_codes.replace",
        /// Sent a link to set up a second factor.
        MfaSetupLinkSend = "mfa.setup_link.send",
        /// Opened a link to set up a second factor.
        MfaSetupLinkOpen = "mfa.setup_link.open",
        /// Reset an account's second factors.
        MfaReset = "mfa.reset",
        /// Disabled an account: it can no longer sign in.
        Disable = "disable",
        /// Enabled a disabled account again.
        Enable = "enable",
        /// Accepted a request (a practice's, to enrol the patient).
        Accept = "accept",
        /// Declined a request.
        Decline = "decline",
        /// Released an item to the patient (a held result).
        Release = "release",
        /// Hid an item from the patient.
        Hide = "hide",
        /// Showed a hidden item to the patient again.
        Unhide = "unhide",
        /// Booked an appointment.
        Book = "book",
        /// Cancelled an appointment (or a request).
        Cancel = "cancel",
        /// Blocked a slot from booking (or opened it again).
        Block = "block",
        /// Asked for something (repeat prescriptions).
        Request = "request",
        /// Took a request into review (a nurse preparing it).
        Review = "review",
        /// Approved a request.
        Approve = "approve",
        /// Revoked a right (a proxy's).
        Revoke = "revoke",
        /// Switched whose record a session has open (a proxy to the person they act for).
        Switch = "switch",
        /// Sent a message.
        Send = "send",
        /// Assigned a conversation to a member of staff.
        Assign = "assign",
        /// Acknowledged an alert: someone is on it.
        Acknowledge = "acknowledge",
        /// Lifted what a detector did (unlocked an account, resumed a session or system).
        Lift = "lift",
        /// Switched a module off (the kill switch).
        SwitchOff = "switch_off",
        /// Switched a module on again.
        SwitchOn = "switch_on",
        /// Declared an incident.
        Declare = "declare",
        /// Made a new revision of something (an incident's scope).
        Revise = "revise",
        /// Did something about what an incident found (ended sessions, required a new password).
        Remediate = "remediate",
        /// Checked something (a reference code on the public page).
        Check = "check",
    }
);

impl ObjectKind {
    /// The module events about this kind of object belonged to before events named their
    /// module (access-log format v1). Only for reading old events; new ones say it themselves.
    #[must_use]
    pub const fn module_before_v2(self) -> Module {
        match self {
            Self::Account | Self::Session | Self::OperatorInvitation | Self::AccountFactors | Self::PasskeyPolicy => {
                Module::Identity
            }
            Self::Practice
            | Self::Staff
            | Self::StaffInvitation
            | Self::PatientMfaPolicy
            | Self::Enrolment
            | Self::ApiClient
            | Self::Proxy
            | Self::ProxyRules => Module::Practices,
            Self::Document | Self::PatientKey => Module::Documents,
            Self::AccessHistory | Self::AuditLog => Module::Audit,
            Self::Patient | Self::HealthRecord | Self::HiddenHealthRecord | Self::PatientRecord | Self::RecordRules => {
                Module::Records
            }
            Self::Schedule | Self::Slot | Self::Appointment | Self::PatientAppointments => Module::Appointments,
            Self::RepeatList | Self::RepeatRequest | Self::RepeatSettings => Module::Prescriptions,
            Self::Notice => Module::Notifications,
            Self::MessageThread | Self::PatientMessages | Self::PracticeInbox | Self::MessagingSettings => {
                Module::Messaging
            }
            Self::Alert | Self::ModuleSwitch => Module::Detection,
            Self::Incident | Self::IncidentCampaign | Self::IncidentReport | Self::ReferenceCode => Module::Incidents,
        }
    }
}

/// What an access event says about itself: its module, object kind and verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// The module.
    pub module: Module,
    /// The kind of object.
    pub object: ObjectKind,
    /// What was done.
    pub verb: Verb,
}

impl Access {
    /// An access in a module.
    #[must_use]
    pub const fn new(module: Module, object: ObjectKind, verb: Verb) -> Self {
        Self { module, object, verb }
    }

    /// An account event (sign-in, second factors, passwords): the identity module's, on an account.
    #[must_use]
    pub const fn account(verb: Verb) -> Self {
        Self::new(Module::Identity, ObjectKind::Account, verb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_and_reads_back() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            code: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
        ) {
            let mut seen = std::collections::HashSet::new();
            for v in all {
                assert!(seen.insert(code(*v)), "{v:?}'s code is used twice");
                assert_eq!(parse(code(*v)), Some(*v));
                assert!(
                    code(*v).len() <= 32 && code(*v).bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.')
                );
            }
            assert_eq!(parse("no such code"), None);
        }
        check(Module::ALL, Module::code, Module::parse);
        check(ObjectKind::ALL, ObjectKind::code, ObjectKind::parse);
        check(Verb::ALL, Verb::code, Verb::parse);
    }

    #[test]
    fn codes_already_in_access_logs_keep_their_meaning() {
        // Events written before the vocabulary was typed carry these strings; they must parse to
        // the same values for ever.
        assert_eq!(Verb::parse("sign_in.second_factor"), Some(Verb::SignInSecondFactor));
        assert_eq!(Verb::parse("password_reset.request"), Some(Verb::PasswordResetRequest));
        assert_eq!(Verb::parse("unwrap"), Some(Verb::Unwrap));
        assert_eq!(ObjectKind::parse("patient_key"), Some(ObjectKind::PatientKey));
        assert_eq!(ObjectKind::parse("access_history"), Some(ObjectKind::AccessHistory));
        assert_eq!(ObjectKind::Document.module_before_v2(), Module::Documents);
    }
}

//! The detection module's values (issue 17): the rules that read the access stream as it is
//! written, how serious each is, what is done when one fires, and the thresholds that ship.

use crate::appointments::stored_enum;

stored_enum!(
    /// A detector on the access stream.
    Rule {
        /// One session asking for many ids it is refused (not found or denied): someone
        /// enumerating ids with a stolen password (the Manage My Health attack).
        Enumeration = "enumeration" / "Many refused ids from one session (enumeration)",
        /// One member of staff's session opening the documents of many patients: a bulk read.
        BulkDocumentReads = "bulk_document_reads" / "Documents of many patients read by one staff session",
        /// Documents and records read by one session faster than a person reads.
        ReadRate = "read_rate" / "Documents and records read faster than a person reads",
        /// One session touching the data of many different patients.
        PatientsTouched = "patients_touched" / "Many different patients touched by one session",
        /// One session unlocking many patients' document keys.
        KeyUnwraps = "key_unwraps" / "Many patients' document keys unlocked by one session",
        /// A session asking for a patient it has no relation to (no enrolment, no proxy).
        NoRelation = "no_relation" / "A patient with no relation to the session asked for",
        /// One account exporting whole records more often than people do.
        Exports = "exports" / "Whole records exported repeatedly by one account",
        /// An organisation's system reading far more patients than it does.
        ClientVolume = "client_volume" / "An organisation's system reading many patients",
        /// A canary that no legitimate path reaches was read.
        Honeytoken = "honeytoken" / "A honeytoken (canary) was read",
        /// Failed sign-ins across the platform far above their usual rate (credential stuffing).
        SignInSpike = "sign_in_spike" / "Failed sign-ins far above their usual rate",
    }
);

stored_enum!(
    /// How serious an alert is.
    Severity {
        /// Worth recording.
        Info = "info" / "Info",
        /// Worth a look.
        Warning = "warning" / "Warning",
        /// Acted on at once, and someone is told.
        Critical = "critical" / "Critical",
    }
);

stored_enum!(
    /// What is done when a rule fires.
    Response {
        /// Recorded only.
        Record = "record" / "Recorded",
        /// Operators are told: the console, the security contacts' email, the webhook.
        AlertOperators = "alert_operators" / "Operators alerted",
        /// The session must prove its second factor again before it goes on.
        StepUp = "step_up" / "Second factor required again",
        /// The session is ended at once, on every node: its next request is refused.
        SuspendSession = "suspend_session" / "Session suspended",
        /// The account is locked (every session ended, no sign-in) until an operator, having
        /// checked with the holder, enables it again.
        LockAccount = "lock_account" / "Account locked",
        /// The organisation's system is refused until an operator resumes it.
        SuspendClient = "suspend_client" / "System suspended",
    }
);

stored_enum!(
    /// Whether an alert still needs someone.
    AlertState {
        /// Nobody has looked yet.
        Open = "open" / "Open",
        /// An operator has looked and said so.
        Acknowledged = "acknowledged" / "Acknowledged",
        /// An operator lifted what the response did (the account unlocked, the system resumed).
        Lifted = "lifted" / "Lifted",
    }
);

stored_enum!(
    /// A part of the portal that can be switched off (the kill switch), for one practice or all.
    Switchable {
        /// Health documents: patients see "temporarily unavailable"; organisations' pushes get 503
        /// with `Retry-After` and are sent again later.
        Documents = "documents" / "Documents",
        /// Health records: pages say "temporarily unavailable"; FHIR ingestion gets 503.
        Records = "records" / "Health records",
    }
);

impl Rule {
    /// How serious an alert of this rule is.
    #[must_use]
    pub const fn severity(self) -> Severity {
        match self {
            Self::Enumeration | Self::BulkDocumentReads | Self::ClientVolume | Self::Honeytoken => Severity::Critical,
            Self::ReadRate | Self::PatientsTouched | Self::KeyUnwraps | Self::Exports | Self::SignInSpike => {
                Severity::Warning
            }
            Self::NoRelation => Severity::Info,
        }
    }

    /// What is done when this rule fires on a session (a system's are suspended, an account's
    /// locked, instead of a session's suspension).
    #[must_use]
    pub const fn response(self) -> Response {
        match self {
            Self::Enumeration | Self::BulkDocumentReads | Self::Honeytoken => Response::SuspendSession,
            Self::ClientVolume => Response::SuspendClient,
            Self::ReadRate => Response::StepUp,
            Self::PatientsTouched | Self::KeyUnwraps | Self::Exports | Self::SignInSpike => Response::AlertOperators,
            Self::NoRelation => Response::Record,
        }
    }
}

/// A limit: so many distinct things in a window of so many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// How many distinct things the subject may touch in one window; the one that reaches it
    /// fires the rule.
    pub at: i64,
    /// The window, seconds.
    pub window_secs: i64,
}

impl Limit {
    const fn new(at: i64, window_secs: i64) -> Self {
        Self { at, window_secs }
    }
}

/// The detectors' thresholds: configuration, with defaults that ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Whether the detectors run at all.
    pub on: bool,
    /// Distinct ids one session may be refused (and twice as many across one account's
    /// sessions before the account is locked: a stolen password signs in again).
    pub enumeration: Limit,
    /// Distinct patients whose documents one staff session may open.
    pub bulk_documents: Limit,
    /// Documents and record items one session may read.
    pub read_rate: Limit,
    /// Distinct patients one session may touch.
    pub patients_touched: Limit,
    /// Distinct patients' keys one session may unlock.
    pub key_unwraps: Limit,
    /// Whole-record exports one account may make.
    pub exports: Limit,
    /// Distinct patients an organisation's system may read.
    pub client_patients: Limit,
}

impl Default for Thresholds {
    /// Tuned on the normal-day replay (`testkit::normal_day`): a patient who mistypes or
    /// follows old links is refused a handful of ids in ten minutes, never twenty; a GP or
    /// nurse opens the letters of the patients they see, a few dozen a day, never forty in an
    /// hour, and reads at most a dozen items a minute; reception touches fewer than a hundred
    /// patients an hour; a practice's system reads a few hundred patients an hour at most.
    fn default() -> Self {
        Self {
            on: true,
            enumeration: Limit::new(20, 600),
            bulk_documents: Limit::new(40, 3600),
            read_rate: Limit::new(30, 60),
            patients_touched: Limit::new(100, 3600),
            key_unwraps: Limit::new(60, 3600),
            exports: Limit::new(5, 86_400),
            client_patients: Limit::new(500, 3600),
        }
    }
}

impl Thresholds {
    /// Everything off (tests that drive many roles through every route).
    #[must_use]
    pub fn off() -> Self {
        Self { on: false, ..Self::default() }
    }

    /// The detectors on, with every limit out of reach: they count every event they count, and
    /// never fire (load tools measuring what counting costs).
    #[must_use]
    pub fn counting_only() -> Self {
        let far = Limit { at: i64::MAX, window_secs: 3600 };
        Self {
            on: true,
            enumeration: far,
            bulk_documents: far,
            read_rate: Limit { at: i64::MAX, window_secs: 60 },
            patients_touched: far,
            key_unwraps: far,
            exports: far,
            client_patients: far,
        }
    }

    /// The start of the window `at` falls in, for a window of `secs` seconds.
    #[must_use]
    pub const fn window_start(at: crate::UnixTime, secs: i64) -> crate::UnixTime {
        if secs <= 0 { at } else { at - at.rem_euclid(secs) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_windows_are_aligned() {
        for r in Rule::ALL {
            assert_eq!(Rule::parse(r.as_str()), Some(*r));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Thresholds::window_start(1_000_599, 600), 1_000_200);
        assert_eq!(Thresholds::window_start(1_000_200, 600), 1_000_200);
        assert_eq!(Thresholds::window_start(5, 0), 5);
        let d = Thresholds::default();
        assert!(d.on && d.enumeration.at == 20 && d.bulk_documents.at <= 50);
        assert!(!Thresholds::off().on);
    }

    #[test]
    fn what_suspends_is_critical_and_what_is_only_recorded_is_info() {
        for r in Rule::ALL {
            match r.response() {
                Response::SuspendSession | Response::SuspendClient | Response::LockAccount => {
                    assert_eq!(r.severity(), Severity::Critical, "{r:?}");
                }
                Response::Record => assert_eq!(r.severity(), Severity::Info, "{r:?}"),
                Response::AlertOperators | Response::StepUp => assert_eq!(r.severity(), Severity::Warning, "{r:?}"),
            }
        }
    }
}

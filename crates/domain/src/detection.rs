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
        /// The session is ended at once, on every node: its next request is refused.
        SuspendSession = "suspend_session" / "Session suspended",
        /// The account is locked (every session ended, no sign-in) until an operator, having
        /// checked with the holder, enables it again.
        LockAccount = "lock_account" / "Account locked",
    }
);

/// The detectors' thresholds: configuration, with defaults that ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Whether the detectors run at all.
    pub on: bool,
    /// Distinct ids one session may be refused in a window before it is suspended (and twice
    /// as many across one account's sessions before the account is locked: a stolen password
    /// signs in again).
    pub enumeration_misses: i64,
    /// That window, seconds.
    pub enumeration_window_secs: i64,
    /// Distinct patients whose documents one staff session may open in a window before it is
    /// suspended.
    pub bulk_patients: i64,
    /// That window, seconds.
    pub bulk_window_secs: i64,
}

impl Default for Thresholds {
    /// A patient who mistypes or follows old links is refused a handful of ids in ten minutes,
    /// never twenty; a GP or nurse opens the letters of the patients they see, a few dozen a
    /// day at most, never forty in an hour.
    fn default() -> Self {
        Self {
            on: true,
            enumeration_misses: 20,
            enumeration_window_secs: 600,
            bulk_patients: 40,
            bulk_window_secs: 3600,
        }
    }
}

impl Thresholds {
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
        assert!(d.on && d.enumeration_misses == 20 && d.bulk_patients <= 50);
    }
}

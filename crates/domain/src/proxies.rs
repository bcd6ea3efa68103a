//! Proxy access: a parent, carer or legal representative acting for a patient, within the
//! modules the practice chose, from a start to an expiry — and, for a child, only until the
//! birthday at which the practice's cut-off age says the young person's record is their own.
//! The rules are here, as pure functions, so the policy and the pages judge a link alike.

use crate::appointments::stored_enum;
use crate::{Module, UnixTime, calendar};
use jiff::civil::Date;

stored_enum!(
    /// Who the proxy is to the patient.
    Relationship {
        /// A parent or guardian.
        Parent = "parent" / "parent or guardian",
        /// A carer.
        Carer = "carer" / "carer",
        /// A legal representative (an enduring power of attorney, a welfare guardian).
        LegalRepresentative = "legal_representative" / "legal representative",
        /// Someone else the patient and practice agreed on.
        Other = "other" / "representative",
    }
);

/// The ages at which a practice may hand a young person's record to them.
pub const CUTOFF_AGES: &[u8] = &[12, 14, 16];
/// The cut-off a practice has until it chooses another.
pub const DEFAULT_CUTOFF_AGE: u8 = 14;
/// The longest an adult's proxy may run before the practice renews it: 18 months.
pub const ADULT_MAX_SECS: i64 = 548 * 86_400;

/// The modules a proxy may act in. Records and documents are off unless the practice chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[expect(clippy::struct_excessive_bools, reason = "one switch per module, as the practice sets them")]
pub struct ProxyScopes {
    /// Book, see and cancel appointments.
    pub appointments: bool,
    /// Ask for repeat prescriptions and see the list.
    pub prescriptions: bool,
    /// Write to and read from the practice.
    pub messages: bool,
    /// Read the health record the practice releases.
    pub records: bool,
    /// See and upload health documents.
    pub documents: bool,
}

impl ProxyScopes {
    /// Each scope: its stored name and what people read.
    pub const NAMES: &'static [(&'static str, &'static str)] = &[
        ("appointments", "Appointments"),
        ("prescriptions", "Repeat prescriptions"),
        ("messages", "Messages with the practice"),
        ("records", "Health records"),
        ("documents", "Health documents"),
    ];

    /// Whether the named scope is on.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        match name {
            "appointments" => self.appointments,
            "prescriptions" => self.prescriptions,
            "messages" => self.messages,
            "records" => self.records,
            "documents" => self.documents,
            _ => false,
        }
    }

    /// The scopes named in a comma-separated list (unknown names are ignored).
    #[must_use]
    pub fn parse(list: &str) -> Self {
        let mut s = Self::default();
        for name in list.split(',').map(str::trim) {
            match name {
                "appointments" => s.appointments = true,
                "prescriptions" => s.prescriptions = true,
                "messages" => s.messages = true,
                "records" => s.records = true,
                "documents" => s.documents = true,
                _ => {}
            }
        }
        s
    }

    /// The stored comma-separated list.
    #[must_use]
    pub fn to_list(&self) -> String {
        Self::NAMES.iter().filter(|(n, _)| self.has(n)).map(|(n, _)| *n).collect::<Vec<_>>().join(",")
    }

    /// Whether none is on.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.to_list().is_empty()
    }

    /// Whether a proxy with these scopes may act in `module`. Modules without a scope
    /// (accounts, practices, the access log) are never a proxy's.
    #[must_use]
    pub const fn allows(&self, module: Module) -> bool {
        match module {
            Module::Appointments => self.appointments,
            Module::Prescriptions => self.prescriptions,
            Module::Messaging => self.messages,
            Module::Records => self.records,
            Module::Documents => self.documents,
            Module::Identity
            | Module::Practices
            | Module::Notifications
            | Module::Audit
            | Module::Detection
            | Module::Incidents => false,
        }
    }
}

/// The facts about one proxy link that decide whether it is live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTerms {
    /// The practice that set it up (and whose objects alone it reaches).
    pub practice: crate::PracticeId,
    /// What the proxy may do.
    pub scopes: ProxyScopes,
    /// Who the proxy is to the patient.
    pub relationship: Relationship,
    /// From when.
    pub starts_at: UnixTime,
    /// Until when (always set for an adult's proxy).
    pub expires_at: Option<UnixTime>,
    /// The patient was past the cut-off age when it was set up, so they must accept it.
    pub needs_acceptance: bool,
    /// When the patient accepted it.
    pub accepted_at: Option<UnixTime>,
    /// When the patient or the practice revoked it.
    pub revoked_at: Option<UnixTime>,
    /// For a link set up for a child: the first day (New Zealand time) on which the young
    /// person is past the practice's cut-off age, when the link ends by itself.
    pub ends_on: Option<Date>,
}

/// Where a link stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyState {
    /// The proxy may act, within its scopes.
    Live,
    /// Set up to start later.
    NotYetStarted,
    /// Waiting for the patient to accept it.
    AwaitingAcceptance,
    /// Past its expiry.
    Expired,
    /// The child reached the practice's cut-off age.
    AgedOut,
    /// Revoked by the patient or the practice.
    Revoked,
}

impl ProxyState {
    /// Whether the proxy may act now.
    #[must_use]
    pub fn is_live(self) -> bool {
        self == Self::Live
    }
    /// Whether it waits for the patient's answer.
    #[must_use]
    pub fn is_awaiting(self) -> bool {
        self == Self::AwaitingAcceptance
    }
    /// Whether it is over (revoked, expired or aged out).
    #[must_use]
    pub const fn has_ended(self) -> bool {
        matches!(self, Self::Revoked | Self::Expired | Self::AgedOut)
    }
    /// What people read.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Live => "Active",
            Self::NotYetStarted => "Not started yet",
            Self::AwaitingAcceptance => "Waiting for the patient to accept",
            Self::Expired => "Expired",
            Self::AgedOut => "Ended at the age cut-off",
            Self::Revoked => "Revoked",
        }
    }
}

impl ProxyTerms {
    /// Where the link stands at `now`: revocation first, then the age rule, expiry,
    /// acceptance and start.
    #[must_use]
    pub fn state(&self, now: UnixTime) -> ProxyState {
        if self.revoked_at.is_some() {
            ProxyState::Revoked
        } else if self.ends_on.is_some_and(|d| calendar::local_day(now) >= d) {
            ProxyState::AgedOut
        } else if self.expires_at.is_some_and(|e| now >= e) {
            ProxyState::Expired
        } else if self.needs_acceptance && self.accepted_at.is_none() {
            ProxyState::AwaitingAcceptance
        } else if now < self.starts_at {
            ProxyState::NotYetStarted
        } else {
            ProxyState::Live
        }
    }

    /// Whether the proxy may act in `module` at `now`.
    #[must_use]
    pub fn allows(&self, module: Module, now: UnixTime) -> bool {
        self.state(now) == ProxyState::Live && self.scopes.allows(module)
    }
}

/// The day a person born on `dob` turns `age` (29 February birthdays fall on 28 February in
/// other years).
#[must_use]
pub fn birthday_at(dob: Date, age: u8) -> Date {
    let year = dob.year().saturating_add(i16::from(age));
    Date::new(year, dob.month(), dob.day()).or_else(|_| Date::new(year, dob.month(), 28)).unwrap_or(dob)
}

/// Parses a stored `YYYY-MM-DD` date of birth.
#[must_use]
pub fn parse_dob(iso: &str) -> Option<Date> {
    iso.trim().parse::<Date>().ok()
}

/// Whether someone born on `dob` is, on the New Zealand day of `now`, younger than `age`.
#[must_use]
pub fn under_age(dob: Date, age: u8, now: UnixTime) -> bool {
    calendar::local_day(now) < birthday_at(dob, age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn terms() -> ProxyTerms {
        ProxyTerms {
            practice: crate::PracticeId::random(),
            scopes: ProxyScopes { appointments: true, ..ProxyScopes::default() },
            relationship: Relationship::Parent,
            starts_at: 100,
            expires_at: None,
            needs_acceptance: false,
            accepted_at: None,
            revoked_at: None,
            ends_on: None,
        }
    }

    #[test]
    fn scopes_round_trip_and_decide_modules() {
        let s = ProxyScopes::parse("messages, appointments,bogus");
        assert_eq!(s.to_list(), "appointments,messages");
        assert!(s.allows(Module::Appointments) && s.allows(Module::Messaging));
        assert!(!s.allows(Module::Records) && !s.allows(Module::Identity) && !s.allows(Module::Audit));
        assert!(ProxyScopes::parse("").is_empty());
    }

    #[test]
    fn a_link_is_live_only_between_start_and_end_and_when_accepted() {
        let t = terms();
        assert_eq!(t.state(99), ProxyState::NotYetStarted);
        assert!(t.allows(Module::Appointments, 100));
        assert!(!t.allows(Module::Records, 100));
        let expiring = ProxyTerms { expires_at: Some(200), ..terms() };
        assert_eq!(expiring.state(199), ProxyState::Live);
        assert_eq!(expiring.state(200), ProxyState::Expired);
        let pending = ProxyTerms { needs_acceptance: true, ..terms() };
        assert_eq!(pending.state(150), ProxyState::AwaitingAcceptance);
        let accepted = ProxyTerms { accepted_at: Some(120), ..pending };
        assert_eq!(accepted.state(150), ProxyState::Live);
        let revoked = ProxyTerms { revoked_at: Some(120), ..accepted };
        assert_eq!(revoked.state(150), ProxyState::Revoked);
    }

    #[test]
    fn a_childs_link_ends_at_the_start_of_the_birthday_in_new_zealand() {
        let ends = birthday_at(date(2013, 3, 10), 14);
        assert_eq!(ends, date(2027, 3, 10));
        let t = ProxyTerms { ends_on: Some(ends), ..terms() };
        // 2027-03-09 23:59 NZDT is 10:59 UTC; midnight NZDT is 11:00 UTC on the 9th.
        let before = calendar::day_start(date(2027, 3, 10)) - 1;
        assert_eq!(t.state(before), ProxyState::Live);
        assert_eq!(t.state(before + 1), ProxyState::AgedOut);
        assert!(under_age(date(2013, 3, 10), 14, before));
        assert!(!under_age(date(2013, 3, 10), 14, before + 1));
        assert_eq!(birthday_at(date(2012, 2, 29), 14), date(2026, 2, 28));
    }
}

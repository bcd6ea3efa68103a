//! The health-records module's values: the categories a practice releases, and the scopes an
//! organisation's API client holds.

use serde::{Deserialize, Serialize};

/// A category of a patient's health record, as a practice releases it and a patient reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordCategory {
    /// Allergies and adverse reactions.
    Allergies,
    /// Conditions (problems, diagnoses).
    Conditions,
    /// Long-term medications.
    Medications,
    /// Immunisations given.
    Immunisations,
    /// Test results (held until a clinician releases them).
    Results,
    /// Consultation notes.
    Notes,
    /// Recalls: care the practice asks the patient to come back for.
    Recalls,
}

impl RecordCategory {
    /// Every category, in the order a patient reads them.
    pub const ALL: [Self; 7] = [
        Self::Allergies,
        Self::Conditions,
        Self::Medications,
        Self::Immunisations,
        Self::Results,
        Self::Recalls,
        Self::Notes,
    ];

    /// What a practice releases when it has set no rules: everything but consultation notes.
    pub const DEFAULT_RELEASED: [Self; 6] =
        [Self::Allergies, Self::Conditions, Self::Medications, Self::Immunisations, Self::Results, Self::Recalls];

    /// The stored (and URL) name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allergies => "allergies",
            Self::Conditions => "conditions",
            Self::Medications => "medications",
            Self::Immunisations => "immunisations",
            Self::Results => "results",
            Self::Notes => "notes",
            Self::Recalls => "recalls",
        }
    }

    /// The name people read.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Allergies => "Allergies",
            Self::Conditions => "Conditions",
            Self::Medications => "Medications",
            Self::Immunisations => "Immunisations",
            Self::Results => "Test results",
            Self::Notes => "Consultation notes",
            Self::Recalls => "Recalls",
        }
    }

    /// Parses the stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s.trim())
    }
}

/// What an organisation's API client may do. Every client may push documents; sending a
/// practice's health records needs the records scope (and a practice's own client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientScopes {
    /// May send health records (`POST /fhir/R4`).
    pub records: bool,
    /// May read and write the practice's appointment book as FHIR `Schedule`, `Slot` and
    /// `Appointment` (a practice's own client).
    pub appointments: bool,
}

impl ClientScopes {
    /// The stored form: space-separated scope names.
    #[must_use]
    pub fn as_stored(self) -> String {
        let mut s = String::from("documents");
        if self.records {
            s.push_str(" records");
        }
        if self.appointments {
            s.push_str(" appointments");
        }
        s
    }

    /// Reads the stored form (unknown names are ignored).
    #[must_use]
    pub fn parse(s: &str) -> Self {
        let has = |name: &str| s.split([' ', ',']).any(|w| w == name);
        Self { records: has("records"), appointments: has("appointments") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_scopes_read_back() {
        for c in RecordCategory::ALL {
            assert_eq!(RecordCategory::parse(c.as_str()), Some(c));
        }
        assert_eq!(RecordCategory::parse("documents"), None);
        assert!(ClientScopes::parse("documents records").records);
        assert!(!ClientScopes::parse("documents").records);
        assert!(!ClientScopes::parse("recordsx").records);
        for (records, appointments) in [(true, false), (false, true), (true, true), (false, false)] {
            let scopes = ClientScopes { records, appointments };
            assert_eq!(ClientScopes::parse(&scopes.as_stored()), scopes);
        }
    }
}

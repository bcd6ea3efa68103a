//! Validated values parsed at the edge (parse, don't validate): emails, names, HPI ids, roles, dates.

use serde::{Deserialize, Serialize};
use std::fmt;
use time::{Date, macros::format_description};

/// Why a value was refused; the message is safe to show to the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not a usable email address.
    #[error("enter an email address like name@example.co.nz")]
    Email,
    /// Empty, too long or containing control characters.
    #[error("{0} must be 1 to {1} characters, without control characters")]
    Text(&'static str, usize),
    /// Not an HPI facility id.
    #[error("an HPI facility id looks like FZZ999-B")]
    HpiFacilityId,
    /// Not one of the regions of New Zealand.
    #[error("choose one of New Zealand's regions")]
    Region,
    /// Not a plausible date of birth.
    #[error("enter the date of birth as YYYY-MM-DD; it cannot be in the future or before 1900")]
    DateOfBirth,
    /// Not a staff role.
    #[error("the role must be one of gp, nurse, admin or privacy_officer")]
    Role,
    /// Not a document category.
    #[error(
        "the category must be one of discharge_summary, referral, clinic_letter, result, correspondence or patient_upload"
    )]
    Category,
}

fn clean_text(input: &str, what: &'static str, max: usize) -> Result<String, ValueError> {
    let s = input.trim();
    let n = s.chars().count();
    if n == 0 || n > max || s.chars().any(char::is_control) {
        return Err(ValueError::Text(what, max));
    }
    Ok(s.to_owned())
}

/// An email address, trimmed and lower-cased.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Parses an email address (a pragmatic subset of RFC 5322 that mail systems accept).
    ///
    /// # Errors
    /// [`ValueError::Email`] when it is not one.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let s = input.trim().to_lowercase();
        let (local, domain) = s.split_once('@').ok_or(ValueError::Email)?;
        let ok_local = !local.is_empty()
            && local.len() <= 64
            && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let ok_domain = domain.len() <= 253
            && domain.contains('.')
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !ok_local || !ok_domain || s.len() > 254 {
            return Err(ValueError::Email);
        }
        Ok(Self(s))
    }
    /// The address as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(***)")
    }
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses the value: trimmed, non-empty, bounded, no control characters.
            ///
            /// # Errors
            /// [`ValueError::Text`] when it is not acceptable.
            pub fn parse(input: &str) -> Result<Self, ValueError> {
                clean_text(input, $what, $max).map(Self)
            }
            /// The value as text.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(***)"))
            }
        }
    };
}

text_type!(
    /// A person's name as they want it shown.
    PersonName,
    "A name",
    100
);
text_type!(
    /// A practice's name.
    PracticeName,
    "A practice name",
    120
);

/// An HPI facility id (`FXXNNN-C`, e.g. `FZZ999-B`). The check character's algorithm is not
/// published, so only the shape is checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct HpiFacilityId(String);

impl HpiFacilityId {
    /// Parses an HPI facility id, accepting lower case.
    ///
    /// # Errors
    /// [`ValueError::HpiFacilityId`] when the shape is wrong.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let s = input.trim().to_ascii_uppercase();
        let b = s.as_bytes();
        let ok = b.len() == 8
            && b[0] == b'F'
            && b[1..3].iter().all(u8::is_ascii_alphanumeric)
            && b[3..6].iter().all(u8::is_ascii_digit)
            && b[6] == b'-'
            && b[7].is_ascii_alphanumeric();
        if ok { Ok(Self(s)) } else { Err(ValueError::HpiFacilityId) }
    }
    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HpiFacilityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The regions of New Zealand (Stats NZ regional council areas).
pub const REGIONS: &[&str] = &[
    "Northland",
    "Auckland",
    "Waikato",
    "Bay of Plenty",
    "Gisborne",
    "Hawke's Bay",
    "Taranaki",
    "Manawatū-Whanganui",
    "Wellington",
    "Tasman",
    "Nelson",
    "Marlborough",
    "West Coast",
    "Canterbury",
    "Otago",
    "Southland",
];

/// One of New Zealand's regions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Region(String);

impl Region {
    /// Parses a region name (case-insensitive; "Manawatu" without the macron is accepted).
    ///
    /// # Errors
    /// [`ValueError::Region`] when it is not one.
    pub fn parse(input: &str) -> Result<Self, ValueError> {
        let wanted = input.trim().to_lowercase().replace('ū', "u");
        REGIONS
            .iter()
            .find(|r| r.to_lowercase().replace('ū', "u") == wanted)
            .map(|r| Self((*r).to_owned()))
            .ok_or(ValueError::Region)
    }
    /// The region's name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A date of birth: not in the future, not before 1900.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateOfBirth(Date);

impl DateOfBirth {
    /// Parses `YYYY-MM-DD`, given today's date.
    ///
    /// # Errors
    /// [`ValueError::DateOfBirth`] when it is malformed or implausible.
    pub fn parse(input: &str, today: Date) -> Result<Self, ValueError> {
        let d = Date::parse(input.trim(), format_description!("[year]-[month]-[day]"))
            .map_err(|_| ValueError::DateOfBirth)?;
        if d > today || d.year() < 1900 {
            return Err(ValueError::DateOfBirth);
        }
        Ok(Self(d))
    }
    /// The date.
    #[must_use]
    pub const fn date(&self) -> Date {
        self.0
    }
    /// `YYYY-MM-DD`.
    #[must_use]
    pub fn iso(&self) -> String {
        let d = self.0;
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }
}

impl fmt::Debug for DateOfBirth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DateOfBirth(***)")
    }
}

/// What an account is for. An account is exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// A patient (linked to one NHI).
    Patient,
    /// A member of one practice's staff.
    Staff,
    /// Runs the platform.
    Operator,
}

impl AccountKind {
    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Patient => "patient",
            Self::Staff => "staff",
            Self::Operator => "operator",
        }
    }
    /// Reads the stored name.
    #[must_use]
    pub fn from_stored(s: &str) -> Option<Self> {
        [Self::Patient, Self::Staff, Self::Operator].into_iter().find(|k| k.as_str() == s)
    }
}

/// A staff member's role in their practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// General practitioner.
    Gp,
    /// Practice nurse.
    Nurse,
    /// Reception or practice administration; manages staff and enrolments.
    Admin,
    /// The practice's privacy officer.
    PrivacyOfficer,
}

impl StaffRole {
    /// Every role, in display order.
    pub const ALL: [Self; 4] = [Self::Gp, Self::Nurse, Self::Admin, Self::PrivacyOfficer];

    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gp => "gp",
            Self::Nurse => "nurse",
            Self::Admin => "admin",
            Self::PrivacyOfficer => "privacy_officer",
        }
    }
    /// The name people read.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Gp => "GP",
            Self::Nurse => "Nurse",
            Self::Admin => "Reception / practice admin",
            Self::PrivacyOfficer => "Privacy officer",
        }
    }
    /// Parses the stored name.
    ///
    /// # Errors
    /// [`ValueError::Role`] for anything else.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        Self::ALL.into_iter().find(|r| r.as_str() == s.trim()).ok_or(ValueError::Role)
    }
}

/// What kind of health document something is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentCategory {
    /// A hospital discharge summary.
    DischargeSummary,
    /// A referral letter.
    Referral,
    /// A letter from a clinic (outpatients, a specialist).
    ClinicLetter,
    /// A test result report.
    Result,
    /// Other correspondence about the patient's care.
    Correspondence,
    /// Something the patient uploaded themself.
    PatientUpload,
}

impl DocumentCategory {
    /// Every category, in display order.
    pub const ALL: [Self; 6] = [
        Self::DischargeSummary,
        Self::Referral,
        Self::ClinicLetter,
        Self::Result,
        Self::Correspondence,
        Self::PatientUpload,
    ];

    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::DischargeSummary => "discharge_summary",
            Self::Referral => "referral",
            Self::ClinicLetter => "clinic_letter",
            Self::Result => "result",
            Self::Correspondence => "correspondence",
            Self::PatientUpload => "patient_upload",
        }
    }

    /// The name people read.
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::DischargeSummary => "Discharge summary",
            Self::Referral => "Referral",
            Self::ClinicLetter => "Clinic letter",
            Self::Result => "Result",
            Self::Correspondence => "Correspondence",
            Self::PatientUpload => "Your upload",
        }
    }

    /// Whether it is a clinical document (pushed in by an organisation), which the patient may
    /// hide from their own view but not delete.
    #[must_use]
    pub const fn is_clinical(self) -> bool {
        !matches!(self, Self::PatientUpload)
    }

    /// Parses the stored name.
    ///
    /// # Errors
    /// [`ValueError::Category`] for anything else.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        Self::ALL.into_iter().find(|c| c.as_str() == s.trim()).ok_or(ValueError::Category)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    #[test]
    fn emails() {
        assert_eq!(Email::parse(" Aroha@Example.co.nz ").unwrap().as_str(), "aroha@example.co.nz");
        for bad in ["", "a", "a@b", "@b.nz", "a@.nz", "a b@c.nz", "a@c..nz", "a@-c.nz", "a@@c.nz"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hpi_facility_ids() {
        assert_eq!(HpiFacilityId::parse("fzz999-b").unwrap().as_str(), "FZZ999-B");
        for bad in ["FZZ999B", "GZZ999-B", "FZZ99A-B", "FZZ999-", "FZZ9999-B"] {
            assert!(HpiFacilityId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_of_birth() {
        let today = date!(2026 - 11 - 22);
        assert!(DateOfBirth::parse("1980-02-29", today).is_ok());
        for bad in ["1981-02-29", "2027-01-01", "1899-12-31", "22/11/1980", ""] {
            assert!(DateOfBirth::parse(bad, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn regions_and_roles() {
        assert_eq!(Region::parse("manawatu-whanganui").unwrap().as_str(), "Manawatū-Whanganui");
        assert!(Region::parse("Atlantis").is_err());
        for r in StaffRole::ALL {
            assert_eq!(StaffRole::parse(r.as_str()), Ok(r));
        }
        assert!(StaffRole::parse("root").is_err());
    }

    proptest! {
        #[test]
        fn names_are_trimmed_and_bounded(s in "\\PC{0,150}") {
            match PersonName::parse(&s) {
                Ok(n) => {
                    prop_assert_eq!(n.as_str(), s.trim());
                    prop_assert!(!n.as_str().is_empty() && n.as_str().chars().count() <= 100);
                }
                Err(_) => prop_assert!(s.trim().is_empty() || s.trim().chars().count() > 100),
            }
        }

        #[test]
        fn email_parse_is_idempotent(s in "[a-zA-Z0-9.@_-]{0,30}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(e.as_str()).unwrap(), e);
            }
        }
    }
}

//! The repeat-prescriptions module's values: where a patient collects, and the states a
//! request goes through.

use crate::appointments::stored_enum;

stored_enum!(
    /// Where the patient collects the prescription.
    Collection {
        /// From the practice.
        Practice = "practice" / "Collect from the practice",
        /// Sent to a pharmacy.
        Pharmacy = "pharmacy" / "Send to a pharmacy",
    }
);

stored_enum!(
    /// A request's state: requested → in review → approved or declined.
    RepeatStatus {
        /// Sent by the patient, not yet looked at.
        Requested = "requested" / "Requested",
        /// A nurse is preparing it for the prescriber.
        InReview = "in_review" / "In review",
        /// Approved: sent to the pharmacy, or ready to collect.
        Approved = "approved" / "Approved",
        /// Declined, with the practice's reason.
        Declined = "declined" / "Declined",
    }
);

impl RepeatStatus {
    /// Still open: the items in it cannot be asked for again until it closes.
    #[must_use]
    pub const fn open(self) -> bool {
        matches!(self, Self::Requested | Self::InReview)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_states() {
        assert!(RepeatStatus::Requested.open() && RepeatStatus::InReview.open());
        assert!(!RepeatStatus::Approved.open() && !RepeatStatus::Declined.open());
        assert_eq!(Collection::parse("pharmacy"), Some(Collection::Pharmacy));
    }
}

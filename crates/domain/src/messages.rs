//! The messaging module's values: who a conversation is addressed to, its state, and the limits
//! on what a message may hold.

use crate::appointments::stored_enum;

stored_enum!(
    /// A team of the practice a conversation can be addressed to.
    Team {
        /// Reception: appointments, forms, general questions.
        Reception = "reception" / "Reception (appointments, forms, general questions)",
        /// The nurses: health questions that are not urgent.
        Nurses = "nurses" / "The nurses (health questions that are not urgent)",
    }
);

stored_enum!(
    /// Where a conversation stands, for the practice.
    ThreadStatus {
        /// Waiting for (or in) the practice's work.
        Open = "open" / "Open",
        /// Done; a new message from the patient opens it again.
        Closed = "closed" / "Closed",
    }
);

/// The longest subject, in characters.
pub const SUBJECT_MAX: usize = 120;
/// The longest message, in characters.
pub const BODY_MAX: usize = 4000;
/// The longest reply time a practice can promise, in working days.
pub const REPLY_DAYS_MAX: i32 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teams_and_states_round_trip() {
        for t in Team::ALL {
            assert_eq!(Team::parse(t.as_str()), Some(*t));
        }
        assert_eq!(ThreadStatus::parse("closed"), Some(ThreadStatus::Closed));
        assert_eq!(Team::parse("doctors"), None);
    }
}

//! The appointments module's values: who a book belongs to, how an appointment happens, and
//! the states of slots and appointments.

macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $code:literal / $label:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)+];

            /// The stored (and form) name.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// What people read.
            #[must_use]
            pub const fn label(self) -> &'static str {
                match self {
                    $(Self::$variant => $label,)+
                }
            }

            /// The value a stored name stands for.
            #[must_use]
            pub fn parse(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use stored_enum;

stored_enum!(
    /// The kind of clinician a book is for.
    ClinicianKind {
        /// A general practitioner.
        Gp = "gp" / "GP",
        /// A practice nurse.
        Nurse = "nurse" / "Nurse",
    }
);

stored_enum!(
    /// How an appointment happens.
    Modality {
        /// At the practice.
        InPerson = "in_person" / "At the practice",
        /// By phone: the practice calls.
        Phone = "phone" / "Phone call",
        /// By video.
        Video = "video" / "Video call",
    }
);

stored_enum!(
    /// A slot of the book.
    SlotStatus {
        /// Free to book.
        Free = "free" / "Free",
        /// Taken by an appointment booked here.
        Booked = "booked" / "Booked",
        /// Marked busy by the practice's own system (not bookable here).
        Busy = "busy" / "Busy in the practice system",
        /// Blocked by the practice's staff.
        Blocked = "blocked" / "Blocked",
    }
);

stored_enum!(
    /// An appointment's state.
    AppointmentStatus {
        /// Booked and upcoming (or not yet marked).
        Booked = "booked" / "Booked",
        /// Cancelled by the patient or the practice.
        Cancelled = "cancelled" / "Cancelled",
        /// The patient came.
        Attended = "attended" / "Attended",
        /// The patient did not come.
        DidNotAttend = "did_not_attend" / "Did not attend",
    }
);

/// How many minutes an appointment type may take.
pub const MINUTES: std::ops::RangeInclusive<i32> = 5..=120;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back() {
        for s in SlotStatus::ALL {
            assert_eq!(SlotStatus::parse(s.as_str()), Some(*s));
        }
        for s in AppointmentStatus::ALL {
            assert_eq!(AppointmentStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Modality::parse("video"), Some(Modality::Video));
        assert_eq!(ClinicianKind::parse("surgeon"), None);
    }
}

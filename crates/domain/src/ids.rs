//! Random (`UUIDv4`) ids for everything that leaves the server; nothing sequential is ever exposed.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random id.
            #[must_use]
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }
            /// Wraps an id read back from storage.
            #[must_use]
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            /// The underlying UUID, for storage.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// An account: a patient's, a staff member's or an operator's sign-in identity.
    AccountId
);
id_type!(
    /// A practice (a tenant).
    PracticeId
);
id_type!(
    /// A patient record (one per NHI).
    PatientId
);
id_type!(
    /// A health document (all its versions).
    DocumentId
);
id_type!(
    /// An organisation's API client, which pushes documents.
    ClientId
);
id_type!(
    /// A server-side session (its public handle; the bearer token is separate and secret).
    SessionId
);
id_type!(
    /// One item of a patient's health record (a condition, a result, a recall…).
    RecordId
);
id_type!(
    /// A clinician's book at one location (FHIR `Schedule`).
    ScheduleId
);
id_type!(
    /// One slot of a practice's book.
    SlotId
);
id_type!(
    /// One appointment.
    AppointmentId
);
id_type!(
    /// A kind of appointment a practice offers (standard, long, nurse, phone, video…).
    AppointmentTypeId
);
id_type!(
    /// A medication on a patient's long-term (repeat) list.
    RepeatMedicationId
);
id_type!(
    /// A request for repeat prescriptions.
    RepeatRequestId
);
id_type!(
    /// A proxy's right to act for one patient.
    ProxyId
);
id_type!(
    /// A conversation between a patient and their practice.
    ThreadId
);
id_type!(
    /// One message of a conversation (or a practice's internal note on it).
    MessageId
);
id_type!(
    /// A notice in a person's in-portal inbox.
    NoticeId
);

//! Validated values, random ids, the clock and the access vocabulary (module, object kind,
//! verb): what every other crate speaks. No I/O.

pub mod appointments;
pub mod calendar;
pub mod clock;
pub mod detection;
pub mod ids;
pub mod incidents;
pub mod messages;
pub mod nhi;
pub mod prescriptions;
pub mod proxies;
pub mod records;
pub mod values;
pub mod vocabulary;

pub use clock::{Clock, FakeClock, SystemClock, UnixTime};
pub use ids::{
    AccountId, AppointmentId, AppointmentTypeId, ClientId, DocumentId, MessageId, NoticeId, PatientId, PracticeId,
    ProxyId, RecordId, RepeatMedicationId, RepeatRequestId, ScheduleId, SessionId, SlotId, ThreadId,
};
pub use nhi::{Nhi, NhiError};
pub use records::{ClientScopes, RecordCategory};
pub use values::{
    AccountKind, DateOfBirth, DocumentCategory, Email, HpiFacilityId, PersonName, PracticeName, Region, StaffRole,
    ValueError,
};
pub use vocabulary::{Access, Module, ObjectKind, Verb};

/// A boxed, sendable future: what the storage contract's methods return, so it can be used as
/// `dyn Store` whichever engine is behind it.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

//! Validated values, random ids and the clock: the vocabulary every other crate speaks. No I/O.

pub mod clock;
pub mod ids;
pub mod nhi;
pub mod values;

pub use clock::{Clock, FakeClock, SystemClock, UnixTime};
pub use ids::{AccountId, ClientId, DocumentId, PatientId, PracticeId, SessionId};
pub use nhi::{Nhi, NhiError};
pub use values::{
    AccountKind, DateOfBirth, DocumentCategory, Email, HpiFacilityId, PersonName, PracticeName, Region, StaffRole,
    ValueError,
};

/// A boxed, sendable future: what the storage contract's methods return, so it can be used as
/// `dyn Store` whichever engine is behind it.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

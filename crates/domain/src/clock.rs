//! The one place time comes from, injected so expiry, rate windows and retention can be tested.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// Seconds since the Unix epoch, UTC. Stored as a 64-bit integer on both database engines.
pub type UnixTime = i64;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in whole seconds since the Unix epoch.
    fn now(&self) -> UnixTime;
    /// Now, in milliseconds since the Unix epoch (for ordering events within a second).
    fn now_ms(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(clippy::disallowed_methods, reason = "this is the one place the wall clock is read")]
    fn now(&self) -> UnixTime {
        OffsetDateTime::now_utc().unix_timestamp()
    }
    #[expect(clippy::disallowed_methods, reason = "this is the one place the wall clock is read")]
    fn now_ms(&self) -> i64 {
        i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to: for tests of expiry and rate windows. Its millisecond
/// reading ticks by one each time it is read, so events keep their order within a second.
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<AtomicI64>, Arc<AtomicI64>);

impl FakeClock {
    /// A fake clock standing at `start`.
    #[must_use]
    pub fn at(start: UnixTime) -> Self {
        Self(Arc::new(AtomicI64::new(start)), Arc::new(AtomicI64::new(0)))
    }
    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
    fn now_ms(&self) -> i64 {
        self.now() * 1000 + self.1.fetch_add(1, Ordering::SeqCst) % 1000
    }
}

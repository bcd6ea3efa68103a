//! What every node of a cluster shares: secrets made once, and leases for singleton jobs.

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type This = crate::SqliteStore;
    include!("sql.rs");
}
mod postgres {
    type This = crate::PgStore;
    include!("sql.rs");
}

use crate::Result;
use domain::{BoxFuture, UnixTime};

/// What every node of a cluster shares: secrets made once, and leases for singleton jobs.
pub trait PlatformStore: Send + Sync {
    /// Returns the stored secret called `name`, storing `fresh` first if there is none yet
    /// (so every node of a cluster agrees on it).
    fn secret<'a>(&'a self, name: &'a str, fresh: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>>>;
    /// Replaces a stored secret that is still `old` (the console re-sealing it under a new
    /// master key); true if it was.
    fn replace_secret<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::MasterKeyCustody>,
        name: &'a str,
        old: &'a [u8],
        new: &'a [u8],
    ) -> BoxFuture<'a, Result<bool>>;
    /// Takes or renews the lease `name` for `holder` until `until`; false if another holder has it.
    fn take_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        now: UnixTime,
        until: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
}

//! How the SQL is written once for both engines: each aggregate's folder has a `sql.rs` whose
//! queries are in the subset of SQL that `SQLite` and `PostgreSQL` share, instantiated for each
//! engine's concrete types by a small macro (sqlx's generic executor bounds make a single generic
//! impl unreadable; a macro keeps one text of each query). This file holds what they share: the
//! mapping of constraint violations and stored codes, and the engine-level part of [`crate::Store`].

use crate::{InvitationPurpose, StoreError};
use domain::{AccountKind, StaffRole};

/// Maps a unique-constraint violation to a conflict naming what was duplicated.
pub(crate) fn map_unique(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e
        && db.is_unique_violation()
    {
        {
            let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            let what = if text.contains("email") {
                "This email address"
            } else if text.contains("nhi") {
                "This NHI number"
            } else if text.contains("hpi_facility_id") {
                "This HPI facility id"
            } else {
                "This value"
            };
            return StoreError::Conflict(what);
        }
    }
    StoreError::Database(e)
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

pub(crate) fn account_kind(s: &str) -> Result<AccountKind, StoreError> {
    AccountKind::from_stored(s).ok_or_else(|| corrupt("account kind"))
}

pub(crate) fn staff_role(s: &str) -> Result<StaffRole, StoreError> {
    StaffRole::parse(s).map_err(|_| corrupt("staff role"))
}

pub(crate) fn purpose(s: &str) -> Result<InvitationPurpose, StoreError> {
    InvitationPurpose::from_stored(s).ok_or_else(|| corrupt("invitation purpose"))
}

macro_rules! portable_store {
    ($store:ty, $db:ty) => {
        const _: () = {
            use crate::*;
            use domain::BoxFuture;

            impl Store for $store {
                fn backend(&self) -> Backend {
                    Self::BACKEND
                }

                fn migrate(&self) -> BoxFuture<'_, Result<()>> {
                    Box::pin(self.run_migrations())
                }

                fn ping(&self) -> BoxFuture<'_, Result<()>> {
                    Box::pin(async move {
                        sqlx::query("SELECT 1").execute(&self.pool).await?;
                        Ok(())
                    })
                }
            }
        };
    };
}

portable_store!(crate::SqliteStore, sqlx::Sqlite);
portable_store!(crate::PgStore, sqlx::Postgres);

impl crate::SqliteStore {
    const BACKEND: crate::Backend = crate::Backend::Sqlite;
}
impl crate::PgStore {
    const BACKEND: crate::Backend = crate::Backend::Postgres;
}

//! Integrations: organisations' systems (API clients) allowed to push documents, and the
//! agreements under which a practice receives another organisation's documents.

use crate::{ApiClientRow, Result};
use authz::{Grant, ManagePractices};
use domain::{BoxFuture, ClientId, PracticeId, UnixTime};

/// Organisations' systems and agreements.
pub trait IntegrationStore: Send + Sync {
    // --- API clients ---
    /// Stores a new API client.
    fn create_api_client<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        client: &'a ApiClientRow,
    ) -> BoxFuture<'a, Result<()>>;
    /// One API client.
    fn api_client(&self, id: ClientId) -> BoxFuture<'_, Result<Option<ApiClientRow>>>;
    /// Every API client.
    fn api_clients<'a>(&'a self, grant: &'a Grant<ManagePractices>) -> BoxFuture<'a, Result<Vec<ApiClientRow>>>;
    /// Replaces a live client's secret; false if there is no such live client.
    fn rotate_api_client<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        id: ClientId,
        secret_hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Sets what a live client may do beyond pushing documents; false if there is no such
    /// live client.
    fn set_api_client_scopes<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        id: ClientId,
        scopes: domain::ClientScopes,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Revokes a client; false if there is no such live client.
    fn revoke_api_client<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        id: ClientId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Records that a practice receives documents from an organisation.
    fn add_agreement<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        practice: PracticeId,
        org_id: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Ends a practice's agreement to receive documents from an organisation: its next push
    /// for the practice's patients is refused. What it already sent stays the patients'.
    /// Returns whether there was one.
    fn remove_agreement<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        practice: PracticeId,
        org_id: &'a str,
    ) -> BoxFuture<'a, Result<bool>>;
}

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    include!("sql.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    include!("sql.rs");
}

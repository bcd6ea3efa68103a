// The SQL of the integrations aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 integrations/sql.rs` (CI checks it).

use crate::{ApiClientRow, IntegrationStore, Result};
use authz::Grant;
use domain::{BoxFuture, ClientId, PracticeId, UnixTime};
use sqlx::Row;
use uuid::Uuid;
type DbRow = <Db as sqlx::Database>::Row;

fn client_row(r: &DbRow) -> Result<ApiClientRow> {
    Ok(ApiClientRow {
        id: ClientId::from_uuid(r.try_get("id")?),
        label: r.try_get("label")?,
        org_id: r.try_get("org_id")?,
        org_name: r.try_get("org_name")?,
        practice: r.try_get::<Option<Uuid>, _>("practice_id")?.map(PracticeId::from_uuid),
        secret_hash: r.try_get("secret_hash")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
        suspended_at: r.try_get("suspended_at")?,
        scopes: domain::ClientScopes::parse(&r.try_get::<String, _>("scopes")?),
    })
}

impl IntegrationStore for This {
    fn create_api_client<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManagePractices>,
        c: &'a ApiClientRow,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO api_clients (id, label, org_id, org_name, practice_id, secret_hash, created_at, scopes) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(c.id.as_uuid())
            .bind(&c.label)
            .bind(&c.org_id)
            .bind(&c.org_name)
            .bind(c.practice.map(|p| p.as_uuid()))
            .bind(&c.secret_hash)
            .bind(c.created_at)
            .bind(c.scopes.as_stored())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn api_client(&self, id: ClientId) -> BoxFuture<'_, Result<Option<ApiClientRow>>> {
        Box::pin(async move {
            sqlx::query(
                "SELECT id, label, org_id, org_name, practice_id, secret_hash, created_at, revoked_at, suspended_at, scopes \
                 FROM api_clients WHERE id = $1",
            )
            .bind(id.as_uuid())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(client_row)
            .transpose()
        })
    }

    fn api_clients<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManagePractices>,
    ) -> BoxFuture<'a, Result<Vec<ApiClientRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, label, org_id, org_name, practice_id, secret_hash, created_at, revoked_at, suspended_at, scopes \
                 FROM api_clients ORDER BY created_at, id",
            )
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(client_row).collect()
        })
    }

    fn rotate_api_client<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManagePractices>,
        id: ClientId,
        secret_hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE api_clients SET secret_hash = $2, rotated_at = $3 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(id.as_uuid())
            .bind(secret_hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn set_api_client_scopes<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManagePractices>,
        id: ClientId,
        scopes: domain::ClientScopes,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query("UPDATE api_clients SET scopes = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.as_uuid())
                .bind(scopes.as_stored())
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn revoke_api_client<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManagePractices>,
        id: ClientId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query("UPDATE api_clients SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id.as_uuid())
                .bind(now)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn add_agreement<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManagePractices>,
        practice: PracticeId,
        org_id: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO document_agreements (practice_id, org_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (practice_id, org_id) DO NOTHING",
            )
            .bind(practice.as_uuid())
            .bind(org_id)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn remove_agreement<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManagePractices>,
        practice: PracticeId,
        org_id: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let gone = sqlx::query("DELETE FROM document_agreements WHERE practice_id = $1 AND org_id = $2")
                .bind(practice.as_uuid())
                .bind(org_id)
                .execute(&self.pool)
                .await?;
            Ok(gone.rows_affected() == 1)
        })
    }
}

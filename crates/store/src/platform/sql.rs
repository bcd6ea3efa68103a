// The SQL of the platform aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 platform/sql.rs` (CI checks it).

use crate::{BoxFuture, PlatformStore, Result, UnixTime};

use sqlx::Row;

impl PlatformStore for This {
    fn secret<'a>(&'a self, name: &'a str, fresh: &'a [u8]) -> BoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(fresh)
                .execute(&self.pool)
                .await?;
            let row =
                sqlx::query("SELECT value FROM settings WHERE name = $1").bind(name).fetch_one(&self.pool).await?;
            Ok(row.try_get("value")?)
        })
    }

    fn replace_secret<'a>(
        &'a self,
        grant: &'a authz::Grant<authz::MasterKeyCustody>,
        name: &'a str,
        old: &'a [u8],
        new: &'a [u8],
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let _ = grant;
            let done = sqlx::query("UPDATE settings SET value = $3 WHERE name = $1 AND value = $2")
                .bind(name)
                .bind(old)
                .bind(new)
                .execute(&self.pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    fn take_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        now: UnixTime,
        until: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $4) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
                 WHERE leases.until < $3 OR leases.holder = excluded.holder",
            )
            .bind(name)
            .bind(holder)
            .bind(now)
            .bind(until)
            .execute(&self.pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }
}

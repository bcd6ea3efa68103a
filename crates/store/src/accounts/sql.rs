// The SQL of the accounts aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 accounts/sql.rs` (CI checks it).

use crate::portable::account_kind;
use crate::{AccountId, AccountRow, AccountStore, BoxFuture, NewAccount, NewInvitation, Result, UnixTime};
use authz::Grant;
use shared::{insert_account, insert_invitation};
use sqlx::Row;

type DbRow = <Db as sqlx::Database>::Row;

fn account_row(r: &DbRow) -> Result<AccountRow> {
    Ok(AccountRow {
        id: AccountId::from_uuid(r.try_get("id")?),
        kind: account_kind(&r.try_get::<String, _>("kind")?)?,
        email: r.try_get("email")?,
        display_name: r.try_get("display_name")?,
        password_hash: r.try_get("password_hash")?,
        disabled_at: r.try_get("disabled_at")?,
        failed_sign_ins: r.try_get("failed_sign_ins")?,
        last_failed_sign_in_at: r.try_get("last_failed_sign_in_at")?,
        password_breached_at: r.try_get("password_breached_at")?,
    })
}

impl AccountStore for This {
    fn account_by_email<'a>(&'a self, email: &'a str) -> BoxFuture<'a, Result<Option<AccountRow>>> {
        Box::pin(async move {
            sqlx::query("SELECT id, kind, email, display_name, password_hash, disabled_at, failed_sign_ins, last_failed_sign_in_at, password_breached_at FROM accounts WHERE email = $1")
                .bind(email.trim().to_lowercase())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(account_row)
                .transpose()
        })
    }

    fn account(&self, id: AccountId) -> BoxFuture<'_, Result<Option<AccountRow>>> {
        Box::pin(async move {
            sqlx::query("SELECT id, kind, email, display_name, password_hash, disabled_at, failed_sign_ins, last_failed_sign_in_at, password_breached_at FROM accounts WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(account_row)
                .transpose()
        })
    }

    fn active_operator_count(&self) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT COUNT(*) FROM accounts WHERE kind = 'operator' AND password_hash IS NOT NULL AND disabled_at IS NULL",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(row.try_get(0)?)
        })
    }

    fn create_operator<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManageOperators>,
        account: &'a NewAccount,
        invite: &'a NewInvitation,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            insert_account(&mut tx, account).await?;
            insert_invitation(&mut tx, invite, Some(account.id)).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn set_account_disabled<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManageAccounts>,
        account: AccountId,
        reason: Option<&'a str>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            let changed = match reason {
                Some(reason) => shared::disable_account(&mut tx, account, reason, now).await?,
                None => {
                    sqlx::query(
                        "UPDATE accounts SET disabled_at = NULL, disabled_reason = NULL WHERE id = $1 \
                         AND disabled_at IS NOT NULL",
                    )
                    .bind(account.as_uuid())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                        == 1
                }
            };
            tx.commit().await?;
            Ok(changed)
        })
    }

    fn disabled_reason<'a>(
        &'a self,
        _grant: &'a Grant<authz::ManageAccounts>,
        account: AccountId,
    ) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let reason: Option<Option<String>> =
                sqlx::query_scalar("SELECT disabled_reason FROM accounts WHERE id = $1 AND disabled_at IS NOT NULL")
                    .bind(account.as_uuid())
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(reason.map(Option::unwrap_or_default))
        })
    }
}

// Writes more than one aggregate makes in its own transaction (an account with its invitation and
// the mail announcing it), once for both engines: included by `mod.rs` once per engine.

use crate::portable::map_unique;
use crate::{NewAccount, NewInvitation, NewMail, Result};
use domain::AccountId;

pub(crate) async fn insert_account(tx: &mut sqlx::Transaction<'_, Db>, a: &NewAccount) -> Result<()> {
    sqlx::query(
        "INSERT INTO accounts (id, kind, email, display_name, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, NULL, $5)",
    )
    .bind(a.id.as_uuid())
    .bind(a.kind.as_str())
    .bind(a.email.as_str())
    .bind(a.display_name.as_str())
    .bind(a.created_at)
    .execute(&mut **tx)
    .await
    .map_err(map_unique)?;
    Ok(())
}

pub(crate) async fn insert_mail(tx: &mut sqlx::Transaction<'_, Db>, m: &NewMail) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (id, recipient, subject, body, created_at, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $5)",
    )
    .bind(m.id)
    .bind(&m.recipient)
    .bind(&m.subject)
    .bind(&m.body)
    .bind(m.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) async fn insert_invitation(
    tx: &mut sqlx::Transaction<'_, Db>,
    i: &NewInvitation,
    account: Option<AccountId>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO invitations (id, token_hash, purpose, account_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(i.id)
    .bind(&i.token_hash)
    .bind(i.purpose.as_str())
    .bind(account.map(|a| a.as_uuid()))
    .bind(i.created_at)
    .bind(i.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(map_unique)?;
    if let Some(mail) = &i.mail {
        insert_mail(tx, mail).await?;
    }
    Ok(())
}

/// The tables of single-use links that each name an account and nothing else: the same columns
/// (`token_hash`, `account_id`, `created_at`, `expires_at`, `used_at`) and the same rules (a
/// link works once, before it expires), so one mechanism serves them all.
#[derive(Debug, Clone, Copy)]
pub(crate) enum AccountLinks {
    /// Links that let a session add a first second factor.
    SetupLinks,
    /// Password-reset links.
    PasswordResets,
}

impl AccountLinks {
    const fn table(self) -> &'static str {
        match self {
            Self::SetupLinks => "mfa_setup_links",
            Self::PasswordResets => "password_resets",
        }
    }
}

/// Stores a new link of `kind` for `account` (only its token's hash).
pub(crate) async fn create_account_link<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: AccountLinks,
    token_hash: &[u8],
    account: AccountId,
    now: domain::UnixTime,
    expires_at: domain::UnixTime,
) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {} (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        kind.table()
    )))
    .bind(token_hash)
    .bind(account.as_uuid())
    .bind(now)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The account a live link of `kind` names, without using it.
pub(crate) async fn peek_account_link<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: AccountLinks,
    token_hash: &[u8],
    now: domain::UnixTime,
) -> Result<Option<AccountId>> {
    let id: Option<uuid::Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT account_id FROM {} WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        kind.table()
    )))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await?;
    Ok(id.map(AccountId::from_uuid))
}

/// Uses a live link of `kind` (once: a second use finds nothing) and returns the account it names.
pub(crate) async fn use_account_link<'e, E: sqlx::Executor<'e, Database = Db>>(
    db: E,
    kind: AccountLinks,
    token_hash: &[u8],
    now: domain::UnixTime,
) -> Result<Option<AccountId>> {
    let id: Option<uuid::Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "UPDATE {} SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING account_id",
        kind.table()
    )))
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await?;
    Ok(id.map(AccountId::from_uuid))
}

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

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
    if let Some(n) = &m.notice {
        sqlx::query(
            "INSERT INTO notices (id, account_id, patient_id, kind, title, link, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(n.id.as_uuid())
        .bind(n.account.as_uuid())
        .bind(n.patient.map(|p| p.as_uuid()))
        .bind(&n.kind)
        .bind(&n.title)
        .bind(&n.link)
        .bind(m.created_at)
        .execute(&mut **tx)
        .await?;
    }
    if !m.deliver {
        return Ok(());
    }
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
    tokens::issue(
        &mut **tx,
        &crate::tokens::NewToken {
            kind: crate::tokens::TokenKind::Invitation,
            token_hash: &i.token_hash,
            purpose: Some(i.purpose.as_str()),
            account,
            detail: None,
            created_at: i.created_at,
            expires_at: i.expires_at,
        },
    )
    .await?;
    if let Some(mail) = &i.mail {
        insert_mail(tx, mail).await?;
    }
    Ok(())
}

/// Disables an account (no-op if it already is): no session of it works from the next request,
/// on any node (every request reads `disabled_at`), and every unused link naming it is void.
pub(crate) async fn disable_account(
    tx: &mut sqlx::Transaction<'_, Db>,
    account: AccountId,
    reason: &str,
    now: domain::UnixTime,
) -> Result<bool> {
    let changed =
        sqlx::query("UPDATE accounts SET disabled_at = $2, disabled_reason = $3 WHERE id = $1 AND disabled_at IS NULL")
            .bind(account.as_uuid())
            .bind(now)
            .bind(reason)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    sqlx::query("UPDATE sessions SET ended_at = $2 WHERE account_id = $1 AND ended_at IS NULL")
        .bind(account.as_uuid())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    tokens::revoke_all(&mut **tx, account, now).await?;
    Ok(changed == 1)
}

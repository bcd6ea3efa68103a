// The SQL of the links aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 links/sql.rs` (CI checks it).

use crate::portable::{corrupt, purpose};
use crate::{
    Acceptance, AccountId, AccountStore, BoxFuture, InvitationPurpose, InvitationState, InvitationView, LinkStore,
    NewInvitation, Result, StoreError, UnixTime,
};
use shared::{insert_account, insert_invitation};

use sqlx::Row;
use uuid::Uuid;

impl LinkStore for This {
    fn replace_first_operator_invitation<'a>(&'a self, invite: &'a NewInvitation) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            sqlx::query("DELETE FROM invitations WHERE purpose = 'first_operator' AND used_at IS NULL")
                .execute(&mut *tx)
                .await?;
            insert_invitation(&mut tx, invite, None).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn invitation<'a>(&'a self, token_hash: &'a [u8], now: UnixTime) -> BoxFuture<'a, Result<InvitationView>> {
        Box::pin(async move {
            let Some(r) =
                sqlx::query("SELECT purpose, account_id, expires_at, used_at FROM invitations WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await?
            else {
                return Err(StoreError::Invitation(InvitationState::Unknown));
            };
            if r.try_get::<Option<i64>, _>("used_at")?.is_some() {
                return Err(StoreError::Invitation(InvitationState::Used));
            }
            if r.try_get::<i64, _>("expires_at")? <= now {
                return Err(StoreError::Invitation(InvitationState::Expired));
            }
            let purpose = purpose(&r.try_get::<String, _>("purpose")?)?;
            let account = match r.try_get::<Option<Uuid>, _>("account_id")? {
                Some(id) => self.account(AccountId::from_uuid(id)).await?,
                None => None,
            };
            Ok(InvitationView { purpose, account })
        })
    }

    fn accept_invitation<'a>(
        &'a self,
        token_hash: &'a [u8],
        now: UnixTime,
        acceptance: &'a Acceptance,
    ) -> BoxFuture<'a, Result<AccountId>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            // Claim the link first: of two concurrent uses, only one updates a row.
            let claimed = sqlx::query(
                "UPDATE invitations SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                 RETURNING id, purpose, account_id",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(r) = claimed else {
                drop(tx);
                return match self.invitation(token_hash, now).await {
                    Err(e) => Err(e),
                    Ok(_) => Err(StoreError::Invitation(InvitationState::Used)),
                };
            };
            let purpose = purpose(&r.try_get::<String, _>("purpose")?)?;
            let account = match (purpose, r.try_get::<Option<Uuid>, _>("account_id")?, &acceptance.first_operator) {
                (InvitationPurpose::FirstOperator, None, Some(new)) => {
                    insert_account(&mut tx, new).await?;
                    sqlx::query("UPDATE invitations SET account_id = $1 WHERE id = $2")
                        .bind(new.id.as_uuid())
                        .bind(r.try_get::<Uuid, _>("id")?)
                        .execute(&mut *tx)
                        .await?;
                    new.id
                }
                (InvitationPurpose::FirstOperator, _, _) => return Err(corrupt("first-operator acceptance")),
                (_, Some(id), _) => AccountId::from_uuid(id),
                (_, None, _) => return Err(corrupt("invitation without account")),
            };
            let updated = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2 AND disabled_at IS NULL")
                .bind(&acceptance.password_hash)
                .bind(account.as_uuid())
                .execute(&mut *tx)
                .await?;
            if updated.rows_affected() != 1 {
                return Err(StoreError::NotFound);
            }
            // Any other unused link for this account dies with this one.
            sqlx::query("UPDATE invitations SET used_at = $2 WHERE account_id = $1 AND used_at IS NULL")
                .bind(account.as_uuid())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(account)
        })
    }
}

// The SQL of the links aggregate, one text for both engines: included by
// `mod.rs` once for `SQLite` and once for `PostgreSQL` (`This` is the engine's store, `Db` its
// database). Format with `rustfmt --edition 2024 links/sql.rs` (CI checks it).

use crate::portable::{corrupt, purpose};
use crate::{
    Acceptance, AccountId, AccountStore, BoxFuture, InvitationPurpose, InvitationState, InvitationView, LinkKind,
    LinkStore, NewInvitation, Result, StoreError, UnixTime,
};
use shared::{insert_account, insert_invitation};

use crate::tokens::{NO_LIMIT, NewToken, TokenKind};

impl LinkStore for This {
    fn create_link<'a>(
        &'a self,
        kind: LinkKind,
        token_hash: &'a [u8],
        account: AccountId,
        (now, expires_at): (UnixTime, UnixTime),
        mail: &'a crate::NewMail,
    ) -> BoxFuture<'a, Result<()>> {
        let link = NewToken::for_account(kind.token_kind(), token_hash, account, now, expires_at);
        Box::pin(async move {
            let mut tx = self.begin().await?;
            tokens::issue(&mut *tx, &link).await?;
            shared::insert_mail(&mut tx, mail).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn spend_decoy_link<'a>(
        &'a self,
        kind: LinkKind,
        token_hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>> {
        // Expired as it is made: it never works, and the pruning job removes it.
        let decoy = NewToken {
            kind: kind.token_kind(),
            token_hash,
            purpose: None,
            account: None,
            detail: None,
            created_at: now,
            expires_at: now,
        };
        Box::pin(async move {
            let mut tx = self.begin().await?;
            tokens::issue(&mut *tx, &decoy).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn peek_link<'a>(
        &'a self,
        kind: LinkKind,
        token_hash: &'a [u8],
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<AccountId>>> {
        Box::pin(async move {
            let live = tokens::peek(&self.pool, kind.token_kind(), token_hash, now, NO_LIMIT).await?;
            Ok(live.and_then(|t| t.account))
        })
    }

    fn use_link<'a>(
        &'a self,
        kind: LinkKind,
        token_hash: &'a [u8],
        now: UnixTime,
        holder: Option<AccountId>,
    ) -> BoxFuture<'a, Result<Option<AccountId>>> {
        Box::pin(async move {
            let used = tokens::redeem(&self.pool, kind.token_kind(), token_hash, now, NO_LIMIT, holder).await?;
            Ok(used.and_then(|t| t.account))
        })
    }

    fn links_since(&self, kind: LinkKind, account: AccountId, since: UnixTime) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move { tokens::issued_since(&self.pool, kind.token_kind(), account, since).await })
    }

    fn first_operator_invitation_expiry(&self, now: UnixTime) -> BoxFuture<'_, Result<Option<UnixTime>>> {
        Box::pin(async move {
            Ok(sqlx::query_scalar(
                "SELECT MAX(expires_at) FROM single_use_tokens WHERE kind = 'invitation' AND purpose = $1 \
                 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(InvitationPurpose::FirstOperator.as_str())
            .bind(now)
            .fetch_one(&self.pool)
            .await?)
        })
    }

    fn replace_first_operator_invitation<'a>(&'a self, invite: &'a NewInvitation) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut tx = self.begin().await?;
            tokens::withdraw(&mut *tx, TokenKind::Invitation, InvitationPurpose::FirstOperator.as_str()).await?;
            insert_invitation(&mut tx, invite, None).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    fn invitation<'a>(&'a self, token_hash: &'a [u8], now: UnixTime) -> BoxFuture<'a, Result<InvitationView>> {
        Box::pin(async move {
            let Some(t) = tokens::find(&self.pool, TokenKind::Invitation, token_hash).await? else {
                return Err(StoreError::Invitation(InvitationState::Unknown));
            };
            if t.used_at.is_some() {
                return Err(StoreError::Invitation(InvitationState::Used));
            }
            if t.expires_at <= now {
                return Err(StoreError::Invitation(InvitationState::Expired));
            }
            let purpose = purpose(t.purpose.as_deref().unwrap_or_default())?;
            let account = match t.account {
                Some(id) => self.account(id).await?,
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
            let claimed = tokens::redeem(&mut *tx, TokenKind::Invitation, token_hash, now, NO_LIMIT, None).await?;
            let Some(t) = claimed else {
                drop(tx);
                return match self.invitation(token_hash, now).await {
                    Err(e) => Err(e),
                    Ok(_) => Err(StoreError::Invitation(InvitationState::Used)),
                };
            };
            let purpose = purpose(t.purpose.as_deref().unwrap_or_default())?;
            let account = match (purpose, t.account, &acceptance.first_operator) {
                (InvitationPurpose::FirstOperator, None, Some(new)) => {
                    insert_account(&mut tx, new).await?;
                    tokens::set_account(&mut *tx, token_hash, new.id).await?;
                    new.id
                }
                (InvitationPurpose::FirstOperator, _, _) => return Err(corrupt("first-operator acceptance")),
                (_, Some(id), _) => id,
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
            tokens::revoke_unused(&mut *tx, TokenKind::Invitation, account, now).await?;
            tx.commit().await?;
            Ok(account)
        })
    }
}

//! The mail outbox: messages queued in the same transaction as what they announce, claimed and sent at least once.

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type This = crate::SqliteStore;
    use crate::shared::sqlite as shared;
    include!("sql.rs");
}
mod postgres {
    type This = crate::PgStore;
    use crate::shared::postgres as shared;
    include!("sql.rs");
}

use crate::{MailRow, NewMail, Result};
use domain::{BoxFuture, UnixTime};

/// The mail outbox: messages queued in the same transaction as what they announce, claimed and sent at least once.
pub trait OutboxStore: Send + Sync {
    /// Queues a message on its own (most mail is queued with the change that causes it).
    fn enqueue_mail<'a>(&'a self, mail: &'a NewMail) -> BoxFuture<'a, Result<()>>;
    /// Leases up to `limit` due messages until `lease_until`, so that only one sender sends each.
    fn claim_mail(&self, now: UnixTime, lease_until: UnixTime, limit: i64) -> BoxFuture<'_, Result<Vec<MailRow>>>;
    /// Marks a message delivered and clears its body.
    fn mail_sent(&self, id: uuid::Uuid, now: UnixTime) -> BoxFuture<'_, Result<()>>;
    /// Records a failed attempt and when to try again.
    fn mail_failed<'a>(
        &'a self,
        id: uuid::Uuid,
        next_attempt_at: UnixTime,
        error: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    /// Messages not yet delivered.
    fn pending_mail_count(&self) -> BoxFuture<'_, Result<i64>>;
}

//! The in-portal inbox part of the storage contract: each account's notices (written with the
//! change they announce, through the outbox: see `NewMail::notice`), their read state, and
//! which kinds of notice the person also wants emailed. An inbox is its account's own: every
//! read is keyed by the signed-in account, never by an id from the request alone.

use crate::{NewMail, NoticeRow, Recipient, Result};
use domain::{AccountId, BoxFuture, NoticeId, PatientId, UnixTime};

/// The inbox part of the storage contract.
pub trait NoticeStore: Send + Sync {
    /// The account's newest notices, at most `limit`.
    fn notices(&self, account: AccountId, limit: i64) -> BoxFuture<'_, Result<Vec<NoticeRow>>>;
    /// Marks one of the account's notices read (or all, with `None`); how many changed.
    fn mark_notices_read(
        &self,
        account: AccountId,
        notice: Option<NoticeId>,
        now: UnixTime,
    ) -> BoxFuture<'_, Result<u64>>;
    /// The kinds the account turned email off (or on) for: (kind, emailed).
    fn notice_prefs(&self, account: AccountId) -> BoxFuture<'_, Result<Vec<(String, bool)>>>;
    /// Sets whether a kind of notice is emailed.
    fn set_notice_pref<'a>(&'a self, account: AccountId, kind: &'a str, email: bool) -> BoxFuture<'a, Result<()>>;
    /// Who is told news of a patient for a kind of notice: the patient's own account, and every
    /// open proxy link's account whose practice the patient is still enrolled at (the caller
    /// judges each link's terms), each with whether they want that kind emailed.
    fn recipients<'a>(&'a self, patient: PatientId, kind: &'a str) -> BoxFuture<'a, Result<Vec<Recipient>>>;
    /// Queues notices and mails in one transaction.
    fn tell<'a>(&'a self, mails: &'a [NewMail]) -> BoxFuture<'a, Result<()>>;
}

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

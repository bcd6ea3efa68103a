//! Detection's storage (issue 17): the marks the detectors count, in the database so that every
//! node sees one picture, and the alerts they raise. Only ids and counts: no names, no health
//! data.

use crate::Result;
use domain::{BoxFuture, UnixTime};

/// An alert to raise.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// Its id.
    pub id: uuid::Uuid,
    /// The rule (a `domain::detection::Rule` code).
    pub rule: String,
    /// How serious (a `domain::detection::Severity` code).
    pub severity: String,
    /// What it is about: a session id.
    pub subject: String,
    /// The account behind the subject, when there is one.
    pub account: Option<String>,
    /// What was done (a `domain::detection::Response` code).
    pub response: String,
    /// How many distinct objects the subject had touched when it was raised.
    pub seen: i64,
    /// The window it was counted in.
    pub window_start: UnixTime,
    /// When.
    pub created_at: UnixTime,
}

/// An alert, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    /// Its id.
    pub id: String,
    /// The rule's code.
    pub rule: String,
    /// The severity's code.
    pub severity: String,
    /// The session it is about.
    pub subject: String,
    /// The account behind it.
    pub account: Option<String>,
    /// The response's code.
    pub response: String,
    /// Distinct objects touched when it was raised.
    pub seen: i64,
    /// When.
    pub created_at: UnixTime,
    /// When an operator acknowledged it.
    pub acknowledged_at: Option<UnixTime>,
}

/// The detectors' shared picture and their alerts.
pub trait DetectionStore: Send + Sync {
    /// Marks `objects` as touched by `subject` under `rule` in the window that starts at
    /// `window_start`, and returns how many distinct objects the subject has touched in that
    /// window, as every node sees it. The subject's earlier windows of the rule are forgotten.
    fn mark<'a>(
        &'a self,
        rule: &'a str,
        subject: &'a str,
        window_start: UnixTime,
        objects: &'a [String],
    ) -> BoxFuture<'a, Result<i64>>;
    /// Raises an alert, once per rule, subject and window; whether this call raised it.
    fn raise_alert<'a>(&'a self, alert: &'a NewAlert) -> BoxFuture<'a, Result<bool>>;
    /// The newest alerts, newest first.
    fn alerts(&self, limit: i64) -> BoxFuture<'_, Result<Vec<AlertRow>>>;
}

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type This = crate::SqliteStore;
    include!("sql.rs");
}
mod postgres {
    type This = crate::PgStore;
    include!("sql.rs");
}

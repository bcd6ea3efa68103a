//! Background jobs: the queue any node can run (claims under a lease, retries with back-off,
//! idempotency keys, progress).

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    include!("sql.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    include!("sql.rs");
}

use crate::Result;
use domain::{BoxFuture, UnixTime};

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// What kind of job (the code that runs it).
    pub kind: String,
    /// At most one job is ever enqueued per key (e.g. `sweep-blobs:2026-11-27T11`).
    pub idempotency_key: String,
    /// Its input (JSON).
    pub payload: String,
    /// Not before this time.
    pub run_after: UnixTime,
    /// How many times it may be tried.
    pub max_attempts: i32,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting to run (again).
    Queued,
    /// Claimed by a node, under its lease.
    Running,
    /// Finished.
    Done,
    /// Its attempts are spent.
    Failed,
}

impl JobState {
    /// The stored code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// The state a stored code stands for.
    #[must_use]
    pub fn from_stored(s: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Done, Self::Failed].into_iter().find(|v| v.as_str() == s)
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    /// Its id.
    pub id: String,
    /// What kind.
    pub kind: String,
    /// Its idempotency key.
    pub idempotency_key: String,
    /// Its input (JSON).
    pub payload: String,
    /// Where it is.
    pub state: JobState,
    /// Attempts so far (including a running one).
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Not before this time.
    pub run_after: UnixTime,
    /// The node running it, while it runs.
    pub lease_holder: Option<String>,
    /// Its lease runs until then.
    pub lease_until: Option<UnixTime>,
    /// Units of work done.
    pub progress_done: i64,
    /// Units of work in all, when known.
    pub progress_total: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// The job queue.
pub trait JobStore: Send + Sync {
    /// Enqueues a job unless one with its idempotency key exists; true if this call added it.
    fn enqueue_job<'a>(&'a self, job: &'a NewJob, id: &'a str, now: UnixTime) -> BoxFuture<'a, Result<bool>>;
    /// Claims the next job of one of `kinds` that is due (queued, or running under a lease that
    /// has run out) for `holder` until `lease_until`, counting the attempt. At most one holder
    /// ever claims a job at a time.
    fn claim_job<'a>(
        &'a self,
        kinds: &'a [&'a str],
        holder: &'a str,
        now: UnixTime,
        lease_until: UnixTime,
    ) -> BoxFuture<'a, Result<Option<JobRow>>>;
    /// Records progress and renews the lease; false if `holder` no longer holds the job.
    fn job_progress<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        done: i64,
        total: Option<i64>,
        lease_until: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Marks the job done; false if `holder` no longer holds it.
    fn finish_job<'a>(&'a self, id: &'a str, holder: &'a str, now: UnixTime) -> BoxFuture<'a, Result<bool>>;
    /// Records a failed attempt: queued again from `retry_at`, or failed when its attempts are
    /// spent; false if `holder` no longer holds it.
    fn fail_job<'a>(
        &'a self,
        id: &'a str,
        holder: &'a str,
        error: &'a str,
        retry_at: UnixTime,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// A job by its idempotency key.
    fn job_by_key<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<JobRow>>>;
}

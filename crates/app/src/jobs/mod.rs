//! Background work as jobs in the database queue (`store::JobStore`), which any node can run:
//! each job is claimed under a lease (renewed while it works, so a node that dies loses it and
//! another takes it over), retried with exponential back-off until its attempts are spent, and
//! enqueued at most once per idempotency key. Periodic work is scheduled by every node with a
//! key naming its period (`blob-sweep:493853`), so it runs once per period across the cluster.
//!
//! On the queue now: the blob sweep, the sign-in state prune, the access log's retention prune,
//! the notices of results a practice's rule released, the booking window's slots, the
//! appointment reminders and the detectors' old counts. The mail sender keeps its own queue (the outbox, with the same claims and retries),
//! and the Merkle tree builder runs under its singleton lease every second; notification
//! campaigns (a later issue) will be jobs with progress.

use crate::{App, AppError};
use std::sync::Arc;
use std::time::Duration;
use store::{JobRow, NewJob};
use tokio::sync::Notify;

/// The kinds of background job, each with its period and the work it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Removes the blobs of abandoned uploads and deleted documents (older than a day).
    BlobSweep,
    /// Removes sign-in counters and links no longer needed.
    SignInPrune,
    /// Removes access-log events past their retention period.
    AuditPrune,
    /// Tells patients of results their practice's rule released after its days.
    ResultNotices,
    /// Keeps every practice's booking window filled with slots from its weekly templates.
    AppointmentSlots,
    /// Reminds patients of tomorrow's appointments.
    AppointmentReminders,
    /// Forgets the detectors' counts of windows long past.
    DetectionPrune,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [Self; 7] = [
        Self::BlobSweep,
        Self::SignInPrune,
        Self::AuditPrune,
        Self::ResultNotices,
        Self::AppointmentSlots,
        Self::AppointmentReminders,
        Self::DetectionPrune,
    ];

    /// The stored code.
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::BlobSweep => "blob-sweep",
            Self::SignInPrune => "sign-in-prune",
            Self::AuditPrune => "audit-prune",
            Self::ResultNotices => "result-notices",
            Self::AppointmentSlots => "appointment-slots",
            Self::AppointmentReminders => "appointment-reminders",
            Self::DetectionPrune => "detection-prune",
        }
    }

    /// How often it runs, seconds.
    #[must_use]
    pub const fn period_secs(self) -> i64 {
        3_600
    }

    fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
}

/// How long a claim lasts before another node may take the job over; renewed as it works.
const LEASE_SECS: i64 = 300;
/// Attempts before a job is given up (and logged as failed).
const MAX_ATTEMPTS: i32 = 5;

/// What one pass of the runner did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobsRun {
    /// Jobs this pass enqueued (periods no node had scheduled yet).
    pub scheduled: usize,
    /// Jobs it finished.
    pub finished: usize,
    /// Jobs that failed an attempt.
    pub failed: usize,
}

/// The back-off after the `attempt`th failure: 1, 2, 4 … minutes, at most an hour.
#[must_use]
pub fn backoff_secs(attempt: i32) -> i64 {
    let exp = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(6);
    (60_i64 << exp).min(3_600)
}

impl crate::console::Console<'_> {
    /// Enqueues each periodic job for the current period (if no node has) and runs every due
    /// job this node can claim, once.
    ///
    /// # Errors
    /// When the queue cannot be read or written; a job's own failure is recorded on the job.
    pub async fn run_due_jobs(&self, node: &str) -> Result<JobsRun, AppError> {
        let app = self.app();
        let now = app.clock_now();
        let mut run = JobsRun::default();
        for kind in JobKind::ALL {
            let period = now.div_euclid(kind.period_secs());
            let job = NewJob {
                kind: kind.code().into(),
                idempotency_key: format!("{}:{period}", kind.code()),
                payload: "{}".into(),
                run_after: period * kind.period_secs(),
                max_attempts: MAX_ATTEMPTS,
            };
            if app.store.enqueue_job(&job, &uuid::Uuid::now_v7().to_string(), now).await? {
                run.scheduled += 1;
            }
        }
        // Periodic kinds, and alerts waiting to be posted to the webhook.
        let mut kinds: Vec<&str> = JobKind::ALL.iter().map(|k| k.code()).collect();
        kinds.push(crate::detection::WEBHOOK_JOB);
        loop {
            let now = app.clock_now();
            let Some(job) = app.store.claim_job(&kinds, node, now, now + LEASE_SECS).await? else { break };
            match self.run_job(&job).await {
                Ok(()) => {
                    app.store.finish_job(&job.id, node, app.clock_now()).await?;
                    run.finished += 1;
                }
                Err(e) => {
                    let retry_at = app.clock_now() + backoff_secs(job.attempts);
                    let message = e.to_string();
                    app.store.fail_job(&job.id, node, &message, retry_at, app.clock_now()).await?;
                    tracing::warn!(job = %job.kind, attempt = job.attempts, error = %message, "a background job failed; it is retried with back-off");
                    run.failed += 1;
                }
            }
        }
        Ok(run)
    }

    async fn run_job(&self, job: &JobRow) -> Result<(), AppError> {
        if job.kind == crate::detection::WEBHOOK_JOB {
            return self.app().post_alert(&job.payload).await;
        }
        match JobKind::parse(&job.kind) {
            Some(JobKind::BlobSweep) => {
                let r = self.sweep_blobs(86_400).await?;
                if r.intents + r.strays > 0 {
                    tracing::info!(intents = r.intents, strays = r.strays, "swept blobs");
                }
                Ok(())
            }
            Some(JobKind::SignInPrune) => self.prune_sign_in_state().await.map(|_| ()),
            Some(JobKind::AuditPrune) => self.prune_audit().await.map(|_| ()),
            Some(JobKind::ResultNotices) => self.app().tell_auto_released().await.map(|_| ()),
            Some(JobKind::AppointmentSlots) => self.app().refresh_all_slots().await.map(|_| ()),
            Some(JobKind::AppointmentReminders) => self.app().send_reminders().await.map(|_| ()),
            // Windows are at most a week (configuration caps them): a day more, and they go.
            Some(JobKind::DetectionPrune) => {
                let before = self.app().clock_now() - 8 * 86_400;
                self.app().store.prune_marks(before).await.map(|_| ()).map_err(AppError::from)
            }
            None => Err(AppError::Internal(format!("no code runs jobs of kind {}", job.kind))),
        }
    }
}
impl App {
    /// Runs the job queue every minute until `shutdown` is notified.
    pub async fn run_jobs(self: Arc<Self>, shutdown: Arc<Notify>) {
        let node = uuid::Uuid::new_v4().to_string();
        loop {
            if let Err(e) = self.console().run_due_jobs(&node).await {
                tracing::warn!(error = %e, "the job queue could not be run; trying again in a minute");
            }
            tokio::select! {
                () = shutdown.notified() => break,
                () = tokio::time::sleep(Duration::from_mins(1)) => {}
                // An alert to post: at once, not at the next minute.
                () = self.jobs_waker.notified() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_from_a_minute_to_an_hour() {
        let waits: Vec<i64> = (1..=8).map(backoff_secs).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert!(JobKind::ALL.iter().all(|k| JobKind::parse(k.code()) == Some(*k)));
    }
}

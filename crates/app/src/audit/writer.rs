//! The group-commit writer: every request's events go to one task that commits whatever has
//! queued in one transaction and acknowledges each request once its events are durable.

use crate::group::Group;
use crate::{App, AppError};
use std::sync::Arc;
use store::{AuditEvent, Mark, Store};

/// What the writer takes: an event, or one of the detectors' marks (written in the same
/// transaction, so counting costs the request no transaction of its own).
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "events are nearly every entry; boxing them would allocate for each")]
pub(crate) enum Entry {
    Event(AuditEvent),
    Mark(Mark),
}

/// The group-commit writer's front door.
#[derive(Debug, Clone)]
pub(crate) struct Auditor {
    group: Group<Entry, i64>,
}

/// Events committed per transaction at most.
const MAX_BATCH: usize = 5000;

impl Auditor {
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let group = Group::start(MAX_BATCH, move |entries: Vec<Entry>| {
            let store = store.clone();
            async move {
                let mut events = Vec::with_capacity(entries.len());
                let mut marks = Vec::new();
                let mut order = Vec::with_capacity(entries.len());
                for e in entries {
                    match e {
                        Entry::Event(e) => {
                            events.push(e);
                            order.push(false);
                        }
                        Entry::Mark(m) => {
                            marks.push(m);
                            order.push(true);
                        }
                    }
                }
                let result = store.append_audit_events_marking(&events, &marks).await.map_err(|e| e.to_string());
                match &result {
                    Ok(_) => {
                        metrics::counter!("tiaki_audit_events_total").increment(events.len() as u64);
                        #[expect(clippy::cast_precision_loss, reason = "a histogram of batch sizes")]
                        metrics::histogram!("tiaki_audit_batch_size").record(events.len() as f64);
                    }
                    Err(e) => {
                        metrics::counter!("tiaki_audit_write_failures_total").increment(1);
                        tracing::error!(error = %e, events = events.len(), "audit events could not be written; the requests fail");
                    }
                }
                // One result per entry: a mark's count, nothing (0) for an event.
                result.map(|counts| {
                    let mut counts = counts.into_iter();
                    order.into_iter().map(|mark| if mark { counts.next().unwrap_or(0) } else { 0 }).collect()
                })
            }
        });
        Self { group }
    }

    /// Returns once the events (and the detectors' marks) are durable: each mark's count.
    pub(crate) async fn record_marking(&self, events: Vec<AuditEvent>, marks: Vec<Mark>) -> Result<Vec<i64>, AppError> {
        let n = events.len();
        let entries = events.into_iter().map(Entry::Event).chain(marks.into_iter().map(Entry::Mark)).collect();
        self.group
            .submit(entries)
            .await
            .map(|r| r.into_iter().skip(n).collect())
            .map_err(|e| AppError::Internal(format!("audit events could not be written: {e}")))
    }

    /// Returns once the events are durable.
    pub(crate) async fn record(&self, events: Vec<AuditEvent>) -> Result<(), AppError> {
        self.record_marking(events, Vec::new()).await.map(|_| ())
    }
}

impl App {
    /// Writes events through the group-commit writer and returns once they are durable. Use
    /// cases call this before serving what the events describe.
    ///
    /// # Errors
    /// [`AppError::Internal`] when the events could not be written.
    pub(crate) async fn audit(&self, events: Vec<AuditEvent>) -> Result<(), AppError> {
        // What the detectors count goes into the same transaction as the events; on most
        // requests (a patient's own reads) nothing, and nothing at all while detection is off.
        let plan = self.plan(&events);
        let counts = self.auditor.record_marking(events, plan.marks()).await?;
        // Detected as written, before whatever the events describe is served.
        self.contain(plan, counts).await
    }
}

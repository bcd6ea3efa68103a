//! The group-commit writer: every request's events go to one task that commits whatever has
//! queued in one transaction and acknowledges each request once its events are durable.

use crate::{App, AppError};
use std::sync::Arc;
use store::{AuditEvent, Store};
use tokio::sync::{mpsc, oneshot};

type Batch = (Vec<AuditEvent>, oneshot::Sender<Result<(), String>>);

/// The group-commit writer's front door.
#[derive(Debug, Clone)]
pub(crate) struct Auditor {
    tx: mpsc::Sender<Batch>,
}

/// Events committed per transaction at most.
const MAX_BATCH: usize = 5000;

impl Auditor {
    pub(crate) fn start(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel::<Batch>(65_536);
        tokio::spawn(writer(store, rx));
        Self { tx }
    }

    /// Returns once the events are durable.
    pub(crate) async fn record(&self, events: Vec<AuditEvent>) -> Result<(), AppError> {
        if events.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.tx.send((events, ack)).await.map_err(|_| AppError::Internal("the audit writer has stopped".into()))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AppError::Internal(format!("audit events could not be written: {e}"))),
            Err(_) => Err(AppError::Internal("the audit writer has stopped".into())),
        }
    }
}

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Batch>) {
    while let Some(first) = rx.recv().await {
        let mut count = first.0.len();
        let mut batch = vec![first];
        // Gather what is queued; then let the requests just woken by the last commit run and
        // queue theirs, for as long as the batch keeps growing (a commit costs about the same
        // for one event as for hundreds).
        loop {
            let before = count;
            while count < MAX_BATCH {
                match rx.try_recv() {
                    Ok(b) => {
                        count += b.0.len();
                        batch.push(b);
                    }
                    Err(_) => break,
                }
            }
            if count >= MAX_BATCH || (count == before && batch.len() > 1) {
                break;
            }
            if count == before {
                // A lone event: give the others one chance to join, then go.
                tokio::task::yield_now().await;
                if rx.is_empty() {
                    break;
                }
                continue;
            }
            tokio::task::yield_now().await;
        }
        let mut events: Vec<AuditEvent> = Vec::with_capacity(count);
        let mut acks = Vec::with_capacity(batch.len());
        for (e, ack) in batch {
            events.extend(e);
            acks.push(ack);
        }
        let result = store.append_audit_events(&events).await.map_err(|e| e.to_string());
        match &result {
            Ok(()) => {
                metrics::counter!("tiaki_audit_events_total").increment(events.len() as u64);
                #[expect(clippy::cast_precision_loss, reason = "a histogram of batch sizes")]
                metrics::histogram!("tiaki_audit_batch_size").record(events.len() as f64);
            }
            Err(e) => {
                metrics::counter!("tiaki_audit_write_failures_total").increment(1);
                tracing::error!(error = %e, events = events.len(), "audit events could not be written; the requests fail");
            }
        }
        for ack in acks {
            let _ = ack.send(result.clone());
        }
    }
}

impl App {
    /// Writes events through the group-commit writer and returns once they are durable. Use
    /// cases call this before serving what the events describe.
    ///
    /// # Errors
    /// [`AppError::Internal`] when the events could not be written.
    pub(crate) async fn audit(&self, events: Vec<AuditEvent>) -> Result<(), AppError> {
        // What the detectors count, kept before the writer takes the events: on most requests
        // (allowed reads) nothing, and nothing at all while detection is off.
        let on = self.detection_thresholds().on;
        let watched: Vec<AuditEvent> = events.iter().filter(|e| on && crate::detection::counted(e)).cloned().collect();
        self.auditor.record(events).await?;
        // Detected as written, before whatever the events describe is served.
        self.detect(&watched).await
    }
}

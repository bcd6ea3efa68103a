//! The console's access-log work: exports of the whole log for a time range, pruning past the
//! retention period, the sign-in state sweep, and raw writes for fixtures and benchmarks.

use super::Console;
use crate::AppError;
use crate::audit::history::bundle;
use crate::audit::{MIN_AUDIT_RETENTION_YEARS, YEAR_MS};
use serde_json::Value;

impl Console<'_> {
    /// Events of the whole platform for the console (`tiaki audit export`).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn export_audit_range(&self, from_ms: i64, to_ms: i64) -> Result<Value, AppError> {
        let events = self.app.store.audit_range(&authz::console::export_audit(), from_ms, to_ms, 1_000_000).await?;
        Ok(bundle(&events))
    }

    /// Removes sign-in counters and links no longer needed (run hourly).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn prune_sign_in_state(&self) -> Result<u64, AppError> {
        Ok(self.app.store.prune_sign_in_state(self.app.now()).await?)
    }

    /// Removes the events older than the retention period from the start of the log, up to
    /// the newest signed checkpoint that only older events precede. Their tree nodes and every
    /// checkpoint stay, so the rest of the log still verifies. Returns how many were removed.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn prune_audit(&self) -> Result<u64, AppError> {
        let years = self.app.audit_settings.retention_years.max(MIN_AUDIT_RETENTION_YEARS);
        let cutoff_ms = self.app.clock.now_ms().saturating_sub(years.saturating_mul(YEAR_MS));
        let size = self.app.store.audit_tree_size().await?;
        let first_young = self.app.store.first_audit_seq_since(cutoff_ms).await?.unwrap_or(size).min(size);
        let already = self.app.store.audit_pruned().await?.map_or(0, |p| p.below);
        let below = self
            .app
            .store
            .checkpoints()
            .await?
            .iter()
            .map(|c| c.size)
            .filter(|&s| s <= first_young && s > already)
            .max();
        let Some(below) = below else { return Ok(0) };
        // The record is signed like a checkpoint, so a forged one (events still to be kept,
        // removed "after their retention") fails verification.
        let Some(signer) = &self.app.audit_settings.signer else {
            return Err(AppError::Internal("the access log has no signing key to sign the retention record".into()));
        };
        let note = signer.sign(&crate::audit::retention_body(&self.app.audit_settings.origin, below, cutoff_ms));
        let gone = self.app.store.prune_audit(below, cutoff_ms, &note, self.app.clock.now()).await?;
        tracing::info!(
            below,
            removed = gone,
            retention_years = years,
            "access-log events past their retention removed"
        );
        Ok(gone)
    }

    /// Writes events as they are, straight to the access log (fixtures, benchmarks and imports;
    /// requests only ever write the events their grants yield).
    ///
    /// # Errors
    /// [`AppError::Internal`] when the events could not be written.
    pub async fn record_events(&self, events: Vec<store::AuditEvent>) -> Result<(), AppError> {
        self.app.audit(events).await
    }
}

//! The access log: group-committed appends, the Merkle tree's nodes, checkpoints and cosignatures, and the reads behind access histories and exports.

/// The Merkle tree's size, as SQL: the number of leaves hashed into `audit_nodes`. A macro, so
/// that the queries which compare with it can take it in with `concat!`.
macro_rules! tree_size {
    () => {
        "SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_nodes WHERE level = 0"
    };
}
const TREE_SIZE: &str = tree_size!();

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
pub(crate) mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    use crate::detection::sqlite as marks;
    include!("sql.rs");
}
pub(crate) mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    use crate::detection::postgres as marks;
    include!("sql.rs");
}

use crate::{
    AuditEvent, CheckpointRow, CosignatureRow, ExportAudit, HistoryFilter, HistoryRow, IndexedHash, Result,
    SequencedEvent, ViewAccessHistory,
};
use authz::Grant;
use domain::{BoxFuture, UnixTime};

/// The access log: group-committed appends, the Merkle tree's nodes, checkpoints and cosignatures, and the reads behind access histories and exports.
pub trait AccessLogStore: Send + Sync {
    /// Appends events in one transaction (the group commit): all are durable, or none.
    fn append_audit_events<'a>(&'a self, events: &'a [AuditEvent]) -> BoxFuture<'a, Result<()>>;
    /// Appends events as [`AccessLogStore::append_audit_events`] does and, in the same
    /// transaction, the detectors' marks (`DetectionStore::mark_all`); each mark's count.
    fn append_audit_events_marking<'a>(
        &'a self,
        events: &'a [AuditEvent],
        marks: &'a [crate::Mark],
    ) -> BoxFuture<'a, Result<Vec<i64>>>;
    /// Sequences up to `limit` waiting events into the Merkle tree, in one transaction; returns
    /// the new tree size and root.
    fn sequence_audit(&self, limit: i64) -> BoxFuture<'_, Result<(u64, [u8; 32])>>;
    /// The number of sequenced events.
    fn audit_tree_size(&self) -> BoxFuture<'_, Result<u64>>;
    /// The number of events waiting to be sequenced.
    fn unsequenced_audit_count(&self) -> BoxFuture<'_, Result<u64>>;
    /// The stored perfect-subtree hashes of one level with index in `[from, to)`, by index.
    fn audit_node_range(&self, level: u32, from: u64, to: u64) -> BoxFuture<'_, Result<Vec<IndexedHash>>>;
    /// The hashes of these perfect subtrees (level, index), in order.
    fn audit_nodes<'a>(&'a self, keys: &'a [(u32, u64)]) -> BoxFuture<'a, Result<Vec<[u8; 32]>>>;
    /// Stores a signed checkpoint.
    fn add_checkpoint<'a>(&'a self, checkpoint: &'a CheckpointRow) -> BoxFuture<'a, Result<()>>;
    /// All checkpoints, smallest first.
    fn checkpoints(&self) -> BoxFuture<'_, Result<Vec<CheckpointRow>>>;
    /// The largest checkpoint.
    fn latest_checkpoint(&self) -> BoxFuture<'_, Result<Option<CheckpointRow>>>;
    /// The checkpoint at one tree size, if there is one.
    fn checkpoint_at(&self, size: u64) -> BoxFuture<'_, Result<Option<CheckpointRow>>>;
    /// Stores a verified cosignature (a witness's later cosignature of the same checkpoint
    /// replaces its earlier one).
    fn add_cosignature<'a>(&'a self, cosignature: &'a CosignatureRow, now: UnixTime) -> BoxFuture<'a, Result<()>>;
    /// All stored cosignatures.
    fn cosignatures(&self) -> BoxFuture<'_, Result<Vec<CosignatureRow>>>;
    /// Sequenced events with `seq >= from`, in order, at most `limit`.
    fn sequenced_events(&self, from: u64, limit: i64) -> BoxFuture<'_, Result<Vec<SequencedEvent>>>;
    /// The leaf index of an event, once sequenced.
    fn audit_seq_of<'a>(&'a self, event_id: &'a str) -> BoxFuture<'a, Result<Option<u64>>>;
    /// The leaf index of the first event written at or after `at_ms`, if any.
    fn first_audit_seq_since(&self, at_ms: i64) -> BoxFuture<'_, Result<Option<u64>>>;
    /// Removes the events with a leaf index below `below` (retention; their tree nodes stay)
    /// and records it, with `cutoff_ms` (every removed event is older) and `note`, the record
    /// signed by the log's key. Returns how many went.
    fn prune_audit<'a>(
        &'a self,
        below: u64,
        cutoff_ms: i64,
        note: &'a str,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<u64>>;
    /// Where the retained log begins: (leaf index, cutoff, signed note) of the last removal.
    fn audit_pruned(&self) -> BoxFuture<'_, Result<Option<crate::PrunedRecord>>>;
    /// A patient's access history, newest first.
    fn patient_history<'a>(
        &'a self,
        grant: &'a Grant<ViewAccessHistory>,
        filter: &'a HistoryFilter,
    ) -> BoxFuture<'a, Result<Vec<HistoryRow>>>;
    /// One principal's events in a time range, oldest first (the security console's evidence):
    /// a session's (`session_id`), or an account's or system's (`actor_account`).
    fn principal_events<'a>(
        &'a self,
        grant: &'a Grant<ExportAudit>,
        principal: &'a str,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<AuditEvent>>>;
    /// Every event in a time range, oldest first (operators' export).
    fn audit_range<'a>(
        &'a self,
        grant: &'a Grant<ExportAudit>,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<AuditEvent>>>;
}

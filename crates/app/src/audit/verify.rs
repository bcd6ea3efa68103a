//! `tiaki audit verify`: every event re-hashed, every stored node and signed checkpoint
//! recomputed, every cosignature checked; the first divergence named.

use super::AccessLog;
use super::{MIN_AUDIT_RETENTION_YEARS, YEAR_MS};
use crate::{App, AppError};
use audit::merkle::{self, Hash};
use audit::note::{Checkpoint, Note, Signature, Verifier};
use domain::{Module, ObjectKind};
use std::collections::HashMap;
use store::{AuditEvent, CheckpointRow};

/// The result of `tiaki audit verify`.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Sequenced events checked.
    pub events: u64,
    /// Events waiting to be sequenced (not an error).
    pub unsequenced_note: Option<String>,
    /// Events removed after their retention period (not an error).
    pub retention_note: Option<String>,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// Cosignatures checked.
    pub cosignatures: usize,
    /// Every problem found, the first divergence first.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether the log is intact.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// An instant in milliseconds as RFC 3339 (UTC).
fn rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// A format-1 event's module is not in its leaf: it was filled in from the object kind when
/// the log was upgraded, so it must be exactly that. A format-2 event's must be a module.
fn module_problem(e: &AuditEvent) -> Option<String> {
    let expected = if e.format == audit::event::FORMAT_V1 {
        ObjectKind::parse(&e.object_type).map_or(Module::Identity, ObjectKind::module_before_v2).code()
    } else if Module::parse(&e.module).is_some() {
        return None;
    } else {
        return Some(format!("event {} names no module of Tiaki ({:?})", e.id, e.module));
    };
    (e.module != expected).then(|| {
        format!(
            "event {} (written before events named their module) is filed under module {:?}, not {expected:?}: it was changed after the upgrade",
            e.id, e.module
        )
    })
}

impl App {
    /// Checkpoints: signed by this log, and their stored size and root agree with the note.
    /// Returns (size, root) of each well-formed one, smallest first.
    fn check_checkpoints(
        &self,
        checkpoints: &[CheckpointRow],
        total: u64,
        log_key: Option<&Verifier>,
        report: &mut VerifyReport,
    ) -> Vec<(u64, Hash)> {
        let mut expected: Vec<(u64, Hash)> = Vec::new();
        for c in checkpoints {
            let parsed = Note::parse(&c.note).ok().and_then(|n| Checkpoint::parse_body(&n.body).ok().map(|cp| (n, cp)));
            let Some((n, cp)) = parsed else {
                report.problems.push(format!("checkpoint at size {} is not a well-formed signed checkpoint", c.size));
                continue;
            };
            let signed = log_key.is_some_and(|k| n.signatures.iter().any(|s| k.verify(&n.body, s).is_some()));
            if !signed {
                report.problems.push(format!("checkpoint at size {} is not signed by this log's key", c.size));
            }
            if cp.size != c.size || cp.root.as_slice() != c.root.as_slice() || cp.origin != self.audit_settings.origin {
                report.problems.push(format!(
                    "checkpoint at size {}: the stored size, root or origin differ from its signed note",
                    c.size
                ));
            }
            if cp.size > total {
                report.problems.push(format!(
                    "checkpoint at size {} covers more events than the log holds ({total}): events were removed from the end",
                    cp.size
                ));
            }
            expected.push((cp.size, cp.root));
        }
        expected.sort_by_key(|e| e.0);
        expected
    }

    /// Events: contiguous, each leaf recomputed from its fields, roots compared at each checkpoint.
    async fn check_events(
        &self,
        expected: &[(u64, Hash)],
        total: u64,
        log_key: Option<&Verifier>,
        report: &mut VerifyReport,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<(), AppError> {
        let mut acc = self.retained_start(expected, log_key, report).await?;
        // Events older than a few checkpoint intervals must be under a signed checkpoint: a
        // tail without one is what deleting the newest checkpoints (to rewrite what they
        // covered) leaves behind.
        let covered = expected.iter().map(|e| e.0).max().unwrap_or(0);
        let overdue_ms = self.clock.now_ms().saturating_sub(self.audit_settings.checkpoint_every_secs * 3 * 1000);
        let mut uncovered: Option<(u64, i64)> = None;
        let mut next_cp = expected.iter().peekable();
        while next_cp.peek().is_some_and(|e| e.0 <= acc.size()) {
            next_cp.next();
        }
        let mut from = acc.size();
        let mut diverged = false;
        loop {
            let batch = self.store.sequenced_events(from, 10_000).await?;
            if batch.is_empty() {
                break;
            }
            // The tree's stored nodes (what proofs are built from), recomputed alongside.
            let mut computed: Vec<(u32, u64, Hash)> = Vec::with_capacity(batch.len() * 2);
            for s in &batch {
                if s.seq != acc.size() {
                    report.problems.push(format!(
                        "event {} has leaf index {} where {} was expected: events were removed or reordered",
                        s.event.id,
                        s.seq,
                        acc.size()
                    ));
                    diverged = true;
                    break;
                }
                if let Some(problem) = module_problem(&s.event) {
                    report.problems.push(problem);
                }
                if s.seq >= covered && s.event.at_ms < overdue_ms && uncovered.is_none() {
                    uncovered = Some((s.seq, s.event.at_ms));
                }
                let leaf = s.event.leaf_hash();
                computed.push((0, s.seq, leaf));
                computed.extend(acc.push(leaf));
                while let Some(&&(size, root)) = next_cp.peek() {
                    if size != acc.size() {
                        break;
                    }
                    if acc.root() != root {
                        report.problems.push(format!(
                            "the events up to leaf {} do not produce the root signed in the checkpoint at size {size}: an event at or before leaf {} was changed, removed, added or reordered",
                            size - 1,
                            size - 1
                        ));
                    }
                    next_cp.next();
                }
            }
            self.check_nodes(&computed, report).await?;
            if diverged {
                break;
            }
            from = acc.size();
            report.events = acc.size();
            progress(acc.size(), total);
        }
        report.events = acc.size();
        if let Some((seq, at_ms)) = uncovered {
            report.problems.push(format!(
                "the events from leaf {seq} on (the first written at {}) are not covered by any signed checkpoint, though \
                 checkpoints are signed every {} seconds: the newest checkpoints were removed, perhaps to rewrite the \
                 events they covered (check against a checkpoint kept outside the database: --checkpoint FILE)",
                rfc3339_ms(at_ms),
                self.audit_settings.checkpoint_every_secs
            ));
        }
        if !diverged && acc.size() < total {
            report.problems.push(format!(
                "the tree has {total} leaves but only {} events are stored: the events from leaf {} on were removed",
                acc.size(),
                acc.size()
            ));
            if let Some(&(size, _)) = next_cp.next() {
                report.problems.push(format!(
                    "checkpoint at size {size} covers more events than the log holds ({}): events were removed from the end",
                    acc.size()
                ));
            }
        }
        Ok(())
    }

    /// Where the retained events begin: the empty tree, or — after events past their retention
    /// were removed — the tree at that size rebuilt from its stored nodes, which must give the
    /// root signed in the checkpoint there (and every older checkpoint's root too). A removal
    /// of events younger than the minimum retention is reported.
    async fn retained_start(
        &self,
        expected: &[(u64, Hash)],
        log_key: Option<&Verifier>,
        report: &mut VerifyReport,
    ) -> Result<merkle::Accumulator, AppError> {
        let Some(store::PrunedRecord { below, cutoff_ms, note }) = self.store.audit_pruned().await? else {
            return Ok(merkle::Accumulator::new());
        };
        let body = super::retention_body(&self.audit_settings.origin, below, cutoff_ms);
        let signed = note.as_deref().and_then(|n| Note::parse(n).ok()).is_some_and(|n| {
            n.body == body && log_key.is_some_and(|k| n.signatures.iter().any(|s| k.verify(&n.body, s).is_some()))
        });
        if !signed {
            report.problems.push(format!(
                "the record that the events before leaf {below} were removed after their retention is not signed by this log's key: it was forged or altered"
            ));
        }
        report.retention_note = Some(format!(
            "the {below} oldest events were removed after their retention period (all written before {}); their tree nodes and checkpoints were checked instead",
            time::OffsetDateTime::from_unix_timestamp(cutoff_ms.div_euclid(1000))
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_else(|| cutoff_ms.to_string())
        ));
        let tree_at = |size: u64| async move {
            let levels = merkle::frontier_levels(size);
            let hashes = self.store.audit_nodes(&levels).await?;
            merkle::Accumulator::from_frontier(size, &hashes).map_err(|e| AppError::Internal(e.into()))
        };
        let latest_allowed = self.clock.now_ms().saturating_sub(MIN_AUDIT_RETENTION_YEARS * YEAR_MS);
        if cutoff_ms > latest_allowed {
            report.problems.push(format!(
                "the events before leaf {below} were removed as past their retention, but the recorded cutoff is less than {MIN_AUDIT_RETENTION_YEARS} years ago: events still to be kept are missing"
            ));
        }
        for &(size, root) in expected.iter().filter(|e| e.0 > 0 && e.0 < below) {
            if tree_at(size).await?.root() != root {
                report.problems.push(format!(
                    "the stored tree does not give the root signed in the checkpoint at size {size} (before the retained events)"
                ));
            }
        }
        let acc = tree_at(below).await?;
        match expected.iter().find(|e| e.0 == below) {
            Some(&(_, root)) if root == acc.root() => {}
            Some(_) => report.problems.push(format!(
                "the stored tree where the retained events begin (leaf {below}) does not give the root signed in the checkpoint there"
            )),
            None => report.problems.push(format!(
                "the events before leaf {below} were removed, but no signed checkpoint at that size anchors the rest"
            )),
        }
        Ok(acc)
    }

    /// Compares recomputed subtree hashes with the stored ones that proofs are served from.
    async fn check_nodes(&self, computed: &[(u32, u64, Hash)], report: &mut VerifyReport) -> Result<(), AppError> {
        let mut levels: HashMap<u32, Vec<(u64, Hash)>> = HashMap::new();
        for (level, idx, hash) in computed {
            levels.entry(*level).or_default().push((*idx, *hash));
        }
        let mut sorted: Vec<_> = levels.into_iter().collect();
        sorted.sort_by_key(|(l, _)| *l);
        for (level, nodes) in sorted {
            let (lo, hi) = (nodes.iter().map(|n| n.0).min().unwrap_or(0), nodes.iter().map(|n| n.0).max().unwrap_or(0));
            let stored: HashMap<u64, Hash> =
                self.store.audit_node_range(level, lo, hi + 1).await?.into_iter().collect();
            if let Some((idx, _)) = nodes.iter().find(|(idx, hash)| stored.get(idx) != Some(hash)) {
                report.problems.push(if level == 0 {
                    format!("the event at leaf {idx} does not match the leaf hash recorded when it was sequenced: it was changed")
                } else {
                    format!(
                        "the stored tree node at level {level}, index {idx} does not match the events: proofs served from it would not verify"
                    )
                });
            }
        }
        Ok(())
    }

    /// Cosignatures: each verifies against a configured witness over the stored checkpoint.
    async fn check_cosignatures(
        &self,
        checkpoints: &[CheckpointRow],
        require_witness: bool,
        report: &mut VerifyReport,
    ) -> Result<(), AppError> {
        let cosignatures = self.store.cosignatures().await?;
        report.cosignatures = cosignatures.len();
        let mut newest_witnessed = false;
        for c in &cosignatures {
            let body = checkpoints
                .iter()
                .find(|k| k.size == c.checkpoint_size)
                .and_then(|k| Note::parse(&k.note).ok())
                .map(|n| n.body);
            let valid = body.is_some_and(|b| {
                Signature::parse_line(&c.signature_line).is_ok_and(|sig| {
                    self.audit_settings.witnesses.iter().any(|w| w.name == c.witness && w.verify(&b, &sig).is_some())
                })
            });
            if !valid {
                report.problems.push(format!(
                    "the cosignature by {} of the checkpoint at size {} does not verify",
                    c.witness, c.checkpoint_size
                ));
            } else if checkpoints.last().is_some_and(|k| k.size == c.checkpoint_size) {
                newest_witnessed = true;
            }
        }
        // Without a witness, whoever holds the database could drop the newest checkpoint with the
        // events after it; a witness's cosignature of the newest checkpoint rules that out.
        if require_witness && !newest_witnessed {
            report.problems.push(match checkpoints.last() {
                Some(k) => format!("the newest checkpoint (size {}) has no valid witness cosignature", k.size),
                None => "there is no checkpoint for a witness to have cosigned".to_owned(),
            });
        }
        Ok(())
    }
}

impl AccessLog<'_> {
    /// Recomputes the whole log from the stored events and checks every checkpoint's root,
    /// size and signature (against `pinned_key` if given, else this node's own key), and every
    /// stored cosignature; with `require_witness`, the newest checkpoint must carry a valid
    /// witness cosignature. `progress` is told (done, total).
    ///
    /// # Errors
    /// When storage fails (a tampered log is a report with problems, not an error).
    pub async fn verify(
        &self,
        pinned_key: Option<&str>,
        require_witness: bool,
        progress: impl FnMut(u64, u64),
    ) -> Result<VerifyReport, AppError> {
        self.verify_against(pinned_key, require_witness, None, progress).await
    }

    /// As [`AccessLog::verify`], and the log must also be consistent with `kept`, a signed
    /// checkpoint kept outside the database (a witness's copy, or one an auditor saved from
    /// `/audit/checkpoint`): the events up to its size must give its root.
    ///
    /// # Errors
    /// [`AppError::Invalid`] for a `kept` checkpoint that is not a checkpoint signed by this
    /// log's key; storage errors.
    pub async fn verify_against(
        &self,
        pinned_key: Option<&str>,
        require_witness: bool,
        kept: Option<&str>,
        progress: impl FnMut(u64, u64),
    ) -> Result<VerifyReport, AppError> {
        let mut report = VerifyReport::default();
        let total = self.app.store.audit_tree_size().await?;
        let checkpoints = self.app.store.checkpoints().await?;
        report.checkpoints = checkpoints.len();
        let log_key = match pinned_key {
            // A key kept away from this server is the real trust anchor: someone holding the
            // data folder could re-sign a rewritten log with the key stored there.
            Some(k) => Some(Verifier::parse(k).map_err(|e| AppError::field("log_key", e.to_string()))?),
            None => self.vkey().and_then(|v| Verifier::parse(&v).ok()),
        };
        let mut expected = self.app.check_checkpoints(&checkpoints, total, log_key.as_ref(), &mut report);
        if let Some(text) = kept {
            let (size, root) = self.kept_checkpoint(text, log_key.as_ref())?;
            if size > total {
                report.problems.push(format!(
                    "the checkpoint kept outside the database covers {size} events, but the log holds {total}: events were removed from the end"
                ));
            }
            if !expected.contains(&(size, root)) {
                expected.push((size, root));
                expected.sort_by_key(|e| e.0);
            }
        }
        self.app.check_events(&expected, total, log_key.as_ref(), &mut report, progress).await?;
        self.app.check_cosignatures(&checkpoints, require_witness, &mut report).await?;
        let waiting = self.app.store.unsequenced_audit_count().await?;
        if waiting > 0 {
            report.unsequenced_note =
                Some(format!("{waiting} recent events are waiting to be sequenced (normal while the server runs)"));
        }
        Ok(report)
    }

    /// A checkpoint kept outside the database: well-formed, of this log, signed by its key.
    fn kept_checkpoint(self, text: &str, log_key: Option<&Verifier>) -> Result<(u64, Hash), AppError> {
        let bad = |why: &str| AppError::field("checkpoint", format!("the checkpoint file {why}"));
        let note = Note::parse(text.trim_start()).map_err(|_| bad("is not a signed checkpoint note"))?;
        let cp = Checkpoint::parse_body(&note.body).map_err(|_| bad("is not a checkpoint"))?;
        if cp.origin != self.app.audit_settings.origin {
            return Err(bad(&format!(
                "is of the log {:?}, not this one ({:?})",
                cp.origin, self.app.audit_settings.origin
            )));
        }
        if !log_key.is_some_and(|k| note.signatures.iter().any(|s| k.verify(&note.body, s).is_some())) {
            return Err(bad("is not signed by this log's key"));
        }
        Ok((cp.size, cp.root))
    }
}

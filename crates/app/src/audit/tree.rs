//! The Merkle tree over the log: the sequencer job (one node at a time, under a lease) that
//! builds it and signs checkpoints, inclusion and consistency proofs, and witnesses' cosignatures.

use super::AccessLog;
use crate::{App, AppError};
use audit::merkle::{self, Hash, Nodes};
use audit::note::{self, Checkpoint, Note};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::collections::HashMap;
use std::sync::Arc;
use store::{CheckpointRow, CosignatureRow};
use tokio::sync::Notify;

/// Events sequenced per transaction at most: small enough that the appends waiting behind one
/// batch wait a few milliseconds (at 5,000 a batch, about 100 ms at a time).
const SEQUENCE_BATCH: i64 = 500;

/// What a tick of the audit jobs did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// Tree size after sequencing.
    pub size: u64,
    /// The checkpoint made, if one was.
    pub checkpoint: Option<u64>,
    /// Whether this node held the lease (otherwise another node did the work).
    pub leader: bool,
}

/// An inclusion or consistency proof, as served.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProofView {
    /// For inclusion: the leaf index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
    /// For inclusion: the leaf hash (base64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_hash: Option<String>,
    /// For consistency: the older size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_size: Option<u64>,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The proof's hashes (base64), in RFC 9162 order.
    pub hashes: Vec<String>,
}

struct Recorder(Vec<(u32, u64)>);

impl Nodes for Recorder {
    type Error = std::convert::Infallible;
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        self.0.push((level, index));
        Ok([0; 32])
    }
}

struct Loaded(HashMap<(u32, u64), Hash>);

impl Nodes for Loaded {
    type Error = AppError;
    fn perfect(&mut self, level: u32, index: u64) -> Result<Hash, AppError> {
        self.0.get(&(level, index)).copied().ok_or_else(|| AppError::Internal("missing tree node".into()))
    }
}

impl App {
    /// Runs the audit jobs every second until `shutdown` is notified.
    pub async fn run_audit_jobs(self: Arc<Self>, shutdown: Arc<Notify>) {
        // Retention pruning is a job on the queue (`jobs::JobKind::AuditPrune`).
        loop {
            if let Err(e) = self.access_log().tick(false).await {
                tracing::error!(error = %e, "audit sequencing failed; will retry");
            }
            tokio::select! {
                () = shutdown.notified() => break,
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }

    async fn load_nodes(&self, run: impl Fn(&mut Recorder)) -> Result<Loaded, AppError> {
        let mut rec = Recorder(Vec::new());
        run(&mut rec);
        let mut keys = rec.0;
        keys.sort_unstable();
        keys.dedup();
        let hashes = self.store.audit_nodes(&keys).await?;
        Ok(Loaded(keys.into_iter().zip(hashes).collect()))
    }

    async fn check_size(&self, size: u64) -> Result<(), AppError> {
        // A tree the log never had: there is no such proof (404), as for any other object.
        if size == 0 || size > self.store.audit_tree_size().await? {
            return Err(AppError::NotFound);
        }
        Ok(())
    }
}

impl AccessLog<'_> {
    /// The latest signed checkpoint note.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn latest_checkpoint(&self) -> Result<Option<String>, AppError> {
        Ok(self.app.store.latest_checkpoint().await?.map(|c| c.note))
    }

    /// The log's public verifier key.
    #[must_use]
    pub fn vkey(&self) -> Option<String> {
        self.app.audit_settings.signer.as_ref().map(|s| s.vkey())
    }

    /// An inclusion proof for leaf `index` in the tree of `size` leaves.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for a leaf or size the log does not have.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<ProofView, AppError> {
        self.app.check_size(size).await?;
        if index >= size {
            return Err(AppError::NotFound);
        }
        let mut nodes = self
            .app
            .load_nodes(|r| {
                let _ = merkle::inclusion_proof(r, index, size);
                let _ = r.perfect(0, index);
            })
            .await?;
        let proof = merkle::inclusion_proof(&mut nodes, index, size)?;
        let leaf = nodes.perfect(0, index)?;
        Ok(ProofView {
            leaf_index: Some(index),
            leaf_hash: Some(B64.encode(leaf)),
            old_size: None,
            tree_size: size,
            hashes: proof.iter().map(|h| B64.encode(h)).collect(),
        })
    }

    /// A consistency proof between tree sizes `old` and `new`.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for sizes the log does not have.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<ProofView, AppError> {
        self.app.check_size(new).await?;
        if old == 0 || old > new {
            return Err(AppError::NotFound);
        }
        let mut nodes = self
            .app
            .load_nodes(|r| {
                let _ = merkle::consistency_proof(r, old, new);
            })
            .await?;
        let proof = merkle::consistency_proof(&mut nodes, old, new)?;
        Ok(ProofView {
            leaf_index: None,
            leaf_hash: None,
            old_size: Some(old),
            tree_size: new,
            hashes: proof.iter().map(|h| B64.encode(h)).collect(),
        })
    }

    /// Accepts a checkpoint cosigned by a configured witness. Returns how many cosignatures
    /// were verified and stored.
    ///
    /// # Errors
    /// [`AppError::Invalid`] when the note is malformed, is not one of this log's checkpoints,
    /// or carries no valid cosignature from a known witness.
    pub async fn add_cosignatures(&self, text: &str) -> Result<usize, AppError> {
        let bad = |m: &str| AppError::field("note", m);
        let note = Note::parse(text).map_err(|e| bad(&e.to_string()))?;
        let cp = Checkpoint::parse_body(&note.body).map_err(|e| bad(&e.to_string()))?;
        let ours = self.app.store.checkpoint_at(cp.size).await?;
        let Some(ours) = ours.filter(|c| Note::parse(&c.note).is_ok_and(|n| n.body == note.body)) else {
            return Err(bad("this is not one of this log's checkpoints"));
        };
        let mut stored = 0;
        for sig in &note.signatures {
            for w in self.app.audit_settings.witnesses.iter().filter(|w| w.is_cosigner()) {
                if let Some(ts) = w.verify(&note.body, sig) {
                    let line = format!("\u{2014} {} {}\n", sig.name, B64.encode(&sig.bytes));
                    let row = CosignatureRow {
                        checkpoint_size: ours.size,
                        witness: w.name.clone(),
                        signature_line: line,
                        signed_at: i64::try_from(ts).unwrap_or(i64::MAX),
                    };
                    self.app.store.add_cosignature(&row, self.app.clock.now()).await?;
                    stored += 1;
                }
            }
        }
        if stored == 0 {
            return Err(bad("no valid cosignature from a configured witness"));
        }
        Ok(stored)
    }

    /// Sequences waiting events and, when due, signs a checkpoint — if this node holds the
    /// sequencer lease.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn tick(&self, force_checkpoint: bool) -> Result<Tick, AppError> {
        let now = self.app.clock.now();
        if !self.app.store.take_lease("audit-sequencer", &self.app.node_id, now, now + 30).await? {
            return Ok(Tick { size: self.app.store.audit_tree_size().await?, checkpoint: None, leader: false });
        }
        let (mut size, mut root) = self.app.store.sequence_audit(SEQUENCE_BATCH).await?;
        loop {
            let (s, r) = self.app.store.sequence_audit(SEQUENCE_BATCH).await?;
            if s == size {
                break;
            }
            (size, root) = (s, r);
        }
        let mut checkpoint = None;
        if let Some(signer) = &self.app.audit_settings.signer {
            let latest = self.app.store.latest_checkpoint().await?;
            let due = match &latest {
                None => size > 0 || force_checkpoint,
                Some(c) => {
                    size > c.size
                        && (force_checkpoint || now - c.created_at >= self.app.audit_settings.checkpoint_every_secs)
                }
            };
            if due {
                let body = note::checkpoint_body(&self.app.audit_settings.origin, size, &root);
                let row = CheckpointRow { size, root: root.to_vec(), note: signer.sign(&body), created_at: now };
                self.app.store.add_checkpoint(&row).await?;
                metrics::gauge!("tiaki_audit_tree_size").set(u32::try_from(size).map_or(f64::MAX, f64::from));
                tracing::info!(size, "audit checkpoint signed");
                checkpoint = Some(size);
            }
        }
        Ok(Tick { size, checkpoint, leader: true })
    }
}

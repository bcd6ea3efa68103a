//! The access log (DESIGN §7). Every grant writes its event before anything is served: the
//! event goes to a single writer task that commits whatever has queued in one transaction
//! (group commit) and acknowledges each request only once its events are durable — if the write
//! fails, the request fails and nothing is served (fail closed). A singleton job (under a
//! database lease, so one node at a time) sequences events into the RFC 9162 Merkle tree and
//! signs C2SP checkpoints; witnesses may cosign them; `verify` recomputes everything.

pub mod history;
mod tree;
mod verify;
mod writer;

pub(crate) use crate::access::{Outcome, Target};
pub use crate::caller::Caller;
pub use tree::{ProofView, Tick};
pub use verify::VerifyReport;
pub(crate) use writer::Auditor;

use crate::{App, AppError};
use audit::note::{NoteSigner, Verifier};
use std::sync::Arc;

/// The audit module's use cases, on the application's shared parts: [`App::access_log`].
#[derive(Debug, Clone, Copy)]
pub struct AccessLog<'a> {
    app: &'a App,
}

impl App {
    /// The access log: access histories, exports, proofs, checkpoints and verification.
    #[must_use]
    pub const fn access_log(&self) -> AccessLog<'_> {
        AccessLog { app: self }
    }
}

/// The log's identity and keys.
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// The checkpoint origin line, e.g. `portal.example.nz/audit`.
    pub origin: String,
    /// The log's signing key (none: checkpoints are not made, e.g. in a read-only tool).
    pub signer: Option<Arc<dyn NoteSigner>>,
    /// Witnesses whose cosignatures are accepted.
    pub witnesses: Vec<Verifier>,
    /// Make a checkpoint at most this often, seconds, when the tree has grown.
    pub checkpoint_every_secs: i64,
    /// Keep events this many years (at least [`MIN_AUDIT_RETENTION_YEARS`]).
    pub retention_years: i64,
}

/// Access-log events are kept at least this long (issue 5; NZ health records are kept ten years).
pub const MIN_AUDIT_RETENTION_YEARS: i64 = 10;

/// A year, in milliseconds (365.25 days).
pub(crate) const YEAR_MS: i64 = 31_557_600_000;

impl AuditSettings {
    /// The settings a configuration asks for, with the log's signer (a key file or a token).
    ///
    /// # Errors
    /// When a witness key cannot be used.
    pub fn from_config(config: &crate::Config, signer: Option<Arc<dyn NoteSigner>>) -> Result<Self, AppError> {
        let witnesses = config
            .audit_witnesses
            .iter()
            .map(|w| Verifier::parse(w).map_err(|e| AppError::Internal(format!("witness key: {e}"))))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            origin: config.audit_origin.clone(),
            signer,
            witnesses,
            checkpoint_every_secs: config.audit_checkpoint_secs,
            retention_years: config.audit_retention_years,
        })
    }

    /// The origin line for a public URL: its host and path, with `/audit`.
    #[must_use]
    pub fn origin_for(public_url: &str) -> String {
        let host = public_url.split("://").nth(1).unwrap_or(public_url).trim_end_matches('/');
        format!("{host}/audit")
    }
}

impl From<std::convert::Infallible> for AppError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

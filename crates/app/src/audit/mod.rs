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

/// The name under which the access log's origin is stored with the log.
const ORIGIN_SECRET: &str = "audit_origin";

/// Fixes the access log's origin (the first line of every checkpoint it signs) to the one
/// stored with the log: the first start stores the configured one (or the default from the
/// listen address), and every later start — the server, `tiaki audit verify` run from any
/// shell — uses the stored one. An origin configured explicitly (`TIAKI_AUDIT_ORIGIN`, or
/// `TIAKI_PUBLIC_URL`) that disagrees is refused: checkpoints signed under another name would
/// not verify against this log.
///
/// # Errors
/// [`AppError::Invalid`] for a configured origin that is not the stored one; storage errors.
pub async fn settle_origin(config: &mut crate::Config, store: &dyn store::Store) -> Result<(), AppError> {
    let stored = store.secret(ORIGIN_SECRET, config.audit_origin.as_bytes()).await?;
    let stored = String::from_utf8(stored).map_err(|e| AppError::Internal(format!("stored audit origin: {e}")))?;
    if stored != config.audit_origin && config.audit_origin_configured {
        return Err(AppError::field(
            "audit_origin",
            format!(
                "this access log was created with the origin {stored:?}, but the configuration gives {:?} (from \
                 TIAKI_AUDIT_ORIGIN, or else TIAKI_PUBLIC_URL). Checkpoints signed under another name would not verify: \
                 set TIAKI_AUDIT_ORIGIN={stored} to keep this log's name",
                config.audit_origin
            ),
        ));
    }
    config.audit_origin = stored;
    Ok(())
}

/// The signed body of a retention record: the events before leaf `below`, all written before
/// `cutoff_ms`, were removed after their retention period.
#[must_use]
pub fn retention_body(origin: &str, below: u64, cutoff_ms: i64) -> String {
    format!("{origin}\ntiaki access-log retention\nbelow {below}\ncutoff_ms {cutoff_ms}\n")
}

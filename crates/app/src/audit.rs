//! The access log (DESIGN §7). Every grant writes its event before anything is served: the
//! event goes to a single writer task that commits whatever has queued in one transaction
//! (group commit) and acknowledges each request only once its events are durable — if the write
//! fails, the request fails and nothing is served (fail closed). A singleton job (under a
//! database lease, so one node at a time) sequences events into the RFC 9162 Merkle tree and
//! signs C2SP checkpoints; witnesses may cosign them; `verify` recomputes everything.

use crate::{App, AppError};
use audit::merkle::{self, Hash, Nodes};
use audit::note::{self, Checkpoint, Note, NoteSigner, Signature, Verifier};
use authz::{Action, Grant, Policy, Principal, Subject};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use domain::{Access, Module, ObjectKind, PatientId, PracticeId, Verb};
use std::collections::HashMap;
use std::sync::Arc;
use store::{AuditEvent, CheckpointRow, CosignatureRow, Store};
use tokio::sync::{Notify, mpsc, oneshot};

/// Who is asking, and from where: the principal from the session, and the request's details
/// that go into every audit event.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal the policy sees.
    pub principal: Principal,
    /// The client's address (none at the console).
    pub ip: Option<std::net::IpAddr>,
    /// The client's user agent.
    pub user_agent: String,
    /// The request id (joins the event with the logs).
    pub request_id: String,
}

impl Caller {
    /// A request's caller.
    #[must_use]
    pub fn new(principal: Principal, ip: std::net::IpAddr, user_agent: &str, request_id: &str) -> Self {
        Self {
            principal,
            ip: Some(ip),
            user_agent: user_agent.chars().filter(|c| !c.is_control()).take(200).collect(),
            request_id: request_id.chars().take(64).collect(),
        }
    }

    /// The server's console (`tiaki admin`, `tiaki demo`), acting as `principal`.
    #[must_use]
    pub fn console(principal: Principal) -> Self {
        Self { principal, ip: None, user_agent: "tiaki console".into(), request_id: String::new() }
    }
}

/// What an event is about: its module, object kind and verb (the typed vocabulary), which
/// object, and whose. Events about a grant are made from the grant ([`Target::of`]); identity
/// events (sign-in, second factors, sessions) name their verb.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) access: Access,
    pub(crate) object_id: String,
    pub(crate) patient: Option<PatientId>,
    pub(crate) practice: Option<PracticeId>,
}

impl Target {
    /// What a grant allows: its action's vocabulary, its object, the patient and practice.
    pub(crate) fn of<A: Action>(grant: &Grant<A>) -> Self {
        Self {
            access: A::ACCESS,
            object_id: grant.object().to_string(),
            patient: grant.patient(),
            practice: grant.practice(),
        }
    }

    /// What `A` on `object` is, for work done at the console, where no policy is asked (the
    /// console's grants are in `authz::console`).
    pub(crate) fn console<A: Action>(object: A::Object) -> Self {
        Self {
            access: A::ACCESS,
            object_id: object.to_string(),
            patient: object.as_patient(),
            practice: object.as_practice(),
        }
    }

    /// An event about an account (sign-in, second factors, passwords, email).
    pub(crate) fn account(verb: Verb, account: &impl ToString) -> Self {
        Self { access: Access::account(verb), object_id: account.to_string(), patient: None, practice: None }
    }

    /// An event about a session (signing out, ending one from another).
    pub(crate) fn session(verb: Verb, session: &impl ToString) -> Self {
        Self {
            access: Access::new(Module::Identity, ObjectKind::Session, verb),
            object_id: session.to_string(),
            patient: None,
            practice: None,
        }
    }

    /// The same access, about the object the use case made or listed (a new document's id; the
    /// ids a listing showed) rather than the object the grant was for.
    pub(crate) fn about(self, object_id: &impl ToString) -> Self {
        Self { object_id: object_id.to_string(), ..self }
    }
}

/// How an access ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Allowed (and done).
    Allowed,
    /// Refused: the object exists but is not the caller's to reach.
    Denied,
    /// Refused: there is no such object.
    NotFound,
}

impl Outcome {
    const fn code(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::NotFound => "not_found",
        }
    }
}

type Batch = (Vec<AuditEvent>, oneshot::Sender<Result<(), String>>);

/// The group-commit writer's front door.
#[derive(Debug, Clone)]
pub(crate) struct Auditor {
    tx: mpsc::Sender<Batch>,
}

/// Events committed per transaction at most.
const MAX_BATCH: usize = 5000;
/// Events sequenced per transaction at most.
const SEQUENCE_BATCH: i64 = 5000;

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

fn role_of(p: &Principal) -> (Option<String>, String, Option<String>, Option<String>) {
    match p {
        Principal::Anonymous => (None, "anonymous".into(), None, None),
        Principal::Patient { account, session, .. } => {
            (Some(account.to_string()), "patient".into(), None, Some(session.to_string()))
        }
        Principal::Staff { account, session, practice, role } => (
            Some(account.to_string()),
            format!("staff:{}", role.as_str()),
            Some(practice.to_string()),
            Some(session.to_string()),
        ),
        Principal::Operator { account, session } => {
            (Some(account.to_string()), "operator".into(), None, Some(session.to_string()))
        }
        // An organisation's system: the client is the actor, its organisation the role.
        Principal::Client { client, org_id, practice } => {
            (Some(client.to_string()), format!("client:{org_id}"), practice.map(|p| p.to_string()), None)
        }
    }
}

impl App {
    pub(crate) fn event(&self, caller: &Caller, t: &Target, outcome: Outcome) -> AuditEvent {
        let (actor_account, mut actor_role, actor_practice, session) = role_of(&caller.principal);
        if caller.ip.is_none() {
            actor_role = if actor_account.is_some() { format!("console:{actor_role}") } else { "console".into() };
        }
        let at_ms = self.clock.now_ms();
        // Time-ordered (UUIDv7) ids: the log's primary key grows at its end instead of taking
        // random pages, which nearly doubles append throughput on SQLite. Still unguessable.
        let secs = u64::try_from(at_ms.div_euclid(1000)).unwrap_or(0);
        let nanos = u32::try_from(at_ms.rem_euclid(1000) * 1_000_000).unwrap_or(0);
        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, nanos));
        AuditEvent {
            id: id.to_string(),
            at_ms,
            actor_account,
            actor_role,
            actor_practice,
            session,
            ip: caller.ip.map_or_else(|| "console".to_owned(), |ip| ip.to_string()),
            user_agent: caller.user_agent.clone(),
            on_behalf: None,
            action: t.access.verb.code().to_owned(),
            object_type: t.access.object.code().to_owned(),
            object_id: t.object_id.clone(),
            patient: t.patient.map(|p| p.to_string()),
            practice: t.practice.map(|p| p.to_string()),
            outcome: outcome.code().to_owned(),
            request_id: caller.request_id.clone(),
            module: t.access.module.code().to_owned(),
            format: audit::event::FORMAT_V2,
        }
    }

    /// Writes events through the group-commit writer and returns once they are durable. Use
    /// cases call this before serving what the events describe.
    ///
    /// # Errors
    /// [`AppError::Internal`] when the events could not be written.
    pub(crate) async fn audit(&self, events: Vec<AuditEvent>) -> Result<(), AppError> {
        self.auditor.record(events).await
    }

    /// Asks the policy for `A` on `object` and records the answer — allowed, denied or not
    /// found — derived from the grant or the refusal, before anything is done with it. If the
    /// event cannot be written, the grant is not returned.
    pub(crate) async fn authorize<A: Policy>(&self, caller: &Caller, object: A::Object) -> Result<Grant<A>, AppError> {
        let grant = self.decide::<A>(caller, object).await?;
        self.audit(vec![self.event(caller, &Target::of(&grant), Outcome::Allowed)]).await?;
        Ok(grant)
    }

    /// Asks the policy for `A` on `object`, recording a refusal at once; the use case records
    /// the allowed event itself ([`Target::of`] the grant), in the same write as what it did:
    /// the document it created, the documents a listing showed, the key a read unwrapped.
    pub(crate) async fn decide<A: Policy>(&self, caller: &Caller, object: A::Object) -> Result<Grant<A>, AppError> {
        match authz::authorize::<A, _>(&caller.principal, object, &*self.store).await {
            Ok(grant) => Ok(grant),
            Err(authz::Denied::NotFound) => {
                // Tell "not yours" from "no such thing" in the log (never in the answer), and
                // file a refusal under the patient it was about, for their history.
                let at = object.locate(&*self.store).await.map_err(|e| AppError::Internal(e.to_string()))?;
                let target = Target {
                    access: A::ACCESS,
                    object_id: object.to_string(),
                    patient: at.patient,
                    practice: at.practice,
                };
                let outcome = if at.exists { Outcome::Denied } else { Outcome::NotFound };
                self.audit(vec![self.event(caller, &target, outcome)]).await?;
                Err(AppError::NotFound)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records that `A` was refused for an object that could not even be named (a push for an
    /// NHI no patient has): not found, about no patient.
    pub(crate) async fn refuse_unknown<A: Policy>(&self, caller: &Caller, object_id: &str) -> AppError {
        let target = Target { access: A::ACCESS, object_id: object_id.to_owned(), patient: None, practice: None };
        match self.audit(vec![self.event(caller, &target, Outcome::NotFound)]).await {
            Ok(()) => AppError::NotFound,
            Err(e) => e,
        }
    }

    /// Sequences waiting events and, when due, signs a checkpoint — if this node holds the
    /// sequencer lease.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn audit_tick(&self, force_checkpoint: bool) -> Result<Tick, AppError> {
        let now = self.clock.now();
        if !self.store.take_lease("audit-sequencer", &self.node_id, now, now + 30).await? {
            return Ok(Tick { size: self.store.audit_tree_size().await?, checkpoint: None, leader: false });
        }
        let (mut size, mut root) = self.store.sequence_audit(SEQUENCE_BATCH).await?;
        loop {
            let (s, r) = self.store.sequence_audit(SEQUENCE_BATCH).await?;
            if s == size {
                break;
            }
            (size, root) = (s, r);
        }
        let mut checkpoint = None;
        if let Some(signer) = &self.audit_settings.signer {
            let latest = self.store.latest_checkpoint().await?;
            let due = match &latest {
                None => size > 0 || force_checkpoint,
                Some(c) => {
                    size > c.size
                        && (force_checkpoint || now - c.created_at >= self.audit_settings.checkpoint_every_secs)
                }
            };
            if due {
                let body = note::checkpoint_body(&self.audit_settings.origin, size, &root);
                let row = CheckpointRow { size, root: root.to_vec(), note: signer.sign(&body), created_at: now };
                self.store.add_checkpoint(&row).await?;
                metrics::gauge!("tiaki_audit_tree_size").set(u32::try_from(size).map_or(f64::MAX, f64::from));
                tracing::info!(size, "audit checkpoint signed");
                checkpoint = Some(size);
            }
        }
        Ok(Tick { size, checkpoint, leader: true })
    }

    /// Runs the audit jobs every second until `shutdown` is notified.
    pub async fn run_audit_jobs(self: Arc<Self>, shutdown: Arc<Notify>) {
        let mut ticks: u64 = 0;
        loop {
            if let Err(e) = self.audit_tick(false).await {
                tracing::error!(error = %e, "audit sequencing failed; will retry");
            }
            // Retention, hourly (and at start).
            if ticks.is_multiple_of(3_600)
                && let Err(e) = self.console().prune_audit().await
            {
                tracing::error!(error = %e, "removing access-log events past their retention failed; will retry");
            }
            ticks = ticks.wrapping_add(1);
            tokio::select! {
                () = shutdown.notified() => break,
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    }

    /// The latest signed checkpoint note.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn latest_checkpoint(&self) -> Result<Option<String>, AppError> {
        Ok(self.store.latest_checkpoint().await?.map(|c| c.note))
    }

    /// The log's public verifier key.
    #[must_use]
    pub fn audit_vkey(&self) -> Option<String> {
        self.audit_settings.signer.as_ref().map(|s| s.vkey())
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
        if size == 0 || size > self.store.audit_tree_size().await? {
            return Err(AppError::field("size", "the tree size must be between 1 and the current size"));
        }
        Ok(())
    }

    /// An inclusion proof for leaf `index` in the tree of `size` leaves.
    ///
    /// # Errors
    /// [`AppError::Invalid`] for sizes the log does not have.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<ProofView, AppError> {
        self.check_size(size).await?;
        if index >= size {
            return Err(AppError::field("index", "the leaf index must be below the tree size"));
        }
        let mut nodes = self
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
    /// [`AppError::Invalid`] for sizes the log does not have.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<ProofView, AppError> {
        self.check_size(new).await?;
        if old == 0 || old > new {
            return Err(AppError::field("old", "the old size must be between 1 and the new size"));
        }
        let mut nodes = self
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
        let ours = self.store.checkpoint_at(cp.size).await?;
        let Some(ours) = ours.filter(|c| Note::parse(&c.note).is_ok_and(|n| n.body == note.body)) else {
            return Err(bad("this is not one of this log's checkpoints"));
        };
        let mut stored = 0;
        for sig in &note.signatures {
            for w in self.audit_settings.witnesses.iter().filter(|w| w.is_cosigner()) {
                if let Some(ts) = w.verify(&note.body, sig) {
                    let line = format!("\u{2014} {} {}\n", sig.name, B64.encode(&sig.bytes));
                    let row = CosignatureRow {
                        checkpoint_size: ours.size,
                        witness: w.name.clone(),
                        signature_line: line,
                        signed_at: i64::try_from(ts).unwrap_or(i64::MAX),
                    };
                    self.store.add_cosignature(&row, self.clock.now()).await?;
                    stored += 1;
                }
            }
        }
        if stored == 0 {
            return Err(bad("no valid cosignature from a configured witness"));
        }
        Ok(stored)
    }

    /// Recomputes the whole log from the stored events and checks every checkpoint's root,
    /// size and signature (against `pinned_key` if given, else this node's own key), and every
    /// stored cosignature; with `require_witness`, the newest checkpoint must carry a valid
    /// witness cosignature. `progress` is told (done, total).
    ///
    /// # Errors
    /// When storage fails (a tampered log is a report with problems, not an error).
    pub async fn verify_audit(
        &self,
        pinned_key: Option<&str>,
        require_witness: bool,
        progress: impl FnMut(u64, u64),
    ) -> Result<VerifyReport, AppError> {
        let mut report = VerifyReport::default();
        let total = self.store.audit_tree_size().await?;
        let checkpoints = self.store.checkpoints().await?;
        report.checkpoints = checkpoints.len();
        let log_key = match pinned_key {
            // A key kept away from this server is the real trust anchor: someone holding the
            // data folder could re-sign a rewritten log with the key stored there.
            Some(k) => Some(Verifier::parse(k).map_err(|e| AppError::field("log_key", e.to_string()))?),
            None => self.audit_vkey().and_then(|v| Verifier::parse(&v).ok()),
        };
        let expected = self.check_checkpoints(&checkpoints, total, log_key.as_ref(), &mut report);
        self.check_events(&expected, total, &mut report, progress).await?;
        self.check_cosignatures(&checkpoints, require_witness, &mut report).await?;
        let waiting = self.store.unsequenced_audit_count().await?;
        if waiting > 0 {
            report.unsequenced_note =
                Some(format!("{waiting} recent events are waiting to be sequenced (normal while the server runs)"));
        }
        Ok(report)
    }

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
        report: &mut VerifyReport,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<(), AppError> {
        let mut acc = self.retained_start(expected, report).await?;
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
        report: &mut VerifyReport,
    ) -> Result<merkle::Accumulator, AppError> {
        let Some((below, cutoff_ms)) = self.store.audit_pruned().await? else {
            return Ok(merkle::Accumulator::new());
        };
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

impl From<std::convert::Infallible> for AppError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

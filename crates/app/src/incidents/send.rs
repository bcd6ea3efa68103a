//! Sending a campaign: claim a batch under a lease; per notice, write it over SMTP, record it
//! as going out, tell the server to deliver it, note it in this sender's journal, read the answer.
//! A stopped sender's claims lapse and are picked up; what it left "sending" is settled from its
//! journal by the next sender on this node. `serve` runs this for every released campaign;
//! `tiaki incident notify` runs it with progress and an ETA.

use super::Incidents;
use super::campaign::{BATCH, Campaign};
use super::smtp::{NotDelivered, Refused, Smtp};
use crate::AppError;
use store::incidents::CampaignRow;

/// Where notices go.
#[derive(Debug, Clone)]
pub enum Sender {
    /// A plain SMTP relay (`host:port`).
    Smtp(String),
    /// `.eml` files in this folder (the embedded default with no mail server).
    Folder(std::path::PathBuf),
}

impl Sender {
    /// The sender for an `smtp://host:port` URL (no credentials, no TLS: a relay on the
    /// server's own network), or the mail folder when there is none.
    ///
    /// # Errors
    /// For a URL the campaign sender cannot use, saying what to set.
    pub fn from_config(config: &crate::Config) -> Result<Self, String> {
        use secrecy::ExposeSecret;
        let Some(url) = &config.smtp_url else { return Ok(Self::Folder(config.data_dir.join("mail"))) };
        let url = url.expose_secret();
        let rest = url.strip_prefix("smtp://").filter(|r| !r.contains('@') && !r.contains('?')).ok_or_else(|| {
            "notice campaigns speak plain SMTP to a relay on the server's own network (such as a local Postfix), so \
             that each delivery is recorded exactly once: pass --smtp host:port, or set TIAKI_SMTP_URL to \
             smtp://host:port with no credentials"
                .to_owned()
        })?;
        let rest = rest.trim_end_matches('/');
        Ok(Self::Smtp(if rest.contains(':') { rest.to_owned() } else { format!("{rest}:25") }))
    }
}

/// What a run of the sender did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Accepted by the server.
    pub sent: usize,
    /// Refused for good.
    pub failed: usize,
    /// Put back to try again (the server asked to, or the connection failed before the end).
    pub retry: usize,
}

impl Incidents<'_> {
    /// Sends a campaign's released notices until none is left, at its rate, reporting progress
    /// after each batch. Safe to run on several nodes at once, and to kill at any point.
    ///
    /// # Errors
    /// When storage fails, or the mail server cannot be reached at all.
    pub async fn send_campaign(
        &self,
        campaign: &str,
        to: &Sender,
        from: &str,
        progress: impl FnMut(&Campaign),
    ) -> Result<SendReport, AppError> {
        self.send_campaign_journalled(campaign, to, from, None, progress).await
    }

    /// As [`Incidents::send_campaign`], keeping a journal in `journal` (a folder on this node):
    /// a line for each notice the moment the server was told to deliver it. A sender stopped
    /// between recording a notice as going out and telling the server leaves it "sending";
    /// the next sender on this node reads the stopped sender's journal and sends again only
    /// the notices whose line is missing (the server never got them), once their claim lapsed.
    ///
    /// # Errors
    /// As [`Incidents::send_campaign`]; and when the journal cannot be written.
    pub async fn send_campaign_journalled(
        &self,
        campaign: &str,
        to: &Sender,
        from: &str,
        journal: Option<&std::path::Path>,
        mut progress: impl FnMut(&Campaign),
    ) -> Result<SendReport, AppError> {
        let holder = uuid::Uuid::new_v4().to_string();
        let journal_dir = journal;
        let mut journal = match journal_dir {
            Some(dir) => Some(self.open_journal(dir, &holder).await?),
            None => None,
        };
        let mut report = SendReport::default();
        let mut conn: Option<Smtp> = None;
        let hello = from.rsplit_once('@').map_or("tiaki.local", |(_, d)| d.trim_end_matches('>')).to_owned();
        let mut minute = (std::time::Instant::now(), 0_i64);
        let mut failures = 0;
        // The campaign's rate and progress, read again every few seconds (counting a large
        // campaign's notices is not free).
        let Some(mut row) = self.app.store.campaign(campaign).await? else { return Err(AppError::NotFound) };
        let mut read_at = std::time::Instant::now();
        loop {
            if read_at.elapsed() >= std::time::Duration::from_secs(2) {
                row = self.app.store.campaign(campaign).await?.ok_or(AppError::NotFound)?;
                read_at = std::time::Instant::now();
                progress(&row.clone().into());
            }
            let now = self.app.now();
            // A claim outlives its batch at the campaign's rate, with room to spare; a sender
            // killed mid-batch leaves claims that lapse this long after.
            let batch = BATCH.min(row.per_minute);
            let lease = 10 + batch * 60 / row.per_minute.max(1);
            let claimed = self.app.store.claim_notices(campaign, &holder, now, now + lease, batch).await?;
            if claimed.is_empty() {
                match self.idle(campaign, journal_dir, &holder, &mut progress).await? {
                    Some(now_row) => {
                        row = now_row;
                        continue;
                    }
                    None => return Ok(report),
                }
            }
            let retries_before = report.retry;
            let batch_len = claimed.len();
            // The one before, settled in the same commit as the next one's start.
            let mut previous: Option<(String, &'static str, Option<String>)> = None;
            for n in claimed {
                throttle(&mut minute, row.per_minute).await;
                let message = match Self::message(from, &n.recipient, &n.subject, &n.body, &n.id) {
                    Ok(m) => m,
                    // An address the mail library cannot write to: this notice is refused (listed
                    // for the practice), and the others go on.
                    Err(e) => {
                        tracing::warn!(notice = %n.id, "a notice could not be written: {e}");
                        self.flush(&mut previous).await?;
                        self.app
                            .store
                            .settle_notice(&n.id, "failed", Some("not an address mail can be sent to"), now)
                            .await?;
                        report.failed += 1;
                        continue;
                    }
                };
                let outcome = match to {
                    Sender::Folder(dir) => {
                        if self.settle_previous(&n.id, &holder, &mut previous).await? {
                            write_eml(dir, &n.id, &message).await.map_err(|e| AppError::Internal(e.to_string()))?;
                            journalled(journal.as_mut(), &n.id)
                                .map_err(|e| AppError::Internal(format!("campaign journal: {e}")))?;
                            Ok(("sent", None))
                        } else {
                            Err(false)
                        }
                    }
                    Sender::Smtp(addr) => {
                        if conn.is_none() {
                            match Smtp::connect(addr, &hello).await {
                                Ok(c) => conn = Some(c),
                                Err(e) => {
                                    failures += 1;
                                    self.unreachable(&n.id, (addr, e, failures), &mut previous).await?;
                                    continue;
                                }
                            }
                        }
                        let Some(c) = conn.as_mut() else { continue };
                        match self.over_smtp(c, from, &n, &message, (&holder, journal.as_mut()), &mut previous).await {
                            Ok(outcome) => outcome,
                            Err(stop) => {
                                // Closing the reset connection throws the held `.` away: the
                                // server never delivers this one, so it goes back to the queue.
                                drop(conn.take());
                                let why = Some("its sender could not write its journal");
                                self.app.store.settle_notice(&n.id, "queued", why, now).await?;
                                return Err(stop);
                            }
                        }
                    }
                };
                if matches!(outcome, Ok(("sent", _))) {
                    failures = 0;
                }
                if record(outcome, &n.id, &mut report, &mut previous) {
                    // The connection broke: a fresh one for the next notice.
                    conn = None;
                }
            }
            self.flush(&mut previous).await?;
            if report.retry - retries_before == batch_len {
                // The server asked to try later for the whole batch: give it a moment.
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    }

    /// Nothing to claim: settles what stopped senders left, reports progress, and says whether
    /// to go on (the campaign as it is now) or stop (none: the released part has all gone).
    async fn idle(
        &self,
        campaign: &str,
        journal: Option<&std::path::Path>,
        holder: &str,
        progress: &mut impl FnMut(&Campaign),
    ) -> Result<Option<CampaignRow>, AppError> {
        let unresolved = match journal {
            Some(dir) => self.resolve(campaign, dir, holder).await?,
            None => false,
        };
        let row = self.app.store.campaign(campaign).await?.ok_or(AppError::NotFound)?;
        let c = Campaign::from(row.clone());
        progress(&c);
        if c.eta_secs.is_none() && !unresolved {
            return Ok(None);
        }
        // Released notices another sender holds (or held, before it was stopped): wait for them
        // to go, or for their claims to lapse.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        Ok(Some(row))
    }

    /// The mail server could not be reached for notice `id`: it goes back to the queue; after
    /// five failures in a row this sender stops, otherwise it waits a moment.
    async fn unreachable(
        &self,
        id: &str,
        (addr, e, failures): (&str, Refused, u32),
        previous: &mut Option<(String, &'static str, Option<String>)>,
    ) -> Result<(), AppError> {
        self.flush(previous).await?;
        self.app.store.settle_notice(id, "queued", Some("mail server unreachable"), self.app.now()).await?;
        if failures >= 5 {
            return Err(AppError::Unavailable(format!(
                "the mail server at {addr} cannot be reached ({e:?}); notices not yet sent stay queued: run this \
                 again when it is back"
            )));
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        Ok(())
    }

    async fn flush(&self, previous: &mut Option<(String, &'static str, Option<String>)>) -> Result<(), AppError> {
        if let Some((id, state, error)) = previous.take() {
            self.app.store.settle_notice(&id, state, error.as_deref(), self.app.now()).await?;
        }
        Ok(())
    }

    /// Records `id` as going out, settling the notice before it in the same commit.
    async fn settle_previous(
        &self,
        id: &str,
        holder: &str,
        previous: &mut Option<(String, &'static str, Option<String>)>,
    ) -> Result<bool, AppError> {
        let prev = previous.take();
        Ok(self
            .app
            .store
            .notice_sending(id, holder, self.app.now(), prev.as_ref().map(|(p, s, e)| (p.as_str(), *s, e.as_deref())))
            .await?)
    }

    /// One notice over SMTP: `Ok((state, error))` once settled or to settle; `Err(counted)` when
    /// the connection broke (the notice was put back, or stays unconfirmed); an error when the
    /// journal could not be written (the connection is reset and this sender must stop).
    async fn over_smtp(
        &self,
        c: &mut Smtp,
        from: &str,
        n: &store::incidents::ClaimedNotice,
        message: &[u8],
        (holder, journal): (&str, Option<&mut std::fs::File>),
        previous: &mut Option<(String, &'static str, Option<String>)>,
    ) -> Result<Result<(&'static str, Option<String>), bool>, AppError> {
        let now = self.app.now();
        let from_addr = from.rsplit_once('<').map_or(from, |(_, a)| a.trim_end_matches('>'));
        match c.write_message(from_addr, &n.recipient, message).await {
            Ok(()) => {}
            Err(Refused::Server(r)) => {
                if self.flush(previous).await.is_err() || c.reset().await.is_err() {
                    let _ = self.app.store.settle_notice(&n.id, "queued", Some("connection reset"), now).await;
                    return Ok(Err(true));
                }
                let state = if r.permanent() { "failed" } else { "queued" };
                return Ok(Ok((state, Some(format!("{} {}", r.code, r.text)))));
            }
            Err(Refused::Io(e)) => {
                let _ = self.flush(previous).await;
                let _ = self.app.store.settle_notice(&n.id, "queued", Some(&e.to_string()), now).await;
                return Ok(Err(true));
            }
        }
        // The commit point: from here on this notice is never sent again.
        match self.settle_previous(&n.id, holder, previous).await {
            Ok(true) => {}
            // The claim was lost (another sender took it over): this connection's message must
            // not be delivered, so the connection is dropped before its last step.
            Ok(false) | Err(_) => return Ok(Err(false)),
        }
        // Told to deliver, and written down with no moment between (see `Smtp::deliver`).
        match c.deliver(|| journalled(journal, &n.id)).await {
            Ok(()) => {}
            Err(NotDelivered::Connection(e)) => {
                tracing::warn!(notice = %n.id, "the connection failed at the last step ({e}): listed as not confirmed");
                return Ok(Err(false));
            }
            Err(NotDelivered::Note(e)) => {
                return Err(AppError::Unavailable(format!(
                    "the campaign journal could not be written ({e}): this sender stopped, and the notices not yet \
                     sent stay queued; make room in the data folder and run this again"
                )));
            }
        }
        Ok(match c.answer().await {
            Ok(r) if r.ok() => Ok(("sent", None)),
            Ok(r) if r.permanent() => Ok(("failed", Some(format!("{} {}", r.code, r.text)))),
            Ok(r) => Ok(("queued", Some(format!("{} {}", r.code, r.text)))),
            // No answer: it stays "sending" (unconfirmed), listed, never sent again.
            Err(_) => Err(false),
        })
    }

    fn message(from: &str, to: &str, subject: &str, body: &str, id: &str) -> Result<Vec<u8>, AppError> {
        let bad = |e: &dyn std::fmt::Display| AppError::Internal(format!("notice {id}: {e}"));
        let from: lettre::message::Mailbox = from.parse().map_err(|e| bad(&e))?;
        let to: lettre::message::Mailbox = to.parse().map_err(|e| bad(&e))?;
        let host = from.email.domain().to_owned();
        let m = lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{id}@{host}>")))
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| bad(&e))?;
        Ok(m.formatted())
    }
}

impl crate::App {
    /// Sends every campaign's released notices, on every node (each notice goes once, whoever
    /// claims it), until `shutdown`; woken when a campaign is started or released, and every
    /// few seconds.
    pub async fn run_campaigns(
        self: std::sync::Arc<Self>,
        to: Result<Sender, String>,
        from: String,
        journal: std::path::PathBuf,
        shutdown: std::sync::Arc<tokio::sync::Notify>,
    ) {
        let mut told = false;
        loop {
            if let Err(e) = self.send_released(&to, &from, &journal, &mut told).await {
                tracing::error!(error = %e, "incident campaigns: sending failed; trying again shortly");
            }
            tokio::select! {
                () = shutdown.notified() => return,
                () = self.jobs_waker.notified() => {}
                () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            }
        }
    }

    async fn send_released(
        &self,
        to: &Result<Sender, String>,
        from: &str,
        journal: &std::path::Path,
        told: &mut bool,
    ) -> Result<(), AppError> {
        let incidents = self.incidents();
        for incident in self.store.incidents(&authz::console::view_incidents()).await? {
            for c in self.store.campaigns(&incident.id).await?.into_iter().map(Campaign::from) {
                if c.eta_secs.is_none() {
                    continue;
                }
                match to {
                    Ok(sender) => {
                        let r = incidents.send_campaign_journalled(&c.id, sender, from, Some(journal), |_| {}).await?;
                        tracing::info!(campaign = %c.id, sent = r.sent, failed = r.failed, "incident campaign sent");
                    }
                    Err(why) if !*told => {
                        tracing::error!(campaign = %c.id, "incident campaign waiting: {why}");
                        *told = true;
                    }
                    Err(_) => {}
                }
            }
        }
        Ok(())
    }
}

/// What one notice's outcome adds to the report, and how it is settled (with the next one's
/// start); whether the connection broke.
fn record(
    outcome: Result<(&'static str, Option<String>), bool>,
    id: &str,
    report: &mut SendReport,
    previous: &mut Option<(String, &'static str, Option<String>)>,
) -> bool {
    match outcome {
        Ok(("sent", _)) => {
            report.sent += 1;
            *previous = Some((id.to_owned(), "sent", None));
            false
        }
        Ok(("failed", e)) => {
            report.failed += 1;
            *previous = Some((id.to_owned(), "failed", e));
            false
        }
        Ok((_, e)) => {
            report.retry += 1;
            *previous = Some((id.to_owned(), "queued", e));
            false
        }
        Err(counted) => {
            if counted {
                report.retry += 1;
            }
            true
        }
    }
}

/// The rate: at most `per_minute` in any minute (`minute`: when this minute began, and how many
/// went in it).
async fn throttle(minute: &mut (std::time::Instant, i64), per_minute: i64) {
    if minute.1 >= per_minute {
        tokio::time::sleep(std::time::Duration::from_mins(1).saturating_sub(minute.0.elapsed())).await;
    }
    if minute.0.elapsed() >= std::time::Duration::from_mins(1) {
        *minute = (std::time::Instant::now(), 0);
    }
    minute.1 += 1;
}

/// Notes in the journal that a notice was handed to the server.
fn journalled(journal: Option<&mut std::fs::File>, id: &str) -> std::io::Result<()> {
    use std::io::Write;
    match journal {
        Some(f) => f.write_all(format!("{id}\n").as_bytes()),
        None => Ok(()),
    }
}

impl Incidents<'_> {
    /// Settles what stopped senders of this node left "sending", by their journals: a notice
    /// in its sender's journal was handed to the server (sent); one missing never reached it
    /// (queued again). Only once its claim lapsed (a live sender's is not touched). Whether any
    /// such notice is still waiting for its claim to lapse.
    async fn resolve(&self, campaign: &str, dir: &std::path::Path, me: &str) -> Result<bool, AppError> {
        let now = self.app.now();
        let mut waiting = false;
        for (id, stopped, lease_until) in self.app.store.in_doubt(campaign).await? {
            if stopped == me || stopped.is_empty() || stopped.contains(['/', '.']) {
                continue;
            }
            // Another node's sender (no journal here): it stays "not confirmed", never resent.
            let Ok(text) = tokio::fs::read_to_string(dir.join(format!("{stopped}.log"))).await else { continue };
            if lease_until > now {
                waiting = true;
                continue;
            }
            let delivered = text.lines().any(|l| l == id);
            let (state, why) = if delivered {
                ("sent", None)
            } else {
                ("queued", Some("its sender stopped before the server was told"))
            };
            self.app.store.settle_notice(&id, state, why, now).await?;
        }
        Ok(waiting)
    }

    /// Opens this sender's journal (one line per notice handed to the server).
    async fn open_journal(&self, dir: &std::path::Path, holder: &str) -> Result<std::fs::File, AppError> {
        let io = |e: std::io::Error| AppError::Internal(format!("campaign journal {}: {e}", dir.display()));
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{holder}.log"))).map_err(io)
    }
}

async fn write_eml(dir: &std::path::Path, id: &str, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let tmp = dir.join(format!(".{id}.tmp"));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, dir.join(format!("{id}.eml"))).await
}

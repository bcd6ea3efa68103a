//! Notification campaigns: from an incident's latest revision, one notice to each person it
//! affects who has not been told, and one correction to each person told something the
//! revision no longer says. A campaign is released in stages (a percentage) and sent at most
//! so many a minute; its notices are claimed, written, recorded as going out and only then
//! delivered (`smtp.rs`), so after a crash at any point nobody is sent a notice twice and
//! nobody is missed. Refusals are kept and listed for the practice to reach people otherwise.

use super::smtp::{Refused, Smtp};
use super::{Incidents, Lead, describe, nz_date};
use crate::AppError;
use domain::incidents::{Class, NoticeFacts, new_reference};
use domain::{ObjectKind, Verb};
use std::collections::BTreeMap;
use store::incidents::{CampaignRow, NewCampaign, NewNotice};

/// A campaign and how far it has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    /// Its id.
    pub id: String,
    /// The revision its notices say.
    pub revision: i64,
    /// When started.
    pub created_at: i64,
    /// At most this many a minute.
    pub per_minute: i64,
    /// Released so far (percent).
    pub released_percent: i64,
    /// Notices in it.
    pub total: i64,
    /// Not yet sent.
    pub waiting: i64,
    /// Begun when a sender stopped, not answered by the server: not sent again.
    pub unconfirmed: i64,
    /// Accepted by the mail server.
    pub sent: i64,
    /// Refused by the mail server: the practice reaches these people another way.
    pub failed: i64,
    /// Taken out by a later campaign before they went.
    pub cancelled: i64,
    /// Seconds until the released part is sent, at the rate allowed and seen.
    pub eta_secs: Option<i64>,
}

impl From<CampaignRow> for Campaign {
    fn from(r: CampaignRow) -> Self {
        let released = (r.total * r.released_percent + 99) / 100;
        let left = (released - (r.total - r.waiting)).max(0);
        let allowed = left * 60 / r.per_minute.max(1);
        let seen = match (r.first_sent_at, r.last_sent_at) {
            (Some(a), Some(b)) if b > a && r.sent > 0 => Some(left * (b - a) / r.sent),
            _ => None,
        };
        Self {
            id: r.id,
            revision: r.revision,
            created_at: r.created_at,
            per_minute: r.per_minute,
            released_percent: r.released_percent,
            total: r.total,
            waiting: r.waiting,
            unconfirmed: r.unconfirmed,
            sent: r.sent,
            failed: r.failed,
            cancelled: r.cancelled,
            eta_secs: (left > 0).then(|| allowed.max(seen.unwrap_or(0))),
        }
    }
}

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

/// Someone a campaign writes to: (patient, their class now, what they were told and when).
type Wanted = (String, Class, Option<(Class, i64)>);

/// Notices claimed at once.
const BATCH: i64 = 50;

fn sha256(text: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref().to_vec()
}

/// The hash of a reference code, as kept (the code itself is only in the notice).
pub(crate) fn code_hash(code: &str) -> Vec<u8> {
    sha256(&format!("tiaki-reference:{code}"))
}

impl Incidents<'_> {
    /// An incident's campaigns with their progress.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn campaigns(&self, _lead: &Lead, id: &str) -> Result<Vec<Campaign>, AppError> {
        Ok(self.app.store.campaigns(id).await?.into_iter().map(Campaign::from).collect())
    }

    /// Notices the mail server refused, or that a sender began and never heard back about:
    /// (recipient, state, the server's answer), for the practice to reach these people by
    /// phone or post.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn refused(&self, _lead: &Lead, id: &str) -> Result<Vec<(String, String, String)>, AppError> {
        Ok(self
            .app
            .store
            .incident_notices(id)
            .await?
            .into_iter()
            .filter(|n| matches!(n.state.as_str(), "failed" | "sending"))
            .map(|n| {
                let state = if n.state == "failed" { "refused" } else { "not confirmed" };
                (n.recipient, state.to_owned(), n.error.unwrap_or_default())
            })
            .collect())
    }

    /// Starts a campaign from the latest revision: a notice to each affected person not yet
    /// told, a correction to each person told something this revision no longer says.
    ///
    /// # Errors
    /// [`AppError::Conflict`] before the Commissioner was told, without the steps taken or a
    /// support phone, or when there is nobody to tell; [`AppError::Invalid`] for a bad stage
    /// or rate.
    pub async fn start_campaign(
        &self,
        lead: &Lead,
        id: &str,
        percent: i64,
        per_minute: i64,
    ) -> Result<Campaign, AppError> {
        let incident = self.row(id).await?;
        if !(1..=100).contains(&percent) {
            return Err(AppError::field("percent", "Release between 1 and 100 per cent of the notices."));
        }
        if !(1..=100_000).contains(&per_minute) {
            return Err(AppError::field("per_minute", "Send between 1 and 100,000 notices a minute."));
        }
        let Some(told_at) = incident.commissioner_told_at else {
            return Err(AppError::Conflict(
                "Record when the Office of the Privacy Commissioner was told first: every notice says so (Privacy Act \
                 s 117)."
                    .into(),
            ));
        };
        if incident.steps_taken.trim().is_empty() {
            return Err(AppError::Conflict("Say what is being done about it first: every notice says so.".into()));
        }
        let Some(phone) = self.app.alert_settings().support_phone else {
            return Err(AppError::Conflict(
                "Set the support phone number notices give (TIAKI_SUPPORT_PHONE) and restart, then start the campaign."
                    .into(),
            ));
        };
        let revision = self.latest(id).await?;
        let (wanted, cancel) = self.plan(id, revision.number).await?;
        if wanted.is_empty() {
            return Err(AppError::Conflict(format!(
                "Everyone revision {} affects has been told (or their notice is on its way), and nobody's status \
                 has changed: there is nobody to write to.",
                revision.number
            )));
        }
        let notices = self.write_notices(&incident, revision.number, wanted, told_at, phone).await?;
        let campaign = NewCampaign {
            id: uuid::Uuid::now_v7().to_string(),
            incident_id: id.to_owned(),
            revision: revision.number,
            created_at: self.app.now(),
            created_by: lead.by.clone(),
            per_minute,
            released_percent: percent,
        };
        self.app.store.create_campaign(&lead.grant, &campaign, &notices, &cancel).await?;
        self.event(lead, ObjectKind::IncidentCampaign, Verb::Create, &campaign.id).await?;
        let corrections = notices.iter().filter(|n| n.kind == "correction").count();
        self.note(
            lead,
            id,
            "campaign",
            &campaign.id,
            notices.len(),
            &format!(
                "revision {}: {} notices, {corrections} corrections; {percent}% released, {per_minute} a minute",
                revision.number,
                notices.len() - corrections
            ),
        )
        .await;
        self.app.jobs_waker.notify_waiters();
        self.campaigns(lead, id)
            .await?
            .into_iter()
            .find(|c| c.id == campaign.id)
            .ok_or_else(|| AppError::Internal("the campaign just made was not found".into()))
    }

    /// Each notice's text, addressed and with its own reference code, in the campaign's order.
    async fn write_notices(
        &self,
        incident: &store::incidents::IncidentRow,
        revision: i64,
        wanted: Vec<Wanted>,
        told_at: i64,
        phone: String,
    ) -> Result<Vec<NewNotice>, AppError> {
        let ids: Vec<String> = wanted.iter().map(|(p, _, _)| p.clone()).collect();
        let contacts: BTreeMap<String, store::incidents::Contact> =
            self.app.store.contacts(&ids).await?.into_iter().map(|c| (c.patient_id.clone(), c)).collect();
        let mut items: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for o in self.app.store.scope_objects(&incident.id, revision, None).await? {
            if o.class == "confirmed" {
                items.entry(o.patient_id.clone()).or_default().push(describe(&o));
            }
        }
        let base = NoticeFacts {
            what_happened: incident.description.clone(),
            discovered_on: nz_date(incident.discovered_at),
            steps_taken: incident.steps_taken.clone(),
            commissioner_told: format!("on {}", nz_date(told_at)),
            support_phone: phone,
            ..NoticeFacts::default()
        };
        let mut notices = Vec::with_capacity(wanted.len());
        for (patient, class, was) in wanted {
            let Some(contact) = contacts.get(&patient) else { continue };
            let reference = new_reference();
            let facts = NoticeFacts {
                name: contact.name.clone(),
                class: Some(class),
                items: items.remove(&patient).unwrap_or_default(),
                reference: reference.clone(),
                ..base.clone()
            };
            let (subject, body, kind) = match was {
                None => {
                    let (s, b) = domain::incidents::notice(&facts);
                    (s, b, "notice")
                }
                Some((was, at)) => {
                    let (s, b) = domain::incidents::correction(&facts, &nz_date(at), was);
                    (s, b, "correction")
                }
            };
            notices.push(NewNotice {
                id: uuid::Uuid::new_v4().to_string(),
                patient_id: patient,
                class: class.as_str().to_owned(),
                kind: kind.to_owned(),
                position: 0,
                code_hash: code_hash(&reference),
                recipient: contact.email.clone(),
                subject,
                body,
            });
        }
        // The order notices go in, which staging follows: random (by their random ids), so the
        // first half is not one practice's patients.
        notices.sort_by(|a, b| a.id.cmp(&b.id));
        for (i, n) in notices.iter_mut().enumerate() {
            n.position = i64::try_from(i).unwrap_or(i64::MAX);
        }
        Ok(notices)
    }

    /// Who a campaign from this revision writes to: (patient, their class now, what they were
    /// told and when, if anything), and the queued notices it replaces.
    async fn plan(&self, id: &str, revision: i64) -> Result<(Vec<Wanted>, Vec<String>), AppError> {
        let now_class: BTreeMap<String, Class> = self
            .app
            .store
            .scope_patients(id, revision)
            .await?
            .into_iter()
            .filter_map(|p| Class::parse(&p.class).map(|c| (p.patient_id, c)))
            .collect();
        // What each person was told (the last notice that went), and what is on its way.
        let mut told: BTreeMap<String, (Class, i64)> = BTreeMap::new();
        let mut pending: BTreeMap<String, Vec<(String, Class, String)>> = BTreeMap::new();
        let mut failed: BTreeMap<String, Class> = BTreeMap::new();
        for n in self.app.store.incident_notices(id).await? {
            let class = Class::parse(&n.class).unwrap_or(Class::NotAffected);
            match n.state.as_str() {
                "sent" | "sending" => {
                    let at = n.sent_at.unwrap_or(0);
                    if told.get(&n.patient_id).is_none_or(|(_, t)| *t <= at) {
                        told.insert(n.patient_id, (class, at));
                    }
                }
                "queued" | "claimed" => pending.entry(n.patient_id).or_default().push((n.id, class, n.state)),
                "failed" => {
                    failed.insert(n.patient_id, class);
                }
                _ => {}
            }
        }
        let mut cancel = Vec::new();
        let mut wanted: Vec<Wanted> = Vec::new();
        let everyone: std::collections::BTreeSet<&String> =
            now_class.keys().chain(told.keys()).chain(pending.keys()).collect();
        for patient in everyone {
            let class = now_class.get(patient).copied().unwrap_or(Class::NotAffected);
            let on_way = pending.get(patient).map(Vec::as_slice).unwrap_or_default();
            // A notice a sender holds goes as it is; this person is seen to next time.
            if on_way.iter().any(|(_, _, state)| state == "claimed") {
                continue;
            }
            let right_on_way = on_way.iter().any(|(_, c, _)| *c == class);
            cancel.extend(on_way.iter().filter(|(_, c, _)| *c != class).map(|(n, _, _)| n.clone()));
            match told.get(patient) {
                Some((was, _)) if *was == class => {}
                Some((was, at)) => wanted.push((patient.clone(), class, Some((*was, *at)))),
                None if class == Class::NotAffected || right_on_way => {}
                None if failed.get(patient) == Some(&class) => {}
                None => wanted.push((patient.clone(), class, None)),
            }
        }
        Ok((wanted, cancel))
    }

    /// Releases more of a campaign (a larger percentage; never less) and sets its rate.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such campaign; [`AppError::Invalid`] for a bad stage or rate.
    pub async fn release(
        &self,
        lead: &Lead,
        id: &str,
        campaign: &str,
        percent: i64,
        per_minute: i64,
    ) -> Result<(), AppError> {
        if !(1..=100).contains(&percent) {
            return Err(AppError::field("percent", "Release between 1 and 100 per cent of the notices."));
        }
        if !(1..=100_000).contains(&per_minute) {
            return Err(AppError::field("per_minute", "Send between 1 and 100,000 notices a minute."));
        }
        if !self.app.store.campaigns(id).await?.iter().any(|c| c.id == campaign) {
            return Err(AppError::NotFound);
        }
        self.app.store.release_campaign(&lead.grant, campaign, percent, per_minute).await?;
        self.event(lead, ObjectKind::IncidentCampaign, Verb::Update, campaign).await?;
        self.note(lead, id, "release", campaign, 0, &format!("{percent}% released, {per_minute} a minute")).await;
        self.app.jobs_waker.notify_waiters();
        Ok(())
    }

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
                let message = Self::message(from, &n.recipient, &n.subject, &n.body, &n.id)?;
                let outcome = match to {
                    Sender::Folder(dir) => {
                        if self.settle_previous(&n.id, &holder, &mut previous).await? {
                            write_eml(dir, &n.id, &message).await.map_err(|e| AppError::Internal(e.to_string()))?;
                            journalled(journal.as_mut(), &n.id)?;
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
                                    self.flush(&mut previous).await?;
                                    self.app
                                        .store
                                        .settle_notice(&n.id, "queued", Some("mail server unreachable"), now)
                                        .await?;
                                    if failures >= 5 {
                                        return Err(AppError::Unavailable(format!(
                                            "the mail server at {addr} cannot be reached ({e:?}); notices not yet \
                                             sent stay queued: run this again when it is back"
                                        )));
                                    }
                                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                                    continue;
                                }
                            }
                        }
                        let Some(c) = conn.as_mut() else { continue };
                        self.over_smtp(c, from, &n, &message, (&holder, journal.as_mut()), &mut previous).await
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
    /// the connection broke (the notice was put back, or stays unconfirmed).
    async fn over_smtp(
        &self,
        c: &mut Smtp,
        from: &str,
        n: &store::incidents::ClaimedNotice,
        message: &[u8],
        (holder, journal): (&str, Option<&mut std::fs::File>),
        previous: &mut Option<(String, &'static str, Option<String>)>,
    ) -> Result<(&'static str, Option<String>), bool> {
        let now = self.app.now();
        let from_addr = from.rsplit_once('<').map_or(from, |(_, a)| a.trim_end_matches('>'));
        match c.write_message(from_addr, &n.recipient, message).await {
            Ok(()) => {}
            Err(Refused::Server(r)) => {
                if self.flush(previous).await.is_err() || c.reset().await.is_err() {
                    let _ = self.app.store.settle_notice(&n.id, "queued", Some("connection reset"), now).await;
                    return Err(true);
                }
                let state = if r.permanent() { "failed" } else { "queued" };
                return Ok((state, Some(format!("{} {}", r.code, r.text))));
            }
            Err(Refused::Io(e)) => {
                let _ = self.flush(previous).await;
                let _ = self.app.store.settle_notice(&n.id, "queued", Some(&e.to_string()), now).await;
                return Err(true);
            }
        }
        // The commit point: from here on this notice is never sent again.
        match self.settle_previous(&n.id, holder, previous).await {
            Ok(true) => {}
            // The claim was lost (another sender took it over): this connection's message must
            // not be delivered, so the connection is dropped before its last step.
            Ok(false) | Err(_) => return Err(false),
        }
        // Told to deliver, and written down at once (two system calls, nothing between).
        if c.deliver().await.is_err() {
            return Err(false);
        }
        if journalled(journal, &n.id).is_err() {
            tracing::error!(notice = %n.id, "the campaign journal could not be written");
        }
        match c.answer().await {
            Ok(r) if r.ok() => Ok(("sent", None)),
            Ok(r) if r.permanent() => Ok(("failed", Some(format!("{} {}", r.code, r.text)))),
            Ok(r) => Ok(("queued", Some(format!("{} {}", r.code, r.text)))),
            // No answer: it stays "sending" (unconfirmed), listed, never sent again.
            Err(_) => Err(false),
        }
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
fn journalled(journal: Option<&mut std::fs::File>, id: &str) -> Result<(), AppError> {
    use std::io::Write;
    if let Some(f) = journal {
        f.write_all(format!("{id}\n").as_bytes()).map_err(|e| AppError::Internal(format!("campaign journal: {e}")))?;
    }
    Ok(())
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

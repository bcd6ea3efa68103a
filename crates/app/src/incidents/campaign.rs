//! Notification campaigns: from an incident's latest revision, one notice to each person it
//! affects who has not been told, and one correction to each person told something the
//! revision no longer says. A campaign is released in stages (a percentage) and sent at most
//! so many a minute; its notices are claimed, written, recorded as going out and only then
//! delivered (`smtp.rs`), so after a crash at any point nobody is sent a notice twice and
//! nobody is missed. Refusals are kept and listed for the practice to reach people otherwise.

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

/// Someone a campaign writes to: (patient, their class now, what they were told and when).
type Wanted = (String, Class, Option<(Class, i64)>);

/// Notices claimed at once.
pub(crate) const BATCH: i64 = 50;

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
}

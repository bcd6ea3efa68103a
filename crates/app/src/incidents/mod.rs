//! Incidents (issue 18, DESIGN §8): an incident lead (an operator) declares an incident with its
//! indicators; its scope is computed from the access log below a signed checkpoint, and each
//! change of indicators is a new revision, kept, with the tree size and root it was computed at.
//! From the latest revision come everything people are told: each patient's impact status (the
//! banner), the notices and corrections (`campaign.rs`), the public "is this genuine?" answer,
//! and the reports for controlling organisations and the regulator (`reports.rs`). They read
//! the same stored revision, so they cannot disagree.

mod campaign;
mod impact;
mod remedy;
mod reports;
mod review;
pub mod scope;
mod send;
mod smtp;

pub use campaign::Campaign;
pub use impact::Impact;
pub use remedy::{Remedy, Set};
pub use reports::{ControllerReport, Genuine, RegulatorReport, ReportRow};
pub use review::{Diff, Moved, Verified};
pub use scope::Scope;
pub use send::{SendReport, Sender};

use crate::access::{Outcome, Target};
use crate::caller::Caller;
use crate::{App, AppError};
use authz::{Grant, LeadIncidents, ReportIncidents, ViewIncidents};
use domain::incidents::{Class, Indicators};
use domain::{Module, ObjectKind, Verb};
use store::incidents::{IncidentAction, IncidentRow, NewIncident, RevisionRow};

/// Someone leading incidents: an operator at the console, or the server's console.
#[derive(Debug)]
pub struct Lead {
    pub(crate) grant: Grant<LeadIncidents>,
    pub(crate) view: Grant<ViewIncidents>,
    pub(crate) report: Grant<ReportIncidents>,
    /// Who (an account id, or `console`).
    pub(crate) by: String,
    pub(crate) caller: Caller,
}

/// An incident as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Its id.
    pub id: String,
    /// Title.
    pub title: String,
    /// What happened.
    pub description: String,
    /// When found (Unix seconds).
    pub discovered_at: i64,
    /// When declared.
    pub declared_at: i64,
    /// The alert it came from.
    pub from_alert: Option<String>,
    /// What is being done.
    pub steps_taken: String,
    /// When the Privacy Commissioner was told.
    pub commissioner_told_at: Option<i64>,
    /// When closed.
    pub closed_at: Option<i64>,
}

impl From<IncidentRow> for Incident {
    fn from(r: IncidentRow) -> Self {
        Self {
            id: r.id,
            title: r.title,
            description: r.description,
            discovered_at: r.discovered_at,
            declared_at: r.declared_at,
            from_alert: r.from_alert,
            steps_taken: r.steps_taken,
            commissioner_told_at: r.commissioner_told_at,
            closed_at: r.closed_at,
        }
    }
}

/// A revision of an incident's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// 1, 2, …
    pub number: i64,
    /// Its indicators.
    pub indicators: Indicators,
    /// Why it was made.
    pub note: String,
    /// The log's size it was computed at.
    pub tree_size: i64,
    /// The log's root there (hex).
    pub root: String,
    /// The scope's digest.
    pub digest: String,
    /// Patients confirmed.
    pub confirmed: i64,
    /// Patients possibly affected.
    pub possible: i64,
    /// Objects reached.
    pub objects: i64,
    /// Matching events.
    pub events: i64,
    /// When.
    pub created_at: i64,
}

impl Revision {
    fn from_row(r: RevisionRow) -> Result<Self, AppError> {
        Ok(Self {
            number: r.revision,
            indicators: serde_json::from_str(&r.indicators)
                .map_err(|e| AppError::Internal(format!("stored indicators: {e}")))?,
            note: r.note,
            tree_size: r.tree_size,
            root: r.root,
            digest: r.digest,
            confirmed: r.confirmed,
            possible: r.possible,
            objects: r.objects,
            events: r.events,
            created_at: r.created_at,
        })
    }
}

/// What a lead types to declare an incident.
#[derive(Debug, Clone, Default)]
pub struct Declaration {
    /// A short title.
    pub title: String,
    /// What happened, as the notices will say it.
    pub description: String,
    /// When it was found (Unix seconds).
    pub discovered_at: i64,
    /// The indicators.
    pub indicators: Indicators,
    /// The alert it comes from.
    pub from_alert: Option<String>,
}

/// Something done about an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// When.
    pub at: i64,
    /// By whom.
    pub by: String,
    /// What.
    pub action: String,
    /// To what set.
    pub target: String,
    /// How many.
    pub affected: i64,
    /// Why.
    pub reason: String,
}

impl From<IncidentAction> for Action {
    fn from(a: IncidentAction) -> Self {
        Self { at: a.at, by: a.by_account, action: a.action, target: a.target, affected: a.affected, reason: a.reason }
    }
}

/// An incident with everything about it.
#[derive(Debug, Clone)]
pub struct Detail {
    /// The incident.
    pub incident: Incident,
    /// Its revisions, oldest first.
    pub revisions: Vec<Revision>,
    /// Its campaigns.
    pub campaigns: Vec<Campaign>,
    /// What was done.
    pub actions: Vec<Action>,
}

/// "27 November 2026", in New Zealand.
#[must_use]
pub fn nz_date(at: i64) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_zoned(domain::calendar::nz().clone()).strftime("%-d %B %Y").to_string())
        .unwrap_or_default()
}

/// How an object reached is listed in the banner, the notice and the reports: its kind and
/// category, date and controlling organisation; no title, no content.
#[must_use]
pub fn describe(o: &store::incidents::ScopeObject) -> String {
    let what = match o.kind.as_str() {
        "document" => domain::DocumentCategory::parse(&o.category)
            .map_or_else(|_| "A document".to_owned(), |c| format!("A document: {}", c.label().to_lowercase())),
        "health_record" => domain::RecordCategory::parse(&o.category).map_or_else(
            || "An item of your health record".to_owned(),
            |c| format!("An item of your health record: {}", c.label().to_lowercase()),
        ),
        "patient_record" => "Your health record summary".to_owned(),
        "message_thread" => "A conversation with your practice".to_owned(),
        "repeat_list" | "repeat_request" => "Your medications (repeat prescriptions)".to_owned(),
        _ => "Your details (name, NHI number, date of birth)".to_owned(),
    };
    let dated = o.dated.as_deref().map(|d| format!(", dated {d}")).unwrap_or_default();
    format!("{what}{dated}, held for {}", o.controller_name)
}

/// Text that goes into notices: no link, no address to write to, nothing to click.
fn notice_text(field: &'static str, value: &str, min: usize, max: usize, what: &str) -> Result<String, AppError> {
    let v = text(field, value, min, max, what)?;
    if domain::incidents::reads_as_link(&v) {
        return Err(AppError::field(
            field,
            "Notices carry no links, addresses or anything to click or sign in to (people are told Tiaki never sends \
             them): say it without one.",
        ));
    }
    Ok(v)
}

fn text(field: &'static str, value: &str, min: usize, max: usize, what: &str) -> Result<String, AppError> {
    let v: String = value.chars().filter(|c| !c.is_control() || *c == '\n').collect::<String>().trim().to_owned();
    let n = v.chars().count();
    if n < min || n > max {
        return Err(AppError::field(field, format!("{what}, in {min} to {max} characters.")));
    }
    Ok(v)
}

/// The incidents module's use cases.
#[derive(Debug, Clone, Copy)]
pub struct Incidents<'a> {
    app: &'a App,
}

impl App {
    /// The incidents module.
    #[must_use]
    pub const fn incidents(&self) -> Incidents<'_> {
        Incidents { app: self }
    }
}

impl crate::console::Console<'_> {
    /// The server's console as incident lead (`tiaki incident …`).
    #[must_use]
    pub fn incident_lead(&self) -> Lead {
        Lead {
            grant: authz::console::lead_incidents(),
            view: authz::console::view_incidents(),
            report: authz::console::report_incidents(),
            by: "console".into(),
            caller: Caller::console(authz::Principal::Anonymous),
        }
    }
}

impl Incidents<'_> {
    /// The caller as incident lead: operators only.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone else (recorded).
    pub async fn lead(&self, caller: &Caller) -> Result<Lead, AppError> {
        let grant = self.app.decide::<LeadIncidents>(caller, authz::Platform).await?;
        let view = self.app.decide::<ViewIncidents>(caller, authz::Platform).await?;
        let report = self.app.decide::<ReportIncidents>(caller, authz::Platform).await?;
        let by = grant.actor().map_or_else(|| "console".to_owned(), |a| a.to_string());
        Ok(Lead { grant, view, report, by, caller: caller.clone() })
    }

    /// Records an incident access event.
    async fn event(&self, lead: &Lead, kind: ObjectKind, verb: Verb, object: &str) -> Result<(), AppError> {
        let target = Target {
            access: domain::Access::new(Module::Incidents, kind, verb),
            object_id: object.to_owned(),
            patient: None,
            practice: None,
        };
        self.app.audit(vec![self.app.event(&lead.caller, &target, Outcome::Allowed)]).await
    }

    async fn note(&self, lead: &Lead, incident: &str, action: &str, target: &str, affected: usize, reason: &str) {
        let a = IncidentAction {
            id: uuid::Uuid::new_v4().to_string(),
            incident_id: incident.to_owned(),
            at: self.app.now(),
            by_account: lead.by.clone(),
            action: action.to_owned(),
            target: target.to_owned(),
            affected: i64::try_from(affected).unwrap_or(i64::MAX),
            reason: reason.to_owned(),
        };
        if let Err(e) = self.app.store.record_incident_action(&a).await {
            tracing::error!(error = %e, incident, action, "an incident action could not be recorded");
        }
    }

    /// Every incident, newest first.
    ///
    /// # Errors
    /// When storage fails.
    pub async fn list(&self, lead: &Lead) -> Result<Vec<Incident>, AppError> {
        Ok(self.app.store.incidents(&lead.view).await?.into_iter().map(Incident::from).collect())
    }

    async fn row(&self, id: &str) -> Result<IncidentRow, AppError> {
        self.app.store.incident(id).await?.ok_or(AppError::NotFound)
    }

    /// One incident with its revisions, campaigns and actions.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such incident.
    pub async fn detail(&self, lead: &Lead, id: &str) -> Result<Detail, AppError> {
        let incident = self.row(id).await?;
        self.event(lead, ObjectKind::Incident, Verb::Read, id).await?;
        let revisions =
            self.app.store.revisions(id).await?.into_iter().map(Revision::from_row).collect::<Result<_, _>>()?;
        let campaigns = self.campaigns(lead, id).await?;
        let actions = self.app.store.incident_actions(id).await?.into_iter().map(Action::from).collect();
        Ok(Detail { incident: incident.into(), revisions, campaigns, actions })
    }

    /// The indicators of an alert, to declare an incident from: its session (or system or
    /// account), from an hour before its window to now.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such alert.
    pub async fn from_alert(&self, _lead: &Lead, alert: &str) -> Result<Declaration, AppError> {
        let a = self.app.store.alert(alert).await?.ok_or(AppError::NotFound)?;
        let mut indicators = Indicators::default();
        match a.subject.split_once(':') {
            Some(("client", id)) => indicators.clients.push(id.to_owned()),
            Some(("account", id)) => indicators.accounts.push(id.to_owned()),
            // A session (a platform-wide alert has no subject to name).
            None if uuid::Uuid::parse_str(&a.subject).is_ok() => indicators.sessions.push(a.subject.clone()),
            _ => {}
        }
        if let Some(account) = &a.account {
            indicators.accounts.push(account.clone());
        }
        let rule = domain::detection::Rule::parse(&a.rule).map_or(a.rule.as_str(), |r| r.label());
        Ok(Declaration {
            title: format!("Alert: {rule}"),
            description: String::new(),
            discovered_at: a.created_at,
            indicators,
            from_alert: Some(a.id),
        })
    }

    /// Declares an incident and computes its first revision.
    ///
    /// # Errors
    /// [`AppError::Invalid`] for a bad title, description, time or indicators; storage errors.
    pub async fn declare(&self, lead: &Lead, d: &Declaration) -> Result<(String, Revision), AppError> {
        let title = text("title", &d.title, 3, 200, "Give the incident a short title")?;
        let description = notice_text(
            "description",
            &d.description,
            20,
            2_000,
            "Say what happened, in the plain words the notices to people will use",
        )?;
        let now = self.app.now();
        if d.discovered_at <= 0 || d.discovered_at > now + 300 {
            return Err(AppError::field("discovered_at", "When was it found? Give a time that is not in the future."));
        }
        let indicators = checked(&d.indicators)?;
        if let Some(alert) = &d.from_alert
            && self.app.store.alert(alert).await?.is_none()
        {
            return Err(AppError::field("alert", "There is no such alert."));
        }
        let id = uuid::Uuid::now_v7().to_string();
        self.app
            .store
            .create_incident(
                &lead.grant,
                &NewIncident {
                    id: id.clone(),
                    title,
                    description,
                    discovered_at: d.discovered_at,
                    declared_at: now,
                    declared_by: lead.by.clone(),
                    from_alert: d.from_alert.clone(),
                },
            )
            .await?;
        self.event(lead, ObjectKind::Incident, Verb::Declare, &id).await?;
        self.note(lead, &id, "declare", d.from_alert.as_deref().unwrap_or("-"), 0, "declared").await;
        let revision = self.compute_revision(lead, &id, &indicators, "declared").await?;
        Ok((id, revision))
    }

    /// The scope these indicators would give now, without keeping it (to try indicators out).
    ///
    /// # Errors
    /// [`AppError::Invalid`] for bad indicators.
    pub async fn preview(&self, lead: &Lead, indicators: &Indicators) -> Result<Scope, AppError> {
        let indicators = checked(indicators)?;
        let size = self.app.store.audit_tree_size().await?;
        scope::compute(&*self.app.store, &lead.grant, &indicators, size).await
    }

    /// The scope of these indicators over the log's events below `below`, computed as a
    /// revision computes it (for the benchmark, which writes its log without sequencing it).
    ///
    /// # Errors
    /// As [`Incidents::preview`].
    #[cfg(feature = "bench")]
    pub async fn scope_below(&self, indicators: &Indicators, below: u64) -> Result<Scope, AppError> {
        let indicators = checked(indicators)?;
        scope::compute(&*self.app.store, &authz::console::lead_incidents(), &indicators, below).await
    }

    /// A new revision with these indicators.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such incident; [`AppError::Invalid`] for bad indicators or
    /// no note.
    pub async fn revise(
        &self,
        lead: &Lead,
        id: &str,
        indicators: &Indicators,
        note: &str,
    ) -> Result<Revision, AppError> {
        let _incident = self.row(id).await?;
        let note = text("note", note, 3, 500, "Say why the scope is being revised")?;
        let indicators = checked(indicators)?;
        let r = self.compute_revision(lead, id, &indicators, &note).await?;
        self.event(lead, ObjectKind::Incident, Verb::Revise, id).await?;
        Ok(r)
    }

    async fn compute_revision(
        &self,
        lead: &Lead,
        id: &str,
        indicators: &Indicators,
        note: &str,
    ) -> Result<Revision, AppError> {
        // Everything written so far sequenced and signed, if this node can: the scope is of the
        // events below a signed checkpoint, which anyone can check it against.
        let _tick = self.app.access_log().tick(true).await?;
        let checkpoint = self.app.store.latest_checkpoint().await?.ok_or_else(|| {
            AppError::Conflict(
                "The access log has no signed checkpoint yet, so a scope could not be checked later. Run `tiaki audit \
                 checkpoint` on the server and try again."
                    .into(),
            )
        })?;
        let scope = scope::compute(&*self.app.store, &lead.grant, indicators, checkpoint.size).await?;
        let row = RevisionRow {
            incident_id: id.to_owned(),
            revision: 0,
            indicators: serde_json::to_string(indicators).map_err(|e| AppError::Internal(e.to_string()))?,
            note: note.to_owned(),
            tree_size: i64::try_from(checkpoint.size).unwrap_or(i64::MAX),
            root: hex::encode(&checkpoint.root),
            checkpoint: checkpoint.note.clone(),
            digest: scope.digest(),
            confirmed: i64::try_from(scope.count(Class::Confirmed)).unwrap_or(i64::MAX),
            possible: i64::try_from(scope.count(Class::Possible)).unwrap_or(i64::MAX),
            objects: i64::try_from(scope.objects.len()).unwrap_or(i64::MAX),
            events: i64::try_from(scope.events).unwrap_or(i64::MAX),
            created_at: self.app.now(),
            created_by: lead.by.clone(),
        };
        let number = self.app.store.add_revision(&lead.grant, &row, &scope.patients, &scope.objects).await?;
        self.note(lead, id, "revise", &format!("revision {number}"), scope.patients.len(), note).await;
        tracing::info!(
            incident = id,
            revision = number,
            confirmed = row.confirmed,
            possible = row.possible,
            "incident scope"
        );
        Revision::from_row(RevisionRow { revision: number, ..row })
    }

    /// The latest revision of an incident.
    pub(crate) async fn latest(&self, id: &str) -> Result<Revision, AppError> {
        let rows = self.app.store.revisions(id).await?;
        rows.into_iter().last().map(Revision::from_row).transpose()?.ok_or(AppError::NotFound)
    }
}

fn checked(i: &Indicators) -> Result<Indicators, AppError> {
    let i = i.checked().map_err(|e| AppError::field("indicators", e.0))?;
    i.searchable().map_err(|e| AppError::field("indicators", e.0))?;
    Ok(i)
}

//! What an incident tells those outside it: the public "is this message genuine?" answer, each
//! controlling organisation's report (its patients and objects by class, CSV and printable),
//! and the regulator's report (the Privacy Act s 117 content with the numbers, the timeline,
//! the steps taken and how notification stands). All of it reads the latest revision and the
//! notices kept, as the banner does.

use super::{Incidents, Lead, campaign::code_hash, nz_date};
use crate::access::{Outcome, Target};
use crate::caller::Caller;
use crate::{App, AppError};
use domain::incidents::{Class, normalise_reference};
use std::collections::BTreeMap;

/// Checks of reference codes one address may make in ten minutes.
pub const CHECKS_PER_WINDOW: i64 = 10;
const CHECK_WINDOW: i64 = 600;

/// What the public page answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Genuine {
    /// A notice Tiaki sent.
    Genuine {
        /// When it went ("28 November 2026").
        sent_on: String,
        /// What about (the incident's title).
        about: String,
        /// A notice or a correction.
        correction: bool,
        /// The person's impact status now.
        status: Class,
        /// What is being done.
        steps_taken: String,
    },
    /// Anything else: not a code Tiaki sent (never told apart from a malformed one).
    NotFromTiaki,
}

/// One line of a controlling organisation's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    /// The patient's NHI.
    pub nhi: String,
    /// Their name.
    pub name: String,
    /// Their class as far as this organisation's objects go.
    pub class: Class,
    /// The object's kind.
    pub kind: String,
    /// Its id.
    pub object_id: String,
    /// Its category.
    pub category: String,
    /// Its date.
    pub dated: Option<String>,
    /// Served (`confirmed`) or only reachable (`possible`).
    pub reached: String,
}

/// A controlling organisation's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerReport {
    /// The incident's title.
    pub title: String,
    /// The revision.
    pub revision: i64,
    /// The organisation.
    pub controller_id: String,
    /// Its name.
    pub controller_name: String,
    /// Its patients confirmed affected.
    pub confirmed: usize,
    /// Its patients possibly affected.
    pub possible: usize,
    /// Objects of its reached.
    pub objects: usize,
    /// Every object, by patient.
    pub rows: Vec<ReportRow>,
}

impl ControllerReport {
    /// As CSV (RFC 4180), one line per object.
    #[must_use]
    pub fn csv(&self) -> String {
        fn field(s: &str) -> String {
            // A leading = + - @ would be a formula in a spreadsheet.
            let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_owned() };
            if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
        }
        let mut out = String::from("nhi,name,patient_class,object_kind,object_id,category,date,reached\r\n");
        for r in &self.rows {
            let line = [
                r.nhi.as_str(),
                r.name.as_str(),
                r.class.as_str(),
                r.kind.as_str(),
                r.object_id.as_str(),
                r.category.as_str(),
                r.dated.as_deref().unwrap_or(""),
                r.reached.as_str(),
            ]
            .map(field)
            .join(",");
            out.push_str(&line);
            out.push_str("\r\n");
        }
        out
    }
}

/// The regulator's report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RegulatorReport {
    /// What happened.
    pub what_happened: String,
    /// The incident's title.
    pub title: String,
    /// When it was found (RFC 3339).
    pub discovered_at: String,
    /// When it was declared.
    pub declared_at: String,
    /// The revision the numbers come from, with the log's size and root it was computed at.
    pub revision: serde_json::Value,
    /// People confirmed affected.
    pub confirmed: i64,
    /// People possibly affected.
    pub possible: i64,
    /// Documents, record items and records reached.
    pub objects: i64,
    /// Per controlling organisation: (name, confirmed, possible).
    pub by_organisation: Vec<serde_json::Value>,
    /// Who may hold the information: the indicators.
    pub who_may_hold_it: String,
    /// Steps taken.
    pub steps_taken: String,
    /// What was done, when.
    pub actions: Vec<serde_json::Value>,
    /// Notification: whether and when people are told.
    pub notification: serde_json::Value,
    /// When the Commissioner was told.
    pub commissioner_told_at: Option<String>,
    /// Other agencies told: the controlling organisations.
    pub other_agencies: Vec<String>,
    /// Who to contact.
    pub contact: String,
    /// The timeline.
    pub timeline: Vec<serde_json::Value>,
}

fn rfc3339(at: i64) -> String {
    jiff::Timestamp::from_second(at).map(|t| t.to_string()).unwrap_or_default()
}

impl App {
    /// How many reference checks this address made in its window, counting this one.
    async fn count_check(&self, caller: &Caller) -> Result<i64, AppError> {
        let now = self.now();
        // IPv6 by /64: one household's addresses are one.
        let who = match caller.ip {
            Some(std::net::IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            Some(ip) => format!("ip:{ip}"),
            None => "console".into(),
        };
        let mark = store::Mark {
            rule: "reference_check",
            subject: who,
            window_start: now - now.rem_euclid(CHECK_WINDOW),
            objects: Vec::new(),
            tally: 1,
        };
        Ok(self.store.mark_all(std::slice::from_ref(&mark)).await?.first().copied().unwrap_or(0))
    }
}

impl Incidents<'_> {
    /// The public check of a reference code: anyone, signed in or not, at most ten checks an
    /// address in ten minutes. A genuine code says when it went, what about, and its person's
    /// status now; anything else, malformed or not, is "not from Tiaki".
    ///
    /// # Errors
    /// [`AppError::RateLimited`] past the limit; storage errors.
    pub async fn check_reference(&self, caller: &Caller, code: &str) -> Result<Genuine, AppError> {
        let grant = self.app.decide::<authz::CheckReference>(caller, authz::Platform).await?;
        let n = self.app.count_check(caller).await?;
        if n > CHECKS_PER_WINDOW {
            let now = self.app.now();
            let wait = CHECK_WINDOW - now.rem_euclid(CHECK_WINDOW);
            return Err(AppError::RateLimited(u64::try_from(wait).unwrap_or(600)));
        }
        let found = match normalise_reference(code) {
            Some(code) => self.app.store.notice_by_code(&code_hash(&code)).await?,
            None => None,
        };
        let found = found.filter(|c| matches!(c.state.as_str(), "sent" | "sending"));
        let mut target = Target::of(&grant).about(&"reference");
        let Some(c) = found else {
            self.app.audit(vec![self.app.event(caller, &target, Outcome::NotFound)]).await?;
            return Ok(Genuine::NotFromTiaki);
        };
        target.patient = c.patient_id.parse().ok();
        target.object_id = c.incident_id.clone();
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        let incident = self.row(&c.incident_id).await?;
        let revision = self.latest(&c.incident_id).await?;
        let status = self
            .app
            .store
            .scope_patient(&c.incident_id, revision.number, &c.patient_id)
            .await?
            .and_then(|p| Class::parse(&p.class))
            .unwrap_or(Class::NotAffected);
        Ok(Genuine::Genuine {
            sent_on: nz_date(c.sent_at.unwrap_or(0)),
            about: incident.title,
            correction: c.kind == "correction",
            status,
            steps_taken: incident.steps_taken,
        })
    }

    /// The controlling organisations of the latest revision: (id, name, confirmed, possible).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such incident.
    pub async fn controllers(&self, _lead: &Lead, id: &str) -> Result<Vec<(String, String, usize, usize)>, AppError> {
        let revision = self.latest(id).await?;
        let mut by: BTreeMap<(String, String), BTreeMap<String, Class>> = BTreeMap::new();
        for o in self.app.store.scope_objects(id, revision.number, None).await? {
            let class = Class::parse(&o.class).unwrap_or(Class::Possible);
            let e = by.entry((o.controller_id, o.controller_name)).or_default().entry(o.patient_id).or_insert(class);
            if class.rank() > e.rank() {
                *e = class;
            }
        }
        Ok(by
            .into_iter()
            .map(|((cid, name), ps)| {
                let confirmed = ps.values().filter(|c| **c == Class::Confirmed).count();
                (cid, name, confirmed, ps.len() - confirmed)
            })
            .collect())
    }

    /// One controlling organisation's report.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such incident, or an organisation it did not reach.
    pub async fn controller_report(
        &self,
        lead: &Lead,
        id: &str,
        controller: &str,
    ) -> Result<ControllerReport, AppError> {
        let incident = self.row(id).await?;
        let revision = self.latest(id).await?;
        let objects: Vec<store::incidents::ScopeObject> = self
            .app
            .store
            .scope_objects(id, revision.number, None)
            .await?
            .into_iter()
            .filter(|o| o.controller_id == controller)
            .collect();
        let Some(name) = objects.first().map(|o| o.controller_name.clone()) else { return Err(AppError::NotFound) };
        self.report_event(lead, id).await?;
        let mut class: BTreeMap<String, Class> = BTreeMap::new();
        for o in &objects {
            let c = Class::parse(&o.class).unwrap_or(Class::Possible);
            let e = class.entry(o.patient_id.clone()).or_insert(c);
            if c.rank() > e.rank() {
                *e = c;
            }
        }
        let patients: Vec<String> = class.keys().cloned().collect();
        let contacts: BTreeMap<String, store::incidents::Contact> =
            self.app.store.contacts(&patients).await?.into_iter().map(|c| (c.patient_id.clone(), c)).collect();
        let rows = objects
            .iter()
            .map(|o| ReportRow {
                nhi: contacts.get(&o.patient_id).map(|c| c.nhi.clone()).unwrap_or_default(),
                name: contacts.get(&o.patient_id).map(|c| c.name.clone()).unwrap_or_default(),
                class: class.get(&o.patient_id).copied().unwrap_or(Class::Possible),
                kind: o.kind.clone(),
                object_id: o.object_id.clone(),
                category: o.category.clone(),
                dated: o.dated.clone(),
                reached: o.class.clone(),
            })
            .collect();
        Ok(ControllerReport {
            title: incident.title,
            revision: revision.number,
            controller_id: controller.to_owned(),
            controller_name: name,
            confirmed: class.values().filter(|c| **c == Class::Confirmed).count(),
            possible: class.values().filter(|c| **c == Class::Possible).count(),
            objects: objects.len(),
            rows,
        })
    }

    async fn report_event(&self, lead: &Lead, id: &str) -> Result<(), AppError> {
        let target = Target::of(&lead.report).about(&id);
        self.app.audit(vec![self.app.event(&lead.caller, &target, Outcome::Allowed)]).await
    }

    /// The regulator's report.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such incident.
    pub async fn regulator_report(&self, lead: &Lead, id: &str) -> Result<RegulatorReport, AppError> {
        let incident = self.row(id).await?;
        let revision = self.latest(id).await?;
        self.report_event(lead, id).await?;
        let controllers = self.controllers(lead, id).await?;
        let actions = self.app.store.incident_actions(id).await?;
        let notices = self.app.store.incident_notices(id).await?;
        let count = |kind: &str, states: &[&str]| {
            notices.iter().filter(|n| n.kind == kind && states.contains(&n.state.as_str())).count()
        };
        let mut told: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        for n in notices.iter().filter(|n| matches!(n.state.as_str(), "sent" | "sending")) {
            told.insert(&n.patient_id);
        }
        let affected = revision.confirmed + revision.possible;
        let i = &revision.indicators;
        let mut who = Vec::new();
        for (label, list) in [
            ("accounts", &i.accounts),
            ("sessions", &i.sessions),
            ("systems", &i.clients),
            ("IP addresses", &i.ips),
            ("user agents", &i.user_agents),
        ] {
            if !list.is_empty() {
                who.push(format!("{label}: {}", list.join(", ")));
            }
        }
        let mut timeline = vec![
            serde_json::json!({"at": rfc3339(incident.discovered_at), "what": "found"}),
            serde_json::json!({"at": rfc3339(incident.declared_at), "what": "declared"}),
        ];
        if let Some(t) = incident.commissioner_told_at {
            timeline.push(serde_json::json!({"at": rfc3339(t), "what": "the Office of the Privacy Commissioner told"}));
        }
        timeline.extend(
            actions.iter().map(|a| serde_json::json!({"at": rfc3339(a.at), "what": a.action, "detail": a.reason})),
        );
        timeline.sort_by(|a, b| a["at"].as_str().cmp(&b["at"].as_str()));
        Ok(RegulatorReport {
            what_happened: incident.description.clone(),
            title: incident.title.clone(),
            discovered_at: rfc3339(incident.discovered_at),
            declared_at: rfc3339(incident.declared_at),
            revision: serde_json::json!({
                "number": revision.number,
                "computed_at": rfc3339(revision.created_at),
                "access_log_tree_size": revision.tree_size,
                "access_log_root": revision.root,
                "scope_digest": revision.digest,
            }),
            confirmed: revision.confirmed,
            possible: revision.possible,
            objects: revision.objects,
            by_organisation: controllers
                .iter()
                .map(|(cid, name, c, p)| serde_json::json!({"id": cid, "name": name, "confirmed": c, "possible": p}))
                .collect(),
            who_may_hold_it: format!("Whoever used: {}", who.join("; ")),
            steps_taken: incident.steps_taken.clone(),
            actions: actions
                .iter()
                .map(|a| {
                    serde_json::json!({"at": rfc3339(a.at), "action": a.action, "set": a.target, "affected": a.affected, "reason": a.reason})
                })
                .collect(),
            notification: serde_json::json!({
                "people_affected": affected,
                "people_told": told.len(),
                "notices_sent": count("notice", &["sent"]),
                "corrections_sent": count("correction", &["sent"]),
                "unconfirmed": count("notice", &["sending"]) + count("correction", &["sending"]),
                "refused_by_mail_server": count("notice", &["failed"]) + count("correction", &["failed"]),
                "waiting": count("notice", &["queued", "claimed"]) + count("correction", &["queued", "claimed"]),
                "how": "a personally addressed email to each person, with no links; people the mail server refused are listed for their practice to reach by phone or post",
            }),
            commissioner_told_at: incident.commissioner_told_at.map(rfc3339),
            other_agencies: controllers.iter().map(|(_, name, _, _)| name.clone()).collect(),
            contact: self.app.alert_settings().support_phone.unwrap_or_else(|| "the Tiaki operator".into()),
            timeline,
        })
    }
}

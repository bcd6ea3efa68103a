//! Detection and containment (issue 17): detectors that read the access stream as it is written
//! — every event is written before anything is served — and contain what they catch at once.
//! Their picture is in the database (`DetectionStore::mark_all`), so every node sees the same
//! counts, and a session one node suspends is refused by every node at its next request.
//!
//! The rules, their defaults (`domain::detection::Thresholds`) and what each does
//! (`Rule::response`) are listed in the README; the security console (`console.rs`) is where
//! operators see the alerts, their evidence and timelines, and act on them.

pub mod console;
mod honeytokens;
mod tell;

use crate::{App, AppError};
use domain::detection::{Limit, Response, Rule, Severity, Thresholds};
use domain::{AccountId, ClientId, SessionId};
use store::{AuditEvent, Mark, NewAlert};

pub use honeytokens::Honeytokens;
pub(crate) use tell::WEBHOOK_JOB;
pub use tell::{AlertMessage, signature};

/// How a lock the detectors made begins its reason (lifting one undoes only these).
pub(crate) const LOCK_REASON_START: &str = "Locked automatically";

/// The kill switches as a node last read them (module, scope), and when.
pub(crate) type SwitchCache = (Option<std::time::Instant>, Vec<(String, String)>);

/// Whether a refusal of an id (not found, or not theirs).
fn refusal(e: &AuditEvent) -> bool {
    matches!(e.outcome.as_str(), "not_found" | "denied") && !e.object_id.is_empty()
}

/// Whether a person reading one document or record item (what the read rate counts).
fn item_read(e: &AuditEvent) -> bool {
    e.action == "read" && matches!(e.object_type.as_str(), "document" | "health_record" | "hidden_health_record")
}

fn is_client(e: &AuditEvent) -> bool {
    e.actor_role.starts_with("client:")
}

/// Whether a patient acting as themselves (they reach only their own record).
fn own_patient(e: &AuditEvent) -> bool {
    e.actor_role == "patient"
}

/// Whether a rule counts this event. Events of a session or an organisation's system only
/// (console and system work is not watched); on an allowed request most events count nothing.
pub(crate) fn counted(e: &AuditEvent) -> bool {
    if e.actor_role.starts_with("console") || (e.session.is_none() && !is_client(e)) {
        return false;
    }
    // A patient reading their own record counts nothing (they reach no one else's): the
    // download path of most requests writes only the access log.
    refusal(e) || e.outcome == "allowed" && (e.action == "export" || e.patient.is_some() && !own_patient(e))
}

/// Who a rule fired on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    /// A signed-in session (and its account).
    Session { session: String, account: Option<String> },
    /// An account, across its sessions.
    Account(String),
    /// An organisation's system.
    Client(String),
    /// The platform as a whole (the sign-in spike).
    Platform,
}

impl Who {
    fn of(e: &AuditEvent) -> Option<Self> {
        if is_client(e) {
            return e.actor_account.clone().map(Self::Client);
        }
        e.session.clone().map(|session| Self::Session { session, account: e.actor_account.clone() })
    }

    /// The subject's name in marks and alerts.
    fn subject(&self) -> String {
        match self {
            Self::Session { session, .. } => session.clone(),
            Self::Account(a) => format!("account:{a}"),
            Self::Client(c) => format!("client:{c}"),
            Self::Platform => "platform".into(),
        }
    }

    fn account(&self) -> Option<&str> {
        match self {
            Self::Session { account, .. } => account.as_deref(),
            Self::Account(a) => Some(a),
            Self::Client(_) | Self::Platform => None,
        }
    }
}

/// What the detectors make of a request's events ([`App::plan`]).
#[derive(Default)]
pub(crate) struct Plan {
    /// Who touched a canary.
    canaries: Vec<Who>,
    /// Each rule's count, its mark, and the keys it adds to what this node has marked.
    counted: Vec<(Tally, Mark, Vec<String>)>,
}

impl Plan {
    /// The marks to write with the events, in order.
    pub(crate) fn marks(&self) -> Vec<Mark> {
        self.counted.iter().map(|(_, m, _)| m.clone()).collect()
    }
}

/// One rule's count for one subject in a request.
struct Tally {
    rule: Rule,
    who: Who,
    limit: Limit,
    objects: Vec<String>,
}

/// What a request's events add to each rule's count.
fn tally(events: &[AuditEvent], t: &Thresholds) -> Vec<Tally> {
    let mut out: Vec<Tally> = Vec::new();
    // A listing (a results queue, a patient's documents) unlocks the keys of what it shows: those
    // unwraps are the listing's, not a session opening patients one by one.
    let listing: std::collections::BTreeSet<&str> =
        events.iter().filter(|e| e.action == "list").filter_map(|e| e.session.as_deref()).collect();
    let mut add = |rule: Rule, who: Who, limit: Limit, object: String| {
        if let Some(x) = out.iter_mut().find(|x| x.rule == rule && x.who == who) {
            x.objects.push(object);
        } else {
            out.push(Tally { rule, who, limit, objects: vec![object] });
        }
    };
    for e in events {
        let Some(who) = Who::of(e) else { continue };
        if refusal(e) {
            // A system's refusals are its feed's ordinary misses (an NHI not enrolled here, a
            // practice that has not agreed): not enumeration. Its volume is watched instead.
            if is_client(e) {
                continue;
            }
            add(Rule::Enumeration, who.clone(), t.enumeration, format!("{}:{}", e.object_type, e.object_id));
            // A stolen password signs in again: across the account's sessions, twice the limit.
            if let (Who::Session { account: Some(a), .. }, Some(_)) = (&who, &e.session) {
                let limit = Limit { at: 2 * t.enumeration.at, ..t.enumeration };
                add(Rule::Enumeration, Who::Account(a.clone()), limit, format!("{}:{}", e.object_type, e.object_id));
            }
            if e.outcome == "denied"
                && let Some(p) = &e.patient
            {
                add(Rule::NoRelation, who.clone(), Limit { at: 1, window_secs: 3600 }, p.clone());
            }
            continue;
        }
        if e.outcome != "allowed" {
            continue;
        }
        if item_read(e) && !is_client(e) && !own_patient(e) {
            add(Rule::ReadRate, who.clone(), t.read_rate, e.id.clone());
        }
        if e.action == "export"
            && let Some(a) = who.account()
        {
            add(Rule::Exports, Who::Account(a.to_owned()), t.exports, e.id.clone());
        }
        let Some(patient) = e.patient.clone().filter(|_| !own_patient(e)) else { continue };
        if is_client(e) {
            // Everything a system does names its patients: reads, lists, pushes.
            add(Rule::ClientVolume, who, t.client_patients, patient);
            continue;
        }
        if e.actor_role.starts_with("staff:") && e.object_type == "document" && e.action == "read" {
            add(Rule::BulkDocumentReads, who.clone(), t.bulk_documents, patient.clone());
        }
        if e.action == "unwrap" && !e.session.as_deref().is_some_and(|s| listing.contains(s)) {
            add(Rule::KeyUnwraps, who.clone(), t.key_unwraps, patient.clone());
        }
        // Patients opened, not listed: a queue shows many at once by design.
        if e.action != "list" && e.action != "unwrap" {
            add(Rule::PatientsTouched, who, t.patients_touched, patient);
        }
    }
    out
}

impl App {
    /// The detectors' thresholds now.
    #[must_use]
    pub fn detection_thresholds(&self) -> Thresholds {
        *self.detection.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the detectors' thresholds (the configuration at start; tests that drive many
    /// roles through every route turn them off).
    pub fn set_detection_thresholds(&self, t: Thresholds) {
        *self.detection.write().unwrap_or_else(std::sync::PoisonError::into_inner) = t;
    }

    /// What the detectors make of a request's events before they are written: the canaries
    /// they touch, and what each rule counts — a tally (how many) or distinct objects, leaving
    /// out objects this node has marked in the window already (they cannot change a count, so
    /// cannot make a rule fire; a request that repeats what it did adds nothing to write).
    pub(crate) fn plan(&self, events: &[AuditEvent]) -> Plan {
        let t = self.detection_thresholds();
        let mut plan = Plan::default();
        if !t.on {
            return plan;
        }
        let now = self.now();
        plan.canaries = events.iter().filter(|e| self.honeytokens.touches(e)).filter_map(Who::of).collect();
        let watched: Vec<AuditEvent> = events.iter().filter(|e| counted(e)).cloned().collect();
        let known = self.marked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for x in tally(&watched, &t) {
            let subject = x.who.subject();
            let window_start = Thresholds::window_start(now, x.limit.window_secs);
            let rule = x.rule.as_str();
            if matches!(x.rule, Rule::ReadRate | Rule::Exports) {
                let n = i64::try_from(x.objects.len()).unwrap_or(i64::MAX);
                plan.counted.push((x, Mark { rule, subject, window_start, objects: Vec::new(), tally: n }, Vec::new()));
                continue;
            }
            let (objects, keys): (Vec<String>, Vec<String>) = x
                .objects
                .iter()
                .map(|o| (o.clone(), format!("{rule}|{subject}|{window_start}|{o}")))
                .filter(|(_, k)| !known.contains(k))
                .unzip();
            if !objects.is_empty() {
                plan.counted.push((x, Mark { rule, subject, window_start, objects, tally: 0 }, keys));
            }
        }
        plan
    }

    /// Contains what the detectors caught in a request's events, now written with their marks
    /// (`counts`, one per mark of the plan).
    ///
    /// # Errors
    /// [`AppError::Unauthenticated`] when the request's own session (or system) has just been
    /// suspended or asked to prove its second factor again (what it asked for is not served);
    /// when storage fails (the request then fails too: detection is never skipped silently).
    pub(crate) async fn contain(&self, plan: Plan, counts: Vec<i64>) -> Result<(), AppError> {
        if plan.canaries.is_empty() && plan.counted.is_empty() {
            return Ok(());
        }
        let now = self.now();
        {
            let mut known = self.marked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if known.len() > 200_000 {
                known.clear();
            }
            known.extend(plan.counted.iter().flat_map(|(_, _, k)| k.iter().cloned()));
        }
        let mut refused = false;
        // A canary: no legitimate path reaches one, so the first touch is the alarm.
        for who in &plan.canaries {
            refused |= self.fire(Rule::Honeytoken, who, 1, Thresholds::window_start(now, 3600)).await?;
        }
        for ((x, _, _), n) in plan.counted.iter().zip(counts) {
            let window = Thresholds::window_start(now, x.limit.window_secs);
            if x.rule == Rule::ClientVolume && !self.beyond_usual(&x.who.subject(), window, x.limit, n).await? {
                continue;
            }
            if n >= x.limit.at {
                refused |= self.fire(x.rule, &x.who, n, window).await?;
            }
        }
        if refused { Err(AppError::Unauthenticated) } else { Ok(()) }
    }

    /// The sign-in spike (credential stuffing) as an alert: operators are told, once an hour
    /// while it lasts; the sign-in limits have already tightened (`identity::ratelimit`).
    pub(crate) async fn sign_in_spike(&self, busiest_minute: i64) -> Result<(), AppError> {
        if !self.detection_thresholds().on {
            return Ok(());
        }
        let window = Thresholds::window_start(self.now(), 3_600);
        self.fire(Rule::SignInSpike, &Who::Platform, busiest_minute, window).await?;
        Ok(())
    }

    /// Whether a system's count this window is beyond its usual volume: at least the configured
    /// floor and three times its busiest window from a week ago to a day ago, or ten times the
    /// floor whatever its past. Keeps this window's count for the weeks to come.
    async fn beyond_usual(&self, subject: &str, window: i64, limit: Limit, n: i64) -> Result<bool, AppError> {
        const WEEK: i64 = 7 * 86_400;
        self.store.record_volume(subject, window, n, window - WEEK).await?;
        if n < limit.at {
            return Ok(false);
        }
        // Ten times the floor is never usual; otherwise three times the busiest window of the
        // week before yesterday (so that a stolen token cannot raise its own baseline hour by hour).
        if n >= 10 * limit.at {
            return Ok(true);
        }
        let usual = self.store.usual_volume(subject, window - WEEK, window - 86_400).await?;
        Ok(n >= 3 * usual)
    }

    /// A rule fired on `who`: raises its alert (once per window), contains, and tells the
    /// operators. Whether the request that crossed the line is refused.
    async fn fire(&self, rule: Rule, who: &Who, seen: i64, window: i64) -> Result<bool, AppError> {
        let now = self.now();
        let response = self.response_for(rule, who).await?;
        let alert = NewAlert {
            id: uuid::Uuid::new_v4(),
            rule: rule.as_str().to_owned(),
            severity: rule.severity().as_str().to_owned(),
            subject: who.subject(),
            account: who.account().map(str::to_owned),
            response: response.as_str().to_owned(),
            seen,
            window_start: window,
            created_at: now,
        };
        let raised = self.store.raise_alert(&alert).await?;
        let new = raised.new;
        // An operator lifted this window's alert (a false alarm, checked): not again this window.
        if raised.lifted {
            return Ok(false);
        }
        if new {
            metrics::counter!("tiaki_alerts_total", "rule" => rule.as_str(), "severity" => rule.severity().as_str())
                .increment(1);
            // Ids only: no name, no health data.
            tracing::warn!(rule = rule.as_str(), subject = %alert.subject, seen, response = response.as_str(), "detection: alert");
        }
        // Suspensions hold for every later request in the window (on every node: they are in
        // the database); a step-up is asked once per window, so the session can go on after it.
        let grant = authz::console::manage_alerts();
        let refused = match (response, who) {
            (Response::SuspendSession, Who::Session { session, .. }) => {
                if let Ok(s) = session.parse::<SessionId>() {
                    self.store.set_session_suspended(&grant, s, Some(now)).await?;
                }
                true
            }
            (Response::StepUp, Who::Session { session, .. }) => {
                if new && let Ok(s) = session.parse::<SessionId>() {
                    self.store.require_step_up(s, now).await?;
                }
                new
            }
            (Response::SuspendClient, Who::Client(c)) => {
                if let Ok(c) = c.parse::<ClientId>() {
                    self.store.set_client_suspended(&grant, c, Some(now)).await?;
                }
                true
            }
            (Response::LockAccount, Who::Account(a)) => self.lock_account(a, rule).await?,
            _ => false,
        };
        // Contained first; then the people who must know are told.
        if new && rule.severity() != Severity::Info {
            self.tell_operators(&alert).await?;
        }
        Ok(refused)
    }

    /// What a rule does to this subject: a system is suspended rather than a session; a
    /// session that cannot prove a second factor (it has none) is suspended instead of asked;
    /// an account is locked.
    async fn response_for(&self, rule: Rule, who: &Who) -> Result<Response, AppError> {
        Ok(match (rule.response(), who) {
            (Response::SuspendSession | Response::SuspendClient, Who::Client(_)) => Response::SuspendClient,
            (Response::SuspendSession, Who::Account(_)) => Response::LockAccount,
            (Response::StepUp, Who::Session { account: Some(a), .. }) => {
                let has = match a.parse::<AccountId>() {
                    Ok(id) => self.has_second_factor(id).await?,
                    Err(_) => false,
                };
                if has { Response::StepUp } else { Response::SuspendSession }
            }
            (r, _) => r,
        })
    }

    /// Locks an account (every session ended, no sign-in until an operator enables it again) and
    /// tells the holder. Whether it is locked. Operators' accounts are left to their sessions'
    /// suspension (the last operator must not lock the platform out).
    async fn lock_account(&self, account: &str, rule: Rule) -> Result<bool, AppError> {
        let Ok(id) = account.parse::<AccountId>() else { return Ok(false) };
        let Some(row) = self.store.account(id).await? else { return Ok(false) };
        if row.kind == domain::AccountKind::Operator {
            return Ok(false);
        }
        if row.disabled_at.is_some() {
            // Disabled already (by an operator, or by this rule a moment ago on another node).
            return Ok(true);
        }
        let reason = format!(
            "{LOCK_REASON_START}: it asked for many records it may not see (enumeration). Check with the holder, then \
             enable it; they choose a new password."
        );
        if self.store.set_account_disabled(&authz::console::manage_accounts(), id, Some(&reason), self.now()).await? {
            let mut event = self.event(
                &crate::audit::Caller::console(authz::Principal::Anonymous),
                &crate::audit::Target::account(domain::Verb::Disable, &id),
                crate::audit::Outcome::Allowed,
            );
            event.on_behalf = Some(format!("detection: {}", rule.as_str()));
            self.auditor.record(vec![event]).await?;
            self.notify(id, crate::notify::texts::Security::AccountLocked).await?;
        }
        Ok(true)
    }

    /// The newest alerts (for the drills; operators use the security console).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn recent_alerts(&self, limit: i64) -> Result<Vec<store::AlertRow>, AppError> {
        Ok(self.store.alerts(limit).await?)
    }

    /// The modules switched off now, as this node last read them (at most two seconds ago: every
    /// node sees a switch within two seconds, and a request costs no query while none is off).
    async fn switched_off(&self) -> Result<Vec<(String, String)>, AppError> {
        let fresh = {
            let cache = self.switches.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            cache.0.filter(|at| at.elapsed() < std::time::Duration::from_secs(2)).map(|_| cache.1.clone())
        };
        if let Some(rows) = fresh {
            return Ok(rows);
        }
        let rows: Vec<(String, String)> =
            self.store.module_switches().await?.into_iter().map(|s| (s.module, s.scope)).collect();
        *self.switches.write().unwrap_or_else(std::sync::PoisonError::into_inner) =
            (Some(std::time::Instant::now()), rows.clone());
        Ok(rows)
    }

    /// Forgets this node's copy of the switches (after an operator changed one here).
    pub(crate) fn forget_switches(&self) {
        self.switches.write().unwrap_or_else(std::sync::PoisonError::into_inner).0 = None;
    }

    /// Refuses with [`AppError::Unavailable`] when the kill switch has `module` off for everyone,
    /// for `via` (the practice a system sends through), or for a practice the patient is
    /// enrolled at.
    ///
    /// # Errors
    /// [`AppError::Unavailable`]; when storage fails.
    pub(crate) async fn guard_module(
        &self,
        module: domain::detection::Switchable,
        patient: Option<domain::PatientId>,
        via: Option<domain::PracticeId>,
    ) -> Result<(), AppError> {
        let off: Vec<String> =
            self.switched_off().await?.into_iter().filter(|(m, _)| m == module.as_str()).map(|(_, s)| s).collect();
        if off.is_empty() {
            return Ok(());
        }
        let mut practices: Vec<String> = via.iter().map(ToString::to_string).collect();
        if let Some(p) = patient {
            let at = self.store.patient_practices(p).await.map_err(|e| AppError::Internal(e.to_string()))?;
            practices.extend(at.iter().map(ToString::to_string));
        }
        if off.iter().any(|scope| scope == "*" || practices.contains(scope)) {
            return Err(AppError::Unavailable(format!(
                "{} are temporarily unavailable while we check something. Everything else in Tiaki works as usual;                  please try again later. Nothing has been lost.",
                module.label()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(role: &str, action: &str, object: &str, outcome: &str, patient: Option<&str>) -> AuditEvent {
        AuditEvent {
            id: uuid::Uuid::new_v4().to_string(),
            at_ms: 0,
            actor_account: Some("acc".into()),
            actor_role: role.into(),
            actor_practice: None,
            session: (!role.starts_with("client:")).then(|| "sess".into()),
            ip: "127.0.0.1".into(),
            user_agent: String::new(),
            on_behalf: None,
            action: action.into(),
            object_type: object.into(),
            object_id: "obj".into(),
            patient: patient.map(str::to_owned),
            practice: None,
            outcome: outcome.into(),
            request_id: String::new(),
            module: "documents".into(),
            format: 2,
        }
    }

    #[test]
    fn each_rule_counts_what_it_says() {
        let t = Thresholds::default();
        let rules = |e: AuditEvent| -> Vec<Rule> {
            assert!(counted(&e) || tally(std::slice::from_ref(&e), &t).is_empty());
            let mut r: Vec<Rule> = tally(&[e], &t).into_iter().map(|x| x.rule).collect();
            r.dedup();
            r
        };
        // A patient reading their own document: nothing (it costs the download no write).
        assert!(!counted(&event("patient", "read", "document", "allowed", Some("p"))));
        // Someone acting for them: the read rate and the patients they touch.
        assert_eq!(
            rules(event("proxy:parent", "read", "document", "allowed", Some("p"))),
            [Rule::ReadRate, Rule::PatientsTouched]
        );
        // A patient's list of their own documents: nothing at all.
        assert!(!counted(&event("patient", "list", "document", "allowed", Some("p"))));
        // Staff opening a document: bulk reads, the read rate, patients touched.
        assert_eq!(
            rules(event("staff:gp", "read", "document", "allowed", Some("p"))),
            [Rule::ReadRate, Rule::BulkDocumentReads, Rule::PatientsTouched]
        );
        // A key unlocked to open one: counted; the keys a listing unlocks are the listing's.
        assert_eq!(rules(event("staff:gp", "unwrap", "patient_key", "allowed", Some("p"))), [Rule::KeyUnwraps]);
        let listing = [
            event("staff:gp", "list", "health_record", "allowed", Some("p")),
            event("staff:gp", "unwrap", "patient_key", "allowed", Some("p")),
        ];
        assert!(tally(&listing, &t).is_empty(), "a queue lists many patients by design");
        // A system's refusal (an NHI its feed sends that is not enrolled here) is no enumeration.
        assert!(rules(event("client:G00001-A", "push", "document", "not_found", None)).is_empty());
        // A refusal: enumeration for the session and the account; a denied one names a patient.
        assert_eq!(
            rules(event("patient", "read", "document", "denied", Some("q"))),
            [Rule::Enumeration, Rule::NoRelation]
        );
        assert_eq!(rules(event("patient", "read", "document", "not_found", None)), [Rule::Enumeration]);
        // A system reading a patient, or sending something for one.
        assert_eq!(rules(event("client:G00001-A", "read", "document", "allowed", Some("p"))), [Rule::ClientVolume]);
        assert_eq!(rules(event("client:G00001-A", "push", "document", "allowed", Some("p"))), [Rule::ClientVolume]);
        assert_eq!(rules(event("patient", "export", "patient_record", "allowed", Some("p"))), [Rule::Exports]);
        // The console is not watched.
        assert!(!counted(&event("console:operator", "read", "document", "not_found", None)));
    }
}

//! The security console's use cases (operators only): the alerts, each with its evidence and a
//! timeline of what its subject did minute by minute, and the actions — acknowledge, lift what
//! a detector did, switch a module off or on. Each action needs a second factor proved in the
//! last ten minutes, and each is an access event, with the operator's reason kept beside it.

use crate::access::{Outcome, Target};
use crate::caller::Caller;
use crate::identity::SignedIn;
use crate::{App, AppError};
use domain::detection::{AlertState, Response, Switchable};
use domain::{AccountId, ClientId, SessionId, Verb};
use store::AuditEvent;
use store::{AlertRow, SwitchRow};
pub use store::{SecurityAction, Settle};

/// The most events shown as an alert's evidence.
pub const EVIDENCE_LIMIT: i64 = 2_000;

/// An alert, as the console shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Its id.
    pub id: String,
    /// The rule's code.
    pub rule: String,
    /// The severity's code.
    pub severity: String,
    /// Who: a session id, `account:<id>`, `client:<id>` or `platform`.
    pub subject: String,
    /// The response's code.
    pub response: String,
    /// Distinct things counted when it fired.
    pub seen: i64,
    /// When.
    pub created_at: i64,
    /// When an operator acknowledged it.
    pub acknowledged_at: Option<i64>,
    /// When an operator lifted its response.
    pub lifted_at: Option<i64>,
    /// The operator's last reason.
    pub note: Option<String>,
}

impl From<AlertRow> for Alert {
    fn from(r: AlertRow) -> Self {
        Self {
            id: r.id,
            rule: r.rule,
            severity: r.severity,
            subject: r.subject,
            response: r.response,
            seen: r.seen,
            created_at: r.created_at,
            acknowledged_at: r.acknowledged_at,
            lifted_at: r.lifted_at,
            note: r.note,
        }
    }
}

/// A module switched off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// The module's code.
    pub module: String,
    /// A practice's id, or `*`.
    pub scope: String,
    /// Since when.
    pub off_at: i64,
    /// Why.
    pub reason: String,
}

impl From<SwitchRow> for Switch {
    fn from(r: SwitchRow) -> Self {
        Self { module: r.module, scope: r.scope, off_at: r.off_at, reason: r.reason }
    }
}

/// An alert's evidence: the events of its subject around it, the minute-by-minute timeline and
/// the patients and documents touched (ids, for the incident module).
#[derive(Debug, Clone)]
pub struct Evidence {
    /// The alert.
    pub alert: Alert,
    /// Its subject's events from a little before its window to a little after, oldest first.
    pub events: Vec<AuditEvent>,
    /// Whether there were more than [`EVIDENCE_LIMIT`].
    pub truncated: bool,
    /// Reads and refusals per minute.
    pub timeline: Vec<Minute>,
    /// The patients the events named (ids).
    pub patients: Vec<String>,
    /// The documents the events named (ids).
    pub documents: Vec<String>,
}

/// One minute of a subject's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minute {
    /// The minute's start (Unix seconds).
    pub at: i64,
    /// Reads and lists allowed.
    pub reads: i64,
    /// Refusals (not found, denied).
    pub refused: i64,
}

/// An alert's state.
#[must_use]
pub fn state(a: &Alert) -> AlertState {
    if a.lifted_at.is_some() {
        AlertState::Lifted
    } else if a.acknowledged_at.is_some() {
        AlertState::Acknowledged
    } else {
        AlertState::Open
    }
}

/// Reads and refusals per minute, every minute from the first event to the last (none missing,
/// so the chart's gaps are real).
#[must_use]
pub fn timeline(events: &[AuditEvent]) -> Vec<Minute> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else { return Vec::new() };
    let start = first.at_ms.div_euclid(60_000) * 60;
    let end = last.at_ms.div_euclid(60_000) * 60;
    let mut out: Vec<Minute> =
        (0..=(end - start) / 60).map(|i| Minute { at: start + i * 60, reads: 0, refused: 0 }).collect();
    for e in events {
        let Ok(i) = usize::try_from((e.at_ms.div_euclid(60_000) * 60 - start) / 60) else { continue };
        let Some(m) = out.get_mut(i) else { continue };
        match e.outcome.as_str() {
            "not_found" | "denied" => m.refused += 1,
            _ if matches!(e.action.as_str(), "read" | "list" | "unwrap" | "export") => m.reads += 1,
            _ => {}
        }
    }
    out
}

fn reason(text: &str) -> Result<String, AppError> {
    let r: String = text.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_owned();
    if r.chars().count() < 3 || r.chars().count() > 500 {
        return Err(AppError::field("reason", "Say why, in 3 to 500 characters: it is kept with the action."));
    }
    Ok(r)
}

/// The security console.
#[derive(Debug, Clone, Copy)]
pub struct SecurityConsole<'a> {
    app: &'a App,
}

impl App {
    /// The security console (operators only).
    #[must_use]
    pub const fn security(&self) -> SecurityConsole<'_> {
        SecurityConsole { app: self }
    }
}

impl SecurityConsole<'_> {
    /// The newest alerts, newest first.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator.
    pub async fn alerts(&self, caller: &Caller, limit: i64) -> Result<Vec<Alert>, AppError> {
        let _seen = self.app.authorize::<authz::ViewAlerts>(caller, authz::Platform).await?;
        Ok(self.app.store.alerts(limit.clamp(1, 1_000)).await?.into_iter().map(Alert::from).collect())
    }

    /// The modules switched off now.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator.
    pub async fn switches(&self, caller: &Caller) -> Result<Vec<Switch>, AppError> {
        let _may = self.app.decide::<authz::ViewAlerts>(caller, authz::Platform).await?;
        Ok(self.app.store.module_switches().await?.into_iter().map(Switch::from).collect())
    }

    /// One alert with its evidence and timeline.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator, or for no such alert.
    pub async fn evidence(&self, caller: &Caller, id: &str) -> Result<Evidence, AppError> {
        let grant = self.app.decide::<authz::ViewAlerts>(caller, authz::Platform).await?;
        let alert = self.app.store.alert(id).await?.ok_or(AppError::NotFound)?;
        self.app.audit(vec![self.app.event(caller, &Target::of(&grant).about(&alert.id), Outcome::Allowed)]).await?;
        let principal = alert.subject.split_once(':').map_or(alert.subject.as_str(), |(_, id)| id);
        let from_s = alert.window_start.max(alert.created_at - 3_600) - 300;
        let to_s = alert.created_at + 600;
        let mut events = self
            .app
            .store
            .principal_events(
                &authz::console::export_audit(),
                principal,
                from_s * 1000,
                to_s * 1000,
                EVIDENCE_LIMIT + 1,
            )
            .await?;
        let truncated = events.len() > usize::try_from(EVIDENCE_LIMIT).unwrap_or(usize::MAX);
        events.truncate(usize::try_from(EVIDENCE_LIMIT).unwrap_or(usize::MAX));
        let mut patients: Vec<String> = events.iter().filter_map(|e| e.patient.clone()).collect();
        patients.sort();
        patients.dedup();
        let mut documents: Vec<String> =
            events.iter().filter(|e| e.object_type == "document").map(|e| e.object_id.clone()).collect();
        documents.sort();
        documents.dedup();
        Ok(Evidence { timeline: timeline(&events), alert: alert.into(), events, truncated, patients, documents })
    }

    /// The operator's second factor must have been proved in the last ten minutes.
    fn recent_factor(self, who: &SignedIn) -> Result<(), AppError> {
        if self.app.identity().recently_confirmed(who) {
            Ok(())
        } else {
            Err(AppError::Conflict(
                "Confirm it's you first: security actions need your second factor within the last ten minutes. \
                 Type a code from your authenticator app with the action, or confirm with your passkey under \
                 Sign-in security."
                    .into(),
            ))
        }
    }

    /// Acknowledges an alert (someone is on it), or lifts what its detector did: unlocks the
    /// account, resumes the suspended session or system.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator or no such alert; [`AppError::Invalid`]
    /// without a reason; [`AppError::Conflict`] without a recent second factor, when already
    /// done, or when the response left nothing to lift.
    pub async fn settle(
        &self,
        caller: &Caller,
        who: &SignedIn,
        id: &str,
        how: Settle,
        why: &str,
    ) -> Result<(), AppError> {
        let grant = self.app.decide::<authz::ManageAlerts>(caller, authz::Platform).await?;
        let alert = self.app.store.alert(id).await?.ok_or(AppError::NotFound)?;
        let why = reason(why)?;
        self.recent_factor(who)?;
        if how == Settle::Lift && !Self::liftable(&alert) {
            return Err(AppError::Conflict(
                "This alert's detector suspended nothing, so there is nothing to lift: acknowledge it instead.".into(),
            ));
        }
        let now = self.app.now();
        let by = who.account.to_string();
        // Claimed first (once, whoever asks at the same moment); then undone. From the claim on,
        // the detectors do not suspend this subject again for this window.
        if !self.app.store.settle_alert(&grant, id, how, &by, &why, now).await? {
            return Err(AppError::Conflict(match how {
                Settle::Acknowledge => "This alert was already acknowledged.".into(),
                Settle::Lift => "This alert's response was already lifted.".into(),
            }));
        }
        if how == Settle::Lift {
            self.lift(&alert).await?;
        }
        let verb = if how == Settle::Lift { Verb::Lift } else { Verb::Acknowledge };
        let mut target = Target::of(&grant).about(&alert.id);
        target.access.verb = verb;
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        self.app.store.record_security_action(now, &by, verb.code(), &alert.id, &why).await?;
        tracing::info!(alert = %alert.id, action = verb.code(), "security console: alert settled");
        Ok(())
    }

    /// Whether an alert's response can be undone.
    fn liftable(alert: &AlertRow) -> bool {
        matches!(
            Response::parse(&alert.response),
            Some(Response::SuspendSession | Response::SuspendClient | Response::LockAccount)
        )
    }

    async fn lift(&self, alert: &AlertRow) -> Result<(), AppError> {
        let subject = alert.subject.split_once(':').map_or(alert.subject.as_str(), |(_, id)| id);
        let grant = authz::console::manage_alerts();
        match Response::parse(&alert.response) {
            Some(Response::SuspendSession) => {
                let session: SessionId = subject.parse().map_err(|_| AppError::NotFound)?;
                self.app.store.set_session_suspended(&grant, session, None).await?;
            }
            Some(Response::SuspendClient) => {
                let client: ClientId = subject.parse().map_err(|_| AppError::NotFound)?;
                self.app.store.set_client_suspended(&grant, client, None).await?;
            }
            Some(Response::LockAccount) => {
                let account: AccountId = subject.parse().map_err(|_| AppError::NotFound)?;
                // Only a lock the detectors made: an account an operator disabled for another
                // reason stays disabled.
                let reason = self
                    .app
                    .store
                    .disabled_reason(&authz::console::manage_accounts(), account)
                    .await?
                    .unwrap_or_default();
                if !reason.starts_with(crate::detection::LOCK_REASON_START) {
                    return Ok(());
                }
                if self
                    .app
                    .store
                    .set_account_disabled(&authz::console::manage_accounts(), account, None, self.app.now())
                    .await?
                {
                    let target = Target::account(Verb::Enable, &account);
                    let caller = Caller::console(authz::Principal::Anonymous);
                    let mut event = self.app.event(&caller, &target, Outcome::Allowed);
                    event.on_behalf = Some(format!("security console: alert {}", alert.id));
                    self.app.audit(vec![event]).await?;
                }
            }
            _ => {
                return Err(AppError::Conflict(
                    "This alert's detector suspended nothing, so there is nothing to lift: acknowledge it instead."
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// Switches a module off (or on again) for one practice (`scope`: its id) or everyone (`*`).
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator; [`AppError::Invalid`] for an unknown
    /// module or practice, or without a reason; [`AppError::Conflict`] without a recent second
    /// factor, or when it is already so.
    pub async fn switch(
        &self,
        caller: &Caller,
        who: &SignedIn,
        module: &str,
        scope: &str,
        off: bool,
        why: &str,
    ) -> Result<(), AppError> {
        let grant = self.app.decide::<authz::SwitchModules>(caller, authz::Platform).await?;
        let module = Switchable::parse(module)
            .ok_or_else(|| AppError::field("module", "Choose a part of the portal to switch."))?;
        let scope = match scope.trim() {
            "" | "*" => "*".to_owned(),
            s => {
                let p: domain::PracticeId =
                    s.parse().map_err(|_| AppError::field("scope", "Choose a practice, or everyone."))?;
                if self.app.store.practice(p).await?.is_none() {
                    return Err(AppError::field("scope", "Choose a practice, or everyone."));
                }
                p.to_string()
            }
        };
        let why = reason(why)?;
        self.recent_factor(who)?;
        let now = self.app.now();
        let by = who.account.to_string();
        let changed = self
            .app
            .store
            .set_module_switch(&grant, module.as_str(), &scope, off.then_some((now, by.as_str(), why.as_str())))
            .await?;
        if !changed {
            return Err(AppError::Conflict(if off {
                "That is already switched off.".into()
            } else {
                "That is not switched off.".into()
            }));
        }
        self.app.forget_switches();
        let verb = if off { Verb::SwitchOff } else { Verb::SwitchOn };
        let mut target = Target::of(&grant).about(&format!("{}:{scope}", module.as_str()));
        target.access.verb = verb;
        if let Ok(p) = scope.parse::<domain::PracticeId>() {
            target.practice = Some(p);
        }
        self.app.audit(vec![self.app.event(caller, &target, Outcome::Allowed)]).await?;
        self.app
            .store
            .record_security_action(now, &by, verb.code(), &format!("{}:{scope}", module.as_str()), &why)
            .await?;
        tracing::warn!(module = module.as_str(), scope = %scope, off, "kill switch");
        Ok(())
    }

    /// The operators' recent security actions, with their reasons, newest first.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for anyone but an operator.
    pub async fn actions(&self, caller: &Caller) -> Result<Vec<SecurityAction>, AppError> {
        let _may = self.app.decide::<authz::ViewAlerts>(caller, authz::Platform).await?;
        Ok(self.app.store.security_actions(50).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_has_every_minute_and_counts_reads_and_refusals() {
        let e = |at_ms: i64, action: &str, outcome: &str| AuditEvent {
            id: String::new(),
            at_ms,
            actor_account: None,
            actor_role: "patient".into(),
            actor_practice: None,
            session: None,
            ip: String::new(),
            user_agent: String::new(),
            on_behalf: None,
            action: action.into(),
            object_type: "document".into(),
            object_id: String::new(),
            patient: None,
            practice: None,
            outcome: outcome.into(),
            request_id: String::new(),
            module: String::new(),
            format: 2,
        };
        let events = [
            e(60_000, "read", "allowed"),
            e(61_000, "read", "not_found"),
            e(119_999, "list", "allowed"),
            e(240_500, "read", "denied"),
            e(240_600, "update", "allowed"),
        ];
        let t = timeline(&events);
        assert_eq!(
            t,
            [
                Minute { at: 60, reads: 2, refused: 1 },
                Minute { at: 120, reads: 0, refused: 0 },
                Minute { at: 180, reads: 0, refused: 0 },
                Minute { at: 240, reads: 0, refused: 1 },
            ]
        );
        assert!(timeline(&[]).is_empty());
        assert!(reason("  ").is_err() && reason("checked with the GP").is_ok());
    }
}

//! Detection and containment (issue 17): detectors that read the access stream as it is written
//! — every event is written before anything is served — and contain what they catch at once.
//! Their picture is in the database (`DetectionStore::mark`), so every node sees the same
//! counts, and a session one node suspends is refused by every node at its next request.
//!
//! The rules so far (thresholds in `domain::detection::Thresholds`, defaults that ship):
//! - **Enumeration**: distinct ids one session is refused (not found or denied) in a window.
//!   At the threshold the session is suspended and a critical alert raised: a stolen password
//!   probing other patients' documents gets twenty wrong guesses, then nothing more.
//! - **Bulk document reads**: distinct patients whose documents one staff session opens in a
//!   window. At the threshold the session is suspended and a critical alert raised.

use crate::{App, AppError};
use domain::detection::{Response, Rule, Severity, Thresholds};
use domain::{AccountId, SessionId};
use std::collections::BTreeMap;
use store::{AuditEvent, NewAlert};

/// Whether a rule counts this event: a refusal of an id, or a member of staff opening a
/// document, in a session (console and system work has none).
pub(crate) fn counted(e: &AuditEvent) -> bool {
    e.session.is_some()
        && !e.actor_role.starts_with("console")
        && match e.outcome.as_str() {
            "not_found" | "denied" => !e.object_id.is_empty(),
            "allowed" => staff_document_read(e),
            _ => false,
        }
}

fn staff_document_read(e: &AuditEvent) -> bool {
    e.actor_role.starts_with("staff:") && e.object_type == "document" && e.action == "read" && e.patient.is_some()
}

/// What one session did in a batch of events, as the detectors count it.
#[derive(Debug, Default)]
struct Seen {
    account: Option<String>,
    /// Ids it was refused.
    misses: Vec<String>,
    /// Patients whose documents a member of staff opened.
    patients_read: Vec<String>,
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

    /// Runs the detectors over a request's events just written, and contains what they catch.
    ///
    /// # Errors
    /// [`AppError::Unauthenticated`] when the request's own session has just been suspended
    /// (what it asked for is not served); when storage fails (the request then fails too:
    /// detection is never skipped silently).
    pub(crate) async fn detect(&self, events: &[AuditEvent]) -> Result<(), AppError> {
        let t = self.detection_thresholds();
        if !t.on {
            return Ok(());
        }
        let mut by_session: BTreeMap<&str, Seen> = BTreeMap::new();
        for e in events.iter().filter(|e| counted(e)) {
            let Some(session) = e.session.as_deref() else { continue };
            let seen = by_session.entry(session).or_default();
            seen.account.clone_from(&e.actor_account);
            match (e.outcome.as_str(), &e.patient) {
                ("allowed", Some(p)) => seen.patients_read.push(p.clone()),
                _ => seen.misses.push(format!("{}:{}", e.object_type, e.object_id)),
            }
        }
        let mut suspended = false;
        for (session, seen) in by_session {
            let account = seen.account.as_deref();
            if !seen.misses.is_empty() {
                let window = (t.enumeration_misses, t.enumeration_window_secs);
                suspended |= self.count(Rule::Enumeration, session, account, &seen.misses, window).await?;
                // A stolen password signs in again: across the account's sessions, twice the
                // limit locks the account.
                if let Some(a) = account {
                    let window = (2 * t.enumeration_misses, t.enumeration_window_secs);
                    suspended |= self.count_account(a, &seen.misses, window).await?;
                }
            }
            if !seen.patients_read.is_empty() {
                let window = (t.bulk_patients, t.bulk_window_secs);
                suspended |= self.count(Rule::BulkDocumentReads, session, account, &seen.patients_read, window).await?;
            }
        }
        if suspended { Err(AppError::Unauthenticated) } else { Ok(()) }
    }

    /// Marks what a session touched under a rule; at the threshold, suspends the session and
    /// raises a critical alert (once per window). Whether it is suspended.
    async fn count(
        &self,
        rule: Rule,
        session: &str,
        account: Option<&str>,
        objects: &[String],
        (threshold, window_secs): (i64, i64),
    ) -> Result<bool, AppError> {
        let now = self.now();
        let window = Thresholds::window_start(now, window_secs);
        let n = self.store.mark(rule.as_str(), session, window, objects).await?;
        if n < threshold {
            return Ok(false);
        }
        // Suspended on every node: the session ends, and its next request (anywhere) is refused.
        if let (Ok(s), Some(Ok(a))) = (session.parse::<SessionId>(), account.map(str::parse::<AccountId>)) {
            self.store.end_session(a, s, now).await?;
        }
        let alert = NewAlert {
            id: uuid::Uuid::new_v4(),
            rule: rule.as_str().to_owned(),
            severity: Severity::Critical.as_str().to_owned(),
            subject: session.to_owned(),
            account: account.map(str::to_owned),
            response: Response::SuspendSession.as_str().to_owned(),
            seen: n,
            window_start: window,
            created_at: now,
        };
        if self.store.raise_alert(&alert).await? {
            metrics::counter!("tiaki_alerts_total", "rule" => rule.as_str(), "severity" => Severity::Critical.as_str())
                .increment(1);
            // Ids only: no name, no health data.
            tracing::warn!(rule = rule.as_str(), session, seen = n, "detection: session suspended");
        }
        Ok(true)
    }

    /// Marks what an account's sessions were refused; at the threshold, locks the account (every
    /// session ended, no sign-in until an operator enables it again), tells the holder and
    /// raises a critical alert (once per window). Whether it is locked. Operators' accounts are
    /// left to their sessions' suspension (the last operator must not lock the platform out).
    async fn count_account(
        &self,
        account: &str,
        objects: &[String],
        (threshold, window_secs): (i64, i64),
    ) -> Result<bool, AppError> {
        let now = self.now();
        let window = Thresholds::window_start(now, window_secs);
        let subject = format!("account:{account}");
        let n = self.store.mark(Rule::Enumeration.as_str(), &subject, window, objects).await?;
        if n < threshold {
            return Ok(false);
        }
        let Ok(id) = account.parse::<AccountId>() else { return Ok(false) };
        let Some(row) = self.store.account(id).await? else { return Ok(false) };
        if row.kind == domain::AccountKind::Operator || row.disabled_at.is_some() {
            return Ok(row.disabled_at.is_some());
        }
        let reason = "Locked automatically: it asked for many records it may not see (enumeration). Check with the \
                      holder, then enable it; they choose a new password.";
        if self.store.set_account_disabled(&authz::console::manage_accounts(), id, Some(reason), now).await? {
            let mut event = self.event(
                &crate::audit::Caller::console(authz::Principal::Anonymous),
                &crate::audit::Target::account(domain::Verb::Disable, &id),
                crate::audit::Outcome::Allowed,
            );
            event.on_behalf = Some("detection: enumeration".into());
            self.auditor.record(vec![event]).await?;
            self.notify(id, crate::notify::texts::Security::AccountLocked).await?;
        }
        let alert = NewAlert {
            id: uuid::Uuid::new_v4(),
            rule: Rule::Enumeration.as_str().to_owned(),
            severity: Severity::Critical.as_str().to_owned(),
            subject,
            account: Some(account.to_owned()),
            response: Response::LockAccount.as_str().to_owned(),
            seen: n,
            window_start: window,
            created_at: now,
        };
        if self.store.raise_alert(&alert).await? {
            metrics::counter!("tiaki_alerts_total", "rule" => Rule::Enumeration.as_str(), "severity" => Severity::Critical.as_str())
                .increment(1);
            tracing::warn!(rule = Rule::Enumeration.as_str(), account, seen = n, "detection: account locked");
        }
        Ok(true)
    }

    /// The newest alerts (for the security console and the tests).
    ///
    /// # Errors
    /// When storage fails.
    pub async fn recent_alerts(&self, limit: i64) -> Result<Vec<store::AlertRow>, AppError> {
        Ok(self.store.alerts(limit).await?)
    }
}

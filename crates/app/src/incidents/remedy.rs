//! Doing something about an incident: what is being done and when the Commissioner was told
//! (both go into every notice), and remediation for a chosen set of people or systems.

use super::{Incidents, Lead, notice_text, text};
use crate::AppError;
use domain::{ObjectKind, Verb};

/// What a remediation is done to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    /// Every patient confirmed in the latest revision.
    Confirmed,
    /// Every patient possibly affected.
    Possible,
    /// Both.
    Affected,
    /// The indicators' own accounts, sessions and systems.
    Indicators,
}

impl Set {
    /// Parses `confirmed`, `possible`, `affected`, `indicators`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(s: &str) -> Result<Self, AppError> {
        match s.trim() {
            "confirmed" => Ok(Self::Confirmed),
            "possible" => Ok(Self::Possible),
            "affected" => Ok(Self::Affected),
            "indicators" => Ok(Self::Indicators),
            _ => Err(AppError::field("set", "Choose confirmed, possible, affected or indicators.")),
        }
    }

    const fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Possible => "possible",
            Self::Affected => "affected",
            Self::Indicators => "indicators",
        }
    }
}

/// A remediation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remedy {
    /// End every session of the set's accounts (and the indicator sessions).
    EndSessions,
    /// Require a new password at the next sign-in.
    RequireNewPassword,
    /// Require a second factor from the next sign-in on (set one up, or use the one they have).
    RequireSecondFactor,
    /// Suspend the indicator systems (API clients).
    SuspendClients,
    /// Switch a module off for everyone (the kill switch).
    SwitchOff(domain::detection::Switchable),
}

impl Remedy {
    /// Parses `end_sessions`, `require_new_password`, `require_second_factor`, `suspend_clients`,
    /// `switch_off:documents`,
    /// `switch_off:records`.
    ///
    /// # Errors
    /// Anything else.
    pub fn parse(s: &str) -> Result<Self, AppError> {
        match s.trim() {
            "end_sessions" => Ok(Self::EndSessions),
            "require_new_password" => Ok(Self::RequireNewPassword),
            "require_second_factor" => Ok(Self::RequireSecondFactor),
            "suspend_clients" => Ok(Self::SuspendClients),
            other => other
                .strip_prefix("switch_off:")
                .and_then(domain::detection::Switchable::parse)
                .map(Self::SwitchOff)
                .ok_or_else(|| {
                    AppError::field(
                        "action",
                        "Choose end_sessions, require_new_password, require_second_factor, suspend_clients, \
                         switch_off:documents or switch_off:records.",
                    )
                }),
        }
    }

    fn code(&self) -> String {
        match self {
            Self::EndSessions => "end_sessions".into(),
            Self::RequireNewPassword => "require_new_password".into(),
            Self::RequireSecondFactor => "require_second_factor".into(),
            Self::SuspendClients => "suspend_clients".into(),
            Self::SwitchOff(m) => format!("switch_off:{}", m.as_str()),
        }
    }
}

impl Incidents<'_> {
    /// Sets what is being done, when the Privacy Commissioner was told, and closes or reopens.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such incident; [`AppError::Invalid`] for a bad text or time.
    pub async fn set_details(
        &self,
        lead: &Lead,
        id: &str,
        steps_taken: &str,
        commissioner_told_at: Option<i64>,
        closed: bool,
    ) -> Result<(), AppError> {
        let row = self.row(id).await?;
        let steps = notice_text(
            "steps_taken",
            steps_taken,
            20,
            2_000,
            "Say what is being done about it, as the notices will say it",
        )?;
        let now = self.app.now();
        if commissioner_told_at.is_some_and(|t| t <= 0 || t > now + 300) {
            return Err(AppError::field(
                "commissioner_told_at",
                "Give when the Commissioner was told (not in the future).",
            ));
        }
        let closed_at = if closed { row.closed_at.or(Some(now)) } else { None };
        self.app.store.update_incident(&lead.grant, id, &steps, commissioner_told_at, closed_at).await?;
        self.event(lead, ObjectKind::Incident, Verb::Update, id).await?;
        if commissioner_told_at.is_some() && row.commissioner_told_at != commissioner_told_at {
            self.note(lead, id, "commissioner_told", "Office of the Privacy Commissioner", 0, "recorded").await;
        }
        Ok(())
    }

    /// Does something about an incident to a set of people or systems; how many it touched.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for no such incident; [`AppError::Invalid`] without a reason;
    /// storage errors.
    pub async fn remediate(
        &self,
        lead: &Lead,
        id: &str,
        set: Set,
        remedy: &Remedy,
        reason: &str,
    ) -> Result<usize, AppError> {
        let _incident = self.row(id).await?;
        let reason = text("reason", reason, 3, 500, "Say why: it is kept with the incident")?;
        let revision = self.latest(id).await?;
        let now = self.app.now();
        // The accounts of the set.
        let accounts: Vec<domain::AccountId> = if set == Set::Indicators {
            revision.indicators.accounts.iter().filter_map(|a| a.parse().ok()).collect()
        } else {
            let wanted: &[&str] = match set {
                Set::Confirmed => &["confirmed"],
                Set::Possible => &["possible"],
                _ => &["confirmed", "possible"],
            };
            let patients: Vec<String> = self
                .app
                .store
                .scope_patients(id, revision.number)
                .await?
                .into_iter()
                .filter(|p| wanted.contains(&p.class.as_str()))
                .map(|p| p.patient_id)
                .collect();
            self.app.store.contacts(&patients).await?.into_iter().filter_map(|c| c.account_id.parse().ok()).collect()
        };
        let mut touched = 0usize;
        match remedy {
            Remedy::EndSessions => {
                for a in &accounts {
                    touched += usize::try_from(self.app.store.end_other_sessions(*a, None, now).await?).unwrap_or(0);
                }
                if set == Set::Indicators {
                    let grant = authz::console::manage_alerts();
                    for s in &revision.indicators.sessions {
                        if let Ok(session) = s.parse::<domain::SessionId>()
                            && self.app.store.set_session_suspended(&grant, session, Some(now)).await?
                        {
                            touched += 1;
                        }
                    }
                }
            }
            Remedy::RequireNewPassword => {
                for a in &accounts {
                    self.app.store.mark_password_breached(*a, now).await?;
                    self.app.store.end_other_sessions(*a, None, now).await?;
                    touched += 1;
                }
            }
            Remedy::RequireSecondFactor => {
                // Their sessions end too, so "next sign-in" is the very next request.
                for a in &accounts {
                    self.app.store.require_second_factor(*a, now).await?;
                    self.app.store.end_other_sessions(*a, None, now).await?;
                    touched += 1;
                }
            }
            Remedy::SuspendClients => {
                let grant = authz::console::manage_alerts();
                for c in &revision.indicators.clients {
                    if let Ok(client) = c.parse::<domain::ClientId>()
                        && self.app.store.set_client_suspended(&grant, client, Some(now)).await?
                    {
                        touched += 1;
                    }
                }
            }
            Remedy::SwitchOff(module) => {
                let by = lead.by.clone();
                let why = format!("incident {id}: {reason}");
                if self
                    .app
                    .store
                    .set_module_switch(&authz::console::switch_modules(), module.as_str(), "*", Some((now, &by, &why)))
                    .await?
                {
                    touched = 1;
                }
                self.app.forget_switches();
            }
        }
        self.event(lead, ObjectKind::Incident, Verb::Remediate, id).await?;
        self.note(lead, id, &remedy.code(), set.as_str(), touched, &reason).await;
        Ok(touched)
    }
}

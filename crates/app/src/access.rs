//! Asking the policy and recording the answer: every grant (and every refusal) becomes an access
//! event in the typed vocabulary — module, object kind, verb — derived from the grant, written
//! before anything is served.

use crate::caller::Caller;
use crate::{App, AppError};
use authz::{Action, Grant, Policy, Principal, Subject};
use domain::{Access, Module, ObjectKind, PatientId, PracticeId, Verb};
use store::AuditEvent;

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

    /// The same access, filed under a patient (a practice-wide listing that showed theirs).
    pub(crate) fn with_patient(self, patient: PatientId) -> Self {
        Self { patient: Some(patient), ..self }
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

fn role_of(p: &Principal) -> (Option<String>, String, Option<String>, Option<String>) {
    match p {
        Principal::Anonymous => (None, "anonymous".into(), None, None),
        Principal::Patient { account, session, .. } => {
            (Some(account.to_string()), "patient".into(), None, Some(session.to_string()))
        }
        // Someone who acts for patients but is, right now, acting for nobody.
        Principal::Person { account, session } => {
            (Some(account.to_string()), "person".into(), None, Some(session.to_string()))
        }
        // Someone acting for a patient: their own account, in the role the link gives them.
        Principal::Proxy { account, session, relationship, .. } => {
            (Some(account.to_string()), format!("proxy:{}", relationship.as_str()), None, Some(session.to_string()))
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
        Principal::Client { client, org_id, practice, .. } => {
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
            // Every access by a proxy names, on whose behalf, the proxy's account and the patient.
            on_behalf: match &caller.principal {
                Principal::Proxy { account, patient, .. } => Some(format!("proxy {account} for patient {patient}")),
                _ => None,
            },
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
}

//! Facts about relationships the policy needs (enrolments, who owns a document, agreements),
//! loaded from storage; and, for the access log, where an object the policy refused lives.

use domain::proxies::ProxyTerms;
use domain::{
    AccountId, AppointmentId, BoxFuture, DocumentId, PatientId, PracticeId, ProxyId, RecordId, RepeatRequestId,
    ThreadId,
};
use std::fmt;

/// Facts about relationships that the policy needs, loaded from storage.
pub trait Relations: Send + Sync {
    /// The practices at which the patient is currently enrolled; empty if there is no such patient.
    fn patient_practices(&self, patient: PatientId) -> BoxFuture<'_, Result<Vec<PracticeId>, RelationsError>>;
    /// Whether the practice exists.
    fn practice_exists(&self, practice: PracticeId) -> BoxFuture<'_, Result<bool, RelationsError>>;
    /// Whose a live (not deleted or withdrawn) document is: its patient and the practice that
    /// pushed it, if one did. `None` if there is no such document.
    fn document_owner(&self, document: DocumentId) -> BoxFuture<'_, Result<Option<DocumentOwner>, RelationsError>>;
    /// The practices that have agreed to receive documents from an organisation.
    fn receiving_practices<'a>(&'a self, org_id: &'a str) -> BoxFuture<'a, Result<Vec<PracticeId>, RelationsError>>;
    /// Whose an item of a health record is (removed ones too: the practice keeps them): its
    /// patient and the practice that sent it. `None` if there is no such item.
    fn record_owner(&self, record: RecordId) -> BoxFuture<'_, Result<Option<RecordOwner>, RelationsError>>;
    /// Whose an appointment is: its patient and the practice whose book it is in.
    fn appointment_owner(&self, id: AppointmentId) -> BoxFuture<'_, Result<Option<RecordOwner>, RelationsError>>;
    /// Whose a repeat-prescription request is: its patient and the practice it was sent to.
    fn repeat_request_owner(&self, id: RepeatRequestId) -> BoxFuture<'_, Result<Option<RecordOwner>, RelationsError>>;
    /// The open (not revoked) proxy links by which `account` may act for `patient`, with the
    /// terms that decide whether each is live — the age rule worked out from the patient's
    /// date of birth and the practice's current cut-off — for links whose practice the
    /// patient is still enrolled at. Empty when there are none.
    fn proxy_terms(
        &self,
        account: AccountId,
        patient: PatientId,
    ) -> BoxFuture<'_, Result<Vec<ProxyTerms>, RelationsError>>;
    /// Whose a proxy link (revoked ones too) is: its patient, the practice that set it up, and
    /// the proxy's account.
    fn proxy_owner(&self, id: ProxyId) -> BoxFuture<'_, Result<Option<ProxyOwner>, RelationsError>>;
    /// Whose a conversation is: its patient and the practice it is with.
    fn thread_owner(&self, id: ThreadId) -> BoxFuture<'_, Result<Option<RecordOwner>, RelationsError>>;
}

/// Whose a proxy link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyOwner {
    /// The patient the proxy acts for.
    pub patient: PatientId,
    /// The practice that set it up.
    pub practice: PracticeId,
    /// The proxy's account.
    pub proxy: AccountId,
}

/// Whose an item of a health record (an appointment, a repeat request) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordOwner {
    /// The patient it is about.
    pub patient: PatientId,
    /// The practice whose system sent it.
    pub practice: PracticeId,
}

/// Whose a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentOwner {
    /// The patient it is about.
    pub patient: PatientId,
    /// The practice that pushed it (through its staff or its API client), if one did.
    pub pushed_by_practice: Option<PracticeId>,
    /// The patient hid it from their list, and so from everyone who acts for them.
    pub hidden_by_patient: bool,
    /// The practice of a conversation it is attached to (the patient sent it with a message),
    /// whose clinicians may read it.
    pub attached_for: Option<PracticeId>,
}

/// Storage could not answer a relationship question.
#[derive(Debug, thiserror::Error)]
#[error("relationship lookup failed: {0}")]
pub struct RelationsError(pub String);

/// The whole platform, as an object (for operator actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform;

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("platform")
    }
}

/// Where an object lives, as the access log records it: whether it exists, and the patient and
/// practice it belongs to. Never shown to the person asking (they get 404 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Located {
    /// Whether there is such an object ("denied" rather than "not found").
    pub exists: bool,
    /// The patient it belongs to.
    pub patient: Option<PatientId>,
    /// The practice it belongs to.
    pub practice: Option<PracticeId>,
}

/// What an action can be on: an id the access log can name, and the patient or practice it
/// belongs to. Implemented here for each kind of object.
pub trait Subject: Copy + fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// The patient this object is, when it is one.
    fn as_patient(&self) -> Option<PatientId> {
        None
    }
    /// The practice this object is, when it is one.
    fn as_practice(&self) -> Option<PracticeId> {
        None
    }
    /// Where the object lives (for the event of a refusal).
    fn locate<'a, R: Relations + ?Sized>(
        &'a self,
        rel: &'a R,
    ) -> impl std::future::Future<Output = Result<Located, RelationsError>> + Send + 'a;
}

impl Subject for PatientId {
    fn as_patient(&self) -> Option<PatientId> {
        Some(*self)
    }
    async fn locate<R: Relations + ?Sized>(&self, rel: &R) -> Result<Located, RelationsError> {
        let exists = !rel.patient_practices(*self).await?.is_empty();
        Ok(Located { exists, patient: exists.then_some(*self), practice: None })
    }
}

impl Subject for PracticeId {
    fn as_practice(&self) -> Option<PracticeId> {
        Some(*self)
    }
    async fn locate<R: Relations + ?Sized>(&self, rel: &R) -> Result<Located, RelationsError> {
        let exists = rel.practice_exists(*self).await?;
        Ok(Located { exists, patient: None, practice: exists.then_some(*self) })
    }
}

impl Subject for DocumentId {
    async fn locate<R: Relations + ?Sized>(&self, rel: &R) -> Result<Located, RelationsError> {
        Ok(rel.document_owner(*self).await?.map_or_else(Located::default, |o| Located {
            exists: true,
            patient: Some(o.patient),
            practice: o.pushed_by_practice,
        }))
    }
}

impl Subject for RecordId {
    async fn locate<R: Relations + ?Sized>(&self, rel: &R) -> Result<Located, RelationsError> {
        Ok(rel.record_owner(*self).await?.map_or_else(Located::default, |o| Located {
            exists: true,
            patient: Some(o.patient),
            practice: Some(o.practice),
        }))
    }
}

impl Subject for AppointmentId {
    async fn locate<R: Relations + ?Sized>(&self, rel: &R) -> Result<Located, RelationsError> {
        Ok(rel.appointment_owner(*self).await?.map_or_else(Located::default, |o| Located {
            exists: true,
            patient: Some(o.patient),
            practice: Some(o.practice),
        }))
    }
}

impl Subject for RepeatRequestId {
    async fn locate<R: Relations + ?Sized>(&self, rel: &R) -> Result<Located, RelationsError> {
        Ok(rel.repeat_request_owner(*self).await?.map_or_else(Located::default, |o| Located {
            exists: true,
            patient: Some(o.patient),
            practice: Some(o.practice),
        }))
    }
}

impl Subject for ProxyId {
    async fn locate<R: Relations + ?Sized>(&self, rel: &R) -> Result<Located, RelationsError> {
        Ok(rel.proxy_owner(*self).await?.map_or_else(Located::default, |o| Located {
            exists: true,
            patient: Some(o.patient),
            practice: Some(o.practice),
        }))
    }
}

impl Subject for ThreadId {
    async fn locate<R: Relations + ?Sized>(&self, rel: &R) -> Result<Located, RelationsError> {
        Ok(rel.thread_owner(*self).await?.map_or_else(Located::default, |o| Located {
            exists: true,
            patient: Some(o.patient),
            practice: Some(o.practice),
        }))
    }
}

impl Subject for Platform {
    async fn locate<R: Relations + ?Sized>(&self, _rel: &R) -> Result<Located, RelationsError> {
        Ok(Located { exists: true, patient: None, practice: None })
    }
}

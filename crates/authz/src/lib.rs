//! Authorisation by construction (DESIGN §4): `authorize(principal, object)` is the only way to
//! make a [`Grant`], and storage functions that touch patient or practice data take a grant, never a
//! bare id. Everything not explicitly allowed here is denied, and a denial looks exactly like "not
//! found" to the caller.

use domain::{AccountId, BoxFuture, ClientId, DocumentId, PatientId, PracticeId, SessionId, StaffRole};
use std::fmt;
use std::marker::PhantomData;

/// Who is asking. Built by the application from a verified session, never from request input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Not signed in.
    Anonymous,
    /// A patient, acting for themself.
    Patient {
        /// Their account.
        account: AccountId,
        /// The session the request came with.
        session: SessionId,
        /// The patient record the account is linked to.
        patient: PatientId,
    },
    /// A member of one practice's staff.
    Staff {
        /// Their account.
        account: AccountId,
        /// The session the request came with.
        session: SessionId,
        /// The practice they belong to.
        practice: PracticeId,
        /// Their role there.
        role: StaffRole,
    },
    /// A platform operator. Operators run practices and accounts; they see no patient data
    /// (break-glass comes with its own issue and is always reasoned, time-limited and audited).
    Operator {
        /// Their account.
        account: AccountId,
        /// The session the request came with.
        session: SessionId,
    },
    /// An organisation's system pushing documents with API-client credentials.
    Client {
        /// The client.
        client: ClientId,
        /// The organisation it acts for (its HPI id).
        org_id: String,
        /// For a practice's own client, the practice; `None` for other organisations
        /// (hospitals), which reach only the patients of practices that agreed to receive
        /// their documents.
        practice: Option<PracticeId>,
    },
}

impl Principal {
    /// The signed-in account, if any.
    #[must_use]
    pub const fn account(&self) -> Option<AccountId> {
        match self {
            Self::Anonymous | Self::Client { .. } => None,
            Self::Patient { account, .. } | Self::Staff { account, .. } | Self::Operator { account, .. } => {
                Some(*account)
            }
        }
    }
}

/// Least privilege inside a practice: which staff roles may do what. The policies below use
/// these lists, and the pages use the same ones (through the application) to decide which
/// buttons and links to show, so a button never promises what the policy refuses. The table in
/// ARCHITECTURE.md ("Who may do what inside a practice") gives the reason for each row.
pub mod capabilities {
    use domain::StaffRole;

    /// Read clinical content (download a letter the practice sent): clinical roles only.
    pub const READ_CLINICAL_CONTENT: &[StaffRole] = &[StaffRole::Gp, StaffRole::Nurse];
    /// Withdraw a letter the practice sent: a clinical decision, so clinical roles only.
    pub const WITHDRAW_DOCUMENT: &[StaffRole] = &[StaffRole::Gp, StaffRole::Nurse];
    /// List a patient's documents from the practice (metadata: category, title, dates), to
    /// file and route them: clinical roles and reception.
    pub const LIST_DOCUMENTS: &[StaffRole] = &[StaffRole::Gp, StaffRole::Nurse, StaffRole::Admin];
    /// See who accessed a patient's information: the privacy officer.
    pub const VIEW_ACCESS_HISTORY: &[StaffRole] = &[StaffRole::PrivacyOfficer];
    /// Enrol patients.
    pub const ENROL_PATIENTS: &[StaffRole] = &[StaffRole::Admin, StaffRole::Gp, StaffRole::Nurse];
    /// Invite staff and change the practice's settings.
    pub const MANAGE_PRACTICE: &[StaffRole] = &[StaffRole::Admin];

    /// Whether `role` is in `allowed`.
    #[must_use]
    pub fn may(role: StaffRole, allowed: &[StaffRole]) -> bool {
        allowed.contains(&role)
    }
}

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
}

/// Whose a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentOwner {
    /// The patient it is about.
    pub patient: PatientId,
    /// The practice that pushed it (through its staff or its API client), if one did.
    pub pushed_by_practice: Option<PracticeId>,
}

/// Storage could not answer a relationship question.
#[derive(Debug, thiserror::Error)]
#[error("relationship lookup failed: {0}")]
pub struct RelationsError(pub String);

/// Why no grant was made.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    /// Not allowed, or no such object: callers must not be able to tell which (404).
    #[error("not found")]
    NotFound,
    /// The relationships could not be loaded; nothing is allowed while they can't be.
    #[error(transparent)]
    Unavailable(#[from] RelationsError),
}

mod sealed {
    pub trait Sealed {}
}

/// Something a principal may do to one object. Only this crate defines actions.
pub trait Action: sealed::Sealed + Send + Sync + 'static {
    /// The id of the object the action is on.
    type Object: Copy + fmt::Debug + Send + Sync;
    /// The action's name, as audited.
    const NAME: &'static str;
}

/// Proof that `authorize` allowed an action on one object. Only this crate can make one; it
/// carries the object's id and, when the object belongs to a patient, that patient.
#[must_use]
pub struct Grant<A: Action> {
    object: A::Object,
    patient: Option<PatientId>,
    actor: Option<AccountId>,
    via_practice: Option<PracticeId>,
    _action: PhantomData<A>,
}

impl<A: Action> Grant<A> {
    const fn new(object: A::Object, patient: Option<PatientId>, actor: Option<AccountId>) -> Self {
        Self { object, patient, actor, via_practice: None, _action: PhantomData }
    }

    /// A grant that holds because of the actor's practice (staff reaching a patient through
    /// their enrolment there); storage repeats that relationship in its SQL.
    const fn through(mut self, practice: PracticeId) -> Self {
        self.via_practice = Some(practice);
        self
    }

    /// The practice whose relationship with the patient the grant rests on, for staff.
    pub const fn via_practice(&self) -> Option<PracticeId> {
        self.via_practice
    }
    /// The object the grant is for.
    pub const fn object(&self) -> A::Object {
        self.object
    }
    /// The patient the object belongs to, when it belongs to one.
    pub const fn patient(&self) -> Option<PatientId> {
        self.patient
    }
    /// The account the grant was made for.
    pub const fn actor(&self) -> Option<AccountId> {
        self.actor
    }
}

impl<A: Action> fmt::Debug for Grant<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Grant<{}>({:?})", A::NAME, self.object)
    }
}

macro_rules! action {
    ($(#[$doc:meta])* $name:ident, $object:ty, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}
        impl sealed::Sealed for $name {}
        impl Action for $name {
            type Object = $object;
            const NAME: &'static str = $label;
        }
    };
}

/// The whole platform, as an object (for operator actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform;

action!(
    /// Read a patient's record (profile and, later, the modules' data).
    ViewPatient, PatientId, "patient.view"
);
action!(
    /// List the patients enrolled at a practice.
    ListPracticePatients, PracticeId, "practice.patients.list"
);
action!(
    /// Enrol a patient at a practice.
    EnrolPatient, PracticeId, "practice.patients.enrol"
);
action!(
    /// See and invite a practice's staff.
    ManageStaff, PracticeId, "practice.staff.manage"
);
action!(
    /// Create and list practices.
    ManagePractices, Platform, "platform.practices.manage"
);
action!(
    /// See who has accessed a patient's information.
    ViewAccessHistory, PatientId, "patient.access_history.view"
);
action!(
    /// Export the access log for a time range (as FHIR `AuditEvent` resources).
    ExportAudit, Platform, "platform.audit.export"
);
action!(
    /// Invite other operators.
    ManageOperators, Platform, "platform.operators.manage"
);

action!(
    /// List a patient's documents (a patient: all of theirs; staff: those their practice pushed).
    ListDocuments, PatientId, "patient.documents.list"
);
action!(
    /// Upload a document of one's own.
    UploadDocument, PatientId, "patient.documents.upload"
);
action!(
    /// Read (download) one document.
    ReadDocument, DocumentId, "document.read"
);
action!(
    /// Rename, hide or delete one's own document.
    ChangeDocument, DocumentId, "document.change"
);
action!(
    /// Withdraw a document one's practice pushed.
    WithdrawDocument, DocumentId, "document.withdraw"
);
action!(
    /// Push a document in for a patient, as an organisation's system.
    PushDocument, PatientId, "patient.documents.push"
);

/// The policy for one action. Implemented only here.
pub trait Policy: Action {
    /// Decides; denies by default.
    fn decide<'a, R: Relations + ?Sized>(
        principal: &'a Principal,
        object: Self::Object,
        relations: &'a R,
    ) -> impl std::future::Future<Output = Result<Grant<Self>, Denied>> + Send + 'a
    where
        Self: Sized;
}

/// The one entry point: may `principal` do `A` to `object`?
///
/// # Errors
/// [`Denied::NotFound`] when not allowed (or the object does not exist), [`Denied::Unavailable`]
/// when the relationships could not be loaded.
pub async fn authorize<A: Policy, R: Relations + ?Sized>(
    principal: &Principal,
    object: A::Object,
    relations: &R,
) -> Result<Grant<A>, Denied> {
    A::decide(principal, object, relations).await
}

/// The patient themself, or staff of a practice they are enrolled at (the grant names it).
async fn patient_or_their_practice<A: Action<Object = PatientId>, R: Relations + ?Sized>(
    p: &Principal,
    patient: PatientId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Patient { patient: own, account, .. } if *own == patient => {
            Ok(Grant::new(patient, Some(patient), Some(*account)))
        }
        Principal::Staff { practice, account, .. } => {
            if rel.patient_practices(patient).await?.contains(practice) {
                Ok(Grant::new(patient, Some(patient), Some(*account)).through(*practice))
            } else {
                Err(Denied::NotFound)
            }
        }
        _ => Err(Denied::NotFound),
    }
}

impl Policy for ViewPatient {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        patient_or_their_practice(p, patient, rel).await
    }
}

async fn own_practice<A: Action<Object = PracticeId>, R: Relations + ?Sized>(
    p: &Principal,
    practice: PracticeId,
    rel: &R,
    roles: &[StaffRole],
) -> Result<Grant<A>, Denied> {
    match p {
        Principal::Staff { practice: own, role, account, .. } if *own == practice && roles.contains(role) => {
            if rel.practice_exists(practice).await? {
                Ok(Grant::new(practice, None, Some(*account)))
            } else {
                Err(Denied::NotFound)
            }
        }
        _ => Err(Denied::NotFound),
    }
}

impl Policy for ListPracticePatients {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, &StaffRole::ALL).await
    }
}

impl Policy for EnrolPatient {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        own_practice(p, practice, rel, capabilities::ENROL_PATIENTS).await
    }
}

impl Policy for ManageStaff {
    async fn decide<R: Relations + ?Sized>(
        p: &Principal,
        practice: PracticeId,
        rel: &R,
    ) -> Result<Grant<Self>, Denied> {
        if let Principal::Operator { account, .. } = p {
            // Operators set up a practice's first admin.
            return if rel.practice_exists(practice).await? {
                Ok(Grant::new(practice, None, Some(*account)))
            } else {
                Err(Denied::NotFound)
            };
        }
        own_practice(p, practice, rel, capabilities::MANAGE_PRACTICE).await
    }
}

impl Policy for ManagePractices {
    async fn decide<R: Relations + ?Sized>(p: &Principal, platform: Platform, _rel: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Operator { account, .. } => Ok(Grant::new(platform, None, Some(*account))),
            _ => Err(Denied::NotFound),
        }
    }
}

impl Policy for ViewAccessHistory {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Patient { patient: own, account, .. } if *own == patient => {
                Ok(Grant::new(patient, Some(patient), Some(*account)))
            }
            // A practice's privacy officer answers its patients' questions about access.
            Principal::Staff { practice, account, role, .. }
                if capabilities::may(*role, capabilities::VIEW_ACCESS_HISTORY) =>
            {
                if rel.patient_practices(patient).await?.contains(practice) {
                    Ok(Grant::new(patient, Some(patient), Some(*account)))
                } else {
                    Err(Denied::NotFound)
                }
            }
            _ => Err(Denied::NotFound),
        }
    }
}

impl Policy for ExportAudit {
    async fn decide<R: Relations + ?Sized>(p: &Principal, platform: Platform, _rel: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Operator { account, .. } => Ok(Grant::new(platform, None, Some(*account))),
            _ => Err(Denied::NotFound),
        }
    }
}

impl Policy for ManageOperators {
    async fn decide<R: Relations + ?Sized>(p: &Principal, platform: Platform, _rel: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Operator { account, .. } => Ok(Grant::new(platform, None, Some(*account))),
            _ => Err(Denied::NotFound),
        }
    }
}

impl Policy for ListDocuments {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Staff { role, .. } if !capabilities::may(*role, capabilities::LIST_DOCUMENTS) => {
                Err(Denied::NotFound)
            }
            _ => patient_or_their_practice(p, patient, rel).await,
        }
    }
}

impl Policy for UploadDocument {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, _r: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Patient { patient: own, account, .. } if *own == patient => {
                Ok(Grant::new(patient, Some(patient), Some(*account)))
            }
            _ => Err(Denied::NotFound),
        }
    }
}

/// The owner of a live document, when the principal is that patient.
async fn own_document<A: Action<Object = DocumentId>, R: Relations + ?Sized>(
    p: &Principal,
    doc: DocumentId,
    rel: &R,
) -> Result<Grant<A>, Denied> {
    if let Principal::Patient { patient: own, account, .. } = p
        && let Some(owner) = rel.document_owner(doc).await?
        && owner.patient == *own
    {
        return Ok(Grant::new(doc, Some(owner.patient), Some(*account)));
    }
    Err(Denied::NotFound)
}

/// A document the staff member's practice pushed, for a patient still enrolled there.
async fn pushed_by_own_practice<A: Action<Object = DocumentId>, R: Relations + ?Sized>(
    p: &Principal,
    doc: DocumentId,
    rel: &R,
    roles: &[StaffRole],
) -> Result<Grant<A>, Denied> {
    if let Principal::Staff { practice, account, role, .. } = p
        && roles.contains(role)
        && let Some(owner) = rel.document_owner(doc).await?
        && owner.pushed_by_practice == Some(*practice)
        && rel.patient_practices(owner.patient).await?.contains(practice)
    {
        return Ok(Grant::new(doc, Some(owner.patient), Some(*account)).through(*practice));
    }
    Err(Denied::NotFound)
}

impl Policy for ReadDocument {
    async fn decide<R: Relations + ?Sized>(p: &Principal, doc: DocumentId, rel: &R) -> Result<Grant<Self>, Denied> {
        match p {
            Principal::Patient { .. } => own_document(p, doc, rel).await,
            Principal::Staff { .. } => pushed_by_own_practice(p, doc, rel, capabilities::READ_CLINICAL_CONTENT).await,
            _ => Err(Denied::NotFound),
        }
    }
}

impl Policy for ChangeDocument {
    async fn decide<R: Relations + ?Sized>(p: &Principal, doc: DocumentId, rel: &R) -> Result<Grant<Self>, Denied> {
        own_document(p, doc, rel).await
    }
}

impl Policy for WithdrawDocument {
    async fn decide<R: Relations + ?Sized>(p: &Principal, doc: DocumentId, rel: &R) -> Result<Grant<Self>, Denied> {
        pushed_by_own_practice(p, doc, rel, capabilities::WITHDRAW_DOCUMENT).await
    }
}

impl Policy for PushDocument {
    async fn decide<R: Relations + ?Sized>(p: &Principal, patient: PatientId, rel: &R) -> Result<Grant<Self>, Denied> {
        let Principal::Client { org_id, practice, .. } = p else {
            return Err(Denied::NotFound);
        };
        let enrolled = rel.patient_practices(patient).await?;
        // A practice's client reaches its own enrolled patients; another organisation's, the
        // patients of practices that agreed to receive from it. The grant names the practice.
        let via = match practice {
            Some(own) => enrolled.contains(own).then_some(*own),
            None => rel.receiving_practices(org_id).await?.into_iter().find(|pr| enrolled.contains(pr)),
        };
        via.map(|pr| Grant::new(patient, Some(patient), None).through(pr)).ok_or(Denied::NotFound)
    }
}

/// Grants for work the system does on its own behalf from the command line (`tiaki admin`,
/// `tiaki demo`): a person at the server's console with access to its data folder is already
/// beyond any check this crate could make. Never reachable from a request.
pub mod console {
    use super::{ExportAudit, Grant, ManageOperators, ManagePractices, ManageStaff, Platform};
    use domain::PracticeId;

    /// The console may manage practices.
    pub const fn manage_practices() -> Grant<ManagePractices> {
        Grant::new(Platform, None, None)
    }
    /// The console may export the access log.
    pub const fn export_audit() -> Grant<ExportAudit> {
        Grant::new(Platform, None, None)
    }
    /// The console may invite operators.
    pub const fn manage_operators() -> Grant<ManageOperators> {
        Grant::new(Platform, None, None)
    }
    /// The console may manage a practice's staff (the caller has checked the practice exists).
    pub const fn manage_staff(practice: PracticeId) -> Grant<ManageStaff> {
        Grant::new(practice, None, None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Default)]
    struct Fixed {
        enrolled: Vec<(PatientId, PracticeId)>,
        practices: Vec<PracticeId>,
        documents: Vec<(DocumentId, DocumentOwner)>,
        agreements: Vec<(String, PracticeId)>,
    }

    impl Relations for Fixed {
        fn patient_practices(&self, patient: PatientId) -> BoxFuture<'_, Result<Vec<PracticeId>, RelationsError>> {
            let v = self.enrolled.iter().filter(|(p, _)| *p == patient).map(|(_, pr)| *pr).collect();
            Box::pin(async move { Ok(v) })
        }
        fn practice_exists(&self, practice: PracticeId) -> BoxFuture<'_, Result<bool, RelationsError>> {
            let v = self.practices.contains(&practice);
            Box::pin(async move { Ok(v) })
        }
        fn document_owner(&self, document: DocumentId) -> BoxFuture<'_, Result<Option<DocumentOwner>, RelationsError>> {
            let v = self.documents.iter().find(|(d, _)| *d == document).map(|(_, o)| *o);
            Box::pin(async move { Ok(v) })
        }
        fn receiving_practices<'a>(&'a self, org: &'a str) -> BoxFuture<'a, Result<Vec<PracticeId>, RelationsError>> {
            let v = self.agreements.iter().filter(|(o, _)| o == org).map(|(_, p)| *p).collect();
            Box::pin(async move { Ok(v) })
        }
    }

    #[tokio::test]
    async fn documents_reach_their_patient_the_pushing_practice_and_scoped_clients_only() {
        let (p1, p2) = (PatientId::random(), PatientId::random());
        let (a, b) = (PracticeId::random(), PracticeId::random());
        let (upload, letter) = (DocumentId::random(), DocumentId::random());
        let rel = Fixed {
            enrolled: vec![(p1, a), (p2, b)],
            practices: vec![a, b],
            documents: vec![
                (upload, DocumentOwner { patient: p1, pushed_by_practice: None }),
                (letter, DocumentOwner { patient: p1, pushed_by_practice: Some(a) }),
            ],
            agreements: vec![("G00001-A".into(), b)],
        };
        let patient =
            |patient| Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient };
        let staff = |practice, role| Principal::Staff {
            account: AccountId::random(),
            session: SessionId::random(),
            practice,
            role,
        };
        assert!(authorize::<ReadDocument, _>(&patient(p1), upload, &rel).await.is_ok());
        assert!(authorize::<ReadDocument, _>(&patient(p2), upload, &rel).await.is_err());
        assert!(authorize::<ChangeDocument, _>(&patient(p1), letter, &rel).await.is_ok());
        // Staff read only what their practice pushed, never a patient's own uploads.
        assert!(authorize::<ReadDocument, _>(&staff(a, StaffRole::Gp), letter, &rel).await.is_ok());
        assert!(authorize::<ReadDocument, _>(&staff(a, StaffRole::Gp), upload, &rel).await.is_err());
        assert!(authorize::<ReadDocument, _>(&staff(b, StaffRole::Gp), letter, &rel).await.is_err());
        assert!(authorize::<WithdrawDocument, _>(&staff(a, StaffRole::Nurse), letter, &rel).await.is_ok());
        assert!(authorize::<WithdrawDocument, _>(&staff(a, StaffRole::PrivacyOfficer), letter, &rel).await.is_err());
        assert!(authorize::<UploadDocument, _>(&staff(a, StaffRole::Gp), p1, &rel).await.is_err());
        assert!(authorize::<ReadDocument, _>(&staff(a, StaffRole::Gp), DocumentId::random(), &rel).await.is_err());
        let client =
            |org: &str, practice| Principal::Client { client: ClientId::random(), org_id: org.into(), practice };
        let own = authorize::<PushDocument, _>(&client("F1", Some(a)), p1, &rel).await.unwrap();
        assert_eq!(own.via_practice(), Some(a));
        assert!(authorize::<PushDocument, _>(&client("F1", Some(a)), p2, &rel).await.is_err());
        let hospital = authorize::<PushDocument, _>(&client("G00001-A", None), p2, &rel).await.unwrap();
        assert_eq!(hospital.via_practice(), Some(b), "the agreeing practice");
        assert!(authorize::<PushDocument, _>(&client("G00001-A", None), p1, &rel).await.is_err());
        assert!(authorize::<PushDocument, _>(&client("G99999-Z", None), p2, &rel).await.is_err());
        assert!(authorize::<ReadDocument, _>(&client("F1", Some(a)), letter, &rel).await.is_err());
    }

    /// The role × action table of ARCHITECTURE.md, cell by cell, for staff of the practice that
    /// sent the letter; and the letter is out of reach the moment the patient leaves.
    #[tokio::test]
    async fn inside_a_practice_each_role_reaches_only_what_its_work_needs() {
        let (p1, a) = (PatientId::random(), PracticeId::random());
        let letter = DocumentId::random();
        let mut rel = Fixed {
            enrolled: vec![(p1, a)],
            practices: vec![a],
            documents: vec![(letter, DocumentOwner { patient: p1, pushed_by_practice: Some(a) })],
            ..Fixed::default()
        };
        let staff =
            |role| Principal::Staff { account: AccountId::random(), session: SessionId::random(), practice: a, role };
        // (role, view patient, list documents, read letter, withdraw letter, access history,
        //  enrol, manage staff)
        let table = [
            (StaffRole::Gp, [true, true, true, true, false, true, false]),
            (StaffRole::Nurse, [true, true, true, true, false, true, false]),
            (StaffRole::Admin, [true, true, false, false, false, true, true]),
            (StaffRole::PrivacyOfficer, [true, false, false, false, true, false, false]),
        ];
        for (role, want) in table {
            let s = staff(role);
            let got = [
                authorize::<ViewPatient, _>(&s, p1, &rel).await.is_ok(),
                authorize::<ListDocuments, _>(&s, p1, &rel).await.is_ok(),
                authorize::<ReadDocument, _>(&s, letter, &rel).await.is_ok(),
                authorize::<WithdrawDocument, _>(&s, letter, &rel).await.is_ok(),
                authorize::<ViewAccessHistory, _>(&s, p1, &rel).await.is_ok(),
                authorize::<EnrolPatient, _>(&s, a, &rel).await.is_ok(),
                authorize::<ManageStaff, _>(&s, a, &rel).await.is_ok(),
            ];
            assert_eq!(got, want, "{role:?}");
        }
        // The patient leaves the practice: its staff lose the letter and the patient at once.
        rel.enrolled.clear();
        for role in StaffRole::ALL {
            let s = staff(role);
            assert!(authorize::<ReadDocument, _>(&s, letter, &rel).await.is_err(), "{role:?}");
            assert!(authorize::<WithdrawDocument, _>(&s, letter, &rel).await.is_err(), "{role:?}");
            assert!(authorize::<ListDocuments, _>(&s, p1, &rel).await.is_err(), "{role:?}");
            assert!(authorize::<ViewPatient, _>(&s, p1, &rel).await.is_err(), "{role:?}");
        }
        // What the practice pushed stays the patient's.
        let me = Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient: p1 };
        assert!(authorize::<ReadDocument, _>(&me, letter, &rel).await.is_ok());
    }

    #[tokio::test]
    async fn patients_see_only_themselves_and_staff_only_their_practice() {
        let (p1, p2) = (PatientId::random(), PatientId::random());
        let (a, b) = (PracticeId::random(), PracticeId::random());
        let rel = Fixed { enrolled: vec![(p1, a), (p2, b)], practices: vec![a, b], ..Fixed::default() };
        let me = Principal::Patient { account: AccountId::random(), session: SessionId::random(), patient: p1 };
        assert_eq!(authorize::<ViewPatient, _>(&me, p1, &rel).await.unwrap().patient(), Some(p1));
        assert!(matches!(authorize::<ViewPatient, _>(&me, p2, &rel).await, Err(Denied::NotFound)));
        let staff = |practice, role| Principal::Staff {
            account: AccountId::random(),
            session: SessionId::random(),
            practice,
            role,
        };
        let via = authorize::<ViewPatient, _>(&staff(a, StaffRole::Nurse), p1, &rel).await.unwrap();
        assert_eq!(via.via_practice(), Some(a), "a staff grant names the practice it rests on");
        assert_eq!(authorize::<ViewPatient, _>(&me, p1, &rel).await.unwrap().via_practice(), None);
        assert!(authorize::<ViewPatient, _>(&staff(b, StaffRole::Gp), p1, &rel).await.is_err());
        assert!(authorize::<ManageStaff, _>(&staff(a, StaffRole::Nurse), a, &rel).await.is_err());
        assert!(authorize::<ManageStaff, _>(&staff(a, StaffRole::Admin), a, &rel).await.is_ok());
        assert!(authorize::<ManageStaff, _>(&staff(a, StaffRole::Admin), b, &rel).await.is_err());
        assert!(authorize::<ManagePractices, _>(&staff(a, StaffRole::Admin), Platform, &rel).await.is_err());
        let op = Principal::Operator { account: AccountId::random(), session: SessionId::random() };
        assert!(authorize::<ViewPatient, _>(&op, p1, &rel).await.is_err());
        assert!(authorize::<ManagePractices, _>(&op, Platform, &rel).await.is_ok());
        assert!(authorize::<ViewPatient, _>(&Principal::Anonymous, p1, &rel).await.is_err());
    }
}

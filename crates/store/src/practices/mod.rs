//! Practices, their staff, and the patients enrolled at them; and the relationships the policy reads (`authz::Relations`).

/// The SQL, written once in what `SQLite` and `PostgreSQL` share (`sql.rs`), compiled for
/// each engine's types.
mod sqlite {
    type Db = sqlx::Sqlite;
    type This = crate::SqliteStore;
    use crate::shared::sqlite as shared;
    include!("sql.rs");
}
mod postgres {
    type Db = sqlx::Postgres;
    type This = crate::PgStore;
    use crate::shared::postgres as shared;
    include!("sql.rs");
}

use crate::{
    AwaitingPatient, EnrolPatient, Enrolled, EnrolmentRequest, ListPracticePatients, ManagePractices, ManageStaff,
    NewAccount, NewInvitation, NewPatient, NewPractice, PatientRow, PracticeRow, PracticeSummary, Result, StaffRow,
    ViewPatient,
};
use authz::Grant;
use domain::{AccountId, BoxFuture, PatientId, PracticeId, StaffRole, UnixTime};

/// One enrolment, named by a grant to end it: a practice's admin un-enrolling the patient, or
/// the patient leaving. Only made from those grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrolmentGrant {
    patient: PatientId,
    practice: PracticeId,
}

impl EnrolmentGrant {
    /// The patient.
    #[must_use]
    pub const fn patient(&self) -> PatientId {
        self.patient
    }
    /// The practice.
    #[must_use]
    pub const fn practice(&self) -> PracticeId {
        self.practice
    }
}

impl From<&Grant<authz::UnenrolPatient>> for EnrolmentGrant {
    fn from(g: &Grant<authz::UnenrolPatient>) -> Self {
        // The policy grants un-enrolment only through the admin's own practice.
        Self {
            patient: g.object(),
            practice: g.via_practice().unwrap_or_else(|| PracticeId::from_uuid(uuid::Uuid::nil())),
        }
    }
}

impl From<&Grant<authz::LeavePractice>> for EnrolmentGrant {
    fn from(g: &Grant<authz::LeavePractice>) -> Self {
        Self { patient: g.patient().unwrap_or_else(|| PatientId::from_uuid(uuid::Uuid::nil())), practice: g.object() }
    }
}

/// What a practice changes about a member of its staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffChange {
    /// A new role.
    Role(StaffRole),
    /// They leave: no further access of any kind.
    Remove,
}

/// Practices, their staff, and the patients enrolled at them; and the relationships the policy reads (`authz::Relations`).
pub trait PracticeStore: Send + Sync {
    /// Creates a practice.
    fn create_practice<'a>(
        &'a self,
        grant: &'a Grant<ManagePractices>,
        practice: &'a NewPractice,
    ) -> BoxFuture<'a, Result<()>>;
    /// Every practice, with staff and patient counts.
    fn list_practices<'a>(&'a self, grant: &'a Grant<ManagePractices>) -> BoxFuture<'a, Result<Vec<PracticeSummary>>>;
    /// A practice's public details (name, HPI id, region).
    fn practice(&self, id: PracticeId) -> BoxFuture<'_, Result<Option<PracticeRow>>>;
    /// Creates a staff account at the grant's practice with its invitation and email, atomically.
    fn invite_staff<'a>(
        &'a self,
        grant: &'a Grant<ManageStaff>,
        account: &'a NewAccount,
        role: StaffRole,
        invite: &'a NewInvitation,
    ) -> BoxFuture<'a, Result<()>>;
    /// The grant's practice's staff.
    fn list_staff<'a>(&'a self, grant: &'a Grant<ManageStaff>) -> BoxFuture<'a, Result<Vec<StaffRow>>>;
    /// Changes a member of the grant's practice's staff: a new role (in effect from their next
    /// request), or removal — the membership is marked removed, the account disabled, its
    /// sessions ended and its unused links voided, in one transaction. `NotFound` when the
    /// account is not current staff of that practice.
    fn change_staff<'a>(
        &'a self,
        grant: &'a Grant<ManageStaff>,
        account: AccountId,
        change: StaffChange,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// Ends an enrolment: the practice's staff lose access to the patient at once (what it sent
    /// stays the patient's). Returns the patient's account (to tell them). `NotFound` when there
    /// is no such enrolment.
    fn end_enrolment(&self, enrolment: EnrolmentGrant) -> BoxFuture<'_, Result<AccountId>>;
    /// Which practice a staff account belongs to, and in what role.
    fn staff_membership(&self, account: AccountId) -> BoxFuture<'_, Result<Option<(PracticeId, StaffRole)>>>;
    /// Enrols a patient at the grant's practice. A new NHI gets a patient record, an account
    /// and an activation invitation with its email, atomically. An NHI already known gains this
    /// enrolment; its details are kept.
    fn enrol_patient<'a>(
        &'a self,
        grant: &'a Grant<EnrolPatient>,
        patient: &'a NewPatient,
        invite: &'a NewInvitation,
    ) -> BoxFuture<'a, Result<Enrolled>>;
    /// The practices asking to enrol the grant's patient whose request they have not answered:
    /// only requests whose name and date of birth matched the record, from the last 30 days.
    fn enrolment_requests<'a>(
        &'a self,
        grant: &'a Grant<authz::ReviewEnrolmentRequests>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<EnrolmentRequest>>>;
    /// The grant's patient answers the grant's practice's request: accepting enrols them there
    /// (from now on its staff see their record), declining leaves everything as it was. Returns
    /// who asked. `NotFound` unless such a request stands, unanswered, for them.
    fn answer_enrolment_request<'a>(
        &'a self,
        grant: &'a Grant<authz::AnswerEnrolmentRequest>,
        accept: bool,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Option<AccountId>>>;
    /// The enrolments the grant's practice asked for in the last 30 days that the person has not
    /// accepted (whether or not they were asked, and whether or not they declined, is not said).
    fn awaiting_patients<'a>(
        &'a self,
        grant: &'a Grant<ListPracticePatients>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<AwaitingPatient>>>;
    /// A page of the patients enrolled at the grant's practice, and how many match in all.
    fn list_patients<'a>(
        &'a self,
        grant: &'a Grant<ListPracticePatients>,
        query: &'a crate::PatientQuery,
    ) -> BoxFuture<'a, Result<(Vec<PatientRow>, i64)>>;
    /// The patient the grant is for.
    fn patient<'a>(&'a self, grant: &'a Grant<ViewPatient>) -> BoxFuture<'a, Result<PatientRow>>;
    /// The patient record linked to a patient account.
    fn patient_for_account(&self, account: AccountId) -> BoxFuture<'_, Result<Option<PatientId>>>;
    /// The account linked to a patient record enrolled at, or asked by, the grant's practice
    /// (for notices to the patient).
    fn patient_account<'a>(
        &'a self,
        grant: &'a Grant<EnrolPatient>,
        patient: PatientId,
    ) -> BoxFuture<'a, Result<AccountId>>;
}

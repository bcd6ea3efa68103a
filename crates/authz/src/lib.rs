//! Authorisation by construction (DESIGN §4): `authorize(principal, object)` is the only way to
//! make a [`Grant`], and storage functions that touch patient or practice data take a grant, never a
//! bare id. Everything not explicitly allowed here is denied, and a denial looks exactly like "not
//! found" to the caller.
//!
//! Each action declares what the access log calls it — module, object kind and verb — so the
//! application derives every access event from the grant (or the refusal) instead of spelling it.
//! The policies live in `policy/`, one file per module.

pub mod capabilities;
pub mod console;
mod grant;
mod policy;
mod principal;
mod relations;

pub use grant::{Grant, Implies};
pub use policy::appointments::{
    BlockSlots, BookAppointment, CancelAppointment, ListAppointments, MarkAppointment, ReadAppointment, RunBook,
    SetUpBook, SyncAppointment, SyncBook,
};
pub use policy::audit::{ExportAccessHistory, ExportAudit, ViewAccessHistory};
pub use policy::detection::{ManageAlerts, SwitchModules, ViewAlerts};
pub use policy::documents::{
    ChangeDocument, DeleteDocument, KeyCustody, ListDocuments, MasterKeyCustody, PushDocument, ReadDocument,
    UploadDocument, WithdrawDocument,
};
pub use policy::identity::{
    ApprovePatientReset, DisableAccount, EnableAccount, InviteOperator, ManageAccounts, ManageOperators,
    RequestPatientReset, ResetPatientFactors, ResetStaffFactors, SetPasskeyPolicy,
};
pub use policy::incidents::{CheckReference, LeadIncidents, ReportIncidents, ViewImpact, ViewIncidents};
pub use policy::messages::{
    ListThreads, ManageThread, ReadPracticeInbox, ReadThread, ReplyThread, SetUpMessaging, StartThread,
};
pub use policy::practices::{
    AnswerEnrolmentRequest, ChangeStaffRole, CreatePractice, EnrolPatient, InviteStaff, LeavePractice,
    ListPracticePatients, ListPractices, ListStaff, ManageApiClients, ManagePractices, ManageStaff, RemoveStaff,
    ReviewEnrolmentRequests, SetPatientMfaPolicy, UnenrolPatient,
};
pub use policy::prescriptions::{
    ApproveRepeatRequest, DeclineRepeatRequest, ListRepeatQueue, ManageRepeatList, ReadRepeatList, ReadRepeatRequest,
    RequestRepeat, ReviewRepeatRequest, SetUpRepeats,
};
pub use policy::proxies::{AcceptProxy, ActFor, ListProxies, RevokeProxy, SetProxyRules, SetUpProxy};
pub use policy::records::{
    ExportRecords, HideRecord, IngestRecords, ListHeldResults, ReadRecord, ReadRecords, ReleaseRecord, SendRecords,
    SetRecordRules, UnhideRecord, ViewPatient,
};
pub use principal::Principal;
pub use relations::{DocumentOwner, Located, Platform, ProxyOwner, RecordOwner, Relations, RelationsError, Subject};

use domain::Access;

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
    /// The object the action is on.
    type Object: Subject;
    /// The action's name, for debugging.
    const NAME: &'static str;
    /// What the access log calls it: module, object kind, verb.
    const ACCESS: Access;
}

/// Declares an action: its object type, its name, and its module, object kind and verb.
macro_rules! action {
    ($(#[$doc:meta])* $name:ident, $object:ty, $label:literal, $module:ident, $kind:ident, $verb:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}
        impl $crate::sealed::Sealed for $name {}
        impl $crate::Action for $name {
            type Object = $object;
            const NAME: &'static str = $label;
            const ACCESS: domain::Access =
                domain::Access::new(domain::Module::$module, domain::ObjectKind::$kind, domain::Verb::$verb);
        }
    };
}
pub(crate) use action;

/// Declares that each action's policy is a rule of `policy/mod.rs` (or of its module): the rule
/// decides, and denies by default.
macro_rules! decided_by {
    ($($action:ident => $rule:path),+ $(,)?) => {
        $(impl $crate::Policy for $action {
            async fn decide<R: $crate::Relations + ?Sized>(
                p: &$crate::Principal,
                object: <Self as $crate::Action>::Object,
                rel: &R,
            ) -> Result<$crate::Grant<Self>, $crate::Denied> {
                $rule(p, object, rel).await
            }
        })+
    };
}
pub(crate) use decided_by;

/// Declares that a grant for `$a` carries the permission `$b` too.
macro_rules! implies {
    ($($a:ident => $b:ident),+ $(,)?) => {
        $(impl $crate::Implies<$b> for $a {})+
    };
}
pub(crate) use implies;

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

#[cfg(test)]
mod tests;

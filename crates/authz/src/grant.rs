//! Grants: proof that the policy allowed one action on one object. Only this crate makes them;
//! storage takes them instead of bare ids, and the access event is derived from them.

use crate::{Action, Subject};
use domain::{Access, AccountId, PatientId, PracticeId};
use std::fmt;
use std::marker::PhantomData;

/// Proof that `authorize` allowed an action on one object. Only this crate can make one; it
/// carries the object's id and, when the object belongs to a patient, that patient.
#[must_use]
pub struct Grant<A: Action> {
    object: A::Object,
    patient: Option<PatientId>,
    actor: Option<AccountId>,
    via_practice: Option<PracticeId>,
    owner_practice: Option<PracticeId>,
    by_proxy: bool,
    _action: PhantomData<A>,
}

impl<A: Action> Grant<A> {
    pub(crate) const fn new(object: A::Object, patient: Option<PatientId>, actor: Option<AccountId>) -> Self {
        Self { object, patient, actor, via_practice: None, owner_practice: None, by_proxy: false, _action: PhantomData }
    }

    /// The practice the object belongs to (the one that sent a letter), for the access log
    /// only: unlike [`Grant::through`], storage does not check it.
    pub(crate) const fn owned_by(mut self, practice: Option<PracticeId>) -> Self {
        self.owner_practice = practice;
        self
    }

    /// A grant that holds because of the actor's practice (staff reaching a patient through
    /// their enrolment there); storage repeats that relationship in its SQL.
    pub(crate) const fn through(mut self, practice: PracticeId) -> Self {
        self.via_practice = Some(practice);
        self
    }

    /// A grant that holds because the actor is a live proxy of the object's patient: storage
    /// leaves out what the patient hid from the people who act for them.
    pub(crate) const fn for_proxy(mut self) -> Self {
        self.by_proxy = true;
        self
    }

    /// Whether the grant was made to someone acting for the patient.
    pub const fn by_proxy(&self) -> bool {
        self.by_proxy
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
    /// What the access log says this grant was for: the action's module, object kind and verb.
    pub const fn access(&self) -> Access {
        A::ACCESS
    }
    /// The practice the access log files this access under: the one the grant rests on, the
    /// one the object belongs to, or the practice that is the object.
    pub fn practice(&self) -> Option<PracticeId> {
        self.via_practice.or(self.owner_practice).or_else(|| self.object.as_practice())
    }

    /// The narrower permission a grant carries (exporting a history includes reading it;
    /// listing a practice's staff is part of managing them). Only the pairs declared in this
    /// crate exist.
    pub const fn implied<B>(&self) -> Grant<B>
    where
        A: Implies<B>,
        B: Action<Object = A::Object>,
    {
        Grant {
            object: self.object,
            patient: self.patient,
            actor: self.actor,
            via_practice: self.via_practice,
            owner_practice: self.owner_practice,
            by_proxy: self.by_proxy,
            _action: PhantomData,
        }
    }
}

impl<A: Action> fmt::Debug for Grant<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Grant<{}>({:?})", A::NAME, self.object)
    }
}

/// `A` includes the permission `B` (declared only in this crate).
pub trait Implies<B: Action>: Action + crate::sealed::Sealed {}

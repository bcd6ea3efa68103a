//! The proxy part of the storage contract: links a practice sets up between a proxy's account
//! and a patient, the patient's acceptance, revocation, the practice's cut-off age, and which
//! record a session has open. Whether a link is live is the policy's to judge (from the terms
//! `Relations::proxy_terms` loads); storage keeps the facts.

use crate::{NewAccount, NewInvitation, Result, SessionId};
use authz::{AcceptProxy, ActFor, Grant, ListProxies, RevokeProxy, SetProxyRules, SetUpProxy};
use domain::proxies::{ProxyScopes, ProxyTerms, Relationship};
use domain::{AccountId, BoxFuture, PatientId, PracticeId, ProxyId, UnixTime};

/// What a refused set-up says: another practice set up an open link between the same two
/// people; only it can end or renew it.
pub const OTHER_PRACTICES_LINK: &str = "another practice's link";

/// A link to set up.
#[derive(Debug, Clone)]
pub struct NewProxy {
    /// Its id.
    pub id: ProxyId,
    /// The proxy's account.
    pub proxy: AccountId,
    /// Who they are to the patient.
    pub relationship: Relationship,
    /// What they may do.
    pub scopes: ProxyScopes,
    /// From when.
    pub starts_at: UnixTime,
    /// Until when.
    pub expires_at: Option<UnixTime>,
    /// The patient is past the cut-off age and must accept it.
    pub needs_acceptance: bool,
    /// An adult's link accepted at set-up on a legal representative's authority (the
    /// patient cannot answer for themselves); it still ends, and the patient may revoke it.
    pub accepted_on_authority: bool,
    /// How the practice checked the proxy's identity (as staff wrote it).
    pub identity_check: String,
    /// The staff member who set it up.
    pub created_by: AccountId,
    /// For someone with no Tiaki account yet: their account (a person's own, with no record
    /// here) and its invitation, made in the same transaction as the link.
    pub invite: Option<(NewAccount, NewInvitation)>,
    /// For an account invited before that never made its password: a new invitation.
    pub reinvite: Option<NewInvitation>,
}

/// A link, as the patient, the practice and the proxy see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRow {
    /// Its id.
    pub id: ProxyId,
    /// The practice that set it up, and its name.
    pub practice: PracticeId,
    /// The practice's name.
    pub practice_name: String,
    /// The patient.
    pub patient: PatientId,
    /// The patient's name.
    pub patient_name: String,
    /// The proxy's account.
    pub proxy: AccountId,
    /// The proxy's name.
    pub proxy_name: String,
    /// Its terms (the age rule worked out).
    pub terms: ProxyTerms,
    /// How identity was checked.
    pub identity_check: String,
    /// When it was set up.
    pub created_at: UnixTime,
}

/// The proxy part of the storage contract.
pub trait ProxyStore: Send + Sync {
    /// Sets up a link for the grant's patient at the grant's practice, ending its own open link
    /// between the same two people first (a renewal), in one transaction;
    /// [`OTHER_PRACTICES_LINK`] when another practice's link is open.
    fn set_up_proxy<'a>(
        &'a self,
        grant: &'a Grant<SetUpProxy>,
        new: &'a NewProxy,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
    /// The patient's links, newest first: all of them for the patient, those the staff
    /// member's practice set up for staff. Revoked links are kept for a year.
    fn patient_proxies<'a>(
        &'a self,
        grant: &'a Grant<ListProxies>,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<Vec<ProxyRow>>>;
    /// The open links by which `account` acts for others (the people in its switcher).
    fn acting_links(&self, account: AccountId) -> BoxFuture<'_, Result<Vec<ProxyRow>>>;
    /// One link (for the pages that act on it).
    fn proxy_link(&self, id: ProxyId) -> BoxFuture<'_, Result<Option<ProxyRow>>>;
    /// The patient accepts the link; false if it is revoked, accepted already or needs none.
    fn accept_proxy<'a>(&'a self, grant: &'a Grant<AcceptProxy>, now: UnixTime) -> BoxFuture<'a, Result<bool>>;
    /// Ends the link; false if it had ended already. Sessions acting under it go back to
    /// their own record.
    fn revoke_proxy<'a>(
        &'a self,
        grant: &'a Grant<RevokeProxy>,
        by: AccountId,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Opens the person's record in the session (the grant says the link is live).
    fn act_for<'a>(&'a self, session: SessionId, grant: &'a Grant<ActFor>) -> BoxFuture<'a, Result<()>>;
    /// Opens the account's own record in the session again.
    fn act_as_self(&self, session: SessionId) -> BoxFuture<'_, Result<()>>;
    /// The practice's cut-off age (the default when it set none).
    fn proxy_cutoff(&self, practice: PracticeId) -> BoxFuture<'_, Result<u8>>;
    /// Sets the practice's cut-off age.
    fn set_proxy_cutoff<'a>(
        &'a self,
        grant: &'a Grant<SetProxyRules>,
        age: u8,
        now: UnixTime,
    ) -> BoxFuture<'a, Result<()>>;
}

/// A link's stored facts, as terms the policy judges: for a link that needs no acceptance (set
/// up for a child), the day it ends is the patient's birthday at the practice's cut-off age.
#[expect(clippy::too_many_arguments, reason = "one stored row's columns")]
pub(crate) fn terms(
    practice: PracticeId,
    relationship: &str,
    scopes: &str,
    starts_at: UnixTime,
    expires_at: Option<UnixTime>,
    needs_acceptance: bool,
    accepted_at: Option<UnixTime>,
    revoked_at: Option<UnixTime>,
    date_of_birth: &str,
    cutoff_age: i32,
) -> Result<ProxyTerms> {
    let relationship =
        Relationship::parse(relationship).ok_or_else(|| crate::portable::corrupt("proxy relationship"))?;
    let ends_on = if needs_acceptance {
        None
    } else {
        let dob = domain::proxies::parse_dob(date_of_birth).ok_or_else(|| crate::portable::corrupt("date of birth"))?;
        Some(domain::proxies::birthday_at(dob, u8::try_from(cutoff_age).unwrap_or(domain::proxies::DEFAULT_CUTOFF_AGE)))
    };
    Ok(ProxyTerms {
        practice,
        scopes: ProxyScopes::parse(scopes),
        relationship,
        starts_at,
        expires_at,
        needs_acceptance,
        accepted_at,
        revoked_at,
        ends_on,
    })
}

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

//! Who is asking: the principal the policy sees, built by the application from a verified
//! session or client credential, never from request input.

use domain::{AccountId, ClientId, PatientId, PracticeId, SessionId, StaffRole};

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
    /// A person acting for someone else — a parent for a child, a carer — with the session
    /// switched to that person's record. What they may do is decided, on every request, from
    /// the proxy link the policy loads (its scopes, dates, the age rule, acceptance), never
    /// from this value alone.
    Proxy {
        /// Their own account.
        account: AccountId,
        /// The session the request came with.
        session: SessionId,
        /// The patient they are acting for.
        patient: PatientId,
        /// Who they are to the patient (for the access log's wording only).
        relationship: domain::proxies::Relationship,
        /// When the request is being decided (the policy judges the link's dates at this time).
        at: domain::UnixTime,
    },
    /// Someone signed in who has no patient record of their own here and acts for nobody at
    /// the moment: a person a practice invited to act for a patient, before they switch to
    /// that patient. Every grant is refused; the access log still names them.
    Person {
        /// Their account.
        account: AccountId,
        /// The session the request came with.
        session: SessionId,
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
        /// What it may do beyond pushing documents (sending health records).
        scopes: domain::ClientScopes,
    },
}

impl Principal {
    /// The signed-in account, if any.
    #[must_use]
    pub const fn account(&self) -> Option<AccountId> {
        match self {
            Self::Anonymous | Self::Client { .. } => None,
            Self::Patient { account, .. }
            | Self::Person { account, .. }
            | Self::Proxy { account, .. }
            | Self::Staff { account, .. }
            | Self::Operator { account, .. } => Some(*account),
        }
    }
}

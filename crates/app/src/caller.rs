//! Who is asking, and from where: the principal a verified session (or the console) acts as,
//! and the request's details every access event records.

use authz::Principal;

/// Who is asking, and from where: the principal from the session, and the request's details
/// that go into every audit event.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The principal the policy sees.
    pub principal: Principal,
    /// The client's address (none at the console).
    pub ip: Option<std::net::IpAddr>,
    /// The client's user agent.
    pub user_agent: String,
    /// The request id (joins the event with the logs).
    pub request_id: String,
}

impl Caller {
    /// A request's caller.
    #[must_use]
    pub fn new(principal: Principal, ip: std::net::IpAddr, user_agent: &str, request_id: &str) -> Self {
        Self {
            principal,
            ip: Some(ip),
            user_agent: user_agent.chars().filter(|c| !c.is_control()).take(200).collect(),
            request_id: request_id.chars().take(64).collect(),
        }
    }

    /// The server's console (`tiaki admin`, `tiaki demo`), acting as `principal`.
    #[must_use]
    pub fn console(principal: Principal) -> Self {
        Self { principal, ip: None, user_agent: "tiaki console".into(), request_id: String::new() }
    }
}

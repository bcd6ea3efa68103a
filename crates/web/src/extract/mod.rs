//! Request context: the client's address (believing `X-Forwarded-For` only from configured
//! proxies), the session cookie, the CSRF binding, and extractors that refuse a request before
//! the handler runs when it is not signed in or its form's CSRF token is wrong.

mod client;
mod cookies;
mod ids;
mod multipart;

pub(crate) use client::ClientAuth;
pub(crate) use cookies::{challenge_of, device_of, remember_browser, with_challenge, without_challenge};
pub(crate) use ids::{ApiId, PageId};
pub(crate) use multipart::{CsrfMultipart, read_small_field};

use crate::WebState;
use crate::error::{Refusal, Surface, WebError};
use app::{AppError, SignedIn};
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use ipnet::IpNet;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy. A client cannot
/// choose its own address by sending the header directly.
#[must_use]
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = canonical(peer);
    if !is_trusted(&peer) {
        return peer;
    }
    // Walk the chain from the right (the hops our proxies added) and stop at the first address
    // that is not one of them: whatever stands to its left was written by the client.
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in entries.iter().rev() {
        match entry.parse::<IpAddr>().map(canonical) {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // Unreadable where a proxy should have written: the last trusted hop is all we know.
            Err(_) => return client,
        }
    }
    client
}

pub(crate) fn session_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-tiaki_session" } else { "tiaki_session" }
}

fn pre_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-tiaki_pre" } else { "tiaki_pre" }
}

pub(crate) fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    let mut c = Cookie::new(name, value);
    c.set_http_only(true);
    c.set_same_site(SameSite::Strict);
    c.set_path("/");
    c.set_secure(secure);
    c
}

/// Everything a handler needs to know about who is asking.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) jar: CookieJar,
    pub(crate) signed_in: Option<SignedIn>,
    pub(crate) ip: IpAddr,
    pub(crate) user_agent: String,
    pub(crate) secure: bool,
    pub(crate) request_id: String,
    binding: String,
    csrf: String,
}

impl Ctx {
    /// The caller as the session shows it (anonymous when not signed in), for the audit log.
    pub(crate) fn caller(&self) -> app::Caller {
        let principal = self.signed_in.as_ref().map_or(app::Principal::Anonymous, |s| s.principal.clone());
        app::Caller::new(principal, self.ip, &self.user_agent, &self.request_id)
    }

    /// The caller acting as `who`.
    pub(crate) fn caller_as(&self, who: &SignedIn) -> app::Caller {
        app::Caller::new(who.principal.clone(), self.ip, &self.user_agent, &self.request_id)
    }

    /// Who is signed in, for form posts (which check their own CSRF token, not `Auth`); a page
    /// request without a session is sent to sign in.
    pub(crate) fn require_signed_in(&self) -> Result<SignedIn, crate::error::WebError> {
        self.signed_in.clone().ok_or(crate::error::WebError::page(AppError::Unauthenticated))
    }

    /// What this browser's CSRF tokens are bound to.
    pub(crate) fn binding(&self) -> &str {
        &self.binding
    }

    /// The CSRF token to put in this page's forms.
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }

    /// This request's context once the session continues under a new token: the page rendered
    /// now carries CSRF tokens bound to it, so its forms still work.
    pub(crate) fn rebound(&self, app: &app::App, token: &str) -> Self {
        Self { binding: token.to_owned(), csrf: app.identity().csrf_token(token), ..self.clone() }
    }

    /// The cookie jar to send back, setting a session cookie after sign-in.
    pub(crate) fn with_session(self, token: String) -> CookieJar {
        self.jar.add(cookie(session_cookie_name(self.secure), token, self.secure))
    }

    /// The cookie jar to send back, removing the session cookie.
    pub(crate) fn without_session(self) -> CookieJar {
        let mut gone = cookie(session_cookie_name(self.secure), String::new(), self.secure);
        gone.make_removal();
        self.jar.add(gone)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx
where
    WebState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = WebState::from_ref(state);
        let surface = if parts.uri.path().starts_with("/api/") { Surface::Api } else { Surface::Page };
        let peer =
            parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let ip = client_ip(peer, &parts.headers, &state.trusted_proxies);
        let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let request_id = parts.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let mut jar = CookieJar::from_headers(&parts.headers);
        let signed_in = match jar.get(session_cookie_name(state.secure)) {
            Some(c) => state
                .app
                .identity()
                .authenticate(c.value())
                .await
                .map_err(|e| WebError { surface, error: e }.into_response())?,
            None => None,
        };
        let binding = if let Some(s) = &signed_in {
            s.csrf_binding().to_owned()
        } else if let Some(pre) =
            jar.get(pre_cookie_name(state.secure)).map(|c| c.value().to_owned()).filter(|v| v.len() == 64)
        {
            pre
        } else {
            let fresh =
                state.app.identity().new_browser_token().map_err(|e| WebError { surface, error: e }.into_response())?;
            jar = jar.add(cookie(pre_cookie_name(state.secure), fresh.clone(), state.secure));
            fresh
        };
        let csrf = state.app.identity().csrf_token(&binding);
        Ok(Self { jar, signed_in, ip, user_agent, secure: state.secure, request_id, binding, csrf })
    }
}

/// A signed-in request. Pages redirect to sign-in; the API answers 401.
#[derive(Debug, Clone)]
pub(crate) struct Auth(pub(crate) Ctx, pub(crate) SignedIn);

impl<S: Send + Sync> FromRequestParts<S> for Auth
where
    WebState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let surface = if parts.uri.path().starts_with("/api/") { Surface::Api } else { Surface::Page };
        let ctx = Ctx::from_request_parts(parts, state).await?;
        match ctx.signed_in.clone() {
            // Staff and operators without a second factor in this session reach only its set-up.
            // So do sessions whose password must change first (it was found on the breached list).
            Some(s)
                if (s.needs_second_factor || s.must_change_password)
                    && !parts.uri.path().starts_with("/account/security") =>
            {
                Err(match surface {
                    Surface::Page => axum::response::Redirect::to("/account/security").into_response(),
                    Surface::Api => (
                        axum::http::StatusCode::FORBIDDEN,
                        axum::Json(crate::error::ApiErrorBody {
                            error: if s.needs_second_factor {
                                "Set up a second factor (an authenticator app) at /account/security first.".into()
                            } else {
                                "Choose a new password at /account/security first: this one has appeared in a data breach."
                                    .into()
                            },
                            fields: Vec::new(),
                        }),
                    )
                        .into_response(),
                })
            }
            Some(s) => Ok(Self(ctx, s)),
            None => Err(WebError { surface, error: AppError::Unauthenticated }.into_response()),
        }
    }
}

/// Forms carry their CSRF token in a `csrf` field.
pub(crate) trait HasCsrf {
    fn csrf(&self) -> &str;
}

/// `HasCsrf` for forms whose token is their `csrf` field (every form here).
macro_rules! impl_has_csrf {
    ($($form:ty),+ $(,)?) => {
        $(impl $crate::extract::HasCsrf for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        })+
    };
}
pub(crate) use impl_has_csrf;

/// A form whose CSRF token matched this browser's binding; anything else is refused with 403
/// before the handler runs. Cross-site requests (per `Sec-Fetch-Site`) are refused too.
pub(crate) struct CsrfForm<T>(pub(crate) Ctx, pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + HasCsrf + Send> FromRequest<S> for CsrfForm<T>
where
    WebState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, state).await?;
        if parts.headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
            return Err(Refusal::Csrf.into_response(Surface::Page));
        }
        let req = Request::from_parts(parts, body);
        let form = match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(f)) => f,
            Err(rejection) => {
                return Err(form_refusal(&rejection.body_text(), rejection.status()).into_response(Surface::Page));
            }
        };
        if !state_app(state).identity().csrf_ok(&ctx.binding, form.csrf()) {
            return Err(Refusal::Csrf.into_response(Surface::Page));
        }
        Ok(Self(ctx, form))
    }
}

fn state_app<S>(state: &S) -> std::sync::Arc<app::App>
where
    WebState: FromRef<S>,
{
    WebState::from_ref(state).app
}

pub(crate) fn form_refusal(_text: &str, status: axum::http::StatusCode) -> Refusal {
    match status {
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE => Refusal::UnsupportedType,
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => Refusal::TooLarge,
        _ => Refusal::Malformed,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted: Vec<IpNet> = vec!["10.0.0.0/24".parse().unwrap()];
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        // Directly connected clients cannot claim another address.
        assert_eq!(client_ip(client, &headers(&["198.51.100.1"]), &trusted), client);
        assert_eq!(client_ip(client, &headers(&["198.51.100.1"]), &[]), client);
        // Behind the proxy, the right-most untrusted hop is the client, whatever the client prepended.
        assert_eq!(client_ip(proxy, &headers(&["198.51.100.1, 203.0.113.9"]), &trusted), client);
        assert_eq!(client_ip(proxy, &headers(&["198.51.100.1", "203.0.113.9, 10.0.0.7"]), &trusted), client);
        assert_eq!(client_ip(proxy, &headers(&[]), &trusted), proxy);
        assert_eq!(client_ip(proxy, &headers(&["not-an-ip"]), &trusted), proxy);
        // Junk the client wrote to the left of its real address changes nothing.
        assert_eq!(client_ip(proxy, &headers(&["x, 203.0.113.9"]), &trusted), client);
        // An IPv4-mapped peer is the IPv4 proxy it is.
        assert_eq!(client_ip("::ffff:10.0.0.5".parse().unwrap(), &headers(&["203.0.113.9"]), &trusted), client);
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

crate::extract::impl_has_csrf!(CsrfOnly);

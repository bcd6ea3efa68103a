//! The cookies besides the session's: the long-lived device cookie that remembers a browser
//! (a sign-in from any other is emailed to the holder), and the short-lived challenge cookie
//! between a correct password and a correct second factor (not a session).

use super::{Ctx, cookie};
use crate::WebState;
use app::SignedIn;
use axum_extra::extract::cookie::CookieJar;

pub(crate) fn device_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-tiaki_device" } else { "tiaki_device" }
}

/// After a finished sign-in (or activation): remembers this browser by its long-lived device
/// cookie (made now if it has none), so that a sign-in from any other browser is emailed to the
/// holder. A failure here is logged, never a reason to refuse the sign-in.
pub(crate) async fn remember_browser(
    state: &WebState,
    jar: CookieJar,
    caller: &app::Caller,
    who: &SignedIn,
    secure: bool,
    quiet: bool,
) -> CookieJar {
    let device = jar.get(device_cookie_name(secure)).map(|c| c.value().to_owned()).filter(|v| v.len() == 64);
    let device = match device.map_or_else(|| state.app.identity().new_browser_token(), Ok) {
        Ok(device) => device,
        Err(e) => {
            // No random value: this browser is simply not remembered (the sign-in goes on).
            tracing::warn!(error = %e, "could not make a browser cookie");
            return jar;
        }
    };
    let as_them = app::Caller { principal: who.principal.clone(), ..caller.clone() };
    if let Err(e) = state.app.identity().remember_device(&as_them, who, &device, quiet).await {
        tracing::warn!(error = %e, "could not remember the browser of a sign-in");
    }
    let mut c = cookie(device_cookie_name(secure), device, secure);
    c.set_max_age(time::Duration::days(400));
    jar.add(c)
}

/// This browser's device cookie, if it has one.
pub(crate) fn device_of(ctx: &Ctx) -> Option<String> {
    ctx.jar.get(device_cookie_name(ctx.secure)).map(|c| c.value().to_owned())
}

pub(crate) fn challenge_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-tiaki_mfa" } else { "tiaki_mfa" }
}

/// Sets the challenge cookie (five minutes).
pub(crate) fn with_challenge(jar: CookieJar, token: String, secure: bool) -> CookieJar {
    let mut c = cookie(challenge_cookie_name(secure), token, secure);
    c.set_max_age(time::Duration::minutes(5));
    jar.add(c)
}

pub(crate) fn without_challenge(jar: CookieJar, secure: bool) -> CookieJar {
    let mut gone = cookie(challenge_cookie_name(secure), String::new(), secure);
    gone.make_removal();
    jar.add(gone)
}

pub(crate) fn challenge_of(ctx: &Ctx) -> String {
    ctx.jar.get(challenge_cookie_name(ctx.secure)).map(|c| c.value().to_owned()).unwrap_or_default()
}

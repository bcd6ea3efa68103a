//! Sign-in limits per client address and per account, on the injected clock. Per process for
//! now; the strong-authentication work moves them into the database with adaptive global limits.

use domain::UnixTime;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Attempts from one address per window.
pub(crate) const PER_IP: u32 = 30;
/// Failed attempts on one account per window.
pub(crate) const PER_ACCOUNT: u32 = 10;
/// The window, seconds.
pub(crate) const WINDOW: i64 = 300;
/// Entries kept before old windows are swept.
const SWEEP_AT: usize = 100_000;

/// Fixed-window counters keyed by address or account.
#[derive(Debug, Default)]
pub(crate) struct SignInLimits {
    by_ip: Mutex<HashMap<IpAddr, (UnixTime, u32)>>,
    by_account: Mutex<HashMap<String, (UnixTime, u32)>>,
}

fn bump<K: std::hash::Hash + Eq + Clone>(
    map: &Mutex<HashMap<K, (UnixTime, u32)>>,
    key: &K,
    now: UnixTime,
    limit: u32,
    count: bool,
) -> Result<(), u64> {
    // A poisoned lock only means another thread panicked mid-update; the counts are still usable.
    let mut m = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if m.len() > SWEEP_AT {
        m.retain(|_, (start, _)| now - *start < WINDOW);
    }
    let entry = m.entry(key.clone()).or_insert((now, 0));
    if now - entry.0 >= WINDOW {
        *entry = (now, 0);
    }
    if entry.1 >= limit {
        return Err(u64::try_from(WINDOW - (now - entry.0)).unwrap_or(1).max(1));
    }
    if count {
        entry.1 += 1;
    }
    Ok(())
}

/// The key an address is limited under: IPv4 addresses singly, IPv6 by /64 (one customer's
/// allocation), and IPv4-mapped IPv6 as the IPv4 address it is.
fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                IpAddr::V4(v4)
            } else {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

impl SignInLimits {
    /// Counts an attempt from `ip` and against the account before any password is checked (so
    /// parallel attempts cannot slip past the limit), and refuses once a limit is reached.
    /// Returns the seconds to wait. A successful sign-in clears the account's count.
    pub(crate) fn attempt(&self, ip: IpAddr, account: &str, now: UnixTime) -> Result<(), u64> {
        bump(&self.by_ip, &ip_key(ip), now, PER_IP, true)?;
        bump(&self.by_account, &account.to_owned(), now, PER_ACCOUNT, true)
    }

    /// Counts a request for a passkey sign-in challenge from `ip` against the same per-address
    /// limit (each challenge is a row kept for five minutes; a flood from one address stops).
    pub(crate) fn challenge(&self, ip: IpAddr, now: UnixTime) -> Result<(), u64> {
        bump(&self.by_ip, &ip_key(ip), now, PER_IP, true)
    }

    /// Clears an account's failures after a successful sign-in.
    pub(crate) fn succeeded(&self, account: &str) {
        self.by_account.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_ip_and_per_account_and_windows_reset() {
        let l = SignInLimits::default();
        let ip: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..PER_ACCOUNT {
            assert!(l.attempt(ip, "a@x.nz", 0).is_ok());
        }
        assert_eq!(l.attempt(ip, "a@x.nz", 10), Err(290));
        assert!(l.attempt(ip, "b@x.nz", 10).is_ok(), "other accounts are unaffected");
        assert!(l.attempt(ip, "a@x.nz", WINDOW).is_ok(), "the window passes");
        let other: IpAddr = [192, 0, 2, 2].into();
        for i in 0..PER_IP {
            assert!(l.attempt(other, &format!("c{i}@x.nz"), 1000).is_ok());
        }
        assert!(l.attempt(other, "d@x.nz", 1000).is_err());
        l.succeeded("a@x.nz");
        // One IPv6 /64 is one client.
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap_or(ip);
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap_or(ip);
        assert_eq!(ip_key(a), ip_key(b));
        assert_eq!(ip_key("::ffff:192.0.2.1".parse().unwrap_or(ip)), ip);
    }
}

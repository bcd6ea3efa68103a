//! Defences against credential stuffing (issue 3), with their counters in the database so every
//! node of a cluster sees the same ones:
//!
//! - **Per account**: after [`FREE_FAILURES`] consecutive wrong passwords from browsers the
//!   account does not know, each further attempt waits 2, 4, 8 … seconds (at most an hour) after
//!   the last failure; at [`LOCK_AFTER`] (NIST SP 800-63B's ceiling of 100) such browsers are
//!   refused until the holder chooses a new password. Attempts refused by the back-off check no
//!   password and count no failure. A finished sign-in starts the count again, except at the cap.
//! - **Per address and per network**: [`PER_IP`] attempts per address (IPv4, or an IPv6 /64)
//!   and [`PER_NET`] per /24 (IPv4) or /48 (IPv6) in [`WINDOW`].
//! - **Platform-wide, adaptive**: when failed sign-ins in a minute rise above
//!   [`ATTACK_FLOOR`] and [`ATTACK_FACTOR`] times the day's typical (median) minute, the platform
//!   is under attack: the per-address and per-network limits tighten, the back-off starts at the
//!   first failure, and at most [`UNKNOWN_PER_MINUTE_UNDER_ATTACK`] attempts a minute from
//!   unknown browsers go on, per node (it guards each node's password hashing).
//! - **Known browsers** (a device cookie the account finished a sign-in with) skip all of the
//!   above: a flood cannot lock the holder out of their own browser. They have a limit of their
//!   own ([`PER_DEVICE`] a window), and [`DEVICE_FORGET_AFTER`] wrong passwords in a row make the
//!   account forget the browser.

use domain::UnixTime;
use std::net::IpAddr;
use std::sync::Mutex;

/// Attempts from one address per window (normally / under attack).
pub(crate) const PER_IP: [i64; 2] = [30, 10];
/// Attempts from one /24 or /64 per window (normally / under attack).
pub(crate) const PER_NET: [i64; 2] = [100, 30];
/// Attempts from one known browser per window.
pub(crate) const PER_DEVICE: i64 = 20;
/// The window of the per-address, per-network and per-browser limits, seconds.
pub(crate) const WINDOW: i64 = 300;
/// Consecutive failures before the back-off starts (normally / under attack).
pub(crate) const FREE_FAILURES: [i32; 2] = [5, 1];
/// The longest back-off, seconds.
pub(crate) const MAX_BACKOFF: i64 = 3600;
/// Consecutive failures from unknown browsers after which the account needs a new password.
pub(crate) const LOCK_AFTER: i32 = 100;
/// Wrong passwords in a row after which an account forgets a browser.
pub(crate) const DEVICE_FORGET_AFTER: i32 = 10;
/// Failed sign-ins a minute, platform-wide, below which there is never an attack.
pub(crate) const ATTACK_FLOOR: i64 = 60;
/// How many times the day's median minute counts as a spike.
pub(crate) const ATTACK_FACTOR: i64 = 5;
/// Attempts a minute from unknown browsers a node lets on while under attack.
pub(crate) const UNKNOWN_PER_MINUTE_UNDER_ATTACK: i64 = 300;
/// How long a node keeps its answer to "are we under attack?", seconds.
const WATCH_SECS: i64 = 2;

/// The counter key of an address: IPv4 singly, IPv6 by /64 (one customer's allocation), and
/// IPv4-mapped IPv6 as the IPv4 address it is.
pub(crate) fn ip_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => format!("ip:{}/64", prefix64(v6)),
    }
}

/// The counter key of an address's network: its /24 (IPv4) or /48 (IPv6: a site's allocation,
/// since one customer's /64 is already the address key).
pub(crate) fn net_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("net:{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("net:{}/48", std::net::Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

fn prefix64(v6: std::net::Ipv6Addr) -> std::net::Ipv6Addr {
    let s = v6.segments();
    std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0)
}

/// Seconds an account must wait after its last failure, given its consecutive failures.
pub(crate) fn backoff(failures: i32, free: i32) -> i64 {
    if failures < free {
        return 0;
    }
    let doublings = u32::try_from(failures - free + 1).unwrap_or(u32::MAX).min(12);
    (1i64 << doublings).min(MAX_BACKOFF)
}

/// Whether the failed sign-ins per minute (`(minute start, failures)`, any order, missing
/// minutes meaning none) show a spike at `now`: the current or the previous minute above both
/// the floor and [`ATTACK_FACTOR`] times the median minute of the day before them.
pub(crate) fn is_spike(minutes: &[(UnixTime, i64)], now: UnixTime) -> bool {
    let current = now - now.rem_euclid(60);
    let recent = minutes.iter().filter(|(m, _)| *m >= current - 60).map(|(_, f)| *f).max().unwrap_or(0);
    if recent <= ATTACK_FLOOR {
        return false;
    }
    let day_start = current - 60 - 86_400;
    let mut day: Vec<i64> =
        minutes.iter().filter(|(m, _)| *m >= day_start && *m < current - 60).map(|(_, f)| *f).collect();
    // Minutes with no failures have no row: the median of 1,440 minutes counts them as zeros.
    let zeros = 1440usize.saturating_sub(day.len());
    day.sort_unstable();
    let median = if zeros > 720 { 0 } else { day.get(720 - zeros).copied().unwrap_or(0) };
    recent > ATTACK_FACTOR * median
}

/// A fixed-window counter kept by one node (the platform-wide cap under attack protects each
/// node's password-hashing capacity, so it is per node and costs no database write).
#[derive(Debug, Default)]
pub(crate) struct NodeWindow {
    state: Mutex<(UnixTime, i64)>,
}

impl NodeWindow {
    /// Counts one attempt; refuses past `limit` a window, with the seconds left in it.
    pub(crate) fn hit(&self, now: UnixTime, window: i64, limit: i64) -> Result<(), u64> {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if now - s.0 >= window || now < s.0 {
            *s = (now, 0);
        }
        s.1 += 1;
        if s.1 > limit {
            return Err(u64::try_from(window - (now - s.0)).unwrap_or(1).max(1));
        }
        Ok(())
    }
}

/// Failed sign-ins a node has counted but not yet added to the database's per-minute totals:
/// written at most once a second (and whenever the minute changes or the watch looks), not once
/// per attempt, so a flood costs no write each.
#[derive(Debug, Default)]
pub(crate) struct FailureBuffer {
    state: Mutex<FailureState>,
}

#[derive(Debug, Default)]
struct FailureState {
    minute: UnixTime,
    pending: i64,
    flushed_at: UnixTime,
}

impl FailureBuffer {
    /// Counts a failure at `now`; returns what should be written now, if anything.
    pub(crate) fn add(&self, now: UnixTime) -> Vec<(UnixTime, i64)> {
        let minute = now - now.rem_euclid(60);
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::new();
        if s.pending > 0 && s.minute != minute {
            out.push((s.minute, s.pending));
            s.pending = 0;
        }
        s.minute = minute;
        s.pending += 1;
        if now != s.flushed_at {
            out.push((minute, s.pending));
            s.pending = 0;
            s.flushed_at = now;
        }
        out
    }

    /// Everything not yet written.
    pub(crate) fn take(&self) -> Option<(UnixTime, i64)> {
        let mut s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (s.pending > 0).then(|| {
            let n = std::mem::take(&mut s.pending);
            (s.minute, n)
        })
    }
}

/// A node's cached answer to "is the platform under attack?".
#[derive(Debug, Default)]
pub(crate) struct AttackWatch {
    state: Mutex<Option<(UnixTime, bool)>>,
}

impl AttackWatch {
    /// The cached answer if it is fresh at `now`.
    pub(crate) fn cached(&self, now: UnixTime) -> Option<bool> {
        let s = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.filter(|(at, _)| now >= *at && now - *at < WATCH_SECS).map(|(_, v)| v)
    }

    /// Keeps a fresh answer.
    pub(crate) fn keep(&self, now: UnixTime, under_attack: bool) {
        *self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((now, under_attack));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn networks_and_addresses_are_keyed_by_their_prefix() {
        let v4: IpAddr = [192, 0, 2, 77].into();
        assert_eq!(ip_key(v4), "ip:192.0.2.77");
        assert_eq!(net_key(v4), "net:192.0.2.0/24");
        let parse = |s: &str| -> IpAddr { s.parse().unwrap() };
        let mapped = parse("::ffff:192.0.2.77");
        assert_eq!(ip_key(mapped), ip_key(v4));
        let a = parse("2001:db8:1:2::1");
        let b = parse("2001:db8:1:2:ffff::9");
        let c = parse("2001:db8:1:3::1");
        assert_eq!(ip_key(a), ip_key(b));
        assert_eq!(net_key(a), "net:2001:db8:1::/48");
        assert_eq!(net_key(a), net_key(c), "one site's /48");
        assert_ne!(ip_key(a), ip_key(c));
        let d = parse("2001:db8:2::1");
        assert_ne!(net_key(a), net_key(d));
    }

    #[test]
    fn the_backoff_doubles_from_the_free_failures_up_to_an_hour() {
        assert_eq!(backoff(4, 5), 0);
        assert_eq!(backoff(5, 5), 2);
        assert_eq!(backoff(6, 5), 4);
        assert_eq!(backoff(10, 5), 64);
        assert_eq!(backoff(99, 5), MAX_BACKOFF);
        assert_eq!(backoff(1, 1), 2);
        assert_eq!(backoff(0, 1), 0);
    }

    #[test]
    fn a_spike_is_above_the_floor_and_the_days_typical_minute() {
        let now = 1_800_000_030;
        let current = now - now % 60;
        assert!(!is_spike(&[], now));
        assert!(!is_spike(&[(current, ATTACK_FLOOR)], now), "at the floor is not a spike");
        assert!(is_spike(&[(current, ATTACK_FLOOR + 1)], now));
        assert!(is_spike(&[(current - 60, 500)], now), "the previous minute counts");
        assert!(!is_spike(&[(current - 120, 500)], now), "older minutes do not");
        // A platform whose typical minute has 100 failures needs more than 500 for a spike.
        let busy: Vec<(i64, i64)> = (2..1442).map(|i| (current - 60 * i, 100)).collect();
        let mut with = busy.clone();
        with.push((current, 400));
        assert!(!is_spike(&with, now));
        with.push((current - 60, 501));
        assert!(is_spike(&with, now));
        // A few busy minutes do not move the median.
        let mut few: Vec<(i64, i64)> = (2..100).map(|i| (current - 60 * i, 10_000)).collect();
        few.push((current, 100));
        assert!(is_spike(&few, now));
    }

    #[test]
    fn failures_are_written_at_most_once_a_second_and_never_lost() {
        let b = FailureBuffer::default();
        assert_eq!(b.add(120), vec![(120, 1)], "the first of a second is written at once");
        assert!(b.add(120).is_empty());
        assert!(b.add(120).is_empty());
        assert_eq!(b.add(121), vec![(120, 3)], "the next second writes what waited");
        assert!(b.add(121).is_empty());
        assert_eq!(b.add(185), vec![(120, 1), (180, 1)], "a new minute writes the old one's rest first");
        assert!(b.add(185).is_empty());
        assert_eq!(b.take(), Some((180, 1)));
        assert_eq!(b.take(), None);
    }

    #[test]
    fn a_node_window_counts_to_its_limit_and_then_waits() {
        let w = NodeWindow::default();
        for _ in 0..3 {
            assert!(w.hit(1000, 60, 3).is_ok());
        }
        assert_eq!(w.hit(1010, 60, 3), Err(50));
        assert!(w.hit(1060, 60, 3).is_ok(), "a new window");
    }

    #[test]
    fn the_watch_forgets_after_a_few_seconds() {
        let w = AttackWatch::default();
        assert_eq!(w.cached(100), None);
        w.keep(100, true);
        assert_eq!(w.cached(101), Some(true));
        assert_eq!(w.cached(102), None);
        assert_eq!(w.cached(99), None, "a clock that went back asks again");
    }
}

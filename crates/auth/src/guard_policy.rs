//! The password-guessing defence's decisions, as pure functions of counts and times (no store,
//! no clock): how long a failed login waits, when an address is banned and for how long, how a
//! client address is counted, and which addresses an account's owner used lately. The runtime
//! side (`guard.rs`) feeds them the counts the store returns and the time of its clock.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use store::{FailureCount, FailureWindows, UnixTime};

/// Failures answered after just the base delay; from the next one on the delay doubles with
/// each failure (up to the maximum). A user who mistypes a password twice never waits long.
pub const GRACE_FAILURES: u32 = 3;

/// The password-guessing defence's settings (`[auth]` and `[limits] trusted_networks` in the
/// configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct GuardPolicy {
    /// Off: no counters and no bans (the fixed failure delay of the authenticator remains).
    pub enabled: bool,
    /// The delay of the first [`GRACE_FAILURES`] failures.
    pub base_delay: Duration,
    /// The longest a failed login is made to wait.
    pub max_delay: Duration,
    /// An address with this many failures within `window` is banned for `ban`.
    pub max_failures: u32,
    pub window: Duration,
    pub ban: Duration,
    /// An address with this many failures within `burst_window` is banned for `burst_ban`.
    pub burst_failures: u32,
    pub burst_window: Duration,
    pub burst_ban: Duration,
    /// How long an address that logged in to an account stays "known" for it: failures
    /// against the account from elsewhere do not slow its owner there.
    pub known_ip_ttl: Duration,
    /// How often a server rereads the bans from the store (bans made by `yubin ban add` or
    /// another node take effect within this).
    pub refresh: Duration,
    /// Exempt from counters and bans (`[limits] trusted_networks`).
    pub trusted: server_kit::TrustedNetworks,
}

impl Default for GuardPolicy {
    /// In the spirit of Stalwart's 100 failures a day: 100 failures in 24 hours ban an address
    /// for 24 hours; 20 failures within 5 minutes (a fast burst) ban it for an hour. Delays
    /// start at 2 s and double after the third failure, up to 15 s. Loopback is trusted.
    fn default() -> Self {
        GuardPolicy {
            enabled: true,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(15),
            max_failures: 100,
            window: Duration::from_secs(86_400),
            ban: Duration::from_secs(86_400),
            burst_failures: 20,
            burst_window: Duration::from_secs(300),
            burst_ban: Duration::from_secs(3_600),
            known_ip_ttl: Duration::from_secs(30 * 86_400),
            refresh: Duration::from_secs(10),
            trusted: server_kit::TrustedNetworks::default(),
        }
    }
}

/// Why an address was banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanReason {
    /// `max_failures` within `window`.
    Failures,
    /// `burst_failures` within `burst_window`.
    Burst,
}

impl BanReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BanReason::Failures => "failures",
            BanReason::Burst => "burst",
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl GuardPolicy {
    /// The windows the store counts in.
    pub fn windows(&self) -> FailureWindows {
        FailureWindows {
            long_secs: secs(self.window).max(1),
            short_secs: secs(self.burst_window).max(1),
        }
    }

    /// Whether `ip` is exempt from counters and bans.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.contains(ip)
    }

    /// How long the answer to a failed login waits, after `failures` failures (this one
    /// included): the base delay for the first [`GRACE_FAILURES`], then doubling, at most
    /// `max_delay`.
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(GRACE_FAILURES).min(20);
        let delay = self.base_delay.saturating_mul(1 << doublings);
        delay.min(self.max_delay.max(self.base_delay))
    }

    /// Whether an address with `count` failures is banned now, for how long and why: the
    /// longer ban when both thresholds are reached. A threshold of 0 is off.
    pub fn ban_for(&self, count: FailureCount) -> Option<(Duration, BanReason)> {
        let long = (self.max_failures > 0 && count.long >= self.max_failures)
            .then_some((self.ban, BanReason::Failures));
        let burst = (self.burst_failures > 0 && count.short >= self.burst_failures)
            .then_some((self.burst_ban, BanReason::Burst));
        match (long, burst) {
            (Some(l), Some(b)) => Some(if b.0 > l.0 { b } else { l }),
            (l, b) => l.or(b),
        }
    }
}

/// The address a client is counted and banned under, as stored: IPv4 (IPv4-mapped IPv6 too)
/// as itself, other IPv6 addresses by their /64 (one host usually owns a whole /64 and could
/// otherwise pick a fresh address for every guess). Same rule as the connection limits.
pub fn subject(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0).to_string()
        }
    }
}

/// The addresses each account logged in from lately, bounded in both directions (accounts and
/// addresses per account), in memory only: after a restart an owner's address is known again at
/// its first successful login.
#[derive(Debug, Default)]
pub struct KnownIps {
    /// account → (address subject → time of the last successful login).
    by_account: HashMap<String, HashMap<String, UnixTime>>,
}

/// Addresses remembered per account; the least recently used goes first.
pub const KNOWN_IPS_PER_ACCOUNT: usize = 16;
/// Accounts remembered; beyond it, entries past their TTL are dropped, then arbitrary ones.
pub const KNOWN_ACCOUNTS: usize = 100_000;

impl KnownIps {
    /// Remembers a successful login of `account` from `ip` (a subject) at `now`.
    pub fn remember(&mut self, account: &str, ip: &str, now: UnixTime, ttl: Duration) {
        if !self.by_account.contains_key(account) && self.by_account.len() >= KNOWN_ACCOUNTS {
            let oldest = now.saturating_sub(secs(ttl));
            self.by_account
                .retain(|_, ips| ips.values().any(|&t| t > oldest));
            if self.by_account.len() >= KNOWN_ACCOUNTS
                && let Some(k) = self.by_account.keys().next().cloned()
            {
                self.by_account.remove(&k);
            }
        }
        let ips = self.by_account.entry(account.to_string()).or_default();
        ips.insert(ip.to_string(), now);
        while ips.len() > KNOWN_IPS_PER_ACCOUNT {
            let Some(oldest) = ips.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) else {
                break;
            };
            ips.remove(&oldest);
        }
    }

    /// Whether `account` logged in from `ip` within `ttl` before `now`.
    pub fn is_known(&self, account: &str, ip: &str, now: UnixTime, ttl: Duration) -> bool {
        self.by_account
            .get(account)
            .and_then(|ips| ips.get(ip))
            .is_some_and(|&t| now.saturating_sub(t) < secs(ttl))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> GuardPolicy {
        GuardPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..GuardPolicy::default()
        }
    }

    #[test]
    fn delay_grows_after_the_grace_failures_up_to_the_maximum() {
        let p = policy();
        let ms = |n| p.delay(n).as_millis();
        assert_eq!([ms(0), ms(1), ms(2), ms(3)], [100, 100, 100, 100]);
        assert_eq!([ms(4), ms(5), ms(6), ms(7)], [200, 400, 800, 1000]);
        assert_eq!(ms(1_000_000), 1000);
        // A maximum below the base never shortens the base delay.
        let p = GuardPolicy {
            max_delay: Duration::ZERO,
            ..policy()
        };
        assert_eq!(p.delay(50), Duration::from_millis(100));
    }

    #[test]
    fn bans_at_either_threshold_the_longer_wins() {
        let p = GuardPolicy::default();
        let count = |long, short| FailureCount { long, short };
        assert_eq!(p.ban_for(count(99, 19)), None);
        assert_eq!(
            p.ban_for(count(100, 1)),
            Some((Duration::from_secs(86_400), BanReason::Failures))
        );
        assert_eq!(
            p.ban_for(count(20, 20)),
            Some((Duration::from_secs(3_600), BanReason::Burst))
        );
        assert_eq!(
            p.ban_for(count(100, 20)),
            Some((Duration::from_secs(86_400), BanReason::Failures))
        );
        let off = GuardPolicy {
            max_failures: 0,
            burst_failures: 0,
            ..p
        };
        assert_eq!(off.ban_for(count(u32::MAX, u32::MAX)), None);
    }

    #[test]
    fn subjects_and_trust() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(subject(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(subject(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert_eq!(subject(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::");
        let p = GuardPolicy::default();
        assert!(p.is_trusted(ip("127.0.0.2")));
        assert!(p.is_trusted(ip("::1")));
        assert!(p.is_trusted(ip("::ffff:127.0.0.1")));
        assert!(!p.is_trusted(ip("192.0.2.1")));
        let none = GuardPolicy {
            trusted: server_kit::TrustedNetworks::none(),
            ..p
        };
        assert!(!none.is_trusted(ip("127.0.0.1")));
    }

    #[test]
    fn known_ips_expire_and_are_bounded() {
        let ttl = Duration::from_secs(100);
        let mut k = KnownIps::default();
        k.remember("a@x.test", "192.0.2.1", 1000, ttl);
        assert!(k.is_known("a@x.test", "192.0.2.1", 1099, ttl));
        assert!(!k.is_known("a@x.test", "192.0.2.1", 1100, ttl));
        assert!(!k.is_known("b@x.test", "192.0.2.1", 1000, ttl));
        assert!(!k.is_known("a@x.test", "192.0.2.2", 1000, ttl));
        // A new login refreshes the time.
        k.remember("a@x.test", "192.0.2.1", 1050, ttl);
        assert!(k.is_known("a@x.test", "192.0.2.1", 1149, ttl));
        // At most KNOWN_IPS_PER_ACCOUNT addresses: the oldest goes.
        for i in 0..KNOWN_IPS_PER_ACCOUNT {
            k.remember("a@x.test", &format!("198.51.100.{i}"), 1060 + i as i64, ttl);
        }
        assert!(!k.is_known("a@x.test", "192.0.2.1", 1100, ttl));
        assert!(k.is_known("a@x.test", "198.51.100.0", 1100, ttl));
    }
}

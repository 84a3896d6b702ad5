//! Connection counting: a global limit, a per-client-address limit and a per-address
//! connection rate, shared by all listeners.
//!
//! A connection holds a [`ConnGuard`] for its whole life; dropping it (session end, panic,
//! refused handshake) gives the slot back, so counts cannot leak.
//!
//! Clients on `[limits] trusted_networks` are exempt from the per-address limit and the rate
//! (as Postfix exempts `mynetworks` from its anvil limits); the global limit, which protects
//! the process's file descriptors, holds for everyone.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use antispam::RateWindow;
use server_kit::TrustedNetworks;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooManyTotal,
    TooManyFromIp,
    /// More new connections per minute than `connection_rate_per_ip`.
    ConnectionRate,
}

/// The counters. Cheap to share: one per process.
pub struct ConnLimits {
    max_total: usize,
    max_per_ip: usize,
    trusted: TrustedNetworks,
    rate: RateWindow,
    state: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    /// The most open at once since [`ConnLimits::take_peak`] last looked.
    peak: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Holds one connection slot until dropped.
pub struct ConnGuard {
    limits: Arc<ConnLimits>,
    /// `None` for a trusted client (not counted per address).
    key: Option<IpAddr>,
}

/// The address a client is counted under: IPv4-mapped IPv6 as IPv4, other IPv6 addresses by
/// their /64, since one host usually owns a whole /64 and could otherwise evade the limit.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl ConnLimits {
    /// Limits without exemptions or rate (tests).
    #[cfg(test)]
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnLimits> {
        ConnLimits::with(max_total, max_per_ip, TrustedNetworks::none(), 0)
    }

    /// `rate_per_minute` new connections per minute per address (0: no limit); `trusted`
    /// networks are exempt from the per-address limits.
    pub fn with(
        max_total: usize,
        max_per_ip: usize,
        trusted: TrustedNetworks,
        rate_per_minute: u32,
    ) -> Arc<ConnLimits> {
        Arc::new(ConnLimits {
            max_total,
            max_per_ip,
            trusted,
            rate: RateWindow::per_minute(rate_per_minute),
            state: Mutex::new(Counts::default()),
        })
    }

    /// Takes a slot for a connection from `ip`, or says which limit it would exceed.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnGuard, Refusal> {
        let key = (!self.trusted.contains(ip)).then(|| client_key(ip));
        let mut counts = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.max_total {
            return Err(Refusal::TooManyTotal);
        }
        if let Some(key) = key {
            let n = counts.per_ip.get(&key).copied().unwrap_or(0);
            if n >= self.max_per_ip {
                return Err(Refusal::TooManyFromIp);
            }
            // Counted only when admitted: a client that waits gets back in.
            if !self.rate.hit(ip) {
                return Err(Refusal::ConnectionRate);
            }
            *counts.per_ip.entry(key).or_insert(0) += 1;
        }
        counts.total += 1;
        counts.peak = counts.peak.max(counts.total);
        Ok(ConnGuard {
            limits: Arc::clone(self),
            key,
        })
    }

    /// How many connections are open now.
    #[cfg(test)]
    pub fn total(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).total
    }

    /// How many are open now, and the most that were open at once since the last call (a
    /// burst of connections between two looks is seen too).
    pub fn take_peak(&self) -> (usize, usize) {
        let mut counts = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let peak = counts.peak.max(counts.total);
        counts.peak = counts.total;
        (counts.total, peak)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut counts = self.limits.state.lock().unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        let Some(key) = self.key else { return };
        if let Some(n) = counts.per_ip.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // Forget idle addresses so the map stays as small as the open connections.
                counts.per_ip.remove(&key);
                // And give the table's memory back once most addresses have left.
                if counts.per_ip.capacity() > 64
                    && counts.per_ip.len() * 4 < counts.per_ip.capacity()
                {
                    let keep = counts.per_ip.len() * 2;
                    counts.per_ip.shrink_to(keep);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_limit_and_release() {
        let l = ConnLimits::new(10, 2);
        let a = l.try_acquire(ip("192.0.2.1")).unwrap();
        let _b = l.try_acquire(ip("192.0.2.1")).unwrap();
        assert_eq!(
            l.try_acquire(ip("192.0.2.1")).err(),
            Some(Refusal::TooManyFromIp)
        );
        // Another client is not affected.
        let _c = l.try_acquire(ip("192.0.2.2")).unwrap();
        drop(a);
        assert!(l.try_acquire(ip("192.0.2.1")).is_ok());
        assert_eq!(l.total(), 2);
    }

    #[test]
    fn global_limit() {
        let l = ConnLimits::new(2, 5);
        let _a = l.try_acquire(ip("192.0.2.1")).unwrap();
        let _b = l.try_acquire(ip("192.0.2.2")).unwrap();
        assert_eq!(
            l.try_acquire(ip("192.0.2.3")).err(),
            Some(Refusal::TooManyTotal)
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_as_v4() {
        let l = ConnLimits::new(10, 1);
        let _a = l.try_acquire(ip("2001:db8:1:2::1")).unwrap();
        assert!(l.try_acquire(ip("2001:db8:1:2::ffff")).is_err());
        assert!(l.try_acquire(ip("2001:db8:1:3::1")).is_ok());
        let _v4 = l.try_acquire(ip("192.0.2.9")).unwrap();
        assert!(l.try_acquire(ip("::ffff:192.0.2.9")).is_err());
    }

    #[test]
    fn trusted_networks_skip_the_per_address_limits_but_not_the_total() {
        let trusted = TrustedNetworks::parse(&["192.0.2.0/24"]).unwrap();
        let l = ConnLimits::with(3, 1, trusted, 1);
        let _a = l.try_acquire(ip("192.0.2.1")).unwrap();
        let _b = l.try_acquire(ip("192.0.2.1")).unwrap();
        assert!(l.state.lock().unwrap().per_ip.is_empty());
        let c = l.try_acquire(ip("198.51.100.1")).unwrap();
        assert_eq!(
            l.try_acquire(ip("192.0.2.1")).err(),
            Some(Refusal::TooManyTotal)
        );
        drop(c);
        // The rate (1 a minute) is used up by the first untrusted connection.
        assert_eq!(
            l.try_acquire(ip("198.51.100.1")).err(),
            Some(Refusal::ConnectionRate)
        );
        assert!(l.try_acquire(ip("192.0.2.1")).is_ok());
    }

    #[test]
    fn map_is_emptied_when_connections_end() {
        let l = ConnLimits::new(10, 3);
        drop(l.try_acquire(ip("192.0.2.1")).unwrap());
        assert_eq!(l.total(), 0);
        assert!(l.state.lock().unwrap().per_ip.is_empty());
    }
}

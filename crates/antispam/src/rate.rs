//! A per-address rate limit over a sliding one-minute window (connections per minute, messages
//! per minute), in memory.
//!
//! The window is approximated as Cloudflare and nginx do: the count of the current fixed
//! minute plus the previous minute's count weighted by how much of it still lies inside the
//! sliding window. That keeps three numbers per address, whatever the rate. Addresses idle for
//! two windows are dropped, so the map holds only recent clients.
//!
//! The counts are per process: on several nodes each node allows the rate (as Postfix's anvil
//! per host).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The address a client is counted under: IPv4-mapped IPv6 as IPv4, other IPv6 addresses by
/// their /64 (one host usually owns a whole /64).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Start of the current fixed window.
    start: Instant,
    previous: u32,
    current: u32,
}

/// At most `limit` events per `window` per client address; a limit of 0 allows everything.
pub struct RateWindow {
    limit: u32,
    window: Duration,
    state: Mutex<State>,
}

struct State {
    buckets: HashMap<IpAddr, Bucket>,
    last_prune: Instant,
}

impl RateWindow {
    pub fn per_minute(limit: u32) -> RateWindow {
        RateWindow::new(limit, Duration::from_secs(60))
    }

    pub fn new(limit: u32, window: Duration) -> RateWindow {
        RateWindow {
            limit,
            window,
            state: Mutex::new(State {
                buckets: HashMap::new(),
                last_prune: Instant::now(),
            }),
        }
    }

    pub fn enabled(&self) -> bool {
        self.limit > 0
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Counts one event from `ip` if it stays within the limit (`true`); an event over the
    /// limit is refused (`false`) and not counted, so a client that slows down gets back in.
    pub fn hit(&self, ip: IpAddr) -> bool {
        self.hit_at(ip, Instant::now())
    }

    fn hit_at(&self, ip: IpAddr, now: Instant) -> bool {
        if self.limit == 0 {
            return true;
        }
        let window = self.window;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(state.last_prune) >= window {
            state
                .buckets
                .retain(|_, b| now.saturating_duration_since(b.start) < 2 * window);
            state.last_prune = now;
        }
        let b = state.buckets.entry(client_key(ip)).or_insert(Bucket {
            start: now,
            previous: 0,
            current: 0,
        });
        let mut elapsed = now.saturating_duration_since(b.start);
        if elapsed >= 2 * window {
            *b = Bucket {
                start: now,
                previous: 0,
                current: 0,
            };
            elapsed = Duration::ZERO;
        } else if elapsed >= window {
            b.previous = b.current;
            b.current = 0;
            b.start += window;
            elapsed -= window;
        }
        let left = 1.0 - elapsed.as_secs_f64() / window.as_secs_f64();
        let estimate = f64::from(b.previous) * left + f64::from(b.current);
        if estimate + 1.0 > f64::from(self.limit) {
            return false;
        }
        b.current += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn limit_per_address_and_window() {
        let r = RateWindow::per_minute(3);
        let t = Instant::now();
        let a = ip("192.0.2.1");
        assert!(r.hit_at(a, t));
        assert!(r.hit_at(a, t));
        assert!(r.hit_at(a, t));
        assert!(!r.hit_at(a, t));
        // Others are not affected; IPv6 counts per /64.
        assert!(r.hit_at(ip("192.0.2.2"), t));
        assert!(r.hit_at(ip("2001:db8::1"), t));
        assert!(r.hit_at(ip("2001:db8::2"), t));
        assert!(r.hit_at(ip("2001:db8::3"), t));
        assert!(!r.hit_at(ip("2001:db8::4"), t));
        // Half a minute into the next window, half of the previous 3 still count.
        let later = t + Duration::from_secs(90);
        assert!(r.hit_at(a, later));
        assert!(!r.hit_at(a, later), "1.5 + 1 + 1 > 3");
        // Two windows later everything is forgotten.
        let much_later = t + Duration::from_secs(300);
        for _ in 0..3 {
            assert!(r.hit_at(a, much_later));
        }
    }

    #[test]
    fn zero_is_unlimited_and_idle_addresses_are_dropped() {
        let off = RateWindow::per_minute(0);
        assert!((0..1000).all(|_| off.hit(ip("192.0.2.1"))));
        let r = RateWindow::per_minute(5);
        let t = Instant::now();
        r.hit_at(ip("192.0.2.1"), t);
        r.hit_at(ip("192.0.2.2"), t + Duration::from_secs(150));
        assert_eq!(r.state.lock().unwrap().buckets.len(), 1);
    }
}

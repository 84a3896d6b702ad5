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
//!
//! At most [`MAX_TRACKED`] addresses are tracked: an attacker spread over more IPv6 /64s than
//! that within two windows cannot grow the map further. A new address beyond it is let
//! through uncounted (the per-address connection limit still holds); an attacker with that
//! many networks is not slowed by a per-address rate anyway.

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

/// Addresses tracked at most per window (about 6 MB).
pub const MAX_TRACKED: usize = 100_000;

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
        let key = client_key(ip);
        let full = state.buckets.len() >= MAX_TRACKED && !state.buckets.contains_key(&key);
        if full || now.saturating_duration_since(state.last_prune) >= window {
            state
                .buckets
                .retain(|_, b| now.saturating_duration_since(b.start) < 2 * window);
            state.last_prune = now;
            if state.buckets.len() >= MAX_TRACKED {
                return true;
            }
        }
        let b = state.buckets.entry(key).or_insert(Bucket {
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
    fn the_map_is_capped() {
        let r = RateWindow::per_minute(1);
        let t = Instant::now();
        for i in 0..MAX_TRACKED as u32 + 10 {
            // A different /64 each time.
            let v6 = Ipv6Addr::new(0x2001, 0xdb8, (i >> 16) as u16, i as u16, 0, 0, 0, 1);
            assert!(r.hit_at(IpAddr::V6(v6), t));
        }
        assert_eq!(r.state.lock().unwrap().buckets.len(), MAX_TRACKED);
        // Known addresses are still limited; once the window passed, room again.
        let first = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert!(!r.hit_at(first, t));
        let later = t + Duration::from_secs(150);
        assert!(r.hit_at(ip("192.0.2.1"), later));
        assert!(!r.hit_at(ip("192.0.2.1"), later));
        assert_eq!(r.state.lock().unwrap().buckets.len(), 1);
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

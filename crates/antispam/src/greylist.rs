//! Greylisting (`[antispam] greylisting`): the first delivery attempt of an unknown (client
//! network, sender, recipient) triple is refused for a while with `451 4.7.1`; a real MTA
//! retries (RFC 5321 §4.5.4.1) and is accepted once the delay has passed, and from then on at
//! once. Most spam software never retries.
//!
//! The client is taken by network (IPv4 /24, IPv6 /64) because large senders retry from
//! another address of the same pool. The state lives in the store (`store::Greylist`): shared
//! by every node, kept across restarts. A store failure lets the recipient through (logged):
//! greylisting must never lose mail.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use store::{Greylist, GreylistPolicy, GreylistTriple, UnixTime};

/// How often stale triples are removed (at most; triggered by attempts).
const PURGE_EVERY_SECS: i64 = 3600;

/// The client network a triple names: `192.0.2.0/24`, `2001:db8:1:2::/64`.
pub fn network_of(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

/// What to do with a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Refuse for now; the retry is accepted in this many seconds.
    Wait(i64),
}

pub struct Greylister {
    store: Arc<dyn Greylist>,
    policy: GreylistPolicy,
    last_purge: Arc<AtomicI64>,
}

fn now() -> UnixTime {
    chrono::Utc::now().timestamp()
}

impl Greylister {
    pub fn new(store: Arc<dyn Greylist>, policy: GreylistPolicy) -> Greylister {
        Greylister {
            store,
            policy,
            last_purge: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Records an attempt to deliver from `sender` (`""` for `<>`) to `recipient` by `ip`.
    pub async fn check(&self, ip: IpAddr, sender: &str, recipient: &str) -> Verdict {
        let triple = GreylistTriple {
            network: network_of(ip),
            sender: sender.to_lowercase(),
            recipient: recipient.to_lowercase(),
        };
        let t = now();
        self.purge_now_and_then(t);
        match self.store.greylist_attempt(&triple, t, self.policy).await {
            Ok(entry) if entry.passed.is_some() => Verdict::Accept,
            Ok(entry) => Verdict::Wait((entry.first_seen + self.policy.delay - t).max(1)),
            Err(e) => {
                tracing::warn!(target: "audit", event = %"greylist_error", ip = %ip, error = %e, "greylisting state unavailable; recipient let through");
                Verdict::Accept
            }
        }
    }

    fn purge_now_and_then(&self, t: UnixTime) {
        let last = self.last_purge.load(Ordering::Relaxed);
        if t - last < PURGE_EVERY_SECS
            || self
                .last_purge
                .compare_exchange(last, t, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let (store, policy) = (Arc::clone(&self.store), self.policy);
        tokio::spawn(async move {
            match store.greylist_purge(t, policy).await {
                Ok(n) => tracing::debug!(removed = n, "greylisting: stale triples removed"),
                Err(e) => tracing::warn!(error = %e, "greylisting: cannot remove stale triples"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks() {
        assert_eq!(network_of("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(
            network_of("::ffff:192.0.2.77".parse().unwrap()),
            "192.0.2.0/24"
        );
        assert_eq!(
            network_of("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
    }

    #[tokio::test]
    async fn first_attempt_waits_and_the_retry_after_the_delay_passes() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_sqlite::open(dir.path()).unwrap();
        let policy = GreylistPolicy {
            delay: 1,
            retry_window: 3600,
            pass_ttl: 3600,
        };
        let g = Greylister::new(store, policy);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            g.check(ip, "a@x.test", "B@example.com").await,
            Verdict::Wait(1)
        );
        // Another address of the same /24, sender case differing: the same triple.
        let same_net: IpAddr = "192.0.2.200".parse().unwrap();
        assert!(matches!(
            g.check(same_net, "A@x.test", "b@example.com").await,
            Verdict::Wait(_)
        ));
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        assert_eq!(
            g.check(same_net, "a@x.test", "b@example.com").await,
            Verdict::Accept
        );
        assert_eq!(
            g.check(ip, "a@x.test", "b@example.com").await,
            Verdict::Accept
        );
        // Another network is a new triple.
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(matches!(
            g.check(other, "a@x.test", "b@example.com").await,
            Verdict::Wait(_)
        ));
    }
}

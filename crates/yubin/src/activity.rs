//! What the admin console's charts show, counted in memory since the server started: messages
//! delivered and refused per hour (a fixed ring of hourly buckets), hourly samples of the
//! queue's size and oldest age, and authentication failures per client address.
//!
//! The counts come from the same call sites as the Prometheus counters, through
//! [`telemetry::ActivitySink`]: a message's 250 after the data, each SMTP refusal, each failed
//! login. So the charts count whatever the log filter is, and no log event is built for
//! them. Nothing is persisted: a restart starts the charts again (the log keeps the history).

use std::collections::HashMap;
use std::sync::Mutex;

/// Hours kept.
pub const HOURS: usize = 48;
/// Client addresses with failures tracked at most; beyond, the address with the fewest
/// failures is forgotten (so a scan from many addresses cannot grow the table).
pub const MAX_ADDRESSES: usize = 1000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    /// The hour (Unix seconds / 3600) this bucket counts; another hour's counts are stale.
    hour: i64,
    delivered: u64,
    refused: u64,
    /// Largest queue seen in this hour, and the oldest age then.
    queue: Option<(u64, u64)>,
}

#[derive(Default)]
struct Inner {
    ring: Vec<Bucket>,
    failures: HashMap<String, u64>,
}

/// The counters, shared by the log layer (writer) and the console (reader).
pub struct Activity {
    inner: Mutex<Inner>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            inner: Mutex::new(Inner {
                ring: vec![Bucket::default(); HOURS],
                failures: HashMap::new(),
            }),
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Activity {
    /// The bucket of the hour of `t`, emptied first if it still holds an older hour.
    fn bucket(inner: &mut Inner, t: i64) -> &mut Bucket {
        let hour = t.div_euclid(3600);
        let b = &mut inner.ring[hour.rem_euclid(HOURS as i64) as usize];
        if b.hour != hour {
            *b = Bucket {
                hour,
                ..Bucket::default()
            };
        }
        b
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn delivered_at(&self, t: i64) {
        self.with(|i| Self::bucket(i, t).delivered += 1);
    }

    pub fn refused_at(&self, t: i64) {
        self.with(|i| Self::bucket(i, t).refused += 1);
    }

    pub fn delivered(&self) {
        self.delivered_at(now());
    }

    pub fn refused(&self) {
        self.refused_at(now());
    }

    /// Records the queue's size and oldest age seen at `t` (the hour keeps its largest).
    pub fn queue_sample_at(&self, t: i64, size: u64, oldest_secs: u64) {
        self.with(|i| {
            let b = Self::bucket(i, t);
            if b.queue.is_none_or(|(s, _)| size >= s) {
                b.queue = Some((size, oldest_secs));
            }
        });
    }

    /// Counts an authentication failure from `ip`.
    pub fn auth_failure(&self, ip: &str) {
        self.with(|i| {
            if !i.failures.contains_key(ip) && i.failures.len() >= MAX_ADDRESSES {
                let fewest = i
                    .failures
                    .iter()
                    .min_by_key(|(_, n)| **n)
                    .map(|(k, _)| k.clone());
                if let Some(k) = fewest {
                    i.failures.remove(&k);
                }
            }
            *i.failures.entry(ip.to_string()).or_default() += 1;
        });
    }

    /// The last [`HOURS`] hours up to the hour of `t`, oldest first: (hour start, delivered,
    /// refused); hours without a count are zeros.
    pub fn hours_at(&self, t: i64) -> Vec<(i64, u64, u64)> {
        let current = t.div_euclid(3600);
        self.with(|i| {
            (current - HOURS as i64 + 1..=current)
                .map(|h| {
                    let b = i.ring[h.rem_euclid(HOURS as i64) as usize];
                    if b.hour == h {
                        (h * 3600, b.delivered, b.refused)
                    } else {
                        (h * 3600, 0, 0)
                    }
                })
                .collect()
        })
    }

    /// The hourly queue samples of the last [`HOURS`] hours, oldest first (hours without a
    /// sample are left out).
    pub fn queue_samples_at(&self, t: i64) -> Vec<(i64, u64, u64)> {
        let current = t.div_euclid(3600);
        self.with(|i| {
            (current - HOURS as i64 + 1..=current)
                .filter_map(|h| {
                    let b = i.ring[h.rem_euclid(HOURS as i64) as usize];
                    match b.queue {
                        Some((s, o)) if b.hour == h => Some((h * 3600, s, o)),
                        _ => None,
                    }
                })
                .collect()
        })
    }

    pub fn hours(&self) -> Vec<(i64, u64, u64)> {
        self.hours_at(now())
    }

    pub fn queue_samples(&self) -> Vec<(i64, u64, u64)> {
        self.queue_samples_at(now())
    }

    /// The `n` addresses with the most failures, most first (ties by address).
    pub fn top_failures(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> =
            self.with(|i| i.failures.iter().map(|(k, v)| (k.clone(), *v)).collect());
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

impl telemetry::ActivitySink for Activity {
    fn accepted(&self) {
        self.delivered();
    }
    fn refused(&self) {
        Activity::refused(self);
    }
    fn auth_failure(&self, peer: std::net::IpAddr) {
        Activity::auth_failure(self, &peer.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of an hour (500 000 × 3600).
    const T: i64 = 1_800_000_000;

    #[test]
    fn hours_are_counted_in_their_bucket_and_old_hours_drop_out() {
        let a = Activity::default();
        a.delivered_at(T);
        a.delivered_at(T + 10);
        a.refused_at(T + 3599);
        a.delivered_at(T + 3600);
        let h = a.hours_at(T + 3600);
        assert_eq!(h.len(), HOURS);
        assert_eq!(h[HOURS - 1], (T + 3600, 1, 0));
        assert_eq!(h[HOURS - 2], (T, 2, 1));
        assert_eq!(h.iter().map(|x| x.1).sum::<u64>(), 3);
        // 48 hours later the ring slot of hour T is reused: the old counts are gone.
        let later = T + HOURS as i64 * 3600;
        a.refused_at(later);
        let h = a.hours_at(later);
        assert_eq!(h[HOURS - 1], (later, 0, 1));
        assert_eq!(
            h.iter().map(|x| x.1).sum::<u64>(),
            1,
            "only T+1h is still in range"
        );
        // Far later, nothing is left.
        assert!(
            a.hours_at(later + 100 * 3600)
                .iter()
                .all(|x| x.1 == 0 && x.2 == 0)
        );
    }

    #[test]
    fn queue_samples_keep_the_largest_of_each_hour() {
        let a = Activity::default();
        a.queue_sample_at(T, 3, 60);
        a.queue_sample_at(T + 60, 5, 120);
        a.queue_sample_at(T + 120, 4, 180);
        a.queue_sample_at(T + 7200, 0, 0);
        assert_eq!(
            a.queue_samples_at(T + 7200),
            vec![(T, 5, 120), (T + 7200, 0, 0)]
        );
    }

    #[test]
    fn failures_are_ranked_and_bounded() {
        let a = Activity::default();
        for _ in 0..3 {
            a.auth_failure("192.0.2.1");
        }
        a.auth_failure("192.0.2.2");
        a.auth_failure("192.0.2.2");
        a.auth_failure("192.0.2.3");
        assert_eq!(
            a.top_failures(2),
            vec![("192.0.2.1".to_string(), 3), ("192.0.2.2".to_string(), 2)]
        );
        for i in 0..MAX_ADDRESSES + 10 {
            a.auth_failure(&format!("10.0.{}.{}", i / 256, i % 256));
        }
        let all = a.top_failures(usize::MAX);
        assert_eq!(all.len(), MAX_ADDRESSES);
        assert_eq!(all[0], ("192.0.2.1".to_string(), 3), "the busiest stay");
    }

    #[test]
    fn the_metrics_call_sites_feed_the_charts() {
        let a = &crate::logging::recent().activity;
        telemetry::set_activity_sink(
            std::sync::Arc::clone(a) as std::sync::Arc<dyn telemetry::ActivitySink>
        );
        let sum = |h: Vec<(i64, u64, u64)>| h.iter().fold((0, 0), |s, x| (s.0 + x.1, s.1 + x.2));
        let before = sum(a.hours());
        telemetry::smtp_message_accepted();
        telemetry::smtp_rejected(telemetry::Rejection::RelayDenied);
        telemetry::smtp_rejected(telemetry::Rejection::Greylisted);
        telemetry::auth_failure_from("198.51.100.7".parse().unwrap());
        let after = sum(a.hours());
        assert_eq!((after.0 - before.0, after.1 - before.1), (1, 2));
        assert!(
            a.top_failures(usize::MAX)
                .contains(&("198.51.100.7".to_string(), 1))
        );
    }
}

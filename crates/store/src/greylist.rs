//! Greylisting state (`[antispam] greylisting`): which (client network, sender, recipient)
//! triples have tried before, and which have passed, shared by every node on the store and
//! kept across restarts.
//!
//! The state change is one pure function, [`GreylistPolicy::next`], so both backends decide
//! alike; each backend applies it to the stored row inside one write transaction, so parallel
//! sessions (on one node or several) never lose an attempt or a pass.

use async_trait::async_trait;

use crate::{StoreResult, UnixTime};

/// What is greylisted: the client's network (IPv4 /24, IPv6 /64, as text), the envelope
/// sender (lower case, `""` for the null sender) and one recipient (lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GreylistTriple {
    pub network: String,
    pub sender: String,
    pub recipient: String,
}

/// A triple's stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreylistEntry {
    /// The first attempt (of the current round: a forgotten triple starts again).
    pub first_seen: UnixTime,
    /// The latest attempt.
    pub last_seen: UnixTime,
    /// When the triple passed (retried after the delay); `None` while it waits.
    pub passed: Option<UnixTime>,
}

/// The timing rules, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreylistPolicy {
    /// A retry is accepted this long after the first attempt.
    pub delay: i64,
    /// A triple that has not passed is forgotten this long after its first attempt.
    pub retry_window: i64,
    /// A passed triple is forgotten this long after its latest attempt.
    pub pass_ttl: i64,
}

impl GreylistPolicy {
    /// Whether a stored entry is to be forgotten at `now`.
    pub fn is_stale(&self, e: &GreylistEntry, now: UnixTime) -> bool {
        match e.passed {
            Some(_) => now - e.last_seen > self.pass_ttl,
            None => now - e.first_seen > self.retry_window,
        }
    }

    /// The entry after an attempt at `now`; the attempt is accepted iff `passed` is set.
    pub fn next(&self, stored: Option<GreylistEntry>, now: UnixTime) -> GreylistEntry {
        match stored.filter(|e| !self.is_stale(e, now)) {
            None => GreylistEntry {
                first_seen: now,
                last_seen: now,
                passed: None,
            },
            Some(e) => GreylistEntry {
                first_seen: e.first_seen,
                last_seen: now.max(e.last_seen),
                passed: e
                    .passed
                    .or_else(|| (now - e.first_seen >= self.delay).then_some(now)),
            },
        }
    }
}

#[async_trait]
pub trait Greylist: Send + Sync {
    /// Records an attempt of `triple` at `now` under `policy` and returns its entry as stored
    /// after the attempt ([`GreylistPolicy::next`] of the stored one, in one transaction).
    async fn greylist_attempt(
        &self,
        triple: &GreylistTriple,
        now: UnixTime,
        policy: GreylistPolicy,
    ) -> StoreResult<GreylistEntry>;

    /// Removes every entry that is stale at `now` under `policy`; returns how many.
    async fn greylist_purge(&self, now: UnixTime, policy: GreylistPolicy) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: GreylistPolicy = GreylistPolicy {
        delay: 300,
        retry_window: 1000,
        pass_ttl: 5000,
    };

    #[test]
    fn first_attempt_waits_then_a_retry_after_the_delay_passes() {
        let e = P.next(None, 100);
        assert_eq!(e.passed, None);
        let early = P.next(Some(e), 399);
        assert_eq!((early.first_seen, early.passed), (100, None));
        let ok = P.next(Some(early), 400);
        assert_eq!(ok.passed, Some(400));
        let later = P.next(Some(ok), 4000);
        assert_eq!((later.passed, later.last_seen), (Some(400), 4000));
    }

    #[test]
    fn stale_entries_start_again() {
        let e = P.next(None, 0);
        // Not retried within the window: a new first attempt.
        let again = P.next(Some(e), 1001);
        assert_eq!((again.first_seen, again.passed), (1001, None));
        let passed = P.next(Some(P.next(Some(e), 300)), 300);
        assert!(!P.is_stale(&passed, 5300));
        assert!(P.is_stale(&passed, 5301));
        assert_eq!(P.next(Some(passed), 5301).passed, None);
    }
}

//! Per-account sending limits: a sliding one-hour window of messages and recipients, in
//! memory (a restart forgets it; a cluster would keep it in the shared store).
//!
//! Invariant: only mail that was accepted (`250` after DATA/BDAT) is counted, so refused or
//! abandoned transactions do not use up the allowance.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use store::AccountId;

/// The length of the window.
const WINDOW: Duration = Duration::from_secs(3600);

/// What one account sent in the last hour: (when, recipients) per accepted message.
#[derive(Debug, Default)]
struct History {
    sent: VecDeque<(Instant, u32)>,
}

impl History {
    fn expire(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= WINDOW)
        {
            self.sent.pop_front();
        }
    }
}

/// Messages and recipients each account sent within the last hour.
#[derive(Debug, Default)]
pub struct RateLimiter {
    accounts: Mutex<HashMap<AccountId, History>>,
}

/// What an account sent within the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub messages: u64,
    pub recipients: u64,
}

impl RateLimiter {
    /// The account's usage within the last hour as of `now`.
    pub fn usage(&self, account: AccountId, now: Instant) -> Usage {
        let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(h) = map.get_mut(&account) else {
            return Usage::default();
        };
        h.expire(now);
        let usage = Usage {
            messages: h.sent.len() as u64,
            recipients: h.sent.iter().map(|&(_, n)| u64::from(n)).sum(),
        };
        if h.sent.is_empty() {
            map.remove(&account);
        }
        usage
    }

    /// Counts one accepted message with `recipients` recipients.
    pub fn record(&self, account: AccountId, recipients: u32, now: Instant) {
        let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let h = map.entry(account).or_default();
        h.expire(now);
        h.sent.push_back((now, recipients));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window() {
        let r = RateLimiter::default();
        let t0 = Instant::now();
        assert_eq!(r.usage(1, t0), Usage::default());
        r.record(1, 3, t0);
        r.record(1, 2, t0 + Duration::from_secs(1800));
        r.record(2, 9, t0);
        assert_eq!(
            r.usage(1, t0 + Duration::from_secs(1800)),
            Usage {
                messages: 2,
                recipients: 5
            }
        );
        // The first message leaves the window an hour after it was sent.
        assert_eq!(
            r.usage(1, t0 + Duration::from_secs(3600)),
            Usage {
                messages: 1,
                recipients: 2
            }
        );
        assert_eq!(r.usage(1, t0 + Duration::from_secs(5400)), Usage::default());
        assert_eq!(r.usage(2, t0).recipients, 9);
    }
}

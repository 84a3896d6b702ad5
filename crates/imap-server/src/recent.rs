//! `\Recent` for IMAP4rev1 clients — RFC 3501 §2.3.2: a message is recent in exactly one
//! session, the first one to be notified of it (by SELECT or by an EXISTS update).
//!
//! Invariants:
//! - [`RecentTracker`] keeps, per mailbox, the highest UID already claimed by some session.
//!   Marks only grow; claiming is one compare-and-raise under the lock, so two sessions can
//!   never both claim the same UID.
//! - The tracker lives in memory, shared by every listener of the process. After a restart
//!   every message counts as recent again once: RFC 3501 §2.3.2 says a message SHOULD be
//!   considered recent when it cannot be determined whether a session was first to see it.
//! - Only read-write rev1 sessions claim. EXAMINE must not take `\Recent` away (RFC 3501
//!   §6.3.2), so it only peeks; IMAP4rev2 has no `\Recent` (RFC 9051 Appendix E) and neither
//!   claims nor shows it.

use std::collections::HashMap;
use std::sync::Mutex;

use store::{MailboxId, Uid};

/// The process-wide "highest UID claimed as recent" per mailbox. Share one (in an `Arc`)
/// between every [`ImapServer`](crate::ImapServer) of a store.
#[derive(Debug, Default)]
pub struct RecentTracker {
    claimed: Mutex<HashMap<MailboxId, Uid>>,
}

impl RecentTracker {
    pub fn new() -> RecentTracker {
        RecentTracker::default()
    }

    /// Claims every UID up to `max`; returns the mark before, so `mark+1..=max` are recent
    /// for the caller (an empty range when another session was first).
    pub(crate) fn claim(&self, mailbox: MailboxId, max: Uid) -> Uid {
        let mut map = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        let mark = map.entry(mailbox).or_insert(0);
        let before = *mark;
        *mark = before.max(max);
        before
    }

    /// The mark without claiming (EXAMINE, STATUS).
    pub(crate) fn mark(&self, mailbox: MailboxId) -> Uid {
        let map = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&mailbox).copied().unwrap_or(0)
    }
}

/// The UIDs recent in one session: ascending, disjoint ranges (claims come in ascending
/// order), so a first SELECT of 100k messages costs one range, not 100k entries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RecentSet(Vec<(Uid, Uid)>);

impl RecentSet {
    /// Adds `lo..=hi` (ignored when empty); ranges must be added in ascending order.
    pub fn add(&mut self, lo: Uid, hi: Uid) {
        if lo > hi {
            return;
        }
        match self.0.last_mut() {
            Some((_, last)) if last.saturating_add(1) >= lo => *last = (*last).max(hi),
            _ => self.0.push((lo, hi)),
        }
    }

    pub fn contains(&self, uid: Uid) -> bool {
        let i = self.0.partition_point(|&(_, hi)| hi < uid);
        self.0.get(i).is_some_and(|&(lo, _)| lo <= uid)
    }

    /// How many of `uids` (ascending) are recent.
    pub fn count_in(&self, uids: &[Uid]) -> u32 {
        self.0
            .iter()
            .map(|&(lo, hi)| {
                let a = uids.partition_point(|&u| u < lo);
                let b = uids.partition_point(|&u| u <= hi);
                b.saturating_sub(a) as u32
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_exclusive() {
        let t = RecentTracker::new();
        assert_eq!(t.claim(1, 5), 0);
        assert_eq!(t.claim(1, 5), 5);
        assert_eq!(t.claim(1, 3), 5);
        assert_eq!(t.mark(1), 5);
        assert_eq!(t.mark(2), 0);
    }

    #[test]
    fn set_ranges() {
        let mut s = RecentSet::default();
        s.add(3, 5);
        s.add(6, 6);
        s.add(9, 8);
        s.add(10, 12);
        assert_eq!(s.0, vec![(3, 6), (10, 12)]);
        assert!(s.contains(3) && s.contains(6) && s.contains(11));
        assert!(!s.contains(2) && !s.contains(7) && !s.contains(13));
        assert_eq!(s.count_in(&[1, 3, 4, 7, 10, 12, 20]), 4);
    }
}

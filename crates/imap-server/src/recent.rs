//! `\Recent` for IMAP4rev1 clients — RFC 3501 §2.3.2: a message is recent in exactly one
//! session, the first one to be notified of it (by SELECT or by an EXISTS update).
//!
//! Invariants:
//! - The store keeps, per mailbox, the highest UID already claimed by some session
//!   ([`store::MailStore::claim_recent`]): one atomic compare-and-raise shared by every process
//!   and node, so two sessions anywhere can never both claim the same UID, and a restart does
//!   not make old messages recent again.
//! - [`RecentTracker`] only caches lower bounds of those marks (marks only grow): a session
//!   whose newest UID is at or below a known mark has nothing to claim and asks the store
//!   nothing, so SELECT of a mailbox without new mail costs no write.
//! - Only read-write rev1 sessions claim. EXAMINE must not take `\Recent` away (RFC 3501
//!   §6.3.2), so it only peeks; IMAP4rev2 has no `\Recent` (RFC 9051 Appendix E) and neither
//!   claims nor shows it.

use std::collections::HashMap;
use std::sync::Mutex;

use store::{MailStore, MailboxId, StoreResult, Uid};

/// Lower bounds of the store's recent marks per mailbox, for this process. Share one (in an
/// `Arc`) between every [`ImapServer`](crate::ImapServer) of a store; separate trackers are
/// correct too, only less often spared a store call.
#[derive(Debug, Default)]
pub struct RecentTracker {
    known: Mutex<HashMap<MailboxId, Uid>>,
}

/// Mailboxes whose mark is remembered at most (a user creating and selecting ever new
/// mailboxes must not grow the map without bound).
const MAX_KNOWN: usize = 65_536;

impl RecentTracker {
    pub fn new() -> RecentTracker {
        RecentTracker::default()
    }

    fn known(&self, mailbox: MailboxId) -> Uid {
        let map = self.known.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&mailbox).copied().unwrap_or(0)
    }

    /// Forgets every mark and frees the table. Called when the server gives memory back after
    /// its clients left: a table that remembered 100,000 INBOXes is 3 MiB, which would stay
    /// resident with nobody left to spare a store call. Each mailbox's next claim asks the
    /// store once.
    pub fn release_memory(&self) {
        let mut map = self.known.lock().unwrap_or_else(|e| e.into_inner());
        *map = HashMap::new();
    }

    /// How many marks are remembered.
    pub fn len(&self) -> usize {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The store's mark of `mailbox` is at least `mark` (a claim made elsewhere, such as
    /// with an APPEND).
    pub(crate) fn learn(&self, mailbox: MailboxId, mark: Uid) {
        let mut map = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KNOWN && !map.contains_key(&mailbox) {
            // Only a cache of the store's marks (deleted mailboxes stay in it): forgetting
            // costs each mailbox one store round trip at its next claim.
            map.clear();
        }
        let known = map.entry(mailbox).or_insert(0);
        *known = (*known).max(mark);
    }

    /// Claims every UID up to `max` in the store; returns the mark before, so `mark+1..=max`
    /// are recent for the caller (an empty range when another session was first).
    pub(crate) async fn claim(
        &self,
        store: &dyn MailStore,
        mailbox: MailboxId,
        max: Uid,
    ) -> StoreResult<Uid> {
        let known = self.known(mailbox);
        if known >= max {
            return Ok(known);
        }
        let before = store.claim_recent(mailbox, max).await?;
        self.learn(mailbox, before.max(max));
        Ok(before)
    }

    /// The mark without claiming (EXAMINE), as far as it matters for UIDs up to `max`.
    pub(crate) async fn peek(
        &self,
        store: &dyn MailStore,
        mailbox: MailboxId,
        max: Uid,
    ) -> StoreResult<Uid> {
        let known = self.known(mailbox);
        if known >= max {
            return Ok(known);
        }
        let mark = store.recent_mark(mailbox).await?;
        self.learn(mailbox, mark);
        Ok(mark)
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

    /// Two trackers (two processes) over one store: each UID is claimed once; a tracker that
    /// knows the mark answers without the store, one that does not asks it.
    #[tokio::test]
    async fn claims_are_exclusive_across_trackers() {
        use store::{Directory, INBOX};
        let dir = tempfile::tempdir().unwrap();
        let s = store_sqlite::open(dir.path()).unwrap();
        s.add_domain(&mail_types::Domain::parse("r.test").unwrap())
            .await
            .unwrap();
        let acc = s
            .add_user(&mail_types::Address::parse("u@r.test").unwrap(), "x")
            .await
            .unwrap();
        let mb = s.find_mailbox(acc, INBOX).await.unwrap().unwrap().id;
        let (a, b) = (RecentTracker::new(), RecentTracker::new());
        assert_eq!(a.claim(s.as_ref(), mb, 5).await.unwrap(), 0);
        assert_eq!(a.claim(s.as_ref(), mb, 5).await.unwrap(), 5);
        assert_eq!(b.peek(s.as_ref(), mb, 5).await.unwrap(), 5);
        assert_eq!(b.claim(s.as_ref(), mb, 3).await.unwrap(), 5);
        assert_eq!(b.claim(s.as_ref(), mb, 7).await.unwrap(), 5);
        assert_eq!(a.claim(s.as_ref(), mb, 7).await.unwrap(), 7);
        assert_eq!(s.recent_mark(mb).await.unwrap(), 7);
        // A tracker that gave its memory back asks the store again: nothing is recent twice.
        assert_eq!(a.len(), 1);
        a.release_memory();
        assert!(a.is_empty());
        assert_eq!(a.claim(s.as_ref(), mb, 7).await.unwrap(), 7);
        assert_eq!(a.len(), 1);
        // Unknown mailbox: the store's error, nothing claimed.
        assert!(
            a.claim(
                s.as_ref(),
                store::MailboxId::new(mb.account, mb.number + 1000),
                1
            )
            .await
            .is_err()
        );
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

    #[test]
    fn the_cache_of_marks_is_bounded() {
        let t = RecentTracker::new();
        let account = store::AccountId(1);
        for n in 0..MAX_KNOWN as i64 + 100 {
            t.learn(MailboxId::new(account, n), 5);
        }
        assert!(t.known.lock().unwrap().len() <= MAX_KNOWN);
        // The newest are known; forgotten ones read as 0 (the store is asked again).
        assert_eq!(t.known(MailboxId::new(account, MAX_KNOWN as i64 + 99)), 5);
    }
}

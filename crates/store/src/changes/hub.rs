//! Per-account publish/subscribe inside one process, ordered by the change log's sequence
//! numbers.
//!
//! Events go per account, so one busy account does not wake the sessions of every other one.
//! The hub delivers each account's batches in `seq` order and exactly once: a batch that is
//! already delivered is dropped, a batch that would skip one is not delivered but turns into a
//! fill request, which the backend answers by reading the log from the last delivered `seq`
//! (see `follow.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use super::feed::{ChangeFeed, Channel, Leave, Signal};
use crate::{AccountId, Change, LoggedBatch};

/// Events kept per account for subscribers that have not read them yet, at most. Only unread
/// events take memory (`feed.rs`), so this bounds a slow subscriber, not every account. One
/// further behind gets `Resync` and rereads the mailbox (IMAP: `state::resync`), which a bulk
/// change of thousands of messages by another session costs anyway.
pub const CHANGE_FEED_CAPACITY: usize = 1024;

struct AccountChannel {
    tx: Arc<Channel>,
    /// The last `seq` delivered to the channel; `None` until the first subscriber said where
    /// it starts ([`ChangeHub::start_at`]) or a batch arrived.
    last: Option<u64>,
    /// A wake-up came before `last` was known: `start_at` asks for a fill.
    woken_early: bool,
}

/// The accounts' channels, created on first subscription and dropped when the last
/// subscriber goes (so an account nobody watches costs nothing).
struct Registry {
    channels: Mutex<HashMap<AccountId, AccountChannel>>,
}

impl Leave for Registry {
    fn left(&self, account: AccountId, channel: &Arc<Channel>) {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        // Under the map's lock no subscriber can join meanwhile.
        if map
            .get(&account)
            .is_some_and(|ch| Arc::ptr_eq(&ch.tx, channel) && channel.subscribers() == 0)
        {
            remove_channel(&mut map, account);
        }
    }
}

/// Removes an account's channel, and gives the table's memory back once it is mostly empty:
/// after thousands of sessions have left it would otherwise keep its largest size.
fn remove_channel(map: &mut HashMap<AccountId, AccountChannel>, account: AccountId) {
    map.remove(&account);
    if map.capacity() > 64 && map.len() * 4 < map.capacity() {
        map.shrink_to(map.len() * 2);
    }
}

/// Per-account channels to the accounts' sessions.
pub struct ChangeHub {
    registry: Arc<Registry>,
    capacity: usize,
    /// Accounts whose channel is behind the log: the backend's follower reads what is missing.
    fill: Mutex<HashSet<AccountId>>,
    fill_wanted: Notify,
}

impl Default for ChangeHub {
    fn default() -> Self {
        ChangeHub::new(CHANGE_FEED_CAPACITY)
    }
}

impl ChangeHub {
    pub fn new(capacity: usize) -> ChangeHub {
        ChangeHub {
            registry: Arc::new(Registry {
                channels: Mutex::new(HashMap::new()),
            }),
            capacity,
            fill: Mutex::new(HashSet::new()),
            fill_wanted: Notify::new(),
        }
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, AccountChannel>> {
        self.registry
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// A feed of the account's events published from now on. Backends then call
    /// [`start_at`](Self::start_at) with the account's log head, read after this call.
    pub fn subscribe(&self, account: AccountId) -> ChangeFeed {
        self.join(account).0
    }

    /// [`subscribe`](Self::subscribe), and whether the account's channel already knows where
    /// it stands (another subscriber started it): then the backend need not read the head —
    /// the new subscriber gets every batch from now on, like the others.
    pub fn join(&self, account: AccountId) -> (ChangeFeed, bool) {
        let mut map = self.channels();
        let ch = map.entry(account).or_insert_with(|| AccountChannel {
            tx: Arc::new(Channel::new(self.capacity)),
            last: None,
            woken_early: false,
        });
        let registry: Arc<dyn Leave> = self.registry.clone();
        let leave: Weak<dyn Leave> = Arc::downgrade(&registry);
        (
            ChangeFeed::join(Arc::clone(&ch.tx), Some((leave, account))),
            ch.last.is_some(),
        )
    }

    /// The account's log head was `head` when a subscriber joined (read after
    /// [`subscribe`](Self::subscribe)): batches up to it are in what the subscriber reads next
    /// from the store. A wake-up that came before (another process committed between that
    /// read and now) turns into a fill.
    pub fn start_at(&self, account: AccountId, head: u64) {
        let fill = {
            let mut map = self.channels();
            let Some(ch) = map.get_mut(&account) else {
                return;
            };
            ch.last = Some(ch.last.map_or(head, |l| l.max(head)));
            std::mem::take(&mut ch.woken_early)
        };
        if fill {
            self.request_fill(account);
        }
    }

    /// Delivers committed batches, each account's in `seq` order. Batches of accounts nobody
    /// watches are dropped; one that is already delivered is dropped; one that would skip a
    /// `seq` is left to the fill, which reads it from the log with those before it.
    pub fn publish(&self, batches: impl IntoIterator<Item = LoggedBatch>) {
        let mut fill = Vec::new();
        {
            let mut map = self.channels();
            for batch in batches {
                let Some(ch) = map.get_mut(&batch.account) else {
                    continue;
                };
                match ch.last {
                    Some(last) if batch.seq <= last => continue,
                    Some(last) if batch.seq > last + 1 => {
                        fill.push(batch.account);
                        continue;
                    }
                    _ => {}
                }
                ch.last = Some(batch.seq);
                let mut deleted = false;
                let mut listeners = true;
                for ev in batch.events {
                    deleted |= ev.change == Change::AccountDeleted;
                    listeners = ch.tx.send(Signal::Event(ev));
                }
                // The account is gone: its feeds close once they have read the events above;
                // its sessions end.
                if deleted {
                    ch.tx.close();
                }
                if deleted || !listeners {
                    remove_channel(&mut map, batch.account);
                }
            }
        }
        for account in fill {
            self.request_fill(account);
        }
    }

    /// Another process committed the account's batch `seq` (a notification; it may come late,
    /// twice or not at all — the log is the truth). Asks for a fill when this hub is behind.
    pub fn wake(&self, account: AccountId, seq: u64) {
        let behind = {
            let mut map = self.channels();
            match map.get_mut(&account) {
                None => false,
                Some(ch) => match ch.last {
                    Some(last) => seq > last,
                    None => {
                        ch.woken_early = true;
                        false
                    }
                },
            }
        };
        if behind {
            self.request_fill(account);
        }
    }

    /// Asks for a fill of every watched account: notifications may have been lost (the
    /// backend's notification connection broke).
    pub fn wake_all(&self) {
        for account in self.watched() {
            self.request_fill(account);
        }
    }

    /// The log no longer holds what the account's subscribers missed: they reread from the
    /// store, and the channel goes on from `head`.
    pub fn resync(&self, account: AccountId, head: u64) {
        let mut map = self.channels();
        if let Some(ch) = map.get_mut(&account) {
            ch.last = Some(head);
            if !ch.tx.send(Signal::Resync) {
                remove_channel(&mut map, account);
            }
        }
    }

    /// The accounts with at least one subscriber.
    pub fn watched(&self) -> Vec<AccountId> {
        self.channels().keys().copied().collect()
    }

    /// The last `seq` delivered for the account (`None`: unwatched, or not started).
    pub fn last_seq(&self, account: AccountId) -> Option<u64> {
        self.channels().get(&account).and_then(|ch| ch.last)
    }

    fn request_fill(&self, account: AccountId) {
        self.fill
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(account);
        self.fill_wanted.notify_one();
    }

    /// Takes the accounts to fill, each with the `seq` to read after; accounts no longer
    /// watched, or not started yet, are skipped.
    pub fn take_fill_requests(&self) -> Vec<(AccountId, u64)> {
        let accounts: Vec<AccountId> =
            std::mem::take(&mut *self.fill.lock().unwrap_or_else(|e| e.into_inner()))
                .into_iter()
                .collect();
        let map = self.channels();
        accounts
            .into_iter()
            .filter_map(|a| map.get(&a).and_then(|ch| ch.last).map(|l| (a, l)))
            .collect()
    }

    /// Resolves when a fill has been requested since the last call.
    pub async fn fill_wanted(&self) {
        self.fill_wanted.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChangeEvent, MailboxId, MessageSummary, RecvError, TryRecvError};

    const A: AccountId = AccountId(1);
    const B: AccountId = AccountId(2);

    fn batch(account: AccountId, seq: u64, uid: u32) -> LoggedBatch {
        LoggedBatch {
            account,
            seq,
            events: vec![ChangeEvent {
                mailbox: MailboxId::new(account, 7),
                change: Change::NewMessage(MessageSummary {
                    uid,
                    size: 10,
                    internal_date: 0,
                    flags: Default::default(),
                    modseq: u64::from(uid),
                }),
            }],
        }
    }

    fn uid_of(ev: ChangeEvent) -> u32 {
        match ev.change {
            Change::NewMessage(m) => m.uid,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn delivers_only_to_the_account() {
        let hub = ChangeHub::default();
        let mut a = hub.subscribe(A);
        let mut b = hub.subscribe(B);
        hub.publish([batch(A, 1, 3)]);
        assert_eq!(a.recv().await.unwrap().mailbox.number, 7);
        assert_eq!(b.try_recv(), Err(TryRecvError::Empty));
    }

    #[tokio::test]
    async fn delivers_in_order_once_and_asks_to_fill_gaps() {
        let hub = ChangeHub::default();
        let mut feed = hub.subscribe(A);
        hub.wake(A, 5); // before the subscriber said where it starts
        hub.start_at(A, 4);
        assert_eq!(hub.take_fill_requests(), vec![(A, 4)]);
        hub.publish([batch(A, 3, 3)]); // already in the subscriber's snapshot
        hub.publish([batch(A, 5, 5)]);
        hub.publish([batch(A, 5, 5)]); // twice: once only
        hub.publish([batch(A, 7, 7)]); // skips 6: left to the fill
        assert_eq!(uid_of(feed.try_recv().unwrap()), 5);
        assert_eq!(feed.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(hub.take_fill_requests(), vec![(A, 5)]);
        hub.publish([batch(A, 6, 6), batch(A, 7, 7)]);
        assert_eq!(uid_of(feed.try_recv().unwrap()), 6);
        assert_eq!(uid_of(feed.try_recv().unwrap()), 7);
        // A wake-up for what was delivered asks for nothing; one beyond asks for a fill.
        hub.wake(A, 7);
        assert!(hub.take_fill_requests().is_empty());
        hub.wake(A, 8);
        assert_eq!(hub.take_fill_requests(), vec![(A, 7)]);
    }

    #[tokio::test]
    async fn resync_and_account_deletion_reach_subscribers() {
        let hub = ChangeHub::default();
        let mut feed = hub.subscribe(A);
        hub.start_at(A, 0);
        hub.resync(A, 10);
        assert_eq!(feed.recv().await, Err(RecvError::Resync));
        assert_eq!(hub.last_seq(A), Some(10));
        hub.publish([LoggedBatch {
            account: A,
            seq: 11,
            events: vec![ChangeEvent {
                mailbox: MailboxId::new(A, 0),
                change: Change::AccountDeleted,
            }],
        }]);
        assert!(feed.is_closed());
        assert_eq!(feed.recv().await.unwrap().change, Change::AccountDeleted);
        assert_eq!(feed.recv().await, Err(RecvError::Closed));
        assert!(hub.watched().is_empty());
    }

    #[tokio::test]
    async fn memory_follows_unread_events_and_subscribers() {
        let hub = ChangeHub::default();
        let mut a1 = hub.subscribe(A);
        let mut a2 = hub.subscribe(A);
        hub.start_at(A, 0);
        let chan = |hub: &ChangeHub| Arc::clone(&hub.channels()[&A].tx);
        hub.publish([batch(A, 1, 1), batch(A, 2, 2)]);
        assert_eq!(chan(&hub).queued(), 2);
        assert_eq!(uid_of(a1.try_recv().unwrap()), 1);
        assert_eq!(chan(&hub).queued(), 2, "a2 has not read it");
        assert_eq!(uid_of(a2.try_recv().unwrap()), 1);
        assert_eq!(chan(&hub).queued(), 1, "read by both: gone");
        // A subscriber that joins now starts after what is queued.
        let mut late = hub.subscribe(A);
        assert_eq!(late.try_recv(), Err(TryRecvError::Empty));
        // One that leaves no longer holds what it did not read.
        assert_eq!(uid_of(a1.try_recv().unwrap()), 2);
        drop(a2);
        assert_eq!(chan(&hub).queued(), 0);
        // The last one gone, the account's channel is gone: no event needed.
        drop(a1);
        drop(late);
        assert!(hub.watched().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiting_subscriber_is_woken() {
        let hub = Arc::new(ChangeHub::default());
        let mut waiting = Vec::new();
        for _ in 0..200 {
            let mut feed = hub.subscribe(A);
            waiting.push(tokio::spawn(
                async move { uid_of(feed.recv().await.unwrap()) },
            ));
        }
        hub.start_at(A, 0);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        hub.publish([batch(A, 1, 42)]);
        for w in waiting {
            assert_eq!(
                tokio::time::timeout(std::time::Duration::from_secs(5), w)
                    .await
                    .unwrap()
                    .unwrap(),
                42
            );
        }
        assert!(hub.watched().is_empty(), "every feed was dropped");
    }

    #[tokio::test]
    async fn a_subscriber_behind_the_ring_is_told_to_resync() {
        let hub = ChangeHub::new(4);
        let mut feed = hub.subscribe(A);
        hub.start_at(A, 0);
        hub.publish((1..=10).map(|s| batch(A, s, s as u32)));
        assert_eq!(feed.try_recv(), Err(TryRecvError::Resync));
        assert_eq!(uid_of(feed.try_recv().unwrap()), 7);
    }
}

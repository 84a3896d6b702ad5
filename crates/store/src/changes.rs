//! Typed change events and a per-account publish/subscribe hub backends can share.
//!
//! Events go per account, so one busy account does not wake the sessions of every other one.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::{AccountId, Flags, MailboxId, MessageSummary, ModSeq, Uid};

/// What changed in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A message was filed (delivery, APPEND, COPY/MOVE): everything but its body, so
    /// sessions showing the mailbox need not read it back.
    NewMessage(MessageSummary),
    FlagsChanged {
        uid: Uid,
        flags: Flags,
        modseq: ModSeq,
    },
    Expunged {
        uids: Vec<Uid>,
        modseq: ModSeq,
    },
    /// The names are full hierarchical names (`/`-separated, UTF-8), as the store keeps them,
    /// so that a session can report them (IMAP NOTIFY MailboxName, RFC 5465 §5.4) even after
    /// the mailbox is gone.
    MailboxCreated {
        name: String,
    },
    MailboxDeleted {
        name: String,
    },
    /// One event per renamed mailbox: the inferiors renamed with it get theirs.
    MailboxRenamed {
        old_name: String,
        new_name: String,
    },
    /// SUBSCRIBE / UNSUBSCRIBE of `name` (IMAP NOTIFY SubscriptionChange, RFC 5465 §5.5).
    SubscriptionChanged {
        name: String,
        subscribed: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    pub account: AccountId,
    pub mailbox: MailboxId,
    pub change: Change,
}

/// Per-account broadcast channels, created on first subscription and dropped once the last
/// subscriber has gone.
pub struct ChangeHub {
    channels: Mutex<HashMap<AccountId, broadcast::Sender<ChangeEvent>>>,
    capacity: usize,
}

/// Events kept per account for subscribers that have not read them yet. The ring is allocated
/// whole for each account with a subscriber (about 120 bytes a slot), so this is per-account
/// memory: 10,000 accounts idling cost 1.2 GiB at 1,024 slots. A subscriber further behind
/// gets `Lagged` and rereads the mailbox (IMAP: `state::resync`), which a bulk change of
/// hundreds of messages by another session costs anyway.
pub const CHANGE_FEED_CAPACITY: usize = 128;

impl Default for ChangeHub {
    fn default() -> Self {
        ChangeHub::new(CHANGE_FEED_CAPACITY)
    }
}

impl ChangeHub {
    pub fn new(capacity: usize) -> ChangeHub {
        ChangeHub {
            channels: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    pub fn subscribe(&self, account: AccountId) -> broadcast::Receiver<ChangeEvent> {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(account)
            .or_insert_with(|| broadcast::channel(self.capacity).0)
            .subscribe()
    }

    /// Publishes committed events; a no-op for accounts nobody watches.
    pub fn publish(&self, events: impl IntoIterator<Item = ChangeEvent>) {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        for event in events {
            if let Some(tx) = map.get(&event.account)
                && tx.send(event.clone()).is_err()
            {
                map.remove(&event.account);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_only_to_the_account() {
        let hub = ChangeHub::default();
        let mut a = hub.subscribe(1);
        let mut b = hub.subscribe(2);
        hub.publish([ChangeEvent {
            account: 1,
            mailbox: 7,
            change: Change::NewMessage(MessageSummary {
                uid: 3,
                size: 10,
                internal_date: 0,
                flags: Default::default(),
                modseq: 4,
            }),
        }]);
        assert_eq!(a.recv().await.unwrap().mailbox, 7);
        assert!(b.try_recv().is_err());
    }
}

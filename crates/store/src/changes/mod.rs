//! Typed change events, the durable per-account change log they are written to, and the
//! in-process hub that hands them to the sessions of each account.
//!
//! The log is the truth; everything else only wakes sessions up:
//! - Every write that changes what a session shows appends one [`LoggedBatch`] per account to
//!   the backend's change log, in the write's own transaction, with the account's next
//!   sequence number (`seq`, strictly increasing and gap-free per account, in commit order).
//! - The process that wrote publishes the batch to its [`ChangeHub`] after the commit (the fast
//!   path: no read).
//! - Writes of other processes (the admin CLI on the embedded store, other nodes on PostgreSQL)
//!   arrive as wake-ups ([`ChangeHub::wake`]: "account A is at seq N"); the hub asks the
//!   backend to read the missing batches from the log ([`follow`]) and publishes them in order.
//! - A session further behind than the log keeps, or than its in-memory ring holds, gets
//!   [`RecvError::Resync`] and rereads what it shows from the store.

mod feed;
mod follow;
mod hub;
mod log;

pub use feed::{ChangeFeed, RecvError, TryRecvError};
pub use follow::{ChangeLogReader, fill_requested};
pub use hub::{CHANGE_FEED_CAPACITY, ChangeHub};
pub use log::{LoggedBatch, decode_events, encode_events, group_by_account};

use serde::{Deserialize, Serialize};

use crate::{AccountId, Flags, MailboxId, MessageSummary, ModSeq, Uid};

/// What changed in a mailbox (or, for [`Change::AccountDeleted`], of the whole account).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The account was deleted (`yubin user del`): its sessions end. The hub closes the
    /// account's feeds after it ([`RecvError::Closed`]); the event's mailbox is 0.
    AccountDeleted,
}

/// One change of one mailbox (`mailbox.number` is 0 for [`Change::AccountDeleted`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "EventRecord", into = "EventRecord")]
pub struct ChangeEvent {
    pub mailbox: MailboxId,
    pub change: Change,
}

impl ChangeEvent {
    pub fn account(&self) -> AccountId {
        self.mailbox.account
    }
}

/// How an event is written in the change log: the mailbox's account once, beside its number
/// (the format the log had when ids were plain numbers, so logs written before read alike).
#[derive(Serialize, Deserialize)]
struct EventRecord {
    account: AccountId,
    mailbox: i64,
    change: Change,
}

impl From<EventRecord> for ChangeEvent {
    fn from(r: EventRecord) -> ChangeEvent {
        ChangeEvent {
            mailbox: MailboxId::new(r.account, r.mailbox),
            change: r.change,
        }
    }
}

impl From<ChangeEvent> for EventRecord {
    fn from(e: ChangeEvent) -> EventRecord {
        EventRecord {
            account: e.mailbox.account,
            mailbox: e.mailbox.number,
            change: e.change,
        }
    }
}

//! One account's channel to its sessions, and one session's subscription to it.
//!
//! Memory follows use, not accounts: a channel holds only the signals some subscriber has not
//! read yet (each counts the readers it still waits for and leaves once the last one read it),
//! so an account whose sessions sit in IDLE holds a few hundred bytes, however many accounts
//! there are — unlike a broadcast ring, which allocates every slot for each account at once
//! (issue 13: 1,024 slots cost 115 KiB per account). A subscriber that falls more than the
//! channel's capacity behind loses the oldest signals and is told to resync.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use crate::{AccountId, ChangeEvent};

/// What the hub sends down an account's channel.
#[derive(Debug, Clone)]
pub(crate) enum Signal {
    Event(ChangeEvent),
    /// Events were lost (pruned from the log before they were read): reread from the store.
    Resync,
}

/// Why [`ChangeFeed::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Events were lost to this subscriber (it fell behind its channel, or the change log no
    /// longer holds what it missed): reread what it shows from the store, then go on.
    Resync,
    /// Nothing more will come: the account was deleted (or the store is shutting down).
    Closed,
}

/// Why [`ChangeFeed::try_recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// No event right now.
    Empty,
    Resync,
    Closed,
}

/// A signal and how many subscribers have yet to read it.
struct Slot {
    signal: Signal,
    unread_by: usize,
}

struct State {
    /// `slots[i]` is the signal at position `base + i`.
    slots: VecDeque<Slot>,
    base: u64,
    subscribers: usize,
    closed: bool,
}

impl State {
    fn end(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    /// Drops the signals every subscriber has read, and the queue's memory once it is empty.
    fn trim(&mut self) {
        while self.slots.front().is_some_and(|s| s.unread_by == 0) {
            self.slots.pop_front();
            self.base += 1;
        }
        if self.slots.is_empty() && self.slots.capacity() > 8 {
            self.slots = VecDeque::new();
        }
    }
}

/// One account's signals, shared by the hub and the account's subscribers.
pub(crate) struct Channel {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
}

impl Channel {
    pub(crate) fn new(capacity: usize) -> Channel {
        Channel {
            state: Mutex::new(State {
                slots: VecDeque::new(),
                base: 0,
                subscribers: 0,
                closed: false,
            }),
            notify: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `signal` for every current subscriber; `false` when there is none.
    pub(crate) fn send(&self, signal: Signal) -> bool {
        {
            let mut s = self.state();
            if s.subscribers == 0 {
                return false;
            }
            let unread_by = s.subscribers;
            s.slots.push_back(Slot { signal, unread_by });
            // A subscriber this far behind loses the oldest signal and resyncs.
            if s.slots.len() > self.capacity {
                s.slots.pop_front();
                s.base += 1;
            }
        }
        self.notify.notify_waiters();
        true
    }

    /// Signals queued for some subscriber (tests).
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.state().slots.len()
    }

    pub(crate) fn subscribers(&self) -> usize {
        self.state().subscribers
    }

    /// No more signals: subscribers read what is queued, then `Closed`.
    pub(crate) fn close(&self) {
        self.state().closed = true;
        self.notify.notify_waiters();
    }
}

/// The change events of one account, in commit order, from the moment of subscription
/// (see [`crate::MailStore::subscribe`]). Not `Clone`: each session has its own position.
pub struct ChangeFeed {
    channel: Arc<Channel>,
    /// The position of the next signal to read.
    next: u64,
    /// Unregisters from the hub when dropped.
    leave: Option<(Weak<dyn Leave>, AccountId)>,
}

/// The hub's side of a subscriber going away.
pub(crate) trait Leave: Send + Sync {
    fn left(&self, account: AccountId, channel: &Arc<Channel>);
}

impl ChangeFeed {
    /// Subscribes to `channel` from its current end.
    pub(crate) fn join(
        channel: Arc<Channel>,
        leave: Option<(Weak<dyn Leave>, AccountId)>,
    ) -> ChangeFeed {
        let next = {
            let mut s = channel.state();
            s.subscribers += 1;
            s.end()
        };
        ChangeFeed {
            channel,
            next,
            leave,
        }
    }

    fn take(&mut self) -> Result<ChangeEvent, TryRecvError> {
        let mut s = self.channel.state();
        if self.next < s.base {
            // The signals between were dropped at the capacity.
            self.next = s.base;
            return Err(TryRecvError::Resync);
        }
        let i = (self.next - s.base) as usize;
        let Some(slot) = s.slots.get_mut(i) else {
            return Err(if s.closed {
                TryRecvError::Closed
            } else {
                TryRecvError::Empty
            });
        };
        slot.unread_by = slot.unread_by.saturating_sub(1);
        let signal = slot.signal.clone();
        self.next += 1;
        s.trim();
        match signal {
            Signal::Event(ev) => Ok(ev),
            Signal::Resync => Err(TryRecvError::Resync),
        }
    }

    /// Waits for the next event.
    pub async fn recv(&mut self) -> Result<ChangeEvent, RecvError> {
        let channel = Arc::clone(&self.channel);
        loop {
            let notified = channel.notify.notified();
            tokio::pin!(notified);
            // Registered before looking, so a signal sent in between still wakes us.
            notified.as_mut().enable();
            match self.take() {
                Ok(ev) => return Ok(ev),
                Err(TryRecvError::Resync) => return Err(RecvError::Resync),
                Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                Err(TryRecvError::Empty) => notified.await,
            }
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Result<ChangeEvent, TryRecvError> {
        self.take()
    }

    /// The account was deleted (or the store shut down): the session should end. Events
    /// before that may still be unread.
    pub fn is_closed(&self) -> bool {
        self.channel.state().closed
    }
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        {
            let mut s = self.channel.state();
            s.subscribers = s.subscribers.saturating_sub(1);
            // What this subscriber never read no longer waits for it.
            let from = self.next.max(s.base);
            let base = s.base;
            for slot in s.slots.iter_mut().skip((from - base) as usize) {
                slot.unread_by = slot.unread_by.saturating_sub(1);
            }
            s.trim();
        }
        if let Some((hub, account)) = self.leave.take()
            && let Some(hub) = hub.upgrade()
        {
            hub.left(account, &self.channel);
        }
    }
}

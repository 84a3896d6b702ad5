//! One session's subscription to its account's changes.

use tokio::sync::broadcast;

use crate::ChangeEvent;

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
    /// Events were lost to this subscriber (it fell behind the in-memory ring, or the change
    /// log no longer holds what it missed): reread what it shows from the store, then go on.
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

/// The change events of one account, in commit order, from the moment of subscription
/// (see [`crate::MailStore::subscribe`]). Not `Clone`: each session has its own position.
pub struct ChangeFeed {
    rx: broadcast::Receiver<Signal>,
}

impl ChangeFeed {
    pub(crate) fn new(rx: broadcast::Receiver<Signal>) -> ChangeFeed {
        ChangeFeed { rx }
    }

    /// Waits for the next event.
    pub async fn recv(&mut self) -> Result<ChangeEvent, RecvError> {
        match self.rx.recv().await {
            Ok(Signal::Event(ev)) => Ok(ev),
            Ok(Signal::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                Err(RecvError::Resync)
            }
            Err(broadcast::error::RecvError::Closed) => Err(RecvError::Closed),
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Result<ChangeEvent, TryRecvError> {
        match self.rx.try_recv() {
            Ok(Signal::Event(ev)) => Ok(ev),
            Ok(Signal::Resync) | Err(broadcast::error::TryRecvError::Lagged(_)) => {
                Err(TryRecvError::Resync)
            }
            Err(broadcast::error::TryRecvError::Empty) => Err(TryRecvError::Empty),
            Err(broadcast::error::TryRecvError::Closed) => Err(TryRecvError::Closed),
        }
    }

    /// The account was deleted (or the store shut down): the session should end. Events
    /// before that may still be unread.
    pub fn is_closed(&self) -> bool {
        self.rx.is_closed()
    }
}

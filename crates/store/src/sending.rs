//! Per-account sending limits (`[queue] max_messages_per_hour`, `max_recipients_per_hour`),
//! kept in the store so that every session of every process counts against one allowance.
//!
//! Invariant: [`SendingLog::record_sending`] checks the allowance and counts the message in ONE
//! write transaction, so parallel sessions (on one node or several) cannot both take the last
//! unit of the allowance, as a read-then-write would let them.

use async_trait::async_trait;

use crate::{AccountId, StoreResult, UnixTime};

/// What an account sent within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendingUsage {
    pub messages: u64,
    pub recipients: u64,
}

/// An allowance per window; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendingLimits {
    pub max_messages: Option<u32>,
    pub max_recipients: Option<u32>,
}

impl SendingLimits {
    /// Whether `used` plus one more message with `recipients` recipients stays within the
    /// allowance.
    pub fn allows(&self, used: SendingUsage, recipients: u32) -> bool {
        self.max_messages
            .is_none_or(|m| used.messages.saturating_add(1) <= u64::from(m))
            && self.max_recipients.is_none_or(|m| {
                used.recipients.saturating_add(u64::from(recipients)) <= u64::from(m)
            })
    }
}

#[async_trait]
pub trait SendingLog: Send + Sync {
    /// What `account` sent at or after `since` (a sliding window: `since = now - window`).
    async fn sending_usage(&self, account: AccountId, since: UnixTime)
    -> StoreResult<SendingUsage>;

    /// Counts one message with `recipients` recipients sent by `account` at `now`, if the
    /// account's usage since `since` leaves room for it under `limits`; otherwise counts
    /// nothing and returns the usage that refused it (`Err`). Check and count happen in one
    /// write transaction. `Ok(id)` names the entry for [`SendingLog::forget_sending`]. Entries
    /// older than `since` may be removed by the call.
    async fn record_sending(
        &self,
        account: AccountId,
        recipients: u32,
        now: UnixTime,
        since: UnixTime,
        limits: SendingLimits,
    ) -> StoreResult<Result<i64, SendingUsage>>;

    /// Removes an entry again (the message it counted was not accepted after all).
    async fn forget_sending(&self, id: i64) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance() {
        let l = SendingLimits {
            max_messages: Some(2),
            max_recipients: Some(5),
        };
        let used = |messages, recipients| SendingUsage {
            messages,
            recipients,
        };
        assert!(l.allows(used(0, 0), 5));
        assert!(!l.allows(used(0, 0), 6));
        assert!(l.allows(used(1, 3), 2));
        assert!(!l.allows(used(2, 0), 1));
        assert!(SendingLimits::default().allows(used(u64::MAX, u64::MAX), u32::MAX));
    }
}

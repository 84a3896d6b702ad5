//! Per-account sending limits: a sliding one-hour window of messages and recipients, kept in
//! the store's sending log (`store::SendingLog`), so every session of every process sharing
//! the store counts against one allowance, and a restart forgets nothing.
//!
//! Invariants:
//! - Only mail that was accepted (`250` after DATA/BDAT) is counted: the message is counted
//!   just before it is stored, and the count is taken back if storing fails.
//! - The count is check-and-record in one store transaction, so parallel sessions cannot
//!   overshoot the allowance; MAIL and RCPT only read it, to refuse early.
//! - Without limits configured nothing is read or written.

use std::sync::Arc;

use store::{AccountId, SendingLimits, SendingLog, SendingUsage, StoreResult, UnixTime};

/// The length of the window.
pub const WINDOW_SECS: i64 = 3600;

fn now() -> UnixTime {
    chrono::Utc::now().timestamp()
}

/// The allowance per account and the log it is counted in.
pub struct RateLimiter {
    log: Arc<dyn SendingLog>,
}

impl RateLimiter {
    pub fn new(log: Arc<dyn SendingLog>) -> RateLimiter {
        RateLimiter { log }
    }

    /// The account's usage within the last hour.
    pub async fn usage(&self, account: AccountId) -> StoreResult<SendingUsage> {
        self.log
            .sending_usage(account, now() - WINDOW_SECS + 1)
            .await
    }

    /// Counts one accepted message with `recipients` recipients if the allowance has room
    /// (`Ok(Ok(entry))`), else counts nothing (`Ok(Err(usage))`).
    pub async fn count(
        &self,
        account: AccountId,
        recipients: u32,
        limits: SendingLimits,
    ) -> StoreResult<Result<i64, SendingUsage>> {
        let t = now();
        self.log
            .record_sending(account, recipients, t, t - WINDOW_SECS + 1, limits)
            .await
    }

    /// Takes a count back (the message was not accepted after all).
    pub async fn uncount(&self, entry: i64) {
        if let Err(e) = self.log.forget_sending(entry).await {
            // Counted once too often for an hour: the safe side.
            tracing::warn!(error = %e, "cannot take back a sending count");
        }
    }
}

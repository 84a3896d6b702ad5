//! [`store::SendingLog`] for the PostgreSQL store: the sending log behind the per-account hourly
//! limits (`sending_log`, schema version 2), one row per accepted message of an authenticated
//! account, shared by every node.
//!
//! Invariant: `record_sending` checks and counts in one transaction, and two such transactions
//! for one account never overlap: each first takes a transaction-level advisory lock on the
//! account (`pg_advisory_xact_lock(SENDING_LOCK, <account>)`), then reads the usage in a new
//! statement that sees every entry committed by the previous holder. An advisory lock rather
//! than a row lock on `accounts`: the log names accounts by id only (no row need exist, as in
//! the embedded store), and it takes no part in any other write's lock order. READ COMMITTED
//! with the lock instead of SERIALIZABLE: the loser waits instead of failing and retrying.
//! Reads are index searches on `sending_log_account (account, at)`.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use store::{AccountId, SendingLimits, SendingLog, SendingUsage, StoreResult, UnixTime};

use crate::db::{exec, one};
use crate::error::PgResult;
use crate::tx::{read, write_tx};
use crate::{PgStore, tx::Tx};

/// The first key of the per-account advisory locks ("ysnd"); the two-key form never collides
/// with the one-key locks.
const SENDING_LOCK: i32 = 0x7973_6e64;

/// The second key for `account`: its bits folded into 32 (two accounts sharing a key only wait
/// for each other).
fn lock_key(account: AccountId) -> i32 {
    let bits = account.0 as u64;
    (bits ^ (bits >> 32)) as u32 as i32
}

async fn usage<C: GenericClient>(
    c: &C,
    account: AccountId,
    since: UnixTime,
) -> PgResult<SendingUsage> {
    let row = one(
        c,
        "SELECT count(*), coalesce(sum(recipients), 0)::bigint FROM sending_log
         WHERE account = $1 AND at >= $2",
        &[&account, &since],
    )
    .await?;
    let (messages, recipients): (i64, i64) = (row.get(0), row.get(1));
    Ok(SendingUsage {
        messages: messages.max(0) as u64,
        recipients: recipients.max(0) as u64,
    })
}

async fn record(
    tx: &Tx<'_>,
    account: AccountId,
    recipients: u32,
    now: UnixTime,
    since: UnixTime,
    limits: SendingLimits,
) -> PgResult<Result<i64, SendingUsage>> {
    exec(
        &tx.t,
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&SENDING_LOCK, &lock_key(account)],
    )
    .await?;
    // Entries that left the window count for nothing any more.
    exec(
        &tx.t,
        "DELETE FROM sending_log WHERE account = $1 AND at < $2",
        &[&account, &since],
    )
    .await?;
    let used = usage(&tx.t, account, since).await?;
    if !limits.allows(used, recipients) {
        return Ok(Err(used));
    }
    let recipients = i64::from(recipients);
    let id: i64 = one(
        &tx.t,
        "INSERT INTO sending_log (account, at, recipients) VALUES ($1, $2, $3) RETURNING id",
        &[&account, &now, &recipients],
    )
    .await?
    .get(0);
    Ok(Ok(id))
}

async fn forget(tx: &Tx<'_>, id: i64) -> PgResult<()> {
    exec(&tx.t, "DELETE FROM sending_log WHERE id = $1", &[&id]).await?;
    Ok(())
}

#[async_trait]
impl SendingLog for PgStore {
    async fn sending_usage(
        &self,
        account: AccountId,
        since: UnixTime,
    ) -> StoreResult<SendingUsage> {
        read!(self, |c| usage(c, account, since))
    }

    async fn record_sending(
        &self,
        account: AccountId,
        recipients: u32,
        now: UnixTime,
        since: UnixTime,
        limits: SendingLimits,
    ) -> StoreResult<Result<i64, SendingUsage>> {
        write_tx!(self, |tx| record(
            tx, account, recipients, now, since, limits
        ))
    }

    async fn forget_sending(&self, id: i64) -> StoreResult<()> {
        write_tx!(self, |tx| forget(tx, id))
    }
}

#[cfg(test)]
mod tests {
    use super::lock_key;

    #[test]
    fn lock_keys_fold_all_bits() {
        assert_eq!(lock_key(store::AccountId(1)), 1);
        assert_ne!(
            lock_key(store::AccountId(1)),
            lock_key(store::AccountId(1 + (1 << 32)))
        );
        assert_eq!(lock_key(store::AccountId(-1)), 0);
    }
}

//! Leases, shared secrets and `\Recent` claims (`store::Coordination`,
//! `MailStore::claim_recent`) on PostgreSQL: rows every node sees, each change one statement
//! (or one transaction) so two nodes racing for the same thing get one answer each.
//!
//! Lease expiry is judged by the database server's clock (`now()`, the time the transaction
//! started), never a node's: nodes with skewed clocks still agree on who holds what.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use store::{Coordination, MailboxId, StoreError, StoreResult, Uid};

use crate::PgStore;
use crate::db::{col_u32, exec, one, opt};
use crate::error::PgResult;
use crate::tx::{Tx, write_tx};

/// A time to live as seconds for `make_interval` (microsecond precision is PostgreSQL's).
fn seconds(ttl: Duration) -> f64 {
    ttl.as_secs_f64()
}

/// Takes `name` when it is free or its lease has expired; `InUse` otherwise (also for the
/// holder itself: not re-entrant). The test and the take are one statement: of two nodes
/// inserting at once, the second waits for the first's row and then sees it unexpired.
async fn acquire(tx: &Tx<'_>, name: &str, holder: &str, ttl: Duration) -> PgResult<()> {
    let taken = exec(
        &tx.t,
        "INSERT INTO leases (name, holder, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))
         ON CONFLICT (name) DO UPDATE
             SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.expires_at <= now()",
        &[&name, &holder, &seconds(ttl)],
    )
    .await?;
    if taken == 0 {
        return Err(StoreError::InUse.into());
    }
    Ok(())
}

/// Extends `holder`'s lease; false when the row is gone or another holder's. A lease that
/// expired but was not taken is still the holder's.
async fn renew(tx: &Tx<'_>, name: &str, holder: &str, ttl: Duration) -> PgResult<bool> {
    let n = exec(
        &tx.t,
        "UPDATE leases SET expires_at = now() + make_interval(secs => $3)
         WHERE name = $1 AND holder = $2",
        &[&name, &holder, &seconds(ttl)],
    )
    .await?;
    Ok(n == 1)
}

async fn release(tx: &Tx<'_>, name: &str, holder: &str) -> PgResult<()> {
    exec(
        &tx.t,
        "DELETE FROM leases WHERE name = $1 AND holder = $2",
        &[&name, &holder],
    )
    .await?;
    Ok(())
}

/// The secret `name`, storing `fresh` when there is none yet. `ON CONFLICT DO NOTHING` waits
/// for a concurrent insert of the same name and then keeps it (first writer wins); the SELECT
/// that follows, a new statement under READ COMMITTED, sees the committed winner.
async fn secret(tx: &Tx<'_>, name: &str, fresh: &[u8]) -> PgResult<Vec<u8>> {
    exec(
        &tx.t,
        "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        &[&name, &fresh],
    )
    .await?;
    Ok(
        one(&tx.t, "SELECT value FROM secrets WHERE name = $1", &[&name])
            .await?
            .get(0),
    )
}

/// RFC 3501 §2.3.2: raises the recent mark of `mailbox` to `up_to`; returns the mark before.
/// The row lock makes a concurrent claim wait and then read the raised mark, so each UID is
/// recent in exactly one session across all nodes.
pub async fn claim_recent(tx: &Tx<'_>, mailbox: MailboxId, up_to: Uid) -> PgResult<Uid> {
    let before: i64 = opt(
        &tx.t,
        "SELECT recent_uid FROM mailboxes WHERE id = $1 FOR NO KEY UPDATE",
        &[&mailbox],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?
    .get(0);
    if i64::from(up_to) > before {
        exec(
            &tx.t,
            "UPDATE mailboxes SET recent_uid = $2 WHERE id = $1",
            &[&mailbox, &i64::from(up_to)],
        )
        .await?;
    }
    Ok(col_u32(before))
}

/// The recent mark without claiming (RFC 3501 §6.3.2 EXAMINE, STATUS).
pub async fn recent_mark<C: GenericClient>(c: &C, mailbox: MailboxId) -> PgResult<Uid> {
    let mark: i64 = opt(
        c,
        "SELECT recent_uid FROM mailboxes WHERE id = $1",
        &[&mailbox],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?
    .get(0);
    Ok(col_u32(mark))
}

#[async_trait]
impl Coordination for PgStore {
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<()> {
        write_tx!(self, |tx| acquire(tx, name, holder, ttl))
    }

    async fn renew_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
        write_tx!(self, |tx| renew(tx, name, holder, ttl))
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        write_tx!(self, |tx| release(tx, name, holder))
    }

    async fn shared_secret(&self, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>> {
        write_tx!(self, |tx| secret(tx, name, fresh))
    }
}

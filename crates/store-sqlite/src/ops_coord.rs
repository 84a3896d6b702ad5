//! Leases, shared secrets and `\Recent` claims (`store::Coordination`,
//! `MailStore::claim_recent`): rows every process on the data directory sees, changed by the
//! writer's transactions (SQLite's write lock serialises the processes).
//!
//! Lease expiry uses this machine's clock; every process sharing a SQLite file runs on it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use store::{MailboxId, StoreError, StoreResult, Uid};

use crate::db::Db;
use crate::writer::Tx;

/// Unix milliseconds now.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// When a lease taken or renewed now for `ttl` runs out.
fn expiry(ttl: Duration) -> i64 {
    now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

/// Takes `name` when it is free or its lease has expired; `InUse` otherwise. The test and the
/// take are one statement in the writer's transaction.
pub fn acquire(tx: &mut Tx<'_>, name: &str, holder: &str, ttl: Duration) -> StoreResult<()> {
    let now = now_ms();
    let changed = tx
        .conn
        .prepare_cached(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE
                 SET holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE leases.expires_at <= ?4",
        )
        .db()?
        .execute(params![name, holder, expiry(ttl), now])
        .db()?;
    if changed == 0 {
        return Err(StoreError::InUse);
    }
    Ok(())
}

/// Extends `holder`'s lease; false when the row is gone or another holder's.
pub fn renew(tx: &mut Tx<'_>, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
    let changed = tx
        .conn
        .prepare_cached("UPDATE leases SET expires_at = ?3 WHERE name = ?1 AND holder = ?2")
        .db()?
        .execute(params![name, holder, expiry(ttl)])
        .db()?;
    Ok(changed == 1)
}

pub fn release(tx: &mut Tx<'_>, name: &str, holder: &str) -> StoreResult<()> {
    tx.conn
        .prepare_cached("DELETE FROM leases WHERE name = ?1 AND holder = ?2")
        .db()?
        .execute(params![name, holder])
        .db()?;
    Ok(())
}

/// The secret `name`, storing `fresh` when there is none yet (first writer wins).
pub fn secret(tx: &mut Tx<'_>, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>> {
    tx.conn
        .prepare_cached("INSERT OR IGNORE INTO secrets (name, value) VALUES (?1, ?2)")
        .db()?
        .execute(params![name, fresh])
        .db()?;
    tx.conn
        .prepare_cached("SELECT value FROM secrets WHERE name = ?1")
        .db()?
        .query_row([name], |r| r.get(0))
        .db()
}

/// RFC 3501 §2.3.2: raises the recent mark of `mailbox` to `up_to`; returns the mark before.
pub fn claim_recent(tx: &mut Tx<'_>, mailbox: MailboxId, up_to: Uid) -> StoreResult<Uid> {
    let before = recent_mark(tx.conn, mailbox)?;
    if up_to > before {
        tx.conn
            .prepare_cached("UPDATE mailboxes SET recent_uid = ?2 WHERE id = ?1")
            .db()?
            .execute(params![mailbox, up_to])
            .db()?;
    }
    Ok(before)
}

pub fn recent_mark(conn: &Connection, mailbox: MailboxId) -> StoreResult<Uid> {
    let mark: i64 = conn
        .prepare_cached("SELECT recent_uid FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([mailbox], |r| r.get(0))
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
    Ok(Uid::try_from(mark).unwrap_or(0))
}

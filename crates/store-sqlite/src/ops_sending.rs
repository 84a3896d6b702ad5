//! The sending log behind the per-account hourly limits (`store::SendingLog`, schema
//! version 9): one row per accepted message of an authenticated account.
//!
//! `record` checks and inserts in the writer's transaction; SQLite admits one writer at a time
//! (across processes too), so two sessions cannot both take the last unit of an allowance.
//! Reads are index searches on `sending_log_account (account, at)`.

use rusqlite::{Connection, params};
use store::{AccountId, SendingLimits, SendingUsage, StoreResult, UnixTime};

use crate::db::Db;

pub fn usage(conn: &Connection, account: AccountId, since: UnixTime) -> StoreResult<SendingUsage> {
    let (messages, recipients): (i64, i64) = conn
        .prepare_cached(
            "SELECT count(*), coalesce(sum(recipients), 0) FROM sending_log
             WHERE account = ?1 AND at >= ?2",
        )
        .db()?
        .query_row(params![account, since], |r| Ok((r.get(0)?, r.get(1)?)))
        .db()?;
    Ok(SendingUsage {
        messages: messages.max(0) as u64,
        recipients: recipients.max(0) as u64,
    })
}

pub fn record(
    conn: &Connection,
    account: AccountId,
    recipients: u32,
    now: UnixTime,
    since: UnixTime,
    limits: SendingLimits,
) -> StoreResult<Result<i64, SendingUsage>> {
    // Entries that left the window count for nothing any more.
    conn.prepare_cached("DELETE FROM sending_log WHERE account = ?1 AND at < ?2")
        .db()?
        .execute(params![account, since])
        .db()?;
    let used = usage(conn, account, since)?;
    if !limits.allows(used, recipients) {
        return Ok(Err(used));
    }
    conn.prepare_cached("INSERT INTO sending_log (account, at, recipients) VALUES (?1, ?2, ?3)")
        .db()?
        .execute(params![account, now, recipients])
        .db()?;
    Ok(Ok(conn.last_insert_rowid()))
}

pub fn forget(conn: &Connection, id: i64) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM sending_log WHERE id = ?1")
        .db()?
        .execute([id])
        .db()?;
    Ok(())
}

//! Failed-login counters and IP bans (`store::LoginGuardStore`, schema version 12).
//!
//! A failure is counted by one upsert (`COUNT_FAILURE`): SQLite admits one writer at a time,
//! across processes too, and its `SET` expressions read the row as it was, so the window
//! arithmetic needs no read-modify-write. Counters are written without waiting for fsync
//! (`Writer::run_lazy`): a power failure may lose the last few counts, never a ban, which is
//! written durably.

use rusqlite::{Connection, params};
use store::{Ban, FailureCount, FailureWindows, GuardScope, StoreResult, UnixTime};

use crate::db::Db;

/// ?1 scope, ?2 subject, ?3 now, ?4 long window, ?5 short window (seconds). A window that ended
/// (`now - start >= window`) restarts at `now` with this failure.
const COUNT_FAILURE: &str = "
INSERT INTO login_failures
    (scope, subject, window_start, failures, burst_start, burst_failures, last_failure)
VALUES (?1, ?2, ?3, 1, ?3, 1, ?3)
ON CONFLICT (scope, subject) DO UPDATE SET
    failures = CASE WHEN ?3 - window_start >= ?4 THEN 1 ELSE failures + 1 END,
    window_start = CASE WHEN ?3 - window_start >= ?4 THEN ?3 ELSE window_start END,
    burst_failures = CASE WHEN ?3 - burst_start >= ?5 THEN 1 ELSE burst_failures + 1 END,
    burst_start = CASE WHEN ?3 - burst_start >= ?5 THEN ?3 ELSE burst_start END,
    last_failure = max(last_failure, ?3)
RETURNING failures, burst_failures";

pub fn record_failure(
    conn: &Connection,
    scope: GuardScope,
    subject: &str,
    now: UnixTime,
    windows: FailureWindows,
) -> StoreResult<FailureCount> {
    let (long, short): (i64, i64) = conn
        .prepare_cached(COUNT_FAILURE)
        .db()?
        .query_row(
            params![
                scope.as_str(),
                subject,
                now,
                windows.long_secs,
                windows.short_secs
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .db()?;
    Ok(FailureCount {
        long: long.clamp(0, u32::MAX as i64) as u32,
        short: short.clamp(0, u32::MAX as i64) as u32,
    })
}

pub fn clear_failures(conn: &Connection, scope: GuardScope, subject: &str) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM login_failures WHERE scope = ?1 AND subject = ?2")
        .db()?
        .execute(params![scope.as_str(), subject])
        .db()?;
    Ok(())
}

pub fn failures_since(
    conn: &Connection,
    scope: GuardScope,
    since: UnixTime,
) -> StoreResult<Vec<String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT subject FROM login_failures WHERE scope = ?1 AND last_failure >= ?2
             ORDER BY subject",
        )
        .db()?;
    let rows = stmt
        .query_map(params![scope.as_str(), since], |r| r.get(0))
        .db()?;
    rows.collect::<Result<Vec<String>, _>>().db()
}

pub fn add_ban(conn: &Connection, ban: &Ban) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO login_bans (ip, until, created, reason) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (ip) DO UPDATE SET until = ?2, created = ?3, reason = ?4",
    )
    .db()?
    .execute(params![ban.ip, ban.until, ban.created, ban.reason])
    .db()?;
    Ok(())
}

pub fn remove_ban(conn: &Connection, ip: &str) -> StoreResult<bool> {
    let n = conn
        .prepare_cached("DELETE FROM login_bans WHERE ip = ?1")
        .db()?
        .execute([ip])
        .db()?;
    Ok(n > 0)
}

pub fn active_bans(conn: &Connection, now: UnixTime) -> StoreResult<Vec<Ban>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT ip, until, created, reason FROM login_bans WHERE until > ?1 ORDER BY ip",
        )
        .db()?;
    let rows = stmt
        .query_map([now], |r| {
            Ok(Ban {
                ip: r.get(0)?,
                until: r.get(1)?,
                created: r.get(2)?,
                reason: r.get(3)?,
            })
        })
        .db()?;
    rows.collect::<Result<Vec<Ban>, _>>().db()
}

pub fn purge(conn: &Connection, now: UnixTime, stale_before: UnixTime) -> StoreResult<u64> {
    let bans = conn
        .prepare_cached("DELETE FROM login_bans WHERE until <= ?1")
        .db()?
        .execute([now])
        .db()?;
    let counters = conn
        .prepare_cached("DELETE FROM login_failures WHERE last_failure < ?1")
        .db()?
        .execute([stale_before])
        .db()?;
    Ok((bans + counters) as u64)
}

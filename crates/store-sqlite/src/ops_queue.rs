//! The outbound queue's SQL: `queue_messages` and `queue_recipients` (schema version 2), and
//! the `queue_domains` index of due work (version 9) every change of a pending recipient keeps
//! current. Claims and leases are in `ops_claim.rs`.
//!
//! Invariants:
//! - A queued message holds exactly one reference on its body's blob, taken in the same
//!   transaction that inserts the row and released in the one that deletes it.
//! - A recipient's status only moves away from `pending` (an attempt result for a recipient
//!   that is no longer pending is ignored), so a late result cannot resurrect a deleted or
//!   finished recipient.
//! - `queue_domains.next_due` is never later than the earliest `next_attempt` of the domain's
//!   pending recipients: every write that makes a recipient due earlier (enqueue, release,
//!   retry, a recorded retry time) lowers it in the same transaction.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Row, params};
use store::{
    AttemptResult, DsnNotify, DsnRet, LeaseId, OutboundEnvelope, QueueId, QueuedMessage,
    QueuedRecipient, RecipientStatus, StoreError, StoreResult, UnixTime,
};

use crate::db::{Db, now, sql_u64};
use crate::ops_claim::refresh_domain;
use crate::ops_msg::NewBlob;
use crate::prim::{acquire_blob, release_blob};
use crate::writer::Tx;

fn notify_bits(n: DsnNotify) -> i64 {
    i64::from(n.bits())
}

fn notify_from_bits(b: i64) -> DsnNotify {
    DsnNotify::from_bits(u8::try_from(b).unwrap_or(0))
}

fn ret_str(r: Option<DsnRet>) -> Option<&'static str> {
    r.map(DsnRet::as_str)
}

fn ret_from(s: Option<String>) -> Option<DsnRet> {
    s.as_deref().and_then(DsnRet::parse)
}

/// The lower-case domain of an address (after the last `@`); empty when there is none.
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.to_lowercase())
        .unwrap_or_default()
}

pub fn enqueue(
    tx: &mut Tx<'_>,
    blob: &NewBlob<'_>,
    envelope: &OutboundEnvelope,
) -> StoreResult<QueueId> {
    if envelope.recipients.is_empty() {
        return Err(StoreError::Invalid(
            "a queued message needs recipients".into(),
        ));
    }
    let size = blob.bytes.len() as u64;
    acquire_blob(tx, blob.hash, size, 1, Some(blob.bytes))?;
    let created = now();
    tx.conn
        .prepare_cached(
            "INSERT INTO queue_messages (blob, size, sender, envid, ret, account, smtputf8, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .db()?
        .execute(params![
            blob.hash,
            sql_u64(size),
            envelope.sender,
            envelope.envid,
            ret_str(envelope.ret),
            envelope.account,
            envelope.smtputf8,
            created
        ])
        .db()?;
    let id = tx.conn.last_insert_rowid();
    let mut ins = tx
        .conn
        .prepare_cached(
            "INSERT INTO queue_recipients (message, address, domain, orcpt, notify, next_attempt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .db()?;
    let mut due = tx
        .conn
        .prepare_cached(
            "INSERT INTO queue_domains (domain, next_due) VALUES (?1, ?2)
             ON CONFLICT (domain) DO UPDATE SET next_due = min(next_due, excluded.next_due)",
        )
        .db()?;
    for r in &envelope.recipients {
        let domain = domain_of(&r.address);
        ins.execute(params![
            id,
            r.address,
            domain,
            r.orcpt,
            notify_bits(r.notify),
            created
        ])
        .db()?;
        due.execute(params![domain, created]).db()?;
    }
    Ok(id)
}

const MESSAGE_COLUMNS: &str =
    "id, size, sender, envid, ret, account, smtputf8, created, delay_notified";

pub(crate) fn message_from_row(r: &Row<'_>) -> rusqlite::Result<QueuedMessage> {
    Ok(QueuedMessage {
        id: r.get(0)?,
        size: r.get::<_, i64>(1)?.max(0) as u64,
        sender: r.get(2)?,
        envid: r.get(3)?,
        ret: ret_from(r.get(4)?),
        account: r.get(5)?,
        smtputf8: r.get(6)?,
        created: r.get(7)?,
        delay_notified: r.get(8)?,
        recipients: Vec::new(),
    })
}

pub(crate) fn recipients(conn: &Connection, message: QueueId) -> StoreResult<Vec<QueuedRecipient>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.id, r.address, r.domain, r.orcpt, r.notify, r.status, r.attempts,
                    r.next_attempt, r.last_error, r.last_attempt, l.id
             FROM queue_recipients r LEFT JOIN queue_leases l ON l.id = r.lease
             WHERE r.message = ?1 ORDER BY r.id",
        )
        .db()?;
    let rows = stmt
        .query_map([message], |r| {
            let status: String = r.get(5)?;
            Ok(QueuedRecipient {
                id: r.get(0)?,
                address: r.get(1)?,
                domain: r.get(2)?,
                orcpt: r.get(3)?,
                notify: notify_from_bits(r.get(4)?),
                status: RecipientStatus::parse(&status).unwrap_or(RecipientStatus::Pending),
                attempts: r.get::<_, i64>(6)?.clamp(0, i64::from(u32::MAX)) as u32,
                next_attempt: r.get(7)?,
                last_error: r.get(8)?,
                last_attempt: r.get(9)?,
                lease: r.get(10)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// Loads messages by a query that selects [`MESSAGE_COLUMNS`], with their recipients, in one
/// read transaction so message and recipients agree.
fn load(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> StoreResult<Vec<QueuedMessage>> {
    conn.execute_batch("BEGIN").db()?;
    let out = load_in(conn, sql, args);
    let _ = conn.execute_batch("COMMIT");
    out
}

/// [`load`] inside a transaction the caller holds (the writer's).
fn load_in(
    conn: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
) -> StoreResult<Vec<QueuedMessage>> {
    let mut msgs: Vec<QueuedMessage> = {
        let mut stmt = conn.prepare_cached(sql).db()?;
        let rows = stmt.query_map(args, message_from_row).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    for m in &mut msgs {
        m.recipients = recipients(conn, m.id)?;
    }
    Ok(msgs)
}

/// One message with its recipients, inside the caller's transaction.
pub(crate) fn message_in(conn: &Connection, id: QueueId) -> StoreResult<Option<QueuedMessage>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM queue_messages WHERE id = ?1");
    Ok(load_in(conn, &sql, [id])?.into_iter().next())
}

pub fn next_due(conn: &Connection) -> StoreResult<Option<UnixTime>> {
    conn.prepare_cached("SELECT min(next_attempt) FROM queue_recipients WHERE status = 'pending'")
        .db()?
        .query_row([], |r| r.get(0))
        .db()
}

pub fn queued_message(conn: &Connection, id: QueueId) -> StoreResult<Option<QueuedMessage>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM queue_messages WHERE id = ?1");
    Ok(load(conn, &sql, [id])?.into_iter().next())
}

pub fn list_queue(conn: &Connection) -> StoreResult<Vec<QueuedMessage>> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM queue_messages ORDER BY id");
    load(conn, &sql, [])
}

/// The blob hash of a queued message.
pub fn body_hash(conn: &Connection, id: QueueId) -> StoreResult<String> {
    conn.prepare_cached("SELECT blob FROM queue_messages WHERE id = ?1")
        .db()?
        .query_row([id], |r| r.get(0))
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("queued message {id}")))
}

/// Records the results of recipients `lease` still holds; ends its hold on them.
pub fn record_attempts(
    conn: &Connection,
    lease: LeaseId,
    results: &[AttemptResult],
) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached(
            "UPDATE queue_recipients
             SET status = ?2, next_attempt = ?3, last_error = ?4, last_attempt = ?5,
                 attempts = attempts + 1, lease = NULL
             WHERE id = ?1 AND status = 'pending' AND lease = ?6
             RETURNING domain",
        )
        .db()?;
    let mut domains = BTreeSet::new();
    for r in results {
        let domain: Option<String> = stmt
            .query_row(
                params![
                    r.recipient,
                    r.status.as_str(),
                    r.next_attempt,
                    r.error,
                    r.at,
                    lease
                ],
                |row| row.get(0),
            )
            .optional()
            .db()?;
        domains.extend(domain);
    }
    for d in &domains {
        refresh_domain(conn, d)?;
    }
    Ok(())
}

pub fn set_delay_notified(conn: &Connection, id: QueueId) -> StoreResult<()> {
    conn.prepare_cached("UPDATE queue_messages SET delay_notified = 1 WHERE id = ?1")
        .db()?
        .execute([id])
        .db()?;
    Ok(())
}

/// Makes pending recipients due now, except those a live lease holds (being delivered: a
/// claimed recipient's `next_attempt` is its lease's expiry, so `lease IS NULL` tells them
/// apart; an expired lease's recipients are due already).
pub fn retry(conn: &Connection, id: Option<QueueId>, now: UnixTime) -> StoreResult<u64> {
    let n = match id {
        Some(id) => {
            if !message_exists(conn, id)? {
                return Err(StoreError::NotFound(format!("queued message {id}")));
            }
            let domains: Vec<String> = {
                let mut stmt = conn
                    .prepare_cached(
                        "UPDATE queue_recipients SET next_attempt = ?2
                         WHERE message = ?1 AND status = 'pending' AND lease IS NULL
                         RETURNING domain",
                    )
                    .db()?;
                let rows = stmt.query_map(params![id, now], |r| r.get(0)).db()?;
                rows.collect::<rusqlite::Result<_>>().db()?
            };
            let unique: BTreeSet<&String> = domains.iter().collect();
            for d in unique {
                refresh_domain(conn, d)?;
            }
            domains.len()
        }
        None => {
            let n = conn
                .prepare_cached(
                    "UPDATE queue_recipients SET next_attempt = ?1
                     WHERE status = 'pending' AND next_attempt > ?1 AND lease IS NULL",
                )
                .db()?
                .execute([now])
                .db()?;
            // Every domain with such a recipient is now due: a lower bound for all of them.
            conn.prepare_cached("UPDATE queue_domains SET next_due = ?1 WHERE next_due > ?1")
                .db()?
                .execute([now])
                .db()?;
            n
        }
    };
    Ok(n as u64)
}

fn message_exists(conn: &Connection, id: QueueId) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM queue_messages WHERE id = ?1")
        .db()?
        .query_row([id], |_| Ok(()))
        .optional()
        .db()?
        .is_some())
}

/// Deletes one message row with its recipients and releases its blob reference.
pub fn delete(tx: &mut Tx<'_>, id: QueueId) -> StoreResult<()> {
    let domains: Vec<String> = {
        let mut stmt = tx
            .conn
            .prepare_cached(
                "SELECT DISTINCT domain FROM queue_recipients
                 WHERE message = ?1 AND status = 'pending'",
            )
            .db()?;
        let rows = stmt.query_map([id], |r| r.get(0)).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    let hash: String = tx
        .conn
        .prepare_cached("DELETE FROM queue_messages WHERE id = ?1 RETURNING blob")
        .db()?
        .query_row([id], |r| r.get(0))
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("queued message {id}")))?;
    // ON DELETE CASCADE needs foreign_keys=ON, which every connection sets; be explicit anyway.
    tx.conn
        .prepare_cached("DELETE FROM queue_recipients WHERE message = ?1")
        .db()?
        .execute([id])
        .db()?;
    for d in &domains {
        refresh_domain(tx.conn, d)?;
    }
    release_blob(tx, &hash, 1)
}

pub fn remove_finished(tx: &mut Tx<'_>) -> StoreResult<u64> {
    let ids: Vec<QueueId> = {
        let mut stmt = tx
            .conn
            .prepare_cached(
                "SELECT id FROM queue_messages m WHERE NOT EXISTS
                   (SELECT 1 FROM queue_recipients r
                    WHERE r.message = m.id AND r.status = 'pending')",
            )
            .db()?;
        let rows = stmt.query_map([], |r| r.get(0)).db()?;
        rows.collect::<rusqlite::Result<_>>().db()?
    };
    for &id in &ids {
        delete(tx, id)?;
    }
    Ok(ids.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_bits_round_trip() {
        for n in [DsnNotify::default(), DsnNotify::NEVER] {
            assert_eq!(notify_from_bits(notify_bits(n)), n);
        }
        let all = DsnNotify {
            success: true,
            failure: true,
            delay: true,
        };
        assert_eq!(notify_bits(all), 7);
        assert_eq!(domain_of("a@B.Example"), "b.example");
        assert_eq!(domain_of("\"a@b\"@c.org"), "c.org");
        assert_eq!(domain_of("nodomain"), "");
    }
}

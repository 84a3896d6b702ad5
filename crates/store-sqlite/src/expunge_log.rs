//! Pruning the expunge log (`store::ExpungeLogLimits`) and reading it with its coverage.
//!
//! Invariant: `mailboxes.expunge_floor` is at least the MODSEQ of every row ever pruned from
//! the mailbox's log, and rows go by whole MODSEQs (`modseq <= cut`), so the log holds every
//! expunge whose MODSEQ is above the floor — what `vanished_since` relies on.

use rusqlite::{Connection, OptionalExtension, params};
use store::{ExpungeLogLimits, MailboxId, ModSeq, StoreResult, Uid, UnixTime};

use crate::db::Db;
use crate::reads;
use crate::writer::Tx;

/// The UIDs expunged above `modseq`, or `None` when the log was pruned past it. The rows are
/// read before the floor: a prune in between only makes the answer `None` (a full resync),
/// never an incomplete list.
pub fn vanished_since(
    conn: &Connection,
    mailbox: MailboxId,
    modseq: ModSeq,
) -> StoreResult<Option<Vec<Uid>>> {
    let uids = reads::expunged_since(conn, mailbox, modseq)?;
    let floor: i64 = conn
        .prepare_cached("SELECT expunge_floor FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([mailbox], |r| r.get(0))
        .optional()
        .db()?
        .unwrap_or(0);
    let floor = u64::try_from(floor).unwrap_or(0);
    Ok((modseq >= floor).then_some(uids))
}

/// The mailboxes that have expunge-log rows.
pub fn mailboxes_with_rows(conn: &Connection) -> StoreResult<Vec<MailboxId>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT m.account_id, m.id FROM mailboxes m
             WHERE EXISTS (SELECT 1 FROM expunged e WHERE e.mailbox_id = m.id)",
        )
        .db()?;
    let rows = stmt
        .query_map([], |r| Ok(MailboxId::new(r.get(0)?, r.get(1)?)))
        .db()?;
    rows.collect::<Result<_, _>>().db()
}

/// Prunes one mailbox's log to `limits`; returns the rows dropped.
pub fn prune_mailbox(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    limits: ExpungeLogLimits,
    now: UnixTime,
) -> StoreResult<u64> {
    let conn = tx.conn;
    let mut cut: i64 = 0;
    if limits.max_per_mailbox > 0 {
        // The MODSEQ of the newest row beyond the kept ones (index expunged_modseq).
        let offset = i64::try_from(limits.max_per_mailbox).unwrap_or(i64::MAX);
        let beyond: Option<i64> = conn
            .prepare_cached(
                "SELECT modseq FROM expunged WHERE mailbox_id = ?1
                 ORDER BY modseq DESC LIMIT 1 OFFSET ?2",
            )
            .db()?
            .query_row(params![mailbox, offset], |r| r.get(0))
            .optional()
            .db()?;
        cut = cut.max(beyond.unwrap_or(0));
    }
    if limits.max_age_secs > 0 {
        let before = now.saturating_sub(i64::try_from(limits.max_age_secs).unwrap_or(i64::MAX));
        let old: Option<i64> = conn
            .prepare_cached(
                "SELECT max(modseq) FROM expunged WHERE mailbox_id = ?1 AND expunged_at < ?2",
            )
            .db()?
            .query_row(params![mailbox, before], |r| r.get(0))
            .db()?;
        cut = cut.max(old.unwrap_or(0));
    }
    if cut == 0 {
        return Ok(0);
    }
    let dropped = conn
        .prepare_cached("DELETE FROM expunged WHERE mailbox_id = ?1 AND modseq <= ?2")
        .db()?
        .execute(params![mailbox, cut])
        .db()?;
    conn.prepare_cached(
        "UPDATE mailboxes SET expunge_floor = max(expunge_floor, ?2) WHERE id = ?1",
    )
    .db()?
    .execute(params![mailbox, cut])
    .db()?;
    Ok(dropped as u64)
}

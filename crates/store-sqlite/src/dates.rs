//! `store::MessageDates`: save dates (RFC 8514), first POP3 retrievals, and the batches of
//! aged messages retention removes (schema version 15).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use store::{AgeBasis, MailboxId, MessageDates, StoreResult, Uid, UnixTime};

use crate::SqliteStore;
use crate::db::Db;
use crate::ops_msg::sorted_uids;

/// One date column of the messages `uids`, in UID order.
fn dates(
    c: &Connection,
    mailbox: MailboxId,
    uids: &[Uid],
    column: &str,
) -> StoreResult<Vec<(Uid, Option<UnixTime>)>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {column} FROM messages WHERE mailbox_id = ?1 AND uid = ?2"
        ))
        .db()?;
    let mut out = Vec::new();
    for uid in sorted_uids(uids) {
        let row: Option<Option<i64>> = stmt
            .query_row(params![mailbox, uid], |r| r.get(0))
            .optional()
            .db()?;
        if let Some(d) = row {
            out.push((uid, d));
        }
    }
    Ok(out)
}

/// See [`MessageDates::aged_messages`]: range reads of `messages_save_date` (or
/// `messages_retrieved`) in date order that stop at `limit` — never a sort of every due
/// message, which for a million would cost a second per batch. A row without a save date
/// goes by its internal date (its entries lead the index).
fn aged(
    c: &Connection,
    mailbox: MailboxId,
    basis: AgeBasis,
    before: UnixTime,
    limit: usize,
) -> StoreResult<Vec<Uid>> {
    let queries: &[&str] = match basis {
        AgeBasis::Saved => &[
            "SELECT uid FROM messages
             WHERE mailbox_id = ?1 AND save_date IS NULL AND internal_date < ?2 LIMIT ?3",
            "SELECT uid FROM messages WHERE mailbox_id = ?1 AND save_date < ?2
             ORDER BY save_date LIMIT ?3",
        ],
        AgeBasis::Retrieved => &["SELECT uid FROM messages
             WHERE mailbox_id = ?1 AND retrieved_at IS NOT NULL AND retrieved_at < ?2
             ORDER BY retrieved_at LIMIT ?3"],
    };
    let mut out: Vec<Uid> = Vec::new();
    for sql in queries {
        let left = limit.saturating_sub(out.len());
        if left == 0 {
            break;
        }
        let mut stmt = c.prepare_cached(sql).db()?;
        let rows = stmt
            .query_map(
                params![mailbox, before, i64::try_from(left).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .db()?;
        for uid in rows {
            out.push(uid.db()?);
        }
    }
    out.sort_unstable();
    Ok(out)
}

#[async_trait]
impl MessageDates for SqliteStore {
    async fn save_dates(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> StoreResult<Vec<(Uid, Option<UnixTime>)>> {
        self.own(mailbox).await?;
        let uids = uids.to_vec();
        self.readers
            .read(move |c| dates(c, mailbox, &uids, "save_date"))
            .await
    }

    async fn mark_retrieved(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        at: UnixTime,
    ) -> StoreResult<u64> {
        self.own(mailbox).await?;
        let uids = sorted_uids(uids);
        self.writer
            .run(move |tx| {
                let mut set = tx
                    .conn
                    .prepare_cached(
                        "UPDATE messages SET retrieved_at = ?3
                         WHERE mailbox_id = ?1 AND uid = ?2 AND retrieved_at IS NULL",
                    )
                    .db()?;
                let mut n = 0u64;
                for uid in &uids {
                    n += set.execute(params![mailbox, uid, at]).db()? as u64;
                }
                Ok(n)
            })
            .await
    }

    async fn retrieved_dates(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> StoreResult<Vec<(Uid, Option<UnixTime>)>> {
        self.own(mailbox).await?;
        let uids = uids.to_vec();
        self.readers
            .read(move |c| dates(c, mailbox, &uids, "retrieved_at"))
            .await
    }

    async fn aged_messages(
        &self,
        mailbox: MailboxId,
        basis: AgeBasis,
        before: UnixTime,
        limit: usize,
    ) -> StoreResult<Vec<Uid>> {
        self.own(mailbox).await?;
        self.readers
            .read(move |c| aged(c, mailbox, basis, before, limit))
            .await
    }
}

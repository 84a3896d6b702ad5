//! `store::MessageDates`: save dates (RFC 8514), first POP3 retrievals, and the batches of
//! aged messages retention removes (schema version 8).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use store::{AgeBasis, MailboxId, MessageDates, StoreResult, Uid, UnixTime};

use crate::PgStore;
use crate::db::{col_u32, exec, rows};
use crate::error::PgResult;
use crate::ops_msg::sorted_uids;
use crate::tx::{read, write_tx};

/// `SELECT uid, <date>` of the messages `uids`, in UID order.
async fn dates<C: GenericClient>(
    c: &C,
    sql: &str,
    mailbox: MailboxId,
    uids: &[Uid],
) -> PgResult<Vec<(Uid, Option<UnixTime>)>> {
    let rs = rows(c, sql, &[&mailbox, &sorted_uids(uids)]).await?;
    Ok(rs.iter().map(|r| (col_u32(r.get(0)), r.get(1))).collect())
}

/// See [`MessageDates::aged_messages`]: index range reads in date order that stop at
/// `limit` (never a sort of every due message); a row without a save date goes by its
/// internal date.
async fn aged<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    basis: AgeBasis,
    before: UnixTime,
    limit: usize,
) -> PgResult<Vec<Uid>> {
    let queries: &[&str] = match basis {
        AgeBasis::Saved => &[
            "SELECT uid FROM messages
             WHERE mailbox_id = $1 AND save_date IS NULL AND internal_date < $2 LIMIT $3",
            "SELECT uid FROM messages WHERE mailbox_id = $1 AND save_date < $2
             ORDER BY save_date LIMIT $3",
        ],
        AgeBasis::Retrieved => &["SELECT uid FROM messages
             WHERE mailbox_id = $1 AND retrieved_at IS NOT NULL AND retrieved_at < $2
             ORDER BY retrieved_at LIMIT $3"],
    };
    let mut out: Vec<Uid> = Vec::new();
    for sql in queries {
        let left = limit.saturating_sub(out.len());
        if left == 0 {
            break;
        }
        let left = i64::try_from(left).unwrap_or(i64::MAX);
        let rs = rows(c, sql, &[&mailbox, &before, &left]).await?;
        out.extend(rs.iter().map(|r| col_u32(r.get(0))));
    }
    out.sort_unstable();
    Ok(out)
}

#[async_trait]
impl MessageDates for PgStore {
    async fn save_dates(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> StoreResult<Vec<(Uid, Option<UnixTime>)>> {
        self.own(mailbox).await?;
        read!(self, |c| dates(
            c,
            "SELECT uid, save_date FROM messages WHERE mailbox_id = $1 AND uid = ANY($2)
             ORDER BY uid",
            mailbox,
            uids
        ))
    }

    async fn mark_retrieved(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        at: UnixTime,
    ) -> StoreResult<u64> {
        self.own(mailbox).await?;
        let wanted = sorted_uids(uids);
        write_tx!(self, |tx| exec(
            &tx.t,
            "UPDATE messages SET retrieved_at = $3
             WHERE mailbox_id = $1 AND uid = ANY($2) AND retrieved_at IS NULL",
            &[&mailbox, &wanted, &at],
        ))
    }

    async fn retrieved_dates(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> StoreResult<Vec<(Uid, Option<UnixTime>)>> {
        self.own(mailbox).await?;
        read!(self, |c| dates(
            c,
            "SELECT uid, retrieved_at FROM messages WHERE mailbox_id = $1 AND uid = ANY($2)
             ORDER BY uid",
            mailbox,
            uids
        ))
    }

    async fn aged_messages(
        &self,
        mailbox: MailboxId,
        basis: AgeBasis,
        before: UnixTime,
        limit: usize,
    ) -> StoreResult<Vec<Uid>> {
        self.own(mailbox).await?;
        read!(self, |c| aged(c, mailbox, basis, before, limit))
    }
}

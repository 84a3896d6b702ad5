//! Pruning the expunge log (`store::ExpungeLogLimits`) and reading it with its coverage; the
//! embedded store's `expunge_log.rs` does the same.
//!
//! Invariant: `mailboxes.expunge_floor` is at least the MODSEQ of every row ever pruned from
//! the mailbox's log, and rows go by whole MODSEQs (`modseq <= cut`), so the log holds every
//! expunge whose MODSEQ is above the floor — what `vanished_since` relies on.

use deadpool_postgres::GenericClient;
use store::{ExpungeLogLimits, MailboxId, ModSeq, Uid, UnixTime};

use crate::db::{exec, opt, rows, sql_u64};
use crate::error::PgResult;
use crate::reads;
use crate::tx::Tx;

/// The UIDs expunged above `modseq`, or `None` when the log was pruned past it. Run in one
/// snapshot, so the rows and the floor agree.
pub async fn vanished_since<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    modseq: ModSeq,
) -> PgResult<Option<Vec<Uid>>> {
    let uids = reads::expunged_since(c, mailbox, modseq).await?;
    let floor: i64 = opt(
        c,
        "SELECT expunge_floor FROM mailboxes WHERE id = $1",
        &[&mailbox],
    )
    .await?
    .map_or(0, |r| r.get(0));
    Ok((modseq >= u64::try_from(floor).unwrap_or(0)).then_some(uids))
}

/// The mailboxes that have expunge-log rows.
pub async fn mailboxes_with_rows<C: GenericClient>(c: &C) -> PgResult<Vec<MailboxId>> {
    let rs = rows(
        c,
        "SELECT m.account_id, m.id FROM mailboxes m
         WHERE EXISTS (SELECT 1 FROM expunged e WHERE e.mailbox_id = m.id)",
        &[],
    )
    .await?;
    Ok(rs
        .iter()
        .map(|r| MailboxId::new(r.get(0), r.get(1)))
        .collect())
}

/// Prunes one mailbox's log to `limits`; returns the rows dropped.
pub async fn prune_mailbox(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    limits: ExpungeLogLimits,
    now: UnixTime,
) -> PgResult<u64> {
    let mut cut: i64 = 0;
    if limits.max_per_mailbox > 0 {
        // The MODSEQ of the newest row beyond the kept ones (index expunged_modseq).
        let beyond = opt(
            &tx.t,
            "SELECT modseq FROM expunged WHERE mailbox_id = $1
             ORDER BY modseq DESC LIMIT 1 OFFSET $2",
            &[&mailbox, &sql_u64(limits.max_per_mailbox)],
        )
        .await?;
        cut = cut.max(beyond.map_or(0, |r| r.get(0)));
    }
    if limits.max_age_secs > 0 {
        let before = now.saturating_sub(sql_u64(limits.max_age_secs));
        let old = opt(
            &tx.t,
            "SELECT max(modseq) FROM expunged WHERE mailbox_id = $1 AND expunged_at < $2",
            &[&mailbox, &before],
        )
        .await?;
        cut = cut.max(old.and_then(|r| r.get::<_, Option<i64>>(0)).unwrap_or(0));
    }
    if cut == 0 {
        return Ok(0);
    }
    let dropped = exec(
        &tx.t,
        "DELETE FROM expunged WHERE mailbox_id = $1 AND modseq <= $2",
        &[&mailbox, &cut],
    )
    .await?;
    exec(
        &tx.t,
        "UPDATE mailboxes SET expunge_floor = greatest(expunge_floor, $2) WHERE id = $1",
        &[&mailbox, &cut],
    )
    .await?;
    Ok(dropped)
}

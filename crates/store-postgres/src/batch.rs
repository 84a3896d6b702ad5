//! The multi-message writes that must be one transaction: RFC 3502 MULTIAPPEND
//! ([`append_many`]) and RFC 6851 MOVE ([`move_messages`]). Each runs inside one write
//! transaction (`tx.rs`): any error rolls everything back, and a crash leaves the mailboxes as
//! before or as after, never in between.

use std::collections::BTreeMap;

use store::UnixTime;
use store::{Change, ChangeEvent, Flags, MailboxId, MessageSummary, StoreError, Stored, Uid};

use crate::db::flag_bits;
use crate::error::PgResult;
use crate::ops_msg::{NewBlob, copy_rows};
use crate::prim::{
    NewMessage, acquire_blob, allocate, charge_quota, expunge_uids_with, insert_message,
    lock_mailbox, lock_two,
};
use crate::tx::Tx;

/// One message of a MULTIAPPEND: its body, flags (keywords already validated) and date.
pub struct BatchItem<'a> {
    pub blob: NewBlob<'a>,
    pub flags: &'a Flags,
    pub internal_date: UnixTime,
}

/// RFC 3502 MULTIAPPEND: every message into one mailbox. Consecutive UIDs in the given order
/// and one MODSEQ for the batch (RFC 7162 §3.1: messages changed by one command may share
/// it); quota is charged for the whole batch at once, so either all fit or none is stored.
pub async fn append_many(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    items: &[BatchItem<'_>],
) -> PgResult<Vec<Stored>> {
    let mb = lock_mailbox(tx, mailbox).await?;
    if items.is_empty() {
        return Ok(Vec::new());
    }
    // Lock order (`prim.rs`): the mailbox, then the account, then blobs by hash.
    let total = items
        .iter()
        .fold(0i64, |t, i| t.saturating_add(i.blob.bytes.len() as i64));
    charge_quota(tx, mb.account, total, items.len() as i64, true).await?;
    let mut per_blob: BTreeMap<&str, (u64, &[u8])> = BTreeMap::new();
    for i in items {
        per_blob.entry(i.blob.hash).or_insert((0, i.blob.bytes)).0 += 1;
    }
    for (hash, (n, bytes)) in &per_blob {
        acquire_blob(tx, hash, *n, Some(bytes)).await?;
    }
    let count =
        u32::try_from(items.len()).map_err(|_| StoreError::Invalid("too many messages".into()))?;
    let alloc = allocate(tx, mb.id, count).await?;
    let mut stored = Vec::with_capacity(items.len());
    for (n, item) in items.iter().enumerate() {
        let uid = alloc.first_uid + n as u32;
        let size = item.blob.bytes.len() as u64;
        insert_message(
            tx,
            &NewMessage {
                mailbox: mb.id,
                uid,
                hash: item.blob.hash,
                size,
                internal_date: item.internal_date,
                flags: flag_bits(item.flags.system),
                keywords: &item.flags.keywords,
                modseq: alloc.modseq,
            },
        )
        .await?;
        tx.events.push(ChangeEvent {
            mailbox: mb.id,
            change: Change::NewMessage(MessageSummary {
                uid,
                size,
                internal_date: item.internal_date,
                flags: item.flags.clone(),
                modseq: alloc.modseq,
            }),
        });
        stored.push(Stored {
            mailbox: mb.id,
            uid_validity: alloc.uid_validity,
            uid,
        });
    }
    Ok(stored)
}

/// RFC 6851 §3.3 MOVE: the copy (new UIDs in source-UID order, flags and dates kept, blobs
/// shared), then the expunge of the copied UIDs from the source (expunge log, one MODSEQ).
/// The events come in that order — the destination's `NewMessage`s, then the source's
/// `Expunged` (COPYUID before EXPUNGE, §4.3). Quota is not charged (RFC 9208 §4: a MOVE
/// within the account changes no usage), so a user over quota can still move to Trash.
pub async fn move_messages(
    tx: &mut Tx<'_>,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> PgResult<Vec<(Uid, Uid)>> {
    let (src, dst) = lock_two(tx, from, to).await?;
    if src.account != dst.account {
        return Err(StoreError::Invalid("cannot move between different accounts".into()).into());
    }
    let pairs = copy_rows(tx, &src, Some(uids), &dst, false).await?;
    let moved: Vec<Uid> = pairs.iter().map(|p| p.0).collect();
    let removed = expunge_uids_with(tx, &src, &moved, false).await?;
    // The rows were read under the source's lock in this transaction: every copied message
    // is removed.
    if removed.len() != moved.len() {
        return Err(StoreError::Temporary("MOVE: source changed meanwhile".into()).into());
    }
    Ok(pairs)
}

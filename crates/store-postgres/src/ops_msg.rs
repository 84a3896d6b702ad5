//! Message writes: delivery, APPEND, flag changes, copy, expunge. Each function runs inside a
//! write transaction (`tx.rs`) and queues its change events.

use std::collections::BTreeMap;

use store::{
    AccountId, Change, ChangeEvent, ConditionalStore, FlagOp, Flags, INBOX, MailboxId,
    MessageSummary, ModSeq, StoreError, Stored, SystemFlags, Uid, UnixTime,
};

use crate::db::{col_u32, col_u64, exec, flag_bits, flags_from_columns, rows, sql_u64};
use crate::error::PgResult;
use crate::prim::{
    MailboxRow, NewMessage, acquire_blob, acquire_existing, allocate, bump_modseq, charge_quota,
    expunge_uids, insert_message, lock_mailbox, lock_two,
};
use crate::tx::Tx;
use store::backend::flags::{apply, same_flags};

/// A message body and its content address.
pub struct NewBlob<'a> {
    pub hash: &'a str,
    pub bytes: &'a [u8],
}

impl NewBlob<'_> {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Files one new message into the locked mailbox `mb` (UID, MODSEQ, event). The blob
/// reference and quota are taken by the caller.
async fn file_message(
    tx: &mut Tx<'_>,
    mb: &MailboxRow,
    blob: &NewBlob<'_>,
    flags: &Flags,
    internal_date: UnixTime,
) -> PgResult<Stored> {
    let alloc = allocate(tx, mb.id, 1).await?;
    insert_message(
        tx,
        &NewMessage {
            mailbox: mb.id,
            uid: alloc.first_uid,
            hash: blob.hash,
            size: blob.size(),
            internal_date,
            flags: flag_bits(flags.system),
            keywords: &flags.keywords,
            modseq: alloc.modseq,
        },
    )
    .await?;
    tx.events.push(ChangeEvent {
        mailbox: mb.id,
        change: Change::NewMessage(MessageSummary {
            uid: alloc.first_uid,
            size: blob.size(),
            internal_date,
            flags: flags.clone(),
            modseq: alloc.modseq,
        }),
    });
    Ok(Stored {
        mailbox: mb.id,
        uid_validity: alloc.uid_validity,
        uid: alloc.first_uid,
    })
}

/// Delivers one message to the INBOX of each account (already de-duplicated). All or nothing:
/// an unknown account fails with `NotFound`, an account over quota with `OverQuota`, and then no
/// account gets the message (the caller checks quota per recipient beforehand to avoid that).
pub async fn deliver(
    tx: &mut Tx<'_>,
    blob: &NewBlob<'_>,
    internal_date: UnixTime,
    accounts: &[AccountId],
) -> PgResult<Vec<Stored>> {
    // The INBOXes, locked in id order (`prim.rs`).
    let found = rows(
        &tx.t,
        "SELECT id, account_id FROM mailboxes WHERE account_id = ANY($1) AND name = $2
         ORDER BY id FOR NO KEY UPDATE",
        &[&accounts, &INBOX],
    )
    .await?;
    let mut inboxes = Vec::with_capacity(accounts.len());
    for &account in accounts {
        let id: MailboxId = found
            .iter()
            .find(|r| r.get::<_, AccountId>(1) == account)
            .map(|r| MailboxId::new(account, r.get(0)))
            .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {account}")))?;
        inboxes.push(MailboxRow {
            id,
            account,
            name: INBOX.into(),
        });
    }
    let mut by_account: Vec<AccountId> = accounts.to_vec();
    by_account.sort_unstable();
    for account in by_account {
        charge_quota(tx, account, blob.size() as i64, 1, true).await?;
    }
    acquire_blob(tx, blob.hash, inboxes.len() as u64, Some(blob.bytes)).await?;
    let mut stored = Vec::with_capacity(inboxes.len());
    for mb in &inboxes {
        stored.push(file_message(tx, mb, blob, &Flags::default(), internal_date).await?);
    }
    Ok(stored)
}

/// IMAP APPEND (RFC 9051 §6.3.12): one message into one mailbox with the given flags
/// (keywords already validated).
pub async fn append(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    blob: &NewBlob<'_>,
    flags: &Flags,
    internal_date: UnixTime,
) -> PgResult<Stored> {
    let mb = lock_mailbox(tx, mailbox).await?;
    charge_quota(tx, mb.account, blob.size() as i64, 1, true).await?;
    acquire_blob(tx, blob.hash, 1, Some(blob.bytes)).await?;
    file_message(tx, &mb, blob, flags, internal_date).await
}

/// [`append`] and the appending session's `\Recent` claim up to the new UID (RFC 3501
/// §2.3.2, `MailStore::append_claiming_recent`) in the one transaction; returns the mark
/// before the claim.
pub async fn append_claiming_recent(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    blob: &NewBlob<'_>,
    flags: &Flags,
    internal_date: UnixTime,
) -> PgResult<(Stored, Uid)> {
    let stored = append(tx, mailbox, blob, flags, internal_date).await?;
    let before = crate::coord::claim_recent(tx, mailbox, stored.uid).await?;
    Ok((stored, before))
}

/// Sorted, distinct UIDs as column values.
pub fn sorted_uids(uids: &[Uid]) -> Vec<i64> {
    let mut v: Vec<i64> = uids.iter().map(|u| i64::from(*u)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// RFC 9051 §6.4.6 STORE, and with `unchanged_since` only for the messages whose MODSEQ is at
/// most that (RFC 7162 §3.1.3); the others are returned, ascending, untouched. Tested and
/// written under the mailbox lock in one transaction, so no other writer (on any node) can
/// slip in between. Only messages whose flags actually change get the new MODSEQ (one for
/// the whole command, RFC 7162 §3.1) and an event.
pub async fn store_flags_if(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    uids: &[Uid],
    op: FlagOp,
    change: &Flags,
    unchanged_since: Option<ModSeq>,
) -> PgResult<ConditionalStore> {
    let mb = lock_mailbox(tx, mailbox).await?;
    let current = rows(
        &tx.t,
        "SELECT uid, flags, keywords, modseq FROM messages
         WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid",
        &[&mb.id, &sorted_uids(uids)],
    )
    .await?;
    let mut updates: Vec<(Uid, Flags)> = Vec::new();
    let mut modified = Vec::new();
    for r in &current {
        let uid = col_u32(r.get(0));
        if unchanged_since.is_some_and(|n| col_u64(r.get(3)) > n) {
            modified.push(uid);
            continue;
        }
        let flags = flags_from_columns(r.get(1), r.get(2));
        let new = apply(op, &flags, change);
        if !same_flags(&flags, &new) {
            updates.push((uid, new));
        }
    }
    if updates.is_empty() {
        return Ok(ConditionalStore {
            changed: Vec::new(),
            failed: modified,
        });
    }
    let modseq = bump_modseq(tx, mb.id).await?;
    // One UPDATE per distinct resulting flag set: `STORE 1:* +FLAGS (\Seen)` over thousands
    // of messages is a handful of statements.
    let mut groups: BTreeMap<(i16, Vec<String>), Vec<i64>> = BTreeMap::new();
    for (uid, flags) in &updates {
        groups
            .entry((flag_bits(flags.system), flags.keywords.clone()))
            .or_default()
            .push(i64::from(*uid));
    }
    for ((bits, keywords), uids) in &groups {
        exec(
            &tx.t,
            "UPDATE messages SET flags = $3, keywords = $4, modseq = $5
             WHERE mailbox_id = $1 AND uid = ANY($2)",
            &[&mb.id, uids, bits, keywords, &sql_u64(modseq)],
        )
        .await?;
    }
    let mut out = Vec::with_capacity(updates.len());
    for (uid, flags) in updates {
        tx.events.push(ChangeEvent {
            mailbox: mb.id,
            change: Change::FlagsChanged {
                uid,
                flags: flags.clone(),
                modseq,
            },
        });
        out.push((uid, flags, modseq));
    }
    Ok(ConditionalStore {
        changed: out,
        failed: modified,
    })
}

/// Copies the messages `uids` (all when `None`) of the locked mailbox `src` into the locked
/// mailbox `dst`: new UIDs in source-UID order (RFC 4315 §3 COPYUID relies on that order),
/// flags and internal date kept, blobs shared (one more reference each), one MODSEQ, the
/// account charged for the copies (`check_quota`: refusing with `OverQuota` past the limit;
/// false for a MOVE within the account, whose usage the copy and the expunge leave as is).
/// Returns (source UID, new UID) per message.
pub async fn copy_rows(
    tx: &mut Tx<'_>,
    src: &MailboxRow,
    uids: Option<&[Uid]>,
    dst: &MailboxRow,
    check_quota: bool,
) -> PgResult<Vec<(Uid, Uid)>> {
    let sel = match uids {
        Some(u) => {
            rows(
                &tx.t,
                "SELECT uid, blob_hash, size, internal_date, flags, keywords FROM messages
                 WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid",
                &[&src.id, &sorted_uids(u)],
            )
            .await?
        }
        None => {
            rows(
                &tx.t,
                "SELECT uid, blob_hash, size, internal_date, flags, keywords FROM messages
                 WHERE mailbox_id = $1 ORDER BY uid",
                &[&src.id],
            )
            .await?
        }
    };
    if sel.is_empty() {
        return Ok(Vec::new());
    }
    let mut per_blob: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0i64;
    for r in &sel {
        *per_blob.entry(r.get(1)).or_default() += 1;
        total += r.get::<_, i64>(2);
    }
    // Account before blobs (lock order, `prim.rs`).
    if check_quota {
        charge_quota(tx, dst.account, total, sel.len() as i64, true).await?;
    }
    acquire_existing(tx, &per_blob).await?;
    let count =
        u32::try_from(sel.len()).map_err(|_| StoreError::Invalid("too many messages".into()))?;
    let alloc = allocate(tx, dst.id, count).await?;
    let src_uids: Vec<i64> = sel.iter().map(|r| r.get(0)).collect();
    // The i-th source row in UID order gets UID first + i: the same numbering as the events
    // and pairs below.
    exec(
        &tx.t,
        "INSERT INTO messages
           (mailbox_id, uid, blob_hash, size, internal_date, flags, keywords, modseq)
         SELECT $3, $4 + row_number() OVER (ORDER BY uid) - 1, blob_hash, size, internal_date,
                flags, keywords, $5
         FROM messages WHERE mailbox_id = $1 AND uid = ANY($2)",
        &[
            &src.id,
            &src_uids,
            &dst.id,
            &i64::from(alloc.first_uid),
            &sql_u64(alloc.modseq),
        ],
    )
    .await?;
    let mut out = Vec::with_capacity(sel.len());
    for (i, r) in sel.iter().enumerate() {
        let uid = alloc.first_uid + i as u32;
        tx.events.push(ChangeEvent {
            mailbox: dst.id,
            change: Change::NewMessage(MessageSummary {
                uid,
                size: col_u64(r.get(2)),
                internal_date: r.get(3),
                flags: flags_from_columns(r.get(4), r.get(5)),
                modseq: alloc.modseq,
            }),
        });
        out.push((col_u32(r.get(0)), uid));
    }
    Ok(out)
}

/// RFC 9051 §6.4.7 COPY within one account.
pub async fn copy(
    tx: &mut Tx<'_>,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> PgResult<Vec<(Uid, Uid)>> {
    let (src, dst) = lock_two(tx, from, to).await?;
    if src.account != dst.account {
        return Err(StoreError::Invalid("cannot copy between different accounts".into()).into());
    }
    copy_rows(tx, &src, Some(uids), &dst, true).await
}

/// Removes messages for good (RFC 9051 §6.4.3 EXPUNGE, §6.4.9 UID EXPUNGE).
pub async fn expunge(tx: &mut Tx<'_>, mailbox: MailboxId, uids: &[Uid]) -> PgResult<Vec<Uid>> {
    let mb = lock_mailbox(tx, mailbox).await?;
    let mut uids = uids.to_vec();
    uids.sort_unstable();
    uids.dedup();
    expunge_uids(tx, &mb, &uids).await
}

/// Removes the messages among `uids` (all when `None`) that carry `\Deleted` now — the test
/// and the removal in one transaction under the mailbox lock (`MailStore::expunge_deleted`).
pub async fn expunge_deleted(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    uids: Option<&[Uid]>,
) -> PgResult<Vec<Uid>> {
    let mb = lock_mailbox(tx, mailbox).await?;
    let deleted = i16::from(SystemFlags::DELETED.0);
    let found =
        match uids {
            None => rows(
                &tx.t,
                "SELECT uid FROM messages WHERE mailbox_id = $1 AND (flags & $2::smallint) <> 0",
                &[&mb.id, &deleted],
            )
            .await?,
            Some(u) => {
                rows(
                    &tx.t,
                    "SELECT uid FROM messages
                 WHERE mailbox_id = $1 AND uid = ANY($3) AND (flags & $2::smallint) <> 0",
                    &[&mb.id, &deleted, &sorted_uids(u)],
                )
                .await?
            }
        };
    let mut candidates: Vec<Uid> = found.iter().map(|r| col_u32(r.get(0))).collect();
    candidates.sort_unstable();
    expunge_uids(tx, &mb, &candidates).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_sorted_and_distinct() {
        assert_eq!(sorted_uids(&[3, 1, 3]), vec![1, 3]);
    }
}

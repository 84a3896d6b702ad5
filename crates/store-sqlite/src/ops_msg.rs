//! Message writes: delivery, APPEND, flag changes, copy, expunge. Each function runs inside the
//! writer's transaction (one savepoint per request) and queues its change events.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use store::{
    AccountId, Change, ChangeEvent, ConditionalStore, FlagOp, Flags, INBOX, MailboxId,
    MessageSummary, ModSeq, StoreError, StoreResult, Stored, SystemFlags, Uid, UnixTime,
};

use crate::db::{Db, FLAG_MASK, encode_keywords, flags_from_columns, sql_u64};
use crate::prim::{
    MailboxRow, SavedDates, acquire_blob, allocate_uids, bump_modseq, charge_quota, expunge_uids,
    expunge_uids_with, insert_message, mailbox_row,
};
use crate::writer::Tx;
use store::backend::flags::{apply, same_flags};

/// A message body already written to the blob directory.
pub struct NewBlob<'a> {
    pub hash: &'a str,
    pub bytes: &'a [u8],
}

impl NewBlob<'_> {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Files one new message into `mb` (UID, MODSEQ, quota, event). The blob reference is taken by
/// the caller.
fn file_message(
    tx: &mut Tx<'_>,
    mb: &MailboxRow,
    blob: &NewBlob<'_>,
    flags: &Flags,
    internal_date: UnixTime,
) -> StoreResult<Stored> {
    let (uid, uid_validity) = allocate_uids(tx.conn, mb.id, 1)?;
    let modseq = bump_modseq(tx.conn, mb.id)?;
    insert_new(tx, mb, uid, modseq, blob, flags, internal_date)?;
    Ok(Stored {
        mailbox: mb.id,
        uid_validity,
        uid,
    })
}

/// Inserts one new message row with an allocated UID and MODSEQ and queues its event.
fn insert_new(
    tx: &mut Tx<'_>,
    mb: &MailboxRow,
    uid: Uid,
    modseq: ModSeq,
    blob: &NewBlob<'_>,
    flags: &Flags,
    internal_date: UnixTime,
) -> StoreResult<()> {
    insert_message(
        tx.conn,
        mb.id,
        uid,
        blob.hash,
        blob.size(),
        internal_date,
        flags.system.0 & FLAG_MASK,
        &encode_keywords(&flags.keywords),
        modseq,
        SavedDates::now(),
    )?;
    tx.events.push(ChangeEvent {
        mailbox: mb.id,
        change: Change::NewMessage(MessageSummary {
            uid,
            size: blob.size(),
            internal_date,
            flags: flags.clone(),
            modseq,
        }),
    });
    Ok(())
}

/// Delivers one message to the INBOX of each account (already de-duplicated). All or nothing:
/// an unknown account fails with `NotFound`, an account over quota with `OverQuota`, and then no
/// account gets the message (the caller checks quota per recipient beforehand to avoid that).
pub fn deliver(
    tx: &mut Tx<'_>,
    blob: &NewBlob<'_>,
    internal_date: UnixTime,
    accounts: &[AccountId],
) -> StoreResult<Vec<Stored>> {
    let mut inboxes = Vec::with_capacity(accounts.len());
    for &account in accounts {
        let id: MailboxId = tx
            .conn
            .prepare_cached("SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2")
            .db()?
            .query_row(params![account, INBOX], |r| r.get(0))
            .optional()
            .db()?
            .map(|n| MailboxId::new(account, n))
            .ok_or_else(|| StoreError::NotFound(format!("INBOX of account {account}")))?;
        charge_quota(tx, account, blob.size() as i64, 1, true)?;
        inboxes.push(MailboxRow {
            id,
            account,
            name: INBOX.into(),
        });
    }
    acquire_blob(
        tx,
        blob.hash,
        blob.size(),
        inboxes.len() as u64,
        Some(blob.bytes),
    )?;
    let mut stored = Vec::with_capacity(inboxes.len());
    for mb in &inboxes {
        stored.push(file_message(
            tx,
            mb,
            blob,
            &Flags::default(),
            internal_date,
        )?);
    }
    Ok(stored)
}

/// IMAP APPEND (RFC 9051 §6.3.12): one message into one mailbox with the given flags
/// (keywords already validated).
pub fn append(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    blob: &NewBlob<'_>,
    flags: &Flags,
    internal_date: UnixTime,
) -> StoreResult<Stored> {
    let mb = mailbox_row(tx.conn, mailbox)?;
    charge_quota(tx, mb.account, blob.size() as i64, 1, true)?;
    acquire_blob(tx, blob.hash, blob.size(), 1, Some(blob.bytes))?;
    file_message(tx, &mb, blob, flags, internal_date)
}

/// RFC 3502 MULTIAPPEND: every message into one mailbox in this one transaction (keywords
/// already validated). Consecutive UIDs in the given order and one MODSEQ for the batch
/// (RFC 7162 §3.1: messages changed by one command may share it). Any error rolls the whole
/// request back (the writer's savepoint): quota, UIDs and rows are then as before.
pub fn append_many(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    messages: &[(NewBlob<'_>, Flags, UnixTime)],
) -> StoreResult<Vec<Stored>> {
    let mb = mailbox_row(tx.conn, mailbox)?;
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let total = messages
        .iter()
        .fold(0i64, |t, (b, _, _)| t.saturating_add(b.size() as i64));
    charge_quota(tx, mb.account, total, messages.len() as i64, true)?;
    for (blob, _, _) in messages {
        acquire_blob(tx, blob.hash, blob.size(), 1, Some(blob.bytes))?;
    }
    let count = u32::try_from(messages.len())
        .map_err(|_| StoreError::Invalid("too many messages".into()))?;
    let (first, uid_validity) = allocate_uids(tx.conn, mb.id, count)?;
    let modseq = bump_modseq(tx.conn, mb.id)?;
    let mut stored = Vec::with_capacity(messages.len());
    for (i, (blob, flags, date)) in messages.iter().enumerate() {
        let uid = first + i as u32;
        insert_new(tx, &mb, uid, modseq, blob, flags, *date)?;
        stored.push(Stored {
            mailbox: mb.id,
            uid_validity,
            uid,
        });
    }
    Ok(stored)
}

/// Sorted, distinct UIDs.
pub fn sorted_uids(uids: &[Uid]) -> Vec<Uid> {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// RFC 9051 §6.4.6 STORE. Only messages whose flags actually change get the new MODSEQ
/// (RFC 7162 §3.1: one MODSEQ for the whole command) and an event.
pub fn store_flags(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    uids: &[Uid],
    op: FlagOp,
    change: &Flags,
) -> StoreResult<Vec<(Uid, Flags, ModSeq)>> {
    store_flags_if(tx, mailbox, uids, op, change, None).map(|c| c.changed)
}

/// [`store_flags`], and with `unchanged_since` only for the messages whose MODSEQ is at most
/// that (RFC 7162 §3.1.3); the others are returned, ascending, untouched. Tested and written
/// in the same transaction, so no other writer can slip in between.
pub fn store_flags_if(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    uids: &[Uid],
    op: FlagOp,
    change: &Flags,
    unchanged_since: Option<ModSeq>,
) -> StoreResult<ConditionalStore> {
    let mb = mailbox_row(tx.conn, mailbox)?;
    let change = Flags {
        system: SystemFlags(change.system.0 & FLAG_MASK),
        keywords: change.keywords.clone(),
    };
    let mut updates = Vec::new();
    let mut modified = Vec::new();
    {
        let mut get = tx
            .conn
            .prepare_cached(
                "SELECT flags, keywords, modseq FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
            )
            .db()?;
        for uid in sorted_uids(uids) {
            let row: Option<(i64, String, i64)> = get
                .query_row(params![mb.id, uid], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
                .db()?;
            if let Some((bits, kw, modseq)) = row {
                if unchanged_since.is_some_and(|n| u64::try_from(modseq).unwrap_or(0) > n) {
                    modified.push(uid);
                    continue;
                }
                let current = flags_from_columns(bits, &kw);
                let new = apply(op, &current, &change);
                if !same_flags(&current, &new) {
                    updates.push((uid, new));
                }
            }
        }
    }
    if updates.is_empty() {
        return Ok(ConditionalStore {
            changed: Vec::new(),
            failed: modified,
        });
    }
    let modseq = bump_modseq(tx.conn, mb.id)?;
    let mut set = tx
        .conn
        .prepare_cached(
            "UPDATE messages SET flags = ?3, keywords = ?4, modseq = ?5
             WHERE mailbox_id = ?1 AND uid = ?2",
        )
        .db()?;
    let mut out = Vec::with_capacity(updates.len());
    for (uid, flags) in updates {
        set.execute(params![
            mb.id,
            uid,
            flags.system.0,
            encode_keywords(&flags.keywords),
            sql_u64(modseq)
        ])
        .db()?;
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

/// RFC 9051 §6.4.7 COPY: flags and internal date are preserved, blobs shared, new UIDs in the
/// destination in source-UID order (RFC 4315 §3 COPYUID relies on that order).
pub fn copy(
    tx: &mut Tx<'_>,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> StoreResult<Vec<(Uid, Uid)>> {
    let (src, dst) = same_account(tx, from, to)?;
    copy_rows(tx, &src, &dst, uids, true)
}

/// RFC 6851 §3.3 MOVE in one transaction: the copy (without charging quota: the account's
/// usage is unchanged, so an account over quota can still move to Trash), then the expunge
/// of the copied UIDs from the source (expunge log, MODSEQ, `Expunged` event after the
/// destination's `NewMessage` events — COPYUID before EXPUNGE, §4.3).
pub fn move_messages(
    tx: &mut Tx<'_>,
    from: MailboxId,
    uids: &[Uid],
    to: MailboxId,
) -> StoreResult<Vec<(Uid, Uid)>> {
    let (src, dst) = same_account(tx, from, to)?;
    let pairs = copy_rows(tx, &src, &dst, uids, false)?;
    let moved: Vec<Uid> = pairs.iter().map(|p| p.0).collect();
    let removed = expunge_uids_with(tx, &src, &moved, false)?;
    // The rows were read in this transaction: every copied message is removed.
    if removed.len() != moved.len() {
        return Err(StoreError::Temporary(
            "MOVE: source changed meanwhile".into(),
        ));
    }
    Ok(pairs)
}

/// The rows of `from` and `to`, which must belong to one account.
fn same_account(
    tx: &Tx<'_>,
    from: MailboxId,
    to: MailboxId,
) -> StoreResult<(MailboxRow, MailboxRow)> {
    let src = mailbox_row(tx.conn, from)?;
    let dst = mailbox_row(tx.conn, to)?;
    if src.account != dst.account {
        return Err(StoreError::Invalid(
            "cannot copy between different accounts".into(),
        ));
    }
    Ok((src, dst))
}

/// Copies the messages `uids` of `src` into `dst` (see [`copy`]); `charge`: whether the
/// destination's account pays quota for them.
fn copy_rows(
    tx: &mut Tx<'_>,
    src: &MailboxRow,
    dst: &MailboxRow,
    uids: &[Uid],
    charge: bool,
) -> StoreResult<Vec<(Uid, Uid)>> {
    struct Row {
        uid: Uid,
        hash: String,
        size: i64,
        date: i64,
        flags: i64,
        keywords: String,
    }
    let mut rows = Vec::new();
    {
        let mut get = tx
            .conn
            .prepare_cached(
                "SELECT blob_hash, size, internal_date, flags, keywords FROM messages
                 WHERE mailbox_id = ?1 AND uid = ?2",
            )
            .db()?;
        for uid in sorted_uids(uids) {
            let row = get
                .query_row(params![src.id, uid], |r| {
                    Ok(Row {
                        uid,
                        hash: r.get(0)?,
                        size: r.get(1)?,
                        date: r.get(2)?,
                        flags: r.get(3)?,
                        keywords: r.get(4)?,
                    })
                })
                .optional()
                .db()?;
            rows.extend(row);
        }
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    if charge {
        let total: i64 = rows.iter().map(|r| r.size).sum();
        charge_quota(tx, dst.account, total, rows.len() as i64, true)?;
    }
    let mut per_blob: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in &rows {
        per_blob.entry(&r.hash).or_insert((r.size as u64, 0)).1 += 1;
    }
    for (hash, (size, n)) in per_blob {
        acquire_blob(tx, hash, size, n, None)?;
    }
    let count =
        u32::try_from(rows.len()).map_err(|_| StoreError::Invalid("too many messages".into()))?;
    let (first, _) = allocate_uids(tx.conn, dst.id, count)?;
    let modseq = bump_modseq(tx.conn, dst.id)?;
    let mut pairs = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let uid = first + i as u32;
        insert_message(
            tx.conn,
            dst.id,
            uid,
            &r.hash,
            r.size as u64,
            r.date,
            (r.flags as u8) & FLAG_MASK,
            &r.keywords,
            modseq,
            SavedDates::now(),
        )?;
        tx.events.push(ChangeEvent {
            mailbox: dst.id,
            change: Change::NewMessage(MessageSummary {
                uid,
                size: r.size as u64,
                internal_date: r.date,
                flags: flags_from_columns(r.flags, &r.keywords),
                modseq,
            }),
        });
        pairs.push((r.uid, uid));
    }
    Ok(pairs)
}

/// Removes messages for good (RFC 9051 §6.4.3 EXPUNGE, §6.4.9 UID EXPUNGE).
pub fn expunge(tx: &mut Tx<'_>, mailbox: MailboxId, uids: &[Uid]) -> StoreResult<Vec<Uid>> {
    let mb = mailbox_row(tx.conn, mailbox)?;
    expunge_uids(tx, &mb, &sorted_uids(uids))
}

/// Removes the messages among `uids` (all when `None`) that carry `\\Deleted` now — the test
/// and the removal in one transaction (`MailStore::expunge_deleted`).
pub fn expunge_deleted(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    uids: Option<&[Uid]>,
) -> StoreResult<Vec<Uid>> {
    let mb = mailbox_row(tx.conn, mailbox)?;
    let deleted = SystemFlags::DELETED.0;
    let candidates: Vec<Uid> = match uids {
        None => {
            // The covering index `messages_summary` holds the flags: no table rows are read.
            let mut stmt = tx
                .conn
                .prepare_cached(
                    "SELECT uid FROM messages WHERE mailbox_id = ?1 AND (flags & ?2) <> 0
                     ORDER BY uid",
                )
                .db()?;
            let rows = stmt
                .query_map(params![mailbox, deleted], |r| r.get(0))
                .db()?;
            rows.collect::<Result<_, _>>().db()?
        }
        Some(uids) => {
            let mut stmt = tx
                .conn
                .prepare_cached("SELECT flags FROM messages WHERE mailbox_id = ?1 AND uid = ?2")
                .db()?;
            let mut out = Vec::new();
            for uid in sorted_uids(uids) {
                let flags: Option<i64> = stmt
                    .query_row(params![mailbox, uid], |r| r.get(0))
                    .optional()
                    .db()?;
                if flags.is_some_and(|f| f & i64::from(deleted) != 0) {
                    out.push(uid);
                }
            }
            out
        }
    };
    expunge_uids(tx, &mb, &candidates)
}

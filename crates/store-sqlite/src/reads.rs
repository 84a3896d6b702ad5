//! Read queries for mailboxes, messages and quota, run on pooled reader connections.

use rusqlite::{Connection, OptionalExtension, Row, params};
use store::{
    AccountId, BlobId, MailboxId, MailboxInfo, MessageMeta, Quota, SpecialUse, StoreError,
    StoreResult, Uid,
};

use crate::db::{Db, flags_from_columns};
use crate::names;

/// Mailbox columns plus the counts IMAP STATUS needs (RFC 9051 §6.3.11, RFC 8438 SIZE).
const MAILBOX_SELECT: &str = "SELECT m.id, m.account_id, m.name, m.uid_validity, m.uid_next,
    m.highest_modseq, m.special_use, m.subscribed,
    (SELECT count(*) FROM messages WHERE mailbox_id = m.id),
    (SELECT count(*) FROM messages WHERE mailbox_id = m.id AND (flags & 1) = 0),
    (SELECT coalesce(sum(size), 0) FROM messages WHERE mailbox_id = m.id)
  FROM mailboxes m";

fn mailbox_info(r: &Row<'_>) -> rusqlite::Result<MailboxInfo> {
    let special: Option<String> = r.get(6)?;
    let uid_next: i64 = r.get(4)?;
    let modseq: i64 = r.get(5)?;
    let messages: i64 = r.get(8)?;
    let unseen: i64 = r.get(9)?;
    let size: i64 = r.get(10)?;
    Ok(MailboxInfo {
        id: r.get(0)?,
        account: r.get(1)?,
        name: r.get(2)?,
        uid_validity: r.get(3)?,
        // After the last possible UID was used, uid_next is 2^32; show the maximum instead.
        uid_next: uid_next.clamp(1, i64::from(u32::MAX)) as u32,
        highest_modseq: modseq.max(0) as u64,
        special_use: special.as_deref().and_then(SpecialUse::parse),
        subscribed: r.get(7)?,
        messages: messages.clamp(0, i64::from(u32::MAX)) as u32,
        unseen: unseen.clamp(0, i64::from(u32::MAX)) as u32,
        size: size.max(0) as u64,
    })
}

/// Runs `f` inside a read transaction so its statements see one snapshot.
fn snapshot<T>(conn: &Connection, f: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
    conn.execute_batch("BEGIN").db()?;
    let out = f();
    let _ = conn.execute_batch("COMMIT");
    out
}

pub fn list_mailboxes(conn: &Connection, account: AccountId) -> StoreResult<Vec<MailboxInfo>> {
    snapshot(conn, || {
        let mut stmt = conn
            .prepare_cached(&format!(
                "{MAILBOX_SELECT} WHERE m.account_id = ?1 ORDER BY m.name <> 'INBOX', m.name"
            ))
            .db()?;
        let rows = stmt.query_map([account], mailbox_info).db()?;
        rows.collect::<Result<_, _>>().db()
    })
}

pub fn mailbox(conn: &Connection, id: MailboxId) -> StoreResult<MailboxInfo> {
    conn.prepare_cached(&format!("{MAILBOX_SELECT} WHERE m.id = ?1"))
        .db()?
        .query_row([id], mailbox_info)
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))
}

/// Looks a mailbox up by name; `INBOX` (as a first component) matches case-insensitively. A
/// name that could never be created is simply not found.
pub fn find_mailbox(
    conn: &Connection,
    account: AccountId,
    name: &str,
) -> StoreResult<Option<MailboxInfo>> {
    let Ok(name) = names::canonical(name) else {
        return Ok(None);
    };
    conn.prepare_cached(&format!(
        "{MAILBOX_SELECT} WHERE m.account_id = ?1 AND m.name = ?2"
    ))
    .db()?
    .query_row(params![account, name], mailbox_info)
    .optional()
    .db()
}

const MESSAGE_SELECT: &str =
    "SELECT uid, blob_hash, size, internal_date, flags, keywords, modseq FROM messages";

fn message_meta(r: &Row<'_>) -> rusqlite::Result<MessageMeta> {
    let size: i64 = r.get(2)?;
    let flags: i64 = r.get(4)?;
    let keywords: String = r.get(5)?;
    let modseq: i64 = r.get(6)?;
    Ok(MessageMeta {
        uid: r.get(0)?,
        blob: BlobId(r.get(1)?),
        size: size.max(0) as u64,
        internal_date: r.get(3)?,
        flags: flags_from_columns(flags, &keywords),
        modseq: modseq.max(0) as u64,
    })
}

fn require_mailbox(conn: &Connection, id: MailboxId) -> StoreResult<()> {
    conn.prepare_cached("SELECT 1 FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([id], |_| Ok(()))
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))
}

pub fn list_messages(conn: &Connection, mailbox: MailboxId) -> StoreResult<Vec<MessageMeta>> {
    snapshot(conn, || {
        require_mailbox(conn, mailbox)?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "{MESSAGE_SELECT} WHERE mailbox_id = ?1 ORDER BY uid"
            ))
            .db()?;
        let rows = stmt.query_map([mailbox], message_meta).db()?;
        rows.collect::<Result<_, _>>().db()
    })
}

pub fn get_messages(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &[Uid],
) -> StoreResult<Vec<MessageMeta>> {
    let uids = crate::ops_msg::sorted_uids(uids);
    snapshot(conn, || {
        require_mailbox(conn, mailbox)?;
        let mut stmt = conn
            .prepare_cached(&format!(
                "{MESSAGE_SELECT} WHERE mailbox_id = ?1 AND uid = ?2"
            ))
            .db()?;
        let mut out = Vec::with_capacity(uids.len());
        for uid in uids {
            if let Some(m) = stmt
                .query_row(params![mailbox, uid], message_meta)
                .optional()
                .db()?
            {
                out.push(m);
            }
        }
        Ok(out)
    })
}

pub fn quota(conn: &Connection, account: AccountId) -> StoreResult<Quota> {
    let (used, limit): (i64, Option<i64>) = conn
        .prepare_cached("SELECT quota_used, quota_limit FROM accounts WHERE id = ?1")
        .db()?
        .query_row([account], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
    Ok(Quota {
        used: used.max(0) as u64,
        limit: limit.map(|l| l.max(0) as u64),
    })
}

//! Read queries for mailboxes, messages and quota, run on pooled reader connections.

use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, Row, params};
use store::{
    AccountId, BlobId, Flags, MailboxId, MailboxInfo, MessageBody, MessageFacts, MessageMeta,
    MessageSummary, OpenedMailbox, Quota, SpecialUse, StoreError, StoreResult, Uid,
};

use crate::db::{Db, decode_keywords, exec_cached, flags_from_columns};
use store::backend::facts_cache::FactsCache;
use store::backend::names;

/// Mailbox columns; the counts IMAP STATUS needs are added by [`with_counts`].
const MAILBOX_SELECT: &str = "SELECT m.id, m.account_id, m.name, m.uid_validity, m.uid_next,
    m.highest_modseq, m.special_use,
    EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = m.account_id AND s.name = m.name)
  FROM mailboxes m";

/// Message count, unseen count and total size (RFC 9051 §6.3.11, RFC 8438 SIZE) in one pass
/// over the covering index `messages_summary` (three subqueries scanned it three times).
const COUNTS: &str = "SELECT count(*), coalesce(sum((flags & 1) = 0), 0), coalesce(sum(size), 0)
  FROM messages WHERE mailbox_id = ?1";

fn mailbox_info(r: &Row<'_>) -> rusqlite::Result<MailboxInfo> {
    let special: Option<String> = r.get(6)?;
    let uid_next: i64 = r.get(4)?;
    let modseq: i64 = r.get(5)?;
    Ok(MailboxInfo {
        id: MailboxId::new(r.get(1)?, r.get(0)?),
        name: r.get(2)?,
        uid_validity: r.get(3)?,
        // After the last possible UID was used, uid_next is 2^32; show the maximum instead.
        uid_next: uid_next.clamp(1, i64::from(u32::MAX)) as u32,
        highest_modseq: modseq.max(0) as u64,
        special_use: special.as_deref().and_then(SpecialUse::parse),
        subscribed: r.get(7)?,
        messages: 0,
        unseen: 0,
        size: 0,
    })
}

/// Fills in `messages`, `unseen` and `size`; call inside the same snapshot as the row read.
fn with_counts(conn: &Connection, mut info: MailboxInfo) -> StoreResult<MailboxInfo> {
    let (messages, unseen, size): (i64, i64, i64) = conn
        .prepare_cached(COUNTS)
        .db()?
        .query_row([info.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .db()?;
    info.messages = messages.clamp(0, i64::from(u32::MAX)) as u32;
    info.unseen = unseen.clamp(0, i64::from(u32::MAX)) as u32;
    info.size = size.max(0) as u64;
    Ok(info)
}

/// Runs `f` inside a read transaction so its statements see one snapshot.
fn snapshot<T>(conn: &Connection, f: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
    exec_cached(conn, "BEGIN").db()?;
    let out = f();
    let _ = exec_cached(conn, "COMMIT");
    out
}

/// The account's mailboxes, INBOX first; with `counts`, each with its message counts (a scan
/// of every message), else those stay 0.
pub fn list_mailboxes(
    conn: &Connection,
    account: AccountId,
    counts: bool,
) -> StoreResult<Vec<MailboxInfo>> {
    snapshot(conn, || {
        let mut stmt = conn
            .prepare_cached(&format!(
                "{MAILBOX_SELECT} WHERE m.account_id = ?1 ORDER BY m.name <> 'INBOX', m.name"
            ))
            .db()?;
        let rows = stmt.query_map([account], mailbox_info).db()?;
        let infos: Vec<MailboxInfo> = rows.collect::<Result<_, _>>().db()?;
        if !counts {
            return Ok(infos);
        }
        infos.into_iter().map(|i| with_counts(conn, i)).collect()
    })
}

/// The account's subscribed names, in byte order.
pub fn list_subscriptions(conn: &Connection, account: AccountId) -> StoreResult<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM subscriptions WHERE account_id = ?1 ORDER BY name")
        .db()?;
    let rows = stmt.query_map([account], |r| r.get(0)).db()?;
    rows.collect::<Result<_, _>>().db()
}

/// The account a mailbox belongs to, `None` when there is no such mailbox.
pub fn mailbox_owner(conn: &Connection, number: i64) -> StoreResult<Option<AccountId>> {
    conn.prepare_cached("SELECT account_id FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([number], |r| r.get(0))
        .optional()
        .db()
}

pub fn mailbox(conn: &Connection, id: MailboxId) -> StoreResult<MailboxInfo> {
    snapshot(conn, || {
        let info = conn
            .prepare_cached(&format!("{MAILBOX_SELECT} WHERE m.id = ?1"))
            .db()?
            .query_row([id], mailbox_info)
            .optional()
            .db()?
            .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?;
        with_counts(conn, info)
    })
}

/// Looks a mailbox up by name; `INBOX` (as a first component) matches case-insensitively. A
/// name that could never be created is simply not found. Without `counts`, `messages`,
/// `unseen` and `size` stay 0 (counting scans every message of the mailbox).
pub fn find_mailbox(
    conn: &Connection,
    account: AccountId,
    name: &str,
    counts: bool,
) -> StoreResult<Option<MailboxInfo>> {
    let Ok(name) = names::canonical(name) else {
        return Ok(None);
    };
    snapshot(conn, || {
        let info = mailbox_by_name(conn, account, &name)?;
        match info {
            Some(i) if counts => with_counts(conn, i).map(Some),
            other => Ok(other),
        }
    })
}

/// The mailbox row `name` (canonical) of `account`, without counts.
fn mailbox_by_name(
    conn: &Connection,
    account: AccountId,
    name: &str,
) -> StoreResult<Option<MailboxInfo>> {
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

/// Every message of a mailbox without its blob hash, in UID order: what an IMAP session keeps
/// in its view. Read from the covering index `messages_summary`, never from the table rows.
pub fn list_summaries(conn: &Connection, mailbox: MailboxId) -> StoreResult<Vec<MessageSummary>> {
    snapshot(conn, || {
        require_mailbox(conn, mailbox)?;
        summaries(conn, mailbox)
    })
}

/// The mailbox `name` (without counts) and the UID and flags of its messages, read in one
/// snapshot: IMAP SELECT's UIDNEXT, HIGHESTMODSEQ and view agree. For 100,000 messages this
/// is most of SELECT's time: two columns of the covering index for every message, then the
/// keywords of only those that have any (partial index `messages_keywords`).
pub fn open_mailbox(
    conn: &Connection,
    account: AccountId,
    name: &str,
) -> StoreResult<Option<OpenedMailbox>> {
    let Ok(name) = names::canonical(name) else {
        return Ok(None);
    };
    snapshot(conn, || {
        let Some(info) = mailbox_by_name(conn, account, &name)? else {
            return Ok(None);
        };
        let mut stmt = conn
            .prepare_cached("SELECT uid, flags FROM messages WHERE mailbox_id = ?1 ORDER BY uid")
            .db()?;
        let rows = stmt
            .query_map([info.id], |r| {
                let flags: i64 = r.get(1)?;
                Ok((r.get::<_, Uid>(0)?, flags_from_columns(flags, "")))
            })
            .db()?;
        let mut messages: Vec<(Uid, Flags)> = rows.collect::<Result<_, _>>().db()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT uid, keywords FROM messages
                 WHERE mailbox_id = ?1 AND keywords <> '' ORDER BY uid",
            )
            .db()?;
        let mut rows = stmt.query([info.id]).db()?;
        while let Some(r) = rows.next().db()? {
            let uid: Uid = r.get(0).db()?;
            if let Ok(i) = messages.binary_search_by_key(&uid, |(u, _)| *u) {
                let keywords = r.get_ref(1).db()?.as_str().unwrap_or_default();
                messages[i].1.keywords = decode_keywords(keywords);
            }
        }
        Ok(Some(OpenedMailbox { info, messages }))
    })
}

/// The rows of [`list_summaries`]; call inside a snapshot.
fn summaries(conn: &Connection, mailbox: MailboxId) -> StoreResult<Vec<MessageSummary>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT uid, size, internal_date, flags, keywords, modseq FROM messages
             WHERE mailbox_id = ?1 ORDER BY uid",
        )
        .db()?;
    let rows = stmt
        .query_map([mailbox], |r| {
            let size: i64 = r.get(1)?;
            let flags: i64 = r.get(3)?;
            let keywords: &str = r.get_ref(4)?.as_str()?;
            let modseq: i64 = r.get(5)?;
            Ok(MessageSummary {
                uid: r.get(0)?,
                size: size.max(0) as u64,
                internal_date: r.get(2)?,
                flags: flags_from_columns(flags, keywords),
                modseq: modseq.max(0) as u64,
            })
        })
        .db()?;
    rows.collect::<Result<_, _>>().db()
}

/// The UIDs expunged from `mailbox` with a MODSEQ above `modseq`, ascending (index
/// `expunged_modseq`) — RFC 7162 §3.2.5 VANISHED (EARLIER).
pub fn expunged_since(
    conn: &Connection,
    mailbox: MailboxId,
    modseq: store::ModSeq,
) -> StoreResult<Vec<Uid>> {
    let since = i64::try_from(modseq).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
        )
        .db()?;
    let rows = stmt.query_map(params![mailbox, since], |r| r.get(0)).db()?;
    rows.collect::<Result<_, _>>().db()
}

/// [`store::MailStore::count_messages`]: a count over the primary key (or the covering index
/// with the flags), no rows read.
pub fn count_messages(
    conn: &Connection,
    mailbox: MailboxId,
    above: Uid,
    flag: Option<store::SystemFlags>,
) -> StoreResult<u32> {
    let n: i64 = match flag {
        None => conn
            .prepare_cached("SELECT count(*) FROM messages WHERE mailbox_id = ?1 AND uid > ?2")
            .db()?
            .query_row(params![mailbox, above], |r| r.get(0)),
        Some(f) => conn
            .prepare_cached(
                "SELECT count(*) FROM messages
                 WHERE mailbox_id = ?1 AND uid > ?2 AND (flags & ?3) <> 0",
            )
            .db()?
            .query_row(params![mailbox, above, f.0], |r| r.get(0)),
    }
    .db()?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The blob hash of message `uid`, if it is in the mailbox.
pub fn blob_of(conn: &Connection, mailbox: MailboxId, uid: Uid) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT blob_hash FROM messages WHERE mailbox_id = ?1 AND uid = ?2")
        .db()?
        .query_row(params![mailbox, uid], |r| r.get(0))
        .optional()
        .db()
}

/// Whether `sorted` (ascending, distinct, non-empty) is dense enough that one range scan over
/// `first..=last` beats a point lookup per UID (e.g. `FETCH 1:*`).
fn use_range_scan(sorted: &[Uid]) -> bool {
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return false;
    };
    let span = u64::from(last - first) + 1;
    sorted.len() >= 32 && span <= sorted.len() as u64 * 8
}

/// [`store::MailStore::message_bodies`]: blob and size of each message, and the facts of
/// `version` — from `cache` when it has them, else from the `message_facts` table (and then
/// kept in `cache`).
pub fn message_bodies(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &[Uid],
    version: u32,
    cache: &FactsCache,
) -> StoreResult<Vec<MessageBody>> {
    let mut bodies = get_rows(
        conn,
        mailbox,
        uids,
        "SELECT uid, blob_hash, size FROM messages",
        |r| {
            let size: i64 = r.get(2)?;
            Ok(MessageBody {
                uid: r.get(0)?,
                blob: BlobId(r.get(1)?),
                size: size.max(0) as u64,
                facts: None,
            })
        },
    )?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT version, header, envelope, envelope_utf8, body, body_utf8, bodystructure,
                    bodystructure_utf8
             FROM message_facts WHERE blob_hash = ?1",
        )
        .db()?;
    for b in &mut bodies {
        if let Some(f) = cache.get(&b.blob.0, version) {
            b.facts = Some(f);
            continue;
        }
        let row = stmt
            .query_row([&b.blob.0], |r| {
                Ok(MessageFacts {
                    version: r.get(0)?,
                    header: r.get(1)?,
                    envelope: r.get(2)?,
                    envelope_utf8: r.get(3)?,
                    body: r.get(4)?,
                    body_utf8: r.get(5)?,
                    bodystructure: r.get(6)?,
                    bodystructure_utf8: r.get(7)?,
                })
            })
            .optional()
            .db()?;
        if let Some(f) = row.filter(|f| f.version == version) {
            let f = Arc::new(f);
            cache.put(&b.blob.0, Arc::clone(&f));
            b.facts = Some(f);
        }
    }
    Ok(bodies)
}

pub fn get_messages(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &[Uid],
) -> StoreResult<Vec<MessageMeta>> {
    get_rows(conn, mailbox, uids, MESSAGE_SELECT, message_meta)
}

/// The rows of `select` (whose first column is `uid`) for the messages `uids`, in UID order;
/// missing UIDs are skipped.
fn get_rows<T>(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &[Uid],
    select: &str,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let uids = crate::ops_msg::sorted_uids(uids);
    snapshot(conn, || {
        require_mailbox(conn, mailbox)?;
        let mut out = Vec::with_capacity(uids.len());
        if use_range_scan(&uids) {
            let (first, last) = (uids.first().copied(), uids.last().copied());
            let mut stmt = conn
                .prepare_cached(&format!(
                    "{select} WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid"
                ))
                .db()?;
            let mut rows = stmt.query(params![mailbox, first, last]).db()?;
            // Both sides ascend: walk the wanted UIDs alongside the rows.
            let mut want = uids.iter().peekable();
            while let Some(row) = rows.next().db()? {
                let uid: Uid = row.get(0).db()?;
                while want.next_if(|w| **w < uid).is_some() {}
                if want.next_if(|w| **w == uid).is_some() {
                    out.push(map(row).db()?);
                }
                if want.peek().is_none() {
                    break;
                }
            }
            return Ok(out);
        }
        let mut stmt = conn
            .prepare_cached(&format!("{select} WHERE mailbox_id = ?1 AND uid = ?2"))
            .db()?;
        for uid in uids {
            if let Some(m) = stmt
                .query_row(params![mailbox, uid], &map)
                .optional()
                .db()?
            {
                out.push(m);
            }
        }
        Ok(out)
    })
}

/// The account's usage and its limits resolved with `defaults` (RFC 9208 GETQUOTA).
pub fn quota(
    conn: &Connection,
    defaults: &store::QuotaDefaults,
    account: AccountId,
) -> StoreResult<Quota> {
    let row = conn
        .prepare_cached(
            "SELECT a.quota_used, a.messages_used, a.quota_limit, a.message_limit, d.name,
                    a.storage_warned, a.messages_warned
             FROM accounts a JOIN domains d ON d.id = a.domain_id WHERE a.id = ?1",
        )
        .db()?
        .query_row([account], crate::prim::quota_row)
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
    let limits = defaults.resolve(&row.domain, row.overrides);
    Ok(Quota {
        used: row.used,
        limit: limits.storage,
        messages: row.messages,
        message_limit: limits.messages,
    })
}

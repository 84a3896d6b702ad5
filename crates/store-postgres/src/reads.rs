//! Read queries for mailboxes, messages and quota. A read that needs more than one statement
//! to agree runs them in one REPEATABLE READ transaction (one snapshot), see `PgStore::snapshot`;
//! most are one statement, which is a snapshot by itself.

use std::sync::Arc;

use deadpool_postgres::GenericClient;
use store::{
    AccountId, BlobId, Flags, MailboxId, MailboxInfo, MessageBody, MessageFacts, MessageMeta,
    MessageSummary, OpenedMailbox, Quota, SpecialUse, StoreError, Uid,
};
use tokio_postgres::Row;

use crate::db::{col_u32, col_u64, flags_from_columns, opt, rows, sql_u64};
use crate::error::PgResult;
use crate::ops_msg::sorted_uids;
use store::backend::facts_cache::FactsCache;
use store::backend::names;

/// Mailbox columns with their counts (IMAP STATUS MESSAGES, UNSEEN, SIZE — RFC 9051 §6.3.11,
/// RFC 8438), counted in one pass over the mailbox's messages.
const MAILBOX_COUNTED: &str = "SELECT m.id, m.account_id, m.name, m.uid_validity, m.uid_next,
    m.highest_modseq, m.special_use,
    EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = m.account_id AND s.name = m.name),
    c.n, c.unseen, c.size
  FROM mailboxes m
  CROSS JOIN LATERAL (
    SELECT count(*) AS n, count(*) FILTER (WHERE (x.flags & 1) = 0) AS unseen,
           coalesce(sum(x.size), 0)::bigint AS size
    FROM messages x WHERE x.mailbox_id = m.id) c";

/// Mailbox columns without counts (what IMAP LIST, SELECT and APPEND need).
const MAILBOX_PLAIN: &str = "SELECT m.id, m.account_id, m.name, m.uid_validity, m.uid_next,
    m.highest_modseq, m.special_use,
    EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = m.account_id AND s.name = m.name),
    0::bigint, 0::bigint, 0::bigint
  FROM mailboxes m";

fn mailbox_info(r: &Row) -> MailboxInfo {
    let special: Option<&str> = r.get(6);
    MailboxInfo {
        id: MailboxId::new(r.get(1), r.get(0)),
        name: r.get(2),
        uid_validity: col_u32(r.get(3)),
        // After the last possible UID was used, uid_next is 2^32; show the maximum instead.
        uid_next: col_u32(r.get::<_, i64>(4).max(1)),
        highest_modseq: col_u64(r.get(5)),
        special_use: special.and_then(SpecialUse::parse),
        subscribed: r.get(7),
        messages: col_u32(r.get(8)),
        unseen: col_u32(r.get(9)),
        size: col_u64(r.get(10)),
    }
}

fn select(counts: bool) -> &'static str {
    if counts {
        MAILBOX_COUNTED
    } else {
        MAILBOX_PLAIN
    }
}

/// The account's mailboxes, INBOX first, then by name (bytes); with `counts`, each with its
/// message counts, else those stay 0.
pub async fn list_mailboxes<C: GenericClient>(
    c: &C,
    account: AccountId,
    counts: bool,
) -> PgResult<Vec<MailboxInfo>> {
    let sql = format!(
        "{} WHERE m.account_id = $1 ORDER BY m.name <> 'INBOX', m.name",
        select(counts)
    );
    Ok(rows(c, &sql, &[&account])
        .await?
        .iter()
        .map(mailbox_info)
        .collect())
}

/// The account's subscribed names, in byte order.
pub async fn list_subscriptions<C: GenericClient>(
    c: &C,
    account: AccountId,
) -> PgResult<Vec<String>> {
    let rs = rows(
        c,
        "SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name",
        &[&account],
    )
    .await?;
    Ok(rs.iter().map(|r| r.get(0)).collect())
}

/// The account a mailbox belongs to, `None` when there is no such mailbox.
pub async fn mailbox_owner<C: GenericClient>(c: &C, number: i64) -> PgResult<Option<AccountId>> {
    Ok(opt(
        c,
        "SELECT account_id FROM mailboxes WHERE id = $1",
        &[&number],
    )
    .await?
    .map(|r| r.get(0)))
}

pub async fn mailbox<C: GenericClient>(c: &C, id: MailboxId) -> PgResult<MailboxInfo> {
    let sql = format!("{MAILBOX_COUNTED} WHERE m.id = $1");
    Ok(opt(c, &sql, &[&id])
        .await?
        .as_ref()
        .map(mailbox_info)
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))?)
}

/// Looks a mailbox up by name; `INBOX` (as a first component) matches case-insensitively. A
/// name that could never be created is simply not found.
pub async fn find_mailbox<C: GenericClient>(
    c: &C,
    account: AccountId,
    name: &str,
    counts: bool,
) -> PgResult<Option<MailboxInfo>> {
    let Ok(name) = names::canonical(name) else {
        return Ok(None);
    };
    let sql = format!("{} WHERE m.account_id = $1 AND m.name = $2", select(counts));
    Ok(opt(c, &sql, &[&account, &name])
        .await?
        .as_ref()
        .map(mailbox_info))
}

const MESSAGE_SELECT: &str =
    "SELECT uid, blob_hash, size, internal_date, flags, keywords, modseq FROM messages";

fn message_meta(r: &Row) -> MessageMeta {
    MessageMeta {
        uid: col_u32(r.get(0)),
        blob: BlobId(r.get(1)),
        size: col_u64(r.get(2)),
        internal_date: r.get(3),
        flags: flags_from_columns(r.get(4), r.get(5)),
        modseq: col_u64(r.get(6)),
    }
}

async fn require_mailbox<C: GenericClient>(c: &C, id: MailboxId) -> PgResult<()> {
    opt(c, "SELECT 1 FROM mailboxes WHERE id = $1", &[&id])
        .await?
        .map(|_| ())
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")).into())
}

/// An empty result of a mailbox's messages: `NotFound` if the mailbox does not exist. Checked
/// after the rows (one statement in the common case); as ids are never reused, a mailbox that
/// exists now existed, perhaps empty, when the rows were read.
async fn empty_or_missing<C: GenericClient, T>(c: &C, id: MailboxId) -> PgResult<Vec<T>> {
    require_mailbox(c, id).await?;
    Ok(Vec::new())
}

pub async fn list_messages<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
) -> PgResult<Vec<MessageMeta>> {
    let sql = format!("{MESSAGE_SELECT} WHERE mailbox_id = $1 ORDER BY uid");
    let rs = rows(c, &sql, &[&mailbox]).await?;
    if rs.is_empty() {
        return empty_or_missing(c, mailbox).await;
    }
    Ok(rs.iter().map(message_meta).collect())
}

/// Every message of a mailbox without its blob hash, in UID order: what an IMAP session keeps
/// in its view (read from the covering index `messages_summary`).
pub async fn list_summaries<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
) -> PgResult<Vec<MessageSummary>> {
    let rs = rows(
        c,
        "SELECT uid, size, internal_date, flags, keywords, modseq FROM messages
         WHERE mailbox_id = $1 ORDER BY uid",
        &[&mailbox],
    )
    .await?;
    if rs.is_empty() {
        return empty_or_missing(c, mailbox).await;
    }
    Ok(rs
        .iter()
        .map(|r| MessageSummary {
            uid: col_u32(r.get(0)),
            size: col_u64(r.get(1)),
            internal_date: r.get(2),
            flags: flags_from_columns(r.get(3), r.get(4)),
            modseq: col_u64(r.get(5)),
        })
        .collect())
}

/// The mailbox `name` (without counts) and the UID and flags of its messages. Call inside a
/// snapshot: IMAP SELECT's UIDNEXT, HIGHESTMODSEQ and view agree.
pub async fn open_mailbox<C: GenericClient>(
    c: &C,
    account: AccountId,
    name: &str,
) -> PgResult<Option<OpenedMailbox>> {
    let Some(info) = find_mailbox(c, account, name, false).await? else {
        return Ok(None);
    };
    let rs = rows(
        c,
        "SELECT uid, flags, keywords FROM messages WHERE mailbox_id = $1 ORDER BY uid",
        &[&info.id],
    )
    .await?;
    let messages: Vec<(Uid, Flags)> = rs
        .iter()
        .map(|r| (col_u32(r.get(0)), flags_from_columns(r.get(1), r.get(2))))
        .collect();
    Ok(Some(OpenedMailbox { info, messages }))
}

/// The UIDs expunged from `mailbox` with a MODSEQ above `modseq`, ascending — RFC 7162
/// §3.2.5 VANISHED (EARLIER).
pub async fn expunged_since<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    modseq: store::ModSeq,
) -> PgResult<Vec<Uid>> {
    let rs = rows(
        c,
        "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
        &[&mailbox, &sql_u64(modseq)],
    )
    .await?;
    Ok(rs.iter().map(|r| col_u32(r.get(0))).collect())
}

/// [`store::MailStore::count_messages`]: a count over the primary key (with the flags from the
/// covering index `messages_summary`).
pub async fn count_messages<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    above: Uid,
    flag: Option<store::SystemFlags>,
) -> PgResult<u32> {
    let bits = flag.map_or(0i16, |f| i16::from(f.0));
    let n: i64 = rows(
        c,
        "SELECT count(*) FROM messages
         WHERE mailbox_id = $1 AND uid > $2 AND ($3::smallint = 0 OR (flags & $3::smallint) <> 0)",
        &[&mailbox, &i64::from(above), &bits],
    )
    .await?[0]
        .get(0);
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The stored bytes of message `uid`, if it is in the mailbox.
pub async fn read_message<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    uid: Uid,
) -> PgResult<Option<Vec<u8>>> {
    Ok(opt(
        c,
        "SELECT b.data FROM messages m JOIN blobs b ON b.hash = m.blob_hash
         WHERE m.mailbox_id = $1 AND m.uid = $2",
        &[&mailbox, &i64::from(uid)],
    )
    .await?
    .map(|r| r.get(0)))
}

/// The bytes of a blob, `None` once it is gone.
pub async fn blob_data<C: GenericClient>(c: &C, hash: &str) -> PgResult<Option<Vec<u8>>> {
    Ok(opt(c, "SELECT data FROM blobs WHERE hash = $1", &[&hash])
        .await?
        .map(|r| r.get(0)))
}

/// [`store::MailStore::message_bodies`]: blob and size of each message, and the facts of
/// `version` — from `cache` when it has them, else from the `message_facts` table in one more
/// statement for all the misses (and then kept in `cache`).
pub async fn message_bodies<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    uids: &[Uid],
    version: u32,
    cache: &FactsCache,
) -> PgResult<Vec<MessageBody>> {
    let rs = rows(
        c,
        "SELECT uid, blob_hash, size FROM messages
         WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid",
        &[&mailbox, &sorted_uids(uids)],
    )
    .await?;
    let mut bodies: Vec<MessageBody> = rs
        .iter()
        .map(|r| MessageBody {
            uid: col_u32(r.get(0)),
            blob: BlobId(r.get(1)),
            size: col_u64(r.get(2)),
            facts: None,
        })
        .collect();
    let mut missing: Vec<&str> = Vec::new();
    for b in &mut bodies {
        b.facts = cache.get(&b.blob.0, version);
        if b.facts.is_none() && !missing.contains(&b.blob.0.as_str()) {
            missing.push(&b.blob.0);
        }
    }
    if missing.is_empty() {
        return Ok(bodies);
    }
    let found = rows(
        c,
        "SELECT blob_hash, version, header, envelope, envelope_utf8, body, body_utf8,
                bodystructure, bodystructure_utf8
         FROM message_facts WHERE blob_hash = ANY($1) AND version = $2",
        &[&missing, &i64::from(version)],
    )
    .await?;
    for r in &found {
        let hash: &str = r.get(0);
        let facts = Arc::new(MessageFacts {
            version: col_u32(r.get(1)),
            header: r.get(2),
            envelope: r.get(3),
            envelope_utf8: r.get(4),
            body: r.get(5),
            body_utf8: r.get(6),
            bodystructure: r.get(7),
            bodystructure_utf8: r.get(8),
        });
        cache.put(hash, Arc::clone(&facts));
        for b in bodies.iter_mut().filter(|b| b.blob.0 == hash) {
            b.facts = Some(Arc::clone(&facts));
        }
    }
    Ok(bodies)
}

pub async fn get_messages<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    uids: &[Uid],
) -> PgResult<Vec<MessageMeta>> {
    let sql = format!("{MESSAGE_SELECT} WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid");
    let rs = rows(c, &sql, &[&mailbox, &sorted_uids(uids)]).await?;
    if rs.is_empty() {
        return empty_or_missing(c, mailbox).await;
    }
    Ok(rs.iter().map(message_meta).collect())
}

/// The account's usage and its limits resolved with `defaults` (RFC 9208 GETQUOTA).
pub async fn quota<C: GenericClient>(
    c: &C,
    defaults: &store::QuotaDefaults,
    account: AccountId,
) -> PgResult<Quota> {
    let r = opt(
        c,
        "SELECT a.quota_used, a.messages_used, a.quota_limit, a.message_limit, d.name,
                a.storage_warned, a.messages_warned
         FROM accounts a JOIN domains d ON d.id = a.domain_id WHERE a.id = $1",
        &[&account],
    )
    .await?
    .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
    let row = crate::prim::quota_row(&r);
    let limits = defaults.resolve(&row.domain, row.overrides);
    Ok(Quota {
        used: row.used,
        limit: limits.storage,
        messages: row.messages,
        message_limit: limits.messages,
    })
}

/// The key of `mailbox`, if any (RFC 4467 §2.2).
pub async fn urlauth_key<C: GenericClient>(c: &C, mailbox: MailboxId) -> PgResult<Option<Vec<u8>>> {
    Ok(opt(
        c,
        "SELECT key FROM urlauth_keys WHERE mailbox_id = $1",
        &[&mailbox],
    )
    .await?
    .map(|r| r.get(0)))
}

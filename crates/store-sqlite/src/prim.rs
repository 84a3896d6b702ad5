//! Primitive write steps shared by the operations: UID and MODSEQ allocation, blob reference
//! counting, quota accounting, message removal. Each runs inside the writer's transaction.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use store::{
    AccountId, Change, ChangeEvent, MailboxId, ModSeq, SpecialUse, StoreError, StoreResult, Uid,
};

use crate::bodies;
use crate::db::{Db, io_err, now, sql_u64};
use crate::writer::Tx;

/// The columns of a mailbox row the write paths need.
#[derive(Debug, Clone)]
pub struct MailboxRow {
    pub id: MailboxId,
    pub account: AccountId,
    pub name: String,
}

pub fn mailbox_row(conn: &Connection, id: MailboxId) -> StoreResult<MailboxRow> {
    // Scoped to the account the id names (see `store::MailStore`).
    conn.prepare_cached("SELECT name FROM mailboxes WHERE id = ?1 AND account_id = ?2")
        .db()?
        .query_row(params![id, id.account], |r| {
            Ok(MailboxRow {
                id,
                account: id.account,
                name: r.get(0)?,
            })
        })
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {id}")))
}

/// Hands out a new UIDVALIDITY: the current time in seconds, or one more than the last value
/// handed out in this store if that is larger. Unique across the store, so a mailbox re-created
/// under an old name never gets its predecessor's value (RFC 9051 §2.3.1.1).
pub fn next_uid_validity(conn: &Connection) -> StoreResult<u32> {
    let last: i64 = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'last_uid_validity'")
        .db()?
        .query_row([], |r| r.get(0))
        .optional()
        .db()?
        .unwrap_or(0);
    let mut next = now().max(last.saturating_add(1));
    if next <= 0 || next > i64::from(u32::MAX) {
        next = 1; // after 2106, or a clock set to before 1970: still non-zero
    }
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('last_uid_validity', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )
    .db()?
    .execute([next])
    .db()?;
    Ok(next as u32)
}

/// Inserts a mailbox row and queues its `MailboxCreated` event.
pub fn insert_mailbox(
    tx: &mut Tx<'_>,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
    subscribed: bool,
) -> StoreResult<MailboxId> {
    let uid_validity = next_uid_validity(tx.conn)?;
    tx.conn
        .prepare_cached(
            "INSERT INTO mailboxes (account_id, name, uid_validity, special_use)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .db()?
        .execute(params![
            account,
            name,
            uid_validity,
            special_use.map(SpecialUse::as_str)
        ])
        .db()?;
    let id = MailboxId::new(account, tx.conn.last_insert_rowid());
    if subscribed {
        tx.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)",
            )
            .db()?
            .execute(params![account, name])
            .db()?;
    }
    tx.events.push(ChangeEvent {
        mailbox: id,
        change: Change::MailboxCreated {
            name: name.to_string(),
        },
    });
    Ok(id)
}

/// Reserves `count` consecutive UIDs; returns the first one and the mailbox's UIDVALIDITY.
/// RFC 9051 §2.3.1.1: UIDs are strictly ascending and never reused — `uid_next` only grows.
pub fn allocate_uids(conn: &Connection, mailbox: MailboxId, count: u32) -> StoreResult<(Uid, u32)> {
    let (first, validity): (i64, u32) = conn
        .prepare_cached(
            "UPDATE mailboxes SET uid_next = uid_next + ?2 WHERE id = ?1
             RETURNING uid_next - ?2, uid_validity",
        )
        .db()?
        .query_row(params![mailbox, count], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
    let last = first + i64::from(count) - 1;
    if first < 1 || last > i64::from(u32::MAX) {
        // The savepoint rollback undoes the update. A client can only fix this by re-creating
        // the mailbox (new UIDVALIDITY).
        return Err(StoreError::Invalid("mailbox UID space exhausted".into()));
    }
    Ok((first as Uid, validity))
}

/// Bumps and returns the mailbox's HIGHESTMODSEQ. RFC 7162 §3.1: every change gets a MODSEQ
/// higher than all before it in the mailbox; all messages changed by one call share it.
pub fn bump_modseq(conn: &Connection, mailbox: MailboxId) -> StoreResult<ModSeq> {
    let m: i64 = conn
        .prepare_cached(
            "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ?1
             RETURNING highest_modseq",
        )
        .db()?
        .query_row([mailbox], |r| r.get(0))
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
    Ok(m as ModSeq)
}

/// Adds `bytes` and `messages` to the account's usage counters (RFC 9208 STORAGE and MESSAGE;
/// negative to release). With `check`, a growing resource that would pass its limit (the
/// account's override, else the configured default, see `store::QuotaDefaults`) fails with
/// `OverQuota` and nothing is changed. Runs under the writer's lock, so the test and the
/// increment cannot interleave with another write. A threshold crossed upward queues a row
/// in `quota_warnings`, in the same transaction.
pub fn charge_quota(
    tx: &Tx<'_>,
    account: AccountId,
    bytes: i64,
    messages: i64,
    check: bool,
) -> StoreResult<()> {
    let conn = tx.conn;
    let before = conn
        .prepare_cached(
            "SELECT a.quota_used, a.messages_used, a.quota_limit, a.message_limit, d.name,
                    a.storage_warned, a.messages_warned
             FROM accounts a JOIN domains d ON d.id = a.domain_id WHERE a.id = ?1",
        )
        .db()?
        .query_row([account], quota_row)
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("account {account}")))?;
    let after = store::charge_quota(tx.quota, &before, bytes, messages, check)?;
    conn.prepare_cached(
        "UPDATE accounts SET quota_used = ?2, messages_used = ?3, storage_warned = ?4,
                messages_warned = ?5 WHERE id = ?1",
    )
    .db()?
    .execute(params![
        account,
        sql_u64(after.used),
        sql_u64(after.messages),
        after.storage_warned,
        after.messages_warned
    ])
    .db()?;
    for (resource, percent, used, limit) in &after.crossed {
        conn.prepare_cached(
            "INSERT INTO quota_warnings (account_id, resource, percent, used, limit_value,
                                         created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .db()?
        .execute(params![
            account,
            resource.code(),
            percent,
            sql_u64(*used),
            sql_u64(*limit),
            now()
        ])
        .db()?;
    }
    Ok(())
}

/// Reads `used, messages_used, quota_limit, message_limit, domain, storage_warned,
/// messages_warned` (in this order) into a [`store::QuotaRow`].
pub fn quota_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<store::QuotaRow> {
    let u = |v: Option<i64>| v.map(|v| v.max(0) as u64);
    Ok(store::QuotaRow {
        used: r.get::<_, i64>(0)?.max(0) as u64,
        messages: r.get::<_, i64>(1)?.max(0) as u64,
        overrides: store::QuotaLimits {
            storage: u(r.get(2)?),
            messages: u(r.get(3)?),
        },
        domain: r.get(4)?,
        storage_warned: r.get::<_, i64>(5)?.clamp(0, 100) as u8,
        messages_warned: r.get::<_, i64>(6)?.clamp(0, 100) as u8,
    })
}

/// Takes `n` references on blob `hash`. When the row is new, a small body (`bodies.rs`) is
/// stored from `bytes` in this transaction; a large one's file must exist: it normally does
/// (written before the request), but it may have been unlinked meanwhile because its previous
/// last reference went away — then it is re-written from `bytes`.
pub fn acquire_blob(
    tx: &Tx<'_>,
    hash: &str,
    size: u64,
    n: u64,
    bytes: Option<&[u8]>,
) -> StoreResult<()> {
    let rc: i64 = tx
        .conn
        .prepare_cached(
            "INSERT INTO blobs (hash, size, refcount) VALUES (?1, ?2, ?3)
             ON CONFLICT(hash) DO UPDATE SET refcount = refcount + excluded.refcount
             RETURNING refcount",
        )
        .db()?
        .query_row(params![hash, sql_u64(size), sql_u64(n)], |r| r.get(0))
        .db()?;
    if rc != sql_u64(n) {
        return Ok(());
    }
    // A new row: its body goes into the database (small) or must be a file (large).
    if bodies::is_inline(size) {
        match bytes {
            Some(b) => bodies::put(tx.conn, hash, b)?,
            // A copy of a body whose last reference went away meanwhile, unless it is an
            // older store's file.
            None if tx.blobs.exists(hash) => {}
            None => return Err(StoreError::Temporary("blob body missing".into())),
        }
    } else if !tx.blobs.exists(hash) {
        match bytes {
            Some(b) => tx
                .blobs
                .ensure(hash, b)
                .map_err(|e| io_err("rewriting blob", e))?,
            None => return Err(StoreError::Temporary("blob file missing".into())),
        }
    }
    Ok(())
}

/// Drops `n` references on blob `hash`; at zero the row goes with its body, or its file is
/// unlinked after the commit.
pub fn release_blob(tx: &mut Tx<'_>, hash: &str, n: u64) -> StoreResult<()> {
    let rc: Option<i64> = tx
        .conn
        .prepare_cached(
            "UPDATE blobs SET refcount = max(refcount - ?2, 0) WHERE hash = ?1 RETURNING refcount",
        )
        .db()?
        .query_row(params![hash, sql_u64(n)], |r| r.get(0))
        .optional()
        .db()?;
    if rc == Some(0) {
        tx.conn
            .prepare_cached("DELETE FROM blobs WHERE hash = ?1 AND refcount = 0")
            .db()?
            .execute([hash])
            .db()?;
        if !bodies::delete(tx.conn, hash)? {
            tx.unlink.push(hash.to_string());
        }
    }
    Ok(())
}

/// Inserts one message row (the blob reference is taken by the caller).
#[allow(clippy::too_many_arguments)]
pub fn insert_message(
    conn: &Connection,
    mailbox: MailboxId,
    uid: Uid,
    hash: &str,
    size: u64,
    internal_date: i64,
    flags: u8,
    keywords: &str,
    modseq: ModSeq,
    dates: SavedDates,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO messages
           (mailbox_id, uid, blob_hash, size, internal_date, flags, keywords, modseq,
            save_date, retrieved_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .db()?
    .execute(params![
        mailbox,
        uid,
        hash,
        sql_u64(size),
        internal_date,
        flags,
        keywords,
        sql_u64(modseq),
        dates.save_date,
        dates.retrieved_at
    ])
    .db()?;
    Ok(())
}

/// The `store::MessageDates` columns of a new message row.
#[derive(Debug, Clone, Copy)]
pub struct SavedDates {
    pub save_date: Option<i64>,
    pub retrieved_at: Option<i64>,
}

impl SavedDates {
    /// A message entering a mailbox now (delivery, APPEND, COPY, MOVE: RFC 8514 §1), not
    /// retrieved by POP3 there yet.
    pub fn now() -> SavedDates {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        SavedDates {
            save_date: Some(now),
            retrieved_at: None,
        }
    }
}

/// Removes the messages `uids` (sorted, distinct) of `mb`: one MODSEQ bump, expunge-log rows
/// (RFC 7162 §3.2.5), quota and blob references released, an `Expunged` event. Returns the UIDs
/// actually removed.
pub fn expunge_uids(tx: &mut Tx<'_>, mb: &MailboxRow, uids: &[Uid]) -> StoreResult<Vec<Uid>> {
    expunge_uids_with(tx, mb, uids, true)
}

/// [`expunge_uids`]; `release_quota` false leaves the account's usage alone (MOVE: the
/// messages stay in the account).
pub fn expunge_uids_with(
    tx: &mut Tx<'_>,
    mb: &MailboxRow,
    uids: &[Uid],
    release_quota: bool,
) -> StoreResult<Vec<Uid>> {
    let mut removed = Vec::new();
    let mut freed = 0i64;
    let mut per_blob: BTreeMap<String, u64> = BTreeMap::new();
    {
        let mut del = tx
            .conn
            .prepare_cached(
                "DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2
                 RETURNING blob_hash, size",
            )
            .db()?;
        for &uid in uids {
            let row: Option<(String, i64)> = del
                .query_row(params![mb.id, uid], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .db()?;
            if let Some((hash, size)) = row {
                removed.push(uid);
                freed += size;
                *per_blob.entry(hash).or_default() += 1;
            }
        }
    }
    if removed.is_empty() {
        return Ok(removed);
    }
    let modseq = bump_modseq(tx.conn, mb.id)?;
    {
        let mut log = tx
            .conn
            .prepare_cached(
                "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq, expunged_at)
                 VALUES (?1, ?2, ?3, unixepoch())",
            )
            .db()?;
        for &uid in &removed {
            log.execute(params![mb.id, uid, sql_u64(modseq)]).db()?;
        }
    }
    if release_quota {
        charge_quota(tx, mb.account, -freed, -(removed.len() as i64), false)?;
    }
    for (hash, n) in per_blob {
        release_blob(tx, &hash, n)?;
    }
    tx.events.push(ChangeEvent {
        mailbox: mb.id,
        change: Change::Expunged {
            uids: removed.clone(),
            modseq,
        },
    });
    Ok(removed)
}

/// Deletes a mailbox row with all its messages and its expunge log, releasing quota and blob
/// references, and queues `MailboxDeleted`.
pub fn drop_mailbox(tx: &mut Tx<'_>, mb: &MailboxRow) -> StoreResult<()> {
    let mut freed = 0i64;
    let mut count = 0i64;
    let mut per_blob: BTreeMap<String, u64> = BTreeMap::new();
    {
        let mut stmt = tx
            .conn
            .prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 RETURNING blob_hash, size")
            .db()?;
        let rows = stmt
            .query_map([mb.id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .db()?;
        for row in rows {
            let (hash, size) = row.db()?;
            freed += size;
            count += 1;
            *per_blob.entry(hash).or_default() += 1;
        }
    }
    for (hash, n) in per_blob {
        release_blob(tx, &hash, n)?;
    }
    charge_quota(tx, mb.account, -freed, -count, false)?;
    tx.conn
        .prepare_cached("DELETE FROM expunged WHERE mailbox_id = ?1")
        .db()?
        .execute([mb.id])
        .db()?;
    tx.conn
        .prepare_cached("DELETE FROM mailboxes WHERE id = ?1")
        .db()?
        .execute([mb.id])
        .db()?;
    tx.events.push(ChangeEvent {
        mailbox: mb.id,
        change: Change::MailboxDeleted {
            name: mb.name.clone(),
        },
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::{BlobDir, hash_of};
    use crate::schema;

    fn tx_env(dir: &std::path::Path) -> (Connection, BlobDir) {
        let conn = schema::connect(&dir.join("t.db"), false).unwrap();
        schema::migrate(&conn).unwrap();
        (conn, BlobDir::open(dir.join("blobs")).unwrap())
    }

    /// A new row whose file vanished (unlinked after its previous last reference went away,
    /// or swept by another process) gets its file re-written under the write lock.
    #[test]
    fn acquire_rewrites_a_missing_file_and_release_queues_unlink() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, blobs) = tx_env(dir.path());
        // Larger than a body kept in the database.
        let large = vec![b'x'; crate::bodies::INLINE_MAX as usize + 1];
        let bytes = large.as_slice();
        let size = bytes.len() as u64;
        let hash = hash_of(bytes);
        let quota = store::QuotaDefaults::default();
        let mut tx = Tx {
            conn: &conn,
            blobs: &blobs,
            quota: &quota,
            events: Vec::new(),
            unlink: Vec::new(),
        };
        assert!(!blobs.exists(&hash));
        assert!(matches!(
            acquire_blob(&tx, &hash, size, 1, None),
            Err(StoreError::Temporary(_))
        ));
        conn.execute("DELETE FROM blobs", []).unwrap();
        acquire_blob(&tx, &hash, size, 2, Some(bytes)).unwrap();
        assert_eq!(std::fs::read(blobs.path(&hash)).unwrap(), bytes);
        release_blob(&mut tx, &hash, 1).unwrap();
        assert!(tx.unlink.is_empty());
        release_blob(&mut tx, &hash, 1).unwrap();
        assert_eq!(tx.unlink, vec![hash.clone()]);
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM blobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0);
    }

    /// A small body is stored in the database with its new row, no file is written, and the
    /// last release deletes the body in the same transaction instead of queueing an unlink.
    #[test]
    fn a_small_body_lives_and_dies_with_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, blobs) = tx_env(dir.path());
        let bytes = b"Subject: hi\r\n\r\nbody\r\n".as_slice();
        let size = bytes.len() as u64;
        let hash = hash_of(bytes);
        let quota = store::QuotaDefaults::default();
        let mut tx = Tx {
            conn: &conn,
            blobs: &blobs,
            quota: &quota,
            events: Vec::new(),
            unlink: Vec::new(),
        };
        acquire_blob(&tx, &hash, size, 1, Some(bytes)).unwrap();
        // A second reference (a COPY) needs no bytes.
        acquire_blob(&tx, &hash, size, 1, None).unwrap();
        assert!(!blobs.exists(&hash));
        assert_eq!(crate::bodies::get(&conn, &hash).unwrap().unwrap(), bytes);
        release_blob(&mut tx, &hash, 1).unwrap();
        assert!(crate::bodies::get(&conn, &hash).unwrap().is_some());
        release_blob(&mut tx, &hash, 1).unwrap();
        assert!(crate::bodies::get(&conn, &hash).unwrap().is_none());
        assert!(tx.unlink.is_empty());
        // Its last reference gone, a copy without the bytes is refused, not left bodiless.
        assert!(matches!(
            acquire_blob(&tx, &hash, size, 1, None),
            Err(StoreError::Temporary(_))
        ));
    }

    #[test]
    fn uid_validity_is_unique_and_non_zero() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, _blobs) = tx_env(dir.path());
        let a = next_uid_validity(&conn).unwrap();
        let b = next_uid_validity(&conn).unwrap();
        assert!(a > 0 && b > a);
    }
}

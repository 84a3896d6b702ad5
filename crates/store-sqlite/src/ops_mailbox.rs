//! Mailbox writes: create, delete, rename, subscribe (RFC 9051 §6.3.4–§6.3.8).

use rusqlite::{Connection, OptionalExtension, params};
use store::{AccountId, Change, ChangeEvent, INBOX, MailboxId, StoreError, StoreResult};

use crate::db::{Db, FLAG_MASK};
use crate::prim::{
    MailboxRow, SavedDates, acquire_blob, allocate_uids, bump_modseq, drop_mailbox,
    expunge_uids_with, insert_mailbox, insert_message, mailbox_row,
};
use crate::writer::Tx;
use store::backend::names;

fn find_id(conn: &Connection, account: AccountId, name: &str) -> StoreResult<Option<MailboxId>> {
    conn.prepare_cached("SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2")
        .db()?
        .query_row(params![account, name], |r| r.get(0))
        .optional()
        .db()
        .map(|n| n.map(|n| MailboxId::new(account, n)))
}

fn account_exists(conn: &Connection, account: AccountId) -> StoreResult<()> {
    conn.prepare_cached("SELECT 1 FROM accounts WHERE id = ?1")
        .db()?
        .query_row([account], |_| Ok(()))
        .optional()
        .db()?
        .ok_or_else(|| StoreError::NotFound(format!("account {account}")))
}

/// Creates the missing superiors of `name` (RFC 9051 §6.3.4: "the server SHOULD create any
/// superior hierarchical names that are needed").
fn create_parents(tx: &mut Tx<'_>, account: AccountId, name: &str) -> StoreResult<()> {
    for parent in names::parents(name) {
        if find_id(tx.conn, account, parent)?.is_none() {
            insert_mailbox(tx, account, parent, None, false)?;
        }
    }
    Ok(())
}

/// RFC 9051 §6.3.4 CREATE. Returns the new mailbox's id.
pub fn create(tx: &mut Tx<'_>, account: AccountId, name: &str) -> StoreResult<MailboxId> {
    let name = names::canonical(name)?;
    account_exists(tx.conn, account)?;
    // INBOX always exists, so creating it (in any case) is "already exists".
    if find_id(tx.conn, account, &name)?.is_some() {
        return Err(StoreError::Exists(format!("mailbox {name}")));
    }
    create_parents(tx, account, &name)?;
    insert_mailbox(tx, account, &name, None, false)
}

/// RFC 9051 §6.3.5 DELETE. INBOX cannot be deleted; inferior mailboxes are left in place.
pub fn delete(tx: &mut Tx<'_>, mailbox: MailboxId) -> StoreResult<()> {
    let mb = mailbox_row(tx.conn, mailbox)?;
    if mb.name == INBOX {
        return Err(StoreError::Invalid("INBOX cannot be deleted".into()));
    }
    drop_mailbox(tx, &mb)
}

/// RFC 9051 §6.3.6 RENAME: inferiors are renamed with it, missing superiors of the new name are
/// created. Renaming INBOX moves its messages to a new mailbox and leaves INBOX empty (its
/// inferiors stay where they are).
pub fn rename(tx: &mut Tx<'_>, mailbox: MailboxId, new_name: &str) -> StoreResult<()> {
    let new_name = names::canonical(new_name)?;
    let mb = mailbox_row(tx.conn, mailbox)?;
    if find_id(tx.conn, mb.account, &new_name)?.is_some() {
        return Err(StoreError::Exists(format!("mailbox {new_name}")));
    }
    if mb.name == INBOX {
        return rename_inbox(tx, &mb, &new_name);
    }
    if names::is_inferior(&new_name, &mb.name) {
        return Err(StoreError::Invalid(
            "cannot rename a mailbox into itself".into(),
        ));
    }
    // The mailbox and its inferiors, with their old and new names.
    let mut moves: Vec<(MailboxId, String, String)> =
        vec![(mb.id, mb.name.clone(), new_name.clone())];
    {
        let mut stmt = tx
            .conn
            .prepare_cached(
                "SELECT id, name FROM mailboxes
                 WHERE account_id = ?1 AND substr(name, 1, length(?2) + 1) = ?2 || '/'",
            )
            .db()?;
        let rows = stmt
            .query_map(params![mb.account, mb.name], |r| {
                Ok((
                    MailboxId::new(mb.account, r.get(0)?),
                    r.get::<_, String>(1)?,
                ))
            })
            .db()?;
        for row in rows {
            let (id, old) = row.db()?;
            let suffix = old.get(mb.name.len()..).unwrap_or_default().to_string();
            moves.push((id, old, format!("{new_name}{suffix}")));
        }
    }
    for (_, _, name) in &moves[1..] {
        if name.len() > names::MAX_NAME_LEN {
            return Err(StoreError::Invalid("mailbox name: too long".into()));
        }
        if find_id(tx.conn, mb.account, name)?.is_some() {
            return Err(StoreError::Exists(format!("mailbox {name}")));
        }
    }
    create_parents(tx, mb.account, &new_name)?;
    let mut set = tx
        .conn
        .prepare_cached("UPDATE mailboxes SET name = ?2 WHERE id = ?1")
        .db()?;
    for (id, old_name, new_name) in moves {
        set.execute(params![id, new_name]).db()?;
        tx.events.push(ChangeEvent {
            mailbox: id,
            change: Change::MailboxRenamed { old_name, new_name },
        });
    }
    Ok(())
}

/// RFC 9051 §6.3.6: "Renaming INBOX is permitted … [it] moves all messages in INBOX to a new
/// mailbox with the given name, leaving INBOX empty."
fn rename_inbox(tx: &mut Tx<'_>, inbox: &MailboxRow, new_name: &str) -> StoreResult<()> {
    create_parents(tx, inbox.account, new_name)?;
    let dst = insert_mailbox(tx, inbox.account, new_name, None, false)?;
    let rows: Vec<(u32, String, i64, i64, i64, String)> = {
        let mut stmt = tx
            .conn
            .prepare_cached(
                "SELECT uid, blob_hash, size, internal_date, flags, keywords FROM messages
                 WHERE mailbox_id = ?1 ORDER BY uid",
            )
            .db()?;
        let rows = stmt
            .query_map([inbox.id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .db()?;
        rows.collect::<Result<_, _>>().db()?
    };
    if rows.is_empty() {
        return Ok(());
    }
    let count =
        u32::try_from(rows.len()).map_err(|_| StoreError::Invalid("too many messages".into()))?;
    let (first, _) = allocate_uids(tx.conn, dst, count)?;
    let modseq = bump_modseq(tx.conn, dst)?;
    for (i, (_, hash, size, date, flags, kw)) in rows.iter().enumerate() {
        insert_message(
            tx.conn,
            dst,
            first + i as u32,
            hash,
            *size as u64,
            *date,
            (*flags as u8) & FLAG_MASK,
            kw,
            modseq,
            // RFC 8514 §1: they enter the new mailbox now.
            SavedDates::now(),
        )?;
    }
    // The moved messages keep their blob references and quota: take one extra reference each
    // (which the expunge then drops), and leave the account's usage alone.
    for (_, hash, size, ..) in &rows {
        acquire_blob(tx, hash, *size as u64, 1, None)?;
    }
    let uids: Vec<u32> = rows.iter().map(|r| r.0).collect();
    expunge_uids_with(tx, inbox, &uids, false)?;
    Ok(())
}

/// RFC 9051 §6.3.7/§6.3.8 SUBSCRIBE/UNSUBSCRIBE. Subscribing needs the mailbox to exist
/// now; the subscription is a name and outlives it. Unsubscribing takes any name (that is how
/// a subscription to a deleted mailbox is dropped).
pub fn set_subscribed(
    tx: &mut Tx<'_>,
    account: AccountId,
    name: &str,
    subscribed: bool,
) -> StoreResult<()> {
    let name = names::canonical(name)?;
    let id = find_id(tx.conn, account, &name)?;
    if subscribed {
        if id.is_none() {
            return Err(StoreError::NotFound(format!("mailbox {name}")));
        }
        tx.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)",
            )
            .db()?
            .execute(params![account, name])
            .db()?;
    } else {
        let n = tx
            .conn
            .prepare_cached("DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2")
            .db()?
            .execute(params![account, name])
            .db()?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("subscription {name}")));
        }
    }
    // NOTIFY SubscriptionChange (RFC 5465 §5.5). A subscription outlives its mailbox: the
    // event of one whose mailbox is gone carries mailbox id 0 (ids start at 1).
    tx.events.push(ChangeEvent {
        mailbox: id.unwrap_or(MailboxId::new(account, 0)),
        change: Change::SubscriptionChanged { name, subscribed },
    });
    Ok(())
}

//! URLAUTH mailbox access keys (RFC 4467 §2.2): one random secret per mailbox, created on
//! first use by GENURLAUTH and removed by RESETKEY (or with the mailbox or account).

use rusqlite::{Connection, OptionalExtension, params};
use store::{AccountId, MailboxId, StoreError, StoreResult};

use crate::db::Db;
use crate::writer::Tx;

/// The key of `mailbox`, storing `fresh` when there is none yet.
pub fn key_or_insert(tx: &mut Tx<'_>, mailbox: MailboxId, fresh: &[u8]) -> StoreResult<Vec<u8>> {
    if let Some(key) = find(tx.conn, mailbox)? {
        return Ok(key);
    }
    let account: Option<AccountId> = tx
        .conn
        .prepare_cached("SELECT account_id FROM mailboxes WHERE id = ?1")
        .db()?
        .query_row([mailbox], |r| r.get(0))
        .optional()
        .db()?;
    let account = account.ok_or_else(|| StoreError::NotFound(format!("mailbox {mailbox}")))?;
    tx.conn
        .prepare_cached(
            "INSERT INTO urlauth_keys (mailbox_id, account_id, key) VALUES (?1, ?2, ?3)",
        )
        .db()?
        .execute(params![mailbox, account, fresh])
        .db()?;
    Ok(fresh.to_vec())
}

pub fn find(conn: &Connection, mailbox: MailboxId) -> StoreResult<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT key FROM urlauth_keys WHERE mailbox_id = ?1")
        .db()?
        .query_row([mailbox], |r| r.get(0))
        .optional()
        .db()
}

/// RFC 4467 §7 RESETKEY: one mailbox's key, or all of the account's.
pub fn reset(tx: &mut Tx<'_>, account: AccountId, mailbox: Option<MailboxId>) -> StoreResult<()> {
    match mailbox {
        Some(m) => tx
            .conn
            .prepare_cached("DELETE FROM urlauth_keys WHERE account_id = ?1 AND mailbox_id = ?2")
            .db()?
            .execute(params![account, m])
            .db()?,
        None => tx
            .conn
            .prepare_cached("DELETE FROM urlauth_keys WHERE account_id = ?1")
            .db()?
            .execute([account])
            .db()?,
    };
    Ok(())
}

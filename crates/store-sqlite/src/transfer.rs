//! [`store::transfer::Transfer`] for the embedded store: export with plain reads, import with
//! one writer job per call (blob files written first, as for every write).

use std::sync::Arc;

use async_trait::async_trait;
use mail_types::Address;
use rusqlite::{Connection, params};
use store::transfer::{
    AccountRecord, DirectoryRecords, ExpungedRecord, MailboxRecord, MessageRecord, Transfer,
};
use store::{
    AccountId, BlobId, MailboxId, QueuedMessage, SpecialUse, StoreError, StoreResult, SystemFlags,
    Uid,
};

use crate::db::{Db, encode_keywords, flags_from_columns, sql_u64};
use crate::ops_msg::NewBlob;
use crate::prim::{SavedDates, acquire_blob, charge_quota, insert_message, mailbox_row};
use crate::{SqliteStore, ops_dir, ops_queue};

fn corrupt(what: &str) -> StoreError {
    StoreError::Temporary(format!("corrupt {what} in the database"))
}

fn export_accounts(c: &Connection) -> StoreResult<Vec<AccountRecord>> {
    let mut stmt = c
        .prepare(
            "SELECT id, address, password_hash, scram, quota_limit, created_at, message_limit
             FROM accounts ORDER BY id",
        )
        .db()?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
            ))
        })
        .db()?;
    let mut out = Vec::new();
    for row in rows {
        let (id, address, password_hash, scram, limit, created_at, messages) = row.db()?;
        out.push(AccountRecord {
            id: AccountId(id),
            address: Address::parse(&address).map_err(|_| corrupt("address"))?,
            password_hash,
            scram,
            quota_limit: limit.map(|l| l.max(0) as u64),
            message_limit: messages.map(|l| l.max(0) as u64),
            created_at,
        });
    }
    Ok(out)
}

fn export_subscriptions(c: &Connection) -> StoreResult<Vec<(AccountId, String)>> {
    let mut stmt = c
        .prepare("SELECT account_id, name FROM subscriptions ORDER BY account_id, name")
        .db()?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).db()?;
    rows.collect::<Result<_, _>>().db()
}

fn export_mailboxes(c: &Connection, account: AccountId) -> StoreResult<Vec<MailboxRecord>> {
    let mut stmt = c
        .prepare(
            "SELECT id, name, uid_validity, uid_next, highest_modseq, special_use, expunge_floor
             FROM mailboxes WHERE account_id = ?1 ORDER BY id",
        )
        .db()?;
    let rows = stmt
        .query_map([account], |r| {
            Ok(MailboxRecord {
                id: MailboxId::new(account, r.get(0)?),
                name: r.get(1)?,
                uid_validity: r.get(2)?,
                uid_next: r.get(3)?,
                highest_modseq: r.get::<_, i64>(4)?.max(0) as u64,
                special_use: r
                    .get::<_, Option<String>>(5)?
                    .as_deref()
                    .and_then(SpecialUse::parse),
                expunge_floor: r.get::<_, i64>(6)?.max(0) as u64,
            })
        })
        .db()?;
    rows.collect::<Result<_, _>>().db()
}

fn export_messages(
    c: &Connection,
    mailbox: MailboxId,
    after: Uid,
    limit: usize,
) -> StoreResult<Vec<MessageRecord>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT uid, blob_hash, size, internal_date, flags, keywords, modseq,
                    save_date, retrieved_at FROM messages
             WHERE mailbox_id = ?1 AND uid > ?2 ORDER BY uid LIMIT ?3",
        )
        .db()?;
    let rows = stmt
        .query_map(
            params![mailbox, after, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok(MessageRecord {
                    uid: r.get(0)?,
                    blob: BlobId(r.get(1)?),
                    size: r.get::<_, i64>(2)?.max(0) as u64,
                    internal_date: r.get(3)?,
                    flags: flags_from_columns(r.get(4)?, &r.get::<_, String>(5)?),
                    modseq: r.get::<_, i64>(6)?.max(0) as u64,
                    save_date: r.get(7)?,
                    retrieved_at: r.get(8)?,
                })
            },
        )
        .db()?;
    rows.collect::<Result<_, _>>().db()
}

fn export_expunged(c: &Connection, mailbox: MailboxId) -> StoreResult<Vec<ExpungedRecord>> {
    let mut stmt = c
        .prepare("SELECT uid, modseq FROM expunged WHERE mailbox_id = ?1 ORDER BY uid")
        .db()?;
    let rows = stmt
        .query_map([mailbox], |r| {
            Ok(ExpungedRecord {
                uid: r.get(0)?,
                modseq: r.get::<_, i64>(1)?.max(0) as u64,
            })
        })
        .db()?;
    rows.collect::<Result<_, _>>().db()
}

fn import_directory(
    c: &Connection,
    records: &DirectoryRecords,
) -> StoreResult<Vec<(AccountId, AccountId)>> {
    for d in &records.domains {
        ops_dir::add_domain(c, d)?;
    }
    let mut ids = Vec::new();
    for a in &records.accounts {
        c.prepare_cached(
            "INSERT INTO accounts (address, domain_id, password_hash, scram, quota_limit, created_at,
                                   message_limit)
             VALUES (?1, (SELECT id FROM domains WHERE name = ?2), ?3, ?4, ?5, ?6, ?7)",
        )
        .db()?
        .execute(params![
            a.address.to_string(),
            a.address.domain().as_str(),
            a.password_hash,
            a.scram,
            a.quota_limit.map(sql_u64),
            a.created_at,
            a.message_limit.map(sql_u64)
        ])
        .db()?;
        ids.push((a.id, AccountId(c.last_insert_rowid())));
    }
    for alias in &records.aliases {
        ops_dir::add_alias(c, &alias.source, &alias.targets)?;
    }
    for (old, name) in &records.subscriptions {
        if let Some((_, new)) = ids.iter().find(|(o, _)| o == old) {
            c.prepare_cached(
                "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)",
            )
            .db()?
            .execute(params![new, name])
            .db()?;
        }
    }
    Ok(ids)
}

fn import_mailbox(c: &Connection, account: AccountId, m: &MailboxRecord) -> StoreResult<MailboxId> {
    c.prepare_cached(
        "INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq, special_use,
                                expunge_floor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .db()?
    .execute(params![
        account,
        m.name,
        m.uid_validity,
        m.uid_next,
        sql_u64(m.highest_modseq),
        m.special_use.map(SpecialUse::as_str),
        sql_u64(m.expunge_floor)
    ])
    .db()?;
    let id = MailboxId::new(account, c.last_insert_rowid());
    // RFC 9051 §2.3.1.1: a mailbox created later (even under a name deleted after the
    // migration) must not get a UIDVALIDITY an imported mailbox had.
    c.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('last_uid_validity', ?1)
         ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
    )
    .db()?
    .execute([m.uid_validity])
    .db()?;
    Ok(id)
}

#[async_trait]
impl Transfer for SqliteStore {
    async fn export_directory(&self) -> StoreResult<DirectoryRecords> {
        self.readers
            .read(|c| {
                Ok(DirectoryRecords {
                    domains: ops_dir::list_domains(c)?,
                    accounts: export_accounts(c)?,
                    aliases: ops_dir::list_aliases(c)?,
                    subscriptions: export_subscriptions(c)?,
                })
            })
            .await
    }

    async fn export_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxRecord>> {
        self.readers
            .read(move |c| export_mailboxes(c, account))
            .await
    }

    async fn export_messages(
        &self,
        mailbox: MailboxId,
        after: Uid,
        limit: usize,
    ) -> StoreResult<Vec<MessageRecord>> {
        self.readers
            .read(move |c| export_messages(c, mailbox, after, limit))
            .await
    }

    async fn export_expunged(&self, mailbox: MailboxId) -> StoreResult<Vec<ExpungedRecord>> {
        self.readers
            .read(move |c| export_expunged(c, mailbox))
            .await
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        self.readers
            .read(|c| {
                c.query_row(
                    "SELECT (SELECT count(*) FROM domains) + (SELECT count(*) FROM accounts)
                          + (SELECT count(*) FROM queue_messages)",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .db()
                .map(|n| n == 0)
            })
            .await
    }

    async fn import_directory(
        &self,
        records: &DirectoryRecords,
    ) -> StoreResult<Vec<(AccountId, AccountId)>> {
        let records = records.clone();
        self.writer
            .run(move |tx| import_directory(tx.conn, &records))
            .await
    }

    async fn import_mailbox(
        &self,
        account: AccountId,
        record: &MailboxRecord,
    ) -> StoreResult<MailboxId> {
        let record = record.clone();
        self.writer
            .run(move |tx| import_mailbox(tx.conn, account, &record))
            .await
    }

    async fn import_messages(
        &self,
        mailbox: MailboxId,
        messages: Vec<(MessageRecord, Arc<Vec<u8>>)>,
    ) -> StoreResult<()> {
        for (m, bytes) in &messages {
            let hash = self.write_blob(bytes).await?;
            if hash != m.blob.0 {
                return Err(StoreError::Invalid(format!(
                    "message {} of mailbox {mailbox}: its bytes do not match blob {}",
                    m.uid, m.blob
                )));
            }
        }
        self.writer
            .run(move |tx| {
                let mb = mailbox_row(tx.conn, mailbox)?;
                let mut total = 0i64;
                let (mut max_uid, mut max_modseq) = (0, 0);
                for (m, bytes) in &messages {
                    acquire_blob(tx, &m.blob.0, m.size, 1, Some(bytes))?;
                    insert_message(
                        tx.conn,
                        mailbox,
                        m.uid,
                        &m.blob.0,
                        m.size,
                        m.internal_date,
                        m.flags.system.0 & SystemFlags::ALL.iter().fold(0, |a, (f, _)| a | f.0),
                        &encode_keywords(&m.flags.keywords),
                        m.modseq,
                        SavedDates {
                            save_date: m.save_date,
                            retrieved_at: m.retrieved_at,
                        },
                    )?;
                    total = total.saturating_add(sql_u64(m.size));
                    max_uid = max_uid.max(m.uid);
                    max_modseq = max_modseq.max(m.modseq);
                }
                // Keeps UIDNEXT above every UID and HIGHESTMODSEQ at least every MODSEQ, whatever
                // the source said (RFC 9051 §2.3.1.1, RFC 7162 §3.1).
                tx.conn
                    .prepare_cached(
                        "UPDATE mailboxes SET uid_next = max(uid_next, ?2 + 1),
                                highest_modseq = max(highest_modseq, ?3) WHERE id = ?1",
                    )
                    .db()?
                    .execute(params![mailbox, max_uid, sql_u64(max_modseq)])
                    .db()?;
                // Not checked: an account over quota in the source stays so, its mail kept.
                charge_quota(tx, mb.account, total, messages.len() as i64, false)
            })
            .await
    }

    async fn import_expunged(
        &self,
        mailbox: MailboxId,
        records: &[ExpungedRecord],
    ) -> StoreResult<()> {
        let records = records.to_vec();
        self.writer
            .run(move |tx| {
                let mut ins = tx
                    .conn
                    .prepare_cached(
                        "INSERT OR IGNORE INTO expunged (mailbox_id, uid, modseq, expunged_at)
                         VALUES (?1, ?2, ?3, unixepoch())",
                    )
                    .db()?;
                for e in &records {
                    ins.execute(params![mailbox, e.uid, sql_u64(e.modseq)])
                        .db()?;
                }
                Ok(())
            })
            .await
    }

    async fn import_queued(&self, message: &QueuedMessage, body: Arc<Vec<u8>>) -> StoreResult<()> {
        let hash = self.write_blob(&body).await?;
        let message = message.clone();
        self.writer
            .run(move |tx| {
                let envelope = message.envelope();
                let blob = NewBlob {
                    hash: &hash,
                    bytes: &body,
                };
                let id = ops_queue::enqueue(tx, &blob, &envelope)?;
                tx.conn
                    .prepare_cached(
                        "UPDATE queue_messages SET created = ?2, delay_notified = ?3 WHERE id = ?1",
                    )
                    .db()?
                    .execute(params![id, message.created, message.delay_notified])
                    .db()?;
                // The recipients were inserted in order: their ids ascend with it.
                let ids: Vec<i64> = {
                    let mut stmt = tx
                        .conn
                        .prepare_cached(
                            "SELECT id FROM queue_recipients WHERE message = ?1 ORDER BY id",
                        )
                        .db()?;
                    let rows = stmt.query_map([id], |r| r.get(0)).db()?;
                    rows.collect::<Result<_, _>>().db()?
                };
                for (rid, r) in ids.iter().zip(&message.recipients) {
                    tx.conn
                        .prepare_cached(
                            "UPDATE queue_recipients SET status = ?2, attempts = ?3,
                                    next_attempt = ?4, last_error = ?5, last_attempt = ?6
                             WHERE id = ?1",
                        )
                        .db()?
                        .execute(params![
                            rid,
                            r.status.as_str(),
                            r.attempts,
                            r.next_attempt,
                            r.last_error,
                            r.last_attempt
                        ])
                        .db()?;
                }
                Ok(())
            })
            .await
    }
}

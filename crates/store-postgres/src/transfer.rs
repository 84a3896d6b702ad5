//! [`store::transfer::Transfer`] for PostgreSQL (`yubin migrate --to postgres://…` and
//! `--from postgres://…`): exports are snapshot reads, each import one write transaction.
//! Identities are kept as given — UIDVALIDITY, UIDs, MODSEQs (RFC 9051 §2.3.1.1, RFC 7162
//! §3.1) — and the mailbox counters are raised past them so that nothing is handed out twice.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use mail_types::Address;
use store::transfer::{
    AccountRecord, DirectoryRecords, ExpungedRecord, MailboxRecord, MessageRecord, Transfer,
};
use store::{
    AccountId, BlobId, MailboxId, QueuedMessage, SpecialUse, StoreError, StoreResult, Uid,
};

use crate::db::{
    col_u32, col_u64, corrupt, exec, flag_bits, flags_from_columns, one, rows, sql_u64,
};
use crate::error::PgResult;
use crate::mailstore::hash_of;
use crate::ops_msg::NewBlob;
use crate::prim::{NewMessage, acquire_blob, insert_message, lock_mailbox};
use crate::tx::{Tx, read, snapshot, write_tx};
use crate::{PgStore, ops_dir, ops_queue};

async fn export_accounts<C: GenericClient>(c: &C) -> PgResult<Vec<AccountRecord>> {
    let rs = rows(
        c,
        "SELECT id, address, password_hash, scram, quota_limit,
                extract(epoch FROM created_at)::bigint, message_limit
         FROM accounts ORDER BY id",
        &[],
    )
    .await?;
    let mut out = Vec::with_capacity(rs.len());
    for r in &rs {
        let address: &str = r.get(1);
        out.push(AccountRecord {
            id: r.get(0),
            address: Address::parse(address).map_err(|_| corrupt("address", address))?,
            password_hash: r.get(2),
            scram: r.get(3),
            quota_limit: r.get::<_, Option<i64>>(4).map(col_u64),
            created_at: r.get(5),
            message_limit: r.get::<_, Option<i64>>(6).map(col_u64),
        });
    }
    Ok(out)
}

async fn export_subscriptions<C: GenericClient>(c: &C) -> PgResult<Vec<(AccountId, String)>> {
    let rs = rows(
        c,
        "SELECT account_id, name FROM subscriptions ORDER BY account_id, name",
        &[],
    )
    .await?;
    Ok(rs.iter().map(|r| (r.get(0), r.get(1))).collect())
}

async fn export_mailboxes<C: GenericClient>(
    c: &C,
    account: AccountId,
) -> PgResult<Vec<MailboxRecord>> {
    let rs = rows(
        c,
        "SELECT id, name, uid_validity, uid_next, highest_modseq, special_use, expunge_floor
         FROM mailboxes WHERE account_id = $1 ORDER BY id",
        &[&account],
    )
    .await?;
    Ok(rs
        .iter()
        .map(|r| MailboxRecord {
            id: MailboxId::new(account, r.get(0)),
            name: r.get(1),
            uid_validity: col_u32(r.get(2)),
            uid_next: col_u32(r.get(3)),
            highest_modseq: col_u64(r.get(4)),
            special_use: r.get::<_, Option<&str>>(5).and_then(SpecialUse::parse),
            expunge_floor: col_u64(r.get(6)),
        })
        .collect())
}

async fn export_messages<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    after: Uid,
    limit: usize,
) -> PgResult<Vec<MessageRecord>> {
    let rs = rows(
        c,
        "SELECT uid, blob_hash, size, internal_date, flags, keywords, modseq,
                save_date, retrieved_at FROM messages
         WHERE mailbox_id = $1 AND uid > $2 ORDER BY uid LIMIT $3",
        &[
            &mailbox,
            &i64::from(after),
            &i64::try_from(limit).unwrap_or(i64::MAX),
        ],
    )
    .await?;
    Ok(rs
        .iter()
        .map(|r| MessageRecord {
            uid: col_u32(r.get(0)),
            blob: BlobId(r.get(1)),
            size: col_u64(r.get(2)),
            internal_date: r.get(3),
            flags: flags_from_columns(r.get(4), r.get(5)),
            modseq: col_u64(r.get(6)),
            save_date: r.get(7),
            retrieved_at: r.get(8),
        })
        .collect())
}

async fn export_expunged<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
) -> PgResult<Vec<ExpungedRecord>> {
    let rs = rows(
        c,
        "SELECT uid, modseq FROM expunged WHERE mailbox_id = $1 ORDER BY uid",
        &[&mailbox],
    )
    .await?;
    Ok(rs
        .iter()
        .map(|r| ExpungedRecord {
            uid: col_u32(r.get(0)),
            modseq: col_u64(r.get(1)),
        })
        .collect())
}

async fn is_empty<C: GenericClient>(c: &C) -> PgResult<bool> {
    let n: i64 = one(
        c,
        "SELECT (SELECT count(*) FROM domains) + (SELECT count(*) FROM accounts)
              + (SELECT count(*) FROM queue_messages)",
        &[],
    )
    .await?
    .get(0);
    Ok(n == 0)
}

/// Domains, accounts (hashes as stored, no default mailboxes), aliases, subscriptions.
async fn import_directory(
    tx: &mut Tx<'_>,
    records: &DirectoryRecords,
) -> PgResult<Vec<(AccountId, AccountId)>> {
    for d in &records.domains {
        ops_dir::add_domain(tx, d).await?;
    }
    let mut ids = Vec::with_capacity(records.accounts.len());
    for a in &records.accounts {
        let id: AccountId = one(
            &tx.t,
            "INSERT INTO accounts (address, domain_id, password_hash, scram, quota_limit,
                                   created_at, message_limit)
             VALUES ($1, (SELECT id FROM domains WHERE name = $2), $3, $4, $5,
                     to_timestamp($6::bigint), $7)
             RETURNING id",
            &[
                &a.address.to_string(),
                &a.address.domain().as_str(),
                &a.password_hash,
                &a.scram,
                &a.quota_limit.map(sql_u64),
                &a.created_at,
                &a.message_limit.map(sql_u64),
            ],
        )
        .await?
        .get(0);
        ids.push((a.id, id));
    }
    for alias in &records.aliases {
        ops_dir::add_alias(tx, &alias.source, &alias.targets).await?;
    }
    let new_id: BTreeMap<AccountId, AccountId> = ids.iter().copied().collect();
    for (old, name) in &records.subscriptions {
        if let Some(new) = new_id.get(old) {
            exec(
                &tx.t,
                "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[new, name],
            )
            .await?;
        }
    }
    Ok(ids)
}

async fn import_mailbox(
    tx: &mut Tx<'_>,
    account: AccountId,
    m: &MailboxRecord,
) -> PgResult<MailboxId> {
    let id: i64 = one(
        &tx.t,
        "INSERT INTO mailboxes (account_id, name, uid_validity, uid_next, highest_modseq,
                                special_use, expunge_floor)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        &[
            &account,
            &m.name,
            &i64::from(m.uid_validity),
            &i64::from(m.uid_next),
            &sql_u64(m.highest_modseq),
            &m.special_use.map(SpecialUse::as_str),
            &sql_u64(m.expunge_floor),
        ],
    )
    .await?
    .get(0);
    // RFC 9051 §2.3.1.1: a mailbox created later (even under a name deleted after the
    // migration) must not get a UIDVALIDITY an imported mailbox had; `next_uid_validity`
    // hands out values above this one.
    exec(
        &tx.t,
        "INSERT INTO meta (key, value) VALUES ('last_uid_validity', $1)
         ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value, excluded.value)",
        &[&i64::from(m.uid_validity)],
    )
    .await?;
    Ok(MailboxId::new(account, id))
}

/// Files the messages with their identities; the account's usage grows by their sizes (not
/// checked against the limit: an account over quota in the source stays so, its mail kept).
async fn import_messages(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    messages: &[(MessageRecord, Arc<Vec<u8>>)],
) -> PgResult<()> {
    let mb = lock_mailbox(tx, mailbox).await?;
    // Lock order (`prim.rs`): the mailbox, the account, then blobs by hash.
    let total = messages
        .iter()
        .fold(0i64, |t, (m, _)| t.saturating_add(sql_u64(m.size)));
    crate::prim::charge_quota(tx, mb.account, total, messages.len() as i64, false).await?;
    let mut per_blob: BTreeMap<&str, (u64, &[u8])> = BTreeMap::new();
    for (m, bytes) in messages {
        per_blob
            .entry(m.blob.0.as_str())
            .or_insert((0, bytes.as_slice()))
            .0 += 1;
    }
    for (hash, (n, bytes)) in &per_blob {
        acquire_blob(tx, hash, *n, Some(bytes)).await?;
    }
    let (mut max_uid, mut max_modseq) = (0u32, 0u64);
    for (m, _) in messages {
        insert_message(
            tx,
            &NewMessage {
                mailbox: mb.id,
                uid: m.uid,
                hash: &m.blob.0,
                size: m.size,
                internal_date: m.internal_date,
                flags: flag_bits(m.flags.system),
                keywords: &m.flags.keywords,
                modseq: m.modseq,
            },
        )
        .await?;
        max_uid = max_uid.max(m.uid);
        max_modseq = max_modseq.max(m.modseq);
    }
    // The source's dates replace the fresh save dates the inserts got (one statement).
    let uids: Vec<i64> = messages.iter().map(|(m, _)| i64::from(m.uid)).collect();
    let saved: Vec<Option<i64>> = messages.iter().map(|(m, _)| m.save_date).collect();
    let retrieved: Vec<Option<i64>> = messages.iter().map(|(m, _)| m.retrieved_at).collect();
    exec(
        &tx.t,
        "UPDATE messages x SET save_date = d.s, retrieved_at = d.r
         FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS d(u, s, r)
         WHERE x.mailbox_id = $1 AND x.uid = d.u",
        &[&mb.id, &uids, &saved, &retrieved],
    )
    .await?;
    // Keeps UIDNEXT above every UID and HIGHESTMODSEQ at least every MODSEQ, whatever the
    // source said (RFC 9051 §2.3.1.1, RFC 7162 §3.1).
    exec(
        &tx.t,
        "UPDATE mailboxes SET uid_next = greatest(uid_next, $2::bigint + 1),
                highest_modseq = greatest(highest_modseq, $3::bigint)
         WHERE id = $1",
        &[&mb.id, &i64::from(max_uid), &sql_u64(max_modseq)],
    )
    .await?;
    Ok(())
}

async fn import_expunged(
    tx: &mut Tx<'_>,
    mailbox: MailboxId,
    records: &[ExpungedRecord],
) -> PgResult<()> {
    let uids: Vec<i64> = records.iter().map(|e| i64::from(e.uid)).collect();
    let modseqs: Vec<i64> = records.iter().map(|e| sql_u64(e.modseq)).collect();
    exec(
        &tx.t,
        "INSERT INTO expunged (mailbox_id, uid, modseq)
         SELECT $1, u, m FROM unnest($2::bigint[], $3::bigint[]) AS e(u, m)
         ON CONFLICT (mailbox_id, uid) DO NOTHING",
        &[&mailbox, &uids, &modseqs],
    )
    .await?;
    Ok(())
}

/// Queues the message as `enqueue` does, then restores its age and each recipient's state.
async fn import_queued(
    tx: &mut Tx<'_>,
    message: &QueuedMessage,
    blob: &NewBlob<'_>,
) -> PgResult<()> {
    let envelope = message.envelope();
    let id = ops_queue::enqueue(tx, blob, &envelope).await?;
    exec(
        &tx.t,
        "UPDATE queue_messages SET created = $2, delay_notified = $3 WHERE id = $1",
        &[&id, &message.created, &message.delay_notified],
    )
    .await?;
    // The recipients were inserted in the envelope's order: their ids ascend with it.
    let ids: Vec<i64> = rows(
        &tx.t,
        "SELECT id FROM queue_recipients WHERE message = $1 ORDER BY id",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    for (rid, r) in ids.iter().zip(&message.recipients) {
        exec(
            &tx.t,
            "UPDATE queue_recipients SET status = $2, attempts = $3, next_attempt = $4,
                    last_error = $5, last_attempt = $6
             WHERE id = $1",
            &[
                rid,
                &r.status.as_str(),
                &i32::try_from(r.attempts).unwrap_or(i32::MAX),
                &r.next_attempt,
                &r.last_error,
                &r.last_attempt,
            ],
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl Transfer for PgStore {
    async fn export_directory(&self) -> StoreResult<DirectoryRecords> {
        snapshot!(self, |t| async {
            PgResult::Ok(DirectoryRecords {
                domains: ops_dir::list_domains(t).await?,
                accounts: export_accounts(t).await?,
                aliases: ops_dir::list_aliases(t).await?,
                subscriptions: export_subscriptions(t).await?,
            })
        })
    }

    async fn export_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxRecord>> {
        read!(self, |c| export_mailboxes(c, account))
    }

    async fn export_messages(
        &self,
        mailbox: MailboxId,
        after: Uid,
        limit: usize,
    ) -> StoreResult<Vec<MessageRecord>> {
        read!(self, |c| export_messages(c, mailbox, after, limit))
    }

    async fn export_expunged(&self, mailbox: MailboxId) -> StoreResult<Vec<ExpungedRecord>> {
        read!(self, |c| export_expunged(c, mailbox))
    }

    async fn is_empty(&self) -> StoreResult<bool> {
        read!(self, |c| is_empty(c))
    }

    async fn import_directory(
        &self,
        records: &DirectoryRecords,
    ) -> StoreResult<Vec<(AccountId, AccountId)>> {
        write_tx!(self, |tx| import_directory(tx, records))
    }

    async fn import_mailbox(
        &self,
        account: AccountId,
        record: &MailboxRecord,
    ) -> StoreResult<MailboxId> {
        write_tx!(self, |tx| import_mailbox(tx, account, record))
    }

    async fn import_messages(
        &self,
        mailbox: MailboxId,
        messages: Vec<(MessageRecord, Arc<Vec<u8>>)>,
    ) -> StoreResult<()> {
        for (m, bytes) in &messages {
            if hash_of(bytes) != m.blob.0 || bytes.len() as u64 != m.size {
                return Err(StoreError::Invalid(format!(
                    "message {} of mailbox {mailbox}: its bytes do not match blob {}",
                    m.uid, m.blob
                )));
            }
        }
        if messages.is_empty() {
            return Ok(());
        }
        write_tx!(self, |tx| import_messages(tx, mailbox, &messages))
    }

    async fn import_expunged(
        &self,
        mailbox: MailboxId,
        records: &[ExpungedRecord],
    ) -> StoreResult<()> {
        write_tx!(self, |tx| import_expunged(tx, mailbox, records))
    }

    async fn import_queued(&self, message: &QueuedMessage, body: Arc<Vec<u8>>) -> StoreResult<()> {
        let hash = hash_of(&body);
        let blob = NewBlob {
            hash: &hash,
            bytes: &body,
        };
        write_tx!(self, |tx| import_queued(tx, message, &blob))?;
        self.queue_notify.notify_one();
        Ok(())
    }
}

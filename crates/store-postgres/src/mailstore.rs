//! The trait implementations: thin async glue that runs reads on pooled connections and each
//! write in its own transaction (`tx.rs`).

use std::sync::Arc;

use async_trait::async_trait;
use mail_types::{Address, Domain};
use sha2::{Digest, Sha256};
use store::{
    AccountId, Alias, BlobId, BlobReader, ConditionalStore, Directory, FlagOp, Flags, MailStore,
    MailboxId, MailboxInfo, MessageBody, MessageFacts, MessageMeta, MessageSummary, ModSeq,
    OpenedMailbox, Quota, StoreError, StoreResult, Stored, Uid, UnixTime, UserRecord,
};

use crate::batch::BatchItem;
use crate::db::{exec, normalize_flags, opt};
use crate::error::{Error, PgResult};
use crate::ops_msg::NewBlob;
use crate::tx::{read, snapshot, write_tx};
use crate::{PgStore, batch, blob_stream, coord, ops_dir, ops_mailbox, ops_msg, reads};

/// Bodies larger than this are streamed by `open_blob` rather than read whole.
const STREAM_ABOVE: i64 = 1 << 20;

/// The content address of a message body: lower-case hex SHA-256.
pub fn hash_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `s` looks like a blob id (64 lower-case hex digits).
fn is_valid_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl PgStore {
    /// `NotFound` unless `mailbox` is its account's (see `store::MailStore`): from the owner
    /// cache, else one read by primary key.
    pub(crate) async fn own(&self, mailbox: MailboxId) -> StoreResult<()> {
        self.owners
            .verify(mailbox, |n| async move {
                read!(self, |c| reads::mailbox_owner(c, n))
            })
            .await
    }

    /// [`own`](Self::own) for both mailboxes of a COPY or MOVE, which must be one account's.
    async fn own_both(&self, from: MailboxId, to: MailboxId) -> StoreResult<()> {
        store::backend::owners::Owners::same_account(from, to)?;
        self.own(from).await?;
        self.own(to).await
    }
}

#[async_trait]
impl Directory for PgStore {
    async fn add_domain(&self, domain: &Domain) -> StoreResult<()> {
        write_tx!(self, |tx| ops_dir::add_domain(tx, domain))
    }

    async fn delete_domain(&self, domain: &Domain) -> StoreResult<()> {
        write_tx!(self, |tx| ops_dir::delete_domain(tx, domain))
    }

    async fn list_domains(&self) -> StoreResult<Vec<Domain>> {
        read!(self, |c| ops_dir::list_domains(c))
    }

    async fn is_local_domain(&self, domain: &Domain) -> StoreResult<bool> {
        read!(self, |c| ops_dir::is_local_domain(c, domain))
    }

    async fn add_user(&self, address: &Address, password_hash: &str) -> StoreResult<AccountId> {
        write_tx!(self, |tx| ops_dir::add_user(tx, address, password_hash))
    }

    async fn add_users(
        &self,
        users: &[(Address, String)],
    ) -> StoreResult<Vec<store::NewUserOutcome>> {
        write_tx!(self, |tx| ops_dir::add_users(tx, users))
    }

    async fn set_password(&self, address: &Address, password_hash: &str) -> StoreResult<()> {
        write_tx!(self, |tx| ops_dir::set_password(tx, address, password_hash))
    }

    async fn set_scram(&self, address: &Address, scram: &str) -> StoreResult<()> {
        write_tx!(self, |tx| ops_dir::set_scram(tx, address, scram))
    }

    async fn replace_password(
        &self,
        address: &Address,
        expected_hash: &str,
        new_hash: &str,
        scram: Option<&str>,
    ) -> StoreResult<bool> {
        write_tx!(self, |tx| ops_dir::replace_password(
            tx,
            address,
            expected_hash,
            new_hash,
            scram
        ))
    }

    async fn delete_user(&self, address: &Address) -> StoreResult<()> {
        write_tx!(self, |tx| ops_dir::delete_user(tx, address))
    }

    async fn pop3_expire(&self, address: &Address) -> StoreResult<Option<store::Pop3Expire>> {
        read!(self, |c| ops_dir::pop3_expire(c, address))
    }

    async fn set_pop3_expire(
        &self,
        address: &Address,
        choice: Option<store::Pop3Expire>,
    ) -> StoreResult<()> {
        write_tx!(self, |tx| ops_dir::set_pop3_expire(tx, address, choice))
    }

    async fn pop3_expire_choices(&self) -> StoreResult<Vec<(Address, store::Pop3Expire)>> {
        read!(self, |c| ops_dir::pop3_expire_choices(c))
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        read!(self, |c| ops_dir::list_users(c))
    }

    async fn list_users_after(
        &self,
        after: Option<&Address>,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>> {
        read!(self, |c| ops_dir::list_users_after(c, after, limit))
    }

    async fn find_user(&self, address: &Address) -> StoreResult<Option<UserRecord>> {
        read!(self, |c| ops_dir::find_user(c, address))
    }

    async fn user_count(&self) -> StoreResult<u64> {
        read!(self, |c| ops_dir::user_count(c))
    }

    async fn add_alias(&self, source: &str, targets: &[Address]) -> StoreResult<()> {
        write_tx!(self, |tx| ops_dir::add_alias(tx, source, targets))
    }

    async fn delete_alias(&self, source: &str) -> StoreResult<()> {
        write_tx!(self, |tx| ops_dir::delete_alias(tx, source))
    }

    async fn list_aliases(&self) -> StoreResult<Vec<Alias>> {
        read!(self, |c| ops_dir::list_aliases(c))
    }

    async fn resolve_recipient(&self, address: &Address) -> StoreResult<Vec<AccountId>> {
        read!(self, |c| ops_dir::resolve_recipient(c, address))
    }
}

#[async_trait]
impl MailStore for PgStore {
    async fn deliver(
        &self,
        message: Arc<Vec<u8>>,
        internal_date: UnixTime,
        recipients: &[AccountId],
    ) -> StoreResult<Vec<Stored>> {
        let mut accounts: Vec<AccountId> = Vec::with_capacity(recipients.len());
        for &r in recipients {
            if !accounts.contains(&r) {
                accounts.push(r);
            }
        }
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let hash = hash_of(&message);
        let blob = NewBlob {
            hash: &hash,
            bytes: &message,
        };
        write_tx!(self, |tx| ops_msg::deliver(
            tx,
            &blob,
            internal_date,
            &accounts
        ))
    }

    async fn append(
        &self,
        mailbox: MailboxId,
        message: Arc<Vec<u8>>,
        flags: &Flags,
        internal_date: UnixTime,
    ) -> StoreResult<Stored> {
        self.own(mailbox).await?;
        let flags = normalize_flags(flags)?;
        let hash = hash_of(&message);
        let blob = NewBlob {
            hash: &hash,
            bytes: &message,
        };
        write_tx!(self, |tx| ops_msg::append(
            tx,
            mailbox,
            &blob,
            &flags,
            internal_date
        ))
    }

    async fn append_claiming_recent(
        &self,
        mailbox: MailboxId,
        message: Arc<Vec<u8>>,
        flags: &Flags,
        internal_date: UnixTime,
    ) -> StoreResult<(Stored, Uid)> {
        self.own(mailbox).await?;
        let flags = normalize_flags(flags)?;
        let hash = hash_of(&message);
        let blob = NewBlob {
            hash: &hash,
            bytes: &message,
        };
        write_tx!(self, |tx| ops_msg::append_claiming_recent(
            tx,
            mailbox,
            &blob,
            &flags,
            internal_date
        ))
    }

    async fn quota(&self, account: AccountId) -> StoreResult<Quota> {
        read!(self, |c| reads::quota(c, &self.quota_defaults(), account))
    }

    async fn list_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxInfo>> {
        read!(self, |c| reads::list_mailboxes(c, account, true))
    }

    async fn lookup_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxInfo>> {
        read!(self, |c| reads::list_mailboxes(c, account, false))
    }

    async fn find_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> StoreResult<Option<MailboxInfo>> {
        read!(self, |c| reads::find_mailbox(c, account, name, true))
    }

    async fn lookup_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> StoreResult<Option<MailboxInfo>> {
        let found = read!(self, |c| reads::find_mailbox(c, account, name, false))?;
        if let Some(m) = &found {
            self.owners.learn(m.id);
        }
        Ok(found)
    }

    async fn open_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> StoreResult<Option<OpenedMailbox>> {
        let opened = snapshot!(self, |t| reads::open_mailbox(t, account, name))?;
        if let Some(o) = &opened {
            self.owners.learn(o.info.id);
        }
        Ok(opened)
    }

    async fn mailbox(&self, mailbox: MailboxId) -> StoreResult<MailboxInfo> {
        self.own(mailbox).await?;
        read!(self, |c| reads::mailbox(c, mailbox))
    }

    async fn create_mailbox(&self, account: AccountId, name: &str) -> StoreResult<MailboxInfo> {
        let id = write_tx!(self, |tx| ops_mailbox::create(tx, account, name))?;
        self.owners.learn(id);
        self.mailbox(id).await
    }

    async fn delete_mailbox(&self, mailbox: MailboxId) -> StoreResult<()> {
        self.own(mailbox).await?;
        write_tx!(self, |tx| ops_mailbox::delete(tx, mailbox))
    }

    async fn rename_mailbox(&self, mailbox: MailboxId, new_name: &str) -> StoreResult<()> {
        self.own(mailbox).await?;
        write_tx!(self, |tx| ops_mailbox::rename(tx, mailbox, new_name))
    }

    async fn set_subscribed(
        &self,
        account: AccountId,
        name: &str,
        subscribed: bool,
    ) -> StoreResult<()> {
        write_tx!(self, |tx| ops_mailbox::set_subscribed(
            tx, account, name, subscribed
        ))
    }

    async fn list_subscriptions(&self, account: AccountId) -> StoreResult<Vec<String>> {
        read!(self, |c| reads::list_subscriptions(c, account))
    }

    async fn list_messages(&self, mailbox: MailboxId) -> StoreResult<Vec<MessageMeta>> {
        self.own(mailbox).await?;
        read!(self, |c| reads::list_messages(c, mailbox))
    }

    async fn list_summaries(&self, mailbox: MailboxId) -> StoreResult<Vec<MessageSummary>> {
        self.own(mailbox).await?;
        read!(self, |c| reads::list_summaries(c, mailbox))
    }

    async fn get_messages(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> StoreResult<Vec<MessageMeta>> {
        self.own(mailbox).await?;
        read!(self, |c| reads::get_messages(c, mailbox, uids))
    }

    /// A body up to [`STREAM_ABOVE`] comes in the answer to its lookup; a larger one is
    /// streamed (`blob_stream.rs`).
    async fn open_blob(&self, blob: &BlobId) -> StoreResult<BlobReader> {
        if !is_valid_hash(&blob.0) {
            return Err(StoreError::NotFound(format!("blob {blob}")));
        }
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| Error::from(e).into_store())?;
        let row = opt(
            &client,
            "SELECT size, CASE WHEN size <= $2 THEN data END FROM blobs WHERE hash = $1",
            &[&blob.0, &STREAM_ABOVE],
        )
        .await
        .map_err(Error::into_store)?
        // Gone: the last message using it was expunged meanwhile.
        .ok_or(StoreError::Expunged)?;
        match row.get::<_, Option<Vec<u8>>>(1) {
            Some(data) => Ok(Box::new(std::io::Cursor::new(data))),
            None => Ok(Box::new(blob_stream::open(client, &blob.0, row.get(0))?)),
        }
    }

    async fn read_blob(&self, blob: &BlobId, _size_hint: u64) -> StoreResult<Vec<u8>> {
        if !is_valid_hash(&blob.0) {
            return Err(StoreError::NotFound(format!("blob {blob}")));
        }
        // Gone: the last message using it was expunged meanwhile.
        read!(self, |c| reads::blob_data(c, &blob.0))?.ok_or(StoreError::Expunged)
    }

    async fn read_message(&self, mailbox: MailboxId, uid: Uid) -> StoreResult<Option<Vec<u8>>> {
        self.own(mailbox).await?;
        read!(self, |c| reads::read_message(c, mailbox, uid))
    }

    async fn message_bodies(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        version: u32,
    ) -> StoreResult<Vec<MessageBody>> {
        self.own(mailbox).await?;
        read!(self, |c| reads::message_bodies(
            c,
            mailbox,
            uids,
            version,
            &self.facts
        ))
    }

    async fn put_message_facts(&self, facts: Vec<(BlobId, MessageFacts)>) -> StoreResult<()> {
        if facts.is_empty() {
            return Ok(());
        }
        for (blob, f) in &facts {
            self.facts.put(&blob.0, Arc::new(f.clone()));
        }
        // A cache: one statement per entry, no transaction; a blob gone meanwhile (foreign
        // key violation) is simply not cached.
        let result: PgResult<()> = async {
            let client = self.pool.get().await?;
            for (blob, f) in &facts {
                let put = exec(
                    &client,
                    "INSERT INTO message_facts (blob_hash, version, header, envelope,
                         envelope_utf8, body, body_utf8, bodystructure, bodystructure_utf8)
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
                     WHERE EXISTS (SELECT 1 FROM blobs WHERE hash = $1)
                     ON CONFLICT (blob_hash) DO UPDATE SET version = excluded.version,
                         header = excluded.header, envelope = excluded.envelope,
                         envelope_utf8 = excluded.envelope_utf8, body = excluded.body,
                         body_utf8 = excluded.body_utf8,
                         bodystructure = excluded.bodystructure,
                         bodystructure_utf8 = excluded.bodystructure_utf8",
                    &[
                        &blob.0,
                        &i64::from(f.version),
                        &f.header,
                        &f.envelope,
                        &f.envelope_utf8,
                        &f.body,
                        &f.body_utf8,
                        &f.bodystructure,
                        &f.bodystructure_utf8,
                    ],
                )
                .await;
                match put {
                    Ok(_) => {}
                    Err(e)
                        if e.code()
                            == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
        .await;
        result.map_err(crate::error::Error::into_store)
    }

    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
    ) -> StoreResult<Vec<(Uid, Flags, ModSeq)>> {
        self.own(mailbox).await?;
        let flags = normalize_flags(flags)?;
        let c = write_tx!(self, |tx| ops_msg::store_flags_if(
            tx, mailbox, uids, op, &flags, None
        ))?;
        Ok(c.changed)
    }

    async fn store_flags_unchanged_since(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: ModSeq,
    ) -> StoreResult<ConditionalStore> {
        self.own(mailbox).await?;
        let flags = normalize_flags(flags)?;
        write_tx!(self, |tx| ops_msg::store_flags_if(
            tx,
            mailbox,
            uids,
            op,
            &flags,
            Some(unchanged_since)
        ))
    }

    async fn expunged_since(&self, mailbox: MailboxId, modseq: ModSeq) -> StoreResult<Vec<Uid>> {
        self.own(mailbox).await?;
        read!(self, |c| reads::expunged_since(c, mailbox, modseq))
    }

    async fn vanished_since(
        &self,
        mailbox: MailboxId,
        modseq: ModSeq,
    ) -> StoreResult<Option<Vec<Uid>>> {
        self.own(mailbox).await?;
        snapshot!(self, |t| crate::expunge_log::vanished_since(
            t, mailbox, modseq
        ))
    }

    async fn prune_expunge_log(
        &self,
        limits: store::ExpungeLogLimits,
        now: UnixTime,
    ) -> StoreResult<u64> {
        let mailboxes = read!(self, |c| crate::expunge_log::mailboxes_with_rows(c))?;
        let mut dropped = 0;
        // One transaction per mailbox: short ones, that do not hold up the writers.
        for mailbox in mailboxes {
            dropped += write_tx!(self, |tx| crate::expunge_log::prune_mailbox(
                tx, mailbox, limits, now
            ))?;
        }
        Ok(dropped)
    }

    async fn copy_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> StoreResult<Vec<(Uid, Uid)>> {
        self.own_both(from, to).await?;
        write_tx!(self, |tx| ops_msg::copy(tx, from, uids, to))
    }

    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> StoreResult<Vec<Uid>> {
        self.own(mailbox).await?;
        write_tx!(self, |tx| ops_msg::expunge(tx, mailbox, uids))
    }

    async fn expunge_deleted(
        &self,
        mailbox: MailboxId,
        uids: Option<&[Uid]>,
    ) -> StoreResult<Vec<Uid>> {
        self.own(mailbox).await?;
        write_tx!(self, |tx| ops_msg::expunge_deleted(tx, mailbox, uids))
    }

    async fn count_messages(
        &self,
        mailbox: MailboxId,
        above: Uid,
        flag: Option<store::SystemFlags>,
    ) -> StoreResult<u32> {
        self.own(mailbox).await?;
        read!(self, |c| reads::count_messages(c, mailbox, above, flag))
    }

    async fn urlauth_key(&self, mailbox: MailboxId, fresh: &[u8]) -> StoreResult<Vec<u8>> {
        self.own(mailbox).await?;
        write_tx!(self, |tx| crate::ops_urlauth::key_or_insert(
            tx, mailbox, fresh
        ))
    }

    async fn find_urlauth_key(&self, mailbox: MailboxId) -> StoreResult<Option<Vec<u8>>> {
        self.own(mailbox).await?;
        read!(self, |c| reads::urlauth_key(c, mailbox))
    }

    async fn reset_urlauth_keys(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> StoreResult<()> {
        write_tx!(self, |tx| crate::ops_urlauth::reset(tx, account, mailbox))
    }

    async fn append_many(
        &self,
        mailbox: MailboxId,
        messages: Vec<store::AppendMessage>,
    ) -> StoreResult<Vec<Stored>> {
        self.own(mailbox).await?;
        // Bad keywords fail before anything is written.
        let mut prepared = Vec::with_capacity(messages.len());
        for m in &messages {
            prepared.push((hash_of(&m.bytes), normalize_flags(&m.flags)?));
        }
        let items: Vec<BatchItem<'_>> = messages
            .iter()
            .zip(&prepared)
            .map(|(m, (hash, flags))| BatchItem {
                blob: NewBlob {
                    hash,
                    bytes: &m.bytes,
                },
                flags,
                internal_date: m.internal_date,
            })
            .collect();
        write_tx!(self, |tx| batch::append_many(tx, mailbox, &items))
    }

    async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> StoreResult<Vec<(Uid, Uid)>> {
        self.own_both(from, to).await?;
        write_tx!(self, |tx| batch::move_messages(tx, from, uids, to))
    }

    async fn claim_recent(&self, mailbox: MailboxId, up_to: Uid) -> StoreResult<Uid> {
        self.own(mailbox).await?;
        write_tx!(self, |tx| coord::claim_recent(tx, mailbox, up_to))
    }

    async fn recent_mark(&self, mailbox: MailboxId) -> StoreResult<Uid> {
        self.own(mailbox).await?;
        read!(self, |c| coord::recent_mark(c, mailbox))
    }

    async fn subscribe(&self, account: AccountId) -> StoreResult<store::ChangeFeed> {
        // Subscribed before the head is read: a batch committed in between is delivered by
        // this node's publish or found by the fill a wake-up asks for.
        let (feed, started) = self.hub.join(account);
        if started {
            return Ok(feed);
        }
        let head = read!(self, |c| crate::change_log::head(c, account))?;
        self.hub.start_at(account, head);
        Ok(feed)
    }

    async fn release_cache_memory(&self) {
        self.owners.forget();
    }

    async fn check(&self, _orphan_grace: std::time::Duration) -> StoreResult<store::CheckReport> {
        snapshot!(self, |t| crate::check::run(t))
    }
}

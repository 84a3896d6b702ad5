//! The trait implementations: thin async glue that routes reads to the reader pool, writes to
//! the writer thread, and blob writes to the blocking pool before their metadata request.

use std::sync::Arc;

use async_trait::async_trait;
use std::time::Duration;

use store::{
    AccountId, AppendMessage, BlobId, BlobReader, ChangeFeed, ConditionalStore, Coordination,
    FlagOp, Flags, MailStore, MailboxId, MailboxInfo, MessageBody, MessageFacts, MessageMeta,
    MessageSummary, ModSeq, OpenedMailbox, Quota, StoreError, StoreResult, Stored, Uid, UnixTime,
};

use crate::blobs::{hash_of, is_valid_hash};
use crate::bodies;
use crate::db::{io_err, normalize_keywords};
use crate::ops_msg::NewBlob;
use crate::{
    SqliteStore, change_log, ops_coord, ops_facts, ops_mailbox, ops_msg, ops_urlauth, reads,
};

/// Reads of at most this many rows by primary key run on the calling thread (`readers.rs`).
const INLINE_ROWS: usize = 256;

/// Blob files at most this large are read on the calling thread (one `read` of cached pages).
const INLINE_BLOB: u64 = 128 * 1024;

impl SqliteStore {
    /// Writes a large body durably to the blob directory (in parallel with other writers,
    /// outside the writer thread); returns its hash. Blob before metadata: a crash after this
    /// leaves only an orphan file, swept at the next open.
    pub(crate) async fn write_blob(&self, message: &Arc<Vec<u8>>) -> StoreResult<String> {
        // A small body goes into the metadata transaction (`bodies.rs`): only its hash here.
        if bodies::is_inline(message.len() as u64) {
            return Ok(hash_of(message));
        }
        let blobs = Arc::clone(&self.blobs);
        let bytes = Arc::clone(message);
        tokio::task::spawn_blocking(move || blobs.store(&bytes))
            .await
            .map_err(|e| StoreError::Temporary(format!("blob task failed: {e}")))?
            .map_err(|e| io_err("writing blob", e))
    }
}

impl SqliteStore {
    /// `NotFound` unless `mailbox` is its account's (see `store::MailStore`): from the owner
    /// cache, else one read by primary key.
    pub(crate) async fn own(&self, mailbox: MailboxId) -> StoreResult<()> {
        self.owners
            .verify(mailbox, |n| {
                self.readers
                    .read_inline(move |c| reads::mailbox_owner(c, n))
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
impl MailStore for SqliteStore {
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
        let hash = self.write_blob(&message).await?;
        self.writer
            .run(move |tx| {
                let blob = NewBlob {
                    hash: &hash,
                    bytes: &message,
                };
                ops_msg::deliver(tx, &blob, internal_date, &accounts)
            })
            .await
    }

    async fn append(
        &self,
        mailbox: MailboxId,
        message: Arc<Vec<u8>>,
        flags: &Flags,
        internal_date: UnixTime,
    ) -> StoreResult<Stored> {
        self.own(mailbox).await?;
        let flags = Flags {
            system: flags.system,
            keywords: normalize_keywords(&flags.keywords)?,
        };
        let hash = self.write_blob(&message).await?;
        self.writer
            .run(move |tx| {
                let blob = NewBlob {
                    hash: &hash,
                    bytes: &message,
                };
                ops_msg::append(tx, mailbox, &blob, &flags, internal_date)
            })
            .await
    }

    async fn append_claiming_recent(
        &self,
        mailbox: MailboxId,
        message: Arc<Vec<u8>>,
        flags: &Flags,
        internal_date: UnixTime,
    ) -> StoreResult<(Stored, Uid)> {
        self.own(mailbox).await?;
        let flags = Flags {
            system: flags.system,
            keywords: normalize_keywords(&flags.keywords)?,
        };
        let hash = self.write_blob(&message).await?;
        // One job: the claim commits with the message (and is as durable), instead of a
        // second trip through the writer once the session sees its own message.
        self.writer
            .run(move |tx| {
                let blob = NewBlob {
                    hash: &hash,
                    bytes: &message,
                };
                let stored = ops_msg::append(tx, mailbox, &blob, &flags, internal_date)?;
                let before = ops_coord::claim_recent(tx, mailbox, stored.uid)?;
                Ok((stored, before))
            })
            .await
    }

    async fn append_many(
        &self,
        mailbox: MailboxId,
        messages: Vec<AppendMessage>,
    ) -> StoreResult<Vec<Stored>> {
        self.own(mailbox).await?;
        // Bad keywords fail before any body is written.
        let mut items = Vec::with_capacity(messages.len());
        for m in messages {
            let flags = Flags {
                system: m.flags.system,
                keywords: normalize_keywords(&m.flags.keywords)?,
            };
            items.push((m.bytes, flags, m.internal_date));
        }
        // Every body durably on disk before the one metadata transaction (one hand-off to the
        // blocking pool for all of them).
        let blobs = Arc::clone(&self.blobs);
        let texts: Vec<Arc<Vec<u8>>> = items.iter().map(|i| Arc::clone(&i.0)).collect();
        let hashes = tokio::task::spawn_blocking(move || {
            let refs: Vec<&[u8]> = texts.iter().map(|b| b.as_slice()).collect();
            bodies::prepare_many(&blobs, &refs)
        })
        .await
        .map_err(|e| StoreError::Temporary(format!("blob task failed: {e}")))?
        .map_err(|e| io_err("writing blob", e))?;
        self.writer
            .run(move |tx| {
                let batch: Vec<_> = items
                    .iter()
                    .zip(&hashes)
                    .map(|((bytes, flags, date), hash)| {
                        (
                            NewBlob {
                                hash,
                                bytes: bytes.as_slice(),
                            },
                            flags.clone(),
                            *date,
                        )
                    })
                    .collect();
                ops_msg::append_many(tx, mailbox, &batch)
            })
            .await
    }

    async fn quota(&self, account: AccountId) -> StoreResult<Quota> {
        let defaults = self.quota_defaults();
        self.readers
            .read_inline(move |c| reads::quota(c, &defaults, account))
            .await
    }

    async fn list_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxInfo>> {
        self.readers
            .read(move |c| reads::list_mailboxes(c, account, true))
            .await
    }

    async fn lookup_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxInfo>> {
        self.readers
            .read(move |c| reads::list_mailboxes(c, account, false))
            .await
    }

    async fn find_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> StoreResult<Option<MailboxInfo>> {
        let name = name.to_string();
        self.readers
            .read(move |c| reads::find_mailbox(c, account, &name, true))
            .await
    }

    async fn lookup_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> StoreResult<Option<MailboxInfo>> {
        let name = name.to_string();
        let found = self
            .readers
            .read_inline(move |c| reads::find_mailbox(c, account, &name, false))
            .await?;
        if let Some(m) = &found {
            self.owners.learn(m.id);
        }
        Ok(found)
    }

    async fn mailbox(&self, mailbox: MailboxId) -> StoreResult<MailboxInfo> {
        self.own(mailbox).await?;
        self.readers.read(move |c| reads::mailbox(c, mailbox)).await
    }

    async fn create_mailbox(&self, account: AccountId, name: &str) -> StoreResult<MailboxInfo> {
        let name = name.to_string();
        let id = self
            .writer
            .run(move |tx| ops_mailbox::create(tx, account, &name))
            .await?;
        self.owners.learn(id);
        self.mailbox(id).await
    }

    async fn delete_mailbox(&self, mailbox: MailboxId) -> StoreResult<()> {
        self.own(mailbox).await?;
        self.writer
            .run(move |tx| ops_mailbox::delete(tx, mailbox))
            .await
    }

    async fn rename_mailbox(&self, mailbox: MailboxId, new_name: &str) -> StoreResult<()> {
        self.own(mailbox).await?;
        let new_name = new_name.to_string();
        self.writer
            .run(move |tx| ops_mailbox::rename(tx, mailbox, &new_name))
            .await
    }

    async fn set_subscribed(
        &self,
        account: AccountId,
        name: &str,
        subscribed: bool,
    ) -> StoreResult<()> {
        let name = name.to_string();
        self.writer
            .run(move |tx| ops_mailbox::set_subscribed(tx, account, &name, subscribed))
            .await
    }

    async fn list_subscriptions(&self, account: AccountId) -> StoreResult<Vec<String>> {
        self.readers
            .read(move |c| reads::list_subscriptions(c, account))
            .await
    }

    async fn list_messages(&self, mailbox: MailboxId) -> StoreResult<Vec<MessageMeta>> {
        self.own(mailbox).await?;
        self.readers
            .read(move |c| reads::list_messages(c, mailbox))
            .await
    }

    async fn open_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> StoreResult<Option<OpenedMailbox>> {
        let name = name.to_string();
        let opened = self
            .readers
            .read(move |c| reads::open_mailbox(c, account, &name))
            .await?;
        if let Some(o) = &opened {
            self.owners.learn(o.info.id);
        }
        Ok(opened)
    }

    async fn list_summaries(&self, mailbox: MailboxId) -> StoreResult<Vec<MessageSummary>> {
        self.own(mailbox).await?;
        self.readers
            .read(move |c| reads::list_summaries(c, mailbox))
            .await
    }

    async fn get_messages(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
    ) -> StoreResult<Vec<MessageMeta>> {
        self.own(mailbox).await?;
        let uids = uids.to_vec();
        self.readers
            .read(move |c| reads::get_messages(c, mailbox, &uids))
            .await
    }

    async fn open_blob(&self, blob: &BlobId) -> StoreResult<BlobReader> {
        // Checked before touching the file system: a blob id is never a path.
        if !is_valid_hash(&blob.0) {
            return Err(StoreError::NotFound(format!("blob {blob}")));
        }
        // Small bodies (most mail) are in the database (`bodies.rs`): one read on the calling
        // thread, before a file open that would cost a hand-off to the blocking pool and fail.
        let hash = blob.0.clone();
        if let Some(body) = self
            .readers
            .read_inline(move |c| bodies::get(c, &hash))
            .await?
        {
            return Ok(Box::new(std::io::Cursor::new(body)));
        }
        match tokio::fs::File::open(self.blobs.path(&blob.0)).await {
            Ok(f) => Ok(Box::new(f)),
            // The last message using it was expunged (and the file unlinked) meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::Expunged),
            Err(e) => Err(io_err("opening blob", e)),
        }
    }

    async fn read_blob(&self, blob: &BlobId, size_hint: u64) -> StoreResult<Vec<u8>> {
        // Checked before touching the file system: a blob id is never a path.
        if !is_valid_hash(&blob.0) {
            return Err(StoreError::NotFound(format!("blob {blob}")));
        }
        // A small body is normally in the database (`bodies.rs`); older stores have files.
        if bodies::is_inline(size_hint) {
            let hash = blob.0.clone();
            if let Some(body) = self
                .readers
                .read_inline(move |c| bodies::get(c, &hash))
                .await?
            {
                return Ok(body);
            }
        }
        let path = self.blobs.path(&blob.0);
        // A small file is read on the calling thread (see `readers.rs` on short reads); a
        // large one with one thread hand-off for open + read (tokio::fs takes one per call and
        // per chunk).
        let read = if size_hint <= INLINE_BLOB {
            std::fs::read(path)
        } else {
            match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
                Ok(r) => r,
                Err(e) => return Err(StoreError::Temporary(format!("blob read task failed: {e}"))),
            }
        };
        match read {
            Ok(data) => Ok(data),
            // The last message using it was expunged (and the file unlinked) meanwhile, or a
            // size hint that did not say "small" for a body in the database.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if bodies::is_inline(size_hint) {
                    return Err(StoreError::Expunged);
                }
                let hash = blob.0.clone();
                self.readers
                    .read_inline(move |c| bodies::get(c, &hash))
                    .await?
                    .ok_or(StoreError::Expunged)
            }
            Err(e) => Err(io_err("reading blob", e)),
        }
    }

    async fn read_message(&self, mailbox: MailboxId, uid: Uid) -> StoreResult<Option<Vec<u8>>> {
        self.own(mailbox).await?;
        // Lookup and file read in one hand-off to the blocking pool.
        let blobs = Arc::clone(&self.blobs);
        self.readers
            .read(move |c| {
                let Some(hash) = reads::blob_of(c, mailbox, uid)? else {
                    return Ok(None);
                };
                if let Some(body) = bodies::get(c, &hash)? {
                    return Ok(Some(body));
                }
                match std::fs::read(blobs.path(&hash)) {
                    Ok(data) => Ok(Some(data)),
                    // Expunged (and its blob unlinked) since the lookup.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(io_err("reading blob", e)),
                }
            })
            .await
    }

    async fn message_bodies(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        version: u32,
    ) -> StoreResult<Vec<MessageBody>> {
        self.own(mailbox).await?;
        let uids_len = uids.len();
        let uids = uids.to_vec();
        let cache = Arc::clone(&self.facts);
        let read = move |c: &rusqlite::Connection| {
            reads::message_bodies(c, mailbox, &uids, version, &cache)
        };
        // A FETCH batch is a few dozen rows by primary key; longer lists go to the pool.
        if uids_len <= INLINE_ROWS {
            self.readers.read_inline(read).await
        } else {
            self.readers.read(read).await
        }
    }

    async fn put_message_facts(&self, facts: Vec<(BlobId, MessageFacts)>) -> StoreResult<()> {
        if facts.is_empty() {
            return Ok(());
        }
        for (blob, f) in &facts {
            self.facts.put(&blob.0, Arc::new(f.clone()));
        }
        self.writer.run(move |tx| ops_facts::put(tx, &facts)).await
    }

    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
    ) -> StoreResult<Vec<(Uid, Flags, ModSeq)>> {
        self.own(mailbox).await?;
        let flags = Flags {
            system: flags.system,
            keywords: normalize_keywords(&flags.keywords)?,
        };
        let uids = uids.to_vec();
        self.writer
            .run(move |tx| ops_msg::store_flags(tx, mailbox, &uids, op, &flags))
            .await
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
        let flags = Flags {
            system: flags.system,
            keywords: normalize_keywords(&flags.keywords)?,
        };
        let uids = uids.to_vec();
        self.writer
            .run(move |tx| {
                ops_msg::store_flags_if(tx, mailbox, &uids, op, &flags, Some(unchanged_since))
            })
            .await
    }

    async fn expunged_since(&self, mailbox: MailboxId, modseq: ModSeq) -> StoreResult<Vec<Uid>> {
        self.own(mailbox).await?;
        self.readers
            .read(move |c| reads::expunged_since(c, mailbox, modseq))
            .await
    }

    async fn vanished_since(
        &self,
        mailbox: MailboxId,
        modseq: ModSeq,
    ) -> StoreResult<Option<Vec<Uid>>> {
        self.own(mailbox).await?;
        self.readers
            .read(move |c| crate::expunge_log::vanished_since(c, mailbox, modseq))
            .await
    }

    async fn prune_expunge_log(
        &self,
        limits: store::ExpungeLogLimits,
        now: UnixTime,
    ) -> StoreResult<u64> {
        let mailboxes = self
            .readers
            .read(crate::expunge_log::mailboxes_with_rows)
            .await?;
        let mut dropped = 0;
        // One write per mailbox, so other writers are not held up by a long prune.
        for mailbox in mailboxes {
            dropped += self
                .writer
                .run(move |tx| crate::expunge_log::prune_mailbox(tx, mailbox, limits, now))
                .await?;
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
        let uids = uids.to_vec();
        self.writer
            .run(move |tx| ops_msg::copy(tx, from, &uids, to))
            .await
    }

    async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> StoreResult<Vec<(Uid, Uid)>> {
        self.own_both(from, to).await?;
        let uids = uids.to_vec();
        self.writer
            .run(move |tx| ops_msg::move_messages(tx, from, &uids, to))
            .await
    }

    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> StoreResult<Vec<Uid>> {
        self.own(mailbox).await?;
        let uids = uids.to_vec();
        self.writer
            .run(move |tx| ops_msg::expunge(tx, mailbox, &uids))
            .await
    }

    async fn expunge_deleted(
        &self,
        mailbox: MailboxId,
        uids: Option<&[Uid]>,
    ) -> StoreResult<Vec<Uid>> {
        self.own(mailbox).await?;
        let uids = uids.map(<[Uid]>::to_vec);
        self.writer
            .run(move |tx| ops_msg::expunge_deleted(tx, mailbox, uids.as_deref()))
            .await
    }

    async fn count_messages(
        &self,
        mailbox: MailboxId,
        above: Uid,
        flag: Option<store::SystemFlags>,
    ) -> StoreResult<u32> {
        self.own(mailbox).await?;
        self.readers
            .read(move |c| reads::count_messages(c, mailbox, above, flag))
            .await
    }

    async fn urlauth_key(&self, mailbox: MailboxId, fresh: &[u8]) -> StoreResult<Vec<u8>> {
        self.own(mailbox).await?;
        let fresh = fresh.to_vec();
        self.writer
            .run(move |tx| ops_urlauth::key_or_insert(tx, mailbox, &fresh))
            .await
    }

    async fn find_urlauth_key(&self, mailbox: MailboxId) -> StoreResult<Option<Vec<u8>>> {
        self.own(mailbox).await?;
        self.readers
            .read(move |c| ops_urlauth::find(c, mailbox))
            .await
    }

    async fn reset_urlauth_keys(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> StoreResult<()> {
        // Scoped by `account` in the statement itself: another account's mailbox is left
        // alone (nothing of this account's to forget).
        self.writer
            .run(move |tx| ops_urlauth::reset(tx, account, mailbox))
            .await
    }

    async fn claim_recent(&self, mailbox: MailboxId, up_to: Uid) -> StoreResult<Uid> {
        self.own(mailbox).await?;
        self.writer
            .run_lazy(move |tx| ops_coord::claim_recent(tx, mailbox, up_to))
            .await
    }

    async fn recent_mark(&self, mailbox: MailboxId) -> StoreResult<Uid> {
        self.own(mailbox).await?;
        self.readers
            .read_inline(move |c| ops_coord::recent_mark(c, mailbox))
            .await
    }

    async fn subscribe(&self, account: AccountId) -> StoreResult<ChangeFeed> {
        // Subscribed before the head is read: a batch committed in between is delivered by
        // the writer or found by the fill `start_at` asks for.
        let (feed, started) = self.hub.join(account);
        if started {
            return Ok(feed);
        }
        let head = self
            .readers
            .read_inline(move |c| change_log::head(c, account))
            .await?;
        self.hub.start_at(account, head);
        Ok(feed)
    }

    async fn release_cache_memory(&self) {
        self.owners.forget();
        self.blobs.forget_durable();
        self.readers.release_memory();
        // The writer's cache is freed on its own thread, between two of its transactions.
        let _ = self
            .writer
            .run_lazy(|tx| {
                let _ = tx.conn.release_memory();
                Ok(())
            })
            .await;
    }

    async fn check(&self, orphan_grace: std::time::Duration) -> StoreResult<store::CheckReport> {
        let blobs = Arc::clone(&self.blobs);
        self.readers
            .read(move |c| crate::check::run(c, &blobs, orphan_grace))
            .await
    }
}

#[async_trait]
impl Coordination for SqliteStore {
    async fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<()> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer
            .run(move |tx| ops_coord::acquire(tx, &name, &holder, ttl))
            .await
    }

    async fn renew_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer
            .run(move |tx| ops_coord::renew(tx, &name, &holder, ttl))
            .await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.writer
            .run(move |tx| ops_coord::release(tx, &name, &holder))
            .await
    }

    async fn shared_secret(&self, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>> {
        let (name, fresh) = (name.to_string(), fresh.to_vec());
        self.writer
            .run(move |tx| ops_coord::secret(tx, &name, &fresh))
            .await
    }
}

//! Mailboxes, messages and message bodies of one account.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::AsyncRead;

use crate::{
    AccountId, AppendMessage, BlobId, ChangeFeed, CheckReport, FlagOp, Flags, MailboxId,
    MailboxInfo, MessageBody, MessageFacts, MessageMeta, MessageSummary, ModSeq, Quota,
    StoreResult, Stored, Uid, UnixTime,
};

/// A stream of a stored message's bytes, read from disk as the protocol sends it.
pub type BlobReader = Box<dyn AsyncRead + Send + Unpin>;

/// A mailbox as IMAP SELECT opens it, from one snapshot (see [`MailStore::open_mailbox`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedMailbox {
    pub info: MailboxInfo,
    /// The UID and flags of every message, in UID order.
    pub messages: Vec<(Uid, Flags)>,
}

/// What [`MailStore::store_flags_unchanged_since`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConditionalStore {
    /// The new state of each message that changed.
    pub changed: Vec<(Uid, Flags, ModSeq)>,
    /// The UIDs (ascending) that failed the UNCHANGEDSINCE test and were left alone.
    pub failed: Vec<Uid>,
}

/// How much of the expunge log a store keeps ([`MailStore::prune_expunge_log`]): the log
/// lets a QRESYNC client learn exactly which of its messages went (RFC 7162 §3.2.5), but
/// without a bound it grows with every message ever expunged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpungeLogLimits {
    /// Rows kept per mailbox, the newest (by MODSEQ); 0: no count limit.
    pub max_per_mailbox: u64,
    /// Rows older than this many seconds go; 0: no age limit.
    pub max_age_secs: u64,
}

impl Default for ExpungeLogLimits {
    /// 10,000 rows per mailbox, 180 days: a client offline for half a year, or one whose
    /// mailbox saw 10,000 expunges since, gets a full resync instead.
    fn default() -> Self {
        ExpungeLogLimits {
            max_per_mailbox: 10_000,
            max_age_secs: 180 * 86_400,
        }
    }
}

/// Every call on a mailbox or its messages is scoped to an account: the [`MailboxId`] names
/// it, and a backend answers `NotFound` (and changes nothing) when the mailbox is not that
/// account's — also for the destination of COPY and MOVE, which must be the source's
/// account's.
#[async_trait]
pub trait MailStore: Send + Sync {
    // --- delivery --------------------------------------------------------------------------

    /// Stores `message` once and files it in the INBOX of every account in `recipients`
    /// (duplicates ignored), all in one durable transaction. New messages carry no flags
    /// (they are unseen, RFC 9051 §2.3.2). Returns one `Stored` per distinct account.
    async fn deliver(
        &self,
        message: Arc<Vec<u8>>,
        internal_date: UnixTime,
        recipients: &[AccountId],
    ) -> StoreResult<Vec<Stored>>;

    /// Stores `message` in one mailbox with the given flags (IMAP APPEND).
    async fn append(
        &self,
        mailbox: MailboxId,
        message: Arc<Vec<u8>>,
        flags: &Flags,
        internal_date: UnixTime,
    ) -> StoreResult<Stored>;

    /// [`append`](Self::append) for a session that has `mailbox` selected and claims
    /// `\Recent` (RFC 3501 §2.3.2): it will tell its client of the new message at the end of
    /// the command, so it is the first session notified. Also raises the mailbox's recent mark
    /// to the new UID as [`claim_recent`](Self::claim_recent) does, and returns the mark as it
    /// was: UIDs `mark+1..=uid` are recent for the caller. Backends do both in the append's
    /// transaction (one write per APPEND instead of two); this default makes two calls, which
    /// is correct too, since only the claim decides who gets `\Recent`.
    async fn append_claiming_recent(
        &self,
        mailbox: MailboxId,
        message: Arc<Vec<u8>>,
        flags: &Flags,
        internal_date: UnixTime,
    ) -> StoreResult<(Stored, Uid)> {
        let stored = self.append(mailbox, message, flags, internal_date).await?;
        let before = self.claim_recent(mailbox, stored.uid).await?;
        Ok((stored, before))
    }

    /// Stores several messages in one mailbox, all or nothing, in ONE transaction (RFC 3502
    /// MULTIAPPEND): on any failure (quota, a bad keyword, the UID space) no message is
    /// stored and the mailbox is as before; on success the messages have consecutive,
    /// increasing UIDs in the given order, one `Stored` each. Bodies are written before the
    /// transaction (a crash leaves at most unreferenced blobs, swept later), so no crash can
    /// leave part of the batch in the mailbox.
    async fn append_many(
        &self,
        mailbox: MailboxId,
        messages: Vec<AppendMessage>,
    ) -> StoreResult<Vec<Stored>>;

    /// The account's usage (bytes and messages, kept current by every write) and its limits
    /// resolved from its overrides and the configured defaults (RFC 9208; see `quota.rs`).
    /// One row read: cheap enough for every RCPT and every GETQUOTA.
    async fn quota(&self, account: AccountId) -> StoreResult<Quota>;

    // --- mailboxes -------------------------------------------------------------------------

    async fn list_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxInfo>>;
    /// [`list_mailboxes`](Self::list_mailboxes) without the counts: `messages`, `unseen` and
    /// `size` may be left 0. What IMAP LIST needs; backends should override it to skip
    /// counting (its cost would grow with the messages, not the mailboxes).
    async fn lookup_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxInfo>> {
        self.list_mailboxes(account).await
    }
    /// Looks up a mailbox by name; `INBOX` matches case-insensitively.
    async fn find_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> StoreResult<Option<MailboxInfo>>;
    /// [`find_mailbox`](Self::find_mailbox) without the counts: `messages`, `unseen` and
    /// `size` may be left 0. For callers that need only the id, UIDVALIDITY and UIDNEXT
    /// (IMAP SELECT, APPEND, COPY); backends should override it to skip counting.
    async fn lookup_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> StoreResult<Option<MailboxInfo>> {
        self.find_mailbox(account, name).await
    }
    /// [`lookup_mailbox`](Self::lookup_mailbox) and the UID and flags of every message, in UID
    /// order, from one snapshot — so UIDNEXT, HIGHESTMODSEQ and the messages agree: what IMAP
    /// SELECT reads (dates and sizes come later, and only if a command needs them). Backends
    /// should override it to read both in one step and no more; the default makes two calls.
    async fn open_mailbox(
        &self,
        account: AccountId,
        name: &str,
    ) -> StoreResult<Option<OpenedMailbox>> {
        let Some(info) = self.lookup_mailbox(account, name).await? else {
            return Ok(None);
        };
        let messages = self.list_summaries(info.id).await?;
        let info = MailboxInfo {
            highest_modseq: messages
                .iter()
                .map(|m| m.modseq)
                .fold(info.highest_modseq, u64::max),
            ..info
        };
        Ok(Some(OpenedMailbox {
            info,
            messages: messages.into_iter().map(|m| (m.uid, m.flags)).collect(),
        }))
    }
    async fn mailbox(&self, mailbox: MailboxId) -> StoreResult<MailboxInfo>;
    async fn create_mailbox(&self, account: AccountId, name: &str) -> StoreResult<MailboxInfo>;
    async fn delete_mailbox(&self, mailbox: MailboxId) -> StoreResult<()>;
    async fn rename_mailbox(&self, mailbox: MailboxId, new_name: &str) -> StoreResult<()>;
    /// Adds `name` to the account's subscriptions (RFC 9051 §6.3.7: the mailbox must exist
    /// then, else `NotFound`) or removes it (`NotFound` if it was not subscribed; any name,
    /// so a subscription can be dropped after its mailbox is gone). Subscriptions are names:
    /// they stay when the mailbox is deleted or renamed (RFC 9051 §6.3.7: "the server MUST
    /// NOT unilaterally remove an existing mailbox name from the subscription list"), and a
    /// mailbox created later under that name is subscribed. `MailboxInfo::subscribed` says
    /// whether a mailbox's name is in the list.
    async fn set_subscribed(
        &self,
        account: AccountId,
        name: &str,
        subscribed: bool,
    ) -> StoreResult<()>;
    /// The account's subscribed names, sorted (byte order), whether or not the mailboxes exist.
    async fn list_subscriptions(&self, account: AccountId) -> StoreResult<Vec<String>>;

    // --- messages --------------------------------------------------------------------------

    /// All messages of a mailbox in UID order (a snapshot).
    async fn list_messages(&self, mailbox: MailboxId) -> StoreResult<Vec<MessageMeta>>;
    /// Every message of a mailbox without its blob id, in UID order (a snapshot): what an IMAP
    /// session keeps in its view at SELECT. Backends should override it with a query that
    /// reads no more than that (for 100,000 messages it is on the SELECT path); the default
    /// derives it from [`list_messages`](Self::list_messages).
    async fn list_summaries(&self, mailbox: MailboxId) -> StoreResult<Vec<MessageSummary>> {
        Ok(self
            .list_messages(mailbox)
            .await?
            .into_iter()
            .map(MessageMeta::summary)
            .collect())
    }
    /// Messages whose UID is in `uids` (sorted or not), in UID order; missing UIDs are skipped.
    async fn get_messages(&self, mailbox: MailboxId, uids: &[Uid])
    -> StoreResult<Vec<MessageMeta>>;
    /// Streams a message body from the blob store.
    async fn open_blob(&self, blob: &BlobId) -> StoreResult<BlobReader>;
    /// Reads a whole message body into memory (`size_hint`: its size, for the allocation).
    /// For protocols that need the message in one piece (IMAP FETCH parses it). Backends
    /// should override it with one blocking read: the default streams through
    /// [`open_blob`](Self::open_blob), which hands off to a thread per chunk.
    async fn read_blob(&self, blob: &BlobId, size_hint: u64) -> StoreResult<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut r = self.open_blob(blob).await?;
        let mut buf = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0).min(64 << 20));
        r.read_to_end(&mut buf)
            .await
            .map_err(|e| crate::StoreError::Temporary(e.to_string()))?;
        Ok(buf)
    }
    /// The stored bytes of message `uid`, or `None` when it is not (or no longer) in the
    /// mailbox. What IMAP FETCH of a body needs when the session already knows the metadata:
    /// backends should override it to look the blob up and read it in one step; the default
    /// is [`get_messages`](Self::get_messages) then [`read_blob`](Self::read_blob).
    async fn read_message(&self, mailbox: MailboxId, uid: Uid) -> StoreResult<Option<Vec<u8>>> {
        let Some(meta) = self.get_messages(mailbox, &[uid]).await?.pop() else {
            return Ok(None);
        };
        self.read_blob(&meta.blob, meta.size).await.map(Some)
    }
    /// The blob, size and cached facts (of `version`, else `None`) of the messages `uids`
    /// (sorted or not), in UID order; missing UIDs are skipped. What IMAP FETCH of ENVELOPE,
    /// BODYSTRUCTURE, headers or sections starts from: one read for a whole batch. Backends
    /// should override it with one query; the default caches nothing.
    async fn message_bodies(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        version: u32,
    ) -> StoreResult<Vec<MessageBody>> {
        let _ = version;
        Ok(self
            .get_messages(mailbox, uids)
            .await?
            .into_iter()
            .map(|m| MessageBody {
                uid: m.uid,
                blob: m.blob,
                size: m.size,
                facts: None,
            })
            .collect())
    }
    /// Caches `facts` for the blob `blob` (replacing an entry of another version). A cache,
    /// not data: backends may drop entries at any time, need not make the write durable, and
    /// need not keep facts of a blob that no longer exists (facts are a function of the
    /// bytes: keeping them is harmless too). The default caches nothing.
    async fn put_message_facts(&self, facts: Vec<(BlobId, MessageFacts)>) -> StoreResult<()> {
        let _ = facts;
        Ok(())
    }
    /// Changes flags of the messages `uids`; returns the new state of each message that changed.
    async fn store_flags(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
    ) -> StoreResult<Vec<(Uid, Flags, ModSeq)>>;
    /// [`store_flags`](Self::store_flags) applied only to the messages whose MODSEQ is at most
    /// `unchanged_since`, tested and changed in one transaction — RFC 7162 §3.1.3 STORE
    /// UNCHANGEDSINCE. Returns the new state of each message that changed and, ascending, the
    /// UIDs that failed the test (their MODSEQ is higher) and were left alone.
    async fn store_flags_unchanged_since(
        &self,
        mailbox: MailboxId,
        uids: &[Uid],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: ModSeq,
    ) -> StoreResult<ConditionalStore>;
    /// The UIDs (ascending) expunged from `mailbox` with a MODSEQ above `modseq`, from the
    /// expunge log — what RFC 7162 §3.2.5 QRESYNC reports as `VANISHED (EARLIER)`.
    async fn expunged_since(&self, mailbox: MailboxId, modseq: ModSeq) -> StoreResult<Vec<Uid>>;
    /// [`expunged_since`](Self::expunged_since) when the expunge log still holds every expunge
    /// with a MODSEQ above `modseq`; `None` when rows it would need were pruned
    /// ([`prune_expunge_log`](Self::prune_expunge_log)). The caller must then treat every UID
    /// it cannot see as possibly expunged — RFC 7162 §3.2.5.2, §3.2.10.
    async fn vanished_since(
        &self,
        mailbox: MailboxId,
        modseq: ModSeq,
    ) -> StoreResult<Option<Vec<Uid>>>;
    /// Drops expunge-log rows beyond `limits` in every mailbox (older than `now` minus the age
    /// limit; beyond the newest `max_per_mailbox`), always whole MODSEQs, and remembers per
    /// mailbox the highest MODSEQ dropped so [`vanished_since`](Self::vanished_since) knows
    /// what is no longer covered. Returns the number of rows dropped. Idempotent; safe to run
    /// from several processes at once.
    async fn prune_expunge_log(&self, limits: ExpungeLogLimits, now: UnixTime) -> StoreResult<u64>;
    /// Copies messages to another mailbox of the same account (blobs are shared); returns
    /// (source uid, destination uid) pairs.
    async fn copy_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> StoreResult<Vec<(Uid, Uid)>>;
    /// Moves messages to another mailbox of the same account in ONE transaction (RFC 6851
    /// §3.3): copies them as [`copy_messages`](Self::copy_messages) does (new UIDs in
    /// source-UID order, flags and dates kept, blobs shared), expunges them from `from` (with
    /// expunge-log rows and one new MODSEQ there, as [`expunge`](Self::expunge)), and queues
    /// the `NewMessage` events of `to` before the `Expunged` event of `from`. Returns the
    /// (source uid, destination uid) pairs, ascending; UIDs not in `from` are skipped. A crash
    /// leaves the messages either in `from` or in `to`, never in both. Quota is not charged:
    /// the account's usage does not change, so a user over quota can still move to Trash.
    async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[Uid],
        to: MailboxId,
    ) -> StoreResult<Vec<(Uid, Uid)>>;
    /// Removes the messages `uids` for good (logged in the expunge log for QRESYNC); returns the
    /// UIDs that were actually removed.
    async fn expunge(&self, mailbox: MailboxId, uids: &[Uid]) -> StoreResult<Vec<Uid>>;
    /// Removes, among `uids` (all of the mailbox when `None`), the messages that carry
    /// `\Deleted` at that moment — tested and removed in one transaction, so a `\Deleted`
    /// another session took away a moment ago is never expunged (IMAP EXPUNGE, CLOSE, UID
    /// EXPUNGE). Returns the UIDs removed, ascending. Backends should override it; the
    /// default reads the flags, then expunges.
    async fn expunge_deleted(
        &self,
        mailbox: MailboxId,
        uids: Option<&[Uid]>,
    ) -> StoreResult<Vec<Uid>> {
        let metas = match uids {
            Some(u) => self.get_messages(mailbox, u).await?,
            None => self.list_messages(mailbox).await?,
        };
        let deleted: Vec<Uid> = metas
            .iter()
            .filter(|m| m.flags.system.contains(crate::SystemFlags::DELETED))
            .map(|m| m.uid)
            .collect();
        if deleted.is_empty() {
            return Ok(deleted);
        }
        let mut removed = self.expunge(mailbox, &deleted).await?;
        removed.sort_unstable();
        Ok(removed)
    }
    /// How many messages of `mailbox` have a UID above `above` and, when given, the system
    /// flag `flag` (IMAP STATUS RECENT and DELETED), without listing them. Backends should
    /// override it with a count; the default lists the mailbox.
    async fn count_messages(
        &self,
        mailbox: MailboxId,
        above: Uid,
        flag: Option<crate::SystemFlags>,
    ) -> StoreResult<u32> {
        let n = self
            .list_summaries(mailbox)
            .await?
            .iter()
            .filter(|m| m.uid > above && flag.is_none_or(|f| m.flags.system.contains(f)))
            .count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    // --- URLAUTH ----------------------------------------------------------------------------

    /// The mailbox access key of `mailbox` (RFC 4467 §2.2: a secret per user and mailbox that
    /// authorizes URLAUTH URLs). When none is stored, `fresh` (random bytes the caller drew)
    /// is stored and returned; an existing key is never replaced here. `NotFound` without
    /// the mailbox.
    async fn urlauth_key(&self, mailbox: MailboxId, fresh: &[u8]) -> StoreResult<Vec<u8>>;
    /// The stored access key of `mailbox`, if any (URL validation never creates one).
    async fn find_urlauth_key(&self, mailbox: MailboxId) -> StoreResult<Option<Vec<u8>>>;
    /// RFC 4467 §7 RESETKEY: forgets the key of `mailbox`, or every key of `account` when
    /// `mailbox` is `None`, revoking the URLs authorized with them. Keys also go with their
    /// mailbox (DELETE) and account.
    async fn reset_urlauth_keys(
        &self,
        account: AccountId,
        mailbox: Option<MailboxId>,
    ) -> StoreResult<()>;

    // --- sessions --------------------------------------------------------------------------

    /// RFC 3501 §2.3.2: a message is `\Recent` in exactly one session, the first to be told
    /// of it. Raises the mailbox's recent mark (the highest UID any session has claimed) to
    /// `up_to` if it is lower, in one atomic step shared by every process and node, and
    /// returns the mark as it was: UIDs `mark+1..=up_to` are recent for the caller, the
    /// others were another session's. The mark only grows (a lower `up_to` changes nothing).
    /// `NotFound` without the mailbox.
    async fn claim_recent(&self, mailbox: MailboxId, up_to: Uid) -> StoreResult<Uid>;
    /// The recent mark without claiming (EXAMINE and STATUS must not take `\Recent` away,
    /// RFC 3501 §6.3.2). `NotFound` without the mailbox.
    async fn recent_mark(&self, mailbox: MailboxId) -> StoreResult<Uid>;

    /// The account's change events from now on, whoever commits them: this process, another
    /// process on the same store (the admin CLI), another node. Call it before reading what
    /// the session will show, so no change falls between the read and the feed. A subscriber
    /// that falls behind gets [`crate::RecvError::Resync`] and must reread from the store;
    /// [`crate::RecvError::Closed`] after [`crate::Change::AccountDeleted`].
    async fn subscribe(&self, account: AccountId) -> StoreResult<ChangeFeed>;

    // --- memory ----------------------------------------------------------------------------

    /// Gives back memory that the backend's caches hold and refill on demand (SQLite's page
    /// cache), so the process returns toward its baseline after many clients have left
    /// (`yubin::memory`). Nothing acknowledged is affected; the next reads refill the cache.
    async fn release_cache_memory(&self) {}

    // --- verification ----------------------------------------------------------------------

    /// Verifies the whole store's invariants without changing anything (`yubin check`; see
    /// `check.rs` for the list). Safe beside running servers: unreferenced bodies younger than
    /// `orphan_grace` are not reported. `Err` only when the store cannot be read.
    async fn check(&self, orphan_grace: std::time::Duration) -> StoreResult<CheckReport>;
}

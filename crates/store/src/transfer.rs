//! Moving an installation between backends (`yubin migrate`): everything a client or the
//! queue depends on is copied as it is — UIDVALIDITY, UIDs, MODSEQs, flags, internal and save dates, first POP3 retrievals,
//! the expunge log (so QRESYNC clients resync incrementally), password hashes, SCRAM
//! credentials, the users' POP3 retention choices, subscriptions, queued messages with their
//! retry state, DKIM signing keys with their creation times (so the same key keeps signing),
//! the bans in force (so an attacker banned before the move stays banned) — so clients
//! download nothing again (RFC 9051 §2.3.1.1: a mailbox whose UIDVALIDITY and UIDs stay the same is the
//! same mailbox to a client's cache).
//!
//! Each backend implements [`Transfer`] (export from a store, import into an empty one); the
//! copy itself is backend-independent ([`copy_store`]), so any backend migrates to any other.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use mail_types::{Address, Domain};

use crate::{
    AccountId, Alias, BlobId, DkimKey, Flags, LoginGuardStore, MailboxId, ModSeq, QueueStore,
    QueuedMessage, SpecialUse, Store, StoreError, StoreResult, Uid, UnixTime,
};

/// An account with its credentials, as stored (hashes are copied, never re-derived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The id in the source store (the target assigns its own).
    pub id: AccountId,
    pub address: Address,
    pub password_hash: String,
    pub scram: Option<String>,
    pub quota_limit: Option<u64>,
    /// The account's message-count limit override (RFC 9208 MESSAGE).
    pub message_limit: Option<u64>,
    pub created_at: UnixTime,
}

/// Domains, accounts, aliases and subscriptions of a whole store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryRecords {
    pub domains: Vec<Domain>,
    pub accounts: Vec<AccountRecord>,
    pub aliases: Vec<Alias>,
    /// (source account id, subscribed name).
    pub subscriptions: Vec<(AccountId, String)>,
}

/// A mailbox with its IMAP identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxRecord {
    /// The id in the source store.
    pub id: MailboxId,
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: Uid,
    pub highest_modseq: ModSeq,
    pub special_use: Option<SpecialUse>,
    /// The highest MODSEQ pruned from the expunge log ([`crate::ExpungeLogLimits`]): the
    /// copy must not claim to know expunges the source forgot.
    pub expunge_floor: ModSeq,
}

/// A message of a mailbox, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub uid: Uid,
    pub blob: BlobId,
    pub size: u64,
    pub internal_date: UnixTime,
    pub flags: Flags,
    pub modseq: ModSeq,
    /// When it entered the mailbox (RFC 8514); `None` when not recorded.
    pub save_date: Option<UnixTime>,
    /// Its first POP3 RETR, which retention's "leave a copy for N days" counts from.
    pub retrieved_at: Option<UnixTime>,
}

/// An entry of a mailbox's expunge log (RFC 7162 §3.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpungedRecord {
    pub uid: Uid,
    pub modseq: ModSeq,
}

/// Export from a store and import into an empty one. Imports keep the given identities
/// (UIDVALIDITY, UIDs, MODSEQs); each call is one durable transaction.
#[async_trait]
pub trait Transfer: Send + Sync {
    async fn export_directory(&self) -> StoreResult<DirectoryRecords>;
    async fn export_mailboxes(&self, account: AccountId) -> StoreResult<Vec<MailboxRecord>>;
    /// Messages with a UID above `after`, ascending, at most `limit`.
    async fn export_messages(
        &self,
        mailbox: MailboxId,
        after: Uid,
        limit: usize,
    ) -> StoreResult<Vec<MessageRecord>>;
    async fn export_expunged(&self, mailbox: MailboxId) -> StoreResult<Vec<ExpungedRecord>>;

    /// No domain, account or queued message: what an import target must be.
    async fn is_empty(&self) -> StoreResult<bool>;
    /// Creates the domains, the accounts (no default mailboxes: they come with the
    /// mailboxes), the aliases and the subscriptions. Returns (source id, new id) per account.
    async fn import_directory(
        &self,
        records: &DirectoryRecords,
    ) -> StoreResult<Vec<(AccountId, AccountId)>>;
    /// Creates a mailbox with the record's name, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and
    /// special use; returns its id. Later mailboxes get UIDVALIDITYs above every imported one.
    async fn import_mailbox(
        &self,
        account: AccountId,
        record: &MailboxRecord,
    ) -> StoreResult<MailboxId>;
    /// Files messages with their UIDs, flags, MODSEQs and dates (the bytes' hash must be the
    /// record's blob id); quota usage grows accordingly.
    async fn import_messages(
        &self,
        mailbox: MailboxId,
        messages: Vec<(MessageRecord, Arc<Vec<u8>>)>,
    ) -> StoreResult<()>;
    async fn import_expunged(
        &self,
        mailbox: MailboxId,
        records: &[ExpungedRecord],
    ) -> StoreResult<()>;
    /// Queues a message with its recipients' state (status, attempts, next attempt, last
    /// error) and its age; the id may differ.
    async fn import_queued(&self, message: &QueuedMessage, body: Arc<Vec<u8>>) -> StoreResult<()>;
}

/// Everything `yubin migrate` needs of a backend.
pub trait TransferStore: Store + QueueStore + Transfer + LoginGuardStore {}
impl<T: Store + QueueStore + Transfer + LoginGuardStore> TransferStore for T {}

/// What [`copy_store`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub domains: usize,
    pub accounts: usize,
    pub aliases: usize,
    pub mailboxes: usize,
    pub messages: usize,
    pub bytes: u64,
    pub queued: usize,
    pub dkim_keys: usize,
    /// Bans in force, copied with their end, start and reason. Failure counters and
    /// greylisting's remembered triples are not copied: both are short-lived and rebuild
    /// themselves (a sender greylisted again retries once).
    pub bans: usize,
}

/// Copies every DKIM key, oldest first (so keys of one second keep their order, and with it
/// which one signs). The target may hold keys already (`yubin dkim generate` run against it
/// before the migration, or key files imported into it): a key it has with the same private
/// key is skipped; a different key under the same domain and selector stops the copy before
/// anything is written, as either key's DNS record may be the one published.
async fn copy_dkim_keys(from: &dyn TransferStore, to: &dyn TransferStore) -> StoreResult<usize> {
    let keys = from.dkim_keys(None).await?;
    let present: HashMap<(String, String), DkimKey> = to
        .dkim_keys(None)
        .await?
        .into_iter()
        .map(|k| ((k.domain.clone(), k.selector.clone()), k))
        .collect();
    let mut missing = Vec::new();
    for key in keys {
        match present.get(&(key.domain.clone(), key.selector.clone())) {
            Some(there) if there.private_key_pem == key.private_key_pem => {}
            Some(_) => {
                return Err(StoreError::Invalid(format!(
                    "the target store has a different DKIM key for {} selector {}",
                    key.domain, key.selector
                )));
            }
            None => missing.push(key),
        }
    }
    for key in &missing {
        to.add_dkim_key(key).await?;
    }
    Ok(missing.len())
}

/// Messages read and written per transaction.
const PAGE: usize = 200;

/// Copies the whole of `from` into `to`, which must be empty. `progress` hears each account
/// as it is done. `from` must not change meanwhile (the server is stopped).
pub async fn copy_store(
    from: &dyn TransferStore,
    to: &dyn TransferStore,
    progress: &mut (dyn FnMut(&str, &CopyReport) + Send),
) -> StoreResult<CopyReport> {
    if !to.is_empty().await? {
        return Err(StoreError::Invalid(
            "the target store is not empty (it has domains, accounts or queued mail)".into(),
        ));
    }
    let mut report = CopyReport {
        dkim_keys: copy_dkim_keys(from, to).await?,
        ..CopyReport::default()
    };
    let dir = from.export_directory().await?;
    let ids: HashMap<AccountId, AccountId> = to.import_directory(&dir).await?.into_iter().collect();
    // The users' own POP3 retention choices (account pages) go with their accounts.
    for (address, choice) in from.pop3_expire_choices().await? {
        to.set_pop3_expire(&address, Some(choice)).await?;
    }
    report.domains = dir.domains.len();
    report.aliases = dir.aliases.len();
    for account in &dir.accounts {
        let new_account = *ids.get(&account.id).ok_or_else(|| {
            StoreError::Temporary(format!("{} was not imported", account.address))
        })?;
        for mailbox in from.export_mailboxes(account.id).await? {
            let new_mailbox = to.import_mailbox(new_account, &mailbox).await?;
            report.mailboxes += 1;
            let mut after = 0;
            loop {
                let page = from.export_messages(mailbox.id, after, PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.uid;
                let mut batch = Vec::with_capacity(page.len());
                for m in page {
                    let bytes = from.read_blob(&m.blob, m.size).await?;
                    report.bytes += bytes.len() as u64;
                    batch.push((m, Arc::new(bytes)));
                }
                report.messages += batch.len();
                to.import_messages(new_mailbox, batch).await?;
            }
            let expunged = from.export_expunged(mailbox.id).await?;
            if !expunged.is_empty() {
                to.import_expunged(new_mailbox, &expunged).await?;
            }
        }
        report.accounts += 1;
        progress(&account.address.to_string(), &report);
    }
    for queued in from.list_queue().await? {
        let body = match from.queued_body(queued.id).await {
            Ok(b) => b,
            // Delivered and removed since the listing.
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        // The submitting account (for logs and sending limits) by its new id.
        let queued = QueuedMessage {
            account: queued.account.and_then(|a| ids.get(&a).copied()),
            ..queued
        };
        to.import_queued(&queued, body).await?;
        report.queued += 1;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as UnixTime);
    for ban in from.active_bans(now).await? {
        to.add_ban(&ban).await?;
        report.bans += 1;
    }
    Ok(report)
}

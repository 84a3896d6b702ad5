//! `yubin import maildir|mbox`: the import engine shared by both formats.
//!
//! A reader thread turns the source into batches of messages (bytes with CRLF line ends —
//! RFC 5322 §2.1, what IMAP sends as stored —, flags, internal date); this task stores each
//! batch with ONE [`MailStore::append_many`] call: one transaction and one flush of the
//! bodies per batch, not per message, which is what makes 100,000 messages take seconds
//! rather than minutes. Reading the next batch overlaps storing the last.
//!
//! Works while the server runs, on the same data directory or database, like `yubin
//! deliver`: IMAP sessions learn of the new messages from the store's change log.
//!
//! Resuming: a message is skipped when its mailbox already holds a message with the same
//! bytes (the store names bodies by their SHA-256, so this compares hashes). Duplicates are
//! counted: a source that holds the same message twice gets it twice. So a second run of an
//! interrupted (or finished) import adds only what is missing, and nothing needs to be
//! remembered between runs; a message that was imported and then deleted by the user comes
//! back on a re-run, though.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};
use store::{AccountId, AppendMessage, Flags, MailboxInfo, SpecialUse, Store, StoreError};
use tokio::sync::mpsc;

use super::progress::Progress;

/// Messages per transaction.
pub const BATCH_MESSAGES: usize = 1000;
/// Bytes per transaction (bodies are held in memory until the batch is stored).
pub const BATCH_BYTES: usize = 32 << 20;

/// One message to store.
pub struct Item {
    pub bytes: Vec<u8>,
    pub flags: Flags,
    pub internal_date: i64,
    /// How far it moves the progress bar (1, or the bytes it took in an mbox file).
    pub units: u64,
}

/// What the reader thread sends.
pub enum Event {
    /// The following batches go to this mailbox (an IMAP name).
    Folder(String),
    Batch(Vec<Item>),
    FolderEnd,
}

/// The reader's end of the pipe, which groups messages into batches.
pub struct Sink {
    tx: mpsc::Sender<Event>,
    batch: Vec<Item>,
    bytes: usize,
}

impl Sink {
    pub fn folder(&mut self, name: &str) -> anyhow::Result<()> {
        self.flush()?;
        self.send(Event::Folder(name.to_string()))
    }

    pub fn push(&mut self, item: Item) -> anyhow::Result<()> {
        self.bytes += item.bytes.len();
        self.batch.push(item);
        if self.batch.len() >= BATCH_MESSAGES || self.bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    pub fn folder_end(&mut self) -> anyhow::Result<()> {
        self.flush()?;
        self.send(Event::FolderEnd)
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.bytes = 0;
        let batch = std::mem::take(&mut self.batch);
        self.send(Event::Batch(batch))
    }

    fn send(&self, e: Event) -> anyhow::Result<()> {
        self.tx
            .blocking_send(e)
            .map_err(|_| anyhow::anyhow!("the import stopped"))
    }
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Report {
    pub imported: u64,
    pub skipped: u64,
    pub bytes: u64,
    pub mailboxes: u64,
}

/// Runs `read` on a blocking thread, storing what it sends into `account`'s mailboxes.
pub async fn run(
    store: Arc<dyn Store>,
    account: AccountId,
    progress: &mut Progress,
    read: impl FnOnce(&mut Sink) -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<Report> {
    let (tx, mut rx) = mpsc::channel(4);
    let reader = tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            tx,
            batch: Vec::new(),
            bytes: 0,
        };
        read(&mut sink)
    });
    let stored = consume(store.as_ref(), account, &mut rx, progress).await;
    // Unblock the reader if storing failed, then collect its own error, which comes first.
    drop(rx);
    let read = reader.await.context("the reader thread failed")?;
    let report = stored?;
    read?;
    Ok(report)
}

async fn consume(
    store: &dyn Store,
    account: AccountId,
    rx: &mut mpsc::Receiver<Event>,
    progress: &mut Progress,
) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let mut current: Option<(MailboxInfo, HashMap<String, u32>)> = None;
    while let Some(event) = rx.recv().await {
        match event {
            Event::Folder(name) => {
                let mailbox = target_mailbox(store, account, &name).await?;
                progress.folder(&mailbox.name);
                // What the mailbox holds already, by content, for resuming.
                let mut have: HashMap<String, u32> = HashMap::new();
                for m in store.list_messages(mailbox.id).await? {
                    *have.entry(m.blob.0).or_default() += 1;
                }
                report.mailboxes += 1;
                current = Some((mailbox, have));
            }
            Event::Batch(items) => {
                let Some((mailbox, have)) = current.as_mut() else {
                    anyhow::bail!("messages before a mailbox");
                };
                let count = items.len() as u64;
                let units: u64 = items.iter().map(|i| i.units).sum();
                let mut batch = Vec::with_capacity(items.len());
                for item in items {
                    if !have.is_empty() {
                        let hash = hex::encode(Sha256::digest(&item.bytes));
                        if let Some(n) = have.get_mut(&hash).filter(|n| **n > 0) {
                            *n -= 1;
                            report.skipped += 1;
                            continue;
                        }
                    }
                    report.bytes += item.bytes.len() as u64;
                    batch.push(AppendMessage {
                        bytes: Arc::new(item.bytes),
                        flags: item.flags,
                        internal_date: item.internal_date,
                    });
                }
                let n = batch.len() as u64;
                if n > 0 {
                    store
                        .append_many(mailbox.id, batch)
                        .await
                        .map_err(|e| match e {
                            StoreError::OverQuota => anyhow::anyhow!(
                                "the account is over quota after {} messages",
                                report.imported
                            ),
                            e => anyhow::anyhow!("storing into {}: {e}", mailbox.name),
                        })?;
                }
                report.imported += n;
                progress.advance(count, units, &mailbox.name);
            }
            Event::FolderEnd => {
                if let Some((mailbox, _)) = &current {
                    progress.folder_done(&mailbox.name);
                }
            }
        }
    }
    Ok(report)
}

/// RFC 6154 special uses recognised by a top-level folder's name, as other servers and
/// clients name them: these go into the account's mailbox of that use (yubin's `Sent`,
/// `Junk`, …) rather than a second one.
pub fn special_use_of(name: &str) -> Option<SpecialUse> {
    let n = name.to_lowercase();
    Some(match n.as_str() {
        "sent" | "sent messages" | "sent items" | "sent mail" => SpecialUse::Sent,
        "drafts" | "draft" => SpecialUse::Drafts,
        "trash" | "deleted messages" | "deleted items" | "bin" => SpecialUse::Trash,
        "junk" | "spam" | "junk e-mail" | "junk email" | "bulk mail" => SpecialUse::Junk,
        "archive" | "archives" => SpecialUse::Archive,
        _ => return None,
    })
}

/// The mailbox `name` of `account`, created (with its parents) when missing; a special-use
/// name goes to the account's mailbox of that use.
pub async fn target_mailbox(
    store: &dyn Store,
    account: AccountId,
    name: &str,
) -> anyhow::Result<MailboxInfo> {
    if let Some(use_) = special_use_of(name) {
        let all = store.lookup_mailboxes(account).await?;
        if let Some(m) = all.into_iter().find(|m| m.special_use == Some(use_)) {
            return Ok(m);
        }
    }
    if let Some(m) = store.lookup_mailbox(account, name).await? {
        return Ok(m);
    }
    let mut prefix = String::new();
    for level in name.split('/') {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(level);
        if store.lookup_mailbox(account, &prefix).await?.is_none() {
            match store.create_mailbox(account, &prefix).await {
                Ok(_) | Err(StoreError::Exists(_)) => {}
                Err(e) => return Err(anyhow::anyhow!("cannot create mailbox {prefix:?}: {e}")),
            }
        }
    }
    store
        .lookup_mailbox(account, name)
        .await?
        .with_context(|| format!("mailbox {name:?} vanished"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_use_names() {
        assert_eq!(special_use_of("Spam"), Some(SpecialUse::Junk));
        assert_eq!(special_use_of("Sent Messages"), Some(SpecialUse::Sent));
        assert_eq!(special_use_of("Deleted Items"), Some(SpecialUse::Trash));
        assert_eq!(special_use_of("Work"), None);
    }
}

//! yubin's embedded store: metadata in SQLite (WAL mode, `synchronous=FULL`), message bodies
//! in a content-addressed blob directory, implementing [`store::Directory`],
//! [`store::MailStore`] and [`store::QueueStore`].
//!
//! Layout of a data directory:
//! - `yubin.db` — the relational schema of `schema.rs` (domains, accounts, aliases, mailboxes,
//!   messages, expunge log, blobs, the outbound queue with its leases, the sending log, URLAUTH
//!   access keys), readable with
//!   `sqlite3`.
//! - `blobs/ab/<sha256>` — one file per distinct message body; `.<sha256>.*.tmp` beside it
//!   while it is being written.
//!
//! RFCs whose storage-level rules are kept here: RFC 9051 §2.3.1.1 (UIDs strictly ascending,
//! never reused; UIDVALIDITY), §5.1 (INBOX case-insensitive, hierarchy), §6.3.4–§6.3.6 (CREATE
//! makes superiors, DELETE, RENAME incl. INBOX), RFC 7162 §3.1 (per-mailbox MODSEQ, STORE
//! UNCHANGEDSINCE tested in the write transaction) and the expunge log QRESYNC (§3.2.5) reads,
//! RFC 6154 (special-use mailboxes), RFC 1939 §8
//! (exclusive maildrop lock, in-process only).
//!
//! Not implemented: ACLs, shared
//! mailboxes, a cross-process maildrop lock, per-user subaddressing (`user+tag@`).
//!
//! Writes go through one writer thread with group commit (`writer.rs`); reads use a pool of
//! connections (`readers.rs`). Another process (the admin CLI) may open the same data
//! directory while the server runs; SQLite's locking and the busy timeout serialise writers.

mod blobs;
mod checkpoint;
mod db;
mod facts_cache;
mod mailstore;
mod names;
mod ops_claim;
mod ops_dir;
mod ops_facts;
mod ops_mailbox;
mod ops_msg;
mod ops_queue;
mod ops_sending;
mod ops_urlauth;
mod prim;
mod queue;
mod readers;
mod reads;
mod schema;
mod sweep;
mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mail_types::Address;
use store::{AccountId, ChangeHub, StoreError, StoreResult};

use crate::blobs::BlobDir;
use crate::checkpoint::Checkpointer;
use crate::db::io_err;
use crate::readers::ReadPool;
use crate::writer::Writer;

pub use crate::schema::SCHEMA_VERSION;
pub use crate::sweep::SweepReport;

/// Reader connections kept open while idle, by default.
const READERS: usize = 4;

/// The embedded store. Cheap to share behind an `Arc`; dropping the last handle finishes
/// pending writes and closes the database.
pub struct SqliteStore {
    data_dir: PathBuf,
    readers: Arc<ReadPool>,
    blobs: Arc<BlobDir>,
    hub: Arc<ChangeHub>,
    maildrops: Arc<Mutex<HashSet<AccountId>>>,
    /// The message facts most recently used, in front of the `message_facts` table.
    facts: Arc<facts_cache::FactsCache>,
    sweep: SweepReport,
    /// Woken after each committed queue change (see `queue.rs`).
    queue_notify: Arc<tokio::sync::Notify>,
    /// Checkpoints the WAL off the writer thread (see `checkpoint.rs`).
    _checkpointer: Checkpointer,
    // Last: dropping it joins the writer thread after everything else is unused.
    writer: Writer,
}

/// Settings for [`open_with`]; [`open`] uses the defaults.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Sweep crash leftovers (orphan blob files, unreferenced rows, stale temp files) at open.
    /// Walks the whole blob directory; a short-lived admin command may skip it and leave the
    /// sweep to the server.
    pub sweep: bool,
    /// Reader connections kept open while idle.
    pub readers: usize,
    /// Bytes of message facts kept in memory (0: none; the table is read every time).
    pub facts_cache_bytes: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            sweep: true,
            readers: READERS,
            facts_cache_bytes: facts_cache::DEFAULT_BYTES,
        }
    }
}

/// Opens (creating if needed) the store in `data_dir`: database `data_dir/yubin.db`, blobs
/// under `data_dir/blobs/`. Migrates the schema and sweeps leftovers of a crash.
///
/// Blocking (file system and SQLite); call it at startup or from `spawn_blocking`.
pub fn open(data_dir: &Path) -> Result<Arc<SqliteStore>, StoreError> {
    open_with(data_dir, &OpenOptions::default())
}

/// [`open`] with explicit settings.
pub fn open_with(data_dir: &Path, options: &OpenOptions) -> Result<Arc<SqliteStore>, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|e| io_err("creating the data directory", e))?;
    let blobs = Arc::new(
        BlobDir::open(data_dir.join("blobs"))
            .map_err(|e| io_err("opening the blob directory", e))?,
    );
    let db_path = data_dir.join("yubin.db");
    let conn = schema::connect(&db_path, false)?;
    schema::migrate(&conn)?;
    let sweep = if options.sweep {
        sweep::sweep(&conn, &blobs)?
    } else {
        SweepReport::default()
    };
    let hub = Arc::new(ChangeHub::default());
    let checkpointer = Checkpointer::start(&db_path, &conn)?;
    let writer = Writer::start(conn, Arc::clone(&blobs), Arc::clone(&hub))?;
    Ok(Arc::new(SqliteStore {
        data_dir: data_dir.to_path_buf(),
        readers: Arc::new(ReadPool::new(db_path, options.readers)),
        blobs,
        hub,
        maildrops: Arc::new(Mutex::new(HashSet::new())),
        facts: Arc::new(facts_cache::FactsCache::new(options.facts_cache_bytes)),
        sweep,
        queue_notify: Arc::new(tokio::sync::Notify::new()),
        _checkpointer: checkpointer,
        writer,
    }))
}

impl SqliteStore {
    /// The data directory this store lives in.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// What the crash sweep at open removed.
    pub fn sweep_report(&self) -> SweepReport {
        self.sweep
    }

    /// Sets (or with `None` removes) an account's quota limit in bytes. Not part of the
    /// `Directory` trait yet; the admin CLI calls it directly.
    pub async fn set_quota(&self, address: &Address, limit: Option<u64>) -> StoreResult<()> {
        if limit.is_some_and(|l| l > i64::MAX as u64) {
            return Err(StoreError::Invalid("quota limit too large".into()));
        }
        let address = address.clone();
        self.writer
            .run(move |tx| ops_dir::set_quota(tx.conn, &address, limit))
            .await
    }
}

/// Held while a POP3 session owns an account's maildrop; dropping it releases the lock.
struct MaildropGuard {
    locks: Arc<Mutex<HashSet<AccountId>>>,
    account: AccountId,
}

impl Drop for MaildropGuard {
    fn drop(&mut self) {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.account);
    }
}

impl SqliteStore {
    /// RFC 1939 §8: one session at a time gets exclusive access to a maildrop.
    fn try_lock_maildrop(&self, account: AccountId) -> StoreResult<MaildropGuard> {
        let mut locks = self.maildrops.lock().unwrap_or_else(|e| e.into_inner());
        if !locks.insert(account) {
            return Err(StoreError::InUse);
        }
        Ok(MaildropGuard {
            locks: Arc::clone(&self.maildrops),
            account,
        })
    }
}

//! yubin's embedded store: metadata in SQLite (WAL mode, `synchronous=FULL`), small message
//! bodies in the database and larger ones in a content-addressed blob directory, implementing [`store::Directory`],
//! [`store::MailStore`], [`store::QueueStore`] and the other traits of `store`.
//!
//! Layout of a data directory:
//! - `yubin.db` — the relational schema of `schema.rs` (domains, accounts, aliases, mailboxes,
//!   messages, expunge log, blobs, the outbound queue with its leases, the sending log, URLAUTH
//!   access keys, the change log, leases, shared secrets, DKIM signing keys, failed-login
//!   counters and bans, bodies of at most 32 KiB — `bodies.rs`), readable with `sqlite3`.
//! - `blobs/ab/<sha256>` — one file per distinct larger message body; `.<sha256>.*.tmp`
//!   beside it while it is being written.
//!
//! RFCs whose storage-level rules are kept here: RFC 9051 §2.3.1.1 (UIDs strictly ascending,
//! never reused; UIDVALIDITY), §5.1 (INBOX case-insensitive, hierarchy), §6.3.4–§6.3.6 (CREATE
//! makes superiors, DELETE, RENAME incl. INBOX), RFC 7162 §3.1 (per-mailbox MODSEQ, STORE
//! UNCHANGEDSINCE tested in the write transaction) and the expunge log QRESYNC (§3.2.5) reads,
//! RFC 6154 (special-use mailboxes), RFC 1939 §8 (the maildrop lock, as a lease every process
//! on the data directory sees), RFC 3501 §2.3.2 (`\Recent` claimed once across processes),
//! RFC 6851 §3.3 and RFC 3502 (MOVE and MULTIAPPEND in one transaction).
//!
//! Not implemented: ACLs, shared mailboxes, per-user subaddressing (`user+tag@`).
//!
//! Writes go through one writer thread with group commit (`writer.rs`); reads use a pool of
//! connections (`readers.rs`). Another process (the admin CLI) may open the same data
//! directory while the server runs; SQLite's locking and the busy timeout serialise writers.
//! Every write's change events go to the change log in its transaction (`change_log.rs`);
//! the follower (`follower.rs`) polls the log for other processes' writes and hands them to
//! this process's subscribers.

pub mod backup;
mod blobs;
mod bodies;
mod change_log;
mod check;
mod checkpoint;
mod dates;
mod db;
mod directory_impl;
mod expunge_log;
mod follower;
mod login_guard;
mod mailstore;
mod ops_claim;
mod ops_coord;
mod ops_dir;
mod ops_dkim;
mod ops_facts;
mod ops_greylist;
mod ops_login_guard;
mod ops_mailbox;
mod ops_msg;
mod ops_queue;
mod ops_sending;
mod ops_urlauth;
mod prim;
mod queue;
mod quota;
mod readers;
mod reads;
mod schema;
mod schema_sql;
mod sweep;
mod transfer;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mail_types::Address;
use store::{ChangeHub, StoreError, StoreResult};

use crate::blobs::BlobDir;
use crate::checkpoint::Checkpointer;
use crate::db::io_err;
use crate::readers::ReadPool;
use crate::writer::Writer;
use store::backend::facts_cache;

pub use crate::bodies::INLINE_MAX as INLINE_BODY_MAX;
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
    /// The message facts most recently used, in front of the `message_facts` table.
    facts: Arc<facts_cache::FactsCache>,
    /// Which account each mailbox belongs to (see `store::backend::owners`).
    owners: store::backend::owners::Owners,
    sweep: SweepReport,
    /// The configured quota defaults (`store::QuotaStore::set_quota_defaults`), shared with
    /// the writer thread.
    quota: writer::QuotaCell,
    /// Woken after each committed queue change (see `queue.rs`).
    queue_notify: Arc<tokio::sync::Notify>,
    /// Checkpoints the WAL off the writer thread (see `checkpoint.rs`).
    _checkpointer: Checkpointer,
    /// Brings other processes' changes to this process's subscribers (see `follower.rs`).
    _follower: Option<follower::Follower>,
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
    /// How long change log rows are kept: a subscriber further behind than this rereads
    /// what it shows instead of catching up (see `change_log.rs`).
    pub change_log_retention: Duration,
    /// How often the log is polled for other processes' writes (see `follower.rs`).
    pub follow_interval: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            sweep: true,
            readers: READERS,
            facts_cache_bytes: facts_cache::DEFAULT_BYTES,
            change_log_retention: Duration::from_secs(120),
            follow_interval: Duration::from_millis(50),
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
    let quota = writer::QuotaCell::default();
    let writer = Writer::start(
        conn,
        Arc::clone(&blobs),
        Arc::clone(&hub),
        options.change_log_retention,
        Arc::clone(&quota),
    )?;
    let readers = Arc::new(ReadPool::new(db_path, options.readers));
    let follower = follower::start(
        Arc::clone(&readers),
        Arc::clone(&hub),
        options.follow_interval,
    );
    Ok(Arc::new(SqliteStore {
        data_dir: data_dir.to_path_buf(),
        readers,
        blobs,
        hub,
        facts: Arc::new(facts_cache::FactsCache::new(options.facts_cache_bytes)),
        owners: Default::default(),
        sweep,
        quota,
        queue_notify: Arc::new(tokio::sync::Notify::new()),
        _checkpointer: checkpointer,
        _follower: follower,
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

    /// Sets (or with `None` removes) an account's storage limit override in bytes, keeping
    /// its message limit (see [`store::QuotaStore::set_quota_limits`]).
    pub async fn set_quota(&self, address: &Address, limit: Option<u64>) -> StoreResult<()> {
        if limit.is_some_and(|l| l > i64::MAX as u64) {
            return Err(StoreError::Invalid("quota limit too large".into()));
        }
        let address = address.clone();
        self.writer
            .run(move |tx| ops_dir::set_quota(tx.conn, &address, limit))
            .await
    }

    /// The quota defaults this handle applies.
    pub(crate) fn quota_defaults(&self) -> Arc<store::QuotaDefaults> {
        Arc::clone(&self.quota.read().unwrap_or_else(|e| e.into_inner()))
    }
}

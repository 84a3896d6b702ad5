//! The single writer thread and its group commit.
//!
//! Every write goes through one thread that owns the write connection. Requests arrive on a
//! channel; the thread takes everything pending, runs it in ONE transaction (each request in its
//! own SAVEPOINT, so a failing request rolls back alone), commits once — one fsync for the whole
//! batch — and only then publishes the change events and answers each request. While a commit
//! is being fsync'd, new requests queue up and form the next batch, so concurrent writers share
//! commits instead of each paying one.
//!
//! Invariants:
//! - A request's answer and its events are sent only after the commit that contains it.
//! - Blob files whose last reference went away are unlinked after that commit, under a fresh
//!   write lock and only if still unreferenced (see `blobs.rs`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};
use store::{ChangeEvent, ChangeHub, QuotaDefaults, StoreError, StoreResult};
use tokio::sync::oneshot;

use crate::blobs::BlobDir;
use crate::change_log;
use crate::db::{exec_cached, now};

/// The most requests one transaction takes; bounds the latency of the first one.
const MAX_BATCH: usize = 512;

/// The quota defaults a store handle applies, replaced when the configuration is set.
pub type QuotaCell = Arc<std::sync::RwLock<Arc<QuotaDefaults>>>;

/// What a request sees: the connection inside the open transaction, the blob directory, and
/// where to put its after-commit effects.
pub struct Tx<'a> {
    pub conn: &'a Connection,
    pub blobs: &'a BlobDir,
    /// The configured quota defaults, as they were when the batch started.
    pub quota: &'a QuotaDefaults,
    /// Published after the commit.
    pub events: Vec<ChangeEvent>,
    /// Blob hashes whose row was deleted (refcount reached 0): unlinked after the commit.
    pub unlink: Vec<String>,
}

trait Job: Send {
    /// Runs inside a savepoint; `true` keeps its work, `false` rolls it back.
    fn run(&mut self, tx: &mut Tx<'_>) -> bool;
    /// Makes the answer `err`: the job's work was rolled back after it had succeeded.
    fn fail(&mut self, err: StoreError);
    /// Whether the caller needs the write on disk before the answer (see [`Writer::run_lazy`]).
    fn durable(&self) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, commit: StoreResult<()>);
}

struct TypedJob<T, F> {
    f: Option<F>,
    durable: bool,
    out: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut Tx<'_>) -> StoreResult<T> + Send + 'static,
{
    fn run(&mut self, tx: &mut Tx<'_>) -> bool {
        let Some(f) = self.f.take() else { return false };
        let out = f(tx);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn fail(&mut self, err: StoreError) {
        self.out = Some(Err(err));
    }

    fn durable(&self) -> bool {
        self.durable
    }

    fn finish(self: Box<Self>, commit: StoreResult<()>) {
        let answer = match (commit, self.out) {
            (_, Some(Err(e))) | (Err(e), _) => Err(e),
            (Ok(()), Some(Ok(v))) => Ok(v),
            // The job panicked or never ran although the batch committed.
            (Ok(()), None) => Err(StoreError::Temporary("internal error in the store".into())),
        };
        // The caller may have gone away (cancelled); the write stands regardless.
        let _ = self.reply.send(answer);
    }
}

/// Handle to the writer thread; dropping it lets the thread finish pending work and exit.
pub struct Writer {
    tx: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn start(
        conn: Connection,
        blobs: Arc<BlobDir>,
        hub: Arc<ChangeHub>,
        log_retention: Duration,
        quota: QuotaCell,
    ) -> StoreResult<Writer> {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer_loop(conn, rx, &blobs, &hub, log_retention, &quota))
            .map_err(|e| StoreError::Temporary(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Runs `f` in the writer's next transaction and returns its result once committed.
    pub async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, true).await
    }

    /// [`run`](Self::run) for writes that may be lost in a power failure (never half-done:
    /// SQLite's WAL keeps transactions whole either way), such as `\Recent` marks. A batch of
    /// only such jobs commits without waiting for fsync (`synchronous = NORMAL`); the next
    /// durable commit makes it durable too, as the WAL is written in order.
    pub async fn run_lazy<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.submit(f, false).await
    }

    async fn submit<T, F>(&self, f: F, durable: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(TypedJob {
            f: Some(f),
            durable,
            out: None,
            reply,
        });
        let stopped = || StoreError::Temporary("the store is shutting down".into());
        let sender = self.tx.as_ref().ok_or_else(stopped)?;
        sender.send(job).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Box<dyn Job>>,
    blobs: &BlobDir,
    hub: &ChangeHub,
    log_retention: Duration,
    quota: &QuotaCell,
) {
    let mut next_prune = Instant::now();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let defaults = Arc::clone(&quota.read().unwrap_or_else(|e| e.into_inner()));
        run_batch(&conn, blobs, hub, &defaults, batch);
        if Instant::now() >= next_prune {
            next_prune = Instant::now() + PRUNE_EVERY;
            prune_log(&conn, log_retention);
        }
    }
}

/// How often the writer drops change log rows older than the retention.
const PRUNE_EVERY: Duration = Duration::from_secs(10);

fn prune_log(conn: &Connection, retention: Duration) {
    let cutoff = now() - i64::try_from(retention.as_secs()).unwrap_or(i64::MAX / 2);
    match change_log::prune(conn, cutoff) {
        Ok(n) if n > 0 => tracing::debug!(rows = n, "pruned the change log"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "pruning the change log failed"),
    }
}

fn temporary(e: rusqlite::Error) -> StoreError {
    tracing::warn!(error = %e, "store transaction failed");
    StoreError::Temporary(format!("database: {e}"))
}

fn run_batch(
    conn: &Connection,
    blobs: &BlobDir,
    hub: &ChangeHub,
    quota: &QuotaDefaults,
    mut batch: Vec<Box<dyn Job>>,
) {
    let lazy = batch.iter().all(|j| !j.durable());
    if lazy {
        let _ = exec_cached(conn, "PRAGMA synchronous = NORMAL");
    }
    run_transaction(conn, blobs, hub, quota, &mut batch);
    if lazy {
        let _ = exec_cached(conn, "PRAGMA synchronous = FULL");
    }
}

fn run_transaction(
    conn: &Connection,
    blobs: &BlobDir,
    hub: &ChangeHub,
    quota: &QuotaDefaults,
    batch: &mut Vec<Box<dyn Job>>,
) {
    if let Err(e) = exec_cached(conn, "BEGIN IMMEDIATE") {
        let err = temporary(e);
        for job in batch.drain(..) {
            job.finish(Err(err.clone()));
        }
        return;
    }
    let mut events = Vec::new();
    let mut unlink = Vec::new();
    for job in batch.iter_mut() {
        if exec_cached(conn, "SAVEPOINT job").is_err() {
            continue; // the job's `out` stays None: it is answered with an error
        }
        let mut tx = Tx {
            conn,
            blobs,
            quota,
            events: Vec::new(),
            unlink: Vec::new(),
        };
        // A bug in one request must not take the writer thread (and every later write) down.
        let keep = catch_unwind(AssertUnwindSafe(|| job.run(&mut tx))).unwrap_or(false);
        if keep && exec_cached(conn, "RELEASE job").is_ok() {
            events.append(&mut tx.events);
            unlink.append(&mut tx.unlink);
        } else {
            if keep {
                job.fail(StoreError::Temporary("database: savepoint failed".into()));
            }
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
        }
        // Some errors (disk full, I/O) make SQLite roll back the whole transaction. The jobs
        // before this one are then lost, and later ones must not run outside the transaction:
        // the whole batch fails.
        if conn.is_autocommit() {
            break;
        }
    }
    // The batch's events go to the change log in its transaction, one row per account: logged
    // if and only if the changes commit. (A failure here fails the whole batch.)
    let mut batches = Vec::new();
    let commit = if conn.is_autocommit() {
        Err(StoreError::Temporary(
            "database: transaction rolled back".into(),
        ))
    } else {
        match change_log::append(conn, events, now()) {
            Ok(b) => {
                batches = b;
                exec_cached(conn, "COMMIT").map_err(temporary)
            }
            Err(e) => Err(temporary(e)),
        }
    };
    if commit.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    // Events before answers: once a write call returns, its events have been published, so a
    // subscriber that joins afterwards never receives stale events of that call.
    if commit.is_ok() {
        hub.publish(batches);
    }
    for job in batch.drain(..) {
        job.finish(commit.clone());
    }
    if commit.is_ok() && !unlink.is_empty() {
        unlink_unreferenced(conn, blobs, &unlink);
    }
}

/// Unlinks blob files whose rows are gone, holding the write lock so no other writer (in this
/// process or another) can insert a row for the same hash meanwhile. A failure only leaves an
/// orphan file, which the sweep at the next open removes. Returns how many files were removed.
pub fn unlink_unreferenced(conn: &Connection, blobs: &BlobDir, hashes: &[String]) -> usize {
    if conn.execute_batch("BEGIN IMMEDIATE").is_err() {
        return 0;
    }
    let mut removed = 0usize;
    if let Ok(mut stmt) = conn.prepare_cached("SELECT 1 FROM blobs WHERE hash = ?1") {
        for hash in hashes {
            let referenced = stmt
                .query_row([hash], |_| Ok(()))
                .optional()
                .map(|r| r.is_some())
                .unwrap_or(true);
            if !referenced && blobs.exists(hash) && blobs.remove(hash).is_ok() {
                removed += 1;
            }
        }
    }
    if conn.execute_batch("COMMIT").is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    tracing::debug!(removed, "unlinked unreferenced blobs");
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;

    fn insert(tx: &mut Tx<'_>, key: &str) -> StoreResult<()> {
        tx.conn
            .execute("INSERT INTO meta (key, value) VALUES (?1, 1)", [key])
            .map(|_| ())
            .map_err(|e| StoreError::Temporary(e.to_string()))
    }

    /// Requests queued while the writer is busy share one transaction; a failing one is rolled
    /// back to its savepoint without affecting the others.
    #[tokio::test]
    async fn a_failing_request_does_not_fail_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = schema::connect(&path, false).unwrap();
        schema::migrate(&conn).unwrap();
        let blobs = Arc::new(BlobDir::open(dir.path().join("blobs")).unwrap());
        let writer = Writer::start(
            conn,
            blobs,
            Arc::new(ChangeHub::default()),
            Duration::from_secs(60),
            QuotaCell::default(),
        )
        .unwrap();

        let (busy, ok1, bad, ok2) = tokio::join!(
            writer.run(|tx| {
                // Keeps the writer busy so the next three queue up into one batch.
                std::thread::sleep(std::time::Duration::from_millis(100));
                insert(tx, "first")
            }),
            writer.run(|tx| insert(tx, "a")),
            writer.run(|tx| {
                insert(tx, "half-done")?;
                Err::<(), _>(StoreError::Invalid("refused".into()))
            }),
            writer.run(|tx| insert(tx, "b")),
        );
        assert_eq!((busy, ok1, ok2), (Ok(()), Ok(()), Ok(())));
        assert_eq!(bad, Err(StoreError::Invalid("refused".into())));
        drop(writer);

        let check = schema::connect(&path, true).unwrap();
        let keys: Vec<String> = check
            .prepare("SELECT key FROM meta ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, vec!["a", "b", "first"]);
    }

    #[tokio::test]
    async fn a_panicking_request_is_answered_and_the_writer_survives() {
        let dir = tempfile::tempdir().unwrap();
        let conn = schema::connect(&dir.path().join("p.db"), false).unwrap();
        schema::migrate(&conn).unwrap();
        let blobs = Arc::new(BlobDir::open(dir.path().join("blobs")).unwrap());
        let writer = Writer::start(
            conn,
            blobs,
            Arc::new(ChangeHub::default()),
            Duration::from_secs(60),
            QuotaCell::default(),
        )
        .unwrap();
        let r: StoreResult<()> = writer.run(|_| panic!("bug")).await;
        assert!(matches!(r, Err(StoreError::Temporary(_))));
        assert_eq!(writer.run(|tx| insert(tx, "after")).await, Ok(()));
    }
}

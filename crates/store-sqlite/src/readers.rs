//! A small pool of read-only connections used from `spawn_blocking`; WAL lets them read while
//! the writer commits.
//!
//! Short reads — a point lookup by key, a few dozen rows by primary key, pages the OS has
//! cached — run on the calling thread instead ([`ReadPool::read_inline`]): under IMAP load the
//! hand-off to a blocking thread and back (two context switches, two wake-ups) cost more than
//! such a query. Scans that grow with a mailbox (SELECT's view, STATUS counts, listing every
//! message) always go to the blocking pool.
//!
//! At most `size` reads run at once (a semaphore): more would not go faster on a few cores,
//! and every extra read used to open (and later close) a fresh connection — opening one reads
//! the schema and runs PRAGMAs, which under IMAP load cost more than the queries themselves.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use store::{StoreError, StoreResult};
use tokio::sync::Semaphore;

use crate::db::Db;
use crate::schema;

pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Connections kept open when idle (never more than `permits` exist at once).
    max_idle: usize,
    /// One permit per concurrent read: bounds the connections in use to the pool size.
    permits: Arc<Semaphore>,
}

impl ReadPool {
    /// A pool of `size` connections (at least one), opened lazily and kept open.
    pub fn new(path: PathBuf, size: usize) -> ReadPool {
        let size = size.max(1);
        ReadPool {
            path,
            idle: Mutex::new(Vec::with_capacity(size)),
            max_idle: size,
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    fn take(&self) -> StoreResult<Connection> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match conn {
            Some(c) => Ok(c),
            None => {
                let c = schema::connect(&self.path, true)?;
                c.execute_batch("PRAGMA query_only = ON").db()?;
                Ok(c)
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    /// Frees what the idle connections' page caches hold (`sqlite3_db_release_memory`);
    /// connections in use keep theirs. Their pages were allocated among the sessions' memory
    /// by whichever thread read them, and pinned it after the sessions were gone.
    pub fn release_memory(&self) {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        for conn in idle.iter() {
            let _ = conn.release_memory();
        }
    }

    /// Runs a short read `f` on the calling thread when a connection is free at once (see the
    /// module docs), else as [`read`](Self::read). Only for reads bounded by their arguments,
    /// never for ones that grow with the data.
    pub async fn read_inline<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
            return self.read(f).await;
        };
        let _permit = permit;
        let conn = self.take()?;
        let out = f(&conn);
        if conn.is_autocommit() {
            self.give_back(conn);
        }
        out
    }

    /// Runs `f` on a pooled connection in the blocking thread pool. `f` should open a read
    /// transaction itself when it needs several statements to see one snapshot.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Temporary("the read pool is closed".into()))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = pool.take()?;
            let out = f(&conn);
            // A connection left inside a transaction (error path) is not reused.
            if conn.is_autocommit() {
                pool.give_back(conn);
            }
            out
        })
        .await
        .map_err(|e| StoreError::Temporary(format!("read task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Reads beyond the pool size wait for a connection instead of opening more of them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_reads_are_bounded_by_the_pool_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        schema::migrate(&schema::connect(&path, false).unwrap()).unwrap();
        let pool = Arc::new(ReadPool::new(path, 2));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..12 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            set.spawn(async move {
                pool.read(move |c| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).db()
                })
                .await
            });
        }
        while let Some(r) = set.join_next().await {
            assert_eq!(r.unwrap(), Ok(1));
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        let idle = pool.idle.lock().unwrap().len();
        assert_eq!(idle, 2, "both connections are kept for the next reads");
    }

    /// Releasing the idle connections' page caches frees their memory (SQLite's own count of
    /// what the connection's cache holds falls) and the next reads work on the same
    /// connections.
    #[allow(unsafe_code)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn released_caches_give_memory_back_and_refill() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let w = schema::connect(&path, false).unwrap();
        schema::migrate(&w).unwrap();
        w.execute_batch(
            "CREATE TABLE filler (x BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO filler SELECT randomblob(500) FROM n;",
        )
        .unwrap();
        let pool = Arc::new(ReadPool::new(path, 1));
        let scan = |c: &Connection| {
            c.query_row("SELECT sum(length(x)) FROM filler", [], |r| {
                r.get::<_, i64>(0)
            })
            .db()
        };
        assert_eq!(pool.read(scan).await, Ok(1_000_000));
        let cache_used = |pool: &ReadPool| {
            let idle = pool.idle.lock().unwrap();
            let c = idle.first().expect("the connection is kept");
            // SQLITE_DBSTATUS_CACHE_USED: bytes of heap the connection's page cache holds.
            let (mut cur, mut hi) = (0, 0);
            // SAFETY: a valid open connection, and out-pointers to locals.
            unsafe {
                rusqlite::ffi::sqlite3_db_status(
                    c.handle(),
                    rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
                    &mut cur,
                    &mut hi,
                    0,
                )
            };
            cur
        };
        let before = cache_used(&pool);
        assert!(
            before > 500_000,
            "the scan filled the cache: {before} bytes"
        );
        pool.release_memory();
        let after = cache_used(&pool);
        assert!(
            after < before / 10,
            "{before} bytes before the release, {after} after"
        );
        assert_eq!(pool.read(scan).await, Ok(1_000_000));
    }
}

//! A small pool of read-only connections used from `spawn_blocking`; WAL lets them read while
//! the writer commits.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use store::{StoreError, StoreResult};

use crate::db::Db;
use crate::schema;

pub struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Connections kept open when idle; more are opened under load and closed afterwards.
    max_idle: usize,
}

impl ReadPool {
    pub fn new(path: PathBuf, max_idle: usize) -> ReadPool {
        ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
            max_idle,
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

    /// Runs `f` on a pooled connection in the blocking thread pool. `f` should open a read
    /// transaction itself when it needs several statements to see one snapshot.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
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

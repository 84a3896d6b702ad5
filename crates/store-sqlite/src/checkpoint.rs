//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold (1,000 WAL
//! pages), on the committing connection — here the one group-commit writer — so every few
//! thousand deliveries a whole batch of clients would wait while pages are copied into the
//! database file and it is fsync'd. Instead the writer's automatic checkpoint is turned off and
//! this thread runs PASSIVE checkpoints, which never block writers or readers, a few times a
//! second. Durability is unaffected: a commit is durable once its WAL frames are fsync'd.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;
use store::StoreResult;

use crate::schema;

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_millis(250);

/// Runs while it is alive; dropping it stops the thread.
pub struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Turns off automatic checkpoints on `writer` and starts the checkpoint thread.
    pub fn start(db_path: &Path, writer: &Connection) -> StoreResult<Checkpointer> {
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(temporary)?;
        let conn = schema::connect(db_path, false)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                // Ends when the Sender is dropped (Disconnected).
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
            })
            .map_err(|e| {
                store::StoreError::Temporary(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}

fn temporary(e: rusqlite::Error) -> store::StoreError {
    store::StoreError::Temporary(format!("database: {e}"))
}

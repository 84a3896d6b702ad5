//! WAL checkpoints on a thread of their own.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold (1,000 WAL
//! pages), on the committing connection — here the one group-commit writer — so every few
//! thousand deliveries a whole batch of clients would wait while pages are copied into the
//! database file and it is fsync'd. Instead the writer's automatic checkpoint is turned off and
//! this thread runs PASSIVE checkpoints, which never block writers or readers, a few times a
//! second. Durability is unaffected: a commit is durable once its WAL frames are fsync'd.
//!
//! A PASSIVE checkpoint stops at the oldest snapshot a reader holds, and the writer starts the
//! WAL over only once a checkpoint got to its end with no reader in it — under a steady IMAP
//! load some reader always is, and the WAL grew without bound (over a gigabyte in 20 seconds
//! of imaptest, every page lookup searching it). So once the WAL holds more than
//! [`RESTART_FRAMES`], a RESTART checkpoint waits for the readers of the moment (reads are
//! short) and lets the next commit start the WAL from its beginning; the writer connection's
//! `journal_size_limit` then trims the file.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use rusqlite::Connection;
use store::StoreResult;

use crate::schema;

/// How often the WAL is checkpointed.
const INTERVAL: Duration = Duration::from_millis(250);

/// A WAL longer than this many frames (pages; 16 MiB of 4 KiB pages) is restarted.
const RESTART_FRAMES: i64 = 4096;

/// What a WAL file left longer by a burst is cut back to once it starts over.
pub const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How long a RESTART checkpoint waits for readers and the writer before trying again at the
/// next interval (writes wait for it meanwhile).
const RESTART_WAIT: Duration = Duration::from_millis(500);

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
        writer
            .pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
            .map_err(temporary)?;
        let conn = schema::connect(db_path, false)?;
        conn.busy_timeout(RESTART_WAIT).map_err(temporary)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                // Ends when the Sender is dropped (Disconnected).
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    if let Err(e) = checkpoint(&conn) {
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

/// One PASSIVE checkpoint, and a RESTART one when the WAL has grown too long.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    // (busy, frames in the WAL, frames checkpointed)
    let (_, frames, _): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if frames > RESTART_FRAMES {
        // SQLITE_BUSY (readers or the writer did not finish in time) is reported in the row,
        // not as an error: the next interval tries again.
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
    }
    Ok(())
}

fn temporary(e: rusqlite::Error) -> store::StoreError {
    store::StoreError::Temporary(format!("database: {e}"))
}

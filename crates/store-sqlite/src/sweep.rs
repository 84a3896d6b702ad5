//! Repairs after a crash, run by `open()` before the writer starts.
//!
//! A crash can leave (a) blob files without a row — written before a transaction that never
//! committed — and (b) files whose last reference was committed away but which were not unlinked
//! yet; plus stale temporary files. None of these is visible to clients; they only waste space.

use rusqlite::{Connection, OptionalExtension};
use store::StoreResult;

use crate::blobs::{BlobDir, remove_stale};
use crate::db::{Db, io_err};
use crate::writer::unlink_unreferenced;

/// What the sweep removed, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub zero_rows: usize,
    pub orphan_files: usize,
    pub tmp_files: usize,
}

pub fn sweep(conn: &Connection, blobs: &BlobDir) -> StoreResult<SweepReport> {
    let mut report = SweepReport::default();

    // Rows nobody references any more.
    conn.execute_batch("BEGIN IMMEDIATE").db()?;
    let zero: rusqlite::Result<Vec<String>> = (|| {
        let mut stmt = conn.prepare("DELETE FROM blobs WHERE refcount <= 0 RETURNING hash")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect()
    })();
    // Their bodies go in the same transaction (a file body is unlinked below).
    let zero = zero.and_then(|hashes| {
        let mut files = Vec::with_capacity(hashes.len());
        let rows = hashes.len();
        let mut stmt = conn.prepare("DELETE FROM blob_bodies WHERE hash = ?1")?;
        for hash in hashes {
            if stmt.execute([&hash])? == 0 {
                files.push(hash);
            }
        }
        Ok((rows, files))
    });
    let zero = match zero {
        Ok(z) => {
            conn.execute_batch("COMMIT").db()?;
            z
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e).db();
        }
    };
    let (zero_rows, zero) = zero;
    report.zero_rows = zero_rows;

    // Files without a row. Listed without the lock (the directory may be large); each candidate
    // is checked again under the write lock before it is unlinked, because another process may
    // be delivering the same content right now.
    let walk = blobs.walk().map_err(|e| io_err("listing blobs", e))?;
    let mut candidates = zero;
    {
        let mut stmt = conn.prepare("SELECT 1 FROM blobs WHERE hash = ?1").db()?;
        for hash in walk.blobs {
            if stmt
                .query_row([&hash], |_| Ok(()))
                .optional()
                .db()?
                .is_none()
            {
                candidates.push(hash);
            }
        }
    }
    report.orphan_files = unlink_unreferenced(conn, blobs, &candidates);

    report.tmp_files = remove_stale(&walk.temps);
    if report != SweepReport::default() {
        tracing::info!(?report, "blob store sweep");
    }
    Ok(report)
}

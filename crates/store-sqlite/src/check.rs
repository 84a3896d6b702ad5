//! `MailStore::check` for the embedded store (see `store::check` for the invariants): SQL over
//! one read snapshot, then every body read back — from `blob_bodies`, or its file — and hashed,
//! then the blob directory walked for files no row references.
//!
//! Beside a live server the snapshot and the directory can disagree for a moment: a body file
//! is written before its row commits, and unlinked after the commit that drops its last
//! reference. So a missing file is reported only if its row still exists in a fresh read, and
//! an unreferenced file only if it is older than the grace period and still has no row.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use store::backend::check_sql::QUERIES;
use store::{CheckReport, StoreResult};

use crate::blobs::{BlobDir, hash_of};
use crate::db::{Db, io_err};

/// Runs the check on `conn`, a read-only connection of the pool.
pub fn run(conn: &Connection, blobs: &BlobDir, grace: Duration) -> StoreResult<CheckReport> {
    conn.execute_batch("BEGIN").db()?;
    let snapshot = read_snapshot(conn, blobs);
    let _ = conn.execute_batch("COMMIT");
    let (mut report, known, missing) = snapshot?;

    // Confirmed against a fresh read: the last reference may have gone since the snapshot.
    for (hash, size) in missing {
        if row_exists(conn, &hash)? && !blobs.exists(&hash) {
            report.problem(format!("body {hash}: file missing ({size} bytes expected)"));
        }
    }

    let walk = blobs
        .walk()
        .map_err(|e| io_err("listing the blob directory", e))?;
    let now = SystemTime::now();
    for hash in walk.blobs {
        if known.contains(&hash) {
            continue;
        }
        let age = std::fs::metadata(blobs.path(&hash))
            .and_then(|m| m.modified())
            .map(|t| now.duration_since(t).unwrap_or_default());
        // Gone meanwhile (unlinked by a commit), or written by a delivery not yet committed.
        let Ok(age) = age else { continue };
        if age >= grace && !row_exists(conn, &hash)? {
            report.problem(format!(
                "body {hash}: file without a row (orphan, {}s old)",
                age.as_secs()
            ));
        }
    }
    Ok(report)
}

type Snapshot = (CheckReport, HashSet<String>, Vec<(String, i64)>);

/// Everything read inside the snapshot: the report so far, every blob row's hash, and the
/// file bodies found missing (to be confirmed).
fn read_snapshot(conn: &Connection, blobs: &BlobDir) -> StoreResult<Snapshot> {
    let count = |sql: &str| -> StoreResult<u64> {
        conn.query_row(sql, [], |r| r.get::<_, i64>(0))
            .db()
            .map(|n| n as u64)
    };
    let mut report = CheckReport {
        accounts: count("SELECT count(*) FROM accounts")?,
        mailboxes: count("SELECT count(*) FROM mailboxes")?,
        messages: count("SELECT count(*) FROM messages")?,
        blobs: count("SELECT count(*) FROM blobs")?,
        problems: Vec::new(),
    };
    // `bodies.rs`: a body row goes with its blobs row.
    let own = "SELECT 'body ' || bb.hash || ': stored in the database without a blobs row'
               FROM blob_bodies bb LEFT JOIN blobs b ON b.hash = bb.hash WHERE b.hash IS NULL";
    for sql in QUERIES.iter().copied().chain([own]) {
        let mut stmt = conn.prepare(sql).db()?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).db()?;
        for row in rows {
            report.problem(row.db()?);
        }
    }

    // Every body read back: the database's, or else its file.
    let mut known = HashSet::new();
    let mut missing = Vec::new();
    let mut stmt = conn
        .prepare(
            "SELECT b.hash, b.size, bb.body FROM blobs b
             LEFT JOIN blob_bodies bb ON bb.hash = b.hash",
        )
        .db()?;
    let mut rows = stmt.query([]).db()?;
    while let Some(row) = rows.next().db()? {
        let hash: String = row.get(0).db()?;
        let size: i64 = row.get(1).db()?;
        let body: Option<Vec<u8>> = row.get(2).db()?;
        let (len, actual) = match body {
            Some(b) => (b.len() as u64, hash_of(&b)),
            None => match hash_file(blobs, &hash) {
                Ok(found) => found,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    missing.push((hash.clone(), size));
                    known.insert(hash);
                    continue;
                }
                Err(e) => {
                    report.problem(format!("body {hash}: unreadable: {e}"));
                    known.insert(hash);
                    continue;
                }
            },
        };
        if len != size as u64 {
            report.problem(format!("body {hash}: {len} bytes, {size} recorded"));
        } else if actual != hash {
            report.problem(format!("body {hash}: content hashes to {actual}"));
        }
        known.insert(hash);
    }
    Ok((report, known, missing))
}

/// The length and SHA-256 of a body file, streamed.
fn hash_file(blobs: &BlobDir, hash: &str) -> io::Result<(u64, String)> {
    let mut f = File::open(blobs.path(hash))?;
    let mut h = Sha256::new();
    let len = io::copy(&mut f, &mut h)?;
    Ok((len, hex::encode(h.finalize())))
}

fn row_exists(conn: &Connection, hash: &str) -> StoreResult<bool> {
    conn.query_row("SELECT 1 FROM blobs WHERE hash = ?1", [hash], |_| Ok(()))
        .optional()
        .db()
        .map(|r| r.is_some())
}

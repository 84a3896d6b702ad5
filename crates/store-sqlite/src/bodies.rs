//! Small message bodies kept inside the database (`blob_bodies`) instead of as files in the
//! blob directory.
//!
//! Why: a body written as a file costs two fsyncs of its own (the file, then its directory)
//! before the metadata commit's fsync of the WAL. A body inside the database rides in that one
//! commit, so a message of a few KiB — most mail — is made durable by a single fsync, and
//! concurrent deliveries share even that one through the writer's group commit. Large bodies
//! stay files: in the database they would be written twice (WAL, then checkpoint) and bloat
//! the WAL.
//!
//! Invariants (with the `blobs` table, see `prim.rs`): a `blobs` row of at most
//! [`INLINE_MAX`] bytes created by this version has its body row, inserted in the same
//! transaction; the body row is deleted in the transaction that deletes the `blobs` row.
//! Older stores may still hold small bodies as files, so every read falls back to the file.

use rusqlite::{Connection, OptionalExtension, params};
use store::StoreResult;

use crate::blobs::{BlobDir, hash_of};
use crate::db::Db;

/// Bodies of at most this many bytes are stored in the database.
pub const INLINE_MAX: u64 = 32 * 1024;

/// Whether a body of `size` bytes belongs in the database.
pub fn is_inline(size: u64) -> bool {
    size <= INLINE_MAX
}

/// Prepares bodies for one metadata transaction and returns their hashes, in order: large
/// bodies are written durably to the blob directory first ("blob before metadata"), together
/// ([`BlobDir::store_many`], one flush for the whole batch); small ones are only hashed, their
/// bytes going into the transaction itself ([`put`]).
pub fn prepare_many(blobs: &BlobDir, bytes: &[impl AsRef<[u8]>]) -> std::io::Result<Vec<String>> {
    let mut hashes: Vec<Option<String>> = Vec::with_capacity(bytes.len());
    let mut large: Vec<&[u8]> = Vec::new();
    for b in bytes {
        let b = b.as_ref();
        if is_inline(b.len() as u64) {
            hashes.push(Some(hash_of(b)));
        } else {
            hashes.push(None);
            large.push(b);
        }
    }
    let mut stored = blobs.store_many(&large)?.into_iter();
    Ok(hashes
        .into_iter()
        .map(|h| h.or_else(|| stored.next()).unwrap_or_default())
        .collect())
}

/// Stores the body of `hash` (inside the caller's transaction).
pub fn put(conn: &Connection, hash: &str, bytes: &[u8]) -> StoreResult<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO blob_bodies (hash, body) VALUES (?1, ?2)")
        .db()?
        .execute(params![hash, bytes])
        .db()?;
    Ok(())
}

/// Deletes the body of `hash`; whether there was one (if not, the body is a file).
pub fn delete(conn: &Connection, hash: &str) -> StoreResult<bool> {
    let n = conn
        .prepare_cached("DELETE FROM blob_bodies WHERE hash = ?1")
        .db()?
        .execute([hash])
        .db()?;
    Ok(n > 0)
}

/// The body of `hash` if the database holds it.
pub fn get(conn: &Connection, hash: &str) -> StoreResult<Option<Vec<u8>>> {
    conn.prepare_cached("SELECT body FROM blob_bodies WHERE hash = ?1")
        .db()?
        .query_row([hash], |r| r.get(0))
        .optional()
        .db()
}

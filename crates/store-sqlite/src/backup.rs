//! Online backup and restore of the embedded store (`yubin backup` / `yubin restore`).
//!
//! A backup is a directory: `yubin.db`, a standalone copy of the database made with SQLite's
//! `VACUUM INTO` (one read transaction, so one consistent moment of every table, taken while
//! the server keeps writing: WAL readers never block the writer), the blob files that copy
//! references (`blobs/ab/<hash>`, the same layout as the data directory), and
//! `yubin-backup.txt`, written last, which marks the backup complete.
//!
//! Blob files are immutable (content-addressed, written once before any row refers to them),
//! so copying them after the snapshot copies exactly what it references — unless the server
//! expunged a message and unlinked its body between the snapshot and the copy. Then the
//! snapshot is taken again (the blobs already copied are kept) until every referenced body is
//! there. Files of the data directory other than the store (`tls/`, `dkim/`) are copied too.
//!
//! A restore copies all of it into an empty data directory and checks every blob's SHA-256.
//! UIDVALIDITY, UIDs and MODSEQs are rows of the database, so clients see the same
//! mailboxes and download nothing again.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use store::{StoreError, StoreResult};

use crate::blobs::{BlobDir, hash_of, is_valid_hash};
use crate::db::{Db, io_err};

/// The file that marks a complete backup.
pub const MANIFEST: &str = "yubin-backup.txt";
/// How many snapshots are taken before giving up when bodies keep vanishing under the copy.
const ATTEMPTS: usize = 10;
/// Directories of the data directory that are copied as they are.
const EXTRA_DIRS: &[&str] = &["tls", "dkim"];

/// What a backup or restore copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    pub messages: u64,
    pub blobs: u64,
    pub bytes: u64,
    /// How many snapshots were taken (more than 1 when bodies were expunged meanwhile).
    pub snapshots: usize,
}

/// Backs up the store in `data_dir` (which a server may be using) into `dest`, which must
/// not exist or be empty.
pub fn backup(data_dir: &Path, dest: &Path) -> StoreResult<BackupReport> {
    let db_path = data_dir.join("yubin.db");
    if !db_path.is_file() {
        return Err(StoreError::NotFound(format!(
            "no store in {} (no yubin.db)",
            data_dir.display()
        )));
    }
    ensure_empty(dest)?;
    let src_blobs = data_dir.join("blobs");
    let dest_blobs = BlobDir::open(dest.join("blobs")).map_err(|e| io_err("backup blobs", e))?;
    let conn = crate::schema::connect(&db_path, true)?;
    let snapshot = dest.join("yubin.db");
    let mut copied: HashSet<String> = HashSet::new();
    let mut report = BackupReport::default();
    for attempt in 1..=ATTEMPTS {
        let _ = fs::remove_file(&snapshot);
        conn.execute("VACUUM INTO ?1", [snapshot.to_string_lossy().as_ref()])
            .db()?;
        let snap = Connection::open(&snapshot).db()?;
        let hashes = referenced(&snap)?;
        report.messages = snap
            .query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0))
            .db()? as u64;
        drop(snap);
        let mut missing = false;
        for hash in &hashes {
            if copied.contains(hash) {
                continue;
            }
            let from = src_blobs.join(&hash[..2]).join(hash);
            match fs::copy(&from, dest_blobs.path(hash)) {
                Ok(_) => {
                    copied.insert(hash.clone());
                }
                // Expunged and unlinked after the snapshot: take a newer one.
                Err(e) if e.kind() == io::ErrorKind::NotFound => missing = true,
                Err(e) => return Err(io_err("copying a blob", e)),
            }
        }
        report.snapshots = attempt;
        if !missing {
            // Bodies copied for an earlier snapshot that this one no longer references.
            for stale in copied.difference(&hashes) {
                let _ = fs::remove_file(dest_blobs.path(stale));
            }
            report.blobs = hashes.len() as u64;
            report.bytes = hashes
                .iter()
                .filter_map(|h| fs::metadata(dest_blobs.path(h)).ok())
                .map(|m| m.len())
                .sum();
            for extra in EXTRA_DIRS {
                copy_tree(&data_dir.join(extra), &dest.join(extra))
                    .map_err(|e| io_err("copying the data directory", e))?;
            }
            sync_tree(dest).map_err(|e| io_err("flushing the backup", e))?;
            let manifest = format!(
                "yubin backup\nformat 1\nschema {}\nmessages {}\nblobs {}\nbytes {}\n",
                crate::SCHEMA_VERSION,
                report.messages,
                report.blobs,
                report.bytes
            );
            write_durably(&dest.join(MANIFEST), manifest.as_bytes())
                .map_err(|e| io_err("writing the backup manifest", e))?;
            return Ok(report);
        }
    }
    Err(StoreError::Temporary(format!(
        "message bodies kept vanishing during the copy ({ATTEMPTS} snapshots); try again"
    )))
}

/// Restores the backup in `src` into `data_dir`, which must not exist or be empty (no server
/// may run on it). Every blob is checked against its hash before the database is put in place.
pub fn restore(src: &Path, data_dir: &Path) -> StoreResult<BackupReport> {
    let manifest = fs::read_to_string(src.join(MANIFEST)).map_err(|_| {
        StoreError::Invalid(format!(
            "{} is not a complete yubin backup (no {MANIFEST})",
            src.display()
        ))
    })?;
    if !manifest.starts_with("yubin backup\nformat 1\n") {
        return Err(StoreError::Invalid(format!(
            "{MANIFEST}: unknown backup format"
        )));
    }
    ensure_empty(data_dir)?;
    let snap = Connection::open_with_flags(
        src.join("yubin.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .db()?;
    let hashes = referenced(&snap)?;
    let messages = snap
        .query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0))
        .db()? as u64;
    drop(snap);
    let dest_blobs = BlobDir::open(data_dir.join("blobs")).map_err(|e| io_err("blobs", e))?;
    let mut report = BackupReport {
        messages,
        snapshots: 1,
        ..Default::default()
    };
    for hash in &hashes {
        let from = src.join("blobs").join(&hash[..2]).join(hash);
        let bytes = fs::read(&from)
            .map_err(|e| StoreError::Invalid(format!("the backup lacks the body {hash}: {e}")))?;
        if hash_of(&bytes) != *hash {
            return Err(StoreError::Invalid(format!(
                "the backup's body {hash} is damaged (its SHA-256 differs)"
            )));
        }
        fs::write(dest_blobs.path(hash), &bytes).map_err(|e| io_err("restoring a blob", e))?;
        report.blobs += 1;
        report.bytes += bytes.len() as u64;
    }
    for extra in EXTRA_DIRS {
        copy_tree(&src.join(extra), &data_dir.join(extra))
            .map_err(|e| io_err("restoring the data directory", e))?;
    }
    // The database last, through a temporary name: a data directory with `yubin.db` is a
    // complete one.
    let tmp = data_dir.join("yubin.db.restore.tmp");
    fs::copy(src.join("yubin.db"), &tmp).map_err(|e| io_err("restoring the database", e))?;
    sync_tree(data_dir).map_err(|e| io_err("flushing the data directory", e))?;
    fs::rename(&tmp, data_dir.join("yubin.db")).map_err(|e| io_err("restoring", e))?;
    fs::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("flushing the data directory", e))?;
    Ok(report)
}

/// The body files a database references: `blobs` rows still counted (rows at zero are left
/// for the sweep, and their files may be gone) whose body is not in the database itself
/// (`bodies.rs`: small bodies travel inside the snapshot).
fn referenced(conn: &Connection) -> StoreResult<HashSet<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT hash FROM blobs WHERE refcount > 0
               AND NOT EXISTS (SELECT 1 FROM blob_bodies WHERE blob_bodies.hash = blobs.hash)",
        )
        .db()?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).db()?;
    let mut out = HashSet::new();
    for h in rows {
        let h = h.db()?;
        if !is_valid_hash(&h) {
            return Err(StoreError::Invalid(format!(
                "bad blob hash in the database: {h:?}"
            )));
        }
        out.insert(h);
    }
    Ok(out)
}

/// Creates `dir`, refusing one that has anything in it.
fn ensure_empty(dir: &Path) -> StoreResult<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(StoreError::Exists(format!(
                    "{} is not empty",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| io_err("creating the directory", e))
        }
        Err(e) => Err(io_err("reading the directory", e)),
    }
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target: PathBuf = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Makes everything written under `dir` durable: one file-system flush on Linux
/// (`syncfs(2)`), else an fsync of every file and directory.
fn sync_tree(dir: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        crate::blobs::syncfs(dir)
    }
    #[cfg(not(target_os = "linux"))]
    {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                sync_tree(&entry.path())?;
            } else {
                fs::File::open(entry.path())?.sync_all()?;
            }
        }
        fs::File::open(dir)?.sync_all()
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    if let Some(parent) = path.parent() {
        fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

//! The content-addressed blob directory: one file per distinct message body, named by the
//! lower-case hex SHA-256 of its bytes, at `blobs/ab/<hash>` (git-style, one fan-out level).
//!
//! The 256 fan-out directories are created once when the store opens, so a delivery never
//! pays for a `mkdir` and the fsync of its parent: a second level (`ab/cd/`) would make nearly
//! every message of a young store create a directory.
//!
//! Invariants (with the `blobs` table, see `writer.rs`):
//! - A file is complete once it has its final name: it is written to a temporary name in its
//!   final directory (`.<hash>.<pid>.<n>.tmp`), fsync'd, renamed into place, and its directory
//!   fsync'd ("blob before metadata"). Temporary files live beside their target rather than in
//!   one shared directory so concurrent writers do not all contend for one directory lock.
//! - A file is unlinked only while holding SQLite's write lock and after checking that no row
//!   references it; a row is inserted only while holding that lock and after checking that the
//!   file exists (re-writing it if not). So a committed row always has its file.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// Temporary files older than this are left over from a crash and may be removed.
pub const STALE_TMP_AGE: Duration = Duration::from_secs(3600);

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

pub struct BlobDir {
    root: PathBuf,
    /// Hashes (as bytes, 32 each) whose file and directory entry this process made durable:
    /// storing the same bytes again needs no fsync. Dropped at unlink; cleared when it
    /// reaches [`DURABLE_MEMORY`] entries, and freed when the server gives memory back
    /// ([`forget_durable`](Self::forget_durable)).
    durable: Mutex<HashSet<[u8; 32]>>,
}

/// How many durable hashes [`BlobDir`] remembers: what repeats is recent (one message to many
/// local recipients, a list's burst), and the table stays under 1 MiB.
const DURABLE_MEMORY: usize = 16_384;

/// A blob name as the 32 bytes it spells; `None` for anything that is not one.
fn hash_key(hash: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hash, &mut key).ok()?;
    Some(key)
}

/// Whether `s` looks like a blob name (64 lower-case hex digits); anything else is refused
/// before it can reach the file system.
pub fn is_valid_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn hash_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl BlobDir {
    /// Creates `root` if needed.
    pub fn open(root: PathBuf) -> io::Result<BlobDir> {
        let dir = BlobDir {
            root,
            durable: Mutex::new(HashSet::new()),
        };
        fs::create_dir_all(&dir.root)?;
        if let Some(parent) = dir.root.parent() {
            fsync_dir(parent)?;
        }
        let mut created = false;
        for i in 0..=255u8 {
            match fs::create_dir(dir.root.join(format!("{i:02x}"))) {
                Ok(()) => created = true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        if created {
            fsync_dir(&dir.root)?;
        }
        Ok(dir)
    }

    /// `root/ab/<hash>`; the caller has checked [`is_valid_hash`].
    pub fn path(&self, hash: &str) -> PathBuf {
        self.root.join(hash.get(0..2).unwrap_or("00")).join(hash)
    }

    /// Hashes `bytes` and makes sure the blob is durably on disk; returns its hash.
    pub fn store(&self, bytes: &[u8]) -> io::Result<String> {
        let hash = hash_of(bytes);
        self.ensure(&hash, bytes)?;
        Ok(hash)
    }

    /// Makes sure the file for `hash` exists durably with `bytes` as content. An existing file
    /// of the right size is kept (it was fsync'd before its rename); its directory is fsync'd
    /// again in case the process that renamed it crashed before doing so.
    pub fn ensure(&self, hash: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(hash);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        if let Ok(meta) = fs::metadata(&path)
            && meta.is_file()
            && meta.len() == bytes.len() as u64
        {
            if self.known_durable(hash) {
                return Ok(());
            }
            fsync_dir(&dir)?;
            self.remember_durable(hash);
            return Ok(());
        }
        self.create_dirs(&dir)?;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{hash}.{}.{n}.tmp", std::process::id()));
        let result = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, &path)?;
            fsync_dir(&dir)
        })();
        match &result {
            Ok(()) => self.remember_durable(hash),
            Err(_) => {
                let _ = fs::remove_file(&tmp);
            }
        }
        result
    }

    /// [`store`](Self::store) for many bodies with one flush for all of them instead of two
    /// fsyncs each (a bulk import of 100,000 messages cannot pay 10 ms per message): every new
    /// body is written to its temporary file, the file system is flushed (`syncfs(2)`), the
    /// files are renamed into place, and it is flushed again — so, as with [`ensure`](Self::ensure),
    /// a file has its final name only once its bytes are durable, and returns only once the
    /// name is. Batches of fewer than [`BATCH_SYNC_MIN`] new bodies, and systems without
    /// `syncfs`, take the per-file path (a flush of the whole file system costs more than a
    /// few fsyncs when other programs have much unwritten data). Returns the hashes in order.
    pub fn store_many(&self, bodies: &[&[u8]]) -> io::Result<Vec<String>> {
        let hashes: Vec<String> = bodies.iter().map(|b| hash_of(b)).collect();
        let mut fresh: Vec<(usize, &str)> = Vec::new();
        let mut seen = HashSet::new();
        for (i, hash) in hashes.iter().enumerate() {
            if !seen.insert(hash.as_str()) {
                continue;
            }
            let exists = fs::metadata(self.path(hash))
                .is_ok_and(|m| m.is_file() && m.len() == bodies[i].len() as u64);
            if !(exists && self.known_durable(hash)) {
                fresh.push((i, hash.as_str()));
            }
        }
        if fresh.len() < BATCH_SYNC_MIN || !cfg!(target_os = "linux") {
            for (i, hash) in fresh {
                self.ensure(hash, bodies[i])?;
            }
            return Ok(hashes);
        }
        let mut renames = Vec::with_capacity(fresh.len());
        let result = (|| {
            for &(i, hash) in &fresh {
                let path = self.path(hash);
                if fs::metadata(&path)
                    .is_ok_and(|m| m.is_file() && m.len() == bodies[i].len() as u64)
                {
                    // Renamed into place by a writer that fsync'd it first; only its
                    // directory entry needs the flush below.
                    continue;
                }
                let dir = path.parent().unwrap_or(&self.root).to_path_buf();
                self.create_dirs(&dir)?;
                let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
                let tmp = dir.join(format!(".{hash}.{}.{n}.tmp", std::process::id()));
                let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
                renames.push((tmp, path));
                f.write_all(bodies[i])?;
            }
            syncfs(&self.root)?;
            for (tmp, path) in &renames {
                fs::rename(tmp, path)?;
            }
            syncfs(&self.root)
        })();
        if let Err(e) = result {
            for (tmp, _) in &renames {
                let _ = fs::remove_file(tmp);
            }
            return Err(e);
        }
        for (_, hash) in fresh {
            self.remember_durable(hash);
        }
        Ok(hashes)
    }

    fn known_durable(&self, hash: &str) -> bool {
        let Some(key) = hash_key(hash) else {
            return false;
        };
        let set = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        set.contains(&key)
    }

    fn remember_durable(&self, hash: &str) {
        let Some(key) = hash_key(hash) else { return };
        let mut set = self.durable.lock().unwrap_or_else(|e| e.into_inner());
        if set.len() >= DURABLE_MEMORY {
            set.clear();
        }
        set.insert(key);
    }

    /// Forgets which files are known durable and frees the table: the next store of the same
    /// bytes fsyncs its directory once more.
    pub fn forget_durable(&self) {
        *self.durable.lock().unwrap_or_else(|e| e.into_inner()) = HashSet::new();
    }

    /// `mkdir` each missing level below the root, fsync'ing the parent of each new directory so
    /// the directory entry itself is durable.
    fn create_dirs(&self, dir: &Path) -> io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        let rel = dir.strip_prefix(&self.root).unwrap_or(dir);
        let mut cur = self.root.clone();
        for part in rel.components() {
            let parent = cur.clone();
            cur.push(part);
            match fs::create_dir(&cur) {
                Ok(()) => fsync_dir(&parent)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub fn exists(&self, hash: &str) -> bool {
        self.path(hash).is_file()
    }

    /// Removes a blob file; a missing file is not an error.
    pub fn remove(&self, hash: &str) -> io::Result<()> {
        if let Some(key) = hash_key(hash) {
            self.durable
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
        }
        match fs::remove_file(self.path(hash)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Walks the fan-out directories: every blob file's hash, and every temporary file with
    /// its age. Other names are ignored.
    pub fn walk(&self) -> io::Result<Walk> {
        let (mut blobs, mut temps) = (Vec::new(), Vec::new());
        let now = SystemTime::now();
        for l1 in fs::read_dir(&self.root)? {
            let l1 = l1?;
            if !l1.file_type()?.is_dir() || l1.file_name().len() != 2 {
                continue;
            }
            for f in fs::read_dir(l1.path())? {
                let f = f?;
                if !f.file_type()?.is_file() {
                    continue;
                }
                let Some(name) = f.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if is_valid_hash(&name) {
                    blobs.push(name);
                } else if name.starts_with('.') && name.ends_with(".tmp") {
                    let modified = f.metadata()?.modified()?;
                    let age = now.duration_since(modified).unwrap_or_default();
                    temps.push((f.path(), age));
                }
            }
        }
        Ok(Walk { blobs, temps })
    }
}

/// Below this many new bodies [`BlobDir::store_many`] fsyncs each file instead of flushing
/// the whole file system.
pub const BATCH_SYNC_MIN: usize = 16;

/// Flushes every file and directory entry of the file system holding `dir` (`syncfs(2)`,
/// which reports write-back errors since Linux 5.8).
#[cfg(target_os = "linux")]
pub(crate) fn syncfs(dir: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let d = File::open(dir)?;
    // SAFETY: `d` is an open descriptor for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::syncfs(d.as_raw_fd()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn syncfs(dir: &Path) -> io::Result<()> {
    fsync_dir(dir)
}

/// What [`BlobDir::walk`] found.
pub struct Walk {
    /// Hashes of the blob files.
    pub blobs: Vec<String>,
    /// Temporary files with their age.
    pub temps: Vec<(PathBuf, Duration)>,
}

/// Removes temporary files older than [`STALE_TMP_AGE`] (younger ones may belong to another
/// process writing right now). Returns how many were removed.
pub fn remove_stale(temps: &[(PathBuf, Duration)]) -> usize {
    temps
        .iter()
        .filter(|(path, age)| *age > STALE_TMP_AGE && fs::remove_file(path).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_is_content_addressed_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        let h = blobs.store(b"hello").unwrap();
        assert_eq!(
            h,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(blobs.store(b"hello").unwrap(), h);
        let p = blobs.path(&h);
        assert!(p.ends_with(format!("2c/{h}")));
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        let walk = blobs.walk().unwrap();
        assert_eq!(walk.blobs, vec![h.clone()]);
        assert!(walk.temps.is_empty());
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        blobs.remove(&h).unwrap();
        blobs.remove(&h).unwrap();
        assert!(!blobs.exists(&h));
    }

    #[test]
    fn store_many_writes_every_body_once() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        let bodies: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("body {}", i % 30).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let hashes = blobs.store_many(&refs).unwrap();
        assert_eq!(hashes.len(), 40);
        for (h, b) in hashes.iter().zip(&bodies) {
            assert_eq!(h, &hash_of(b));
            assert_eq!(&fs::read(blobs.path(h)).unwrap(), b);
        }
        assert_eq!(hashes[3], hashes[33]);
        let walk = blobs.walk().unwrap();
        assert_eq!(walk.blobs.len(), 30);
        assert!(walk.temps.is_empty());
        // Again: nothing new to write.
        assert_eq!(blobs.store_many(&refs).unwrap(), hashes);
    }

    /// What is known durable is remembered by its 32 bytes, forgotten at unlink and when
    /// memory is given back, and bounded.
    #[test]
    fn the_durable_set_is_compact_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        let h = blobs.store(b"once").unwrap();
        assert!(blobs.known_durable(&h));
        assert_eq!(hash_key(&h).map(hex::encode), Some(h.clone()));
        assert_eq!(hash_key("not hex"), None);
        assert!(!blobs.known_durable("not hex"));
        blobs.forget_durable();
        assert!(!blobs.known_durable(&h));
        // Stored again: the file is kept and known durable once more.
        assert_eq!(blobs.store(b"once").unwrap(), h);
        assert!(blobs.known_durable(&h));
        blobs.remove(&h).unwrap();
        assert!(!blobs.known_durable(&h));
        for i in 0..DURABLE_MEMORY + 10 {
            blobs.remember_durable(&hash_of(&i.to_le_bytes()));
        }
        let len = blobs.durable.lock().unwrap().len();
        assert!(len <= DURABLE_MEMORY, "{len}");
    }

    #[test]
    fn hash_validation() {
        assert!(is_valid_hash(&"a".repeat(64)));
        assert!(!is_valid_hash(&"A".repeat(64)));
        assert!(!is_valid_hash("../../etc/passwd"));
        assert!(!is_valid_hash(&"a".repeat(63)));
    }
}

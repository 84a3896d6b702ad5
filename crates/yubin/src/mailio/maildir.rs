//! Maildir++ as Dovecot lays it out (its `maildir` mail_location, LAYOUT=maildir++): reading
//! for `yubin import maildir` and writing for `yubin export maildir`.
//!
//! - The root's `cur/` and `new/` are INBOX; every `.Name` directory beside them is a folder,
//!   `.` separating levels (`.Foo.Bar` → `Foo/Bar`). Names are modified UTF-7 on disk
//!   (RFC 3501 §5.1.3, as Dovecot writes them); a `.` or `%` inside a level, which Maildir++
//!   cannot hold, is written `%2E` / `%25` and read back.
//! - Flags are the letters after `:2,` in a file name (the "info" of the Maildir
//!   specification): S → `\Seen`, R → `\Answered`, F → `\Flagged`, T → `\Deleted`,
//!   D → `\Draft`; `a`–`z` are keywords, numbered by the folder's `dovecot-keywords` file
//!   (`0 $Forwarded` makes `a` mean `$Forwarded`), so at most 26 per folder.
//! - The internal date is the file's modification time (Dovecot's received date).
//! - Messages are taken in the order of the folder's `dovecot-uidlist` (so UIDs keep their
//!   order), then, for files it does not list, by name (names start with the delivery time).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use store::{Flags, SystemFlags};

/// The Maildir letters of the system flags, in the ASCII order a name must list them.
const LETTERS: [(char, SystemFlags); 5] = [
    ('D', SystemFlags::DRAFT),
    ('F', SystemFlags::FLAGGED),
    ('R', SystemFlags::ANSWERED),
    ('S', SystemFlags::SEEN),
    ('T', SystemFlags::DELETED),
];

/// One message file.
pub struct MessageFile {
    pub path: PathBuf,
    pub flags: Flags,
}

/// One folder of a Maildir++ tree and its messages, in import order.
pub struct Folder {
    /// The IMAP name (`INBOX` for the root).
    pub name: String,
    pub files: Vec<MessageFile>,
}

/// Every folder under `root` (INBOX first when it has `cur/` or `new/`).
pub fn scan(root: &Path) -> io::Result<Vec<Folder>> {
    if !root.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a directory", root.display()),
        ));
    }
    let mut folders = Vec::new();
    if root.join("cur").is_dir() || root.join("new").is_dir() {
        folders.push(read_folder(root, store::INBOX.to_string())?);
    }
    let mut subdirs: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.len() > 1
            && name.starts_with('.')
            && name != ".."
            && path.is_dir()
            && (path.join("cur").is_dir() || path.join("new").is_dir())
        {
            subdirs.push((folder_name(&name[1..]), path));
        }
    }
    subdirs.sort();
    for (name, path) in subdirs {
        folders.push(read_folder(&path, name)?);
    }
    Ok(folders)
}

/// The IMAP name of the Maildir++ directory `.{dir}` (without its dot).
pub fn folder_name(dir: &str) -> String {
    dir.split('.')
        .map(|level| {
            let level = level.replace("%2E", ".").replace("%2e", ".");
            let level = level.replace("%25", "%");
            imap_proto::decode_mutf7(&level).unwrap_or(level)
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The Maildir++ directory (with its dot) of the IMAP name `name` (not INBOX).
pub fn folder_dir(name: &str) -> String {
    let levels: Vec<String> = name
        .split('/')
        .map(|level| {
            imap_proto::encode_mutf7(level)
                .replace('%', "%25")
                .replace('.', "%2E")
        })
        .collect();
    format!(".{}", levels.join("."))
}

fn read_folder(dir: &Path, name: String) -> io::Result<Folder> {
    let keywords = read_keywords(dir);
    let order = read_uidlist(dir);
    let mut files: Vec<(u64, String, MessageFile)> = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            let (base, info) = match file.split_once(":2,") {
                Some((b, i)) => (b.to_string(), i),
                None => (file.clone(), ""),
            };
            let flags = parse_info(info, &keywords);
            let rank = order.get(&base).map_or(u64::MAX, |&u| u64::from(u));
            files.push((
                rank,
                base,
                MessageFile {
                    path: entry.path(),
                    flags,
                },
            ));
        }
    }
    files.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(Folder {
        name,
        files: files.into_iter().map(|(_, _, f)| f).collect(),
    })
}

/// The flags of a name's info part (after `:2,`), keywords through `keywords`.
pub fn parse_info(info: &str, keywords: &[Option<String>]) -> Flags {
    let mut flags = Flags::default();
    for c in info.chars() {
        if let Some((_, f)) = LETTERS.iter().find(|(l, _)| *l == c) {
            flags.system.insert(*f);
        } else if c.is_ascii_lowercase()
            && let Some(Some(k)) = keywords.get((c as u8 - b'a') as usize)
            && !flags.keywords.iter().any(|o| o.eq_ignore_ascii_case(k))
        {
            flags.keywords.push(k.clone());
        }
    }
    flags
}

/// `dovecot-keywords`: `N name` lines; index N is the letter `a` + N. Keywords that are not
/// IMAP atoms are left out.
fn read_keywords(dir: &Path) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = Vec::new();
    let Ok(text) = fs::read_to_string(dir.join("dovecot-keywords")) else {
        return out;
    };
    for line in text.lines() {
        let Some((n, name)) = line.split_once(' ') else {
            continue;
        };
        let (Ok(n), name) = (n.parse::<usize>(), name.trim()) else {
            continue;
        };
        if n < 26 && store::backend::keywords::check_keyword(name).is_ok() {
            if out.len() <= n {
                out.resize(n + 1, None);
            }
            out[n] = Some(name.to_string());
        }
    }
    out
}

/// `dovecot-uidlist`: a header line, then `UID [fields] :basename` (version 3) or
/// `UID basename` (version 1) per message. Base name → UID.
fn read_uidlist(dir: &Path) -> HashMap<String, u32> {
    let mut out = HashMap::new();
    let Ok(text) = fs::read_to_string(dir.join("dovecot-uidlist")) else {
        return out;
    };
    for line in text.lines().skip(1) {
        let Some((uid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(uid) = uid.parse::<u32>() else {
            continue;
        };
        let base = match rest.find(':') {
            Some(i) => &rest[i + 1..],
            None => rest.trim(),
        };
        out.insert(base.to_string(), uid);
    }
    out
}

/// Seconds since the epoch of the file's modification time.
pub fn mtime(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// Writes one folder of an export. Keeps what an earlier export of the same folder wrote:
/// files are named after the mailbox's UIDVALIDITY and the message's UID, so a second run
/// skips messages whose file exists (renaming it when the flags changed).
pub struct FolderWriter {
    dir: PathBuf,
    keywords: Vec<String>,
    /// Base name → current file name in `cur/`.
    existing: HashMap<String, String>,
    uidlist: Vec<(u32, String)>,
    /// Keywords left out because the folder already has 26.
    pub dropped_keywords: u64,
}

impl FolderWriter {
    /// Opens (creating) the folder `dir` (the root for INBOX).
    pub fn open(dir: PathBuf, is_inbox: bool) -> io::Result<FolderWriter> {
        for sub in ["cur", "new", "tmp"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        if !is_inbox {
            // Maildir++: marks a folder (Dovecot and Courier create it).
            fs::write(dir.join("maildirfolder"), b"")?;
        }
        let keywords = read_keywords(&dir)
            .into_iter()
            .map(Option::unwrap_or_default)
            .collect();
        let mut existing = HashMap::new();
        for sub in ["cur", "new"] {
            for entry in fs::read_dir(dir.join(sub))? {
                let file = entry?.file_name().to_string_lossy().into_owned();
                let base = file.split_once(":2,").map_or(file.as_str(), |(b, _)| b);
                existing.insert(base.to_string(), format!("{sub}/{file}"));
            }
        }
        Ok(FolderWriter {
            dir,
            keywords,
            existing,
            uidlist: Vec::new(),
            dropped_keywords: 0,
        })
    }

    /// The file base name of message `uid`.
    pub fn base_name(date: i64, uid_validity: u32, uid: u32, size: u64) -> String {
        format!("{date}.Y{uid_validity}U{uid}.yubin,S={size}")
    }

    /// Whether message `base` was written by an earlier run; if so its flags are brought up
    /// to date (a rename) and it is listed in `dovecot-uidlist`.
    pub fn keep_existing(&mut self, uid: u32, base: &str, flags: &Flags) -> io::Result<bool> {
        let Some(current) = self.existing.get(base).cloned() else {
            return Ok(false);
        };
        let wanted = format!("cur/{base}:2,{}", self.info(flags));
        if current != wanted {
            fs::rename(self.dir.join(&current), self.dir.join(&wanted))?;
        }
        self.uidlist.push((uid, base.to_string()));
        Ok(true)
    }

    /// Writes a message (through `tmp/`, as the Maildir specification asks) into `cur/`
    /// with `date` as its modification time.
    pub fn write(
        &mut self,
        uid: u32,
        base: &str,
        bytes: &[u8],
        flags: &Flags,
        date: i64,
    ) -> io::Result<()> {
        let tmp = self.dir.join("tmp").join(base);
        let file = fs::File::create(&tmp)?;
        io::Write::write_all(&mut &file, bytes)?;
        let when = if date >= 0 {
            UNIX_EPOCH + std::time::Duration::from_secs(date as u64)
        } else {
            UNIX_EPOCH
        };
        file.set_times(
            fs::FileTimes::new()
                .set_modified(when)
                .set_accessed(SystemTime::now()),
        )?;
        drop(file);
        let name = format!("cur/{base}:2,{}", self.info(flags));
        fs::rename(&tmp, self.dir.join(name))?;
        self.uidlist.push((uid, base.to_string()));
        Ok(())
    }

    /// The info letters of `flags`, assigning keyword letters as needed.
    fn info(&mut self, flags: &Flags) -> String {
        let mut letters: Vec<char> = LETTERS
            .iter()
            .filter(|(_, f)| flags.system.contains(*f))
            .map(|(c, _)| *c)
            .collect();
        for k in &flags.keywords {
            let i = match self.keywords.iter().position(|o| o.eq_ignore_ascii_case(k)) {
                Some(i) => i,
                None if self.keywords.len() < 26 => {
                    self.keywords.push(k.clone());
                    self.keywords.len() - 1
                }
                None => {
                    self.dropped_keywords += 1;
                    continue;
                }
            };
            letters.push((b'a' + i as u8) as char);
        }
        letters.sort_unstable();
        letters.dedup();
        letters.into_iter().collect()
    }

    /// Writes `dovecot-keywords` and `dovecot-uidlist` (so Dovecot, and a later import, keep
    /// the UIDs' order).
    pub fn finish(mut self, uid_validity: u32, uid_next: u32) -> io::Result<()> {
        let mut kw = String::new();
        for (i, k) in self.keywords.iter().enumerate() {
            if !k.is_empty() {
                kw.push_str(&format!("{i} {k}\n"));
            }
        }
        fs::write(self.dir.join("dovecot-keywords"), kw)?;
        self.uidlist.sort();
        let mut list = format!("3 V{uid_validity} N{uid_next}\n");
        for (uid, base) in &self.uidlist {
            list.push_str(&format!("{uid} :{base}\n"));
        }
        fs::write(self.dir.join("dovecot-uidlist"), list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_round_trip() {
        assert_eq!(folder_name("Foo.Bar"), "Foo/Bar");
        assert_eq!(folder_name("Entw&APw-rfe"), "Entwürfe");
        for name in ["Sent", "Foo/Bar", "Entwürfe/日本", "a.b/100%"] {
            let dir = folder_dir(name);
            assert_eq!(folder_name(&dir[1..]), name, "{dir}");
        }
        assert_eq!(folder_dir("Foo/Bar"), ".Foo.Bar");
    }

    #[test]
    fn info_letters() {
        let kw = vec![
            Some("$Forwarded".to_string()),
            None,
            Some("work".to_string()),
        ];
        let f = parse_info("FRSac", &kw);
        assert!(f.system.contains(SystemFlags::FLAGGED));
        assert!(f.system.contains(SystemFlags::ANSWERED));
        assert!(f.system.contains(SystemFlags::SEEN));
        assert!(!f.system.contains(SystemFlags::DRAFT));
        assert_eq!(f.keywords, ["$Forwarded", "work"]);
        let f = parse_info("DTb", &kw);
        assert!(f.system.contains(SystemFlags::DRAFT) && f.system.contains(SystemFlags::DELETED));
        assert!(f.keywords.is_empty());
    }
}

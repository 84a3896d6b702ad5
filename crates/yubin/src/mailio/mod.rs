//! `yubin import` and `yubin export`: an account's mail from and to Maildir++ and mbox
//! (formats in `maildir.rs` and `mbox.rs`, the import engine in `import.rs`, the export in
//! `export.rs`). Both work while the server runs, on either storage backend.

pub mod export;
pub mod import;
pub mod maildir;
pub mod mbox;
pub mod progress;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use mail_types::Address;
use store::{AccountId, Store};

use crate::deliver_cli::crlf;
use import::{Item, Report, Sink};
use progress::Progress;

/// The account of `address` (an account's own address, not an alias).
pub async fn account_of(store: &dyn Store, address: &str) -> anyhow::Result<AccountId> {
    let parsed =
        Address::parse(address).map_err(|e| anyhow::anyhow!("invalid address {address:?}: {e}"))?;
    let user = store
        .find_user(&parsed)
        .await?
        .with_context(|| format!("{address}: no such account (see `yubin user add`)"))?;
    Ok(user.id)
}

/// `yubin import maildir PATH ADDRESS`.
pub async fn import_maildir(
    store: Arc<dyn Store>,
    path: &Path,
    address: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let account = account_of(store.as_ref(), address).await?;
    let folders = maildir::scan(path)
        .with_context(|| format!("cannot read the Maildir {}", path.display()))?;
    let total: usize = folders.iter().map(|f| f.files.len()).sum();
    let mut progress = Progress::new(total as u64, false);
    let report = import::run(store, account, &mut progress, move |sink: &mut Sink| {
        for folder in folders {
            sink.folder(&folder.name)?;
            for file in folder.files {
                let f = std::fs::File::open(&file.path)
                    .with_context(|| format!("cannot open {}", file.path.display()))?;
                let meta = f.metadata()?;
                let mut raw = Vec::with_capacity(meta.len() as usize);
                std::io::Read::read_to_end(&mut &f, &mut raw)
                    .with_context(|| format!("cannot read {}", file.path.display()))?;
                if raw.is_empty() {
                    continue;
                }
                sink.push(Item {
                    bytes: crlf(&raw),
                    flags: file.flags,
                    internal_date: maildir::mtime(&meta),
                    units: 1,
                })?;
            }
            sink.folder_end()?;
        }
        Ok(())
    })
    .await;
    progress.finish();
    summary(out, "imported", &report?, &progress)
}

/// `yubin import mbox FILE ADDRESS [--mailbox NAME] [--variant …]`. A directory FILE is read
/// as `yubin export mbox` writes one: each `NAME.mbox` under it into mailbox `NAME`.
pub async fn import_mbox(
    store: Arc<dyn Store>,
    path: &Path,
    address: &str,
    mailbox: Option<String>,
    variant: mbox::Variant,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let account = account_of(store.as_ref(), address).await?;
    let files: Vec<(String, PathBuf)> = if path.is_dir() {
        anyhow::ensure!(
            mailbox.is_none(),
            "--mailbox names the mailbox of one mbox file, not of a directory"
        );
        let mut found = Vec::new();
        mbox_files(path, path, &mut found)?;
        found.sort();
        found
    } else {
        vec![(
            mailbox.unwrap_or_else(|| store::INBOX.to_string()),
            path.to_path_buf(),
        )]
    };
    let mut total = 0;
    for (_, f) in &files {
        total += std::fs::metadata(f)
            .with_context(|| format!("cannot read {}", f.display()))?
            .len();
    }
    let mut progress = Progress::new(total, true);
    let now = chrono::Utc::now().timestamp();
    let report = import::run(store, account, &mut progress, move |sink: &mut Sink| {
        for (name, file) in files {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let mut reader = mbox::Reader::new(std::io::BufReader::new(f), variant);
            sink.folder(&name)?;
            while let Some(raw) = reader
                .next_message()
                .with_context(|| format!("cannot read {}", file.display()))?
            {
                let (bytes, flags) = mbox::take_state_headers(&raw.bytes);
                if bytes.is_empty() {
                    continue;
                }
                let internal_date = raw.from_date.or_else(|| date_header(&bytes)).unwrap_or(now);
                sink.push(Item {
                    bytes: crlf(&bytes),
                    flags,
                    internal_date,
                    units: raw.file_bytes,
                })?;
            }
            sink.folder_end()?;
        }
        Ok(())
    })
    .await;
    progress.finish();
    summary(out, "imported", &report?, &progress)
}

/// `NAME.mbox` files under `dir` as (mailbox name, path), names relative to `root`.
fn mbox_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            mbox_files(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "mbox") {
            let rel = path.strip_prefix(root).unwrap_or(&path).with_extension("");
            let name: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((name.join("/"), path));
        }
    }
    Ok(())
}

/// The `Date:` header's time (RFC 5322 §3.6.1), for messages whose `From ` line has none.
fn date_header(msg: &[u8]) -> Option<i64> {
    let end = msg
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(msg.len());
    let header = String::from_utf8_lossy(&msg[..end]);
    let line = header
        .lines()
        .find(|l| l.len() > 5 && l[..5].eq_ignore_ascii_case("date:"))?;
    chrono::DateTime::parse_from_rfc2822(line[5..].trim())
        .ok()
        .map(|d| d.timestamp())
}

pub fn summary(
    out: &mut dyn Write,
    verb: &str,
    r: &Report,
    progress: &Progress,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "{verb} {} messages ({} bytes) into {} mailboxes, skipped {} already there, in {:.1}s ({:.0} msgs/s)",
        r.imported,
        r.bytes,
        r.mailboxes,
        r.skipped,
        progress.elapsed().as_secs_f64(),
        progress.rate()
    )?;
    Ok(())
}

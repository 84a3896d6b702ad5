//! `yubin export maildir|mbox ADDRESS PATH`: every mailbox of an account, in UID order, with
//! flags, keywords and internal dates, so that `yubin import` of the result gives the same
//! messages back byte for byte.
//!
//! - Maildir: PATH is a Maildir++ root (INBOX in `cur/`, other mailboxes in `.Name`
//!   folders); files hold the stored bytes (CRLF line ends, which Dovecot reads as they are),
//!   carry the flags in their `:2,` suffix with `dovecot-keywords`, and the internal date as
//!   their modification time; `dovecot-uidlist` keeps the UID order. Resumed: a file named
//!   after the mailbox's UIDVALIDITY and the message's UID that exists already is not
//!   written again (only renamed if its flags changed).
//! - mbox: PATH is a directory with one mboxrd file per mailbox, `NAME.mbox` (`Foo/Bar` →
//!   `PATH/Foo/Bar.mbox`), LF line ends. Resumed: messages are appended to an existing file
//!   only when their UID is above the highest `X-UID` it holds.
//!
//! Both read a snapshot of each mailbox when they reach it; mail arriving meanwhile is in the
//! next run.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use store::{MailboxInfo, MessageMeta, Store};

use super::import::Report;
use super::maildir::{self, FolderWriter};
use super::mbox;
use super::progress::Progress;

/// Messages read from the store at a time.
const CHUNK: usize = 256;

/// The account's mailboxes (by name, INBOX first) and the messages to export.
async fn mailboxes(store: &dyn Store, address: &str) -> anyhow::Result<Vec<MailboxInfo>> {
    let account = super::account_of(store, address).await?;
    let mut all = store.list_mailboxes(account).await?;
    all.sort_by(|a, b| (a.name != store::INBOX, &a.name).cmp(&(b.name != store::INBOX, &b.name)));
    Ok(all)
}

pub async fn export_maildir(
    store: &dyn Store,
    address: &str,
    path: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let boxes = mailboxes(store, address).await?;
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    let total: u64 = boxes.iter().map(|m| u64::from(m.messages)).sum();
    let mut progress = Progress::new(total, false);
    let mut report = Report::default();
    let mut dropped = 0;
    for mb in &boxes {
        progress.folder(&mb.name);
        let is_inbox = mb.name == store::INBOX;
        let dir = if is_inbox {
            path.to_path_buf()
        } else {
            path.join(maildir::folder_dir(&mb.name))
        };
        let mut writer = FolderWriter::open(dir.clone(), is_inbox)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let metas = store.list_messages(mb.id).await?;
        for chunk in metas.chunks(CHUNK) {
            for m in chunk {
                let base = FolderWriter::base_name(m.internal_date, mb.uid_validity, m.uid, m.size);
                if writer.keep_existing(m.uid, &base, &m.flags)? {
                    report.skipped += 1;
                    continue;
                }
                let bytes = store.read_blob(&m.blob, m.size).await?;
                writer
                    .write(m.uid, &base, &bytes, &m.flags, m.internal_date)
                    .with_context(|| format!("cannot write into {}", dir.display()))?;
                report.imported += 1;
                report.bytes += bytes.len() as u64;
            }
            progress.advance(chunk.len() as u64, chunk.len() as u64, &mb.name);
        }
        dropped += writer.dropped_keywords;
        writer.finish(mb.uid_validity, mb.uid_next)?;
        report.mailboxes += 1;
        progress.folder_done(&mb.name);
    }
    sync(path)?;
    progress.finish();
    if dropped > 0 {
        writeln!(
            out,
            "warning: {dropped} keywords left out (a Maildir folder holds at most 26)"
        )?;
    }
    super::summary(out, "exported", &report, &progress)
}

pub async fn export_mbox(
    store: &dyn Store,
    address: &str,
    path: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let boxes = mailboxes(store, address).await?;
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    let total: u64 = boxes.iter().map(|m| u64::from(m.messages)).sum();
    let mut progress = Progress::new(total, false);
    let mut report = Report::default();
    for mb in &boxes {
        progress.folder(&mb.name);
        let file = path.join(format!("{}.mbox", mb.name));
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let last = match std::fs::File::open(&file) {
            Ok(f) => mbox::last_uid(std::io::BufReader::new(f))?,
            Err(_) => 0,
        };
        let metas = store.list_messages(mb.id).await?;
        let (old, new): (Vec<&MessageMeta>, Vec<&MessageMeta>) =
            metas.iter().partition(|m| m.uid <= last);
        report.skipped += old.len() as u64;
        progress.advance(old.len() as u64, old.len() as u64, &mb.name);
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .with_context(|| format!("cannot open {}", file.display()))?;
        let mut w = BufWriter::new(f);
        for chunk in new.chunks(CHUNK) {
            for m in chunk {
                let bytes = store.read_blob(&m.blob, m.size).await?;
                mbox::write_message(&mut w, &bytes, &m.flags, m.internal_date, m.uid)
                    .with_context(|| format!("cannot write {}", file.display()))?;
                report.imported += 1;
                report.bytes += bytes.len() as u64;
            }
            progress.advance(chunk.len() as u64, chunk.len() as u64, &mb.name);
        }
        w.flush()?;
        report.mailboxes += 1;
        progress.folder_done(&mb.name);
    }
    sync(path)?;
    progress.finish();
    super::summary(out, "exported", &report, &progress)
}

/// Makes the export durable before saying it is done: one flush of the file system.
fn sync(path: &Path) -> anyhow::Result<()> {
    use std::os::fd::AsRawFd;
    let d = std::fs::File::open(path)?;
    // SAFETY: `d` is an open descriptor for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::syncfs(d.as_raw_fd()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("flushing the export");
    }
    Ok(())
}

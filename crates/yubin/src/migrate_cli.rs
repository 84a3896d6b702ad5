//! `yubin migrate --to LOCATION` / `--from LOCATION`: copies a whole installation between
//! stores with `store::transfer::copy_store` — accounts with their password hashes, aliases,
//! mailboxes with UIDVALIDITY, UIDs, MODSEQs and flags, the expunge log, subscriptions and the
//! outbound queue — so clients download nothing again. The configured store is the source
//! (`--to`) or the target (`--from`); the target must be empty. The server must be stopped:
//! the embedded data directories are locked as the server locks them.
//!
//! A LOCATION is a data directory path (the embedded store) or a `postgres://` URL.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use store::transfer::{CopyReport, TransferStore, copy_store};

use crate::config::Config;
use crate::serve::lock_data_dir_exclusive;

/// Which way the copy goes, relative to the configured store.
pub enum Direction {
    To(String),
    From(String),
}

/// An opened store and what keeps other yubin processes off it meanwhile.
struct Opened {
    store: Arc<dyn TransferStore>,
    _lock: Option<std::fs::File>,
}

fn open_embedded(dir: &Path) -> anyhow::Result<Opened> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let lock = lock_data_dir_exclusive(dir)?;
    let options = store_sqlite::OpenOptions {
        sweep: true,
        ..Default::default()
    };
    let store = store_sqlite::open_with(dir, &options)
        .map_err(|e| anyhow::anyhow!("cannot open the store in {}: {e}", dir.display()))?;
    Ok(Opened {
        store,
        _lock: Some(lock),
    })
}

fn open_location(location: &str) -> anyhow::Result<Opened> {
    if location.starts_with("postgres://") || location.starts_with("postgresql://") {
        anyhow::bail!("this build of yubin has no PostgreSQL backend");
    }
    open_embedded(Path::new(location))
}

fn open_configured(config: &Config) -> anyhow::Result<Opened> {
    open_embedded(&config.data_dir)
}

pub async fn run(config: &Config, direction: Direction, out: &mut dyn Write) -> anyhow::Result<()> {
    let (from, to, label) = match &direction {
        Direction::To(loc) => (open_configured(config)?, open_location(loc)?, loc.as_str()),
        Direction::From(loc) => (open_location(loc)?, open_configured(config)?, loc.as_str()),
    };
    let mut lines = Vec::new();
    let report = copy_store(from.store.as_ref(), to.store.as_ref(), &mut |account, r| {
        lines.push(format!("copied {account} ({} messages so far)", r.messages));
    })
    .await
    .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "{}", summary(&report, &direction, label))?;
    Ok(())
}

fn summary(r: &CopyReport, direction: &Direction, location: &str) -> String {
    let way = match direction {
        Direction::To(_) => format!("to {location}"),
        Direction::From(_) => format!("from {location}"),
    };
    format!(
        "migrated {way}: {} domains, {} accounts, {} aliases, {} mailboxes, {} messages ({} bytes), {} queued messages",
        r.domains, r.accounts, r.aliases, r.mailboxes, r.messages, r.bytes, r.queued
    )
}

//! `yubin migrate --to LOCATION` / `--from LOCATION`: copies a whole installation between
//! stores with `store::transfer::copy_store` — accounts with their password hashes, aliases,
//! mailboxes with UIDVALIDITY, UIDs, MODSEQs and flags, the expunge log, subscriptions, the
//! outbound queue and the DKIM signing keys — so clients download nothing again and mail is
//! signed with the same keys. With `--to`, key files an older version left in `data_dir/dkim/`
//! are first imported into the configured store, so they are copied too. The configured store (`[storage]`) is
//! the source (`--to`) or the target (`--from`); the target must be empty. The servers must be
//! stopped: the embedded data directories are locked as the server locks them; a PostgreSQL
//! database cannot be, so stop every node on it first.
//!
//! A LOCATION is a data directory path (the embedded store) or a `postgres://` URL (its schema
//! is created when the database is empty; the password is never printed).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use store::transfer::{CopyReport, TransferStore, copy_store};

use crate::config::{Backend, Config};
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

/// Whether `location` names a PostgreSQL database rather than a data directory.
fn is_postgres(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// The PostgreSQL store at `url` (its schema created or upgraded). Nothing keeps a server off
/// a database the way a data directory is locked: the servers on it must be stopped.
async fn open_postgres(url: &str) -> anyhow::Result<Opened> {
    let options = store_postgres::ConnectOptions {
        // The copy makes one call at a time.
        pool_size: 2,
        ..Default::default()
    };
    let store = store_postgres::connect(url, &options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", redact(url)))?;
    Ok(Opened { store, _lock: None })
}

async fn open_location(location: &str) -> anyhow::Result<Opened> {
    if is_postgres(location) {
        return open_postgres(location).await;
    }
    open_embedded(Path::new(location))
}

async fn open_configured(config: &Config) -> anyhow::Result<Opened> {
    match (config.storage.backend, &config.storage.url) {
        (Backend::Postgres, Some(url)) => open_postgres(url).await,
        _ => open_embedded(&config.data_dir),
    }
}

/// `url` without its password (`postgres://user:secret@host/db` → `postgres://user:***@host/db`),
/// for messages and the summary.
fn redact(url: &str) -> String {
    if !is_postgres(url) {
        return url.to_string();
    }
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &authority[..colon],
                &url[scheme_end + at..]
            ),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

pub async fn run(config: &Config, direction: Direction, out: &mut dyn Write) -> anyhow::Result<()> {
    let (from, to, label) = match &direction {
        Direction::To(loc) => (
            open_configured(config).await?,
            open_location(loc).await?,
            redact(loc),
        ),
        Direction::From(loc) => (
            open_location(loc).await?,
            open_configured(config).await?,
            redact(loc),
        ),
    };
    let mut lines = Vec::new();
    if let Direction::To(_) = direction {
        // Key files an older version kept beside the configured store belong to the copy.
        for f in queue::dkim::import_key_files(&config.data_dir.join("dkim"), from.store.as_ref())
            .await
            .map_err(|e| anyhow::anyhow!("cannot import the DKIM key files: {e}"))?
        {
            lines.push(format!(
                "imported the key file {} ({} selector {})",
                f.path.display(),
                f.domain,
                f.selector
            ));
        }
    }
    let report = copy_store(from.store.as_ref(), to.store.as_ref(), &mut |account, r| {
        lines.push(format!("copied {account} ({} messages so far)", r.messages));
    })
    .await
    .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "{}", summary(&report, &direction, &label))?;
    Ok(())
}

fn summary(r: &CopyReport, direction: &Direction, location: &str) -> String {
    let way = match direction {
        Direction::To(_) => format!("to {location}"),
        Direction::From(_) => format!("from {location}"),
    };
    format!(
        "migrated {way}: {} domains, {} accounts, {} aliases, {} mailboxes, {} messages ({} bytes), {} queued messages, {} DKIM keys, {} bans",
        r.domains,
        r.accounts,
        r.aliases,
        r.mailboxes,
        r.messages,
        r.bytes,
        r.queued,
        r.dkim_keys,
        r.bans
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://yubin:s3cr@t@db:5432/mail?sslmode=disable"),
            "postgres://yubin:***@db:5432/mail?sslmode=disable"
        );
        assert_eq!(
            redact("postgresql://yubin@db/mail"),
            "postgresql://yubin@db/mail"
        );
        assert_eq!(redact("postgres://db/mail"), "postgres://db/mail");
        assert_eq!(redact("/var/lib/yubin"), "/var/lib/yubin");
    }
}

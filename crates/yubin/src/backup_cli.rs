//! `yubin backup PATH` and `yubin restore PATH` (the embedded store; see
//! `store_sqlite::backup` for how the snapshot stays consistent while the server runs).
//!
//! PostgreSQL keeps the metadata and the message bodies in the database, so `pg_dump` is its
//! backup: these commands say so and what else to copy instead of doing half the job.

use std::io::Write;
use std::path::Path;

use crate::config::{Backend, Config};

/// What a PostgreSQL installation backs up, instead of `yubin backup`.
fn postgres_advice(config_path: Option<&Path>) -> String {
    let config = config_path.map_or("the configuration file".to_string(), |p| {
        p.display().to_string()
    });
    format!(
        "the store is PostgreSQL ([storage] backend = \"postgres\"): every account, mailbox, \
         message body, queue entry and DKIM key is in the database, so back it up with \
         `pg_dump --format=custom --file=yubin.dump DBNAME` (consistent while the servers \
         run) and restore with `pg_restore --dbname=DBNAME yubin.dump` into an empty \
         database; also copy {config}, the TLS certificate and key files it names, and \
         data_dir/tls/ if the servers use their self-signed certificate"
    )
}

pub fn backup(
    config: &Config,
    config_path: Option<&Path>,
    dest: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if config.storage.backend == Backend::Postgres {
        anyhow::bail!("{}", postgres_advice(config_path));
    }
    let r = store_sqlite::backup::backup(&config.data_dir, dest)
        .map_err(|e| anyhow::anyhow!("backup failed: {e}"))?;
    writeln!(
        out,
        "backed up {} messages ({} bodies, {} bytes) from {} to {}{}",
        r.messages,
        r.blobs,
        r.bytes,
        config.data_dir.display(),
        dest.display(),
        if r.snapshots > 1 {
            format!(
                " ({} snapshots: mail was expunged during the copy)",
                r.snapshots
            )
        } else {
            String::new()
        }
    )?;
    Ok(())
}

pub fn restore(
    config: &Config,
    config_path: Option<&Path>,
    src: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if config.storage.backend == Backend::Postgres {
        anyhow::bail!("{}", postgres_advice(config_path));
    }
    let r = store_sqlite::backup::restore(src, &config.data_dir)
        .map_err(|e| anyhow::anyhow!("restore failed: {e}"))?;
    writeln!(
        out,
        "restored {} messages ({} bodies, {} bytes) from {} into {}",
        r.messages,
        r.blobs,
        r.bytes,
        src.display(),
        config.data_dir.display()
    )?;
    Ok(())
}

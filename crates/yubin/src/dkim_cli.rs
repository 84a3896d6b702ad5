//! `yubin dkim generate DOMAIN [--selector S] [--algorithm ed25519|rsa]` creates a signing key
//! in the store and prints the TXT record to publish (RFC 6376 §3.6.2.1: at
//! `S._domainkey.DOMAIN`); `yubin dkim list [DOMAIN]` shows the keys with their records;
//! `yubin dkim remove DOMAIN SELECTOR` deletes one.
//!
//! Keys live in the store (`[storage]`), so every node sharing it signs with them, and a running
//! server picks a new key up within a minute. Key files an older version wrote under
//! `data_dir/dkim/` are imported first (once; the files stay and may be deleted afterwards).

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail};
use store::{DkimAlgorithm, DkimKey, DkimKeyStore, StoreError};

use crate::cli::{self, DkimCommand};

/// A selector is one DNS label (RFC 6376 §3.1).
fn valid_selector(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
}

fn domain_arg(domain: &str) -> anyhow::Result<String> {
    let d = mail_types::Domain::parse(domain)
        .map_err(|e| anyhow!("{domain:?} is not a valid domain: {e}"))?;
    Ok(DkimKey::canonical_name(d.as_str()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn utc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// Imports the key files of older versions (see `queue::dkim::import_key_files`), then runs
/// `cmd` against `keys`.
pub async fn run(
    data_dir: &Path,
    keys: &dyn DkimKeyStore,
    cmd: DkimCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let imported = queue::dkim::import_key_files(&data_dir.join("dkim"), keys)
        .await
        .map_err(|e| anyhow!("cannot import the DKIM key files: {e}"))?;
    for f in imported {
        writeln!(
            out,
            "imported the key file {} ({} selector {}) into the store; the file may be deleted",
            f.path.display(),
            f.domain,
            f.selector
        )?;
    }
    match cmd {
        DkimCommand::Generate {
            domain,
            selector,
            algorithm,
        } => {
            let domain = domain_arg(&domain)?;
            let selector = selector.unwrap_or_else(|| format!("y{}", now() / 86400));
            if !valid_selector(&selector) {
                bail!("selector {selector:?} must be one DNS label (letters, digits, '-')");
            }
            let selector = DkimKey::canonical_name(&selector);
            let algorithm = match algorithm {
                cli::DkimAlgorithm::Ed25519 => DkimAlgorithm::Ed25519,
                cli::DkimAlgorithm::Rsa => DkimAlgorithm::Rsa,
            };
            let key = queue::dkim::generate(algorithm)
                .map_err(|e| anyhow!("key generation failed: {e}"))?;
            let record = DkimKey {
                domain: domain.clone(),
                selector: selector.clone(),
                algorithm,
                private_key_pem: key.pem,
                created_at: now(),
            };
            match keys.add_dkim_key(&record).await {
                Ok(()) => {}
                Err(StoreError::Exists(_)) => bail!(
                    "{domain} has a key with selector {selector} already (choose another --selector; `yubin dkim list` shows the keys)"
                ),
                Err(e) => bail!("cannot store the key: {e}"),
            }
            writeln!(out, "key stored for {domain} selector {selector}")?;
            writeln!(out, "publish this DNS record:")?;
            writeln!(
                out,
                "{}",
                queue::dkim::zone_line(&selector, &domain, &key.txt)
            )?;
        }
        DkimCommand::List { domain } => {
            let domain = domain.as_deref().map(domain_arg).transpose()?;
            let list = keys
                .dkim_keys(domain.as_deref())
                .await
                .map_err(|e| anyhow!("cannot list the keys: {e}"))?;
            if list.is_empty() {
                writeln!(
                    out,
                    "no DKIM keys (create one with `yubin dkim generate DOMAIN`)"
                )?;
            }
            for k in list {
                writeln!(
                    out,
                    "{} selector {} {} created {}",
                    k.domain,
                    k.selector,
                    k.algorithm.as_str(),
                    utc(k.created_at)
                )?;
                match queue::dkim::public_record(&k.private_key_pem) {
                    Ok(txt) => writeln!(
                        out,
                        "  {}",
                        queue::dkim::zone_line(&k.selector, &k.domain, &txt)
                    )?,
                    Err(e) => writeln!(out, "  (the stored key cannot be read: {e})")?,
                }
            }
        }
        DkimCommand::Remove { domain, selector } => {
            let domain = domain_arg(&domain)?;
            match keys.remove_dkim_key(&domain, &selector).await {
                Ok(()) => writeln!(
                    out,
                    "removed the key of {domain} selector {}",
                    DkimKey::canonical_name(&selector)
                )?,
                Err(StoreError::NotFound(_)) => {
                    bail!("{domain} has no key with selector {selector} (see `yubin dkim list`)")
                }
                Err(e) => bail!("cannot remove the key: {e}"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run_text(
        dir: &Path,
        keys: &dyn DkimKeyStore,
        cmd: DkimCommand,
    ) -> anyhow::Result<String> {
        let mut out = Vec::new();
        run(dir, keys, cmd, &mut out).await?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn generate(domain: &str, selector: &str) -> DkimCommand {
        DkimCommand::Generate {
            domain: domain.into(),
            selector: Some(selector.into()),
            algorithm: cli::DkimAlgorithm::Ed25519,
        }
    }

    #[tokio::test]
    async fn generate_stores_the_key_and_list_shows_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_sqlite::open(dir.path()).unwrap();
        let text = run_text(dir.path(), store.as_ref(), generate("Example.COM", "S1"))
            .await
            .unwrap();
        assert!(
            text.contains("key stored for example.com selector s1"),
            "{text}"
        );
        let record = text
            .lines()
            .find(|l| l.starts_with("s1._domainkey.example.com. TXT \"v=DKIM1; k=ed25519; p="))
            .unwrap_or_else(|| panic!("{text}"))
            .to_string();
        // In the store, not in a file.
        assert!(!dir.path().join("dkim").exists());
        let stored = store.dkim_keys(None).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(
            (stored[0].domain.as_str(), stored[0].selector.as_str()),
            ("example.com", "s1")
        );

        let err = run_text(dir.path(), store.as_ref(), generate("example.com", "s1"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("already"), "{err}");
        assert!(
            run_text(dir.path(), store.as_ref(), generate("example.com", "../x"))
                .await
                .is_err()
        );
        assert!(
            run_text(dir.path(), store.as_ref(), generate("not a domain", "s2"))
                .await
                .is_err()
        );

        let list = run_text(
            dir.path(),
            store.as_ref(),
            DkimCommand::List { domain: None },
        )
        .await
        .unwrap();
        let mut lines = list.lines();
        let head = lines.next().unwrap();
        assert!(
            head.starts_with("example.com selector s1 ed25519 created 20"),
            "{list}"
        );
        assert_eq!(
            lines.next().unwrap(),
            format!("  {record}"),
            "the same record as at generation"
        );
        let none = run_text(
            dir.path(),
            store.as_ref(),
            DkimCommand::List {
                domain: Some("other.test".into()),
            },
        )
        .await
        .unwrap();
        assert!(none.starts_with("no DKIM keys"), "{none}");

        let removed = run_text(
            dir.path(),
            store.as_ref(),
            DkimCommand::Remove {
                domain: "example.com".into(),
                selector: "S1".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(removed, "removed the key of example.com selector s1\n");
        assert!(store.dkim_keys(None).await.unwrap().is_empty());
        assert!(
            run_text(
                dir.path(),
                store.as_ref(),
                DkimCommand::Remove {
                    domain: "example.com".into(),
                    selector: "s1".into()
                },
            )
            .await
            .is_err()
        );
    }

    #[tokio::test]
    async fn old_key_files_are_imported_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_sqlite::open(dir.path()).unwrap();
        let key = queue::dkim::generate(DkimAlgorithm::Ed25519).unwrap();
        let file = dir.path().join("dkim/a.test/old.pem");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &key.pem).unwrap();
        let text = run_text(
            dir.path(),
            store.as_ref(),
            DkimCommand::List { domain: None },
        )
        .await
        .unwrap();
        assert!(
            text.starts_with(&format!(
                "imported the key file {} (a.test selector old) into the store",
                file.display()
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("old._domainkey.a.test. TXT \"{}\"", key.txt)),
            "{text}"
        );
        assert!(file.is_file(), "the file stays");
        // Once only.
        let again = run_text(
            dir.path(),
            store.as_ref(),
            DkimCommand::List { domain: None },
        )
        .await
        .unwrap();
        assert!(!again.contains("imported"), "{again}");
    }
}

//! `yubin dkim generate DOMAIN [--selector S] [--algorithm ed25519|rsa]`: creates a signing key
//! under `data_dir/dkim/DOMAIN/S.pem` (mode 0600) and prints the TXT record to publish
//! (RFC 6376 §3.6.2.1: at `S._domainkey.DOMAIN`).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, anyhow, bail};

use crate::cli::{DkimAlgorithm, DkimCommand};

/// A selector is one DNS label (RFC 6376 §3.1), also used as a file name.
fn valid_selector(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
}

pub fn run(data_dir: &Path, cmd: DkimCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match cmd {
        DkimCommand::Generate {
            domain,
            selector,
            algorithm,
        } => {
            let d = mail_types::Domain::parse(&domain)
                .map_err(|e| anyhow!("{domain:?} is not a valid domain: {e}"))?;
            let domain = d.as_str().to_ascii_lowercase();
            let selector = selector.unwrap_or_else(|| {
                let days = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() / 86400)
                    .unwrap_or(0);
                format!("y{days}")
            });
            if !valid_selector(&selector) {
                bail!("selector {selector:?} must be one DNS label (letters, digits, '-')");
            }
            let alg = match algorithm {
                DkimAlgorithm::Ed25519 => queue::dkim::Algorithm::Ed25519,
                DkimAlgorithm::Rsa => queue::dkim::Algorithm::Rsa,
            };
            let key =
                queue::dkim::generate(alg).map_err(|e| anyhow!("key generation failed: {e}"))?;
            let path = queue::dkim::write_key(&data_dir.join("dkim"), &domain, &selector, &key.pem)
                .with_context(|| format!("cannot write the key for {domain} selector {selector} (does it exist already?)"))?;
            writeln!(out, "key written to {}", path.display())?;
            writeln!(out, "publish this DNS record:")?;
            // TXT character-strings are at most 255 octets (RFC 1035 §3.3.14): split long ones.
            let parts: Vec<String> = key
                .txt
                .as_bytes()
                .chunks(255)
                .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
                .collect();
            writeln!(
                out,
                "{selector}._domainkey.{domain}. TXT {}",
                parts.join(" ")
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_writes_key_and_prints_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        let cmd = DkimCommand::Generate {
            domain: "Example.COM".into(),
            selector: Some("s1".into()),
            algorithm: DkimAlgorithm::Ed25519,
        };
        run(dir.path(), cmd, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("s1._domainkey.example.com. TXT \"v=DKIM1; k=ed25519; p="),
            "{text}"
        );
        assert!(dir.path().join("dkim/example.com/s1.pem").is_file());
        let again = DkimCommand::Generate {
            domain: "example.com".into(),
            selector: Some("s1".into()),
            algorithm: DkimAlgorithm::Ed25519,
        };
        assert!(run(dir.path(), again, &mut Vec::new()).is_err());
        let bad = DkimCommand::Generate {
            domain: "example.com".into(),
            selector: Some("../x".into()),
            algorithm: DkimAlgorithm::Ed25519,
        };
        assert!(run(dir.path(), bad, &mut Vec::new()).is_err());
    }
}

//! What the ACME client keeps under `data_dir/tls/acme/`, and reading a certificate's facts
//! (issuer, names, expiry) for the renewal decision and `yubin tls status`.

use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use crate::tls::write_file;

pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("acme")
}

/// The issued chain and its key.
pub fn cert_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let d = dir(data_dir);
    (d.join("cert.pem"), d.join("key.pem"))
}

/// `yubin tls renew` creates this file; the server's ACME task runs when it sees it.
pub fn trigger_path(data_dir: &Path) -> PathBuf {
    dir(data_dir).join("renew-now")
}

fn ensure_dir(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let d = dir(data_dir);
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)
        .with_context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}

/// Stores a new certificate: the key first, so a crash in between never leaves a
/// certificate beside a key that is not its own for longer than the next renewal.
pub fn save_cert(data_dir: &Path, chain_pem: &str, key_pem: &str) -> anyhow::Result<()> {
    ensure_dir(data_dir)?;
    let (cert, key) = cert_paths(data_dir);
    write_file(&key, key_pem.as_bytes(), 0o600)?;
    write_file(&cert, chain_pem.as_bytes(), 0o644)
}

/// The account, with the directory it belongs to (a new directory means a new account).
#[derive(Serialize, Deserialize)]
pub struct StoredAccount {
    pub directory: String,
    pub credentials: serde_json::Value,
}

pub fn load_account(data_dir: &Path) -> anyhow::Result<Option<StoredAccount>> {
    let path = dir(data_dir).join("account.json");
    match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .with_context(|| format!("cannot read {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub fn save_account(data_dir: &Path, account: &StoredAccount) -> anyhow::Result<()> {
    let d = ensure_dir(data_dir)?;
    let json = serde_json::to_vec_pretty(account)?;
    write_file(&d.join("account.json"), &json, 0o600)
}

/// The outcome of the last attempt, for `yubin tls status` and `yubin tls renew`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct State {
    /// Seconds since the Unix epoch.
    pub last_attempt: u64,
    pub last_success: Option<u64>,
    pub last_error: Option<String>,
    pub next_check: Option<u64>,
}

pub fn load_state(data_dir: &Path) -> State {
    fs::read(dir(data_dir).join("state.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn save_state(data_dir: &Path, state: &State) -> anyhow::Result<()> {
    let d = ensure_dir(data_dir)?;
    write_file(
        &d.join("state.json"),
        &serde_json::to_vec_pretty(state)?,
        0o644,
    )
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What `tls status` shows and the renewal decision needs about a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// DNS names of the subjectAltName extension.
    pub names: Vec<String>,
    pub not_before: i64,
    /// Seconds since the Unix epoch.
    pub not_after: i64,
    pub serial: String,
}

impl CertInfo {
    /// Whether this certificate must be replaced: it expires within `renew_before`, or it does
    /// not name every one of `wanted` (a domain was added).
    pub fn needs_renewal(&self, wanted: &[String], renew_before: Duration, now: i64) -> bool {
        let deadline = now.saturating_add(renew_before.as_secs() as i64);
        self.not_after <= deadline
            || wanted
                .iter()
                .any(|w| !self.names.iter().any(|n| n.eq_ignore_ascii_case(w)))
    }
}

/// Reads the leaf (first) certificate of a PEM file.
pub fn cert_info_file(path: &Path) -> anyhow::Result<CertInfo> {
    let pem = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    cert_info_pem(&pem).with_context(|| format!("in {}", path.display()))
}

pub fn cert_info_pem(pem: &[u8]) -> anyhow::Result<CertInfo> {
    let leaf = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or_else(|| anyhow!("no certificate"))?
        .map_err(|e| anyhow!("cannot read the certificate: {e}"))?;
    cert_info_der(&leaf)
}

pub fn cert_info_der(der: &[u8]) -> anyhow::Result<CertInfo> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| anyhow!("cannot parse the certificate: {e}"))?;
    let names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        serial: cert.raw_serial_as_string(),
    })
}

/// `2026-12-06 04:29:08 UTC`.
pub fn format_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(
        || secs.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn renewal_is_due_near_expiry_or_for_a_missing_name() {
        let info = CertInfo {
            subject: String::new(),
            issuer: String::new(),
            names: vec!["mail.example.com".into(), "autoconfig.example.com".into()],
            not_before: 0,
            not_after: 100 * 86400,
            serial: String::new(),
        };
        let month = Duration::from_secs(30 * 86400);
        let wanted = vec!["MAIL.example.com".to_string()];
        assert!(!info.needs_renewal(&wanted, month, 60 * 86400));
        assert!(info.needs_renewal(&wanted, month, 71 * 86400));
        let more = vec!["mail.example.com".into(), "autodiscover.example.com".into()];
        assert!(info.needs_renewal(&more, month, 0));
    }

    #[test]
    fn files_are_written_with_safe_modes_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let c = rcgen::CertificateParams::new(vec!["a.example.com".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        save_cert(dir.path(), &c.pem(), &key.serialize_pem()).unwrap();
        let (cert_path, key_path) = cert_paths(dir.path());
        let mode = fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let info = cert_info_file(&cert_path).unwrap();
        assert_eq!(info.names, ["a.example.com"]);
        assert!(info.not_after > info.not_before);

        save_account(
            dir.path(),
            &StoredAccount {
                directory: "https://ca/dir".into(),
                credentials: serde_json::json!({"id": "x"}),
            },
        )
        .unwrap();
        let mode = fs::metadata(dir.path().join("tls/acme/account.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            load_account(dir.path()).unwrap().unwrap().directory,
            "https://ca/dir"
        );
        assert!(!dir.path().join("tls/acme/account.json.tmp").exists());
    }
}

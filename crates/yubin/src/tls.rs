//! The TLS server configuration shared by every listener: the configured certificate, or a
//! self-signed one generated in `data_dir/tls` on first start and reused afterwards.
//!
//! Only TLS 1.2 and 1.3 are offered (rustls' defaults; RFC 8996 deprecates older versions,
//! RFC 8314 §4.1 asks for TLS 1.2 or later). The crypto provider is `ring`, installed once as
//! the process default.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config;

/// The loaded TLS setup, with what the startup log reports about it.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    pub cert_path: PathBuf,
    pub self_signed: bool,
}

/// Installs `ring` as the process-wide rustls provider; later calls are no-ops.
pub fn install_provider() {
    // Err means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the acceptor from `[tls]`, or from the self-signed certificate in `data_dir/tls`
/// (generated for `hostname` and `localhost` if it does not exist yet).
pub fn load(tls: &config::Tls, hostname: &str, data_dir: &Path) -> anyhow::Result<Tls> {
    install_provider();
    let (cert_path, key_path, self_signed) = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), false),
        _ => {
            let dir = data_dir.join("tls");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !(cert.exists() && key.exists()) {
                generate_self_signed(hostname, &dir, &cert, &key)?;
                tracing::info!(cert = %cert.display(), hostname, "generated a self-signed TLS certificate");
            }
            (cert, key, true)
        }
    };
    let config = server_config(&cert_path, &key_path)?;
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        cert_path,
        self_signed,
    })
}

fn server_config(cert_path: &Path, key_path: &Path) -> anyhow::Result<ServerConfig> {
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow!("cannot read TLS certificate {}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(anyhow!(
            "no certificate found in {} (expected PEM \"BEGIN CERTIFICATE\")",
            cert_path.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| anyhow!("cannot read TLS private key {}: {e}", key_path.display()))?;
    ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            anyhow!(
                "TLS certificate {} does not fit key {}: {e}",
                cert_path.display(),
                key_path.display()
            )
        })
}

fn generate_self_signed(
    hostname: &str,
    dir: &Path,
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<()> {
    let mut names = vec![hostname.to_string()];
    if hostname != "localhost" {
        names.push("localhost".to_string());
    }
    let mut params = rcgen::CertificateParams::new(names)
        .with_context(|| format!("cannot make a certificate for {hostname:?}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hostname);
    let key = rcgen::KeyPair::generate().context("cannot generate a TLS key")?;
    let cert = params
        .self_signed(&key)
        .context("cannot sign the self-signed certificate")?;

    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // The key first, so that a crash in between leaves no certificate without its key.
    write_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(())
}

/// Writes `data` to `path` through a temporary file, fsync and rename, so a crash never leaves
/// a truncated file; the file is created with `mode` (never readable by others for the key).
fn write_file(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    let tmp = path.with_extension("pem.tmp");
    let result = (|| -> std::io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(&config::Tls::default(), "mail.example.com", dir.path()).unwrap();
        assert!(first.self_signed);
        let key = dir.path().join("tls/key.pem");
        let mode = fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let cert_pem = fs::read(&first.cert_path).unwrap();
        let _second = load(&config::Tls::default(), "mail.example.com", dir.path()).unwrap();
        assert_eq!(
            fs::read(&first.cert_path).unwrap(),
            cert_pem,
            "reused, not regenerated"
        );
    }

    #[test]
    fn configured_files_are_used_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        load(&config::Tls::default(), "localhost", dir.path()).unwrap();
        let cfg = config::Tls {
            cert: Some(dir.path().join("tls/cert.pem")),
            key: Some(dir.path().join("tls/key.pem")),
        };
        let tls = load(&cfg, "ignored", dir.path()).unwrap();
        assert!(!tls.self_signed);

        let missing = config::Tls {
            cert: Some(dir.path().join("nope.pem")),
            key: Some(dir.path().join("tls/key.pem")),
        };
        let err = load(&missing, "x", dir.path()).err().unwrap().to_string();
        assert!(err.contains("nope.pem"), "{err}");

        // A key file given as the certificate holds no certificate.
        let swapped = config::Tls {
            cert: Some(dir.path().join("tls/key.pem")),
            key: Some(dir.path().join("tls/key.pem")),
        };
        let err = load(&swapped, "x", dir.path()).err().unwrap().to_string();
        assert!(err.contains("no certificate"), "{err}");
    }
}

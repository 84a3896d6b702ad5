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
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::cert_resolver::{self, AlpnChallenges, CertResolver};
use crate::config;

/// The loaded TLS setup, with what the startup log reports about it.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    /// The certificate every listener serves; [`Tls::reload`] and the ACME task replace it.
    pub resolver: Arc<CertResolver>,
    /// TLS-ALPN-01 challenge certificates in progress (RFC 8737), answered on implicit-TLS ports.
    pub challenges: Arc<AlpnChallenges>,
    pub cert_path: PathBuf,
    pub source: Source,
}

/// Where the served certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Generated in `data_dir/tls` (clients warn).
    SelfSigned,
    /// `[tls] cert` and `key`.
    Files,
    /// Issued by the `[tls] acme` CA, kept in `data_dir/tls/acme`.
    Acme,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::SelfSigned => "self-signed",
            Source::Files => "files",
            Source::Acme => "acme",
        }
    }
}

/// Installs `ring` as the process-wide rustls provider; later calls are no-ops.
pub fn install_provider() {
    // Err means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The certificate and key files to serve, in order of preference: the ACME certificate once
/// there is one, else `[tls] cert`/`key`, else the self-signed one in `data_dir/tls`
/// (generated for `hostname` and `localhost` if it does not exist yet).
pub fn pick(
    tls: &config::Tls,
    hostname: &str,
    data_dir: &Path,
) -> anyhow::Result<(PathBuf, PathBuf, Source)> {
    if tls.acme.is_some() {
        let (cert, key) = crate::acme::files::cert_paths(data_dir);
        if cert.exists() && key.exists() {
            return Ok((cert, key, Source::Acme));
        }
    }
    Ok(match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), Source::Files),
        _ => {
            let dir = data_dir.join("tls");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !(cert.exists() && key.exists()) {
                generate_self_signed(hostname, &dir, &cert, &key)?;
                tracing::info!(cert = %cert.display(), hostname, "generated a self-signed TLS certificate");
            }
            (cert, key, Source::SelfSigned)
        }
    })
}

/// Builds the acceptor that every listener shares (see [`pick`] for the certificate).
pub fn load(tls: &config::Tls, hostname: &str, data_dir: &Path) -> anyhow::Result<Tls> {
    install_provider();
    let (mut cert_path, key_path, mut source) = pick(tls, hostname, data_dir)?;
    let key = match read_pair(&cert_path, &key_path) {
        Ok(k) => k,
        // A damaged ACME certificate must not keep the server down: serve the self-signed one
        // and let the ACME task get a new one.
        Err(e) if source == Source::Acme => {
            tracing::error!(error = %format!("{e:#}"), "cannot load the ACME certificate; serving the self-signed one until a new one is issued");
            let without_acme = config::Tls {
                acme: None,
                ..tls.clone()
            };
            let (cert, key, src) = pick(&without_acme, hostname, data_dir)?;
            (cert_path, source) = (cert.clone(), src);
            read_pair(&cert, &key)?
        }
        Err(e) => return Err(e),
    };
    let resolver = Arc::new(CertResolver::new(key));
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    // Resumption by stateless tickets (RFC 8446 §4.6.1; RFC 5077 for TLS 1.2), encrypted
    // under a key rustls rotates: nothing is kept per client. rustls' default keeps resumable
    // sessions in a server-side cache instead — small allocations made at every handshake
    // among the sessions' memory, which kept pages of it resident after the clients left.
    // A reconnecting phone still resumes without a new certificate signature.
    config.ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| anyhow::anyhow!("cannot make the TLS session ticket key: {e}"))?;
    Ok(Tls {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        resolver,
        challenges: Arc::new(AlpnChallenges::default()),
        cert_path,
        source,
    })
}

/// On SIGHUP, reads the certificate files again (an admin replaced `[tls] cert`/`key`, or
/// the ACME files) and serves them to new connections; on an error the current one stays.
pub fn spawn_sighup_reload(
    resolver: Arc<CertResolver>,
    tls: config::Tls,
    hostname: String,
    data_dir: PathBuf,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let loaded = pick(&tls, &hostname, &data_dir)
                .and_then(|(cert, key, source)| Ok((read_pair(&cert, &key)?, cert, source)));
            match loaded {
                Ok((key, cert, source)) => {
                    resolver.set(key);
                    tracing::info!(cert = %cert.display(), source = source.as_str(), "SIGHUP: TLS certificate reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "SIGHUP: cannot reload the TLS certificate; keeping the current one")
                }
            }
        }
    });
    Ok(())
}

/// A PEM chain and key from files; errors name the file.
fn read_pair(cert_path: &Path, key_path: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
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
    cert_resolver::certified_key(certs, key).map_err(|e| {
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
pub(crate) fn write_file(path: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let result = (|| -> std::io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    result.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_acme_certificate_wins_and_a_damaged_one_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config::Tls {
            acme: Some(crate::acme::AcmeConfig::default()),
            ..Default::default()
        };
        // No ACME certificate yet: self-signed.
        assert_eq!(
            load(&cfg, "mail.example.com", dir.path()).unwrap().source,
            Source::SelfSigned
        );
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mail.example.com".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        crate::acme::files::save_cert(dir.path(), &cert.pem(), &key.serialize_pem()).unwrap();
        let tls = load(&cfg, "mail.example.com", dir.path()).unwrap();
        assert_eq!(tls.source, Source::Acme);
        assert_eq!(tls.resolver.current().cert[0].as_ref(), cert.der().as_ref());
        // A key that is not the certificate's: the server still starts, self-signed.
        let other = rcgen::KeyPair::generate().unwrap();
        crate::acme::files::save_cert(dir.path(), &cert.pem(), &other.serialize_pem()).unwrap();
        let tls = load(&cfg, "mail.example.com", dir.path()).unwrap();
        assert_eq!(tls.source, Source::SelfSigned);
    }

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(&config::Tls::default(), "mail.example.com", dir.path()).unwrap();
        assert_eq!(first.source, Source::SelfSigned);
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
            ..Default::default()
        };
        let tls = load(&cfg, "ignored", dir.path()).unwrap();
        assert_eq!(tls.source, Source::Files);

        let missing = config::Tls {
            cert: Some(dir.path().join("nope.pem")),
            key: Some(dir.path().join("tls/key.pem")),
            ..Default::default()
        };
        let err = load(&missing, "x", dir.path()).err().unwrap().to_string();
        assert!(err.contains("nope.pem"), "{err}");

        // A key file given as the certificate holds no certificate.
        let swapped = config::Tls {
            cert: Some(dir.path().join("tls/key.pem")),
            key: Some(dir.path().join("tls/key.pem")),
            ..Default::default()
        };
        let err = load(&swapped, "x", dir.path()).err().unwrap().to_string();
        assert!(err.contains("no certificate"), "{err}");
    }
}

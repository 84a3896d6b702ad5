//! The certificate every TLS listener serves, replaceable while the server runs, and the
//! answer to ACME TLS-ALPN-01 validation handshakes (RFC 8737).
//!
//! Every listener's `ServerConfig` (implicit TLS and STARTTLS alike) resolves its certificate
//! through one [`CertResolver`], so [`CertResolver::set`] makes new connections on every port
//! use a new certificate (a renewal, or `[tls] cert`/`key` reloaded on SIGHUP); connections
//! already established keep the one they negotiated.
//!
//! TLS-ALPN-01 handshakes are told apart before a `ServerConfig` is chosen ([`accept`]): the
//! validation handshake must negotiate the `acme-tls/1` protocol, and a `ServerConfig` that
//! lists ALPN protocols refuses every client offering none of them (rustls sends
//! `no_application_protocol`), which would break ordinary HTTPS and mail clients. So only a
//! ClientHello offering `acme-tls/1` gets the challenge configuration.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, RwLock};

use anyhow::{Context, anyhow};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use server_kit::lean_tls::{self, LeanTlsStream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

/// The ALPN protocol of the TLS-ALPN-01 validation handshake (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The current certificate, shared by every listener's `ServerConfig`.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    pub fn new(key: Arc<CertifiedKey>) -> CertResolver {
        CertResolver {
            current: RwLock::new(key),
        }
    }

    /// Serves `key` to every connection from now on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Apple profiles are signed with the certificate served now.
impl web::autoconfig::profile_signing::CurrentCertificate for CertResolver {
    fn current(&self) -> Arc<CertifiedKey> {
        CertResolver::current(self)
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The TLS-ALPN-01 certificates of the authorizations in progress, by lower-case DNS name.
#[derive(Debug, Default)]
pub struct AlpnChallenges {
    by_name: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl AlpnChallenges {
    pub fn insert(&self, name: &str, key: Arc<CertifiedKey>) {
        self.write().insert(name.to_ascii_lowercase(), key);
    }

    pub fn remove(&self, name: &str) {
        self.write().remove(&name.to_ascii_lowercase());
    }

    pub fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        self.by_name
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<CertifiedKey>>> {
        self.by_name.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Builds the self-signed certificate that answers the TLS-ALPN-01 challenge for `name`: the
/// name as its only SAN and the SHA-256 digest of the key authorization in a critical
/// id-pe-acmeIdentifier extension (RFC 8737 §3).
pub fn alpn_challenge_cert(name: &str, digest: &[u8]) -> anyhow::Result<Arc<CertifiedKey>> {
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()])
        .with_context(|| format!("cannot make a TLS-ALPN-01 certificate for {name:?}"))?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().context("cannot generate a key")?;
    let cert = params
        .self_signed(&key)
        .context("cannot sign the TLS-ALPN-01 certificate")?;
    let der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| anyhow!("{e}"))?;
    let signer = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| anyhow!("cannot load the challenge key: {e}"))?;
    // Not `CertifiedKey::from_der`: its check parses the certificate with webpki, which
    // refuses the critical acmeIdentifier extension it does not know.
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signer,
    )))
}

/// A certificate chain and its key as rustls serves them.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<CertifiedKey>> {
    let provider = rustls::crypto::ring::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| anyhow!("the certificate does not fit its key: {e}"))?;
    Ok(Arc::new(key))
}

/// Reads a PEM chain (leaf first) and a PEM key; errors name the file.
pub fn load_pem(cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<Arc<CertifiedKey>> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("cannot read the certificate: {e}"))?;
    if certs.is_empty() {
        return Err(anyhow!(
            "no certificate found (expected PEM \"BEGIN CERTIFICATE\")"
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| anyhow!("cannot read the private key: {e}"))?;
    certified_key(certs, key)
}

/// Whether the client offers `acme-tls/1` (RFC 8737 §3: the ACME server's validation
/// handshake offers it, and only it).
pub fn offers_acme_alpn(hello: &ClientHello<'_>) -> bool {
    hello
        .alpn()
        .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN))
}

/// The result of an implicit-TLS handshake.
pub enum Accepted<IO> {
    /// An ordinary client: serve it.
    Stream(Box<LeanTlsStream<IO>>),
    /// A TLS-ALPN-01 validation handshake was completed; RFC 8737 §3: no data follows, the
    /// connection is closed.
    AcmeValidation,
}

/// The largest ClientHello read before a configuration is chosen: rustls' own bound on a
/// handshake message (64 KiB), plus the records' headers.
const MAX_CLIENT_HELLO: usize = 0xffff + 1024;

/// Runs the server side of a TLS handshake on `io`: with `acceptor`'s configuration for
/// ordinary clients, with the challenge certificate for an `acme-tls/1` ClientHello whose
/// SNI names an authorization in progress (any other `acme-tls/1` hello is refused).
///
/// The ClientHello is read first with rustls' `Acceptor`, keeping its bytes; the session
/// itself is then a [`LeanTlsStream`] (rustls' unbuffered API), which is handed those bytes.
pub async fn accept<IO>(
    acceptor: &TlsAcceptor,
    challenges: &AlpnChallenges,
    mut io: IO,
) -> io::Result<Accepted<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let (acme_key, seen) = {
        let (accepted, seen) = read_client_hello(&mut io).await?;
        let hello = accepted.client_hello();
        if !offers_acme_alpn(&hello) {
            (None, seen)
        } else {
            // RFC 8737 §3: the SNI carries the name being validated.
            let Some(key) = hello.server_name().and_then(|n| challenges.get(n)) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "acme-tls/1 handshake for a name with no challenge in progress",
                ));
            };
            (Some(key), seen)
        }
    };
    let Some(key) = acme_key else {
        let stream = lean_tls::accept(Arc::clone(acceptor.config()), io, seen).await?;
        return Ok(Accepted::Stream(Box::new(stream)));
    };
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(key)));
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    let mut stream = lean_tls::accept(Arc::new(config), io, seen).await?;
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut stream).await;
    Ok(Accepted::AcmeValidation)
}

/// Reads from `io` until rustls' `Acceptor` has a whole ClientHello; returns it with every
/// byte read. A malformed hello gets rustls' alert (RFC 8446 §6.2) and an error.
async fn read_client_hello<IO>(io: &mut IO) -> io::Result<(rustls::server::Accepted, Vec<u8>)>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut acceptor = rustls::server::Acceptor::default();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let got = chunk.get(..n).unwrap_or_default();
        seen.extend_from_slice(got);
        if seen.len() > MAX_CLIENT_HELLO {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "ClientHello too long",
            ));
        }
        let mut rest = got;
        while !rest.is_empty() {
            if acceptor.read_tls(&mut rest)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "ClientHello too long",
                ));
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => return Ok((accepted, seen)),
            Ok(None) => {}
            Err((e, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write_all(&mut out);
                let _ = io.write_all(&out).await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
    }
}

/// One certificate whatever the ClientHello says.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
    use tokio_rustls::TlsConnector;

    /// Accepts any certificate: the tests look at which one was sent.
    #[derive(Debug)]
    struct AnyCert;

    impl ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Ok(HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    fn self_signed(name: &str) -> Arc<CertifiedKey> {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        load_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap()
    }

    /// Connects with `alpn` offered and returns the leaf certificate the server sent (or the
    /// handshake error) and the negotiated protocol.
    async fn handshake(
        resolver: Arc<CertResolver>,
        challenges: Arc<AlpnChallenges>,
        sni: &str,
        alpn: &[&[u8]],
    ) -> Result<(CertificateDer<'static>, Option<Vec<u8>>), String> {
        crate::tls::install_provider();
        let server_config = ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        let acceptor = TlsAcceptor::from(Arc::new(server_config));
        let (client_io, server_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            match accept(&acceptor, &challenges, server_io).await {
                Ok(Accepted::Stream(mut s)) => {
                    // Keep the connection until the client is done.
                    let mut buf = [0u8; 1];
                    let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
                    "stream"
                }
                Ok(Accepted::AcmeValidation) => "acme",
                Err(_) => "error",
            }
        });
        let mut client_config = ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert))
            .with_no_client_auth();
        client_config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let connector = TlsConnector::from(Arc::new(client_config));
        let name = ServerName::try_from(sni.to_string()).unwrap();
        let result = connector.connect(name, client_io).await;
        let out = match result {
            Ok(stream) => {
                let (_, conn) = stream.get_ref();
                let leaf = conn.peer_certificates().unwrap()[0].clone().into_owned();
                Ok((leaf, conn.alpn_protocol().map(<[u8]>::to_vec)))
            }
            Err(e) => Err(e.to_string()),
        };
        server.abort();
        out
    }

    fn has_acme_extension(der: &[u8]) -> bool {
        let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
        // id-pe-acmeIdentifier, RFC 8737 §6.1.
        cert.extensions()
            .iter()
            .any(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31" && e.critical)
    }

    #[tokio::test]
    async fn acme_alpn_gets_the_challenge_cert_others_the_current_one() {
        let current = self_signed("mail.example.com");
        let current_der = current.cert[0].clone();
        let resolver = Arc::new(CertResolver::new(current));
        let challenges = Arc::new(AlpnChallenges::default());
        challenges.insert(
            "Mail.Example.com",
            alpn_challenge_cert("mail.example.com", &[7u8; 32]).unwrap(),
        );

        let (leaf, alpn) = handshake(
            resolver.clone(),
            challenges.clone(),
            "mail.example.com",
            &[ACME_TLS_ALPN],
        )
        .await
        .unwrap();
        assert!(has_acme_extension(&leaf));
        assert_eq!(alpn.as_deref(), Some(ACME_TLS_ALPN));

        // An ordinary client (with or without ALPN) gets the current certificate.
        for offered in [&[][..], &[&b"http/1.1"[..], &b"h2"[..]][..]] {
            let (leaf, alpn) = handshake(
                resolver.clone(),
                challenges.clone(),
                "mail.example.com",
                offered,
            )
            .await
            .unwrap();
            assert_eq!(leaf, current_der);
            assert!(!has_acme_extension(&leaf));
            assert_eq!(alpn, None);
        }

        // acme-tls/1 for a name with no challenge: refused.
        let err = handshake(
            resolver.clone(),
            challenges.clone(),
            "other.example.com",
            &[ACME_TLS_ALPN],
        )
        .await;
        assert!(err.is_err());
    }

    #[tokio::test]
    async fn a_new_certificate_is_served_to_new_connections() {
        let resolver = Arc::new(CertResolver::new(self_signed("a.example.com")));
        let challenges = Arc::new(AlpnChallenges::default());
        let (first, _) = handshake(resolver.clone(), challenges.clone(), "a.example.com", &[])
            .await
            .unwrap();
        let next = self_signed("a.example.com");
        let next_der = next.cert[0].clone();
        resolver.set(next);
        let (second, _) = handshake(resolver, challenges, "a.example.com", &[])
            .await
            .unwrap();
        assert_ne!(first, second);
        assert_eq!(second, next_der);
    }
}

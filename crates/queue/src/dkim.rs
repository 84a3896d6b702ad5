//! DKIM signing of outgoing mail (RFC 6376) with per-domain keys, and key generation for
//! `yubin dkim generate`.
//!
//! Keys live at `data_dir/dkim/<domain>/<selector>.pem` (mode 0600): Ed25519 as PKCS#8
//! (RFC 8463), RSA as PKCS#1 (2048 bits; published as a SubjectPublicKeyInfo, RFC 6376 §3.6.1). A message is signed by the key of its From: domain —
//! with the selector configured for that domain, else the newest key file. Signing uses
//! relaxed/relaxed canonicalization (RFC 6376 §3.4) and over-signs From (§8.15) so a second
//! From header cannot be added without breaking the signature.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// The headers signed (RFC 6376 §5.4.1), From twice to over-sign it.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Ed25519,
    Rsa,
}

/// A generated key: the PEM to store and the DNS TXT record to publish.
pub struct GeneratedKey {
    pub pem: String,
    /// `v=DKIM1; k=ed25519; p=...`
    pub txt: String,
}

/// Generates a key (RFC 8463 Ed25519, or RSA-2048 — RFC 8301 §3.2 asks for at least 1024,
/// 2048 is the common recommendation).
pub fn generate(algorithm: Algorithm) -> Result<GeneratedKey, String> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let pem = |label: &str, der: &[u8]| {
        let body = b64(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for chunk in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    };
    match algorithm {
        Algorithm::Ed25519 => {
            let pair = mail_auth::dkim::generate::DkimKeyPair::generate_ed25519()
                .map_err(|e| e.to_string())?;
            Ok(GeneratedKey {
                pem: pem("PRIVATE KEY", pair.private_key()),
                // RFC 8463 §4: p= is the raw 32-byte public key.
                txt: format!("v=DKIM1; k=ed25519; p={}", b64(pair.public_key())),
            })
        }
        Algorithm::Rsa => {
            let pair = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(2048)
                .map_err(|e| e.to_string())?;
            // RFC 6376 §3.6.1: p= is the DER SubjectPublicKeyInfo (the `MIIBIjANBgkqh…` form
            // every verifier accepts); the generator gives a bare PKCS#1 RSAPublicKey.
            Ok(GeneratedKey {
                pem: pem("RSA PRIVATE KEY", pair.private_key()),
                txt: format!("v=DKIM1; k=rsa; p={}", b64(&rsa_spki(pair.public_key()))),
            })
        }
    }
}

/// Wraps a PKCS#1 `RSAPublicKey` in a `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7) with the
/// rsaEncryption algorithm (RFC 3279 §2.3.1: OID 1.2.840.113549.1.1.1, NULL parameters).
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    /// DER definite length (X.690 §8.1.3).
    fn len(n: usize) -> Vec<u8> {
        if n < 0x80 {
            return vec![n as u8];
        }
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        let mut out = vec![0x80 | bytes.len() as u8];
        out.extend(bytes);
        out
    }
    const ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    // BIT STRING: a leading 0 (no unused bits), then the key.
    let mut bits = vec![0x03];
    bits.extend(len(pkcs1.len() + 1));
    bits.push(0);
    bits.extend_from_slice(pkcs1);
    let mut out = vec![0x30];
    out.extend(len(ALGORITHM.len() + bits.len()));
    out.extend_from_slice(ALGORITHM);
    out.extend(bits);
    out
}

enum Key {
    Ed25519(Ed25519Key),
    Rsa(RsaKey<Sha256>),
}

fn load_key(path: &Path) -> Result<Key, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let der =
        PrivateKeyDer::from_pem_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if let PrivateKeyDer::Pkcs8(p8) = &der
        && let Ok(k) = Ed25519Key::from_pkcs8_maybe_unchecked_der(p8.secret_pkcs8_der())
    {
        return Ok(Key::Ed25519(k));
    }
    RsaKey::<Sha256>::from_key_der(der)
        .map(Key::Rsa)
        .map_err(|e| format!("{}: not an Ed25519 or RSA key: {e}", path.display()))
}

/// The signing keys under a `dkim` directory.
#[derive(Debug, Clone)]
pub struct Signer {
    dir: PathBuf,
    selectors: BTreeMap<String, String>,
}

/// The domain of the first From: address of a message (lower-case), if any.
pub fn from_domain(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::new().parse_headers(message)?;
    let from = parsed.from()?.first()?;
    let addr = from.address()?;
    let (_, domain) = addr.rsplit_once('@')?;
    Some(domain.trim_end_matches('.').to_ascii_lowercase())
}

impl Signer {
    pub fn new(dir: PathBuf, selectors: BTreeMap<String, String>) -> Signer {
        let selectors = selectors
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        Signer { dir, selectors }
    }

    /// The selector to use for `domain`: configured, else the newest `*.pem` file.
    fn selector(&self, domain: &str) -> Option<String> {
        if let Some(s) = self.selectors.get(domain) {
            return Some(s.clone());
        }
        let entries = std::fs::read_dir(self.dir.join(domain)).ok()?;
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_str()?.strip_suffix(".pem")?.to_string();
                let modified = e.metadata().ok()?.modified().ok()?;
                Some((modified, name))
            })
            .max()
            .map(|(_, name)| name)
    }

    /// The `DKIM-Signature: ...\r\n` header for `message`, or `None` when its From: domain
    /// has no key. A domain name containing a path separator is never looked up.
    pub fn sign(&self, message: &[u8]) -> Option<String> {
        let domain = from_domain(message)?;
        if domain.is_empty() || domain.contains(['/', '\\']) || domain.starts_with('.') {
            return None;
        }
        let selector = self.selector(&domain)?;
        if selector.contains(['/', '\\']) || selector.starts_with('.') {
            return None;
        }
        let key = match load_key(&self.dir.join(&domain).join(format!("{selector}.pem"))) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(domain, selector, error = %e, "cannot load the DKIM key");
                return None;
            }
        };
        let signed = match key {
            Key::Ed25519(k) => DkimSigner::from_key(k)
                .domain(&domain)
                .selector(&selector)
                .headers(SIGNED_HEADERS.iter().copied())
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed)
                .sign(message),
            Key::Rsa(k) => DkimSigner::from_key(k)
                .domain(&domain)
                .selector(&selector)
                .headers(SIGNED_HEADERS.iter().copied())
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed)
                .sign(message),
        };
        match signed {
            Ok(sig) => Some(sig.to_header()),
            Err(e) => {
                tracing::warn!(domain, selector, error = %e, "DKIM signing failed");
                None
            }
        }
    }
}

/// Writes a key file with mode 0600 (created exclusively: an existing selector is never
/// overwritten). Returns its path.
pub fn write_key(
    dkim_dir: &Path,
    domain: &str,
    selector: &str,
    pem: &str,
) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = dkim_dir.join(domain);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{selector}.pem"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(pem.as_bytes())?;
    f.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_by_from_domain() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate(Algorithm::Ed25519).unwrap();
        assert!(key.txt.starts_with("v=DKIM1; k=ed25519; p="));
        let path = write_key(dir.path(), "a.test", "s1", &key.pem).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(write_key(dir.path(), "a.test", "s1", &key.pem).is_err());

        let signer = Signer::new(dir.path().to_path_buf(), BTreeMap::new());
        let msg = b"From: Alice <alice@A.test>\r\nTo: b@b.test\r\nSubject: hi\r\n\r\nbody\r\n";
        let sig = signer.sign(msg).expect("signed");
        assert!(sig.starts_with("DKIM-Signature: "), "{sig}");
        assert!(
            sig.contains("d=a.test") && sig.contains("s=s1") && sig.contains("a=ed25519-sha256"),
            "{sig}"
        );
        assert!(sig.contains("c=relaxed/relaxed"), "{sig}");
        // From over-signed: listed twice in h=.
        let h: String = sig
            .split("h=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .replace([' ', '\r', '\n', '\t'], "");
        assert_eq!(h.to_ascii_lowercase().matches("from").count(), 2, "{h}");
        assert!(signer.sign(b"From: x@other.test\r\n\r\nb\r\n").is_none());
        assert!(signer.sign(b"Subject: no from\r\n\r\nb\r\n").is_none());
    }

    #[test]
    fn rsa_record_is_subject_public_key_info_and_key_signs() {
        let key = generate(Algorithm::Rsa).unwrap();
        // The DER prefix of an RSA-2048 SubjectPublicKeyInfo, as every verifier expects.
        assert!(
            key.txt
                .starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
            "{}",
            key.txt
        );
        let dir = tempfile::tempdir().unwrap();
        write_key(dir.path(), "r.test", "rs", &key.pem).unwrap();
        let signer = Signer::new(dir.path().to_path_buf(), BTreeMap::new());
        let sig = signer
            .sign(b"From: a@r.test\r\nSubject: x\r\n\r\nbody\r\n")
            .expect("signed");
        assert!(
            sig.contains("a=rsa-sha256") && sig.contains("s=rs"),
            "{sig}"
        );
    }

    #[test]
    fn der_lengths() {
        let spki = rsa_spki(&[0xAB; 3]);
        assert_eq!(
            spki,
            [
                &[0x30, 0x15][..],
                &[
                    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
                    0x05, 0x00
                ],
                &[0x03, 0x04, 0x00, 0xAB, 0xAB, 0xAB],
            ]
            .concat()
        );
        // 15 (algorithm) + 4 + 1 + 300 (bit string) = 320 = 0x0140.
        assert_eq!(rsa_spki(&[0; 300])[..4], [0x30, 0x82, 0x01, 0x40]);
    }
}

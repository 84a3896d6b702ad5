//! Key generation for `yubin dkim generate`, reading a stored private key, and the DNS record
//! that publishes a key's public half.
//!
//! Formats: Ed25519 as PKCS#8 (RFC 8463), RSA as PKCS#1 (2048 bits), both PEM; the record's
//! `p=` is the raw Ed25519 key (RFC 8463 §4) or the RSA SubjectPublicKeyInfo (RFC 6376 §3.6.1).

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use store::DkimAlgorithm;

/// A generated key: the PEM to store and the DNS TXT record to publish.
pub struct GeneratedKey {
    pub pem: String,
    /// `v=DKIM1; k=ed25519; p=...`
    pub txt: String,
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// The TXT record of a public key (RFC 6376 §3.6.1).
fn record(algorithm: DkimAlgorithm, public: &[u8]) -> String {
    match algorithm {
        // RFC 8463 §4: p= is the raw 32-byte public key.
        DkimAlgorithm::Ed25519 => format!("v=DKIM1; k=ed25519; p={}", b64(public)),
        // RFC 6376 §3.6.1: p= is the DER SubjectPublicKeyInfo (the `MIIBIjANBgkqh…` form every
        // verifier accepts); ring gives a bare PKCS#1 RSAPublicKey.
        DkimAlgorithm::Rsa => format!("v=DKIM1; k=rsa; p={}", b64(&rsa_spki(public))),
    }
}

/// Generates a key (RFC 8463 Ed25519, or RSA-2048 — RFC 8301 §3.2 asks for at least 1024,
/// 2048 is the common recommendation).
pub fn generate(algorithm: DkimAlgorithm) -> Result<GeneratedKey, String> {
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
    let (pem, public) = match algorithm {
        DkimAlgorithm::Ed25519 => {
            let pair = mail_auth::dkim::generate::DkimKeyPair::generate_ed25519()
                .map_err(|e| e.to_string())?;
            (
                pem("PRIVATE KEY", pair.private_key()),
                pair.public_key().to_vec(),
            )
        }
        DkimAlgorithm::Rsa => {
            let pair = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(2048)
                .map_err(|e| e.to_string())?;
            (
                pem("RSA PRIVATE KEY", pair.private_key()),
                pair.public_key().to_vec(),
            )
        }
    };
    Ok(GeneratedKey {
        pem,
        txt: record(algorithm, &public),
    })
}

/// A private key read from its PEM, ready to sign.
pub enum PrivateKey {
    Ed25519(Ed25519Key),
    Rsa(RsaKey<Sha256>),
}

impl PrivateKey {
    /// Reads a PEM private key: Ed25519 in PKCS#8, RSA in PKCS#1 or PKCS#8. The error never
    /// quotes the key.
    pub fn from_pem(pem: &str) -> Result<PrivateKey, String> {
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| format!("not a PEM private key: {e}"))?;
        if let PrivateKeyDer::Pkcs8(p8) = &der
            && let Ok(k) = Ed25519Key::from_pkcs8_maybe_unchecked_der(p8.secret_pkcs8_der())
        {
            return Ok(PrivateKey::Ed25519(k));
        }
        RsaKey::<Sha256>::from_key_der(der)
            .map(PrivateKey::Rsa)
            .map_err(|e| format!("not an Ed25519 or RSA key: {e}"))
    }

    pub fn algorithm(&self) -> DkimAlgorithm {
        match self {
            PrivateKey::Ed25519(_) => DkimAlgorithm::Ed25519,
            PrivateKey::Rsa(_) => DkimAlgorithm::Rsa,
        }
    }

    /// The TXT record that publishes this key's public half.
    pub fn public_record(&self) -> String {
        match self {
            PrivateKey::Ed25519(k) => record(DkimAlgorithm::Ed25519, &k.public_key()),
            PrivateKey::Rsa(k) => record(DkimAlgorithm::Rsa, &k.public_key()),
        }
    }
}

/// The TXT record for a stored private key (what `yubin dkim list` shows).
pub fn public_record(pem: &str) -> Result<String, String> {
    PrivateKey::from_pem(pem).map(|k| k.public_record())
}

/// `name TXT "…" "…"`: the record as a zone-file line, split into character-strings of at
/// most 255 octets (RFC 1035 §3.3.14; an RSA-2048 record is longer).
pub fn zone_line(selector: &str, domain: &str, txt: &str) -> String {
    let parts: Vec<String> = txt
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    // RFC 6376 §3.6.2.1: the key lives at <selector>._domainkey.<domain>.
    format!("{selector}._domainkey.{domain}. TXT {}", parts.join(" "))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_record_is_subject_public_key_info() {
        let key = generate(DkimAlgorithm::Rsa).unwrap();
        // The DER prefix of an RSA-2048 SubjectPublicKeyInfo, as every verifier expects.
        assert!(
            key.txt
                .starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
            "{}",
            key.txt
        );
        // The record read back from the stored PEM is the one printed at generation.
        let parsed = PrivateKey::from_pem(&key.pem).unwrap();
        assert_eq!(parsed.algorithm(), DkimAlgorithm::Rsa);
        assert_eq!(public_record(&key.pem).unwrap(), key.txt);
        let line = zone_line("rs", "r.test", &key.txt);
        assert!(
            line.starts_with("rs._domainkey.r.test. TXT \"v=DKIM1; k=rsa; p="),
            "{line}"
        );
        assert_eq!(
            line.matches("\" \"").count(),
            1,
            "two character-strings: {line}"
        );
    }

    #[test]
    fn ed25519_record_round_trips() {
        let key = generate(DkimAlgorithm::Ed25519).unwrap();
        assert!(key.txt.starts_with("v=DKIM1; k=ed25519; p="));
        let parsed = PrivateKey::from_pem(&key.pem).unwrap();
        assert_eq!(parsed.algorithm(), DkimAlgorithm::Ed25519);
        assert_eq!(public_record(&key.pem).unwrap(), key.txt);
        let err = public_record("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .err()
            .unwrap();
        assert!(!err.contains("AAAA"), "{err}");
        assert!(public_record("not pem").is_err());
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

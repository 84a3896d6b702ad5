//! A DKIM signature for the `smtp` load (`--dkim-key`), so the receiving server's checks
//! (RFC 6376 verification, DMARC) do their full work on every message.
//!
//! Computed once: it signs only `From`, `To` and `Date` (RFC 6376 §5.4), which are the same in
//! every message of a run, and the shared body, so the one header verifies on every message
//! while Subject and Message-ID still differ.

use std::path::Path;

use anyhow::Context;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// Reverses dot-stuffing (RFC 5321 §4.5.2): the content the server stores and verifies.
pub(crate) fn unstuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut at_line_start = true;
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if !(at_line_start && b == b'.' && data.get(i + 1) == Some(&b'.')) {
            out.push(b);
        }
        at_line_start = b == b'\n';
        i += 1;
    }
    out
}

/// The `DKIM-Signature: ...\r\n` field for messages with these `headers` (any message of the
/// run) and this dot-stuffed `body`, signed with the PKCS#8 PEM key at `key` (as `yubin dkim
/// generate` writes it) for the From: domain `domain`: RSA (rsa-sha256, what nearly every
/// sender on the Internet signs with) or Ed25519 (RFC 8463).
pub fn signature(
    key: &Path,
    selector: &str,
    domain: &str,
    headers: &[u8],
    body: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(key).with_context(|| key.display().to_string())?;
    let der = PrivateKeyDer::from_pem_slice(&pem).context("reading the DKIM key")?;
    let PrivateKeyDer::Pkcs8(p8) = &der else {
        anyhow::bail!("the DKIM key must be PKCS#8 (RSA or Ed25519)");
    };
    let mut message = headers.to_vec();
    message.extend_from_slice(&unstuff(body));
    match Ed25519Key::from_pkcs8_maybe_unchecked_der(p8.secret_pkcs8_der()) {
        Ok(key) => sign(key, selector, domain, &message),
        Err(_) => {
            let key = RsaKey::<Sha256>::from_key_der(der.clone_key())
                .map_err(|e| anyhow::anyhow!("neither an Ed25519 nor an RSA key: {e}"))?;
            sign(key, selector, domain, &message)
        }
    }
}

fn sign<K: SigningKey>(
    key: K,
    selector: &str,
    domain: &str,
    message: &[u8],
) -> anyhow::Result<Vec<u8>> {
    let sig = DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(["From", "To", "Date"])
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .sign(message)
        .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
    Ok(sig.to_header().into_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn unstuff_removes_one_leading_dot() {
        assert_eq!(
            super::unstuff(b"..a\r\nb.c\r\n...\r\n"),
            b".a\r\nb.c\r\n..\r\n"
        );
    }
}

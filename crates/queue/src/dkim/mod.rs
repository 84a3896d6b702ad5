//! DKIM signing of outgoing mail (RFC 6376) with per-domain keys kept in the store
//! (`store::DkimKeyStore`), so every node sharing a store signs with the same keys:
//! - `keygen.rs` — key generation for `yubin dkim generate`, reading stored keys, DNS records;
//! - `signer.rs` — the engine's signer: each domain's key cached in memory, re-read from the
//!   store periodically;
//! - `files.rs` — importing the key files older versions kept under `data_dir/dkim/`.
//!
//! A message is signed by the key of its From: domain — with the selector configured for that
//! domain, else the domain's newest key. Signing uses relaxed/relaxed canonicalization
//! (RFC 6376 §3.4) and over-signs From (§8.15) so a second From header cannot be added without
//! breaking the signature.

mod files;
mod keygen;
mod signer;

pub use files::{ImportedFile, import_key_files};
pub use keygen::{GeneratedKey, PrivateKey, generate, public_record, zone_line};
pub use signer::{MISS_REFRESH, Signer};

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

/// The domain of the first From: address of a message (lower-case), if any.
pub fn from_domain(message: &[u8]) -> Option<String> {
    let parsed = mail_parser::MessageParser::new().parse_headers(message)?;
    let from = parsed.from()?.first()?;
    let addr = from.address()?;
    let (_, domain) = addr.rsplit_once('@')?;
    Some(domain.trim_end_matches('.').to_ascii_lowercase())
}

#[cfg(test)]
mod tests;

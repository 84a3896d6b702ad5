//! DKIM signing keys (RFC 6376), kept in the store so that every node sharing it signs with the
//! same keys, a key generated on one node (or by the admin CLI while servers run) is used by
//! all, and `yubin migrate` carries them with the rest of the installation.
//!
//! Names: a key is identified by (domain, selector); both are DNS names, which compare
//! case-insensitively (RFC 4343 §3), so the store keeps them in lower case
//! ([`DkimKey::canonical_name`]) and looks them up the same way.
//!
//! Invariant: a private key is a secret. [`DkimKey`]'s `Debug` never prints it, and no backend
//! logs it; only the signing code and the CLI's own output of public records read it.

use std::fmt;

use async_trait::async_trait;

use crate::{StoreResult, UnixTime};

/// The key types yubin signs with: `rsa` (RFC 6376 §3.3.1, RSA-SHA256) and `ed25519`
/// (RFC 8463 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DkimAlgorithm {
    Ed25519,
    Rsa,
}

impl DkimAlgorithm {
    /// The name of the DNS record's `k=` tag (RFC 6376 §3.6.1, RFC 8463 §4), also the stored
    /// column value.
    pub fn as_str(self) -> &'static str {
        match self {
            DkimAlgorithm::Ed25519 => "ed25519",
            DkimAlgorithm::Rsa => "rsa",
        }
    }

    pub fn parse(s: &str) -> Option<DkimAlgorithm> {
        match s {
            "ed25519" => Some(DkimAlgorithm::Ed25519),
            "rsa" => Some(DkimAlgorithm::Rsa),
            _ => None,
        }
    }
}

/// One signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// The signing domain (`d=`), lower case.
    pub domain: String,
    /// The selector (`s=`, RFC 6376 §3.1), one DNS label, lower case.
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// The private key as PEM: PKCS#8 for Ed25519, PKCS#1 or PKCS#8 for RSA. A secret.
    pub private_key_pem: String,
    /// When the key was made (or, for a key imported from a file, the file's modification
    /// time); the newest key of a domain signs unless a selector is configured.
    pub created_at: UnixTime,
}

impl DkimKey {
    /// The stored form of a domain or selector: lower case, without a trailing root dot.
    pub fn canonical_name(name: &str) -> String {
        name.trim_end_matches('.').to_ascii_lowercase()
    }

    /// This key with its domain and selector in their stored form.
    pub fn canonical(&self) -> DkimKey {
        DkimKey {
            domain: DkimKey::canonical_name(&self.domain),
            selector: DkimKey::canonical_name(&self.selector),
            ..self.clone()
        }
    }
}

/// Everything but the private key, which is a secret and must not reach a log.
impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .field("private_key_pem", &"<secret>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

#[async_trait]
pub trait DkimKeyStore: Send + Sync {
    /// Stores a key under its (domain, selector), both lower-cased. `Exists` when that pair has
    /// a key already (an existing key is never replaced: its DNS record may be published).
    async fn add_dkim_key(&self, key: &DkimKey) -> StoreResult<()>;

    /// Every key (`None`) or the keys of one domain, ordered by domain, then oldest first.
    async fn dkim_keys(&self, domain: Option<&str>) -> StoreResult<Vec<DkimKey>>;

    /// The key that signs mail from `domain`: the one with `selector` when given (a configured
    /// selector; `None` if it has no key), else the domain's newest (by `created_at`; of keys
    /// made in the same second, the one stored last).
    async fn dkim_signing_key(
        &self,
        domain: &str,
        selector: Option<&str>,
    ) -> StoreResult<Option<DkimKey>>;

    /// Deletes a key; `NotFound` when there is none with that domain and selector.
    async fn remove_dkim_key(&self, domain: &str, selector: &str) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_private_key() {
        let key = DkimKey {
            domain: "Example.COM.".into(),
            selector: "S1".into(),
            algorithm: DkimAlgorithm::Ed25519,
            private_key_pem: "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n".into(),
            created_at: 7,
        };
        let shown = format!("{key:?} {:?}", key.canonical());
        assert!(
            !shown.contains("MC4CAQ") && !shown.contains("BEGIN"),
            "{shown}"
        );
        assert!(
            shown.contains("<secret>") && shown.contains("S1"),
            "{shown}"
        );
        let c = key.canonical();
        assert_eq!(
            (c.domain.as_str(), c.selector.as_str()),
            ("example.com", "s1")
        );
        assert_eq!(c.private_key_pem, key.private_key_pem);
    }

    #[test]
    fn algorithm_names() {
        for a in [DkimAlgorithm::Ed25519, DkimAlgorithm::Rsa] {
            assert_eq!(DkimAlgorithm::parse(a.as_str()), Some(a));
        }
        assert_eq!(DkimAlgorithm::parse("RSA"), None);
    }
}

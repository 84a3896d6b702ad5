//! The signer the delivery engine uses: the signing key of each domain, read from the store
//! and kept in memory, so signing a message costs no store read.
//!
//! Freshness: the keys are read again once [`Signer::refresh`] has passed (and, for a domain
//! that had no key, after [`MISS_REFRESH`]), so a key added by `yubin dkim generate` — on this
//! node or another one sharing the store — signs without a restart, within seconds for a
//! domain that had no key and within the refresh interval for a new key of a signing domain.
//! At most one read runs at a time; a read that fails keeps the keys known before.
//!
//! Keys are parsed once per read (not per message). Signing — an RSA private-key operation of
//! a millisecond or more, and the body hash of a large message — runs on the blocking pool,
//! at most one per core at a time, so deliveries never stall the async workers.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use store::{DkimKey, DkimKeyStore};

use super::keygen::PrivateKey;
use super::{SIGNED_HEADERS, from_domain};

/// How soon the keys are read again when a message's domain has none.
pub const MISS_REFRESH: Duration = Duration::from_secs(5);

/// A ready signer for one (domain, selector).
enum KeySigner {
    Ed25519(DkimSigner<Ed25519Key, Done>),
    Rsa(DkimSigner<RsaKey<Sha256>, Done>),
}

impl KeySigner {
    /// Relaxed/relaxed canonicalization (RFC 6376 §3.4); the headers of [`SIGNED_HEADERS`].
    fn new(key: PrivateKey, domain: &str, selector: &str) -> KeySigner {
        match key {
            PrivateKey::Ed25519(k) => KeySigner::Ed25519(
                DkimSigner::from_key(k)
                    .domain(domain)
                    .selector(selector)
                    .headers(SIGNED_HEADERS.iter().copied())
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed),
            ),
            PrivateKey::Rsa(k) => KeySigner::Rsa(
                DkimSigner::from_key(k)
                    .domain(domain)
                    .selector(selector)
                    .headers(SIGNED_HEADERS.iter().copied())
                    .header_canonicalization(Canonicalization::Relaxed)
                    .body_canonicalization(Canonicalization::Relaxed),
            ),
        }
    }

    fn sign(&self, message: &[u8]) -> mail_auth::Result<String> {
        Ok(match self {
            KeySigner::Ed25519(s) => s.sign(message)?.to_header(),
            KeySigner::Rsa(s) => s.sign(message)?.to_header(),
        })
    }
}

/// The signing key of one domain.
struct Entry {
    selector: String,
    /// To tell whether a re-read key is the same (then its signer is kept).
    pem: String,
    signer: KeySigner,
}

/// What the last read of the store found.
#[derive(Default)]
struct Cache {
    /// `None` until the first read.
    loaded: Option<Instant>,
    by_domain: HashMap<String, Arc<Entry>>,
}

/// Signs outgoing mail with the key of its From: domain (RFC 6376 §3.5: `d=` is that domain).
pub struct Signer {
    keys: Arc<dyn DkimKeyStore>,
    /// Per domain (lower case) the configured selector (`[dkim."domain"] selector`).
    selectors: BTreeMap<String, String>,
    refresh: Duration,
    cache: Mutex<Arc<Cache>>,
    /// Held while the store is read, so concurrent deliveries read it once.
    reading: tokio::sync::Mutex<()>,
    /// Signings running on the blocking pool at once, at most one per core.
    pub(super) signing: Arc<tokio::sync::Semaphore>,
}

impl Signer {
    /// `selectors`: per domain the selector to sign with; other domains sign with their newest
    /// key. `refresh`: how often the keys are read again.
    pub fn new(
        keys: Arc<dyn DkimKeyStore>,
        selectors: BTreeMap<String, String>,
        refresh: Duration,
    ) -> Signer {
        let selectors = selectors
            .into_iter()
            .map(|(d, s)| (DkimKey::canonical_name(&d), DkimKey::canonical_name(&s)))
            .collect();
        Signer {
            keys,
            selectors,
            refresh,
            cache: Mutex::new(Arc::new(Cache::default())),
            reading: tokio::sync::Mutex::new(()),
            signing: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
        }
    }

    fn snapshot(&self) -> Arc<Cache> {
        Arc::clone(&self.cache.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The `DKIM-Signature: ...\r\n` header for `message`, or `None` when its From: domain has
    /// no key (or the configured selector has none).
    pub async fn sign(&self, message: &[u8]) -> Option<String> {
        self.sign_shared(Arc::new(message.to_vec())).await
    }

    /// [`sign`](Self::sign) without copying the message: the signing itself runs on the
    /// blocking pool.
    pub async fn sign_shared(&self, message: Arc<Vec<u8>>) -> Option<String> {
        let domain = from_domain(&message)?;
        if domain.is_empty() {
            return None;
        }
        let entry = self.entry(&domain).await?;
        let _permit = Arc::clone(&self.signing).acquire_owned().await.ok()?;
        let signer = Arc::clone(&entry);
        let signed = tokio::task::spawn_blocking(move || signer.signer.sign(&message)).await;
        match signed {
            Ok(Ok(header)) => Some(header),
            Ok(Err(e)) => {
                tracing::warn!(domain, selector = entry.selector, error = %e, "DKIM signing failed");
                None
            }
            Err(e) => {
                tracing::warn!(domain, selector = entry.selector, error = %e, "DKIM signing task failed");
                None
            }
        }
    }

    /// The key of `domain`, reading the store first when the known keys are too old for the
    /// answer.
    async fn entry(&self, domain: &str) -> Option<Arc<Entry>> {
        let cache = self.snapshot();
        let found = cache.by_domain.get(domain).cloned();
        let age = cache.loaded.map(|t| t.elapsed());
        let stale = match (age, &found) {
            (None, _) => true,
            (Some(age), Some(_)) => age >= self.refresh,
            (Some(age), None) => age >= self.refresh.min(MISS_REFRESH),
        };
        if !stale {
            return found;
        }
        self.reload(cache.loaded).await;
        self.snapshot().by_domain.get(domain).cloned()
    }

    /// Reads every key from the store, unless another task did since `seen`.
    async fn reload(&self, seen: Option<Instant>) {
        let _reading = self.reading.lock().await;
        let before = self.snapshot();
        if before.loaded != seen {
            return;
        }
        let by_domain = match self.keys.dkim_keys(None).await {
            Ok(keys) => self.choose(keys, &before),
            Err(e) => {
                // Keep signing with what was known; try again after the usual interval.
                tracing::warn!(error = %e, "cannot read the DKIM keys from the store");
                before.by_domain.clone()
            }
        };
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(Cache {
            loaded: Some(Instant::now()),
            by_domain,
        });
    }

    /// Per domain, the key that signs: the configured selector's, else the newest (`keys` come
    /// oldest first per domain). Signers of unchanged keys are kept from `before`.
    fn choose(&self, keys: Vec<DkimKey>, before: &Cache) -> HashMap<String, Arc<Entry>> {
        let mut chosen: HashMap<String, DkimKey> = HashMap::new();
        for key in keys {
            match self.selectors.get(&key.domain) {
                Some(s) if *s != key.selector => {}
                _ => {
                    chosen.insert(key.domain.clone(), key);
                }
            }
        }
        for (domain, selector) in &self.selectors {
            if !chosen.contains_key(domain) && before.loaded.is_none() {
                tracing::warn!(
                    domain,
                    selector,
                    "no DKIM key with the configured selector: mail from this domain is not signed (yubin dkim generate)"
                );
            }
        }
        let mut out = HashMap::with_capacity(chosen.len());
        for (domain, key) in chosen {
            if let Some(old) = before.by_domain.get(&domain)
                && old.selector == key.selector
                && old.pem == key.private_key_pem
            {
                out.insert(domain, Arc::clone(old));
                continue;
            }
            match PrivateKey::from_pem(&key.private_key_pem) {
                Ok(parsed) => {
                    let signer = KeySigner::new(parsed, &domain, &key.selector);
                    out.insert(
                        domain,
                        Arc::new(Entry {
                            selector: key.selector,
                            pem: key.private_key_pem,
                            signer,
                        }),
                    );
                }
                Err(e) => {
                    tracing::warn!(domain, selector = key.selector, error = %e, "cannot load the DKIM key");
                }
            }
        }
        out
    }
}

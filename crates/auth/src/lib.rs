//! Password authentication for every protocol.
//!
//! - Passwords are stored as argon2id PHC strings ([`hash_password`]); hashes imported from
//!   Dovecot, LDAP or Unix keep their scheme ([`schemes`]) until the user's next successful
//!   login, which replaces them with argon2id ([`Authenticator::with_rehash`]) and stores the
//!   SCRAM credentials that cannot be derived from an imported hash.
//! - Verification takes the same work whether or not the user exists: an unknown user is
//!   checked against a dummy hash, so timing does not reveal which addresses exist.
//!   argon2's own comparison is constant-time.
//! - Every failure is logged with client IP and protocol (never the password) and answered
//!   only after a delay, which slows down password guessing.
//! - argon2 is CPU-bound, so it runs on the blocking pool, never on the async workers.
//! - SCRAM-SHA-256 (RFC 5802, RFC 7677) uses per-user credentials derived at password-set
//!   time ([`scram_credentials`]); the exchange is [`Authenticator::scram_start`] then
//!   [`Authenticator::scram_finish`], with the same logging and failure delay. Users without
//!   SCRAM credentials (passwords set before) fail SCRAM but can still use PLAIN.
//! - A password verified recently is recognised without argon2 ([`CacheConfig`], `cache.rs`):
//!   an HMAC of username and password under a per-process secret, tied to the account's
//!   current password hash, so `yubin user passwd` / `user del` (another process) take effect
//!   at the next login. Wrong passwords always pay argon2 and the failure delay.
//! - Password guessing ([`LoginGuard`], `guard.rs`): failures are counted per client address
//!   and per account in the store; the failure delay grows with them, and an address past a
//!   threshold is banned for a while (refused before any password check, and at connect by the
//!   listeners). Set with [`Authenticator::with_guard`].

mod cache;
mod guard;
mod guard_policy;
pub mod schemes;

pub use cache::CacheConfig;
pub use guard::{Clock, LoginGuard, format_time, system_clock};
pub use guard_policy::{BanReason, GRACE_FAILURES, GuardPolicy, subject};

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use mail_types::Address;
use store::{AccountId, Coordination, Directory};

/// A successfully authenticated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub account: AccountId,
    pub address: Address,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Wrong user or password (deliberately not saying which).
    Invalid,
    /// The directory could not be read; the client may retry.
    Temporary,
    /// The client's address is banned for too many failed logins until this time (Unix
    /// seconds); no password was checked.
    Banned { until: store::UnixTime },
}

/// The argon2id parameters: OWASP's recommended m=19 MiB, t=2, p=1.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Counts one authentication attempt in `yubin_auth_attempts_total` (the protocol crates call
/// it, since only they know the mechanism). `mechanism` is a SASL name ("PLAIN", "LOGIN",
/// "SCRAM-SHA-256") or "password" for IMAP LOGIN and POP3 USER/PASS.
pub fn count_attempt<T>(
    protocol: &'static str,
    mechanism: &'static str,
    result: &Result<T, AuthError>,
) {
    let r = match result {
        Ok(_) => telemetry::AuthResult::Success,
        Err(AuthError::Invalid) => telemetry::AuthResult::Failure,
        Err(AuthError::Banned { .. }) => telemetry::AuthResult::Banned,
        Err(AuthError::Temporary) => telemetry::AuthResult::Error,
    };
    telemetry::auth_attempt(protocol, mechanism, r);
}

/// Hashes a password into an argon2id PHC string.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing cannot fail with valid params")
        .to_string()
}

/// Checks a password against a stored hash in any supported scheme ([`schemes::verify`]).
pub fn verify_password(password: &str, stored: &str) -> bool {
    schemes::verify(password, stored)
}

/// Checks a password against an argon2 PHC string with the parameters the string names
/// (constant-time comparison inside argon2).
pub(crate) fn verify_argon2(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => argon2().verify_password(password.as_bytes(), &hash).is_ok(),
        Err(_) => false,
    }
}

/// SCRAM-SHA-256 credentials for `password`, as stored in `UserRecord::scram`
/// (`SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`, 4096 iterations, random salt).
/// CPU-bound (4096 HMACs): call it from a blocking context or the admin CLI.
pub fn scram_credentials(password: &str) -> String {
    sasl::scram::ScramCredentials::generate(password).encode()
}

/// A strong random password for `yubin user add` without `--password-stdin`.
pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("yubin-dummy-password-for-timing"))
}

/// How many argon2 verifications may run at once. Each takes ~19 MiB and a core for tens of
/// milliseconds: unbounded, a flood of logins would occupy every blocking thread (up to 512)
/// and their memory. Waiting logins queue here instead.
const MAX_CONCURRENT_VERIFICATIONS: usize = 4;

/// The name of the store-wide secret behind the salts of SCRAM exchanges with unknown users.
pub const DECOY_SECRET: &str = "scram-decoy-salt";

/// 32 random bytes.
fn random_secret() -> Vec<u8> {
    let mut k = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut k);
    k
}

/// The secret from which unknown users' SCRAM salts are derived, as stored once for every
/// process and node sharing `store` (created on first use). A salt that differed between
/// nodes behind one load balancer would tell an attacker asking twice which users do not
/// exist (RFC 5802 §9: the server should not reveal whether a user exists); pass it to
/// [`Authenticator::with_decoy_secret`].
pub async fn load_decoy_secret(store: &dyn Coordination) -> store::StoreResult<Vec<u8>> {
    store.shared_secret(DECOY_SECRET, &random_secret()).await
}

/// The authentication service shared by SMTP, POP3 and IMAP.
#[derive(Clone)]
pub struct Authenticator {
    directory: Arc<dyn Directory>,
    failure_delay: Duration,
    verifications: Arc<tokio::sync::Semaphore>,
    cache: Arc<cache::CredentialCache>,
    /// argon2 verifications run (for tests and metrics).
    argon2_runs: Arc<AtomicU64>,
    /// Unknown users' SCRAM salts are derived from it ([`load_decoy_secret`]).
    decoy_secret: Arc<[u8]>,
    /// The password-guessing defence, when enabled ([`Authenticator::with_guard`]).
    guard: Option<Arc<LoginGuard>>,
    /// Whether a login with a non-argon2id hash replaces it ([`Authenticator::with_rehash`]).
    rehash: bool,
}

impl Authenticator {
    /// An authenticator with the default credential cache ([`CacheConfig::default`]).
    pub fn new(directory: Arc<dyn Directory>, failure_delay: Duration) -> Authenticator {
        Authenticator {
            directory,
            failure_delay,
            verifications: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_VERIFICATIONS)),
            cache: Arc::new(cache::CredentialCache::new(CacheConfig::default())),
            argon2_runs: Arc::new(AtomicU64::new(0)),
            // Random per authenticator until the shared one is set: fine for one process.
            decoy_secret: random_secret().into(),
            guard: None,
            rehash: true,
        }
    }

    /// Whether a successful login whose stored hash is not argon2id (an imported one)
    /// replaces it with argon2id (default: yes; `[auth] rehash_imported`). SCRAM credentials
    /// missing from the account are stored at such a login either way.
    pub fn with_rehash(mut self, rehash: bool) -> Authenticator {
        self.rehash = rehash;
        self
    }

    /// After a successful password login: upgrades an imported hash to argon2id, and stores
    /// the SCRAM credentials an imported account lacks (they need the password, RFC 5802
    /// §2.2), so SCRAM works from the next login on. In the background, on the blocking pool
    /// with the other verifications; the store replaces the hash only if it is still the one
    /// verified, so a password changed meanwhile (`yubin user passwd`) is never undone.
    fn upgrade_credentials(&self, user: &store::UserRecord, password: &str) {
        let rehash = self.rehash && schemes::needs_rehash(&user.password_hash);
        if !rehash && user.scram.is_some() {
            return;
        }
        let (this, password) = (self.clone(), password.to_string());
        let (address, old) = (user.address.clone(), user.password_hash.clone());
        tokio::spawn(async move {
            let Ok(_permit) = this.verifications.acquire().await else {
                return;
            };
            let work = tokio::task::spawn_blocking(move || {
                let new = if rehash {
                    hash_password(&password)
                } else {
                    old.clone()
                };
                (old, new, scram_credentials(&password))
            });
            let Ok((old, new, scram)) = work.await else {
                return;
            };
            match this
                .directory
                .replace_password(&address, &old, &new, Some(&scram))
                .await
            {
                Ok(true) if rehash => {
                    tracing::info!(event = %"password_rehashed", user = %address, "imported password hash replaced with argon2id")
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(user = %address, error = %e, "cannot store the upgraded credentials")
                }
            }
        });
    }

    /// Counts failures and bans addresses with `guard`; its delays replace the fixed
    /// failure delay.
    pub fn with_guard(mut self, guard: Arc<LoginGuard>) -> Authenticator {
        self.guard = Some(guard);
        self
    }

    /// The password-guessing defence, if any (the listeners refuse banned clients with it).
    pub fn guard(&self) -> Option<&Arc<LoginGuard>> {
        self.guard.as_ref()
    }

    /// `Err(Banned)` when `peer` is banned: checked before any password work.
    async fn check_ban(&self, protocol: &'static str, peer: IpAddr) -> Result<(), AuthError> {
        let Some(guard) = &self.guard else {
            return Ok(());
        };
        match guard.banned(peer).await {
            None => Ok(()),
            Some(ban) => {
                tracing::info!(event = %"refused", protocol, ip = %ban.ip, until = %format_time(ban.until), "authentication refused: address banned");
                Err(AuthError::Banned { until: ban.until })
            }
        }
    }

    /// After a failed check: counts it and waits before the answer.
    async fn failure_wait(&self, peer: IpAddr, account: Option<&Address>, protocol: &'static str) {
        let delay = match &self.guard {
            Some(g) => {
                let account = account.map(|a| a.to_string());
                g.failed(peer, account.as_deref(), protocol).await
            }
            None => self.failure_delay,
        };
        tokio::time::sleep(delay).await;
    }

    async fn success(&self, peer: IpAddr, account: &Address) {
        if let Some(g) = &self.guard {
            g.succeeded(peer, &account.to_string()).await;
        }
    }

    /// Derives unknown users' SCRAM salts from `secret` — the store-wide one of
    /// [`load_decoy_secret`] when several processes or nodes serve the same users.
    pub fn with_decoy_secret(mut self, secret: Vec<u8>) -> Authenticator {
        self.decoy_secret = secret.into();
        self
    }

    /// How many argon2 password verifications this authenticator (and its clones) ran.
    pub fn argon2_runs(&self) -> u64 {
        self.argon2_runs.load(Ordering::Relaxed)
    }

    /// Replaces the credential cache (empty) with one of `config`
    /// ([`CacheConfig::DISABLED`] turns it off).
    pub fn with_cache(mut self, config: CacheConfig) -> Authenticator {
        self.cache = Arc::new(cache::CredentialCache::new(config));
        self
    }

    /// Drops expired entries of the credential cache (the server calls it every minute).
    /// True when its tables shrank: their old memory is free in the allocator, and the caller
    /// trims it back to the system.
    pub fn purge_expired_credentials(&self) -> bool {
        self.cache.purge_expired()
    }

    /// Runs a CPU-heavy password check on the blocking pool, at most
    /// [`MAX_CONCURRENT_VERIFICATIONS`] at a time.
    async fn verify_bounded(&self, check: impl FnOnce() -> bool + Send + 'static) -> bool {
        let Ok(_permit) = self.verifications.acquire().await else {
            return false;
        };
        self.argon2_runs.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(check).await.unwrap_or(false)
    }

    /// Checks `username` (a full address) and `password`. `protocol` and `peer` are for the log.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &str,
        protocol: &'static str,
        peer: IpAddr,
    ) -> Result<Authenticated, AuthError> {
        self.check_ban(protocol, peer).await?;
        let user = match Address::parse(username) {
            Ok(address) => match self.directory.find_user(&address).await {
                Ok(user) => user,
                Err(e) => {
                    tracing::warn!(protocol, %peer, error = %e, "authentication: directory unavailable");
                    return Err(AuthError::Temporary);
                }
            },
            Err(_) => None,
        };
        // The cache is keyed by the account, and its tag covers the canonical address (from
        // the directory) and the PHC string the account has now.
        let tag = match &user {
            Some(u) if self.cache.enabled() => Some(self.cache.tag(
                &u.address.to_string(),
                password,
                &u.password_hash,
            )),
            _ => None,
        };
        if let (Some(u), Some(tag)) = (&user, &tag)
            && self.cache.check(u.id, tag)
        {
            tracing::info!(protocol, %peer, user = %u.address, cached = true, "authentication succeeded");
            self.success(peer, &u.address).await;
            return Ok(Authenticated {
                account: u.id,
                address: u.address.clone(),
            });
        }
        let phc = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| dummy_hash().to_string());
        let pw = password.to_string();
        let ok = self
            .verify_bounded(move || verify_password(&pw, &phc))
            .await;
        match (ok, user) {
            (true, Some(user)) => {
                self.upgrade_credentials(&user, password);
                if let Some(tag) = tag {
                    self.cache.insert(user.id, tag);
                }
                tracing::info!(protocol, %peer, user = %user.address, "authentication succeeded");
                self.success(peer, &user.address).await;
                Ok(Authenticated {
                    account: user.id,
                    address: user.address,
                })
            }
            (_, user) => {
                tracing::warn!(event = %"auth_failure", protocol, %peer, user = %sanitize(username), "authentication failed");
                telemetry::auth_failure_from(peer);
                self.failure_wait(peer, user.as_ref().map(|u| &u.address), protocol)
                    .await;
                Err(AuthError::Invalid)
            }
        }
    }
}

/// A SCRAM exchange after the server-first message: what [`Authenticator::scram_finish`] needs.
pub struct ScramExchange {
    state: sasl::scram::ServerFirst,
    /// The account, when the user exists and has SCRAM credentials.
    user: Option<Authenticated>,
    username: String,
    /// The `a=` authorization identity the client asked for, if any.
    pub authzid: Option<String>,
}

impl Authenticator {
    /// SCRAM-SHA-256 step 1 (RFC 5802 §5): takes the parsed client-first message and returns
    /// the exchange and the server-first message. An unknown user, or one without SCRAM
    /// credentials, gets made-up credentials and fails at [`Authenticator::scram_finish`], so
    /// the answer does not reveal which users exist: their salt is derived from the decoy
    /// secret and the name, the same at every ask and (with a shared secret) on every node.
    pub async fn scram_start(
        &self,
        first: sasl::scram::ClientFirst,
        protocol: &'static str,
        peer: IpAddr,
    ) -> Result<(ScramExchange, Vec<u8>), AuthError> {
        self.check_ban(protocol, peer).await?;
        let user = match Address::parse(&first.username) {
            Ok(address) => match self.directory.find_user(&address).await {
                Ok(user) => user,
                Err(e) => {
                    tracing::warn!(protocol, %peer, error = %e, "authentication: directory unavailable");
                    return Err(AuthError::Temporary);
                }
            },
            Err(_) => None,
        };
        let known = user.and_then(|u| {
            let creds = sasl::scram::ScramCredentials::parse(u.scram.as_deref()?)?;
            Some((u, creds))
        });
        let creds = known.as_ref().map(|(_, c)| c.clone()).unwrap_or_else(|| {
            sasl::scram::ScramCredentials::dummy(&first.username, &self.decoy_secret)
        });
        let username = first.username.clone();
        let authzid = first.authzid.clone();
        let (state, challenge) = first.server_first(&creds);
        let exchange = ScramExchange {
            state,
            user: known.map(|(u, _)| Authenticated {
                account: u.id,
                address: u.address,
            }),
            username,
            authzid,
        };
        Ok((exchange, challenge))
    }

    /// SCRAM-SHA-256 step 2: verifies the client-final message's proof (constant time) and
    /// returns the account and the server-final message (`v=…`). Logs the outcome; a failure
    /// is answered only after the failure delay.
    pub async fn scram_finish(
        &self,
        exchange: ScramExchange,
        client_final: &[u8],
        protocol: &'static str,
        peer: IpAddr,
    ) -> Result<(Authenticated, Vec<u8>), AuthError> {
        // The ban may have come while the client computed its proof.
        self.check_ban(protocol, peer).await?;
        let result = exchange.state.client_final(client_final);
        match (result, exchange.user) {
            (Ok(server_final), Some(user)) => {
                tracing::info!(protocol, %peer, user = %user.address, mechanism = "SCRAM-SHA-256", "authentication succeeded");
                self.success(peer, &user.address).await;
                Ok((user, server_final))
            }
            (_, user) => {
                tracing::warn!(event = %"auth_failure", protocol, %peer, user = %sanitize(&exchange.username), mechanism = "SCRAM-SHA-256", "authentication failed");
                telemetry::auth_failure_from(peer);
                self.failure_wait(peer, user.as_ref().map(|u| &u.address), protocol)
                    .await;
                Err(AuthError::Invalid)
            }
        }
    }
}

/// Makes a client-supplied username safe for one log line.
fn sanitize(s: &str) -> String {
    s.chars()
        .take(128)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        assert_eq!(generate_password().len(), 20);
        let scram = scram_credentials("correct horse");
        let parsed = sasl::scram::ScramCredentials::parse(&scram).unwrap();
        assert_eq!(parsed.iterations, 4096);
        assert!(!scram.contains("correct horse"));
    }
}

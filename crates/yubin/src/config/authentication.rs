//! `[auth]`: password checks, the credential cache, and the password-guessing defence.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// RFC 8314 §3: passwords only over TLS — except from loopback peers while this is true.
    pub allow_plaintext_loopback: bool,
    /// How long a failed login waits before it is answered.
    pub failure_delay_ms: u64,
    /// How long a verified password is recognised without argon2 (like Dovecot's
    /// `auth_cache_ttl`); 0 turns the credential cache off. At most 2,147,483 s (24.8 days)
    /// is used.
    pub cache_ttl_secs: u64,
    /// How many accounts the credential cache holds at most; 0 turns it off.
    pub cache_size: usize,
    /// The password-guessing defence: failure counters, growing delays and bans (README,
    /// "Password guessing").
    pub login_guard: bool,
    /// The longest a failed login waits (the delay doubles after the third failure).
    pub max_failure_delay_ms: u64,
    /// An address with this many failed logins within `failure_window_secs` is banned for
    /// `ban_secs` (0: never).
    pub ban_after_failures: u32,
    pub failure_window_secs: u64,
    pub ban_secs: u64,
    /// A fast burst: this many failures within `burst_window_secs` ban for `burst_ban_secs`
    /// (0: never).
    pub ban_after_burst: u32,
    pub burst_window_secs: u64,
    pub burst_ban_secs: u64,
    /// How long an address an account logged in from stays exempt from that account's
    /// attack slow-down.
    pub known_ip_secs: u64,
    /// How often a server rereads the bans from the store (`yubin ban add/del`, other nodes).
    pub ban_refresh_secs: u64,
    /// Whether a successful login replaces an imported password hash (SHA512-CRYPT, bcrypt,
    /// PBKDF2, …; `yubin user import`) with argon2id.
    pub rehash_imported: bool,
}

impl Default for Auth {
    fn default() -> Self {
        let cache = auth::CacheConfig::default();
        let guard = auth::GuardPolicy::default();
        Auth {
            allow_plaintext_loopback: true,
            failure_delay_ms: 2000,
            cache_ttl_secs: cache.ttl.as_secs(),
            cache_size: cache.max_entries,
            login_guard: guard.enabled,
            max_failure_delay_ms: guard.max_delay.as_millis() as u64,
            ban_after_failures: guard.max_failures,
            failure_window_secs: guard.window.as_secs(),
            ban_secs: guard.ban.as_secs(),
            ban_after_burst: guard.burst_failures,
            burst_window_secs: guard.burst_window.as_secs(),
            burst_ban_secs: guard.burst_ban.as_secs(),
            known_ip_secs: guard.known_ip_ttl.as_secs(),
            ban_refresh_secs: guard.refresh.as_secs(),
            rehash_imported: true,
        }
    }
}

impl Auth {
    pub fn failure_delay(&self) -> Duration {
        Duration::from_millis(self.failure_delay_ms)
    }
    /// The password-guessing defence's policy, with the trusted networks of `[limits]`.
    pub fn guard(&self, trusted: server_kit::TrustedNetworks) -> auth::GuardPolicy {
        auth::GuardPolicy {
            enabled: self.login_guard,
            base_delay: self.failure_delay(),
            max_delay: Duration::from_millis(self.max_failure_delay_ms),
            max_failures: self.ban_after_failures,
            window: Duration::from_secs(self.failure_window_secs),
            ban: Duration::from_secs(self.ban_secs),
            burst_failures: self.ban_after_burst,
            burst_window: Duration::from_secs(self.burst_window_secs),
            burst_ban: Duration::from_secs(self.burst_ban_secs),
            known_ip_ttl: Duration::from_secs(self.known_ip_secs),
            refresh: Duration::from_secs(self.ban_refresh_secs),
            trusted,
        }
    }
    pub fn cache(&self) -> auth::CacheConfig {
        auth::CacheConfig {
            ttl: Duration::from_secs(self.cache_ttl_secs),
            max_entries: self.cache_size,
        }
    }
}

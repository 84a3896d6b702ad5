//! A cache of recently verified passwords, like Dovecot's `auth_cache`: clients reconnect all
//! day, and without it every login pays a full argon2 verification (~100 ms of a core).
//!
//! Invariants:
//! - No password is kept: an entry holds HMAC-SHA256(per-process random secret, address NUL
//!   password), so the memory of the process does not reveal passwords, and the MAC of a
//!   guess cannot be computed without the secret.
//! - Only successes are cached. A wrong password never matches an entry (MACs are compared in
//!   constant time), so it still pays argon2 and the failure delay.
//! - Each entry keeps the password hash (PHC string) it was verified against, and a hit
//!   requires the account's current PHC (read again from the directory at every login) to be
//!   the same: a password changed or an account deleted by another process (the admin CLI)
//!   turns the entry into a miss at once, with no message between the processes.
//! - Bounded: at most `max_entries` accounts (one entry each, least recently used evicted),
//!   each valid for `ttl` from the verification that created it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use store::AccountId;
use subtle::ConstantTimeEq;

/// How long and how many verified credentials are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long a verified password is trusted without argon2; zero disables the cache.
    pub ttl: Duration,
    /// How many accounts at most; zero disables the cache.
    pub max_entries: usize,
}

impl CacheConfig {
    /// The cache off: every login runs argon2.
    pub const DISABLED: CacheConfig = CacheConfig {
        ttl: Duration::ZERO,
        max_entries: 0,
    };

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.max_entries > 0
    }
}

impl Default for CacheConfig {
    /// Five minutes, 10,000 accounts (a few MiB at most).
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(300),
            max_entries: 10_000,
        }
    }
}

/// The MAC of one username/password pair under the process's secret.
pub(crate) type CredentialMac = [u8; 32];

/// SHA-256 of the PHC string a password was verified against. A fixed-size digest instead
/// of the string keeps an entry free of heap allocations of its own: entries are made at
/// logins, among the sessions' allocations, and each small one left behind would keep a
/// whole page of freed session memory from going back to the system.
type PhcDigest = [u8; 32];

fn phc_digest(phc: &str) -> PhcDigest {
    use sha2::Digest;
    Sha256::digest(phc.as_bytes()).into()
}

struct Entry {
    mac: CredentialMac,
    /// The PHC string the password was verified against.
    phc: PhcDigest,
    expires: Instant,
    /// Position in `Inner::lru`.
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<AccountId, Entry>,
    /// Every use as (tick, account), oldest first; a pair whose tick is no longer its entry's
    /// `used` is stale and skipped. One contiguous buffer instead of an ordered tree: a
    /// tree's nodes are small allocations made at logins among the sessions' memory, and
    /// each one left would keep a page of it resident after the sessions are gone.
    uses: VecDeque<(u64, AccountId)>,
    clock: u64,
    /// A table was reallocated smaller since the last purge (there, or when a login found
    /// its entry stale): the purge reports it, so the server trims the freed tables.
    shrunk: bool,
}

impl Inner {
    fn remove(&mut self, account: AccountId) {
        self.entries.remove(&account);
    }

    /// Records a use of `account` now; returns its tick.
    fn touch(&mut self, account: AccountId) -> u64 {
        self.clock += 1;
        self.uses.push_back((self.clock, account));
        // Stale pairs are dropped once they outnumber live ones: amortised O(1) per use,
        // and the queue never holds more than about twice the entries.
        if self.uses.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            let clock = self.clock;
            self.uses.retain(|&(tick, a)| {
                entries.get(&a).is_some_and(|e| e.used == tick) || (tick == clock && a == account)
            });
        }
        self.clock
    }

    /// Drops the least recently used entry; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((tick, account)) = self.uses.pop_front() {
            if self.entries.get(&account).is_some_and(|e| e.used == tick) {
                self.entries.remove(&account);
                return true;
            }
        }
        false
    }

    /// Gives memory back once most entries are gone (expired or evicted).
    fn shrink(&mut self) {
        if self.entries.capacity() > 64 && self.entries.len() < self.entries.capacity() / 4 {
            self.entries.shrink_to(self.entries.len() * 2);
            self.shrunk = true;
        }
        if self.uses.capacity() > 128 && self.uses.len() < self.uses.capacity() / 4 {
            self.uses.shrink_to(self.uses.len() * 2);
            self.shrunk = true;
        }
    }
}

pub(crate) struct CredentialCache {
    config: CacheConfig,
    secret: [u8; 32],
    inner: Mutex<Inner>,
}

impl CredentialCache {
    pub fn new(config: CacheConfig) -> CredentialCache {
        let mut secret = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
        CredentialCache {
            config,
            secret,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled()
    }

    /// HMAC-SHA256(secret, address NUL password). The NUL keeps `a` + `bc` apart from `ab` +
    /// `c` (neither an address nor a SASL PLAIN password holds one).
    pub fn mac(&self, address: &str, password: &str) -> CredentialMac {
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            // HMAC takes keys of any length; unreachable, but never a panic on a login.
            return [0; 32];
        };
        m.update(address.as_bytes());
        m.update(&[0]);
        m.update(password.as_bytes());
        m.finalize().into_bytes().into()
    }

    /// Whether `mac` was verified for `account` within the TTL against the PHC string the
    /// account has now (`current_phc`). An entry that expired or belongs to another password
    /// hash is dropped; a different MAC (a wrong password) leaves the entry in place.
    pub fn check(&self, account: AccountId, mac: &CredentialMac, current_phc: &str) -> bool {
        if !self.enabled() {
            return false;
        }
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = inner.entries.get(&account) else {
            return false;
        };
        let stale = entry.expires <= now || !bool::from(entry.phc.ct_eq(&phc_digest(current_phc)));
        let matches = bool::from(entry.mac.ct_eq(mac));
        if stale {
            inner.remove(account);
            inner.shrink();
            return false;
        }
        if !matches {
            return false;
        }
        let used = inner.touch(account);
        if let Some(e) = inner.entries.get_mut(&account) {
            e.used = used;
        }
        true
    }

    /// Remembers that `mac` was just verified for `account` against `phc`.
    pub fn insert(&self, account: AccountId, mac: CredentialMac, phc: &str) {
        if !self.enabled() {
            return;
        }
        let expires = Instant::now() + self.config.ttl;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.remove(account);
        while inner.entries.len() >= self.config.max_entries {
            if !inner.evict_oldest() {
                break;
            }
        }
        let used = inner.touch(account);
        inner.entries.insert(
            account,
            Entry {
                mac,
                phc: phc_digest(phc),
                expires,
                used,
            },
        );
    }

    /// Drops the entries whose TTL has passed and gives their memory back: an entry is
    /// otherwise dropped only when its account next logs in, so after many clients left for
    /// good their entries would stay until evicted by others. Called periodically. True when
    /// the tables were reallocated smaller since the last purge: the old ones are then free
    /// memory that the allocator keeps until it is trimmed.
    pub fn purge_expired(&self) -> bool {
        if !self.enabled() {
            return false;
        }
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let before = inner.entries.len();
        inner.entries.retain(|_, e| e.expires > now);
        if inner.entries.len() != before {
            let Inner { entries, uses, .. } = &mut *inner;
            uses.retain(|&(tick, a)| entries.get(&a).is_some_and(|e| e.used == tick));
            inner.shrink();
        }
        std::mem::take(&mut inner.shrunk)
    }

    /// How many accounts are cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(ttl_ms: u64, max: usize) -> CredentialCache {
        CredentialCache::new(CacheConfig {
            ttl: Duration::from_millis(ttl_ms),
            max_entries: max,
        })
    }

    #[test]
    fn hit_needs_same_password_and_same_phc() {
        let c = cache(60_000, 10);
        let good = c.mac("a@d.test", "secret");
        c.insert(AccountId(1), good, "$argon2id$one");
        assert!(c.check(AccountId(1), &good, "$argon2id$one"));
        // A wrong password misses and does not evict the entry.
        assert!(!c.check(AccountId(1), &c.mac("a@d.test", "Secret"), "$argon2id$one"));
        assert!(c.check(AccountId(1), &good, "$argon2id$one"));
        // Another account with the same MAC misses.
        assert!(!c.check(AccountId(2), &good, "$argon2id$one"));
        // The password hash changed (yubin user passwd in another process): miss, dropped.
        assert!(!c.check(AccountId(1), &good, "$argon2id$two"));
        assert_eq!(c.len(), 0);
        assert!(!c.check(AccountId(1), &good, "$argon2id$one"));
    }

    #[test]
    fn mac_depends_on_secret_user_and_password() {
        let c = cache(60_000, 10);
        let d = cache(60_000, 10);
        assert_eq!(c.mac("a@d.test", "pw"), c.mac("a@d.test", "pw"));
        assert_ne!(c.mac("a@d.test", "pw"), d.mac("a@d.test", "pw"));
        assert_ne!(c.mac("a@d.test", "pw"), c.mac("b@d.test", "pw"));
        assert_ne!(c.mac("a@d.tes", "tpw"), c.mac("a@d.test", "pw"));
    }

    #[test]
    fn entries_expire() {
        let c = cache(30, 10);
        let m = c.mac("a@d.test", "pw");
        c.insert(AccountId(1), m, "phc");
        assert!(c.check(AccountId(1), &m, "phc"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!c.check(AccountId(1), &m, "phc"));
        assert_eq!(c.len(), 0);
    }

    /// The MACs of u0..u4@d.test, the first `inserted` of them cached for accounts 0, 1, ….
    fn five_macs_first_inserted(c: &CredentialCache, inserted: i64) -> Vec<CredentialMac> {
        let macs: Vec<_> = (0..5)
            .map(|i| c.mac(&format!("u{i}@d.test"), "pw"))
            .collect();
        for i in 0..inserted {
            c.insert(AccountId(i), macs[i as usize], "phc");
        }
        macs
    }

    #[test]
    fn bounded_least_recently_used_goes_first() {
        let c = cache(60_000, 3);
        let macs = five_macs_first_inserted(&c, 3);
        // Use 0, so 1 is now the least recently used.
        assert!(c.check(AccountId(0), &macs[0], "phc"));
        c.insert(AccountId(3), macs[3], "phc");
        assert_eq!(c.len(), 3);
        assert!(!c.check(AccountId(1), &macs[1], "phc"));
        assert!(c.check(AccountId(0), &macs[0], "phc"));
        assert!(c.check(AccountId(2), &macs[2], "phc"));
        assert!(c.check(AccountId(3), &macs[3], "phc"));
        // Re-inserting an account replaces its entry instead of adding one.
        c.insert(AccountId(3), macs[4], "phc2");
        assert_eq!(c.len(), 3);
        assert!(c.check(AccountId(3), &macs[4], "phc2"));
    }

    /// Uses leave stale pairs in the use queue; it is compacted, stays bounded, and eviction
    /// after a compaction still takes the least recently used.
    #[test]
    fn use_queue_stays_bounded_and_keeps_the_order() {
        let c = cache(60_000, 4);
        let macs = five_macs_first_inserted(&c, 4);
        // Many uses of 1, 2 and 3 (never 0): 0 stays the least recently used.
        for round in 0..10_000 {
            let i = 1 + round % 3;
            assert!(c.check(AccountId(i), &macs[i as usize], "phc"));
        }
        {
            let inner = c.inner.lock().unwrap();
            assert!(
                inner.uses.len() <= 2 * inner.entries.len() + 65,
                "{}",
                inner.uses.len()
            );
        }
        c.insert(AccountId(4), macs[4], "phc");
        assert!(!c.check(AccountId(0), &macs[0], "phc"));
        for i in 1..5 {
            assert!(c.check(AccountId(i), &macs[i as usize], "phc"));
        }
    }

    /// Tables shrunk when logins found their entries stale are reported by the next purge,
    /// although it finds nothing left to expire.
    #[test]
    fn a_purge_reports_tables_shrunk_by_logins() {
        let c = cache(20, 1_000);
        let m = c.mac("a@d.test", "pw");
        for i in 0..500 {
            c.insert(AccountId(i), m, "phc");
        }
        std::thread::sleep(Duration::from_millis(40));
        for i in 0..500 {
            assert!(!c.check(AccountId(i), &m, "phc"));
        }
        assert_eq!(c.len(), 0);
        assert!(c.purge_expired());
        assert!(!c.purge_expired());
    }

    /// Expired entries go at the purge, live ones stay and still hit.
    #[test]
    fn purge_drops_expired_entries_only() {
        let c = cache(60_000, 100);
        let m = c.mac("a@d.test", "pw");
        c.insert(AccountId(1), m, "phc");
        c.purge_expired();
        assert_eq!(c.len(), 1);
        assert!(c.check(AccountId(1), &m, "phc"));
        let short = cache(20, 1_000);
        for i in 0..500 {
            short.insert(AccountId(i), m, "phc");
        }
        std::thread::sleep(Duration::from_millis(40));
        short.insert(AccountId(99), m, "phc");
        assert!(!c.purge_expired(), "nothing expired, nothing to give back");
        assert!(short.purge_expired(), "499 of 500 gone: the tables shrink");
        assert!(!short.purge_expired(), "reported once");
        assert_eq!(short.len(), 1);
        assert_eq!(short.inner.lock().unwrap().uses.len(), 1);
        assert!(short.check(AccountId(99), &m, "phc"));
    }

    #[test]
    fn disabled_cache_never_hits() {
        for config in [
            CacheConfig::DISABLED,
            CacheConfig {
                ttl: Duration::ZERO,
                max_entries: 10,
            },
            CacheConfig {
                ttl: Duration::from_secs(60),
                max_entries: 0,
            },
        ] {
            let c = CredentialCache::new(config);
            let m = c.mac("a@d.test", "pw");
            c.insert(AccountId(1), m, "phc");
            assert!(!c.check(AccountId(1), &m, "phc"));
            assert_eq!(c.len(), 0);
        }
    }
}

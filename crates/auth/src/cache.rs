//! A cache of recently verified passwords, like Dovecot's `auth_cache`: clients reconnect all
//! day, and without it every login pays a full argon2 verification (~100 ms of a core).
//!
//! Invariants:
//! - No password is kept: an entry holds a tag, HMAC-SHA256(per-process random secret,
//!   address NUL password NUL password hash) cut to 128 bits, so the memory of the process
//!   does not reveal passwords, and the tag of a guess cannot be computed without the secret.
//! - Only successes are cached. A wrong password never matches an entry (tags are compared in
//!   constant time), so it still pays argon2 and the failure delay.
//! - The tag covers the password hash (PHC string) the password was verified against, and
//!   the caller computes it with the hash the account has now (read again from the directory
//!   at every login): a password changed or an account deleted by another process (the admin
//!   CLI) turns the entry into a miss at once, with no message between the processes.
//! - Bounded: at most `max_entries` accounts (one entry each, least recently used evicted),
//!   each valid for `ttl` from the verification that created it.
//! - Compact: 24 bytes an entry plus 8 for its key and 8 in the use queue. The cache is the
//!   memory a server keeps longest after its clients leave (until the TTL), so an entry holds
//!   no allocation of its own and no field wider than it needs.
//!
//! 128 bits of HMAC-SHA256 keep its strength against forgery (NIST SP 800-107 §5.3.3 allows
//! truncation to 64 bits and more); a forger would also need the per-process secret.

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
    /// At most [`MAX_TTL`] is used.
    pub ttl: Duration,
    /// How many accounts at most; zero disables the cache.
    pub max_entries: usize,
}

/// The longest TTL an entry gets (about 24.8 days): expiries are kept as 32-bit milliseconds.
pub const MAX_TTL: Duration = Duration::from_millis(HALF_RANGE_MS as u64);

/// Half the range of an entry's 32-bit clock: the clock's origin moves forward once it is
/// this far behind, so that now plus the longest TTL always fits.
const HALF_RANGE_MS: u32 = 1 << 31;

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
    /// Five minutes, 10,000 accounts (about 0.7 MiB when full).
    fn default() -> Self {
        CacheConfig {
            ttl: Duration::from_secs(300),
            max_entries: 10_000,
        }
    }
}

/// The tag of one address, password and password hash under the process's secret.
pub(crate) type CredentialTag = [u8; 16];

struct Entry {
    tag: CredentialTag,
    /// When the entry expires, in milliseconds after `Inner::origin`.
    expires: u32,
    /// Its account's last use: the position in `Inner::uses` (counted from the first use
    /// ever), modulo 2^32. The queue is far shorter than 2^32, so within it equal positions
    /// modulo 2^32 are equal positions.
    used: u32,
}

struct Inner {
    entries: HashMap<AccountId, Entry>,
    /// Every use, oldest first; the pair at a position that is no longer its entry's `used`
    /// is stale and skipped. One contiguous buffer instead of an ordered tree or linked
    /// nodes: small allocations made at logins among the sessions' memory would each keep a
    /// page of it resident after the sessions are gone.
    uses: VecDeque<AccountId>,
    /// The position of `uses[0]`: how many uses were taken from the front since the start.
    front: u64,
    /// The origin of the entries' expiry clock.
    origin: Instant,
    /// A table was reallocated smaller since the last purge (there, or when a login found
    /// its entry expired): the purge reports it, so the server trims the freed tables.
    shrunk: bool,
}

impl Inner {
    fn new() -> Inner {
        Inner {
            entries: HashMap::new(),
            uses: VecDeque::new(),
            front: 0,
            origin: Instant::now(),
            shrunk: false,
        }
    }

    /// Now on the entries' clock. Moves the origin forward (and every expiry back) once
    /// `now` is half the clock's range past it, so that now plus a TTL always fits.
    fn now_ms(&mut self) -> u32 {
        let elapsed = self.origin.elapsed().as_millis();
        if elapsed < u128::from(HALF_RANGE_MS) {
            return elapsed as u32;
        }
        let shift = elapsed.min(u128::from(u32::MAX)) as u32;
        self.origin += Duration::from_millis(u64::from(shift));
        for e in self.entries.values_mut() {
            e.expires = e.expires.saturating_sub(shift);
        }
        self.origin
            .elapsed()
            .as_millis()
            .min(u128::from(HALF_RANGE_MS - 1)) as u32
    }

    /// Records a use of `account` (which has an entry) now.
    fn touch(&mut self, account: AccountId) {
        let position = self.front + self.uses.len() as u64;
        self.uses.push_back(account);
        if let Some(e) = self.entries.get_mut(&account) {
            e.used = position as u32;
        }
        // Stale pairs are dropped once they are a third of the queue: amortised O(1) per
        // use, and the queue never holds more than about 1.5 times the entries.
        if self.uses.len() > self.entries.len() + self.entries.len() / 2 + 64 {
            self.compact_uses();
        }
    }

    /// Drops the stale pairs of the use queue, keeping the order of the live ones (and
    /// renumbering them, so that positions stay those of the queue).
    fn compact_uses(&mut self) {
        let Inner {
            entries,
            uses,
            front,
            ..
        } = self;
        let mut read = *front;
        let mut write = *front;
        uses.retain(|account| {
            let live = entries.get_mut(account).filter(|e| e.used == read as u32);
            read += 1;
            match live {
                Some(e) => {
                    e.used = write as u32;
                    write += 1;
                    true
                }
                None => false,
            }
        });
    }

    /// Drops the least recently used entry; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some(account) = self.uses.pop_front() {
            let position = self.front as u32;
            self.front += 1;
            if self
                .entries
                .get(&account)
                .is_some_and(|e| e.used == position)
            {
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
            inner: Mutex::new(Inner::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled()
    }

    /// HMAC-SHA256(secret, address NUL password NUL phc), its first 128 bits. The NULs keep
    /// `a` + `bc` apart from `ab` + `c` (neither an address nor a SASL PLAIN password holds
    /// one, nor does a PHC string).
    pub fn tag(&self, address: &str, password: &str, phc: &str) -> CredentialTag {
        let mut tag = [0u8; 16];
        let Ok(mut m) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            // HMAC takes keys of any length; unreachable, but never a panic on a login.
            return tag;
        };
        m.update(address.as_bytes());
        m.update(&[0]);
        m.update(password.as_bytes());
        m.update(&[0]);
        m.update(phc.as_bytes());
        tag.copy_from_slice(&m.finalize().into_bytes()[..16]);
        tag
    }

    /// Whether `tag` was verified for `account` within the TTL. An expired entry is dropped;
    /// a different tag (a wrong password, or a password hash changed since) leaves the entry
    /// in place until it expires or is evicted: it can match nothing else.
    pub fn check(&self, account: AccountId, tag: &CredentialTag) -> bool {
        if !self.enabled() {
            return false;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = inner.now_ms();
        let Some(entry) = inner.entries.get(&account) else {
            return false;
        };
        let expired = entry.expires <= now;
        let matches = bool::from(entry.tag.ct_eq(tag));
        if expired {
            inner.entries.remove(&account);
            inner.shrink();
            return false;
        }
        if !matches {
            return false;
        }
        inner.touch(account);
        true
    }

    /// Remembers that `tag` was just verified for `account`.
    pub fn insert(&self, account: AccountId, tag: CredentialTag) {
        if !self.enabled() {
            return;
        }
        let ttl = self.config.ttl.min(MAX_TTL).as_millis() as u32;
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let expires = inner.now_ms().saturating_add(ttl);
        inner.entries.remove(&account);
        while inner.entries.len() >= self.config.max_entries {
            if !inner.evict_oldest() {
                break;
            }
        }
        inner.entries.insert(
            account,
            Entry {
                tag,
                expires,
                used: 0,
            },
        );
        inner.touch(account);
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
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = inner.now_ms();
        let before = inner.entries.len();
        inner.entries.retain(|_, e| e.expires > now);
        if inner.entries.len() != before {
            inner.compact_uses();
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
        let good = c.tag("a@d.test", "secret", "$argon2id$one");
        c.insert(AccountId(1), good);
        assert!(c.check(AccountId(1), &good));
        // A wrong password misses and does not evict the entry.
        assert!(!c.check(AccountId(1), &c.tag("a@d.test", "Secret", "$argon2id$one")));
        assert!(c.check(AccountId(1), &good));
        // Another account with the same tag misses.
        assert!(!c.check(AccountId(2), &good));
        // The password hash changed (yubin user passwd in another process): the login's
        // tag, made with the hash the account has now, misses.
        let after_change = c.tag("a@d.test", "secret", "$argon2id$two");
        assert!(!c.check(AccountId(1), &after_change));
        // Verified again against the new hash, it hits, and the old tag no longer does.
        c.insert(AccountId(1), after_change);
        assert_eq!(c.len(), 1);
        assert!(c.check(AccountId(1), &after_change));
        assert!(!c.check(AccountId(1), &good));
    }

    #[test]
    fn tag_depends_on_secret_user_password_and_phc() {
        let c = cache(60_000, 10);
        let d = cache(60_000, 10);
        let t = c.tag("a@d.test", "pw", "phc");
        assert_eq!(t, c.tag("a@d.test", "pw", "phc"));
        assert_ne!(t, d.tag("a@d.test", "pw", "phc"));
        assert_ne!(t, c.tag("b@d.test", "pw", "phc"));
        assert_ne!(t, c.tag("a@d.test", "pw", "phd"));
        assert_ne!(t, c.tag("a@d.tes", "tpw", "phc"));
        assert_ne!(t, c.tag("a@d.test", "pwp", "hc"));
    }

    /// An entry, its key and its place in the use queue: 40 bytes (97 with a table slot's
    /// overhead before, with 32-byte MAC and digest and 16-byte times).
    #[test]
    fn entries_are_compact() {
        assert_eq!(std::mem::size_of::<Entry>(), 24);
        assert_eq!(std::mem::size_of::<(AccountId, Entry)>(), 32);
        assert_eq!(std::mem::size_of::<AccountId>(), 8);
    }

    #[test]
    fn entries_expire() {
        let c = cache(30, 10);
        let m = c.tag("a@d.test", "pw", "phc");
        c.insert(AccountId(1), m);
        assert!(c.check(AccountId(1), &m));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!c.check(AccountId(1), &m));
        assert_eq!(c.len(), 0);
    }

    /// When the expiry clock's origin is half its range behind, it moves forward and the
    /// entries keep their remaining time; an entry already expired stays expired.
    #[test]
    fn the_expiry_clock_moves_forward_without_changing_expiries() {
        let c = cache(60_000, 10);
        let live = c.tag("a@d.test", "pw", "phc");
        let dead = c.tag("b@d.test", "pw", "phc");
        c.insert(AccountId(1), live);
        c.insert(AccountId(2), dead);
        {
            let mut inner = c.inner.lock().unwrap();
            // As if the process had run 30 days: the origin is far behind now.
            let back = Duration::from_secs(30 * 86_400);
            let Some(origin) = inner.origin.checked_sub(back) else {
                return; // a monotonic clock this young cannot go back 30 days
            };
            inner.origin = origin;
            let now = back.as_millis() as u32;
            inner.entries.get_mut(&AccountId(1)).unwrap().expires = now + 60_000;
            inner.entries.get_mut(&AccountId(2)).unwrap().expires = now - 1;
        }
        assert!(c.check(AccountId(1), &live));
        assert!(!c.check(AccountId(2), &dead));
        let inner = c.inner.lock().unwrap();
        assert!(inner.origin.elapsed() < Duration::from_secs(60));
        let e = &inner.entries[&AccountId(1)];
        assert!((59_000..=60_000).contains(&e.expires), "{}", e.expires);
    }

    /// A TTL longer than the clock's range is cut to [`MAX_TTL`], not wrapped to the past.
    #[test]
    fn a_huge_ttl_is_capped_not_wrapped() {
        let c = CredentialCache::new(CacheConfig {
            ttl: Duration::from_secs(u64::MAX / 4),
            max_entries: 10,
        });
        let m = c.tag("a@d.test", "pw", "phc");
        c.insert(AccountId(1), m);
        assert!(c.check(AccountId(1), &m));
        assert!(!c.purge_expired());
        assert_eq!(c.len(), 1);
    }

    /// The tags of u0..u4@d.test, the first `inserted` of them cached for accounts 0, 1, ….
    fn five_tags_first_inserted(c: &CredentialCache, inserted: i64) -> Vec<CredentialTag> {
        let tags: Vec<_> = (0..5)
            .map(|i| c.tag(&format!("u{i}@d.test"), "pw", "phc"))
            .collect();
        for i in 0..inserted {
            c.insert(AccountId(i), tags[i as usize]);
        }
        tags
    }

    #[test]
    fn bounded_least_recently_used_goes_first() {
        let c = cache(60_000, 3);
        let tags = five_tags_first_inserted(&c, 3);
        // Use 0, so 1 is now the least recently used.
        assert!(c.check(AccountId(0), &tags[0]));
        c.insert(AccountId(3), tags[3]);
        assert_eq!(c.len(), 3);
        assert!(!c.check(AccountId(1), &tags[1]));
        assert!(c.check(AccountId(0), &tags[0]));
        assert!(c.check(AccountId(2), &tags[2]));
        assert!(c.check(AccountId(3), &tags[3]));
        // Re-inserting an account replaces its entry instead of adding one.
        c.insert(AccountId(3), tags[4]);
        assert_eq!(c.len(), 3);
        assert!(c.check(AccountId(3), &tags[4]));
        assert!(!c.check(AccountId(3), &tags[3]));
    }

    /// Uses leave stale pairs in the use queue; it is compacted, stays bounded, and eviction
    /// after many compactions still takes the least recently used, in order.
    #[test]
    fn use_queue_stays_bounded_and_keeps_the_order() {
        let c = cache(60_000, 4);
        let tags = five_tags_first_inserted(&c, 4);
        // Many uses of 1, 2 and 3 (never 0): 0 stays the least recently used, then 1, 2, 3
        // in the order of their last use.
        for round in 0..10_000 {
            let i = 1 + round % 3;
            assert!(c.check(AccountId(i), &tags[i as usize]));
        }
        {
            let inner = c.inner.lock().unwrap();
            let bound = inner.entries.len() + inner.entries.len() / 2 + 65;
            assert!(inner.uses.len() <= bound, "{}", inner.uses.len());
            assert!(inner.front > 0 || inner.uses.len() < 10_000);
        }
        // The last uses were 2, 3, 1 (round 9,999 used 1): 0 goes, then 2.
        c.insert(AccountId(4), tags[4]);
        assert!(!c.check(AccountId(0), &tags[0]));
        c.insert(AccountId(0), tags[0]);
        assert!(!c.check(AccountId(2), &tags[2]));
        for i in [0, 1, 3, 4] {
            assert!(c.check(AccountId(i), &tags[i as usize]), "{i}");
        }
    }

    /// Many accounts evicting each other through a small cache: every position comparison
    /// stays right as the queue's front moves on.
    #[test]
    fn eviction_keeps_exactly_the_most_recent() {
        let c = cache(60_000, 100);
        let tag = |i: i64| c.tag(&format!("u{i}@d.test"), "pw", "phc");
        for i in 0..5_000 {
            c.insert(AccountId(i), tag(i));
            // Keep account 7 in use once cached: it is never the least recently used.
            if i >= 7 {
                assert!(c.check(AccountId(7), &tag(7)), "{i}");
            }
        }
        assert_eq!(c.len(), 100);
        assert!(c.check(AccountId(7), &tag(7)));
        for i in 4_901..5_000 {
            assert!(c.check(AccountId(i), &tag(i)), "{i}");
        }
        assert!(!c.check(AccountId(4_900), &tag(4_900)));
        let inner = c.inner.lock().unwrap();
        assert!(inner.uses.len() <= 100 + 50 + 65, "{}", inner.uses.len());
    }

    /// Tables shrunk when logins found their entries expired are reported by the next purge,
    /// although it finds nothing left to expire.
    #[test]
    fn a_purge_reports_tables_shrunk_by_logins() {
        let c = cache(20, 1_000);
        let m = c.tag("a@d.test", "pw", "phc");
        for i in 0..500 {
            c.insert(AccountId(i), m);
        }
        std::thread::sleep(Duration::from_millis(40));
        for i in 0..500 {
            assert!(!c.check(AccountId(i), &m));
        }
        assert_eq!(c.len(), 0);
        assert!(c.purge_expired());
        assert!(!c.purge_expired());
    }

    /// Expired entries go at the purge, live ones stay and still hit.
    #[test]
    fn purge_drops_expired_entries_only() {
        let c = cache(60_000, 100);
        let m = c.tag("a@d.test", "pw", "phc");
        c.insert(AccountId(1), m);
        c.purge_expired();
        assert_eq!(c.len(), 1);
        assert!(c.check(AccountId(1), &m));
        let short = cache(20, 1_000);
        for i in 0..500 {
            short.insert(AccountId(i), m);
        }
        std::thread::sleep(Duration::from_millis(40));
        short.insert(AccountId(99), m);
        assert!(!c.purge_expired(), "nothing expired, nothing to give back");
        assert!(short.purge_expired(), "499 of 500 gone: the tables shrink");
        assert!(!short.purge_expired(), "reported once");
        assert_eq!(short.len(), 1);
        assert_eq!(short.inner.lock().unwrap().uses.len(), 1);
        assert!(short.check(AccountId(99), &m));
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
            let m = c.tag("a@d.test", "pw", "phc");
            c.insert(AccountId(1), m);
            assert!(!c.check(AccountId(1), &m));
            assert_eq!(c.len(), 0);
        }
    }
}

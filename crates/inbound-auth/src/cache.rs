//! The DNS answer caches handed to mail-auth (its `ResolverCache` trait): parsed records kept
//! until the TTL of the answer runs out (RFC 1035 §3.2.1), at most `capacity` of each kind.
//! Static answers from the `[dns.override]` table are pinned: they never expire.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use mail_auth::ResolverCache;

pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    pinned: HashMap<K, V>,
    capacity: usize,
}

impl<K: Hash + Eq, V: Clone> TtlCache<K, V> {
    pub fn new(capacity: usize, pinned: HashMap<K, V>) -> Self {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
            pinned,
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        // A panic elsewhere cannot leave a map half-updated: every change is one call.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Hash + Eq, V: Clone> ResolverCache<K, V> for TtlCache<K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(v) = self.pinned.get(name) {
            return Some(v.clone());
        }
        let mut map = self.lock();
        match map.get(name) {
            Some((v, until)) if *until > Instant::now() => Some(v.clone()),
            Some(_) => {
                map.remove(name);
                None
            }
            None => None,
        }
    }

    fn remove<Q>(&self, name: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lock().remove(name).map(|(v, _)| v)
    }

    fn insert(&self, key: K, value: V, valid_until: Instant) {
        if self.capacity == 0 || valid_until <= Instant::now() {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.capacity {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= self.capacity {
                // Still full of live answers: start afresh rather than track ages (the
                // resolver's own cache still holds the raw answers).
                map.clear();
            }
        }
        map.insert(key, (value, valid_until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn honours_ttl_capacity_and_pins() {
        let mut pinned = HashMap::new();
        pinned.insert("p.".to_string(), 9);
        let c: TtlCache<String, u32> = TtlCache::new(2, pinned);
        let later = Instant::now() + Duration::from_secs(60);
        c.insert("a.".into(), 1, later);
        c.insert("gone.".into(), 2, Instant::now());
        assert_eq!(c.get("a."), Some(1));
        assert_eq!(c.get("gone."), None);
        assert_eq!(c.get("p."), Some(9));
        c.insert("b.".into(), 2, later);
        c.insert("c.".into(), 3, later);
        assert_eq!(c.get("c."), Some(3));
        assert!(c.lock().len() <= 2);
        assert_eq!(c.remove("c."), Some(3));
        let none: TtlCache<String, u32> = TtlCache::new(0, HashMap::new());
        none.insert("a.".into(), 1, later);
        assert_eq!(none.get("a."), None);
    }
}

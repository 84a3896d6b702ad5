//! The message facts most recently used, in memory, in front of the `message_facts` table: a
//! FETCH of ENVELOPE or headers of messages read a moment ago (the same mailbox listed on a
//! second device, the next page of a list) then reads no facts from the database at all.
//!
//! Two generations approximate least-recently-used at no per-access cost: entries live in the
//! current map; once it holds half the byte budget it becomes the previous one (the old
//! previous one is dropped), and a hit in the previous map moves the entry back into the
//! current one. The facts are shared (`Arc`), never copied out.
//!
//! Nothing is ever invalidated: facts are a function of a blob's bytes, and a blob's bytes
//! never change (content addressing), even if its last message goes and the same bytes come
//! back later — so a cache per process (per node) is right whatever the others do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::MessageFacts;

/// The default budget: facts of the order of 20,000 messages.
pub const DEFAULT_BYTES: usize = 64 * 1024 * 1024;

#[derive(Default)]
struct Generations {
    current: HashMap<String, Arc<MessageFacts>>,
    current_bytes: usize,
    previous: HashMap<String, Arc<MessageFacts>>,
}

pub struct FactsCache {
    budget: usize,
    inner: Mutex<Generations>,
}

fn size_of(f: &MessageFacts) -> usize {
    let opt = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, Vec::len);
    96 + f.header.len()
        + f.envelope.len()
        + opt(&f.envelope_utf8)
        + f.body.len()
        + opt(&f.body_utf8)
        + f.bodystructure.len()
        + opt(&f.bodystructure_utf8)
}

impl FactsCache {
    /// A cache of at most about `budget` bytes of facts (0: caches nothing).
    pub fn new(budget: usize) -> FactsCache {
        FactsCache {
            budget,
            inner: Mutex::new(Generations::default()),
        }
    }

    /// The facts of blob `hash` if cached with `version`.
    pub fn get(&self, hash: &str, version: u32) -> Option<Arc<MessageFacts>> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.current.get(hash) {
            return (f.version == version).then(|| Arc::clone(f));
        }
        let f = g.previous.remove(hash)?;
        let hit = (f.version == version).then(|| Arc::clone(&f));
        self.insert_locked(&mut g, hash.to_string(), f);
        hit
    }

    pub fn put(&self, hash: &str, facts: Arc<MessageFacts>) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.insert_locked(&mut g, hash.to_string(), facts);
    }

    fn insert_locked(&self, g: &mut Generations, hash: String, facts: Arc<MessageFacts>) {
        let size = size_of(&facts);
        if size > self.budget / 2 {
            return;
        }
        if g.current_bytes + size > self.budget / 2 {
            g.previous = std::mem::take(&mut g.current);
            g.current_bytes = 0;
        }
        if let Some(old) = g.current.insert(hash, facts) {
            g.current_bytes = g.current_bytes.saturating_sub(size_of(&old));
        }
        g.current_bytes += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(version: u32, n: usize) -> Arc<MessageFacts> {
        Arc::new(MessageFacts {
            version,
            header: vec![b'h'; n],
            ..MessageFacts::default()
        })
    }

    #[test]
    fn hits_by_version_and_ages_out_by_bytes() {
        let c = FactsCache::new(4 * 1096);
        c.put("a", facts(1, 1000));
        assert!(c.get("a", 1).is_some());
        assert!(c.get("a", 2).is_none(), "another version is a miss");
        c.put("b", facts(1, 1000));
        // "a" and "b" fill the current half: "c" starts a new generation.
        c.put("c", facts(1, 1000));
        assert!(
            c.get("a", 1).is_some(),
            "the previous generation still answers"
        );
        c.put("d", facts(1, 1000));
        c.put("e", facts(1, 1000));
        assert!(c.get("b", 1).is_none(), "two generations back: gone");
        let tiny = FactsCache::new(0);
        tiny.put("a", facts(1, 10));
        assert!(tiny.get("a", 1).is_none(), "a zero budget caches nothing");
    }
}

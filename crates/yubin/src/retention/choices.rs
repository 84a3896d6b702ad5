//! The accounts' own POP3 retention choices (`store::Pop3Expire`, made on the account pages),
//! which win over the configured `[retention]` POP3 policy for their accounts.
//!
//! The store holds them; the retention pass reads the store at each pass. POP3 CAPA (RFC 2449
//! §6.7 EXPIRE, answered synchronously) reads this in-memory copy, which is loaded at start,
//! updated at once by a change on this node's account pages, and reread at every retention
//! interval on every node (so a change made on another node is announced within one interval).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::Days;

/// The copy of every account's choice, keyed by lower-case canonical address.
#[derive(Debug, Clone, Default)]
pub struct Pop3Choices(Arc<RwLock<HashMap<String, Days>>>);

/// The retention period of a stored choice.
pub fn days_of(c: store::Pop3Expire) -> Days {
    match c {
        store::Pop3Expire::Never => Days::Never,
        store::Pop3Expire::Days(n) => Days::After(n),
    }
}

/// The stored form of a period.
pub fn expire_of(d: Days) -> store::Pop3Expire {
    match d {
        Days::Never => store::Pop3Expire::Never,
        Days::After(n) => store::Pop3Expire::Days(n),
    }
}

impl Pop3Choices {
    pub fn get(&self, address: &str) -> Option<Days> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.get(&address.to_ascii_lowercase()).copied()
    }

    /// Records (or with `None` forgets) one account's choice.
    pub fn set(&self, address: &str, choice: Option<Days>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        match choice {
            Some(d) => map.insert(address.to_ascii_lowercase(), d),
            None => map.remove(&address.to_ascii_lowercase()),
        };
    }

    /// Every choice made (for the announcement before login).
    pub fn values(&self) -> Vec<Days> {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        map.values().copied().collect()
    }

    /// Replaces the copy with the store's.
    pub async fn reload(&self, store: &dyn store::Directory) -> store::StoreResult<()> {
        let all = store.pop3_expire_choices().await?;
        let fresh: HashMap<String, Days> = all
            .into_iter()
            .map(|(a, c)| (a.to_string().to_ascii_lowercase(), days_of(c)))
            .collect();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_forget() {
        let c = Pop3Choices::default();
        c.set("A@x.test", Some(Days::After(3)));
        assert_eq!(c.get("a@X.test"), Some(Days::After(3)));
        assert_eq!(c.values(), vec![Days::After(3)]);
        c.set("a@x.test", None);
        assert_eq!(c.get("a@x.test"), None);
        assert_eq!(
            expire_of(days_of(store::Pop3Expire::Days(5))),
            store::Pop3Expire::Days(5)
        );
        assert_eq!(days_of(store::Pop3Expire::Never), Days::Never);
    }
}

//! Which account each mailbox belongs to, so that a backend can refuse a [`MailboxId`] whose
//! account is not the mailbox's owner without a read per call.
//!
//! A mailbox never changes account (RENAME keeps it) and its number is never reused after a
//! DELETE, so an entry learned once stays true for the life of the store: the cache needs no
//! invalidation, across processes and nodes alike. It is bounded by clearing it when full;
//! a miss costs the backend one read by primary key.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::{AccountId, MailboxId, StoreError, StoreResult};

/// Entries kept before the cache starts over.
const CAPACITY: usize = 1 << 18;

#[derive(Default)]
pub struct Owners {
    map: Mutex<HashMap<i64, AccountId>>,
}

impl Owners {
    /// The mailbox's number when the cache knows it is `mailbox.account`'s, `Err(NotFound)`
    /// when it knows it is another's, `None` when the backend must look.
    pub fn check(&self, mailbox: MailboxId) -> Option<StoreResult<i64>> {
        let owner = *self.lock().get(&mailbox.number)?;
        Some(verdict(mailbox, Some(owner)))
    }

    /// Records what the backend read (`None`: no such mailbox, not cached) and judges
    /// `mailbox` by it.
    pub fn settle(&self, mailbox: MailboxId, owner: Option<AccountId>) -> StoreResult<i64> {
        if let Some(a) = owner {
            self.learn(MailboxId::new(a, mailbox.number));
        }
        verdict(mailbox, owner)
    }

    /// Records a mailbox the backend read or made, so that calls on it need no lookup.
    pub fn learn(&self, mailbox: MailboxId) {
        let mut map = self.lock();
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(mailbox.number, mailbox.account);
    }

    /// Forgets every entry and frees the table (the store's `release_cache_memory`, after
    /// many clients left): each mailbox costs one lookup by primary key when next used.
    pub fn forget(&self) {
        *self.lock() = HashMap::new();
    }

    /// `NotFound` unless `mailbox` is its account's: from the cache, else by `read` (the
    /// backend's lookup of a mailbox number's owner, `None` without the mailbox).
    pub async fn verify<F, Fut>(&self, mailbox: MailboxId, read: F) -> StoreResult<()>
    where
        F: FnOnce(i64) -> Fut,
        Fut: Future<Output = StoreResult<Option<AccountId>>>,
    {
        if let Some(verdict) = self.check(mailbox) {
            return verdict.map(drop);
        }
        let owner = read(mailbox.number).await?;
        self.settle(mailbox, owner).map(drop)
    }

    /// The precondition of COPY and MOVE: both mailboxes one account's (checked by [`verify`]
    /// after this).
    pub fn same_account(from: MailboxId, to: MailboxId) -> StoreResult<()> {
        if from.account != to.account {
            return Err(StoreError::NotFound(format!("mailbox {}", to.number)));
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, AccountId>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A mailbox of another account is answered as one that does not exist: the caller learns
/// nothing about other accounts.
fn verdict(mailbox: MailboxId, owner: Option<AccountId>) -> StoreResult<i64> {
    match owner {
        Some(a) if a == mailbox.account => Ok(mailbox.number),
        _ => Err(StoreError::NotFound(format!("mailbox {}", mailbox.number))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: AccountId = AccountId(1);
    const B: AccountId = AccountId(2);

    #[test]
    fn a_learned_owner_is_checked_without_the_backend() {
        let o = Owners::default();
        assert!(o.check(MailboxId::new(A, 7)).is_none());
        o.learn(MailboxId::new(A, 7));
        assert_eq!(o.check(MailboxId::new(A, 7)).map(|r| r.ok()), Some(Some(7)));
        assert!(matches!(
            o.check(MailboxId::new(B, 7)),
            Some(Err(StoreError::NotFound(_)))
        ));
    }

    #[test]
    fn settling_judges_by_what_the_backend_read() {
        let o = Owners::default();
        assert!(matches!(
            o.settle(MailboxId::new(B, 9), Some(A)),
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(o.settle(MailboxId::new(A, 9), Some(A)).ok(), Some(9));
        assert!(matches!(
            o.settle(MailboxId::new(A, 10), None),
            Err(StoreError::NotFound(_))
        ));
        assert!(
            o.check(MailboxId::new(A, 10)).is_none(),
            "absence is not cached"
        );
    }
}

//! A process-wide memory budget for message data in flight: SMTP DATA/BDAT content and IMAP
//! APPEND literals being received, before they are stored.
//!
//! Each transfer holds a [`Charge`] that grows as its bytes arrive; growing past the budget
//! fails, and the protocol answers its temporary error (SMTP `452 4.3.1`, IMAP
//! `NO [LIMIT]`), so ten thousand clients each sending a 25 MiB message cannot exhaust the
//! memory together. Dropping the charge (stored, refused, disconnect, panic) gives the bytes
//! back, so nothing leaks.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The budget. One per process, shared by every listener.
pub struct MemoryBudget {
    /// At most this many bytes charged at once (`usize::MAX`: unlimited).
    limit: usize,
    used: AtomicUsize,
}

impl fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("limit", &self.limit)
            .field("used", &self.used())
            .finish()
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes; 0 means unlimited.
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit: if limit == 0 { usize::MAX } else { limit },
            used: AtomicUsize::new(0),
        })
    }

    /// No limit (the protocol crates' default; the binary sets the configured one).
    pub fn unlimited() -> Arc<MemoryBudget> {
        MemoryBudget::new(0)
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// An empty charge against this budget, for one transfer.
    pub fn charge(self: &Arc<Self>) -> Charge {
        Charge {
            budget: Arc::clone(self),
            held: 0,
        }
    }

    fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Bytes one transfer holds from the budget; given back when dropped.
pub struct Charge {
    budget: Arc<MemoryBudget>,
    held: usize,
}

impl fmt::Debug for Charge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Charge").field("held", &self.held).finish()
    }
}

/// Charges grow in steps of this much, so a message arriving in small reads costs one atomic
/// operation per step rather than per read.
const STEP: usize = 64 * 1024;

impl Charge {
    /// Makes the charge cover at least `total` bytes; `false` (and nothing more charged)
    /// when the budget has no room for them.
    pub fn reserve(&mut self, total: usize) -> bool {
        if total <= self.held {
            return true;
        }
        // Round up to a step, but never past the limit only because of the rounding.
        let rounded = total.div_ceil(STEP).saturating_mul(STEP);
        for want in [rounded, total] {
            if self.budget.try_take(want - self.held) {
                self.held = want;
                return true;
            }
        }
        false
    }

    /// Gives back everything above `total` bytes.
    pub fn shrink_to(&mut self, total: usize) {
        if total < self.held {
            self.budget.give_back(self.held - total);
            self.held = total;
        }
    }

    /// Bytes held.
    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.shrink_to(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_grow_to_the_limit_and_are_given_back_on_drop() {
        let b = MemoryBudget::new(200_000);
        let mut a = b.charge();
        assert!(a.reserve(1000));
        assert_eq!(a.held(), STEP, "rounded up to a step");
        assert!(a.reserve(150_000));
        let mut c = b.charge();
        assert!(!c.reserve(100_000), "over the budget");
        assert_eq!(c.held(), 0, "a refusal charges nothing");
        assert!(c.reserve(200_000 - a.held()), "exactly what is left fits");
        assert_eq!(b.used(), 200_000);
        drop(a);
        assert!(c.reserve(150_000));
        c.shrink_to(10);
        assert_eq!(b.used(), 10);
        drop(c);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn zero_is_unlimited() {
        let b = MemoryBudget::new(0);
        let mut a = b.charge();
        assert!(a.reserve(usize::MAX / 2));
        drop(a);
        assert_eq!(b.used(), 0);
    }
}

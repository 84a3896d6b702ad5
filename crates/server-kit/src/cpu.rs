//! Running CPU-heavy work (parsing a large message, hashing its body) from async code without
//! stalling the other sessions on the same worker thread.
//!
//! `spawn_blocking` needs owned data; most parsers borrow the message. [`cpu_heavy`] uses
//! `block_in_place` instead: the worker's queued tasks move to another worker while `f` runs
//! on this thread. Small inputs run inline — the hand-off would cost more than the work, and
//! the common 1–10 KB message must stay cheap.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Inputs from this size on are treated as heavy.
pub const HEAVY_BYTES: usize = 256 * 1024;

/// Runs `f`, which works on `size` bytes: inline below [`HEAVY_BYTES`] or outside a
/// multi-thread runtime (a current-thread runtime has no other worker to hand over to),
/// else in `block_in_place`.
pub fn cpu_heavy<R>(size: usize, f: impl FnOnce() -> R) -> R {
    // The size first: a small message costs one comparison.
    let multi =
        || Handle::try_current().is_ok_and(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread);
    if size >= HEAVY_BYTES && multi() {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_outside_a_runtime() {
        assert_eq!(cpu_heavy(HEAVY_BYTES, || 7), 7);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn runs_inline_on_a_current_thread_runtime() {
        assert_eq!(cpu_heavy(HEAVY_BYTES * 4, || 8), 8);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_work_leaves_the_other_tasks_running() {
        // A ticker on the same runtime keeps running while the heavy work blocks its thread.
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let t = std::sync::Arc::clone(&ticks);
        let ticker = tokio::spawn(async move {
            loop {
                t.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
        cpu_heavy(HEAVY_BYTES, || {
            std::thread::sleep(std::time::Duration::from_millis(300))
        });
        let after = ticks.load(std::sync::atomic::Ordering::Relaxed);
        ticker.abort();
        assert!(after >= before + 10, "{before} → {after}");
    }
}

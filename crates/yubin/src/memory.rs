//! Process-wide memory allocator settings.
//!
//! glibc serves allocations above its mmap threshold (128 KiB) with `mmap` and returns them to
//! the system on `free`, but after the first such free it raises the threshold dynamically (up
//! to 32 MiB). From then on, large short-lived buffers — argon2's 19 MiB working memory per
//! login, a message being received — come from per-thread arenas and stay resident after
//! `free`, so the server's memory would ratchet up with every thread that ever verified a
//! password. Fixing the threshold keeps large buffers returnable.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Buffers at or above this size are always mmapped, and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1024 * 1024;

/// Free memory at the top of a heap is given back to the system only beyond this. glibc's
/// default (128 KiB, which pinning the mmap threshold also pins) made the server give back and
/// fault in again a few hundred KiB many times a second under IMAP load — SQLite's savepoint
/// journal, response buffers — each `madvise` flushing the TLB of every core. Twice the mmap
/// threshold is what glibc's own dynamic tuning would choose.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 2 * MMAP_THRESHOLD;

/// Pins glibc's mmap and trim thresholds (see the module docs), caps its arenas
/// ([`arena_cap`]) and keeps transparent huge pages off the heap ([`no_huge_pages`]). A no-op
/// on other C libraries.
#[allow(unsafe_code)]
pub fn tune_allocator() {
    #[cfg(target_os = "linux")]
    no_huge_pages();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called once at startup, before the
    // runtime starts other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        if let Some(cap) = arena_cap() {
            libc::mallopt(libc::M_ARENA_MAX, cap);
        }
    }
}

/// Where the kernel's transparent huge pages are on for every process (`always`: Debian's and
/// RHEL's kernels), `khugepaged` merges the heap's 4 KiB pages into 2 MiB ones in the
/// background, filling a 2 MiB range when one page of it is in use: after 2,000 IDLE sessions
/// had left, the memory they gave back came back within two minutes (+70 % of the baseline on
/// Debian's 6.1 kernel, +6 % where THP is `madvise`). A server of many small sessions gains
/// nothing from huge pages, so yubin turns them off for itself (`PR_SET_THP_DISABLE`, Linux
/// 3.15+; children inherit it). `YUBIN_HUGE_PAGES=1` leaves the system's choice.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn no_huge_pages() {
    if std::env::var_os("YUBIN_HUGE_PAGES").is_some_and(|v| v == "1") {
        return;
    }
    // SAFETY: prctl(PR_SET_THP_DISABLE) takes integers only and changes a flag of this process.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        // Old kernels: the memory figures differ, nothing else does.
        eprintln!(
            "yubin: cannot turn transparent huge pages off: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// glibc gives threads up to 8 arenas per core, and each arena keeps free memory of its own:
/// the runtime's workers, its blocking threads (SQLite reads, password hashing) and the
/// writer spread over 16 arenas on 2 cores, and after 2,000 TLS sessions left about 4 MiB
/// stayed spread over them. Two arenas per core keep what is freed in few places, where the
/// trim finds it. Measured on 2 cores (imaptest stress, 50 clients): 4 arenas cost no
/// throughput against 16 (13,495 against 13,691 commands/s, same CPU per command), where 2
/// cost 13 % and 16 % more CPU per command from the threads waiting on each other's arena.
/// `MALLOC_ARENA_MAX` or the `glibc.malloc.arena_max` tunable, when set, win.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn arena_cap() -> Option<libc::c_int> {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() || tunables.contains("arena_max") {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Some((2 * cores).clamp(4, 128) as libc::c_int)
}

/// How often [`trim_when_clients_leave`] looks at the number of open connections.
/// (a load of one atomic: cheap enough to do every second, so that memory is back within
/// seconds of the clients leaving).
const TRIM_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Gives freed heap memory back to the system after many clients have left: glibc keeps what
/// sessions freed in its arenas (only the top of each heap is trimmed by itself), so after
/// 2,000 IDLE sessions closed the process stayed ~85 % above its baseline, and `malloc_trim`
/// brings it back. Checked every [`TRIM_CHECK`]: a trim when the open connections have fallen
/// to half of their peak since the last trim, by at least 100. `open` reads the count now
/// and the peak since its last call.
///
/// Before the trim: the caches ([`Caches`]) are released, and every runtime worker hands over its
/// thread cache ([`on_worker_park`]). Both hold small blocks scattered among the freed
/// sessions' memory, and each one keeps a page of it resident. A second trim follows
/// [`FOLLOW_UP`] later, once the blocking pool's idle threads have exited (their caches are
/// freed at exit).
pub async fn trim_when_clients_leave(
    open: impl Fn() -> (usize, usize) + Send + 'static,
    caches: Caches,
    shutdown: server_kit::Shutdown,
) {
    let mut peak = open().1;
    let mut tick = tokio::time::interval(TRIM_CHECK);
    let mut follow_up: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (now, recent_peak) = open();
        peak = peak.max(recent_peak);
        if peak >= now.saturating_add(100) && now <= peak / 2 {
            give_back(&caches).await;
            tracing::debug!(peak, now, "memory given back after clients left");
            peak = now;
            follow_up = Some(tokio::time::Instant::now() + FOLLOW_UP);
        } else if follow_up.is_some_and(|at| at <= tokio::time::Instant::now()) {
            follow_up = None;
            flush_worker_caches().await;
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

/// The process's caches that are emptied when memory is given back: each is sized by the
/// clients it served, and would keep that size with nobody left to use it.
#[derive(Clone)]
pub struct Caches {
    /// SQLite's page caches, the table of mailbox owners.
    pub store: std::sync::Arc<dyn store::Store>,
    /// IMAP's `\Recent` marks: one entry per mailbox selected since the start.
    pub imap_recent: std::sync::Arc<imap_server::RecentTracker>,
}

impl Caches {
    async fn release(&self) {
        self.store.release_cache_memory().await;
        self.imap_recent.release_memory();
    }
}

/// Returns the memory freed since the last trim to the system: the caches released, every
/// runtime worker's thread cache handed over, then `malloc_trim`. Also called when the
/// credential cache's tables shrink after its entries expired: a table sized for 100,000
/// logins is megabytes of free memory in the middle of the heap, which only a trim returns.
pub async fn give_back(caches: &Caches) {
    caches.release().await;
    flush_worker_caches().await;
    let _ = tokio::task::spawn_blocking(trim).await;
}

/// After a trim, when the second one runs: just past tokio's keep-alive of idle blocking
/// threads (10 s), whose thread caches glibc frees when they exit.
const FOLLOW_UP: std::time::Duration = std::time::Duration::from_secs(11);

/// Asks every runtime worker to hand over its thread cache the next time it parks, and gives
/// them the time to (an idle worker parks at once; a busy one is using its cache anyway).
async fn flush_worker_caches() {
    FLUSH_EPOCH.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
}

/// Bumped to ask each worker for one [`flush_thread_cache`].
static FLUSH_EPOCH: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The last [`FLUSH_EPOCH`] this thread acted on.
    static FLUSHED: Cell<u64> = const { Cell::new(0) };
}

/// The runtime's `on_thread_park` hook (one atomic load unless a flush was asked for).
pub fn on_worker_park() {
    let want = FLUSH_EPOCH.load(Ordering::Relaxed);
    if FLUSHED.get() != want {
        FLUSHED.set(want);
        flush_thread_cache();
    }
}

/// glibc's per-thread cache (tcache) keeps up to 7 freed blocks of each of 64 small sizes
/// (up to 1,032 bytes) for the thread's next `malloc`, and `malloc_trim` does not touch them:
/// after the sessions left, each worker's cached blocks, scattered over its arena, kept about
/// 2 MiB of freed pages resident. The cache is emptied by taking its blocks out (a `malloc` of
/// each size is served from it first) and freeing them on a short-lived thread: they fill that
/// thread's cache, and glibc frees a thread's cache into the arenas when the thread exits.
/// Only an optimisation, and a no-op on other C libraries.
#[allow(unsafe_code)]
fn flush_thread_cache() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// glibc's defaults: 64 bins of 16-byte steps, 7 blocks each.
        const BINS: usize = 64;
        const PER_BIN: usize = 7;
        let mut taken: Vec<usize> = Vec::with_capacity(BINS * PER_BIN);
        for bin in 0..BINS {
            // The request size whose chunk falls in tcache bin `bin` (glibc's tidx2usize).
            let size = bin * 16 + 24;
            for _ in 0..PER_BIN {
                // SAFETY: a plain allocation, freed below exactly once.
                let p = unsafe { libc::malloc(size) };
                if !p.is_null() {
                    taken.push(p as usize);
                }
            }
        }
        let freer = std::thread::Builder::new()
            .name("yubin-free".into())
            .spawn(move || {
                for p in taken {
                    // SAFETY: each pointer came from malloc above and is freed once.
                    unsafe { libc::free(p as *mut libc::c_void) };
                }
            });
        if let Ok(t) = freer {
            let _ = t.join();
        }
    }
}

/// `malloc_trim(0)`: returns free memory of every arena to the system (a no-op elsewhere).
#[allow(unsafe_code)]
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own heaps; it is
    // thread-safe (it locks each arena).
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker flushes once per asked-for epoch, and its allocator works on afterwards: the
    /// blocks it freed on the helper thread were its cache's, each freed once.
    #[test]
    fn a_parked_worker_flushes_its_cache_once_per_request() {
        let churn = || {
            let blocks: Vec<Vec<u8>> = (0..2_000).map(|i| vec![i as u8; 16 + i % 1_000]).collect();
            blocks.iter().map(|b| b.len()).sum::<usize>()
        };
        churn();
        FLUSH_EPOCH.fetch_add(1, Ordering::Relaxed);
        on_worker_park();
        assert_eq!(FLUSHED.get(), FLUSH_EPOCH.load(Ordering::Relaxed));
        // Nothing asked since: the hook does nothing.
        let before = FLUSHED.get();
        on_worker_park();
        assert_eq!(FLUSHED.get(), before);
        assert!(churn() > 0);
        trim();
        assert!(churn() > 0);
    }
}

//! Process-wide memory allocator settings.
//!
//! glibc serves allocations above its mmap threshold (128 KiB) with `mmap` and returns them to
//! the system on `free`, but after the first such free it raises the threshold dynamically (up
//! to 32 MiB). From then on, large short-lived buffers — argon2's 19 MiB working memory per
//! login, a message being received — come from per-thread arenas and stay resident after
//! `free`, so the server's memory would ratchet up with every thread that ever verified a
//! password. Fixing the threshold keeps large buffers returnable.

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

/// Pins glibc's mmap and trim thresholds (see the module docs). A no-op on other C libraries.
#[allow(unsafe_code)]
pub fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; it is called once at startup, before the
    // runtime starts other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
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
pub async fn trim_when_clients_leave(
    open: impl Fn() -> (usize, usize) + Send + 'static,
    shutdown: server_kit::Shutdown,
) {
    let mut peak = open().1;
    let mut tick = tokio::time::interval(TRIM_CHECK);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (now, recent_peak) = open();
        peak = peak.max(recent_peak);
        if peak >= now.saturating_add(100) && now <= peak / 2 {
            let _ = tokio::task::spawn_blocking(trim).await;
            tracing::debug!(peak, now, "memory given back after clients left");
            peak = now;
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

//! A bound on the TLS handshakes in progress, across every implicit-TLS listener and every
//! STARTTLS/STLS upgrade of the process. Each handshake costs a core for a millisecond or two
//! (key exchange and a signature) and tens of KiB of state; after a network blip every phone
//! reconnects at once, and unbounded, thousands of handshakes would share the CPU so thinly
//! that most reach their timeout. Bounded, they queue and complete in turn; the time in the
//! queue counts toward the handshake timeout, as the client sees it.

use std::sync::OnceLock;

use tokio::sync::{Semaphore, SemaphorePermit};

/// Handshakes in progress at most when [`set_limit`] was not called.
pub const DEFAULT_LIMIT: usize = 512;

static GATE: OnceLock<Semaphore> = OnceLock::new();

fn gate() -> &'static Semaphore {
    GATE.get_or_init(|| Semaphore::new(DEFAULT_LIMIT))
}

/// Sets the bound (`[limits] tls_handshakes_in_progress`); the first call wins, and it must
/// come before the first handshake.
pub fn set_limit(n: usize) {
    let _ = GATE.set(Semaphore::new(n.max(1)));
}

/// Waits for a turn to run a handshake; the handshake ends when the permit is dropped.
pub async fn permit() -> SemaphorePermit<'static> {
    gate()
        .acquire()
        .await
        .expect("the handshake gate is never closed")
}

/// Handshakes that can start now without waiting.
pub fn available() -> usize {
    gate().available_permits()
}

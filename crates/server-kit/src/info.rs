//! Facts about a connection that sessions and logs need.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the last replies and the close may take once the slot was given back: the
/// connection no longer counts against the limits, so a client that stops reading must not
/// keep it for a whole idle timeout.
pub const CLOSING_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is connected, where, and how.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Process-unique connection number, for correlating log lines.
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The listener's name in `[listen]`: `smtp`, `submission`, `pop3s`, …
    pub listener: &'static str,
    /// The connection's place in the server's connection limits.
    pub slot: ConnSlot,
}

/// A connection's slot in the server's connection limits (whatever the listener counts it
/// with). The listener gives it back when the connection task ends; a session gives it back
/// earlier, as soon as it has decided to close (IMAP LOGOUT, POP3 QUIT, SMTP QUIT) and before
/// the last reply is sent: a client that reconnects the moment it reads that reply must find
/// its slot free, not get "too many connections".
///
/// Clones share the slot; releasing twice is harmless. `ConnSlot::default()` holds nothing
/// (tests, connections not counted).
#[derive(Clone, Default)]
pub struct ConnSlot(Option<Arc<Mutex<Option<Guard>>>>);

/// Whatever gives the slot back when dropped.
type Guard = Box<dyn Send>;

impl ConnSlot {
    /// A slot that drops `guard` (which gives the place back) at [`ConnSlot::release`].
    pub fn new(guard: impl Send + 'static) -> ConnSlot {
        ConnSlot(Some(Arc::new(Mutex::new(Some(Box::new(guard))))))
    }

    /// Gives the slot back now.
    pub fn release(&self) {
        if let Some(cell) = &self.0 {
            let guard = cell.lock().unwrap_or_else(|e| e.into_inner()).take();
            drop(guard);
        }
    }

    /// The write timeout for what is left to send: `normal` while the slot is held, at most
    /// [`CLOSING_TIMEOUT`] once it was given back.
    pub fn closing_timeout(&self, normal: Duration) -> Duration {
        if self.is_held() {
            normal
        } else {
            normal.min(CLOSING_TIMEOUT)
        }
    }

    /// Whether the slot is still held.
    pub fn is_held(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|c| c.lock().unwrap_or_else(|e| e.into_inner()).is_some())
    }
}

impl std::fmt::Debug for ConnSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnSlot")
            .field("held", &self.is_held())
            .finish()
    }
}

/// Whether a password may cross a connection that is not (yet) encrypted.
///
/// RFC 8314 §3 and RFC 4954 §4: clients and servers must not expose passwords in clear text.
/// yubin allows it only from a loopback peer (local scripts and webmail), and `[auth]
/// allow_plaintext_loopback = false` forbids even that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaintextAuth {
    pub allow_loopback: bool,
}

impl PlaintextAuth {
    pub fn permits(&self, info: &ConnInfo, tls: bool) -> bool {
        tls || (self.allow_loopback && info.peer.ip().is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn slot_is_released_once_by_any_clone() {
        let dropped = Arc::new(AtomicUsize::new(0));
        let slot = ConnSlot::new(Counted(dropped.clone()));
        let clone = slot.clone();
        assert!(slot.is_held());
        clone.release();
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        assert!(!slot.is_held());
        slot.release();
        drop(clone);
        assert_eq!(dropped.load(Ordering::SeqCst), 1);
        ConnSlot::default().release();
        assert!(!ConnSlot::default().is_held());
        let long = Duration::from_secs(600);
        assert_eq!(slot.closing_timeout(long), CLOSING_TIMEOUT);
        let held = ConnSlot::new(());
        assert_eq!(held.closing_timeout(long), long);
        assert_eq!(
            held.closing_timeout(Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}

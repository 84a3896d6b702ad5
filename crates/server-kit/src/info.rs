//! Facts about a connection that sessions and logs need.

use std::net::SocketAddr;

/// Who is connected, where, and how.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Process-unique connection number, for correlating log lines.
    pub id: u64,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The listener's name in `[listen]`: `smtp`, `submission`, `pop3s`, …
    pub listener: &'static str,
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

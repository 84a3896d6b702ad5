//! POP3 sessions over any byte stream, generic over the store traits.
//!
//! Implements RFC 1939 (POP3: AUTHORIZATION, TRANSACTION and UPDATE states; USER/PASS, STAT,
//! LIST, RETR, DELE, NOOP, RSET, QUIT, TOP, UIDL), RFC 2449 (CAPA, RESP-CODES, PIPELINING),
//! RFC 2595 §4 (STLS), RFC 5034 (SASL AUTH with PLAIN and LOGIN, initial responses, `*` to
//! cancel) and RFC 3206 (`[AUTH]`, `[SYS/TEMP]`, `[SYS/PERM]` response codes).
//!
//! RFC 2449 §6.7 EXPIRE is announced from the server's policy ([`ExpirePolicy`]); the first
//! RETR of each message is recorded in the store (`store::MessageDates::mark_retrieved`), from
//! which the server's retention task expunges retrieved messages after the period.
//!
//! Not implemented: APOP (RFC 1939 §7; it needs plaintext-equivalent passwords), LOGIN-DELAY
//! (RFC 2449 §6.5), SCRAM mechanisms, and AUTH with an authorization identity
//! other than the authenticated user (proxy authorization).
//!
//! The maildrop is the account's INBOX: after login the session takes the POP3 maildrop lock
//! (RFC 1939 §8) and a snapshot of INBOX; message numbers refer to that snapshot. Messages
//! marked with DELE are expunged only in the UPDATE state after QUIT, and `+OK` is sent only
//! after the store committed the expunge.
//!
//! Invariant: the maildrop lock is owned by the session state and released when the session
//! ends, however it ends (QUIT, drop, timeout, shutdown, I/O error). It is a lease in the store
//! (`store::LeaseGuard`), so it holds across processes and nodes, and expires when its
//! process is killed.

mod capa;
mod errors;
mod expire;
mod login;
mod maildrop;
mod metrics;
mod session;
mod transaction;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use server_kit::{BoxStream, ConnInfo, PlaintextAuth, Shutdown, TlsAcceptor};

pub use expire::{Expire, ExpirePolicy, NeverExpire};

#[derive(Debug, Clone)]
pub struct Pop3Config {
    pub hostname: String,
    /// Longest accepted command line, CRLF included. RFC 2449 §4 limits commands to 255
    /// octets; a little more is accepted for long SASL responses.
    pub max_line_length: usize,
    /// RFC 1939 §3: an inactivity autologout timer of at least 10 minutes. Also the longest a
    /// single write may stall before the connection is dropped.
    pub idle_timeout: Duration,
    pub plaintext_auth: PlaintextAuth,
    /// Failed logins after which the connection is closed.
    pub max_auth_failures: u32,
    /// How many octets of a message are read from the store at a time for RETR and TOP.
    pub retr_chunk_size: usize,
    /// How long the maildrop lock (RFC 1939 §8), a lease in the store, lasts without renewal.
    /// A live session renews it every third of this; a killed process's lock expires after
    /// it, and until then the account gets `-ERR [IN-USE]` (RFC 2449 §8.1.2) everywhere.
    pub maildrop_lease: Duration,
    /// How long the TLS handshake after STLS may take (a client that stalls in it holds a
    /// connection slot until then).
    pub tls_handshake_timeout: Duration,
    /// The retention policy CAPA announces as EXPIRE (RFC 2449 §6.7); the server applies it
    /// elsewhere (yubin's retention task) from the first-RETR times this crate records.
    pub expire: Arc<dyn ExpirePolicy>,
}

impl Pop3Config {
    /// Defaults: 1024-octet lines, 10-minute idle timeout, plaintext passwords only from
    /// loopback, 3 login attempts, 16 KiB read chunks, a 60-second maildrop lease.
    pub fn new(hostname: impl Into<String>) -> Pop3Config {
        Pop3Config {
            hostname: hostname.into(),
            max_line_length: 1024,
            idle_timeout: Duration::from_secs(10 * 60),
            plaintext_auth: PlaintextAuth {
                allow_loopback: true,
            },
            max_auth_failures: 3,
            retr_chunk_size: 16 * 1024,
            maildrop_lease: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(30),
            expire: Arc::new(NeverExpire),
        }
    }
}

pub struct Pop3Server {
    pub config: Pop3Config,
    pub store: Arc<dyn store::Store>,
    pub auth: auth::Authenticator,
    pub tls: Option<TlsAcceptor>,
}

/// Runs one POP3 session to its end. `tls` says whether `stream` is already encrypted
/// (implicit TLS, port 995).
pub async fn serve(
    server: Arc<Pop3Server>,
    stream: BoxStream,
    tls: bool,
    info: ConnInfo,
    shutdown: Shutdown,
) {
    session::Session::new(server, stream, tls, info, shutdown)
        .run()
        .await
}

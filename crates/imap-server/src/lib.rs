//! IMAP sessions — for now a placeholder that speaks just enough IMAP for clients to connect,
//! upgrade to TLS and log out, and tells them IMAP is not available yet.
//!
//! Implements (RFC 9051, IMAP4rev2, and RFC 3501, IMAP4rev1): the greeting with a CAPABILITY
//! response code (§7.1), CAPABILITY (§6.1.1), NOOP (§6.1.2), LOGOUT (§6.1.3), STARTTLS
//! (§6.2.1; pipelined plaintext is discarded), LOGINDISABLED on connections where passwords
//! may not be sent (§6.2.3), non-synchronizing literals up to 4096 octets are skipped (§4.3).
//!
//! Not implemented (the full IMAP server comes later): everything else — LOGIN, AUTHENTICATE,
//! SELECT, FETCH, … are answered `NO [UNAVAILABLE]`. There is no real command parser yet: a
//! line is split into tag, command name and the rest.

mod session;

use std::sync::Arc;
use std::time::Duration;

use server_kit::{BoxStream, ConnInfo, PlaintextAuth, Shutdown, TlsAcceptor};

#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub hostname: String,
    pub max_line_length: usize,
    /// RFC 9051 §5.4: autologout after at least 30 minutes of inactivity.
    pub idle_timeout: Duration,
    pub plaintext_auth: PlaintextAuth,
}

impl ImapConfig {
    /// Defaults: 8192-octet lines, 30-minute idle timeout, plaintext passwords only from
    /// loopback.
    pub fn new(hostname: impl Into<String>) -> ImapConfig {
        ImapConfig {
            hostname: hostname.into(),
            max_line_length: 8192,
            idle_timeout: Duration::from_secs(30 * 60),
            plaintext_auth: PlaintextAuth {
                allow_loopback: true,
            },
        }
    }
}

pub struct ImapServer {
    pub config: ImapConfig,
    pub store: Arc<dyn store::Store>,
    pub auth: auth::Authenticator,
    pub tls: Option<TlsAcceptor>,
}

/// Runs one IMAP session to its end. `tls` says whether `stream` is already encrypted
/// (implicit TLS, port 993).
pub async fn serve(
    server: Arc<ImapServer>,
    stream: BoxStream,
    tls: bool,
    info: ConnInfo,
    shutdown: Shutdown,
) {
    session::run(server, stream, tls, info, shutdown).await
}

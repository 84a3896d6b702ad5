//! SMTP sessions. (Being written.)
use std::sync::Arc;
use std::time::Duration;

use server_kit::{BoxStream, ConnInfo, PlaintextAuth, Shutdown, TlsAcceptor};

/// Which role a listener plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpMode {
    /// Port 25: the domain's MX; no AUTH offered required; local recipients only.
    Mx,
    /// Ports 587 (STARTTLS) and 465 (implicit TLS): AUTH required before MAIL.
    Submission,
}

#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub hostname: String,
    pub mode: SmtpMode,
    pub max_message_size: usize,
    pub max_line_length: usize,
    pub max_recipients: usize,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub plaintext_auth: PlaintextAuth,
}

/// Everything an SMTP listener's sessions share.
pub struct SmtpServer {
    pub config: SmtpConfig,
    pub store: Arc<dyn store::Store>,
    pub auth: auth::Authenticator,
    pub tls: Option<TlsAcceptor>,
}

/// Runs one SMTP session to its end. `tls` tells whether `stream` is already TLS (port 465).
pub async fn serve(
    server: Arc<SmtpServer>,
    stream: BoxStream,
    tls: bool,
    info: ConnInfo,
    shutdown: Shutdown,
) {
    let _ = (server, stream, tls, info, shutdown);
}

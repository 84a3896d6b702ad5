//! IMAP sessions. (Being written.)
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

pub struct ImapServer {
    pub config: ImapConfig,
    pub store: Arc<dyn store::Store>,
    pub auth: auth::Authenticator,
    pub tls: Option<TlsAcceptor>,
}

pub async fn serve(
    server: Arc<ImapServer>,
    stream: BoxStream,
    tls: bool,
    info: ConnInfo,
    shutdown: Shutdown,
) {
    let _ = (server, stream, tls, info, shutdown);
}

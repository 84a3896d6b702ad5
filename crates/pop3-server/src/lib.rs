//! POP3 sessions. (Being written.)
use std::sync::Arc;
use std::time::Duration;

use server_kit::{BoxStream, ConnInfo, PlaintextAuth, Shutdown, TlsAcceptor};

#[derive(Debug, Clone)]
pub struct Pop3Config {
    pub hostname: String,
    pub max_line_length: usize,
    /// RFC 1939 §3: an inactivity autologout timer of at least 10 minutes.
    pub idle_timeout: Duration,
    pub plaintext_auth: PlaintextAuth,
}

pub struct Pop3Server {
    pub config: Pop3Config,
    pub store: Arc<dyn store::Store>,
    pub auth: auth::Authenticator,
    pub tls: Option<TlsAcceptor>,
}

pub async fn serve(
    server: Arc<Pop3Server>,
    stream: BoxStream,
    tls: bool,
    info: ConnInfo,
    shutdown: Shutdown,
) {
    let _ = (server, stream, tls, info, shutdown);
}

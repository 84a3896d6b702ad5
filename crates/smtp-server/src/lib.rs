//! SMTP sessions: receiving mail for local accounts (port 25, the MX) and message submission
//! (ports 587 with STARTTLS and 465 with implicit TLS), generic over the store traits.
//!
//! RFCs: 5321 (SMTP), 1870 (SIZE), 2034 (ENHANCEDSTATUSCODES), 2920 (PIPELINING),
//! 3030 (CHUNKING, BINARYMIME), 3207 (STARTTLS), 3848 (`with` protocol types),
//! 4954 (AUTH PLAIN, LOGIN, SCRAM-SHA-256 per RFC 5802/7677), 6152 (8BITMIME),
//! 6531 (SMTPUTF8), 8314 (no passwords in clear), 6409 (submission: sender checks, Date and
//! Message-ID added, Bcc removed, see `submission` and `headers`), 3461 (DSN parameters,
//! passed to the outbound queue).
//!
//! Arriving mail on the MX port without AUTH is checked by the `inbound-auth` crate (SPF, DKIM,
//! DMARC, ARC, iprev; see `inbound`): its `Authentication-Results:` field is prepended, and a
//! DMARC `p=reject` failure is refused, `p=quarantine` filed into Junk, by default.
//!
//! Not implemented: the reverse DNS name in the `Received:` field (it says `unknown`), DSN reports for local delivery (a local delivery is final; SUCCESS notifications
//! are optional and not sent), SCRAM channel binding (`-PLUS`). Authenticated mail to other
//! domains gets `451 4.4.0` when the server has no outbound queue.
//!
//! Invariant: a 250 reply to the end of data is sent only after `store.deliver` and
//! `QueueStore::enqueue` returned Ok (both have fsync'd); nothing acknowledged is lost.

mod auth_cmd;
mod data;
mod delivery;
mod envelope;
mod guard;
mod headers;
mod inbound;
mod metrics;
mod quota;
mod rate;
mod session;
mod submission;
mod trace;

pub use rate::RateLimiter;

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
    /// Our name in the greeting, EHLO reply and `Received:` fields.
    pub hostname: String,
    pub mode: SmtpMode,
    /// Largest message accepted, in octets of DATA/BDAT content (advertised as `SIZE`).
    pub max_message_size: usize,
    /// Longest command line including CRLF. RFC 5321 §4.5.3.1.4 requires at least 512.
    pub max_line_length: usize,
    /// RFC 5321 §4.5.3.1.8 requires at least 100.
    pub max_recipients: usize,
    /// How long to wait for a command. RFC 5321 §4.5.3.2.7: at least 5 minutes.
    pub command_timeout: Duration,
    /// How long to wait for each piece of message data. RFC 5321 §4.5.3.2.5: 3 minutes+.
    pub data_timeout: Duration,
    /// How long one write of replies may stall before the session is dropped (a client that
    /// stops reading must not hold its connection slot).
    pub write_timeout: Duration,
    /// How long the TLS handshake after STARTTLS may take.
    pub tls_handshake_timeout: Duration,
    pub plaintext_auth: PlaintextAuth,
    /// After this many 5xx replies the session is closed with `421 4.7.0`.
    pub max_errors: usize,
    /// After this many failed AUTH attempts the session is closed with `421 4.7.0`.
    pub max_auth_failures: usize,
    /// Messages an authenticated account may send per sliding hour (None = unlimited).
    pub max_messages_per_hour: Option<u32>,
    /// Recipients an authenticated account may send to per sliding hour (None = unlimited).
    pub max_recipients_per_hour: Option<u32>,
    /// Refuse a recipient whose mailbox is full with `552 5.2.2` (permanent) instead of
    /// `452 4.2.2` (temporary, the default: the sender retries), see `quota.rs`.
    pub over_quota_permanent: bool,
    /// The process-wide budget for message data being received (DATA/BDAT, shared with IMAP
    /// APPEND); a transaction that would exceed it gets `452 4.3.1`. Unlimited by default.
    pub transfer_budget: Arc<server_kit::MemoryBudget>,
}

impl SmtpConfig {
    /// A configuration with the defaults (25 MiB, 4096-octet lines, 100 recipients,
    /// 5-minute command, 3-minute data, 2-minute write and 30-second STARTTLS handshake
    /// timeouts, plaintext AUTH only from loopback,
    /// 20 errors, 3 failed AUTHs, no sending rate limits).
    pub fn new(hostname: impl Into<String>, mode: SmtpMode) -> SmtpConfig {
        SmtpConfig {
            hostname: hostname.into(),
            mode,
            max_message_size: 25 * 1024 * 1024,
            max_line_length: 4096,
            max_recipients: 100,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            write_timeout: Duration::from_secs(120),
            tls_handshake_timeout: Duration::from_secs(30),
            plaintext_auth: PlaintextAuth {
                allow_loopback: true,
            },
            max_errors: 20,
            max_auth_failures: 3,
            max_messages_per_hour: None,
            max_recipients_per_hour: None,
            over_quota_permanent: false,
            transfer_budget: server_kit::MemoryBudget::unlimited(),
        }
    }
}

/// Everything an SMTP listener's sessions share.
pub struct SmtpServer {
    pub config: SmtpConfig,
    pub store: Arc<dyn store::Store>,
    pub auth: auth::Authenticator,
    pub tls: Option<TlsAcceptor>,
    /// The outbound queue for authenticated mail to other domains; `None` refuses such
    /// recipients with `451 4.4.0`.
    pub outbound: Option<Arc<dyn store::QueueStore>>,
    /// Per-account sending counts for `max_messages_per_hour` / `max_recipients_per_hour`,
    /// in the store (shared by every process on it).
    pub rate: RateLimiter,
    /// The MX defences (blocklists, greylisting, early talkers, HELO sanity, message rate);
    /// `None` turns them off. Used on port 25 only (`SmtpMode::Mx`).
    pub antispam: Option<Arc<antispam::Antispam>>,
    /// The checks of arriving mail (MX mode, unauthenticated sessions); `None` checks nothing.
    pub inbound_auth: Option<inbound_auth::Checker>,
}

/// Runs one SMTP session to its end. `tls` tells whether `stream` is already TLS (port 465).
pub async fn serve(
    server: Arc<SmtpServer>,
    stream: BoxStream,
    tls: bool,
    info: ConnInfo,
    shutdown: Shutdown,
) {
    session::Session::new(server, stream, tls, info)
        .run(shutdown)
        .await;
}

//! `[limits]`: what one client, one message and the whole server may take, and the timeouts
//! of every protocol stage.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_message_size: usize,
    /// Overrides every protocol's own line limit when set (`None`: SMTP, POP3 and IMAP keep
    /// the defaults of their crates, which follow each protocol's RFC).
    pub max_line_length: Option<usize>,
    pub max_recipients: usize,
    pub max_connections_per_ip: usize,
    pub max_connections: usize,
    /// Client networks exempt from connection and rate limits, bans, greylisting, blocklists
    /// and early-talker checks (as Postfix's `mynetworks`); `[]` exempts nobody.
    pub trusted_networks: Vec<String>,
    /// New connections per minute from one address, on all listeners together (0: no limit).
    pub connection_rate_per_ip: u32,
    /// Messages (MAIL commands) per minute from one address on port 25 (0: no limit).
    pub smtp_message_rate_per_ip: u32,
    pub smtp_command_timeout_secs: u64,
    /// Every 64 KiB of message content (DATA or BDAT) must arrive within this.
    pub smtp_data_timeout_secs: u64,
    /// How long one write of SMTP replies may stall before the session is dropped.
    pub smtp_write_timeout_secs: u64,
    pub pop3_idle_timeout_secs: u64,
    /// How long a POP3 maildrop lock (RFC 1939 §8), a lease in the store, lasts without
    /// renewal: a session renews it every third of this; a killed server's locks expire after
    /// it.
    pub pop3_maildrop_lease_secs: u64,
    pub imap_idle_timeout_secs: u64,
    /// During IMAP IDLE, an untagged `* OK Still here` this often (0: never).
    pub imap_idle_keepalive_secs: u64,
    /// Largest IMAP literal before login (LOGIN's user name and password).
    pub imap_max_preauth_literal: u64,
    /// MiB of parsed message facts (ENVELOPE, BODYSTRUCTURE, headers) kept in memory in front
    /// of the store's cache table (0: none).
    pub message_cache_mb: usize,
    /// Message data being received (SMTP DATA/BDAT, IMAP APPEND literals) held in memory by
    /// all sessions together, in bytes; beyond it new transfers get a temporary error
    /// (SMTP `452 4.3.1`, IMAP `NO [LIMIT]`). 0: no limit.
    pub inflight_message_bytes: usize,
    /// Expunge-log rows (QRESYNC, RFC 7162 §3.2.5) kept per mailbox, the newest (0: no limit).
    pub expunge_log_max_per_mailbox: u64,
    /// Expunge-log rows older than this many days are pruned (0: no limit).
    pub expunge_log_max_age_days: u64,
    /// How often the expunge log is pruned, in seconds.
    pub expunge_log_prune_interval_secs: u64,
    /// Distinct keywords one IMAP mailbox may hold; STORE refuses new ones beyond it.
    pub imap_max_keywords_per_mailbox: usize,
    pub tls_handshake_timeout_secs: u64,
    /// TLS handshakes in progress at most, every port and STARTTLS together; more wait
    /// their turn (within the handshake timeout).
    pub tls_handshakes_in_progress: usize,
    pub shutdown_grace_secs: u64,
    /// HTTP(S): how long a client may take to send a request's headers (also how long an
    /// idle keep-alive connection is kept).
    pub http_header_timeout_secs: u64,
    /// HTTP(S): the request line and headers together, at most (431 beyond).
    pub http_max_header_bytes: usize,
    /// HTTP(S): a request body, at most (413 beyond).
    pub http_max_body_bytes: usize,
    /// HTTP(S): the longest one connection may last.
    pub http_connection_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 25 * 1024 * 1024,
            max_line_length: None,
            // RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted.
            max_recipients: 100,
            max_connections_per_ip: 50,
            max_connections: 20000,
            trusted_networks: server_kit::DEFAULT_TRUSTED_NETWORKS
                .map(String::from)
                .into(),
            connection_rate_per_ip: 120,
            smtp_message_rate_per_ip: antispam::AntispamConfig::default().message_rate_per_ip,
            // RFC 5321 §4.5.3.2.7: the server timeout should be at least 5 minutes.
            smtp_command_timeout_secs: 300,
            // RFC 5321 §4.5.3.2.6: clients wait 10 minutes for the reply to the final ".".
            smtp_data_timeout_secs: 600,
            smtp_write_timeout_secs: 120,
            // RFC 1939 §3: the autologout timer must be at least 10 minutes.
            pop3_idle_timeout_secs: 600,
            pop3_maildrop_lease_secs: 60,
            // RFC 9051 §5.4: the autologout timer must be at least 30 minutes.
            imap_idle_timeout_secs: 1800,
            // RFC 2177 §3; Dovecot's imap_idle_notify_interval is 2 minutes too.
            imap_idle_keepalive_secs: 120,
            imap_max_preauth_literal: 8192,
            message_cache_mb: 64,
            // Ten 25 MiB messages at once; a busy MX holds far fewer (most mail is small).
            inflight_message_bytes: 256 * 1024 * 1024,
            expunge_log_max_per_mailbox: store::ExpungeLogLimits::default().max_per_mailbox,
            expunge_log_max_age_days: store::ExpungeLogLimits::default().max_age_secs / 86_400,
            expunge_log_prune_interval_secs: 3600,
            imap_max_keywords_per_mailbox: 256,
            tls_handshake_timeout_secs: 30,
            tls_handshakes_in_progress: server_kit::tls_gate::DEFAULT_LIMIT,
            shutdown_grace_secs: 10,
            http_header_timeout_secs: 10,
            http_max_header_bytes: 16 * 1024,
            // Autodiscover requests, the only bodies, are a few hundred bytes.
            http_max_body_bytes: 64 * 1024,
            http_connection_timeout_secs: 300,
        }
    }
}

impl Limits {
    /// `trusted_networks`, parsed (checked by [`Config::parse`]).
    pub fn trusted_networks(&self) -> server_kit::TrustedNetworks {
        server_kit::TrustedNetworks::parse(&self.trusted_networks)
            .unwrap_or_else(|_| server_kit::TrustedNetworks::none())
    }
    pub fn smtp_command_timeout(&self) -> Duration {
        Duration::from_secs(self.smtp_command_timeout_secs)
    }
    pub fn smtp_data_timeout(&self) -> Duration {
        Duration::from_secs(self.smtp_data_timeout_secs)
    }
    pub fn smtp_write_timeout(&self) -> Duration {
        Duration::from_secs(self.smtp_write_timeout_secs)
    }
    pub fn pop3_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.pop3_idle_timeout_secs)
    }
    pub fn pop3_maildrop_lease(&self) -> Duration {
        Duration::from_secs(self.pop3_maildrop_lease_secs)
    }
    pub fn imap_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.imap_idle_timeout_secs)
    }
    pub fn imap_idle_keepalive(&self) -> Duration {
        Duration::from_secs(self.imap_idle_keepalive_secs)
    }
    pub fn tls_handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.tls_handshake_timeout_secs)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
    pub fn http_header_timeout(&self) -> Duration {
        Duration::from_secs(self.http_header_timeout_secs)
    }
    pub fn http_connection_timeout(&self) -> Duration {
        Duration::from_secs(self.http_connection_timeout_secs)
    }
}

//! The engine's settings; `yubin` fills them from `[queue]`, `[dns]` and `[dkim]`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// How the connection to a smarthost is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmarthostTls {
    /// STARTTLS (RFC 3207), required.
    StartTls,
    /// TLS from the first byte (RFC 8314 §3).
    Implicit,
    /// Plain text (only sensible on loopback or a private network).
    None,
}

/// A relay all outbound mail is handed to instead of the recipients' MX hosts.
#[derive(Debug, Clone)]
pub struct Smarthost {
    pub host: String,
    pub port: u16,
    pub tls: SmarthostTls,
    /// AUTH PLAIN credentials (RFC 4954), sent only over TLS or to loopback.
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Answers consulted before DNS: per name, MX hosts (preference in list order), A/AAAA
/// addresses and TXT strings. A name with an entry answers from it alone.
#[derive(Debug, Clone, Default)]
pub struct DnsOverride {
    pub mx: Vec<String>,
    pub a: Vec<IpAddr>,
    pub txt: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Our name in EHLO (RFC 5321 §4.1.1.1) and in DSNs' Reporting-MTA.
    pub hostname: String,
    /// The port of remote MX hosts (25; tests point it elsewhere).
    pub remote_port: u16,
    pub smarthost: Option<Smarthost>,
    /// `None`: the system resolver (`/etc/resolv.conf`); else these servers (UDP + TCP).
    pub nameservers: Option<Vec<std::net::SocketAddr>>,
    /// Lower-case names → static answers.
    pub dns_override: BTreeMap<String, DnsOverride>,
    /// Domains whose delivery must use STARTTLS with a verified certificate.
    pub tls_required: Vec<String>,
    /// First retry delay; doubled after each attempt up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// RFC 5321 §4.5.4.1: give up after this (4–5 days suggested).
    pub max_age: Duration,
    /// Send a delay DSN once a recipient has waited this long.
    pub delay_notice: Duration,
    pub max_concurrent_deliveries: usize,
    pub max_per_destination: usize,
    /// How often the queue is re-read (changes by another process, retries coming due).
    pub poll_interval: Duration,
    /// How long a claim holds its work for this process (`store::QueueStore::claim_due`);
    /// renewed every third of it while the delivery runs. A process that dies leaves its
    /// work to the others after this long.
    pub lease: Duration,
    pub connect_timeout: Duration,
    /// RFC 5321 §4.5.3.2: 5 minutes per command, 10 minutes for the reply to the final dot.
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    /// Per signing domain (lower-case) the selector to use; default: the newest key.
    pub dkim_selectors: BTreeMap<String, String>,
    /// How often the signing keys are read again from the store (keys added meanwhile, by the
    /// admin CLI or another node, sign from then on).
    pub dkim_refresh: Duration,
}

impl QueueConfig {
    pub fn new(hostname: &str) -> QueueConfig {
        QueueConfig {
            hostname: hostname.to_string(),
            remote_port: 25,
            smarthost: None,
            nameservers: None,
            dns_override: BTreeMap::new(),
            tls_required: Vec::new(),
            retry_initial: Duration::from_secs(300),
            retry_max: Duration::from_secs(4 * 3600),
            max_age: Duration::from_secs(5 * 24 * 3600),
            delay_notice: Duration::from_secs(4 * 3600),
            max_concurrent_deliveries: 32,
            // Postfix's smtp_destination_concurrency_limit.
            max_per_destination: 20,
            poll_interval: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            dkim_selectors: BTreeMap::new(),
            dkim_refresh: Duration::from_secs(60),
        }
    }

    /// The delay before attempt number `attempts + 1`: exponential from `retry_initial`,
    /// capped at `retry_max`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        self.policy().backoff(attempts)
    }

    /// The retry and expiry settings outcome decisions depend on.
    pub(crate) fn policy(&self) -> crate::engine::outcome::Policy {
        crate::engine::outcome::Policy {
            retry_initial: self.retry_initial,
            retry_max: self.retry_max,
            max_age: self.max_age,
            delay_notice: self.delay_notice,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let mut c = QueueConfig::new("h.test");
        c.retry_initial = Duration::from_secs(10);
        c.retry_max = Duration::from_secs(35);
        assert_eq!(c.backoff(0), Duration::from_secs(10));
        assert_eq!(c.backoff(1), Duration::from_secs(20));
        assert_eq!(c.backoff(2), Duration::from_secs(35));
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(35));
    }
}

//! The `[antispam]` table (the MX defences of the `antispam` crate), turned into an
//! [`antispam::AntispamConfig`] together with `[limits] trusted_networks` and
//! `smtp_message_rate_per_ip`; and the DNS lookups of the blocklists, answered by the same
//! resolver and `[dns.override]` table as the outbound queue.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;
use server_kit::TrustedNetworks;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Antispam {
    /// DNS blocklist zones (RFC 5782) asked when a client connects to port 25.
    pub dnsbl_zones: Vec<String>,
    /// How long the blocklist lookups of one connection may take; then the client is let in.
    pub dnsbl_timeout_ms: u64,
    /// Greylisting of unknown (network, sender, recipient) triples at RCPT.
    pub greylisting: bool,
    /// A retry of a greylisted triple is accepted after this long.
    pub greylist_delay_secs: u64,
    /// A triple that is not retried within this long is forgotten.
    pub greylist_retry_window_secs: u64,
    /// A triple that passed is remembered for this long after its latest message.
    pub greylist_expire_days: u64,
    /// Refuse clients that talk before the greeting or pipeline without PIPELINING.
    pub reject_early_talkers: bool,
    /// How long the greeting waits to catch clients that talk first.
    pub pregreet_delay_ms: u64,
    /// Refuse HELO/EHLO arguments that cannot be a host name or address (`501 5.5.2`).
    pub reject_invalid_helo: bool,
    /// Refuse a HELO/EHLO that names this server (its hostname or address).
    pub reject_helo_as_us: bool,
}

impl Default for Antispam {
    fn default() -> Self {
        let d = antispam::AntispamConfig::default();
        Antispam {
            dnsbl_zones: d.dnsbl_zones,
            dnsbl_timeout_ms: d.dnsbl_timeout.as_millis() as u64,
            greylisting: d.greylisting,
            greylist_delay_secs: d.greylist.delay as u64,
            greylist_retry_window_secs: d.greylist.retry_window as u64,
            greylist_expire_days: d.greylist.pass_ttl as u64 / 86400,
            reject_early_talkers: d.reject_early_talkers,
            pregreet_delay_ms: d.pregreet_delay.as_millis() as u64,
            reject_invalid_helo: d.reject_invalid_helo,
            reject_helo_as_us: d.reject_helo_as_us,
        }
    }
}

fn secs(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX / 4).min(i64::MAX / 4)
}

impl Antispam {
    pub fn validate(&self) -> anyhow::Result<()> {
        for zone in &self.dnsbl_zones {
            if mail_types::Domain::parse(zone.trim_end_matches('.')).is_err() {
                bail!("[antispam] dnsbl_zones: {zone:?} is not a domain name");
            }
        }
        if self.dnsbl_timeout_ms == 0 {
            bail!("[antispam] dnsbl_timeout_ms must be greater than 0");
        }
        if self.greylist_retry_window_secs <= self.greylist_delay_secs {
            bail!("[antispam] greylist_retry_window_secs must be longer than greylist_delay_secs");
        }
        if self.greylist_expire_days == 0 {
            bail!("[antispam] greylist_expire_days must be greater than 0");
        }
        Ok(())
    }

    /// The crate's settings; `trusted` and `message_rate_per_ip` come from `[limits]`.
    pub fn settings(
        &self,
        trusted: TrustedNetworks,
        message_rate_per_ip: u32,
    ) -> antispam::AntispamConfig {
        antispam::AntispamConfig {
            trusted,
            dnsbl_zones: self
                .dnsbl_zones
                .iter()
                .map(|z| z.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            dnsbl_timeout: Duration::from_millis(self.dnsbl_timeout_ms),
            greylisting: self.greylisting,
            greylist: store::GreylistPolicy {
                delay: secs(self.greylist_delay_secs),
                retry_window: secs(self.greylist_retry_window_secs),
                pass_ttl: secs(self.greylist_expire_days.saturating_mul(86400)),
            },
            reject_early_talkers: self.reject_early_talkers,
            pregreet_delay: Duration::from_millis(self.pregreet_delay_ms),
            reject_invalid_helo: self.reject_invalid_helo,
            reject_helo_as_us: self.reject_helo_as_us,
            message_rate_per_ip,
        }
    }
}

/// Blocklist lookups through the queue's resolver: the `[dns.override]` table first, then
/// `[dns] nameservers` (or the system's).
pub struct QueueDns(pub queue::dns::Dns);

#[async_trait::async_trait]
impl antispam::DnsLookup for QueueDns {
    async fn ipv4(&self, name: &str) -> Result<Vec<Ipv4Addr>, String> {
        match self.0.addresses(name).await {
            Ok(addrs) => Ok(addrs
                .into_iter()
                .filter_map(|a| match a {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .collect()),
            // The name does not exist or has no address: not listed.
            Err(queue::dns::DnsError::Permanent(_)) => Ok(Vec::new()),
            Err(queue::dns::DnsError::Temporary(e)) => Err(e),
        }
    }

    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        self.0.txt(name).await.map_err(|e| format!("{e:?}"))
    }
}

/// The MX defences as `serve` hands them to the port-25 sessions.
pub fn build(
    config: &crate::config::Config,
    hostname: &str,
    greylist: std::sync::Arc<dyn store::Greylist>,
) -> std::sync::Arc<antispam::Antispam> {
    let l = &config.limits;
    let settings = config
        .antispam
        .settings(l.trusted_networks(), l.smtp_message_rate_per_ip);
    // The blocklists ask the queue's resolver (same nameservers and override table).
    let dns = (!settings.dnsbl_zones.is_empty()).then(|| {
        let q = crate::outbound_config::engine_config(
            hostname,
            &config.queue,
            &config.dns,
            &config.dkim,
        );
        let dns = queue::dns::Dns::new(q.nameservers.as_deref(), q.dns_override);
        std::sync::Arc::new(QueueDns(dns)) as std::sync::Arc<dyn antispam::DnsLookup>
    });
    let greylist = settings.greylisting.then_some(greylist);
    std::sync::Arc::new(antispam::Antispam::new(settings, dns, greylist))
}

//! The `[queue]`, `[dns]` and `[dkim."domain"]` tables: outbound delivery settings, turned
//! into a [`queue::QueueConfig`] by [`engine_config`].

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    /// The port of remote MX hosts.
    pub remote_port: u16,
    pub retry_initial_secs: u64,
    pub retry_max_secs: u64,
    /// RFC 5321 §4.5.4.1: give up after this long (default 5 days).
    pub max_age_secs: u64,
    /// Send a delay notice after this long (default 4 hours).
    pub delay_notice_secs: u64,
    pub max_concurrent_deliveries: usize,
    pub max_per_destination: usize,
    /// How often the queue is re-read (changes by `yubin queue …`, retries coming due).
    pub poll_interval_secs: u64,
    /// How long a node's claim on queued work lasts without renewal (renewed every third of
    /// it while delivering): after a crash, the work waits this long for another node.
    pub lease_secs: u64,
    pub connect_timeout_secs: u64,
    /// Per authenticated user, enforced on the submission listeners; unset = unlimited.
    pub max_messages_per_hour: Option<u32>,
    pub max_recipients_per_hour: Option<u32>,
    /// Domains whose mail must go over STARTTLS with a certificate valid for the MX host.
    pub tls_required: Vec<String>,
    pub smarthost: Option<Smarthost>,
}

impl Default for Queue {
    fn default() -> Self {
        let q = queue::QueueConfig::new("localhost");
        Queue {
            remote_port: q.remote_port,
            retry_initial_secs: q.retry_initial.as_secs(),
            retry_max_secs: q.retry_max.as_secs(),
            max_age_secs: q.max_age.as_secs(),
            delay_notice_secs: q.delay_notice.as_secs(),
            max_concurrent_deliveries: q.max_concurrent_deliveries,
            max_per_destination: q.max_per_destination,
            poll_interval_secs: q.poll_interval.as_secs(),
            lease_secs: q.lease.as_secs(),
            connect_timeout_secs: q.connect_timeout.as_secs(),
            max_messages_per_hour: None,
            max_recipients_per_hour: None,
            tls_required: Vec::new(),
            smarthost: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smarthost {
    pub host: String,
    #[serde(default = "default_smarthost_port")]
    pub port: u16,
    #[serde(default = "default_smarthost_tls")]
    pub tls: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

fn default_smarthost_port() -> u16 {
    587
}
fn default_smarthost_tls() -> String {
    "starttls".into()
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dns {
    /// Resolvers to ask instead of the system's (`/etc/resolv.conf`).
    pub nameservers: Option<Vec<SocketAddr>>,
    /// Static answers consulted before DNS: `[dns.override."b.test"] mx = [...]`.
    #[serde(rename = "override")]
    pub overrides: BTreeMap<String, DnsOverride>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsOverride {
    pub mx: Vec<String>,
    pub a: Vec<std::net::Ipv4Addr>,
    pub aaaa: Vec<std::net::Ipv6Addr>,
    pub txt: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimDomain {
    pub selector: String,
}

impl Queue {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.max_concurrent_deliveries == 0 || self.max_per_destination == 0 {
            bail!(
                "[queue] max_concurrent_deliveries and max_per_destination must be greater than 0"
            );
        }
        if self.retry_initial_secs == 0 || self.retry_max_secs < self.retry_initial_secs {
            bail!("[queue] retry_initial_secs must be > 0 and <= retry_max_secs");
        }
        if let Some(s) = &self.smarthost
            && !matches!(s.tls.as_str(), "starttls" | "implicit" | "none")
        {
            bail!("[queue.smarthost] tls must be \"starttls\", \"implicit\" or \"none\"");
        }
        Ok(())
    }
}

/// The engine's configuration from the file's tables.
pub fn engine_config(
    hostname: &str,
    q: &Queue,
    dns: &Dns,
    dkim: &BTreeMap<String, DkimDomain>,
) -> queue::QueueConfig {
    let mut c = queue::QueueConfig::new(hostname);
    c.remote_port = q.remote_port;
    c.retry_initial = Duration::from_secs(q.retry_initial_secs);
    c.retry_max = Duration::from_secs(q.retry_max_secs);
    c.max_age = Duration::from_secs(q.max_age_secs);
    c.delay_notice = Duration::from_secs(q.delay_notice_secs);
    c.max_concurrent_deliveries = q.max_concurrent_deliveries;
    c.max_per_destination = q.max_per_destination;
    c.poll_interval = Duration::from_secs(q.poll_interval_secs.max(1));
    c.lease = Duration::from_secs(q.lease_secs.max(3));
    c.connect_timeout = Duration::from_secs(q.connect_timeout_secs.max(1));
    c.tls_required = q.tls_required.clone();
    c.smarthost = q.smarthost.as_ref().map(|s| queue::Smarthost {
        host: s.host.clone(),
        port: s.port,
        tls: match s.tls.as_str() {
            "implicit" => queue::SmarthostTls::Implicit,
            "none" => queue::SmarthostTls::None,
            _ => queue::SmarthostTls::StartTls,
        },
        username: s.username.clone(),
        password: s.password.clone(),
    });
    c.nameservers = dns.nameservers.clone();
    c.dns_override = dns
        .overrides
        .iter()
        .map(|(name, o)| {
            let mut a: Vec<IpAddr> = o.aaaa.iter().map(|&ip| IpAddr::V6(ip)).collect();
            a.extend(o.a.iter().map(|&ip| IpAddr::V4(ip)));
            (
                name.clone(),
                queue::DnsOverride {
                    mx: o.mx.clone(),
                    a,
                    txt: o.txt.clone(),
                },
            )
        })
        .collect();
    c.dkim_selectors = dkim
        .iter()
        .map(|(d, s)| (d.clone(), s.selector.clone()))
        .collect();
    c
}

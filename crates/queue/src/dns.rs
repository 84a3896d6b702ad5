//! Where mail for a domain goes: the static override table first, then DNS.
//!
//! RFC 5321 §5.1: MX records in preference order; no MX → the domain's own A/AAAA ("implicit
//! MX"); RFC 7505: a single `MX 0 .` ("null MX") means the domain accepts no mail — a
//! permanent failure.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;

use crate::config::DnsOverride;

/// Why a destination could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// Retry later (server failure, timeout).
    Temporary(String),
    /// Give up: the domain does not exist, or has a null MX.
    Permanent(String),
}

/// The resolver configuration for `nameservers` (each asked over UDP, then TCP), or the
/// system's (`/etc/resolv.conf`) with `None`. The one place yubin turns its `[dns]
/// nameservers` into a resolver: outbound delivery, `yubin check-dns` and the checks of
/// arriving mail (`inbound-auth`, which sets its own timeouts on the options) all use it.
pub fn resolver_config(
    nameservers: Option<&[SocketAddr]>,
) -> Result<(ResolverConfig, ResolverOpts), String> {
    match nameservers {
        Some(list) => {
            let servers = list
                .iter()
                .map(|sa| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = sa.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = sa.port();
                    NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
                })
                .collect();
            Ok((
                ResolverConfig::from_parts(None, Vec::new(), servers),
                ResolverOpts::default(),
            ))
        }
        None => hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| format!("cannot read the system DNS configuration: {e}")),
    }
}

/// A resolver using [`resolver_config`]; `None` (logged) when it cannot be built. Shared by
/// outbound delivery and `yubin check-dns`.
pub fn build_resolver(nameservers: Option<&[SocketAddr]>) -> Option<TokioResolver> {
    let (config, opts) = resolver_config(nameservers)
        .map_err(|e| tracing::warn!(error = %e, "cannot configure the DNS resolver"))
        .ok()?;
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| tracing::warn!(error = %e, "cannot build the DNS resolver"))
        .ok()
}

pub struct Dns {
    overrides: BTreeMap<String, DnsOverride>,
    resolver: Option<TokioResolver>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Dns {
    /// A resolver using `nameservers` (UDP + TCP), or the system configuration with `None`.
    /// When the system configuration cannot be read, only the override table answers.
    pub fn new(
        nameservers: Option<&[SocketAddr]>,
        overrides: BTreeMap<String, DnsOverride>,
    ) -> Dns {
        let overrides = overrides.into_iter().map(|(k, v)| (key(&k), v)).collect();
        let resolver = build_resolver(nameservers);
        Dns {
            overrides,
            resolver,
        }
    }

    /// Only the override table (tests).
    pub fn static_only(overrides: BTreeMap<String, DnsOverride>) -> Dns {
        Dns {
            overrides: overrides.into_iter().map(|(k, v)| (key(&k), v)).collect(),
            resolver: None,
        }
    }

    fn resolver(&self) -> Result<&TokioResolver, DnsError> {
        self.resolver
            .as_ref()
            .ok_or_else(|| DnsError::Temporary("no DNS resolver configured".into()))
    }

    /// The hosts to try for `domain`, best first. RFC 5321 §5.1.
    pub async fn mail_hosts(&self, domain: &str) -> Result<Vec<String>, DnsError> {
        let k = key(domain);
        if let Some(o) = self.overrides.get(&k) {
            return Ok(if o.mx.is_empty() {
                vec![k]
            } else {
                o.mx.clone()
            });
        }
        let resolver = self.resolver()?;
        let lookup = match resolver.mx_lookup(format!("{k}.")).await {
            Ok(l) => l,
            // RFC 5321 §5.1: no MX records → the domain itself is the mail host.
            Err(e) if e.is_no_records_found() && !e.is_nx_domain() => return Ok(vec![k]),
            Err(e) if e.is_nx_domain() => {
                return Err(DnsError::Permanent(format!("domain {k} does not exist")));
            }
            Err(e) => return Err(DnsError::Temporary(format!("MX lookup for {k}: {e}"))),
        };
        let mut mx: Vec<(u16, String)> = lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(m) => Some((m.preference, key(&m.exchange.to_ascii()))),
                _ => None,
            })
            .collect();
        if mx.is_empty() {
            return Ok(vec![k]);
        }
        // RFC 7505 §3: a null MX (single record, empty exchange ".") — no mail accepted.
        if mx.iter().any(|(_, h)| h.is_empty()) {
            return Err(DnsError::Permanent(format!(
                "domain {k} does not accept mail (null MX, RFC 7505)"
            )));
        }
        // RFC 5321 §5.1: equal preferences should be tried in random order.
        {
            use rand::seq::SliceRandom;
            mx.shuffle(&mut rand::thread_rng());
        }
        mx.sort_by_key(|(p, _)| *p);
        Ok(mx.into_iter().map(|(_, h)| h).collect())
    }

    /// The addresses of a mail host (IPv6 and IPv4).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
        {
            return Ok(vec![ip]);
        }
        let k = key(host);
        if let Some(o) = self.overrides.get(&k)
            && !o.a.is_empty()
        {
            return Ok(o.a.clone());
        }
        let resolver = self.resolver()?;
        match resolver.lookup_ip(format!("{k}.")).await {
            Ok(l) => Ok(l.iter().collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => {
                Err(DnsError::Permanent(format!("mail host {k} has no address")))
            }
            Err(e) => Err(DnsError::Temporary(format!("address lookup for {k}: {e}"))),
        }
    }

    /// TXT strings of a name (the override table only answers; DNS otherwise).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let k = key(name);
        if let Some(o) = self.overrides.get(&k) {
            return Ok(o.txt.clone());
        }
        let resolver = self.resolver()?;
        match resolver.txt_lookup(format!("{k}.")).await {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(t) => Some(
                        t.txt_data
                            .iter()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .collect::<String>(),
                    ),
                    _ => None,
                })
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(DnsError::Temporary(format!("TXT lookup for {k}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> BTreeMap<String, DnsOverride> {
        let mut t = BTreeMap::new();
        t.insert(
            "B.test".to_string(),
            DnsOverride {
                mx: vec!["mx1.b.test".into(), "mx2.b.test".into()],
                txt: vec!["v=spf1 -all".into()],
                ..Default::default()
            },
        );
        t.insert(
            "mx1.b.test".to_string(),
            DnsOverride {
                a: vec!["127.0.0.2".parse().unwrap()],
                ..Default::default()
            },
        );
        t
    }

    #[tokio::test]
    async fn overrides_answer_before_dns() {
        let dns = Dns::static_only(table());
        assert_eq!(
            dns.mail_hosts("b.TEST.").await.unwrap(),
            vec!["mx1.b.test", "mx2.b.test"]
        );
        assert_eq!(
            dns.addresses("mx1.b.test").await.unwrap(),
            vec!["127.0.0.2".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(dns.txt("b.test").await.unwrap(), vec!["v=spf1 -all"]);
        assert_eq!(
            dns.addresses("[127.0.0.9]").await.unwrap(),
            vec!["127.0.0.9".parse::<IpAddr>().unwrap()]
        );
        // Not in the table and no resolver: a temporary failure, never a bounce.
        assert!(matches!(
            dns.mail_hosts("other.test").await,
            Err(DnsError::Temporary(_))
        ));
    }
}

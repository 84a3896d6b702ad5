//! The `[inbound_auth]` table: the checks of arriving mail (SPF, DKIM, DMARC, ARC, iprev) and
//! what each failure does, turned into an [`inbound_auth::Checker`] by [`checker`].

use std::net::IpAddr;
use std::time::Duration;

use anyhow::bail;
use inbound_auth::{Action, Actions, Checker, InboundAuthConfig, StaticName};
use serde::Deserialize;

use crate::outbound_config::Dns;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InboundAuth {
    /// Check mail arriving on the SMTP (MX) port without AUTH.
    pub enabled: bool,
    /// Bound on each DNS query attempt (two attempts per query).
    pub dns_timeout_secs: u64,
    /// Bound on each check of a message (SPF with its nested lookups, DKIM, …).
    pub check_timeout_secs: u64,
    /// Parsed DNS answers kept per record type, each for its TTL.
    pub dns_cache_entries: usize,
    /// Actions on failure: "none" (record only), "junk" (into the Junk mailbox) or "reject"
    /// (550 at the end of DATA).
    pub spf_fail: String,
    pub spf_softfail: String,
    pub helo_spf_fail: String,
    pub dkim_fail: String,
    pub arc_fail: String,
    pub iprev_fail: String,
    pub dmarc_reject: String,
    pub dmarc_quarantine: String,
}

impl Default for InboundAuth {
    fn default() -> Self {
        let c = InboundAuthConfig::default();
        let a = c.actions;
        InboundAuth {
            enabled: c.enabled,
            dns_timeout_secs: c.dns_timeout.as_secs(),
            check_timeout_secs: c.check_timeout.as_secs(),
            dns_cache_entries: c.cache_entries,
            spf_fail: name(a.spf_fail),
            spf_softfail: name(a.spf_softfail),
            helo_spf_fail: name(a.helo_spf_fail),
            dkim_fail: name(a.dkim_fail),
            arc_fail: name(a.arc_fail),
            iprev_fail: name(a.iprev_fail),
            dmarc_reject: name(a.dmarc_reject),
            dmarc_quarantine: name(a.dmarc_quarantine),
        }
    }
}

fn name(a: Action) -> String {
    match a {
        Action::None => "none",
        Action::Junk => "junk",
        Action::Reject => "reject",
    }
    .to_string()
}

fn action(key: &str, value: &str) -> anyhow::Result<Action> {
    match Action::parse(value) {
        Some(a) => Ok(a),
        None => {
            bail!("[inbound_auth] {key} must be \"none\", \"junk\" or \"reject\", not {value:?}")
        }
    }
}

impl InboundAuth {
    pub fn config(&self) -> anyhow::Result<InboundAuthConfig> {
        if self.dns_timeout_secs == 0 || self.check_timeout_secs == 0 {
            bail!("[inbound_auth] dns_timeout_secs and check_timeout_secs must be greater than 0");
        }
        Ok(InboundAuthConfig {
            enabled: self.enabled,
            dns_timeout: Duration::from_secs(self.dns_timeout_secs),
            check_timeout: Duration::from_secs(self.check_timeout_secs),
            cache_entries: self.dns_cache_entries,
            actions: Actions {
                spf_fail: action("spf_fail", &self.spf_fail)?,
                spf_softfail: action("spf_softfail", &self.spf_softfail)?,
                helo_spf_fail: action("helo_spf_fail", &self.helo_spf_fail)?,
                dkim_fail: action("dkim_fail", &self.dkim_fail)?,
                arc_fail: action("arc_fail", &self.arc_fail)?,
                iprev_fail: action("iprev_fail", &self.iprev_fail)?,
                dmarc_reject: action("dmarc_reject", &self.dmarc_reject)?,
                dmarc_quarantine: action("dmarc_quarantine", &self.dmarc_quarantine)?,
            },
        })
    }
}

/// The checker for the MX listeners, asking `[dns] nameservers` (or the system's resolvers)
/// after the `[dns.override]` table; `None` when the checks are off.
pub fn checker(hostname: &str, ia: &InboundAuth, dns: &Dns) -> anyhow::Result<Option<Checker>> {
    let config = ia.config()?;
    if !config.enabled {
        return Ok(None);
    }
    let statics: Vec<StaticName> = dns
        .overrides
        .iter()
        .map(|(name, o)| {
            let mut addrs: Vec<IpAddr> = o.a.iter().map(|&ip| IpAddr::V4(ip)).collect();
            addrs.extend(o.aaaa.iter().map(|&ip| IpAddr::V6(ip)));
            StaticName {
                name: name.clone(),
                txt: o.txt.clone(),
                mx: o.mx.clone(),
                addrs,
            }
        })
        .collect();
    let resolver = queue::dns::resolver_config(dns.nameservers.as_deref()).map_err(|e| {
        anyhow::anyhow!(
            "[inbound_auth]: {e} (set [dns] nameservers, or [inbound_auth] enabled = false to \
             receive mail unchecked)"
        )
    })?;
    match Checker::new(config, hostname, resolver, &statics) {
        Ok(c) => Ok(Some(c)),
        Err(e) => bail!(
            "[inbound_auth]: {e} (set [dns] nameservers, or [inbound_auth] enabled = false to \
             receive mail unchecked)"
        ),
    }
}

//! Defences against spam floods on the MX (port 25), each switchable, each refusal logged as
//! one audit line (`target: "audit"`, `event=… ip=…`):
//!
//! - DNS blocklists (RFC 5782), asked before the greeting (`dnsbl`);
//! - greylisting of unknown (network, sender, recipient) triples (`greylist`);
//! - HELO/EHLO sanity (`helo`);
//! - per-address rate limits over a sliding minute (`rate`), used for messages here and for
//!   connections by the listeners;
//! - early talkers (before the greeting, or pipelining without PIPELINING, RFC 2920 §3.1):
//!   the settings live here, the check in the SMTP session, which owns the socket.
//!
//! Clients on `[limits] trusted_networks` are exempt from all of it ([`Antispam::exempt`]).
//! What is not done here: SPF/DKIM/DMARC (the DATA path), password-guessing bans (`auth`).

mod dnsbl;
mod greylist;
mod helo;
mod rate;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use dnsbl::{DnsLookup, Listing, query_name};
pub use greylist::{Greylister, Verdict, network_of};
pub use helo::{claims_to_be_us, valid_helo};
pub use rate::{RateWindow, client_key};
use server_kit::TrustedNetworks;
use store::GreylistPolicy;

/// The settings (`[antispam]`, and `[limits] trusted_networks` / `smtp_message_rate_per_ip`).
#[derive(Debug, Clone)]
pub struct AntispamConfig {
    pub trusted: TrustedNetworks,
    /// Blocklist zones asked on connect; empty: none.
    pub dnsbl_zones: Vec<String>,
    /// How long the blocklist lookups of one connection may take together.
    pub dnsbl_timeout: Duration,
    /// Greylisting on or off; its timing.
    pub greylisting: bool,
    pub greylist: GreylistPolicy,
    /// Refuse clients that talk before the greeting or pipeline improperly.
    pub reject_early_talkers: bool,
    /// How long the greeting is held back to catch clients that talk first (0: only bytes that
    /// already arrived count).
    pub pregreet_delay: Duration,
    /// Refuse HELO/EHLO arguments that cannot name a host (`501 5.5.2`).
    pub reject_invalid_helo: bool,
    /// Refuse a HELO/EHLO naming this server (our hostname or address) from a foreign client.
    pub reject_helo_as_us: bool,
    /// MAIL commands per minute per client address (0: unlimited).
    pub message_rate_per_ip: u32,
}

impl Default for AntispamConfig {
    /// The defaults for a small site: no blocklists (they are third-party services an admin
    /// chooses), no greylisting (it delays first mail), early talkers refused with a 300 ms
    /// wait, invalid HELO refused, 60 messages a minute per address.
    fn default() -> AntispamConfig {
        AntispamConfig {
            trusted: TrustedNetworks::default(),
            dnsbl_zones: Vec::new(),
            dnsbl_timeout: Duration::from_secs(3),
            greylisting: false,
            greylist: GreylistPolicy {
                delay: 300,
                retry_window: 2 * 86400,
                pass_ttl: 35 * 86400,
            },
            reject_early_talkers: true,
            pregreet_delay: Duration::from_millis(300),
            reject_invalid_helo: true,
            reject_helo_as_us: false,
            message_rate_per_ip: 60,
        }
    }
}

/// The defences of one MX listener set, shared by its sessions.
pub struct Antispam {
    pub config: AntispamConfig,
    dns: Option<Arc<dyn DnsLookup>>,
    greylister: Option<Greylister>,
    messages: RateWindow,
}

impl Antispam {
    /// `dns` answers blocklist lookups (none: blocklists off); `greylist` keeps the triples
    /// (none: greylisting off).
    pub fn new(
        config: AntispamConfig,
        dns: Option<Arc<dyn DnsLookup>>,
        greylist: Option<Arc<dyn store::Greylist>>,
    ) -> Antispam {
        let greylister = greylist
            .filter(|_| config.greylisting)
            .map(|store| Greylister::new(store, config.greylist));
        let messages = RateWindow::per_minute(config.message_rate_per_ip);
        Antispam {
            config,
            dns,
            greylister,
            messages,
        }
    }

    /// Whether `ip` is on a trusted network: no defence applies to it.
    pub fn exempt(&self, ip: IpAddr) -> bool {
        self.config.trusted.contains(ip)
    }

    /// The first configured blocklist that lists `ip`, if any (lookups bounded in time).
    pub async fn blocklisted(&self, ip: IpAddr) -> Option<Listing> {
        let dns = self.dns.as_ref()?;
        if self.config.dnsbl_zones.is_empty() {
            return None;
        }
        dnsbl::check(dns, &self.config.dnsbl_zones, ip, self.config.dnsbl_timeout).await
    }

    /// Greylisting of one recipient; `Accept` when greylisting is off.
    pub async fn greylist(&self, ip: IpAddr, sender: &str, recipient: &str) -> Verdict {
        match &self.greylister {
            Some(g) => g.check(ip, sender, recipient).await,
            None => Verdict::Accept,
        }
    }

    /// Counts one message (a MAIL command) from `ip`; `false` when over the per-minute rate.
    pub fn message_allowed(&self, ip: IpAddr) -> bool {
        self.messages.hit(ip)
    }
}

//! Certificates from an ACME CA (RFC 8555), such as Let's Encrypt: obtained at start when
//! there is none (the self-signed certificate is served meanwhile), renewed before they expire,
//! and served by every listener at once without a restart (`cert_resolver.rs`).
//!
//! Challenges: HTTP-01 (RFC 8555 §8.3), answered by the web crate on `[listen] http` at
//! `/.well-known/acme-challenge/<token>`, or TLS-ALPN-01 (RFC 8737), answered on the implicit
//! TLS ports (`[listen] https`, where the CA connects on port 443). DNS-01 is not implemented
//! (it needs a DNS provider's API), so wildcard names cannot be had.
//!
//! Files, under `data_dir/tls/acme/`: `account.json` (the account key and URL, 0600),
//! `cert.pem` (the chain, leaf first), `key.pem` (0600) and `state.json` (the last attempt, for
//! `yubin tls status`); each is written through a temporary file, fsync and rename.
//!
//! Single node only: on several nodes sharing a PostgreSQL store each node runs its own ACME
//! client with its own data directory, and a challenge for a name several nodes answer may
//! reach the wrong node. There, give each node its own `names`, or use `[tls] cert`/`key`.
//!
//! The client is the `instant-acme` crate (JWS, nonces, account, orders); the CSR and the
//! TLS-ALPN-01 certificate are made with rcgen.

pub mod cli;
pub mod files;
pub mod order;
pub mod task;

use std::path::PathBuf;

use anyhow::bail;
use serde::Deserialize;

use crate::config::{Listen, Tls};

/// Let's Encrypt's production directory, the default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// The validation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Challenge {
    /// RFC 8555 §8.3: the CA fetches `http://<name>/.well-known/acme-challenge/<token>` on
    /// port 80.
    #[serde(rename = "http-01")]
    Http01,
    /// RFC 8737: the CA opens TLS to `<name>:443` offering ALPN `acme-tls/1`.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

impl Challenge {
    pub fn as_str(self) -> &'static str {
        match self {
            Challenge::Http01 => "http-01",
            Challenge::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

/// `[tls] acme = { … }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeConfig {
    /// The CA's directory URL (RFC 8555 §7.1.1).
    pub directory: String,
    /// Contact URLs for the account (RFC 8555 §7.3), such as `mailto:postmaster@example.com`;
    /// the CA writes there about expiring certificates and policy changes.
    pub contact: Vec<String>,
    /// `None`: HTTP-01 when `[listen] http` is set, else TLS-ALPN-01.
    pub challenge: Option<Challenge>,
    /// The names on the certificate. Default: the server's hostname, and for every configured
    /// domain `autoconfig.<domain>`, `autodiscover.<domain>` and (with `[listen] https`)
    /// `ua-auto-config.<domain>`.
    pub names: Option<Vec<String>>,
    /// Renew when the certificate expires within this many days (or names one less than wanted).
    pub renew_before_days: u32,
    /// PEM file of extra trust roots for the directory's HTTPS (a test CA such as pebble's);
    /// the system's roots are trusted too.
    pub ca_certificates: Option<PathBuf>,
    /// How often to check whether the certificate needs renewing.
    pub check_interval_secs: u64,
    /// After a failed attempt, wait this long, doubling after each further failure up to
    /// `retry_max_secs` (CAs limit failed validations: Let's Encrypt allows 5 an hour).
    pub retry_secs: u64,
    pub retry_max_secs: u64,
    /// The longest one attempt may take (account, order, validation, download).
    pub attempt_timeout_secs: u64,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            directory: LETS_ENCRYPT.to_string(),
            contact: Vec::new(),
            challenge: None,
            names: None,
            renew_before_days: 30,
            ca_certificates: None,
            check_interval_secs: 24 * 3600,
            retry_secs: 300,
            retry_max_secs: 24 * 3600,
            attempt_timeout_secs: 600,
        }
    }
}

impl AcmeConfig {
    /// The challenge used with these listeners.
    pub fn challenge(&self, listen: &Listen) -> Challenge {
        self.challenge.unwrap_or(if listen.http.is_empty() {
            Challenge::TlsAlpn01
        } else {
            Challenge::Http01
        })
    }

    pub fn validate(&self, tls: &Tls, listen: &Listen) -> anyhow::Result<()> {
        if tls.cert.is_some() {
            bail!("[tls] acme and [tls] cert/key exclude each other: choose one");
        }
        if !(self.directory.starts_with("https://") || self.directory.starts_with("http://")) {
            bail!(
                "[tls] acme directory {:?} is not an http(s) URL",
                self.directory
            );
        }
        for c in &self.contact {
            if !c.contains(':') {
                bail!("[tls] acme contact {c:?} is not a URL (write \"mailto:{c}\")");
            }
        }
        match self.challenge(listen) {
            Challenge::Http01 if listen.http.is_empty() => {
                bail!("[tls] acme challenge \"http-01\" needs a [listen] http address (port 80)")
            }
            Challenge::TlsAlpn01 if listen.https.is_empty() => bail!(
                "[tls] acme needs [listen] http (for HTTP-01) or [listen] https (for TLS-ALPN-01) on port 80 or 443"
            ),
            _ => {}
        }
        if let Some(names) = &self.names {
            if names.is_empty() {
                bail!("[tls] acme names is empty");
            }
            for n in names {
                if mail_types::Domain::parse(n).is_err() || n.starts_with("*.") {
                    bail!("[tls] acme name {n:?} is not a domain name (wildcards need DNS-01)");
                }
            }
        }
        if self.retry_secs == 0 || self.check_interval_secs == 0 {
            bail!("[tls] acme retry_secs and check_interval_secs must be at least 1");
        }
        Ok(())
    }
}

/// The names to request: `names` if configured, else `hostname` plus the autoconfiguration
/// names of every domain (what `yubin dns-records` tells the admin to publish: `autoconfig.`
/// and `autodiscover.`, and with an HTTPS listener the PACC draft's `ua-auto-config.`),
/// lower-case, without duplicates, in a stable order.
pub fn wanted_names(
    configured: Option<&[String]>,
    hostname: &str,
    domains: &[String],
    https: bool,
) -> Vec<String> {
    let mut names: Vec<String> = match configured {
        Some(n) => n.to_vec(),
        None => {
            let mut n = vec![hostname.to_string()];
            for d in domains {
                n.push(format!("autoconfig.{d}"));
                n.push(format!("autodiscover.{d}"));
                if https {
                    n.push(format!("ua-auto-config.{d}"));
                }
            }
            n
        }
    };
    for n in &mut names {
        *n = n.trim_end_matches('.').to_ascii_lowercase();
    }
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_the_host_and_the_autoconfig_names() {
        let names = wanted_names(
            None,
            "Mail.Example.com",
            &["example.com".into(), "example.org".into()],
            false,
        );
        assert_eq!(
            names,
            [
                "mail.example.com",
                "autoconfig.example.com",
                "autodiscover.example.com",
                "autoconfig.example.org",
                "autodiscover.example.org"
            ]
        );
        assert_eq!(
            wanted_names(None, "mail.example.com", &["example.com".into()], true),
            [
                "mail.example.com",
                "autoconfig.example.com",
                "autodiscover.example.com",
                "ua-auto-config.example.com"
            ]
        );
        let configured = ["a.example.com.".to_string(), "A.example.com".to_string()];
        assert_eq!(
            wanted_names(Some(&configured), "ignored", &["x.com".into()], true),
            ["a.example.com"]
        );
    }

    #[test]
    fn the_acme_table_parses_and_is_checked() {
        use crate::config::Config;
        let c = Config::parse(
            "[listen]\nhttp = [\"127.0.0.1:80\"]\n[tls]\nacme = { directory = \"https://ca.test/dir\", \
             contact = [\"mailto:a@example.com\"], renew_before_days = 10 }\n",
        )
        .unwrap();
        let acme = c.tls.acme.unwrap();
        assert_eq!(acme.directory, "https://ca.test/dir");
        assert_eq!(acme.renew_before_days, 10);
        assert_eq!(acme.check_interval_secs, 86400);
        assert_eq!(acme.challenge(&c.listen), Challenge::Http01);
        // Defaults: Let's Encrypt, and no listener for a challenge is an error.
        let err = Config::parse("[tls]\nacme = {}\n").unwrap_err().to_string();
        assert!(err.contains("[listen] http"), "{err}");
        let both =
            "[listen]\nhttp = [\"127.0.0.1:80\"]\n[tls]\ncert = \"/c\"\nkey = \"/k\"\nacme = {}\n";
        assert!(Config::parse(both).is_err());
        let unknown = "[listen]\nhttp = [\"127.0.0.1:80\"]\n[tls]\nacme = { bogus = 1 }\n";
        assert!(Config::parse(unknown).is_err());
        let contact =
            "[listen]\nhttp = [\"127.0.0.1:80\"]\n[tls]\nacme = { contact = [\"a@b.c\"] }\n";
        assert!(
            Config::parse(contact)
                .unwrap_err()
                .to_string()
                .contains("mailto:")
        );
    }

    #[test]
    fn the_challenge_follows_the_listeners() {
        let mut listen = Listen::default();
        let acme = AcmeConfig::default();
        listen.https = vec!["127.0.0.1:443".parse().unwrap()];
        assert_eq!(acme.challenge(&listen), Challenge::TlsAlpn01);
        listen.http = vec!["127.0.0.1:80".parse().unwrap()];
        assert_eq!(acme.challenge(&listen), Challenge::Http01);
        assert!(acme.validate(&Tls::default(), &listen).is_ok());
        assert!(acme.validate(&Tls::default(), &Listen::default()).is_err());
        let wild = AcmeConfig {
            names: Some(vec!["*.example.com".into()]),
            ..AcmeConfig::default()
        };
        assert!(wild.validate(&Tls::default(), &listen).is_err());
    }
}

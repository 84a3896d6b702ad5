//! The configuration file (TOML). Every key is optional; unknown keys are an error, so a typo
//! never silently falls back to a default. `yubin.example.toml` at the repository root documents
//! every key with its default, and a test below parses it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

mod authentication;
mod limits;

pub use authentication::Auth;
pub use limits::Limits;

/// The configuration used when no file is given and none exists at the default path.
pub const EMBEDDED_DEFAULT: &str = "# yubin's built-in default: every key at its default.\n";

/// Where `yubin` looks for a configuration file when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/yubin/yubin.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The name this server announces (SMTP greeting, EHLO, certificates). Default: the
    /// machine's hostname.
    pub hostname: Option<String>,
    pub data_dir: PathBuf,
    /// Where accounts, mailboxes and the queue live (`[storage]`).
    pub storage: Storage,
    pub listen: Listen,
    pub tls: Tls,
    pub limits: Limits,
    pub auth: Auth,
    /// Outbound delivery (`[queue]`, optional `[queue.smarthost]`).
    pub queue: crate::outbound_config::Queue,
    /// The resolver and static overrides (`[dns]`, `[dns.override."name"]`).
    pub dns: crate::outbound_config::Dns,
    /// Per-domain DKIM selector (`[dkim."example.com"] selector = "s1"`).
    pub dkim: std::collections::BTreeMap<String, crate::outbound_config::DkimDomain>,
    /// How logs are written (`[log]`).
    pub log: Log,
    /// The admin console on the HTTPS listener (`[admin]`).
    pub admin: crate::admin_console::AdminSection,
    /// The MX defences (`[antispam]`): blocklists, greylisting, early talkers, HELO sanity.
    pub antispam: crate::antispam_config::Antispam,
    /// Checks of arriving mail (`[inbound_auth]`): SPF, DKIM, DMARC, ARC, iprev.
    pub inbound_auth: crate::inbound_auth_config::InboundAuth,
    /// Retention policies (`[retention]`, `[retention.domains."…"]`, `[retention.accounts."…"]`).
    pub retention: crate::retention::Retention,
    /// Quotas (`[quota]`, `[quota.domain."example.com"]`): default limits, warnings.
    pub quota: crate::quota_config::Quota,
    /// The account pages on the HTTPS listener (`[account_pages]`).
    pub account_pages: crate::web_config::AccountPages,
    /// Prometheus metrics at `/metrics` on the web listeners (`[metrics]`).
    pub metrics: crate::metrics::MetricsConfig,
    /// The process (`[server]`): the user and group to run as after binding the ports.
    pub server: crate::privdrop::ServerSection,
}

/// The `[log]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    pub format: LogFormat,
    /// The recent lines kept in memory for the admin console's log page, at most...
    pub tail_lines: usize,
    /// ...and their bytes at most (the oldest go first).
    pub tail_bytes: usize,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            format: LogFormat::default(),
            tail_lines: 2000,
            tail_bytes: 1024 * 1024,
        }
    }
}

/// One line per event either way; audit events carry an `event` field (see README, "Logs").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `timestamp LEVEL target: message key=value …`, for people and grep.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: None,
            data_dir: PathBuf::from("./yubin-data"),
            storage: Storage::default(),
            listen: Listen::default(),
            tls: Tls::default(),
            limits: Limits::default(),
            auth: Auth::default(),
            queue: Default::default(),
            dns: Default::default(),
            dkim: Default::default(),
            log: Log::default(),
            admin: Default::default(),
            antispam: Default::default(),
            inbound_auth: Default::default(),
            retention: Default::default(),
            quota: Default::default(),
            account_pages: Default::default(),
            metrics: Default::default(),
            server: Default::default(),
        }
    }
}

/// Which store backend holds accounts, mailboxes, messages and the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The embedded store in `data_dir` (SQLite and blob files): one node.
    #[default]
    #[serde(alias = "embedded")]
    Sqlite,
    /// A PostgreSQL database shared by one or more nodes.
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    pub backend: Backend,
    /// The PostgreSQL database (`postgres://user:password@host:port/dbname`), required with
    /// `backend = "postgres"`.
    pub url: Option<String>,
    /// Database connections per node (PostgreSQL).
    pub pool_size: usize,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            backend: Backend::Sqlite,
            url: None,
            pool_size: 16,
        }
    }
}

/// The addresses of each listener; an empty list disables it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// MX (RFC 5321), STARTTLS (RFC 3207).
    pub smtp: Vec<SocketAddr>,
    /// Message submission (RFC 6409), STARTTLS, AUTH required.
    pub submission: Vec<SocketAddr>,
    /// Submission over implicit TLS (RFC 8314 §3.3).
    pub submissions: Vec<SocketAddr>,
    /// POP3 (RFC 1939), STLS (RFC 2595).
    pub pop3: Vec<SocketAddr>,
    /// POP3 over implicit TLS (RFC 8314 §3.2).
    pub pop3s: Vec<SocketAddr>,
    /// IMAP (RFC 9051), STARTTLS.
    pub imap: Vec<SocketAddr>,
    /// IMAP over implicit TLS (RFC 8314 §3.2).
    pub imaps: Vec<SocketAddr>,
    /// HTTPS (client autoconfiguration), with the mail ports' certificate. Default: none.
    pub https: Vec<SocketAddr>,
    /// Plain HTTP: Thunderbird's autoconfig file, and a redirect to HTTPS for everything
    /// else. Default: none.
    pub http: Vec<SocketAddr>,
    /// `[listen.advertised]`: the ports clients are told, when they differ from the bound
    /// ones (behind NAT or a container's port mapping).
    pub advertised: AdvertisedPorts,
}

/// The ports named to clients by autoconfiguration, the account pages and `yubin
/// dns-records` (SRV records); each unset one is the first bound port of its listener.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdvertisedPorts {
    /// Also in the account pages' links, Autodiscover's redirect and the HTTP→HTTPS redirect.
    pub https: Option<u16>,
    pub submission: Option<u16>,
    pub submissions: Option<u16>,
    pub pop3: Option<u16>,
    pub pop3s: Option<u16>,
    pub imap: Option<u16>,
    pub imaps: Option<u16>,
}

fn all_interfaces(port: u16) -> Vec<SocketAddr> {
    vec![SocketAddr::from(([0, 0, 0, 0], port))]
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            smtp: all_interfaces(25),
            submission: all_interfaces(587),
            submissions: all_interfaces(465),
            pop3: all_interfaces(110),
            pop3s: all_interfaces(995),
            imap: all_interfaces(143),
            imaps: all_interfaces(993),
            // No web listener unless configured: ports 80 and 443 are often taken.
            https: Vec::new(),
            http: Vec::new(),
            advertised: AdvertisedPorts::default(),
        }
    }
}

/// The certificate; without both keys a self-signed one is generated in `data_dir/tls`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Certificates from an ACME CA (RFC 8555), obtained and renewed by the server.
    pub acme: Option<crate::acme::AcmeConfig>,
}

impl Config {
    /// Parses a configuration file's text and checks values that the types alone cannot.
    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| one_line_error(text, &e))?;
        config.validate()?;
        Ok(config)
    }

    /// Loads the configuration: the file named by `--config`/`YUBIN_CONFIG` (which must exist),
    /// else [`DEFAULT_PATH`] if it exists, else the embedded default.
    pub fn load(path: Option<&Path>) -> anyhow::Result<(Config, Option<PathBuf>)> {
        let path = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.exists()),
        };
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                let config = Config::parse(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?;
                Ok((config, Some(path)))
            }
            None => Ok((Config::parse(EMBEDDED_DEFAULT)?, None)),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.quota.validate()?;
        if let Some(h) = &self.hostname
            && mail_types::Domain::parse(h).is_err()
        {
            bail!("hostname {h:?} is not a valid domain name");
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            bail!("[tls] needs both cert and key (or neither, for a self-signed certificate)");
        }
        if let Some(acme) = &self.tls.acme {
            acme.validate(&self.tls, &self.listen)?;
        }
        let l = &self.limits;
        for (name, value) in [
            ("max_message_size", l.max_message_size),
            ("max_recipients", l.max_recipients),
            ("max_connections_per_ip", l.max_connections_per_ip),
            ("max_connections", l.max_connections),
            (
                "pop3_maildrop_lease_secs",
                usize::try_from(l.pop3_maildrop_lease_secs).unwrap_or(usize::MAX),
            ),
            (
                "http_header_timeout_secs",
                usize::try_from(l.http_header_timeout_secs).unwrap_or(usize::MAX),
            ),
            (
                "http_connection_timeout_secs",
                usize::try_from(l.http_connection_timeout_secs).unwrap_or(usize::MAX),
            ),
        ] {
            if value == 0 {
                bail!("[limits] {name} must be greater than 0");
            }
        }
        let a = &self.auth;
        for (name, value) in [
            ("failure_window_secs", a.failure_window_secs),
            ("burst_window_secs", a.burst_window_secs),
            ("ban_refresh_secs", a.ban_refresh_secs),
        ] {
            if value == 0 {
                bail!("[auth] {name} must be greater than 0");
            }
        }
        // LOGIN's user name and password may be literals (RFC 9051 §6.2.3): they must fit.
        if l.imap_max_preauth_literal < 256 {
            bail!("[limits] imap_max_preauth_literal must be at least 256");
        }
        self.queue.validate()?;
        self.antispam.validate()?;
        self.retention.validate()?;
        self.account_pages.validate()?;
        self.admin.validate()?;
        if let Err(e) = server_kit::TrustedNetworks::parse(&l.trusted_networks) {
            bail!("[limits] trusted_networks: {e}");
        }
        self.inbound_auth.config()?;
        self.metrics.validate()?;
        self.server.validate()?;
        match (self.storage.backend, &self.storage.url) {
            (Backend::Postgres, None) => {
                bail!("[storage] backend = \"postgres\" needs url = \"postgres://…\"")
            }
            (Backend::Sqlite, Some(_)) => {
                bail!("[storage] url is for backend = \"postgres\"")
            }
            _ => {}
        }
        if self.storage.pool_size == 0 {
            bail!("[storage] pool_size must be greater than 0");
        }
        // A request line, Host and the usual headers must fit; an Autodiscover body too.
        if l.http_max_header_bytes < 1024 || l.http_max_body_bytes < 1024 {
            bail!("[limits] http_max_header_bytes and http_max_body_bytes must be at least 1024");
        }
        // RFC 5321 §4.5.3.1.4: an SMTP command line of 512 octets (with CRLF) must be accepted.
        if l.max_line_length.is_some_and(|n| n < 512) {
            bail!("[limits] max_line_length must be at least 512 (RFC 5321 §4.5.3.1.4)");
        }
        Ok(())
    }

    /// The configured hostname, or the machine's.
    pub fn hostname(&self) -> String {
        match &self.hostname {
            Some(h) => h.clone(),
            None => {
                let name = gethostname::gethostname().to_string_lossy().into_owned();
                if mail_types::Domain::parse(&name).is_ok() {
                    name
                } else {
                    "localhost".to_string()
                }
            }
        }
    }
}

/// `line L, column C: message` — toml's own rendering spans several lines with a source
/// excerpt, which does not fit the one-line errors of the command line.
fn one_line_error(text: &str, e: &toml::de::Error) -> anyhow::Error {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            anyhow::anyhow!("line {line}, column {column}: {message}")
        }
        None => anyhow::anyhow!("{message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn embedded_default_gives_defaults() {
        let c = Config::parse(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./yubin-data"));
        assert_eq!(c.listen.smtp, vec!["0.0.0.0:25".parse().unwrap()]);
        assert_eq!(c.listen.imaps, vec!["0.0.0.0:993".parse().unwrap()]);
        assert_eq!(c.limits.max_message_size, 25 * 1024 * 1024);
        assert!(c.auth.allow_plaintext_loopback);
        assert!(c.tls.cert.is_none());
    }

    #[test]
    fn example_config_parses_with_documented_values() {
        let text = include_str!("../../../../yubin.example.toml");
        let c = Config::parse(text).unwrap();
        assert_eq!(c.hostname.as_deref(), Some("mail.example.com"));
        assert_eq!(c.listen.smtp, vec!["0.0.0.0:25".parse().unwrap()]);
        // The example documents the defaults: every limit there equals the built-in one.
        let d = Limits::default();
        assert_eq!(c.limits.max_message_size, d.max_message_size);
        assert_eq!(c.limits.max_connections, d.max_connections);
        assert_eq!(c.limits.imap_idle_timeout_secs, d.imap_idle_timeout_secs);
        assert_eq!(
            c.limits.pop3_maildrop_lease_secs,
            d.pop3_maildrop_lease_secs
        );
        assert_eq!(
            c.limits.imap_idle_keepalive_secs,
            d.imap_idle_keepalive_secs
        );
        assert_eq!(
            c.limits.imap_max_preauth_literal,
            d.imap_max_preauth_literal
        );
        assert_eq!(c.auth.failure_delay_ms, Auth::default().failure_delay_ms);
        assert_eq!(c.auth.cache(), auth::CacheConfig::default());
        assert_eq!(
            c.auth.guard(c.limits.trusted_networks()),
            auth::GuardPolicy::default()
        );
        assert_eq!(c.limits.trusted_networks, d.trusted_networks);
        let r = crate::retention::Retention::default();
        assert_eq!(
            (
                c.retention.enabled,
                c.retention.interval_secs,
                c.retention.batch_size
            ),
            (r.enabled, r.interval_secs, r.batch_size)
        );
        assert_eq!(
            (c.retention.batch_pause_ms, c.retention.lease_secs),
            (r.batch_pause_ms, r.lease_secs)
        );
        assert_eq!(
            c.retention.policy("x@example.com"),
            r.policy("x@example.com")
        );
        let q = crate::outbound_config::Queue::default();
        assert_eq!(c.queue.remote_port, q.remote_port);
        assert_eq!(c.queue.max_age_secs, q.max_age_secs);
        assert_eq!(c.queue.delay_notice_secs, q.delay_notice_secs);
        assert!(c.dns.nameservers.is_none());
        assert_eq!(c.limits.trusted_networks, d.trusted_networks);
        assert_eq!(c.limits.connection_rate_per_ip, d.connection_rate_per_ip);
        assert_eq!(
            c.limits.smtp_message_rate_per_ip,
            d.smtp_message_rate_per_ip
        );
        let a = crate::antispam_config::Antispam::default();
        assert_eq!(c.antispam.dnsbl_zones, a.dnsbl_zones);
        assert_eq!(c.antispam.greylisting, a.greylisting);
        assert_eq!(c.antispam.greylist_delay_secs, a.greylist_delay_secs);
        assert_eq!(
            c.antispam.greylist_retry_window_secs,
            a.greylist_retry_window_secs
        );
        assert_eq!(c.antispam.greylist_expire_days, a.greylist_expire_days);
        assert_eq!(c.antispam.pregreet_delay_ms, a.pregreet_delay_ms);
        assert_eq!(c.antispam.reject_early_talkers, a.reject_early_talkers);
        assert_eq!(c.antispam.reject_invalid_helo, a.reject_invalid_helo);
        assert_eq!(c.antispam.reject_helo_as_us, a.reject_helo_as_us);
        assert_eq!(c.antispam.dnsbl_timeout_ms, a.dnsbl_timeout_ms);
        assert_eq!(c.storage.backend, Backend::Sqlite);
        assert_eq!(c.storage.pool_size, Storage::default().pool_size);
        // The example shows the web listeners on the standard ports, and the default limits.
        assert_eq!(c.listen.https, vec!["0.0.0.0:443".parse().unwrap()]);
        assert_eq!(c.listen.http, vec!["0.0.0.0:80".parse().unwrap()]);
        assert_eq!(
            c.limits.http_header_timeout_secs,
            d.http_header_timeout_secs
        );
        assert_eq!(c.limits.http_max_header_bytes, d.http_max_header_bytes);
        assert_eq!(c.limits.http_max_body_bytes, d.http_max_body_bytes);
        assert_eq!(
            c.limits.http_connection_timeout_secs,
            d.http_connection_timeout_secs
        );
    }

    #[test]
    fn trusted_networks_and_guard_keys() {
        let c = Config::parse(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(
            c.auth.guard(c.limits.trusted_networks()),
            auth::GuardPolicy::default()
        );
        let c = Config::parse(
            "[limits]\ntrusted_networks = [\"192.0.2.0/24\", \"2001:db8::1\"]\n[auth]\nban_after_burst = 0\n",
        )
        .unwrap();
        let nets = c.limits.trusted_networks();
        assert_eq!(nets.networks()[0].to_string(), "192.0.2.0/24");
        assert_eq!(nets.networks()[1].to_string(), "2001:db8::1/128");
        assert_eq!(c.auth.guard(nets).burst_failures, 0);
        let c = Config::parse("[limits]\ntrusted_networks = []\n").unwrap();
        assert!(c.limits.trusted_networks().networks().is_empty());
        let e = Config::parse("[limits]\ntrusted_networks = [\"localhost\"]\n").unwrap_err();
        assert!(e.to_string().contains("invalid network"), "{e}");
        let e = Config::parse("[auth]\nban_refresh_secs = 0\n").unwrap_err();
        assert!(e.to_string().contains("ban_refresh_secs"), "{e}");
    }

    #[test]
    fn storage_backends() {
        let c = Config::parse(EMBEDDED_DEFAULT).unwrap();
        assert_eq!((c.storage.backend, c.storage.url), (Backend::Sqlite, None));
        let c = Config::parse(
            "[storage]\nbackend = \"postgres\"\nurl = \"postgres://yubin@db/yubin\"\npool_size = 4\n",
        )
        .unwrap();
        assert_eq!(c.storage.backend, Backend::Postgres);
        assert_eq!(c.storage.url.as_deref(), Some("postgres://yubin@db/yubin"));
        assert_eq!(c.storage.pool_size, 4);
        let c = Config::parse("[storage]\nbackend = \"embedded\"\n").unwrap();
        assert_eq!(c.storage.backend, Backend::Sqlite);
        let e = Config::parse("[storage]\nbackend = \"postgres\"\n").unwrap_err();
        assert!(e.to_string().contains("needs url"), "{e}");
        let e = Config::parse("[storage]\nurl = \"postgres://db/y\"\n").unwrap_err();
        assert!(e.to_string().contains("is for backend"), "{e}");
        assert!(Config::parse("[storage]\nbackend = \"mysql\"\n").is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = Config::parse("hostnme = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("hostnme"), "{e}");
        let e = Config::parse("[limits]\nmax_conections = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("line 2, column 1: unknown field `max_conections`"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn listeners_take_lists_and_ipv6_and_empty() {
        let c = Config::parse("[listen]\nsmtp = [\"127.0.0.1:2525\", \"[::1]:2525\"]\npop3 = []\n")
            .unwrap();
        assert_eq!(c.listen.smtp.len(), 2);
        assert!(c.listen.smtp[1].is_ipv6());
        assert!(c.listen.pop3.is_empty());
        assert_eq!(c.listen.imap, all_interfaces(143));
        assert!(c.listen.https.is_empty() && c.listen.http.is_empty());
        let c =
            Config::parse("[listen]\nhttps = [\"0.0.0.0:443\"]\nhttp = [\"[::]:80\"]\n").unwrap();
        assert_eq!(c.listen.https, vec!["0.0.0.0:443".parse().unwrap()]);
        assert!(c.listen.http[0].is_ipv6());
        assert!(Config::parse("[limits]\nhttp_max_body_bytes = 10\n").is_err());
        assert!(Config::parse("[limits]\nhttp_header_timeout_secs = 0\n").is_err());
        assert!(Config::parse("[listen]\nsmtp = [\"nonsense\"]\n").is_err());
    }

    #[test]
    fn half_a_tls_section_is_an_error() {
        assert!(Config::parse("[tls]\ncert = \"/x.pem\"\n").is_err());
        assert!(Config::parse("[tls]\ncert = \"/x.pem\"\nkey = \"/y.pem\"\n").is_ok());
    }

    #[test]
    fn queue_dns_and_dkim_tables_parse() {
        let c = Config::parse(
            r#"
[queue]
remote_port = 2525
retry_initial_secs = 2
retry_max_secs = 10
max_messages_per_hour = 100
lease_secs = 20
[queue.smarthost]
host = "relay.test"
tls = "none"
[dns]
nameservers = ["127.0.0.1:5353"]
[dns.override."b.test"]
mx  = ["mx.b.test"]
txt = ["v=spf1 ip4:127.0.0.2 -all"]
[dns.override."mx.b.test"]
a   = ["127.0.0.2"]
aaaa = ["::1"]
[dkim."example.com"]
selector = "s1"
"#,
        )
        .unwrap();
        assert_eq!(c.queue.remote_port, 2525);
        assert_eq!(c.queue.max_messages_per_hour, Some(100));
        assert_eq!(c.queue.max_age_secs, 5 * 24 * 3600);
        assert_eq!(c.dns.overrides["b.test"].mx, vec!["mx.b.test"]);
        let e = crate::outbound_config::engine_config("h.test", &c.queue, &c.dns, &c.dkim);
        assert_eq!(e.dns_override["mx.b.test"].a.len(), 2);
        assert_eq!(e.smarthost.as_ref().unwrap().port, 587);
        assert_eq!(e.dkim_selectors["example.com"], "s1");
        assert_eq!(e.retry_initial, Duration::from_secs(2));
        assert_eq!(e.lease, Duration::from_secs(20));
        let default = Config::parse("").unwrap();
        assert_eq!(default.queue.lease_secs, 60);
        assert!(Config::parse("[queue.smarthost]\nhost = \"x\"\ntls = \"bogus\"\n").is_err());
        assert!(Config::parse("[dns.override.\"x\"]\nmx = 3\n").is_err());
        assert!(Config::parse("[queue]\nmax_per_destination = 0\n").is_err());
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(Config::parse("hostname = \"bad host\"\n").is_err());
        assert!(Config::parse("[limits]\nmax_connections = 0\n").is_err());
        assert!(Config::parse("[limits]\nmax_line_length = 80\n").is_err());
        assert!(Config::parse("[limits]\nimap_max_preauth_literal = 10\n").is_err());
        let c = Config::parse("[limits]\nmax_line_length = 2048\n").unwrap();
        assert_eq!(c.limits.max_line_length, Some(2048));
    }

    #[test]
    fn trusted_networks_and_antispam() {
        let c = Config::parse(EMBEDDED_DEFAULT).unwrap();
        let t = c.limits.trusted_networks();
        assert!(t.contains("127.0.0.1".parse().unwrap()));
        assert!(t.contains("::1".parse().unwrap()));
        let c = Config::parse("[limits]\ntrusted_networks = []\n").unwrap();
        assert!(
            !c.limits
                .trusted_networks()
                .contains("127.0.0.1".parse().unwrap())
        );
        let c = Config::parse("[limits]\ntrusted_networks = [\"192.0.2.0/24\"]\n").unwrap();
        assert!(
            c.limits
                .trusted_networks()
                .contains("192.0.2.9".parse().unwrap())
        );
        let e = Config::parse("[limits]\ntrusted_networks = [\"192.0.2.0/40\"]\n").unwrap_err();
        assert!(e.to_string().contains("trusted_networks"), "{e}");
        let c = Config::parse(
            "[antispam]\ndnsbl_zones = [\"bl.test.\"]\ngreylisting = true\ngreylist_delay_secs = 1\n",
        )
        .unwrap();
        let s = c.antispam.settings(server_kit::TrustedNetworks::none(), 7);
        assert_eq!(s.dnsbl_zones, vec!["bl.test"]);
        assert!(s.greylisting);
        assert_eq!(s.greylist.delay, 1);
        assert_eq!(s.greylist.pass_ttl, 35 * 86400);
        assert_eq!(s.message_rate_per_ip, 7);
        assert!(Config::parse("[antispam]\ndnsbl_zones = [\"not a zone\"]\n").is_err());
        assert!(Config::parse("[antispam]\ngreylist_delay_secs = 999999999\n").is_err());
        assert!(Config::parse("[antispam]\ngreylistng = true\n").is_err());
    }

    #[test]
    fn credential_cache_can_be_tuned_and_turned_off() {
        let c = Config::parse("[auth]\ncache_ttl_secs = 60\ncache_size = 5\n").unwrap();
        assert_eq!(c.auth.cache().ttl, Duration::from_secs(60));
        assert_eq!(c.auth.cache().max_entries, 5);
        assert!(c.auth.cache().enabled());
        let off = Config::parse("[auth]\ncache_size = 0\n").unwrap();
        assert!(!off.auth.cache().enabled());
        let off = Config::parse("[auth]\ncache_ttl_secs = 0\n").unwrap();
        assert!(!off.auth.cache().enabled());
    }
}

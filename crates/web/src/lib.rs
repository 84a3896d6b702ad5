//! yubin's HTTP(S) service. Today it answers the client autoconfiguration requests, so that a
//! user types only an address and a password:
//!
//! - Thunderbird's autoconfig file (`config-v1.1.xml`, the format documented by Mozilla and
//!   draft-ietf-mailmaint-autoconfig), with and without `?emailaddress=`;
//! - Outlook's Autodiscover v1 (POX, `autodiscover.xml`, the 2006a "outlook" response schema)
//!   and v2 (`autodiscover.json`, which only points at v1);
//! - the IETF draft-ietf-mailmaint-pacc-02 document (`/.well-known/user-agent-configuration.json`);
//! - Apple configuration profiles (`/apple/mobileconfig?email=…`, `com.apple.mail.managed`);
//! - ACME HTTP-01 challenges (RFC 8555 §8.3, `/.well-known/acme-challenge/<token>`).
//!
//! It also serves the account pages (`/account/`, `account/`): sign-in, the mail app
//! settings, profiles with a QR code, quota, password change, in English and Japanese.
//!
//! And the admin console (`/admin/`, [`admin`]): domains, users, aliases, quotas, DKIM and
//! the DNS check, the queue, bans, the recent log, and charts as inline SVG.
//!
//! Apple profiles are signed with the served certificate unless it is self-signed
//! (`autoconfig/profile_signing.rs`). Not implemented: HTTP/2.
//!
//! `GET /metrics` (Prometheus, `metrics.rs`) is answered before routing, over HTTP and HTTPS,
//! for the clients `[metrics]` allows.
//!
//! Layout: `server.rs` runs one HTTP/1.1 connection (hyper) with its limits; `router.rs` maps
//! a request to a handler; `autoconfig/` renders each format from [`MailPorts`] and a host
//! name, without I/O, so the formats are unit-tested on their own.

pub mod account;
pub mod acme;
pub mod admin;
pub mod autoconfig;
pub mod metrics;
#[doc(hidden)]
pub mod request;
mod router;
mod server;
pub mod xml;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mail_types::Domain;

pub use server::serve;

/// The mail listeners a client may be told about: the port of the first address of each
/// configured listener, `None` when the listener is off (a format then leaves it out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailPorts {
    /// IMAP over implicit TLS (RFC 8314 §3.2).
    pub imaps: Option<u16>,
    /// IMAP with STARTTLS.
    pub imap: Option<u16>,
    /// POP3 over implicit TLS (RFC 8314 §3.2).
    pub pop3s: Option<u16>,
    /// POP3 with STLS.
    pub pop3: Option<u16>,
    /// Submission over implicit TLS (RFC 8314 §3.3).
    pub submissions: Option<u16>,
    /// Submission with STARTTLS (RFC 6409).
    pub submission: Option<u16>,
}

/// What the web service needs to know; every limit is from `[limits]`.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The mail host name clients are sent to (it is the name on the certificate).
    pub hostname: String,
    pub ports: MailPorts,
    /// The HTTPS port, for redirects and the Autodiscover v2 URL (`None`: no HTTPS listener,
    /// plain HTTP then answers only the autoconfiguration paths and 404 elsewhere).
    pub https_port: Option<u16>,
    /// The request line and headers together, at most (hyper answers 431 beyond).
    pub max_header_bytes: usize,
    /// A request body, at most (413 beyond). Autodiscover requests are a few hundred bytes.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers, and how long an idle
    /// keep-alive connection waits for the next request.
    pub header_timeout: Duration,
    /// The longest a connection may last, however busy.
    pub connection_timeout: Duration,
}

impl WebConfig {
    /// Defaults for tests and for keys the configuration does not set.
    pub fn new(hostname: &str, ports: MailPorts) -> WebConfig {
        WebConfig {
            hostname: hostname.to_string(),
            ports,
            https_port: Some(443),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            connection_timeout: Duration::from_secs(300),
        }
    }
}

/// The mail domains this server answers for.
#[async_trait]
pub trait Domains: Send + Sync {
    async fn is_local(&self, domain: &Domain) -> Result<bool, String>;
    /// The domain to describe when the request names none (no address, no `autoconfig.`
    /// host): the first configured domain, `None` when there is none.
    async fn primary(&self) -> Result<Option<Domain>, String>;
}

/// The store's directory as the domain list.
pub struct DirectoryDomains(pub Arc<dyn store::Directory>);

#[async_trait]
impl Domains for DirectoryDomains {
    async fn is_local(&self, domain: &Domain) -> Result<bool, String> {
        self.0
            .is_local_domain(domain)
            .await
            .map_err(|e| e.to_string())
    }
    async fn primary(&self) -> Result<Option<Domain>, String> {
        let mut all = self.0.list_domains().await.map_err(|e| e.to_string())?;
        all.sort();
        Ok(all.into_iter().next())
    }
}

/// The state every web connection shares.
pub struct WebServer {
    pub config: WebConfig,
    pub domains: Arc<dyn Domains>,
    /// The account pages under `/account/` (`None`: not served, 404).
    pub account: Option<account::AccountPages>,
    /// The admin console under `/admin/` (`None`: not served, 404).
    pub admin: Option<admin::AdminConsole>,
    /// ACME HTTP-01 answers in progress (filled by the ACME client; empty otherwise).
    pub acme: Arc<acme::AcmeTokens>,
    /// `GET /metrics` (`None`: `[metrics] enabled = false`, the path is 404).
    pub metrics: Option<metrics::MetricsEndpoint>,
    /// The served certificate, which signs Apple profiles unless it is self-signed (`None`:
    /// profiles are unsigned).
    pub certificate: Option<Arc<dyn autoconfig::profile_signing::CurrentCertificate>>,
}

//! The web service's settings from the configuration: which mail listeners clients are told
//! about (`[listen]`), the host name, the HTTP limits of `[limits]`, and the account pages
//! (`[account_pages]`).

use std::sync::Arc;

use crate::config::{Config, Listen};

/// The port of the first address of each mail listener (what `yubin dns-records` publishes
/// too), `None` for a listener that is off.
pub fn mail_ports(listen: &Listen) -> web::MailPorts {
    // A listener that is not bound is not advertised, whatever `[listen.advertised]` says.
    let port = |v: &[std::net::SocketAddr], advertised: Option<u16>| {
        v.first().map(|a| advertised.unwrap_or(a.port()))
    };
    let a = &listen.advertised;
    web::MailPorts {
        imaps: port(&listen.imaps, a.imaps),
        imap: port(&listen.imap, a.imap),
        pop3s: port(&listen.pop3s, a.pop3s),
        pop3: port(&listen.pop3, a.pop3),
        submissions: port(&listen.submissions, a.submissions),
        submission: port(&listen.submission, a.submission),
    }
}

/// What the web server takes beyond the store and the authenticator.
pub struct WebParts<'a> {
    /// The users' own POP3 retention choices (account pages, POP3 CAPA).
    pub pop3_choices: &'a crate::retention::choices::Pop3Choices,
    /// `GET /metrics`, when `[metrics]` is on.
    pub metrics: Option<web::metrics::MetricsEndpoint>,
    /// The served certificate (it signs Apple profiles unless it is self-signed).
    pub certificate: Arc<crate::cert_resolver::CertResolver>,
}

/// The web server, `None` when neither `https` nor `http` is configured.
pub fn server(
    config: &Config,
    hostname: &str,
    opened: &crate::serve::OpenedStore,
    auth: &auth::Authenticator,
    parts: WebParts<'_>,
) -> Option<Arc<web::WebServer>> {
    let WebParts {
        pop3_choices,
        metrics,
        certificate,
    } = parts;
    let store = Arc::clone(&opened.store);
    let directory = Arc::clone(&opened.directory);
    let listen = &config.listen;
    if listen.https.is_empty() && listen.http.is_empty() {
        return None;
    }
    let l = &config.limits;
    let web_config = web::WebConfig {
        https_port: listen
            .https
            .first()
            .map(|a| listen.advertised.https.unwrap_or(a.port())),
        max_header_bytes: l.http_max_header_bytes,
        max_body_bytes: l.http_max_body_bytes,
        header_timeout: l.http_header_timeout(),
        connection_timeout: l.http_connection_timeout(),
        ..web::WebConfig::new(hostname, mail_ports(listen))
    };
    // The account pages need HTTPS: without an `https` listener they are not served.
    let pages = &config.account_pages;
    let account = (pages.enabled && !listen.https.is_empty()).then(|| {
        // Without the background task nothing is removed: the setting is not shown.
        let retention = config.retention.enabled.then(|| {
            Arc::new(RetentionPolicy {
                config: config.retention.clone(),
                offered: pages.pop3_expire_choices.clone(),
                choices: pop3_choices.clone(),
            }) as Arc<dyn web::account::Pop3RetentionPolicy>
        });
        web::account::AccountPages::new(pages.config(), auth.clone(), store, retention)
    });
    let admin = crate::admin_console::console(config, opened, auth);
    Some(Arc::new(web::WebServer {
        config: web_config,
        domains: Arc::new(web::DirectoryDomains(directory)),
        account,
        admin,
        acme: Arc::default(),
        metrics,
        certificate: Some(certificate),
    }))
}

/// The `[account_pages]` table: the users' settings pages under `/account/` on the HTTPS
/// listener.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountPages {
    /// Whether `/account/` is served (404 when off).
    pub enabled: bool,
    /// A session ends after this many seconds without a request (OWASP: 15–30 minutes)...
    pub session_idle_secs: u64,
    /// ...and this many seconds after the sign-in, whatever the activity.
    pub session_lifetime_secs: u64,
    /// Signed-in sessions at most, all accounts together (memory bound).
    pub max_sessions: usize,
    /// A new password's length in characters (NIST SP 800-63B §3.1.1.2: at least 8, allow
    /// at least 64).
    pub min_password_length: usize,
    pub max_password_length: usize,
    /// Password changes per account and hour.
    pub password_changes_per_hour: usize,
    /// The POP3 retention periods a user may pick (RFC 2449 §6.7 EXPIRE): `"never"` (keep)
    /// or days (0: delete at the next retention pass after the download). A choice wins over
    /// `[retention]`'s POP3 period for that account. Empty: shown, not changeable.
    pub pop3_expire_choices: Vec<crate::retention::Days>,
}

impl Default for AccountPages {
    fn default() -> Self {
        let d = web::account::AccountConfig::default();
        AccountPages {
            enabled: true,
            session_idle_secs: d.session_idle.as_secs(),
            session_lifetime_secs: d.session_absolute.as_secs(),
            max_sessions: d.max_sessions,
            min_password_length: d.min_password_length,
            max_password_length: d.max_password_length,
            password_changes_per_hour: d.password_changes_per_hour,
            pop3_expire_choices: vec![
                crate::retention::Days::Never,
                crate::retention::Days::After(0),
                crate::retention::Days::After(7),
                crate::retention::Days::After(30),
            ],
        }
    }
}

impl AccountPages {
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, v) in [
            ("session_idle_secs", self.session_idle_secs as usize),
            ("session_lifetime_secs", self.session_lifetime_secs as usize),
            ("max_sessions", self.max_sessions),
            ("min_password_length", self.min_password_length),
            ("password_changes_per_hour", self.password_changes_per_hour),
        ] {
            if v == 0 {
                anyhow::bail!("[account_pages] {name} must be greater than 0");
            }
        }
        if self.max_password_length < self.min_password_length {
            anyhow::bail!(
                "[account_pages] max_password_length must be at least min_password_length"
            );
        }
        Ok(())
    }

    fn config(&self) -> web::account::AccountConfig {
        web::account::AccountConfig {
            session_idle: std::time::Duration::from_secs(self.session_idle_secs),
            session_absolute: std::time::Duration::from_secs(self.session_lifetime_secs),
            max_sessions: self.max_sessions,
            min_password_length: self.min_password_length,
            max_password_length: self.max_password_length,
            password_changes_per_hour: self.password_changes_per_hour,
        }
    }
}

/// The POP3 retention the account pages show and let the user change: the `[retention]`
/// policy (what the background task applies and POP3 CAPA announces) and the choices offered.
struct RetentionPolicy {
    config: crate::retention::Retention,
    offered: Vec<crate::retention::Days>,
    choices: crate::retention::choices::Pop3Choices,
}

impl web::account::Pop3RetentionPolicy for RetentionPolicy {
    fn configured(&self, address: &str) -> store::Pop3Expire {
        crate::retention::choices::expire_of(self.config.policy(address).pop3)
    }
    fn choices(&self) -> Vec<store::Pop3Expire> {
        self.offered
            .iter()
            .map(|d| crate::retention::choices::expire_of(*d))
            .collect()
    }
    fn chosen(&self, address: &str, choice: Option<store::Pop3Expire>) {
        self.choices
            .set(address, choice.map(crate::retention::choices::days_of));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_ports_replace_the_bound_ones_of_bound_listeners_only() {
        let mut listen: crate::config::Listen = toml::from_str(
            "imaps = [\"127.0.0.1:1993\"]\nimap = [\"127.0.0.1:1143\"]\npop3 = []\n\
             [advertised]\nimaps = 993\npop3 = 110\n",
        )
        .unwrap();
        let p = mail_ports(&listen);
        assert_eq!((p.imaps, p.imap), (Some(993), Some(1143)));
        assert_eq!(p.pop3, None, "not bound: not advertised");
        listen.advertised = Default::default();
        assert_eq!(mail_ports(&listen).imaps, Some(1993));
    }

    #[test]
    fn the_example_documents_the_defaults_and_bad_values_are_refused() {
        let c = Config::parse(include_str!("../../../yubin.example.toml")).unwrap();
        assert_eq!(
            format!("{:?}", c.account_pages),
            format!("{:?}", AccountPages::default())
        );
        let c = Config::parse(
            "[account_pages]\nsession_idle_secs = 5\npop3_expire_choices = [\"never\", 3]\n",
        )
        .unwrap();
        assert_eq!(c.account_pages.config().session_idle.as_secs(), 5);
        assert_eq!(
            c.account_pages.pop3_expire_choices,
            vec![
                crate::retention::Days::Never,
                crate::retention::Days::After(3)
            ]
        );
        for bad in [
            "session_idle_secs = 0",
            "min_password_length = 0",
            "min_password_length = 20\nmax_password_length = 10",
            "pop3_expire_choices = [\"soon\"]",
            "unknown = 1",
        ] {
            assert!(
                Config::parse(&format!("[account_pages]\n{bad}\n")).is_err(),
                "{bad}"
            );
        }
    }
}

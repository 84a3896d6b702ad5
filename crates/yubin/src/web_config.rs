//! The web service's settings from the configuration: which mail listeners clients are told
//! about (`[listen]`), the host name, and the HTTP limits of `[limits]`.

use std::sync::Arc;

use crate::config::{Config, Listen};

/// The port of the first address of each mail listener (what `yubin dns-records` publishes
/// too), `None` for a listener that is off.
pub fn mail_ports(listen: &Listen) -> web::MailPorts {
    let first = |v: &[std::net::SocketAddr]| v.first().map(|a| a.port());
    web::MailPorts {
        imaps: first(&listen.imaps),
        imap: first(&listen.imap),
        pop3s: first(&listen.pop3s),
        pop3: first(&listen.pop3),
        submissions: first(&listen.submissions),
        submission: first(&listen.submission),
    }
}

/// The web server, `None` when neither `https` nor `http` is configured.
pub fn server(
    config: &Config,
    hostname: &str,
    directory: Arc<dyn store::Directory>,
    metrics: Option<web::metrics::MetricsEndpoint>,
) -> Option<Arc<web::WebServer>> {
    let listen = &config.listen;
    if listen.https.is_empty() && listen.http.is_empty() {
        return None;
    }
    let l = &config.limits;
    let web_config = web::WebConfig {
        https_port: listen.https.first().map(|a| a.port()),
        max_header_bytes: l.http_max_header_bytes,
        max_body_bytes: l.http_max_body_bytes,
        header_timeout: l.http_header_timeout(),
        connection_timeout: l.http_connection_timeout(),
        ..web::WebConfig::new(hostname, mail_ports(listen))
    };
    Some(Arc::new(web::WebServer {
        config: web_config,
        domains: Arc::new(web::DirectoryDomains(directory)),
        metrics,
    }))
}

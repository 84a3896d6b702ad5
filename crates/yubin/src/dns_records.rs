//! `yubin dns-records DOMAIN`: the DNS records an admin publishes for a mail domain served by
//! this yubin, printed as a zone-file snippet (absolute names, class IN) to paste into the zone.
//!
//! What is printed, and why:
//! - MX → this host (RFC 5321 §5.1), and the host's A/AAAA as comments to fill in (yubin does
//!   not know its public address).
//! - SPF (RFC 7208): `v=spf1 mx ~all` — the MX hosts send the domain's mail; others soft-fail.
//! - DKIM (RFC 6376 §3.6.2.1): one TXT per key in the store, or a hint to generate one.
//! - DMARC (RFC 7489 §6.3): `p=quarantine` with aggregate reports to postmaster.
//! - TLS reporting (RFC 8460 §3), and MTA-STS (RFC 8461 §3) commented out with the policy to
//!   serve: the policy must be reachable over HTTPS at `mta-sts.DOMAIN`, which yubin does not
//!   serve yet, and a published `_mta-sts` record without its policy helps nobody.
//! - Client service discovery (RFC 6186 §3, RFC 8314 §5.1): SRV records for the implicit-TLS
//!   ports that are configured, and "not available" (target `.`, RFC 2782) for the plain-text
//!   ports, so that clients are steered to TLS from the first byte.
//! - The autoconfiguration names Thunderbird (`autoconfig.`) and Outlook (`autodiscover.`)
//!   look up; with an HTTPS listener also Outlook's `_autodiscover._tcp` SRV record and the
//!   IETF PACC draft's `ua-auto-config.` name with the digest of the document served there.

use store::DkimKey;

use crate::config::Listen;

/// TTL of every record: an hour, short enough to correct a mistake the same day.
const TTL: u32 = 3600;

/// The records for `domain` whose mail host is `host`, with the DKIM `keys` of the domain
/// (each with its public TXT record) and the configured listeners.
pub fn zone_snippet(
    domain: &str,
    host: &str,
    listen: &Listen,
    keys: &[(DkimKey, String)],
) -> String {
    let d = format!("{domain}.");
    let h = format!("{host}.");
    let mut out = Vec::new();
    out.push(format!(
        "; DNS records for {domain}, printed by `yubin dns-records {domain}`.\n\
         ; Publish them in the zone of {domain}; `yubin check-dns {domain}` checks them."
    ));
    print_section(
        &mut out,
        "Mail exchanger (RFC 5321 §5.1) and the mail host's addresses",
    );
    out.push(record(&d, "MX", &format!("10 {h}")));
    out.push(format!(
        "; {h:<32} {TTL} IN A     <this server's public IPv4 address>\n\
         ; {h:<32} {TTL} IN AAAA  <this server's public IPv6 address, if any>\n\
         ; and a PTR record for each address naming {h} (set by the address's owner)"
    ));
    print_section(
        &mut out,
        "SPF (RFC 7208): the MX hosts send the domain's mail",
    );
    out.push(record(&d, "TXT", "\"v=spf1 mx ~all\""));
    print_section(
        &mut out,
        "DKIM (RFC 6376 §3.6.2.1): the public half of each signing key",
    );
    if keys.is_empty() {
        out.push(format!(
            "; no DKIM key for {domain} yet: run `yubin dkim generate {domain}`, then print these records again"
        ));
    }
    for (key, txt) in keys {
        let line = queue::dkim::zone_line(&key.selector, &key.domain, txt);
        // `name TXT "…"` from the key's record, with the TTL and class of the others.
        let (name, data) = line.split_once(" TXT ").unwrap_or((&line, ""));
        out.push(record(name, "TXT", data));
    }
    print_section(
        &mut out,
        "DMARC (RFC 7489 §6.3): unauthenticated mail From this domain goes to spam",
    );
    out.push(record(
        &format!("_dmarc.{d}"),
        "TXT",
        &format!("\"v=DMARC1; p=quarantine; rua=mailto:postmaster@{domain}\""),
    ));
    print_section(&mut out, "SMTP TLS reporting (RFC 8460 §3)");
    out.push(record(
        &format!("_smtp._tls.{d}"),
        "TXT",
        &format!("\"v=TLSRPTv1; rua=mailto:postmaster@{domain}\""),
    ));
    out.push(format!(
        "\n; MTA-STS (RFC 8461 §3): publish these once https://mta-sts.{domain}/.well-known/mta-sts.txt\n\
         ; serves the policy below (yubin does not serve it yet):\n\
         ; {:<32} {TTL} IN TXT   \"v=STSv1; id=1\"\n\
         ; {:<32} {TTL} IN CNAME <a web server with a certificate for mta-sts.{domain}>\n\
         ; policy: version: STSv1 / mode: testing / mx: {host} / max_age: 604800",
        format!("_mta-sts.{d}"),
        format!("mta-sts.{d}"),
    ));
    print_section(
        &mut out,
        "Mail client discovery (RFC 6186 §3, RFC 8314 §5.1): TLS from the first byte",
    );
    let srv = |listeners: &[std::net::SocketAddr]| listeners.first().map(|a| a.port());
    for (service, port, priority) in [
        ("_submissions._tcp", srv(&listen.submissions), 0),
        ("_imaps._tcp", srv(&listen.imaps), 0),
        ("_pop3s._tcp", srv(&listen.pop3s), 10),
    ] {
        let data = match port {
            Some(p) => format!("{priority} 1 {p} {h}"),
            // RFC 2782: target "." — the service is decidedly not available.
            None => "0 0 0 .".to_string(),
        };
        out.push(record(&format!("{service}.{d}"), "SRV", &data));
    }
    // RFC 8314 §5.1: the plain-text (STARTTLS) ports are announced as not available.
    for service in ["_submission._tcp", "_imap._tcp", "_pop3._tcp"] {
        out.push(record(&format!("{service}.{d}"), "SRV", "0 0 0 ."));
    }
    autoconfig_records(&mut out, domain, host, listen);
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// The names mail clients look up to configure themselves, answered by the web listener.
fn autoconfig_records(out: &mut Vec<String>, domain: &str, host: &str, listen: &Listen) {
    let (d, h) = (format!("{domain}."), format!("{host}."));
    let https = listen.https.first().map(|a| a.port());
    print_section(
        out,
        &format!(
            "Client autoconfiguration: Thunderbird fetches https://autoconfig.{domain}/, Outlook\n\
             ; https://autodiscover.{domain}/ or the host the SRV record names ([MS-OXDISCO]).\n\
             ; The certificate must name autoconfig.{domain} and autodiscover.{domain} too"
        ),
    );
    if https.is_none() {
        out.push(
            "; yubin answers them once [listen] https is set; until then clients fall back to\n\
             ; the SRV records above"
                .to_string(),
        );
    }
    out.push(record(&format!("autoconfig.{d}"), "CNAME", &h));
    out.push(record(&format!("autodiscover.{d}"), "CNAME", &h));
    let Some(port) = https else {
        return;
    };
    // Outlook's SRV lookup: priority 0, weight 0, the HTTPS port, the mail host.
    out.push(record(
        &format!("_autodiscover._tcp.{d}"),
        "SRV",
        &format!("0 0 {port} {h}"),
    ));
    // draft-ietf-mailmaint-pacc-02 §4: the document's host and its SHA-256.
    let document =
        web::autoconfig::pacc::render(domain, host, &crate::web_config::mail_ports(listen));
    print_section(
        out,
        &format!(
            "IETF automatic configuration (draft-ietf-mailmaint-pacc): the digest of the document\n\
             ; https://ua-auto-config.{domain}/.well-known/user-agent-configuration.json serves\n\
             ; (print these again after changing [listen] or hostname)"
        ),
    );
    out.push(record(&format!("ua-auto-config.{d}"), "CNAME", &h));
    out.push(record(
        &format!("_ua-auto-config.{d}"),
        "TXT",
        &format!("\"{}\"", web::autoconfig::pacc::digest_record(&document)),
    ));
}

fn print_section(out: &mut Vec<String>, title: &str) {
    out.push(format!("\n; {title}"));
}

/// One record as a zone-file line, columns aligned.
fn record(name: &str, kind: &str, data: &str) -> String {
    format!("{name:<34} {TTL} IN {kind:<5} {data}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::DkimAlgorithm;

    fn key(selector: &str) -> (DkimKey, String) {
        (
            DkimKey {
                domain: "example.com".into(),
                selector: selector.into(),
                algorithm: DkimAlgorithm::Ed25519,
                private_key_pem: String::new(),
                created_at: 0,
            },
            "v=DKIM1; k=ed25519; p=AAAA".into(),
        )
    }

    #[test]
    fn lists_every_record_with_absolute_names() {
        let z = zone_snippet(
            "example.com",
            "mail.example.com",
            &Listen::default(),
            &[key("s1")],
        );
        for line in [
            "example.com.                       3600 IN MX    10 mail.example.com.",
            "example.com.                       3600 IN TXT   \"v=spf1 mx ~all\"",
            "s1._domainkey.example.com.         3600 IN TXT   \"v=DKIM1; k=ed25519; p=AAAA\"",
            "_dmarc.example.com.                3600 IN TXT   \"v=DMARC1; p=quarantine; rua=mailto:postmaster@example.com\"",
            "_smtp._tls.example.com.            3600 IN TXT   \"v=TLSRPTv1; rua=mailto:postmaster@example.com\"",
            "_submissions._tcp.example.com.     3600 IN SRV   0 1 465 mail.example.com.",
            "_imaps._tcp.example.com.           3600 IN SRV   0 1 993 mail.example.com.",
            "_pop3s._tcp.example.com.           3600 IN SRV   10 1 995 mail.example.com.",
            "_imap._tcp.example.com.            3600 IN SRV   0 0 0 .",
            "autoconfig.example.com.            3600 IN CNAME mail.example.com.",
            "autodiscover.example.com.          3600 IN CNAME mail.example.com.",
        ] {
            assert!(z.lines().any(|l| l == line), "missing {line:?} in\n{z}");
        }
        // Without a web listener: no SRV for Autodiscover, no PACC digest.
        assert!(!z.contains("_autodiscover"), "{z}");
        assert!(!z.contains("UAAC1"), "{z}");
        assert!(z.contains("once [listen] https is set"));
    }

    #[test]
    fn with_https_the_autodiscover_srv_and_the_pacc_digest() {
        let listen = Listen {
            https: vec!["0.0.0.0:443".parse().unwrap()],
            ..Listen::default()
        };
        let z = zone_snippet("example.com", "mail.example.com", &listen, &[]);
        let doc = web::autoconfig::pacc::render(
            "example.com",
            "mail.example.com",
            &crate::web_config::mail_ports(&listen),
        );
        for line in [
            "_autodiscover._tcp.example.com.    3600 IN SRV   0 0 443 mail.example.com."
                .to_string(),
            "ua-auto-config.example.com.        3600 IN CNAME mail.example.com.".to_string(),
            format!(
                "_ua-auto-config.example.com.       3600 IN TXT   \"{}\"",
                web::autoconfig::pacc::digest_record(&doc)
            ),
        ] {
            assert!(z.lines().any(|l| l == line), "missing {line:?} in\n{z}");
        }
        assert!(!z.contains("once [listen] https is set"));
    }

    #[test]
    fn a_disabled_listener_is_announced_as_not_available() {
        let listen = Listen {
            pop3s: Vec::new(),
            ..Listen::default()
        };
        let z = zone_snippet("example.com", "mx.example.net", &listen, &[]);
        assert!(z.contains("_pop3s._tcp.example.com.           3600 IN SRV   0 0 0 ."));
        assert!(z.contains("run `yubin dkim generate example.com`"));
        assert!(z.contains("IN MX    10 mx.example.net."));
    }
}

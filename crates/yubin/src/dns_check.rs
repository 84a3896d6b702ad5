//! `yubin check-dns DOMAIN`: looks up each record `yubin dns-records` asks for and says which
//! are missing or wrong, plus the mail host's addresses and their PTR records (forward-
//! confirmed reverse DNS: the PTR names the host, and the host resolves to the address —
//! what receivers check as iprev, RFC 8601 §3, before trusting a sender).
//!
//! The judging is pure ([`judge`]) over a [`Dns`] that answers lookups in presentation form,
//! so it is tested without a network; `check_dns_cli.rs` plugs hickory in.

use std::future::Future;
use std::net::IpAddr;

/// A lookup's outcome: the records in presentation form (TXT: the character-strings joined),
/// empty when the name has none of that type or does not exist.
pub type Answers = Result<Vec<String>, String>;

/// What the checker needs from DNS.
pub trait Dns {
    fn lookup(&self, name: &str, kind: &'static str) -> impl Future<Output = Answers>;
    fn reverse(&self, ip: IpAddr) -> impl Future<Output = Answers>;
}

/// What a domain served by this host should publish (see `dns_records.rs`).
pub struct Expected<'a> {
    pub domain: &'a str,
    pub host: &'a str,
    /// (selector, the `p=` value of the key's record) for each stored DKIM key.
    pub dkim: Vec<(String, String)>,
    /// (service label, port) of each implicit-TLS service configured.
    pub tls_services: Vec<(&'static str, u16)>,
    /// With an HTTPS listener: its port (Outlook's `_autodiscover._tcp` SRV) and the
    /// `_ua-auto-config` TXT record of the PACC document served there.
    pub web: Option<(u16, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Missing,
    Wrong(String),
    /// The lookup failed (timeout, SERVFAIL): nothing can be said.
    Failed(String),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// e.g. `MX example.com.`
    pub record: String,
    pub what: &'static str,
    pub verdict: Verdict,
    /// What to publish, for a missing or wrong record.
    pub fix: String,
}

impl Finding {
    pub fn is_problem(&self) -> bool {
        self.verdict != Verdict::Ok
    }
}

fn finding(record: String, what: &'static str, verdict: Verdict, fix: String) -> Finding {
    Finding {
        record,
        what,
        verdict,
        fix,
    }
}

fn abs(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.').to_ascii_lowercase())
}

/// Judges one record set: `ok` picks the matching record; a set without one is wrong (its
/// records shown), an empty set missing.
fn judge_set(answers: Answers, ok: impl Fn(&str) -> bool) -> Verdict {
    match answers {
        Err(e) => Verdict::Failed(e),
        Ok(rs) if rs.is_empty() => Verdict::Missing,
        Ok(rs) if rs.iter().any(|r| ok(r)) => Verdict::Ok,
        Ok(rs) => Verdict::Wrong(rs.join(" | ")),
    }
}

/// The `p=` tag of a DKIM key record (RFC 6376 §3.6.1), whitespace removed.
pub fn dkim_public_key(record: &str) -> Option<String> {
    record.split(';').find_map(|tag| {
        let (k, v) = tag.split_once('=')?;
        (k.trim() == "p").then(|| v.chars().filter(|c| !c.is_whitespace()).collect())
    })
}

/// Checks every record and the host's reverse DNS.
pub async fn judge(dns: &impl Dns, e: &Expected<'_>) -> Vec<Finding> {
    let d = abs(e.domain);
    let h = abs(e.host);
    let mut out = Vec::new();

    // MX: this host among the exchanges (RFC 5321 §5.1).
    let mx = dns.lookup(&d, "MX").await;
    let verdict = judge_set(mx, |r| {
        r.split_whitespace().nth(1).map(abs).as_deref() == Some(h.as_str())
    });
    out.push(finding(
        format!("MX {d}"),
        "mail exchanger",
        verdict,
        format!("{d} MX 10 {h}"),
    ));

    // The host's addresses, and for each a PTR naming the host (forward-confirmed).
    let mut addresses = Vec::new();
    let mut failed = None;
    for kind in ["A", "AAAA"] {
        match dns.lookup(&h, kind).await {
            Ok(rs) => addresses.extend(rs.iter().filter_map(|r| r.parse::<IpAddr>().ok())),
            Err(err) => failed = Some(err),
        }
    }
    let verdict = match (&failed, addresses.is_empty()) {
        (_, false) => Verdict::Ok,
        (Some(err), true) => Verdict::Failed(err.clone()),
        (None, true) => Verdict::Missing,
    };
    out.push(finding(
        format!("A/AAAA {h}"),
        "the mail host's address",
        verdict,
        format!("{h} A <this server's public address>"),
    ));
    for ip in &addresses {
        let verdict = judge_set(dns.reverse(*ip).await, |r| abs(r) == h);
        out.push(finding(
            format!("PTR {ip}"),
            "reverse DNS of the mail host (ask the address's owner)",
            verdict,
            format!("PTR of {ip} → {h}"),
        ));
    }

    // SPF (RFC 7208 §3.2: exactly one record, or the result is PermError).
    let spf = dns.lookup(&d, "TXT").await.map(|rs| {
        rs.into_iter()
            .filter(|r| r.to_ascii_lowercase().starts_with("v=spf1"))
            .collect::<Vec<_>>()
    });
    let verdict = match spf {
        Ok(rs) if rs.len() > 1 => {
            Verdict::Wrong(format!("{} SPF records: {}", rs.len(), rs.join(" | ")))
        }
        // A record that authorizes someone (a `-all` alone would refuse this host's mail).
        other => judge_set(other, |r| {
            let r = r.to_ascii_lowercase();
            r.split_whitespace().any(|m| {
                let m = m.trim_start_matches(['+', '?', '~', '-']);
                m == "mx"
                    || m.starts_with("mx:")
                    || m == "a"
                    || m.starts_with("ip4:")
                    || m.starts_with("ip6:")
                    || m.starts_with("include:")
                    || m.starts_with("redirect=")
            })
        }),
    };
    out.push(finding(
        format!("TXT {d}"),
        "SPF",
        verdict,
        format!("{d} TXT \"v=spf1 mx ~all\""),
    ));

    // DKIM: each stored key published with its public half.
    for (selector, key) in &e.dkim {
        let name = format!("{selector}._domainkey.{d}");
        let verdict = judge_set(dns.lookup(&name, "TXT").await, |r| {
            dkim_public_key(r).as_deref() == Some(key.as_str())
        });
        out.push(finding(
            format!("TXT {name}"),
            "DKIM key",
            verdict,
            format!("see `yubin dkim list {}`", e.domain),
        ));
    }

    // DMARC (RFC 7489 §6.3: v=DMARC1 first).
    let name = format!("_dmarc.{d}");
    let verdict = judge_set(dns.lookup(&name, "TXT").await, |r| {
        r.starts_with("v=DMARC1")
    });
    out.push(finding(
        format!("TXT {name}"),
        "DMARC",
        verdict,
        format!(
            "{name} TXT \"v=DMARC1; p=quarantine; rua=mailto:postmaster@{}\"",
            e.domain
        ),
    ));

    // TLS reporting (RFC 8460 §3).
    let name = format!("_smtp._tls.{d}");
    let verdict = judge_set(dns.lookup(&name, "TXT").await, |r| {
        r.starts_with("v=TLSRPTv1")
    });
    out.push(finding(
        format!("TXT {name}"),
        "TLS reporting",
        verdict,
        format!(
            "{name} TXT \"v=TLSRPTv1; rua=mailto:postmaster@{}\"",
            e.domain
        ),
    ));

    // Client discovery (RFC 6186 §3): the implicit-TLS services here; the plain-text ones
    // "not available" (RFC 8314 §5.1, target ".").
    for (service, port) in &e.tls_services {
        let name = format!("{service}.{d}");
        let verdict = judge_set(dns.lookup(&name, "SRV").await, |r| {
            let f: Vec<&str> = r.split_whitespace().collect();
            f.len() == 4 && f[2] == port.to_string() && abs(f[3]) == h
        });
        out.push(finding(
            format!("SRV {name}"),
            "mail client discovery",
            verdict,
            format!("{name} SRV 0 1 {port} {h}"),
        ));
    }
    for service in ["_submission._tcp", "_imap._tcp", "_pop3._tcp"] {
        let name = format!("{service}.{d}");
        let verdict = judge_set(dns.lookup(&name, "SRV").await, |r| {
            r.split_whitespace().nth(3) == Some(".")
        });
        out.push(finding(
            format!("SRV {name}"),
            "plain-text service: not available",
            verdict,
            format!("{name} SRV 0 0 0 ."),
        ));
    }

    // Autoconfiguration names.
    for label in ["autoconfig", "autodiscover"] {
        let name = format!("{label}.{d}");
        let verdict = judge_set(dns.lookup(&name, "CNAME").await, |r| abs(r) == h);
        out.push(finding(
            format!("CNAME {name}"),
            "mail client autoconfiguration",
            verdict,
            format!("{name} CNAME {h}"),
        ));
    }
    if let Some((port, digest)) = &e.web {
        // Outlook's SRV lookup ([MS-OXDISCO]): the HTTPS port on the mail host.
        let name = format!("_autodiscover._tcp.{d}");
        let verdict = judge_set(dns.lookup(&name, "SRV").await, |r| {
            let f: Vec<&str> = r.split_whitespace().collect();
            f.len() == 4 && f[2] == port.to_string() && abs(f[3]) == h
        });
        out.push(finding(
            format!("SRV {name}"),
            "Outlook autodiscover",
            verdict,
            format!("{name} SRV 0 0 {port} {h}"),
        ));
        // draft-ietf-mailmaint-pacc-02: the host, and the digest of the document.
        let name = format!("ua-auto-config.{d}");
        let verdict = judge_set(dns.lookup(&name, "CNAME").await, |r| abs(r) == h);
        out.push(finding(
            format!("CNAME {name}"),
            "IETF automatic configuration",
            verdict,
            format!("{name} CNAME {h}"),
        ));
        let name = format!("_ua-auto-config.{d}");
        let wanted: String = digest.split_whitespace().collect();
        let verdict = judge_set(dns.lookup(&name, "TXT").await, |r| {
            r.split_whitespace().collect::<String>() == wanted
        });
        out.push(finding(
            format!("TXT {name}"),
            "digest of the automatic configuration",
            verdict,
            format!("{name} TXT \"{digest}\""),
        ));
    }
    out
}

/// The report, one line per record, problems with what to publish.
pub fn render(findings: &[Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        let (word, detail) = match &f.verdict {
            Verdict::Ok => ("ok", String::new()),
            Verdict::Missing => ("MISSING", format!(" — publish: {}", f.fix)),
            Verdict::Wrong(found) => ("WRONG", format!(" — found: {found}; publish: {}", f.fix)),
            Verdict::Failed(e) => ("FAILED", format!(" — lookup failed: {e}")),
        };
        s.push_str(&format!("{word:<8}{} ({}){detail}\n", f.record, f.what));
    }
    let problems = findings.iter().filter(|f| f.is_problem()).count();
    s.push_str(&match problems {
        0 => "all records are in place\n".to_string(),
        n => format!("{n} problem(s)\n"),
    });
    s
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Fake(HashMap<(String, &'static str), Vec<String>>);

    impl Dns for Fake {
        async fn lookup(&self, name: &str, kind: &'static str) -> Answers {
            Ok(self
                .0
                .get(&(name.to_string(), kind))
                .cloned()
                .unwrap_or_default())
        }
        async fn reverse(&self, ip: IpAddr) -> Answers {
            Ok(self
                .0
                .get(&(ip.to_string(), "PTR"))
                .cloned()
                .unwrap_or_default())
        }
    }

    fn full() -> Fake {
        let mut m = HashMap::new();
        let mut put = |n: &str, k: &'static str, v: &str| {
            m.entry((n.to_string(), k))
                .or_insert_with(Vec::new)
                .push(v.to_string());
        };
        put("example.com.", "MX", "10 mail.example.com.");
        put("mail.example.com.", "A", "192.0.2.1");
        put("192.0.2.1", "PTR", "mail.example.com.");
        put("example.com.", "TXT", "v=spf1 mx ~all");
        put("example.com.", "TXT", "google-site-verification=x");
        put(
            "s1._domainkey.example.com.",
            "TXT",
            "v=DKIM1; k=ed25519; p=AB CD",
        );
        put("_dmarc.example.com.", "TXT", "v=DMARC1; p=quarantine");
        put(
            "_smtp._tls.example.com.",
            "TXT",
            "v=TLSRPTv1; rua=mailto:x@example.com",
        );
        put(
            "_submissions._tcp.example.com.",
            "SRV",
            "0 1 465 mail.example.com.",
        );
        put(
            "_imaps._tcp.example.com.",
            "SRV",
            "0 1 993 mail.example.com.",
        );
        for s in ["_submission", "_imap", "_pop3"] {
            put(&format!("{s}._tcp.example.com."), "SRV", "0 0 0 .");
        }
        put("autoconfig.example.com.", "CNAME", "mail.example.com.");
        put("autodiscover.example.com.", "CNAME", "mail.example.com.");
        Fake(m)
    }

    fn expected() -> Expected<'static> {
        Expected {
            domain: "example.com",
            host: "mail.example.com",
            dkim: vec![("s1".into(), "ABCD".into())],
            tls_services: vec![("_submissions._tcp", 465), ("_imaps._tcp", 993)],
            web: None,
        }
    }

    #[tokio::test]
    async fn with_https_the_autodiscover_srv_and_the_pacc_digest_are_checked() {
        let mut dns = full();
        let e = Expected {
            web: Some((443, "v=UAAC1; a=sha256; d=AAAA".into())),
            ..expected()
        };
        let f = judge(&dns, &e).await;
        let p = problems(&f);
        assert_eq!(
            p.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>(),
            vec![
                "SRV _autodiscover._tcp.example.com.",
                "CNAME ua-auto-config.example.com.",
                "TXT _ua-auto-config.example.com."
            ]
        );
        assert!(p.iter().all(|(_, v)| *v == Verdict::Missing));
        dns.0.insert(
            ("_autodiscover._tcp.example.com.".into(), "SRV"),
            vec!["0 0 443 mail.example.com.".into()],
        );
        dns.0.insert(
            ("ua-auto-config.example.com.".into(), "CNAME"),
            vec!["mail.example.com.".into()],
        );
        dns.0.insert(
            ("_ua-auto-config.example.com.".into(), "TXT"),
            vec!["v=UAAC1; a=sha256; d=STALE".into()],
        );
        let p = problems(&judge(&dns, &e).await);
        assert_eq!(
            p,
            vec![(
                "TXT _ua-auto-config.example.com.".into(),
                Verdict::Wrong("v=UAAC1; a=sha256; d=STALE".into())
            )]
        );
    }

    fn problems(f: &[Finding]) -> Vec<(String, Verdict)> {
        f.iter()
            .filter(|f| f.is_problem())
            .map(|f| (f.record.clone(), f.verdict.clone()))
            .collect()
    }

    #[tokio::test]
    async fn a_complete_zone_has_no_problem() {
        let f = judge(&full(), &expected()).await;
        assert_eq!(problems(&f), vec![]);
        assert!(render(&f).ends_with("all records are in place\n"));
    }

    #[tokio::test]
    async fn reports_exactly_what_is_missing_or_wrong() {
        let mut dns = full();
        dns.0.remove(&("_dmarc.example.com.".into(), "TXT"));
        dns.0.insert(
            ("192.0.2.1".into(), "PTR"),
            vec!["host-192-0-2-1.isp.test.".into()],
        );
        dns.0.insert(
            ("s1._domainkey.example.com.".into(), "TXT"),
            vec!["v=DKIM1; p=OLD".into()],
        );
        dns.0
            .get_mut(&("example.com.".into(), "TXT"))
            .unwrap()
            .push("v=spf1 -all".into());
        let f = judge(&dns, &expected()).await;
        let p = problems(&f);
        assert_eq!(p.len(), 4, "{p:?}");
        assert_eq!(
            p[0],
            (
                "PTR 192.0.2.1".into(),
                Verdict::Wrong("host-192-0-2-1.isp.test.".into())
            )
        );
        assert!(
            matches!(&p[1], (r, Verdict::Wrong(w)) if r == "TXT example.com." && w.starts_with("2 SPF records"))
        );
        assert_eq!(p[2].0, "TXT s1._domainkey.example.com.");
        assert_eq!(p[3], ("TXT _dmarc.example.com.".into(), Verdict::Missing));
        assert!(render(&f).contains(
            "MISSING TXT _dmarc.example.com. (DMARC) — publish: _dmarc.example.com. TXT"
        ));
    }

    #[test]
    fn dkim_key_tag() {
        assert_eq!(
            dkim_public_key("v=DKIM1; k=rsa; p=MIIB Ajk\t=").as_deref(),
            Some("MIIBAjk=")
        );
        assert_eq!(dkim_public_key("v=DKIM1"), None);
    }
}

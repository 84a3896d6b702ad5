//! `yubin check-dns DOMAIN`: [`crate::dns_check::judge`] against real DNS — the resolvers of
//! `[dns] nameservers`, else the system's. Exit status 1 when something is missing or wrong.

use std::io::Write;
use std::net::IpAddr;

use anyhow::anyhow;
use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{RData, RecordType};

use crate::config::Config;
use crate::dns_check::{Answers, Dns, Expected, judge, render};

/// The check found problems (the report says which); the process exits with status 1.
#[derive(Debug)]
pub struct ProblemsFound;

impl std::fmt::Display for ProblemsFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("some DNS records are missing or wrong")
    }
}

impl std::error::Error for ProblemsFound {}

struct Hickory(TokioResolver);

/// Records of one type in presentation form; TXT as its joined character-strings.
fn present(data: &RData) -> String {
    match data {
        RData::TXT(t) => t
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
        other => other.to_string(),
    }
}

impl Dns for Hickory {
    async fn lookup(&self, name: &str, kind: &'static str) -> Answers {
        let rtype: RecordType = kind.parse().map_err(|_| format!("bad type {kind}"))?;
        match self.0.lookup(name, rtype).await {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter(|r| r.record_type() == rtype)
                .map(|r| present(&r.data))
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn reverse(&self, ip: IpAddr) -> Answers {
        match self.0.reverse_lookup(ip).await {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter(|r| r.record_type() == RecordType::PTR)
                .map(|r| present(&r.data))
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }
}

pub async fn run(
    config: &Config,
    store: &dyn store::Store,
    domain: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let findings = findings(config, store, domain).await?;
    out.write_all(render(&findings).as_bytes())?;
    if findings.iter().any(|f| f.is_problem()) {
        return Err(ProblemsFound.into());
    }
    Ok(())
}

/// The check's findings, one per record (also shown by the admin console).
pub async fn findings(
    config: &Config,
    store: &dyn store::Store,
    domain: &str,
) -> anyhow::Result<Vec<crate::dns_check::Finding>> {
    let (domain, keys) = crate::dns_records_cli::local_domain_keys(store, domain).await?;
    let dkim = keys
        .into_iter()
        .filter_map(|(key, txt)| Some((key.selector, crate::dns_check::dkim_public_key(&txt)?)))
        .collect();
    let listen = &config.listen;
    let tls_services = [
        ("_submissions._tcp", listen.submissions.first()),
        ("_imaps._tcp", listen.imaps.first()),
        ("_pop3s._tcp", listen.pop3s.first()),
    ]
    .into_iter()
    .filter_map(|(s, a)| a.map(|a| (s, a.port())))
    .collect();
    let host = config.hostname();
    let web = listen.https.first().map(|a| {
        let ports = crate::web_config::mail_ports(listen);
        let document = web::autoconfig::pacc::render(&domain, &host, &ports);
        (a.port(), web::autoconfig::pacc::digest_record(&document))
    });
    let expected = Expected {
        domain: &domain,
        host: &host,
        dkim,
        tls_services,
        web,
    };
    let resolver = queue::dns::build_resolver(config.dns.nameservers.as_deref())
        .ok_or_else(|| anyhow!("no DNS resolver (set [dns] nameservers)"))?;
    Ok(judge(&Hickory(resolver), &expected).await)
}

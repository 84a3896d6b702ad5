//! `checks`: the CPU cost of the checks yubin runs on each arriving message (SPF on HELO and
//! MAIL FROM, iprev, DKIM, ARC, DMARC, the Authentication-Results field, the removal of forged
//! results), measured in-process on the `inbound-auth` crate itself, without SMTP, storage or
//! network: DNS answers come from the static table (as `[dns.override]` gives them), the
//! client's PTR from /etc/hosts (127.0.0.1 is `localhost`).
//!
//! Three figures per run, so the closing note can say what each part costs:
//! - the whole check of the signed message (what every DKIM-signed arriving message costs);
//! - the same message without its DKIM-Signature (SPF, iprev, ARC, DMARC, rendering);
//! - `AuthenticatedMessage::parse` alone (header parse, body canonicalization and hash).
//!
//! The difference of the first two is DKIM verification with its parse; the message and key
//! are those `smtp --write-message` sends.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;
use inbound_auth::{Checker, InboundAuthConfig, StaticName, strip_forged};
use rustls_pki_types::pem::PemObject;

/// What to measure.
pub struct ChecksConfig {
    /// Messages checked per figure (after a warm-up of 200).
    pub iterations: u32,
    /// The message size (headers and body), as in `smtp --size`.
    pub size: usize,
    pub from: String,
    pub to: String,
    /// The signing key (PKCS#8 PEM, RSA or Ed25519) and its public half (SPKI PEM, as
    /// `openssl pkey -pubout` writes it) for the DNS table.
    pub dkim_key: PathBuf,
    pub dkim_public: PathBuf,
    pub selector: String,
}

/// Microseconds per message for each figure.
pub struct ChecksReport {
    pub algorithm: &'static str,
    pub signed_us: f64,
    pub unsigned_us: f64,
    pub parse_us: f64,
    pub header: String,
}

impl ChecksReport {
    pub fn human(&self) -> String {
        format!(
            "checks of one arriving message ({} DKIM signature), CPU time per message:\n\
             \x20 all checks, signed message : {:7.1} us\n\
             \x20 all checks, unsigned       : {:7.1} us  (SPF helo+mailfrom, iprev, ARC, DMARC, header)\n\
             \x20 DKIM (difference)          : {:7.1} us  (of which parse + body hash {:.1} us)\n\
             \x20 Authentication-Results: {}\n",
            self.algorithm,
            self.signed_us,
            self.unsigned_us,
            self.signed_us - self.unsigned_us,
            self.parse_us,
            self.header.trim_end()
        )
    }

    pub fn json(&self) -> String {
        format!(
            "{{\"mode\":\"checks\",\"algorithm\":\"{}\",\"signed_us\":{:.1},\"unsigned_us\":{:.1},\"dkim_us\":{:.1},\"parse_us\":{:.1}}}",
            self.algorithm,
            self.signed_us,
            self.unsigned_us,
            self.signed_us - self.unsigned_us,
            self.parse_us
        )
    }
}

/// The `p=` of the DKIM key record for an SPKI public key: the whole SubjectPublicKeyInfo for
/// RSA (RFC 6376 §3.6.1), the raw 32-byte key for Ed25519 (RFC 8463 §4.2).
fn dkim_record(spki_pem: &[u8]) -> anyhow::Result<(&'static str, String)> {
    let spki = rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(spki_pem)
        .context("reading the public key (SPKI PEM)")?;
    let der = spki.as_ref();
    // id-Ed25519 (RFC 8410 §3): 1.3.101.112, DER 06 03 2B 65 70.
    let ed25519 = der.windows(5).any(|w| w == [0x06, 0x03, 0x2b, 0x65, 0x70]);
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(if ed25519 {
        let raw = &der[der.len().saturating_sub(32)..];
        (
            "ed25519",
            format!("v=DKIM1; k=ed25519; p={}", b64.encode(raw)),
        )
    } else {
        (
            "rsa-sha256",
            format!("v=DKIM1; k=rsa; p={}", b64.encode(der)),
        )
    })
}

/// Drops the first header field (the DKIM-Signature `smtp --write-message` puts first).
fn without_first_field(message: &[u8]) -> Vec<u8> {
    let mut i = 0;
    while let Some(nl) = message[i..].iter().position(|&b| b == b'\n') {
        i += nl + 1;
        if !matches!(message.get(i), Some(b' ' | b'\t')) {
            break;
        }
    }
    message[i..].to_vec()
}

/// CPU time (user + system) of the whole process so far, in microseconds (proc(5) fields 14
/// and 15, in clock ticks of 10 ms): the checks' work on every thread (the envelope task
/// runs on another worker), not the wall time spent waiting for wake-ups. Runs of 20,000
/// messages keep the tick's rounding under 1%.
fn cpu_us() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after its ')' are plain.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Field 14 (utime) is the 12th after the ')'.
    (ticks(11) + ticks(12)) * 10_000.0
}

async fn time_checks(checker: &Checker, message: &[u8], n: u32, helo: &str, from: &str) -> f64 {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let once = || async {
        let pending = checker.begin(ip, helo, from);
        let verdict = pending.finish(message).await;
        let (body, _) = strip_forged(message, "mx.bench.test");
        std::hint::black_box((verdict, body));
    };
    for _ in 0..200 {
        once().await;
    }
    let start = cpu_us();
    for _ in 0..n {
        once().await;
    }
    (cpu_us() - start) / f64::from(n)
}

/// Runs the three measurements on the current runtime (a current-thread one, for figures
/// without scheduling noise).
pub async fn run(cfg: ChecksConfig) -> anyhow::Result<ChecksReport> {
    let load = crate::load::LoadConfig {
        addr: String::new(),
        messages: 1,
        concurrency: 1,
        size: cfg.size,
        envelope: crate::client::Envelope {
            helo: "bench.yubin.test".into(),
            from: cfg.from.clone(),
            to: cfg.to.clone(),
        },
        io_timeout: std::time::Duration::from_secs(1),
        pid: None,
        sample_every: std::time::Duration::from_secs(1),
        dkim: Some((cfg.dkim_key.clone(), cfg.selector.clone())),
    };
    // The file smtp-source sends has LF line ends; SMTP delivers CRLF.
    let lf = crate::load::sample_message(&load)?;
    let mut signed = Vec::with_capacity(lf.len() + lf.len() / 50);
    for &b in &lf {
        if b == b'\n' {
            signed.push(b'\r');
        }
        signed.push(b);
    }
    let unsigned = without_first_field(&signed);

    let pem = std::fs::read(&cfg.dkim_public).context("reading --dkim-public")?;
    let (algorithm, dkim_txt) = dkim_record(&pem)?;
    let domain = cfg.from.rsplit_once('@').map_or("x.test", |(_, d)| d);
    let statics = vec![
        StaticName {
            name: domain.to_string(),
            txt: vec!["v=spf1 ip4:127.0.0.1 -all".into()],
            ..StaticName::default()
        },
        StaticName {
            name: format!("_dmarc.{domain}"),
            txt: vec!["v=DMARC1; p=reject".into()],
            ..StaticName::default()
        },
        StaticName {
            name: format!("{}._domainkey.{domain}", cfg.selector),
            txt: vec![dkim_txt],
            ..StaticName::default()
        },
        StaticName {
            name: "bench.yubin.test".into(),
            txt: vec!["v=spf1 ip4:127.0.0.1 -all".into()],
            addrs: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            ..StaticName::default()
        },
    ];
    // Anything not in the table goes to a closed port and fails at once.
    let nameservers = [SocketAddr::from(([127, 0, 0, 1], 9))];
    let resolver = queue::dns::resolver_config(Some(&nameservers))
        .map_err(|e| anyhow::anyhow!("resolver: {e}"))?;
    let checker = Checker::new(
        InboundAuthConfig::default(),
        "mx.bench.test",
        resolver,
        &statics,
    )
    .map_err(|e| anyhow::anyhow!(e))?;

    let helo = "bench.yubin.test";
    let verdict = checker
        .begin(IpAddr::V4(Ipv4Addr::LOCALHOST), helo, &cfg.from)
        .finish(&signed)
        .await;
    anyhow::ensure!(
        verdict.header.contains("dkim=pass") && verdict.header.contains("dmarc=pass"),
        "the signed message does not pass: {}",
        verdict.header
    );

    let signed_us = time_checks(&checker, &signed, cfg.iterations, helo, &cfg.from).await;
    let unsigned_us = time_checks(&checker, &unsigned, cfg.iterations, helo, &cfg.from).await;
    let start = cpu_us();
    for _ in 0..cfg.iterations {
        std::hint::black_box(mail_auth::AuthenticatedMessage::parse(&signed));
    }
    let parse_us = (cpu_us() - start) / f64::from(cfg.iterations);
    Ok(ChecksReport {
        algorithm,
        signed_us,
        unsigned_us,
        parse_us,
        header: verdict.header,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn drops_a_folded_first_field() {
        assert_eq!(
            super::without_first_field(b"DKIM-Signature: a\r\n\tb\r\nFrom: c\r\n\r\nbody"),
            b"From: c\r\n\r\nbody"
        );
    }
}

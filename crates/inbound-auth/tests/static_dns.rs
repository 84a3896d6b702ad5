//! The checker against the `[dns.override]`-style static table alone: no DNS server answers
//! (the nameserver is a closed loopback port), so every result here comes from the table, and
//! every name outside it is a DNS failure.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use inbound_auth::{Checker, Disposition, InboundAuthConfig, Res, StaticName};
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;

const IP: &str = "192.0.2.7";

fn key() -> (Ed25519Key, String) {
    let pair = mail_auth::dkim::generate::DkimKeyPair::generate_ed25519().unwrap();
    let key = Ed25519Key::from_pkcs8_der(pair.private_key()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pair.public_key());
    (key, format!("v=DKIM1; k=ed25519; p={b64}"))
}

fn name(name: &str, txt: &[&str]) -> StaticName {
    StaticName {
        name: name.into(),
        txt: txt.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn checker(statics: &[StaticName]) -> Checker {
    let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let config = InboundAuthConfig {
        dns_timeout: Duration::from_millis(300),
        check_timeout: Duration::from_secs(2),
        ..InboundAuthConfig::default()
    };
    // A resolver that only knows a dead server: every answer must come from `statics`.
    let mut udp = ConnectionConfig::udp();
    udp.port = dead.port();
    let servers = vec![NameServerConfig::new(dead.ip(), true, vec![udp])];
    let resolver = (
        ResolverConfig::from_parts(None, Vec::new(), servers),
        ResolverOpts::default(),
    );
    Checker::new(config, "mx.example.com", resolver, statics).unwrap()
}

fn signed(key: Ed25519Key, domain: &str, body: &str) -> Vec<u8> {
    let msg = format!("From: a@{domain}\r\nTo: u@example.com\r\nSubject: hi\r\n\r\n{body}");
    let sig = DkimSigner::from_key(key)
        .domain(domain)
        .selector("s1")
        .headers(["From", "To", "Subject"])
        .sign(msg.as_bytes())
        .unwrap();
    let mut out = sig.to_header().into_bytes();
    out.extend_from_slice(msg.as_bytes());
    out
}

fn result_of(v: &inbound_auth::Verdict, method: &str) -> Res {
    v.results
        .all()
        .iter()
        .find(|r| r.method == method)
        .map(|r| r.result)
        .unwrap()
}

#[tokio::test]
async fn table_answers_spf_dkim_and_dmarc() {
    let (k, record) = key();
    let statics = [
        name("sender.test", &[&format!("v=spf1 ip4:{IP} -all")]),
        name("_dmarc.sender.test", &["v=DMARC1; p=reject"]),
        name("s1._domainkey.sender.test", &[&record]),
    ];
    let c = checker(&statics);
    let ip: IpAddr = IP.parse().unwrap();
    let v = c
        .begin(ip, "client.example", "a@sender.test")
        .finish(&signed(k, "sender.test", "hello\r\n"))
        .await;
    assert_eq!(v.results.spf_mailfrom.result, Res::Pass, "{}", v.header);
    assert_eq!(result_of(&v, "dkim"), Res::Pass, "{}", v.header);
    assert_eq!(result_of(&v, "dmarc"), Res::Pass, "{}", v.header);
    // No PTR in the table and no DNS: iprev could not be checked, and its action is "none".
    assert_eq!(result_of(&v, "iprev"), Res::TempError, "{}", v.header);
    assert_eq!(v.disposition, Disposition::Deliver);
    assert!(
        v.header
            .starts_with("Authentication-Results: mx.example.com;\r\n\tiprev=temperror")
    );
}

#[tokio::test]
async fn failing_dmarc_reject_is_refused_and_unknown_dmarc_is_temporary() {
    let (k, record) = key();
    let statics = [
        name("sender.test", &["v=spf1 ip4:198.51.100.1 -all"]),
        name("_dmarc.sender.test", &["v=DMARC1; p=reject"]),
        name("s1._domainkey.sender.test", &[&record]),
    ];
    let c = checker(&statics);
    let ip: IpAddr = IP.parse().unwrap();
    let mut message = signed(k, "sender.test", "hello\r\n");
    // Tampered after signing: the body hash no longer verifies.
    let n = message.len();
    message[n - 3] = b'X';
    let v = c
        .begin(ip, "client.example", "a@sender.test")
        .finish(&message)
        .await;
    assert_eq!(v.results.spf_mailfrom.result, Res::Fail);
    assert_eq!(result_of(&v, "dkim"), Res::Fail, "{}", v.header);
    assert!(v.header.contains("reason=\"body hash did not verify\""));
    assert_eq!(result_of(&v, "dmarc"), Res::Fail);
    assert_eq!(
        v.disposition,
        Disposition::Refuse {
            code: 550,
            status: "5.7.1",
            text: "Rejected by the DMARC policy of sender.test".into()
        }
    );
    // A From: domain the table does not know: its policy cannot be read (no DNS), so the
    // message is deferred, never passed.
    let v = c
        .begin(ip, "client.example", "a@other.test")
        .finish(b"From: a@other.test\r\nSubject: x\r\n\r\nhi\r\n")
        .await;
    assert_eq!(result_of(&v, "dmarc"), Res::TempError, "{}", v.header);
    assert!(matches!(
        v.disposition,
        Disposition::Refuse {
            code: 451,
            status: "4.4.3",
            ..
        }
    ));
}

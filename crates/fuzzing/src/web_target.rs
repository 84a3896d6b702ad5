//! The web service's request handling: raw bytes as one HTTPS connection to the real server
//! (hyper's HTTP/1.1 parser, the router, the autoconfig/Autodiscover handlers with their
//! query strings, Host headers, v2 JSON paths and v1 XML bodies), and the request helpers
//! and the XML reader directly.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mail_types::Domain;
use server_kit::{ConnInfo, ConnSlot, Shutdown};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use web::{MailPorts, WebConfig, WebServer, request, xml};

/// How long one request may take before it counts as a hang (the server's own header
/// timeout is 10 s; the input is complete and the client's side is shut, so an answer or
/// a close is due at once).
const HANG: Duration = Duration::from_secs(5);

/// One local domain, `example.com`.
struct OneDomain;

#[async_trait]
impl web::Domains for OneDomain {
    async fn is_local(&self, domain: &Domain) -> Result<bool, String> {
        Ok(domain.as_str() == "example.com")
    }
    async fn primary(&self) -> Result<Option<Domain>, String> {
        Ok(Domain::parse("example.com").ok())
    }
}

thread_local! {
    static SERVER: Arc<WebServer> = Arc::new(WebServer {
        config: WebConfig::new(
            "mail.example.com",
            MailPorts {
                imaps: Some(993),
                imap: Some(143),
                pop3s: Some(995),
                pop3: Some(110),
                submissions: Some(465),
                submission: Some(587),
            },
        ),
        domains: Arc::new(OneDomain),
        account: None,
        admin: None,
        acme: Arc::default(),
        metrics: None,
        certificate: None,
    });
}

/// The bytes of one HTTPS connection: the server answers with HTTP/1.1 responses (or
/// closes) within the hang limit, never panics; the XML reader's text re-escaped reads back
/// the same; the request helpers take any text.
pub fn web_request(data: &[u8]) {
    let server = SERVER.with(Arc::clone);
    let answer = crate::block_on(exchange(server, data));
    let answer = answer.unwrap_or_else(|| panic!("no answer within {HANG:?}"));
    if !answer.is_empty() {
        assert!(
            answer.starts_with(b"HTTP/1.1 ") || answer.starts_with(b"HTTP/1.0 "),
            "not an HTTP/1.x response: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(80)])
        );
    }
    helpers(&String::from_utf8_lossy(data));
}

/// Writes `data` as the client and reads everything the server sends until it closes.
async fn exchange(server: Arc<WebServer>, data: &[u8]) -> Option<Vec<u8>> {
    let (mut client, stream) = tokio::io::duplex(64 * 1024);
    let shutdown = Shutdown::new();
    let info = ConnInfo {
        id: 1,
        peer: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000),
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 443),
        listener: "https",
        slot: ConnSlot::default(),
    };
    let task = tokio::spawn(web::serve(
        server,
        Box::new(stream),
        true,
        info,
        shutdown.clone(),
    ));
    let data = data.to_vec();
    let result = tokio::time::timeout(HANG, async move {
        let (mut rd, mut wr) = tokio::io::split(&mut client);
        // Writing and reading at once: a server answering 431 early stops reading.
        let write = async {
            let _ = wr.write_all(&data).await;
            let _ = wr.shutdown().await;
        };
        let mut answer = Vec::new();
        let read = rd.read_to_end(&mut answer);
        let (_, r) = tokio::join!(write, read);
        r.ok();
        answer
    })
    .await
    .ok();
    shutdown.cancel();
    task.abort();
    let _ = task.await;
    result
}

fn helpers(text: &str) {
    let query = Some(text);
    for names in [
        &["emailaddress"][..],
        &["email", "emailaddress"],
        &["protocol"],
    ] {
        if let Some(v) = request::query_param(query, names) {
            let _ = request::address(&v);
        }
    }
    assert_eq!(
        request::percent_decode(text),
        strict_percent_decode(text),
        "percent-decoding differs from RFC 3986 §2.1"
    );
    if let Some(host) = request::host_name(text) {
        assert_eq!(request::host_name(host.as_str()).as_ref(), Some(&host));
        let _ = request::prefixed_domain(&host);
    }
    let _ = request::address(text);
    if !text.contains('<') {
        let doc = format!("<EMailAddress>{text}</EMailAddress>");
        let strict = if doc.contains("<!DOCTYPE") || doc.contains("<!ENTITY") {
            Err(xml::XmlError::Declaration)
        } else {
            strict_unescape(text)
        };
        assert_eq!(
            xml::element_text(&doc, "EMailAddress"),
            strict,
            "XML references decoded otherwise than XML 1.0 §4.1 and §4.6 say"
        );
    }
    if let Ok(found) = xml::element_text(text, "EMailAddress") {
        // XML 1.0 §2.4: escaped text reads back as itself.
        let doc = format!("<EMailAddress>{}</EMailAddress>", xml::escape(&found));
        assert_eq!(xml::element_text(&doc, "EMailAddress").as_ref(), Ok(&found));
    }
}

/// RFC 3986 §2.1: `pct-encoded = "%" HEXDIG HEXDIG`; anything else is kept as it is.
fn strict_percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// XML 1.0 §4.6 (the five predefined entities) and §4.1 (`CharRef = "&#" [0-9]+ ";" |
/// "&#x" [0-9a-fA-F]+ ";"`, naming a `Char` of §2.2); the result trimmed, as the reader
/// returns it.
fn strict_unescape(text: &str) -> Result<String, xml::XmlError> {
    let bad = xml::XmlError::BadReference;
    let mut out = String::new();
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let semi = after.find(';').ok_or(bad.clone())?;
        let name = &after[..semi];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let (digits, radix) = match name.strip_prefix("#x") {
                    Some(h) => (h, 16),
                    None => (name.strip_prefix('#').ok_or(bad.clone())?, 10),
                };
                if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                    return Err(bad);
                }
                let code = u32::from_str_radix(digits, radix).map_err(|_| bad.clone())?;
                let is_char = matches!(code, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF);
                char::from_u32(code)
                    .filter(|_| is_char)
                    .ok_or(bad.clone())?
            }
        };
        out.push(c);
        rest = &after[semi + 1..];
    }
    out.push_str(rest);
    Ok(out.trim().to_string())
}

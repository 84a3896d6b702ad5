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
    let _ = request::percent_decode(text);
    if let Some(host) = request::host_name(text) {
        assert_eq!(request::host_name(host.as_str()).as_ref(), Some(&host));
        let _ = request::prefixed_domain(&host);
    }
    let _ = request::address(text);
    if let Ok(found) = xml::element_text(text, "EMailAddress") {
        // XML 1.0 §2.4: escaped text reads back as itself.
        let doc = format!("<EMailAddress>{}</EMailAddress>", xml::escape(&found));
        assert_eq!(xml::element_text(&doc, "EMailAddress").as_ref(), Ok(&found));
    }
}

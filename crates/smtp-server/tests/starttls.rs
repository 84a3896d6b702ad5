//! STARTTLS (RFC 3207) with a real TLS handshake: pipelined plaintext is discarded, the
//! session state is reset, and AUTH becomes available.

mod common;

use std::sync::Arc;

use common::{Client, PASSWORD, harness_tls};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use server_kit::Shutdown;
use smtp_server::SmtpMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// A self-signed certificate for mx.example.com: (acceptor, connector).
fn tls_pair() -> (tokio_rustls::TlsAcceptor, tokio_rustls::TlsConnector) {
    let ck = rcgen::generate_simple_self_signed(vec!["mx.example.com".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        tokio_rustls::TlsConnector::from(Arc::new(client)),
    )
}

/// Reads one reply byte by byte (so no TLS bytes are read as plaintext).
async fn raw_reply(s: &mut DuplexStream) -> String {
    let mut out = Vec::new();
    loop {
        let b = s.read_u8().await.unwrap();
        out.push(b);
        if out.ends_with(b"\r\n") {
            let text = String::from_utf8(out.clone()).unwrap();
            let last = text
                .trim_end()
                .rsplit("\r\n")
                .next()
                .unwrap_or("")
                .to_string();
            if last.as_bytes().get(3) != Some(&b'-') {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn starttls_discards_pipelined_plaintext_and_resets_state() {
    let (acceptor, connector) = tls_pair();
    let h = harness_tls(SmtpMode::Submission, |_| {}, Some(acceptor)).await;
    let (mut raw, task) = h.connect_raw("192.0.2.1", Shutdown::new());
    assert!(raw_reply(&mut raw).await.starts_with("220 "));
    raw.write_all(b"EHLO client.example\r\n").await.unwrap();
    let ehlo = raw_reply(&mut raw).await;
    assert!(
        ehlo.contains("STARTTLS\r\n") && !ehlo.contains("AUTH"),
        "{ehlo:?}"
    );
    // An injection attempt: a command pipelined in clear after STARTTLS (CVE-2011-0411).
    raw.write_all(b"STARTTLS\r\nMAIL FROM:<evil@remote.example>\r\n")
        .await
        .unwrap();
    assert!(raw_reply(&mut raw).await.starts_with("220 2.0.0"));
    let name = ServerName::try_from("mx.example.com").unwrap();
    let tls = connector.connect(name, raw).await.unwrap();
    let mut c = Client::new(Box::new(tls), task);
    // Nothing from before TLS survives: no EHLO, so MAIL is out of sequence.
    c.cmd("MAIL FROM:<alice@example.com>", "503 5.5.1").await;
    let ehlo = c.cmd("EHLO client.example", "250-").await;
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"),
        "{ehlo:?}"
    );
    c.cmd("STARTTLS", "503 5.5.1").await;
    let plain = sasl::encode(format!("\0alice@example.com\0{PASSWORD}").as_bytes());
    c.cmd(&format!("AUTH PLAIN {plain}"), "235 2.7.0").await;
    c.cmd("MAIL FROM:<alice@example.com>", "250").await;
    c.cmd("RCPT TO:<bob@example.com>", "250").await;
    c.cmd("DATA", "354").await;
    c.send(b"From: alice@example.com\r\nSubject: tls\r\n\r\nsecret\r\n.\r\n")
        .await;
    c.expect("250 2.0.0 Ok: queued").await;
    c.cmd("QUIT", "221").await;
    let msg = String::from_utf8(h.inbox(h.bob).await.remove(0)).unwrap();
    assert!(msg.contains(" with ESMTPSA id "), "{msg:?}");
}

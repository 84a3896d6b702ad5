//! STLS (RFC 2595 §4) with a real TLS handshake over `tokio::io::duplex`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, PASSWORD, USER};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use server_kit::Shutdown;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn tls_pair() -> (tokio_rustls::TlsAcceptor, tokio_rustls::TlsConnector) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        tokio_rustls::TlsConnector::from(Arc::new(client)),
    )
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> String {
    let mut buf = String::new();
    tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut buf))
        .await
        .unwrap()
        .unwrap();
    buf
}

async fn capa<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Vec<String> {
    assert_eq!(read_line(r).await, "+OK Capability list follows\r\n");
    let mut caps = Vec::new();
    loop {
        let line = read_line(r).await;
        if line == ".\r\n" {
            return caps;
        }
        caps.push(line.trim_end().to_string());
    }
}

#[tokio::test]
async fn stls_upgrades_discards_pipelined_and_changes_capa() {
    let (acceptor, connector) = tls_pair();
    let h = Harness::build(|_| {}, Some(acceptor)).await;
    h.deliver(b"Subject: x\r\n\r\nhi\r\n").await;
    // From the network: passwords only after STLS.
    let mut c = h.connect_from("192.0.2.9:1234", Shutdown::new()).await;
    c.send("CAPA").await;
    let caps = capa(&mut c.r).await;
    assert!(caps.contains(&"STLS".to_string()), "{caps:?}");
    assert!(!caps.contains(&"USER".to_string()), "{caps:?}");

    // "CAPA" pipelined behind STLS in plaintext must be discarded (RFC 2595 §3.1), or it
    // would corrupt the handshake or be answered inside TLS.
    c.send_raw(b"STLS\r\nCAPA\r\n").await;
    assert_eq!(c.line().await, "+OK Begin TLS negotiation");
    let common::Client { r, w, task } = c;
    let plain = r.into_inner().unsplit(w);
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), plain)
        .await
        .expect("handshake");
    let mut tls = BufReader::new(tls);

    tls.write_all(b"CAPA\r\n").await.unwrap();
    tls.flush().await.unwrap();
    let caps = capa(&mut tls).await;
    assert!(!caps.contains(&"STLS".to_string()), "{caps:?}");
    assert!(caps.contains(&"USER".to_string()), "{caps:?}");
    assert!(caps.contains(&"SASL PLAIN LOGIN".to_string()), "{caps:?}");

    tls.write_all(b"STLS\r\n").await.unwrap();
    tls.flush().await.unwrap();
    assert_eq!(read_line(&mut tls).await, "-ERR already using TLS\r\n");

    tls.write_all(format!("USER {USER}\r\nPASS {PASSWORD}\r\nSTLS\r\nQUIT\r\n").as_bytes())
        .await
        .unwrap();
    tls.flush().await.unwrap();
    assert_eq!(read_line(&mut tls).await, "+OK send PASS\r\n");
    assert!(read_line(&mut tls).await.starts_with("+OK maildrop has 1"));
    assert_eq!(
        read_line(&mut tls).await,
        "-ERR STLS is only allowed before login\r\n"
    );
    assert_eq!(read_line(&mut tls).await, "+OK yubin POP3 signing off\r\n");
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

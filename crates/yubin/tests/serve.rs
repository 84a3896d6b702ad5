//! `yubin serve` as a child process: greetings on every listener, implicit TLS with the
//! generated certificate, connection limits, graceful shutdown and bind errors.

mod common;

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use common::{Env, connect, free_port, read_line, read_rest, reader};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

const NAMES: [&str; 7] = [
    "smtp",
    "submission",
    "submissions",
    "pop3",
    "pop3s",
    "imap",
    "imaps",
];

/// Seven free ports on 127.0.0.1 and the `[listen]` section using them.
fn listen_section() -> (Vec<(&'static str, SocketAddr)>, String) {
    let mut addrs = Vec::new();
    let mut toml = String::from("[listen]\n");
    for name in NAMES {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        toml.push_str(&format!("{name} = [\"{addr}\"]\n"));
        addrs.push((name, addr));
    }
    (addrs, toml)
}

fn greeting_prefix(name: &str) -> &'static str {
    match name {
        "smtp" | "submission" | "submissions" => "220 ",
        "pop3" | "pop3s" => "+OK",
        _ => "* OK",
    }
}

/// A TLS client that trusts only the server's generated self-signed certificate.
fn tls_client(env: &Env) -> Arc<rustls::ClientConfig> {
    let cert = env.data_dir().join("tls/cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

#[test]
fn serves_every_listener_and_shuts_down_gracefully() {
    let (addrs, listen) = listen_section();
    let env = Env::new(&listen);
    let mut server = env.serve();

    for &(name, addr) in &addrs {
        let stream = connect(addr, &mut server);
        let line = if name.ends_with('s') {
            // Implicit TLS: the handshake (verified against the generated certificate, for
            // the name localhost) comes first, then the greeting inside TLS.
            let conn = rustls::ClientConnection::new(
                tls_client(&env),
                ServerName::try_from("localhost").unwrap(),
            )
            .unwrap();
            let mut tls = BufReader::new(rustls::StreamOwned::new(conn, stream));
            let line = read_line(&mut tls);
            let version = tls.get_ref().conn.protocol_version();
            assert!(
                matches!(
                    version,
                    Some(rustls::ProtocolVersion::TLSv1_3 | rustls::ProtocolVersion::TLSv1_2)
                ),
                "{version:?}"
            );
            line
        } else {
            read_line(&mut reader(stream))
        };
        assert!(
            line.starts_with(greeting_prefix(name)),
            "{name} on {addr} greeted {line:?}"
        );
    }
    assert!(env.data_dir().join("tls/cert.pem").exists());
    assert!(env.data_dir().join("tls/key.pem").exists());
    let log = server.log();
    assert!(log.contains("self-signed"), "{log}");
    assert!(log.contains("yubin domain add example.com"), "{log}");
    for &(_, addr) in &addrs {
        assert!(log.contains(&addr.to_string()), "{addr} not logged: {log}");
    }

    // An SMTP client connected during shutdown is told 421.
    let smtp = addrs[0].1;
    let mut client = reader(connect(smtp, &mut server));
    assert!(read_line(&mut client).starts_with("220 "));
    server.sigterm();
    let status = server
        .wait_exit(Duration::from_secs(8))
        .unwrap_or_else(|| panic!("no exit after SIGTERM: {}", server.log()));
    assert!(status.success(), "{status}: {}", server.log());
    let rest = read_rest(&mut client);
    assert!(rest.starts_with("421"), "got {rest:?}");
    let log = server.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("shutdown complete"), "{log}");

    // A second start reuses the certificate.
    let cert = std::fs::read(env.data_dir().join("tls/cert.pem")).unwrap();
    let mut again = env.serve();
    drop(connect(smtp, &mut again));
    assert_eq!(
        std::fs::read(env.data_dir().join("tls/cert.pem")).unwrap(),
        cert
    );
}

#[test]
fn busy_port_is_a_one_line_error() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let env = Env::new(&format!(
        "[listen]\nsmtp = [\"{addr}\"]\nsubmission = []\nsubmissions = []\npop3 = []\npop3s = []\nimap = []\nimaps = []\n"
    ));
    let mut server = env.serve();
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("serve should exit");
    assert!(!status.success());
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("cannot listen on"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains(&format!("cannot listen on {addr} for smtp")),
        "{line}"
    );
    assert!(line.contains("another server is using it"), "{line}");
    drop(busy);
}

#[test]
fn over_the_per_ip_limit_clients_get_a_protocol_refusal() {
    let (addrs, listen) = listen_section();
    // Loopback is trusted (exempt from per-address limits) by default: trust nobody here.
    let env = Env::new(&format!(
        "{listen}[limits]\nmax_connections_per_ip = 1\ntrusted_networks = []\n\
         [antispam]\npregreet_delay_ms = 0\n"
    ));
    let mut server = env.serve();
    let smtp = addrs[0].1;
    let pop3 = addrs[3].1;
    let imap = addrs[5].1;

    let mut first = reader(connect(smtp, &mut server));
    assert!(read_line(&mut first).starts_with("220 "));

    let mut second = reader(connect(smtp, &mut server));
    assert_eq!(
        read_rest(&mut second),
        "421 4.7.0 mail.test Too many connections, try again later\r\n"
    );
    let mut p = reader(connect(pop3, &mut server));
    assert_eq!(
        read_rest(&mut p),
        "-ERR [SYS/TEMP] Too many connections\r\n"
    );
    let mut i = reader(connect(imap, &mut server));
    assert_eq!(read_rest(&mut i), "* BYE Too many connections\r\n");

    // When the first session ends its slot is free again.
    first.get_mut().write_all(b"QUIT\r\n").unwrap();
    assert!(read_rest(&mut first).starts_with("221"));
    let mut retry = None;
    for _ in 0..50 {
        let mut c = reader(connect(smtp, &mut server));
        let line = read_line(&mut c);
        if line.starts_with("220 ") {
            retry = Some(line);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(retry.is_some(), "slot was not released");
}

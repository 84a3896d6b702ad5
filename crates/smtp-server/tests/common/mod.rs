//! Test harness: a real SQLite store in a temporary directory, an SMTP session over
//! `tokio::io::duplex`, and a small line-oriented client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mail_types::{Address, Domain};
use server_kit::{BoxStream, ConnInfo, Shutdown};
use smtp_server::{SmtpConfig, SmtpMode, SmtpServer};
use store::{Directory, MailStore, QueueStore};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse";

/// argon2 is slow in debug builds: hash once per test binary.
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| auth::hash_password(PASSWORD))
}

fn scram_credentials() -> &'static str {
    static SCRAM: OnceLock<String> = OnceLock::new();
    SCRAM.get_or_init(|| auth::scram_credentials(PASSWORD))
}

pub struct Harness {
    pub store: Arc<store_sqlite::SqliteStore>,
    pub server: Arc<SmtpServer>,
    pub alice: store::AccountId,
    pub bob: store::AccountId,
    _dir: tempfile::TempDir,
}

pub fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

/// A store with `example.com`, users alice and bob, and alias `team@example.com` → both.
pub async fn harness(mode: SmtpMode, tweak: impl FnOnce(&mut SmtpConfig)) -> Harness {
    harness_tls(mode, tweak, None).await
}

/// [`harness`] with a TLS acceptor for STARTTLS.
pub async fn harness_tls(
    mode: SmtpMode,
    tweak: impl FnOnce(&mut SmtpConfig),
    tls: Option<server_kit::TlsAcceptor>,
) -> Harness {
    harness_with(mode, tweak, tls, false).await
}

/// [`harness_tls`], with the store's own outbound queue when `outbound` (inspect it with
/// `store.list_queue()`). alice has SCRAM credentials, bob does not.
pub async fn harness_with(
    mode: SmtpMode,
    tweak: impl FnOnce(&mut SmtpConfig),
    tls: Option<server_kit::TlsAcceptor>,
    outbound: bool,
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    store
        .add_domain(&Domain::parse("example.com").unwrap())
        .await
        .unwrap();
    let hash = password_hash();
    let alice = store
        .add_user(&addr("alice@example.com"), hash)
        .await
        .unwrap();
    let bob = store
        .add_user(&addr("bob@example.com"), hash)
        .await
        .unwrap();
    store
        .add_alias(
            "team@example.com",
            &[addr("alice@example.com"), addr("bob@example.com")],
        )
        .await
        .unwrap();
    store
        .set_scram(&addr("alice@example.com"), scram_credentials())
        .await
        .unwrap();
    let mut config = SmtpConfig::new("mx.example.com", mode);
    tweak(&mut config);
    let server = Arc::new(SmtpServer {
        config,
        store: store.clone(),
        auth: auth::Authenticator::new(store.clone(), Duration::from_millis(5)),
        tls,
        outbound: outbound.then(|| store.clone() as Arc<dyn QueueStore>),
        rate: smtp_server::RateLimiter::new(store.clone()),
        antispam: None,
        inbound_auth: None,
    });
    Harness {
        store,
        server,
        alice,
        bob,
        _dir: dir,
    }
}

impl Harness {
    /// Starts a session as if `peer` connected; reads and checks the greeting.
    pub async fn connect(&self, peer: &str) -> Client {
        self.connect_with(peer, Shutdown::new()).await
    }

    pub async fn connect_with(&self, peer: &str, shutdown: Shutdown) -> Client {
        let (client, task) = self.connect_raw(peer, shutdown);
        let mut c = Client::new(Box::new(client), task);
        c.expect("220 mx.example.com ESMTP yubin").await;
        c
    }

    /// Starts a session; returns the client's end of the stream before the greeting.
    pub fn connect_raw(&self, peer: &str, shutdown: Shutdown) -> (DuplexStream, JoinHandle<()>) {
        let (client, server_side) = tokio::io::duplex(1 << 20);
        let info = ConnInfo {
            id: 1,
            peer: format!("{peer}:40000").parse::<SocketAddr>().unwrap(),
            local: "192.0.2.100:25".parse().unwrap(),
            listener: "smtp",
            slot: Default::default(),
        };
        let task = tokio::spawn(smtp_server::serve(
            self.server.clone(),
            Box::new(server_side),
            false,
            info,
            shutdown,
        ));
        (client, task)
    }

    /// The bodies of all messages in an account's INBOX, in UID order.
    pub async fn inbox(&self, account: store::AccountId) -> Vec<Vec<u8>> {
        let mb = self
            .store
            .find_mailbox(account, "INBOX")
            .await
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        for m in self.store.list_messages(mb.id).await.unwrap() {
            let mut r = self.store.open_blob(&m.blob).await.unwrap();
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).await.unwrap();
            assert_eq!(buf.len() as u64, m.size);
            out.push(buf);
        }
        out
    }
}

pub struct Client {
    rd: BufReader<ReadHalf<BoxStream>>,
    wr: WriteHalf<BoxStream>,
    task: JoinHandle<()>,
}

impl Client {
    /// A client over any stream (plain duplex, or TLS after STARTTLS).
    pub fn new(stream: BoxStream, task: JoinHandle<()>) -> Client {
        let (rd, wr) = tokio::io::split(stream);
        Client {
            rd: BufReader::new(rd),
            wr,
            task,
        }
    }

    pub async fn send(&mut self, data: &[u8]) {
        self.wr.write_all(data).await.unwrap();
    }

    /// Sends bytes; false once the server has closed the connection.
    pub async fn try_send(&mut self, data: &[u8]) -> bool {
        self.wr.write_all(data).await.is_ok() && self.wr.flush().await.is_ok()
    }

    /// Reads one complete (possibly multi-line) reply, lines joined with CRLF.
    pub async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(20), self.rd.read_line(&mut line))
                .await
                .expect("reply timed out")
                .unwrap();
            assert!(n > 0, "connection closed; got so far: {all:?}");
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    /// Reads a reply and asserts that it starts with `prefix`; returns it.
    pub async fn expect(&mut self, prefix: &str) -> String {
        let r = self.reply().await;
        assert!(r.starts_with(prefix), "expected {prefix:?}, got {r:?}");
        r
    }

    /// Sends one command line (CRLF added) and checks the reply's start.
    pub async fn cmd(&mut self, line: &str, prefix: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.expect(prefix).await
    }

    /// Asserts that the server closed the connection (EOF) and the session task ended.
    pub async fn expect_closed(mut self) {
        let mut rest = String::new();
        let n = tokio::time::timeout(Duration::from_secs(20), self.rd.read_to_string(&mut rest))
            .await
            .expect("no EOF")
            .unwrap();
        assert_eq!(n, 0, "unexpected data before EOF: {rest:?}");
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("session did not end")
            .unwrap();
    }
}

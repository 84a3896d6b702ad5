//! Test harness: a real SQLite store in a temporary directory, one account, and a POP3 client
//! over `tokio::io::duplex`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mail_types::{Address, Domain};
use pop3_server::{Pop3Config, Pop3Server};
use server_kit::{ConnInfo, Shutdown};
use store::{AccountId, Directory, MailStore, Stored};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::task::JoinHandle;

pub const USER: &str = "alice@example.org";
pub const PASSWORD: &str = "correct horse battery";
const TIMEOUT: Duration = Duration::from_secs(20);

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Arc<store_sqlite::SqliteStore>,
    pub server: Arc<Pop3Server>,
    pub account: AccountId,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with_config(|_| {}).await
    }

    pub async fn with_config(adjust: impl FnOnce(&mut Pop3Config)) -> Harness {
        Harness::build(adjust, None).await
    }

    pub async fn build(
        adjust: impl FnOnce(&mut Pop3Config),
        tls: Option<server_kit::TlsAcceptor>,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = store_sqlite::open(dir.path()).unwrap();
        store
            .add_domain(&Domain::parse("example.org").unwrap())
            .await
            .unwrap();
        let hash = tokio::task::spawn_blocking(|| auth::hash_password(PASSWORD))
            .await
            .unwrap();
        let account = store
            .add_user(&Address::parse(USER).unwrap(), &hash)
            .await
            .unwrap();
        let mut config = Pop3Config::new("mail.example.org");
        adjust(&mut config);
        let server = Arc::new(Pop3Server {
            config,
            store: store.clone(),
            auth: auth::Authenticator::new(store.clone(), Duration::from_millis(5)),
            tls,
        });
        Harness {
            dir,
            store,
            server,
            account,
        }
    }

    pub async fn deliver(&self, message: &[u8]) -> Stored {
        let mut stored = self
            .store
            .deliver(Arc::new(message.to_vec()), 1_700_000_000, &[self.account])
            .await
            .unwrap();
        assert_eq!(stored.len(), 1);
        stored.remove(0)
    }

    /// A client connected from loopback over a plaintext connection.
    pub async fn connect(&self) -> Client {
        self.connect_from("127.0.0.1:40000", Shutdown::new()).await
    }

    pub async fn connect_from(&self, peer: &str, shutdown: Shutdown) -> Client {
        connect_to(&self.server, peer, shutdown).await
    }

    /// Connects and logs in with USER/PASS.
    pub async fn login(&self) -> Client {
        let mut c = self.connect().await;
        assert!(c.cmd(&format!("USER {USER}")).await.starts_with("+OK"));
        let r = c.cmd(&format!("PASS {PASSWORD}")).await;
        assert!(r.starts_with("+OK maildrop has"), "{r}");
        c
    }

    /// A POP3 server as another process on the same data directory would run it: its own
    /// store handle (writer thread, connections, memory), the same configuration.
    pub fn other_process(&self) -> Arc<Pop3Server> {
        let store = store_sqlite::open(self.dir.path()).unwrap();
        Arc::new(Pop3Server {
            config: self.server.config.clone(),
            store: store.clone(),
            auth: auth::Authenticator::new(store, Duration::from_millis(5)),
            tls: None,
        })
    }

    /// Connects to `server` and logs in with USER/PASS.
    pub async fn login_to(&self, server: &Arc<Pop3Server>) -> Client {
        let mut c = connect_to(server, "127.0.0.1:40000", Shutdown::new()).await;
        assert!(c.cmd(&format!("USER {USER}")).await.starts_with("+OK"));
        let r = c.cmd(&format!("PASS {PASSWORD}")).await;
        assert!(r.starts_with("+OK maildrop has"), "{r}");
        c
    }
}

/// A client of `server` connected from `peer` over a plaintext connection.
pub async fn connect_to(server: &Arc<Pop3Server>, peer: &str, shutdown: Shutdown) -> Client {
    let (client, server_side) = tokio::io::duplex(64 * 1024);
    let info = ConnInfo {
        id: 1,
        peer: peer.parse::<SocketAddr>().unwrap(),
        local: "127.0.0.1:110".parse().unwrap(),
        listener: "pop3",
        slot: Default::default(),
    };
    let task = tokio::spawn(pop3_server::serve(
        server.clone(),
        Box::new(server_side),
        false,
        info,
        shutdown,
    ));
    let (r, w) = tokio::io::split(client);
    let mut c = Client {
        r: BufReader::new(r),
        w,
        task,
    };
    assert_eq!(c.line().await, "+OK yubin POP3 ready");
    c
}

pub struct Client {
    pub r: BufReader<tokio::io::ReadHalf<DuplexStream>>,
    pub w: tokio::io::WriteHalf<DuplexStream>,
    pub task: JoinHandle<()>,
}

impl Client {
    pub async fn send(&mut self, line: &str) {
        self.w.write_all(line.as_bytes()).await.unwrap();
        self.w.write_all(b"\r\n").await.unwrap();
    }

    pub async fn send_raw(&mut self, data: &[u8]) {
        self.w.write_all(data).await.unwrap();
    }

    /// One reply line without its CRLF (which is asserted).
    pub async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        tokio::time::timeout(TIMEOUT, self.r.read_until(b'\n', &mut buf))
            .await
            .expect("reply in time")
            .unwrap();
        assert!(buf.ends_with(b"\r\n"), "line not CRLF-terminated: {buf:?}");
        buf.truncate(buf.len() - 2);
        String::from_utf8(buf).unwrap()
    }

    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(line).await;
        self.line().await
    }

    /// The raw bytes of a multi-line body up to and including the terminating `.` CRLF.
    pub async fn body(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let mut buf = Vec::new();
            tokio::time::timeout(TIMEOUT, self.r.read_until(b'\n', &mut buf))
                .await
                .expect("body in time")
                .unwrap();
            assert!(
                !buf.is_empty(),
                "connection closed inside a multi-line reply"
            );
            all.extend_from_slice(&buf);
            if buf == b".\r\n" {
                return all;
            }
        }
    }

    /// The lines of a multi-line body, without the terminator.
    pub async fn body_lines(&mut self) -> Vec<String> {
        let body = self.body().await;
        let text = String::from_utf8(body).unwrap();
        let mut lines: Vec<String> = text.split("\r\n").map(str::to_string).collect();
        // "...\r\n.\r\n" splits into [..., ".", ""]
        assert_eq!(lines.pop().as_deref(), Some(""));
        assert_eq!(lines.pop().as_deref(), Some("."));
        lines
    }

    /// Asserts that the server closed the connection, and waits for the session to end (its
    /// maildrop lock is released then).
    pub async fn expect_closed(mut self) {
        let mut rest = Vec::new();
        tokio::time::timeout(TIMEOUT, self.r.read_to_end(&mut rest))
            .await
            .expect("close in time")
            .unwrap();
        assert!(rest.is_empty(), "unexpected bytes: {rest:?}");
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .unwrap()
            .unwrap();
    }

    /// Drops the connection without QUIT and waits for the session to end.
    pub async fn disconnect(self) {
        let Client { r, w, task } = self;
        drop(r);
        drop(w);
        tokio::time::timeout(TIMEOUT, task).await.unwrap().unwrap();
    }
}

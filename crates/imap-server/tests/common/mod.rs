//! The session harness shared by the integration tests: a real store-sqlite in a temporary
//! directory, a server, and a line-oriented client over `tokio::io::duplex`.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use imap_server::{ImapConfig, ImapServer};
use server_kit::{ConnInfo, ConnSlot, Shutdown};
use store::{Directory, MailStore};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

pub struct Client {
    pub r: BufReader<tokio::io::ReadHalf<DuplexStream>>,
    pub w: tokio::io::WriteHalf<DuplexStream>,
}

impl Client {
    pub async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), self.r.read_until(b'\n', &mut buf))
            .await
            .expect("timely response")
            .unwrap();
        String::from_utf8_lossy(&buf)
            .trim_end_matches("\r\n")
            .to_string()
    }
    /// Reads up to and including the tagged reply; literals are read inline.
    pub async fn until(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut l = self.line().await;
            // `{n}` at the end: read the literal and the rest of the line into this one.
            while let Some(n) = l
                .strip_suffix('}')
                .and_then(|x| x.rsplit_once('{'))
                .and_then(|(_, n)| n.parse::<usize>().ok())
            {
                let mut lit = vec![0; n];
                self.r.read_exact(&mut lit).await.unwrap();
                l.push_str("\r\n");
                l.push_str(&String::from_utf8_lossy(&lit));
                l.push_str(&self.line().await);
            }
            let done = l.starts_with(&format!("{tag} "));
            lines.push(l);
            if done {
                return lines;
            }
        }
    }
    pub async fn send(&mut self, data: &str) {
        self.w.write_all(data.as_bytes()).await.unwrap();
    }
    pub async fn cmd(&mut self, tag: &str, rest: &str) -> Vec<String> {
        self.send(&format!("{tag} {rest}\r\n")).await;
        self.until(tag).await
    }
    /// The one untagged line of a command that starts with `prefix`; the command must end
    /// with a tagged OK.
    pub async fn one(&mut self, tag: &str, cmd: &str, prefix: &str) -> String {
        let r = self.cmd(tag, cmd).await;
        assert!(
            r.last()
                .is_some_and(|l| l.starts_with(&format!("{tag} OK"))),
            "{cmd}: {r:?}"
        );
        let hits: Vec<&String> = r.iter().filter(|l| l.starts_with(prefix)).collect();
        assert_eq!(hits.len(), 1, "{cmd}: {r:?}");
        hits[0].clone()
    }
}

/// A session on `server` over an in-memory pipe, its greeting read; `slot` stands for the
/// listener's connection slot.
pub async fn connect_to(server: Arc<ImapServer>, slot: ConnSlot) -> Client {
    let (client, server_side) = tokio::io::duplex(256 * 1024);
    let info = ConnInfo {
        id: 1,
        peer: "127.0.0.1:5000".parse().unwrap(),
        local: "127.0.0.1:143".parse().unwrap(),
        listener: "imap",
        slot,
    };
    tokio::spawn(imap_server::serve(
        server,
        Box::new(server_side),
        false,
        info,
        Shutdown::new(),
    ));
    let (r, w) = tokio::io::split(client);
    let mut c = Client {
        r: BufReader::new(r),
        w,
    };
    assert!(c.line().await.starts_with("* OK [CAPABILITY "));
    c
}

/// A message with the header fields `headers` and `body`.
pub fn message(headers: &[(&str, &str)], body: &str) -> String {
    let mut m = String::new();
    for (k, v) in headers {
        m.push_str(&format!("{k}: {v}\r\n"));
    }
    m.push_str("\r\n");
    m.push_str(body);
    m
}

/// A short message with just a sender and `subject`.
pub fn plain(subject: &str) -> String {
    message(
        &[("From", "x@example.org"), ("Subject", subject)],
        "hello\r\n",
    )
}

pub struct Env {
    pub store: Arc<store_sqlite::SqliteStore>,
    pub server: Arc<ImapServer>,
    pub account: store::AccountId,
    _dir: tempfile::TempDir,
}

pub async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    store
        .add_domain(&mail_types::Domain::parse("example.org").unwrap())
        .await
        .unwrap();
    let account = store
        .add_user(
            &mail_types::Address::parse("alice@example.org").unwrap(),
            &auth::hash_password("secret"),
        )
        .await
        .unwrap();
    let server = Arc::new(ImapServer {
        config: ImapConfig::new("mail.example.org"),
        store: store.clone(),
        auth: auth::Authenticator::new(store.clone(), Duration::from_millis(5)),
        tls: None,
        recent: Default::default(),
    });
    Env {
        store,
        server,
        account,
        _dir: dir,
    }
}

impl Env {
    pub async fn connect(&self) -> Client {
        connect_to(self.server.clone(), ConnSlot::default()).await
    }
    /// A server over this test store with its configuration changed by `tune`.
    pub fn server_with(&self, tune: impl FnOnce(&mut ImapConfig)) -> Arc<ImapServer> {
        let mut config = ImapConfig::new("mail.example.org");
        tune(&mut config);
        Arc::new(ImapServer {
            config,
            store: self.store.clone(),
            auth: auth::Authenticator::new(self.store.clone(), Duration::from_millis(5)),
            tls: None,
            recent: Default::default(),
        })
    }
    /// Serves this environment's sessions from now on with the configuration changed by `tune`.
    pub fn reconfigure(&mut self, tune: impl FnOnce(&mut ImapConfig)) {
        self.server = self.server_with(tune);
    }
    pub async fn login(&self) -> Client {
        let mut c = self.connect().await;
        let r = c.cmd("l1", "LOGIN alice@example.org secret").await;
        assert!(r[0].starts_with("l1 OK [CAPABILITY IMAP4rev1"), "{r:?}");
        c
    }
    /// Delivers with internal date 2023-11-14 22:13:20 UTC.
    pub async fn deliver(&self, msg: &str) {
        self.deliver_at(msg, 1_700_000_000).await
    }
    /// A second account `address` with `password`, holding `msg` in its INBOX when given.
    pub async fn add_user(
        &self,
        address: &str,
        password: &str,
        msg: Option<&str>,
    ) -> store::AccountId {
        let id = self
            .store
            .add_user(
                &mail_types::Address::parse(address).unwrap(),
                &auth::hash_password(password),
            )
            .await
            .unwrap();
        if let Some(m) = msg {
            self.store
                .deliver(Arc::new(m.as_bytes().to_vec()), 1_700_000_000, &[id])
                .await
                .unwrap();
        }
        id
    }
    pub async fn deliver_at(&self, msg: &str, date: i64) {
        self.store
            .deliver(Arc::new(msg.as_bytes().to_vec()), date, &[self.account])
            .await
            .unwrap();
    }
}

//! RFC 2920 PIPELINING in the outbound client, through the whole engine: messages are queued
//! in a real SQLite store, the engine delivers them to a scripted SMTP peer on loopback, and the
//! tests check both what the peer received (one group, or one command at a time) and what the
//! queue recorded for each recipient (delivered / failed / pending, the reply text) — the
//! results DSNs are built from.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use queue::dns::Dns;
use queue::{DnsOverride, Engine, QueueConfig};
use store::{
    DsnNotify, OutboundEnvelope, OutboundRecipient, QueueId, QueueStore, QueuedRecipient,
    RecipientStatus,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long the peer waits for the rest of a pipelined group before deciding that the client
/// is waiting for a reply (it would wait forever: no reply comes before the whole group).
const GROUP_WAIT: Duration = Duration::from_secs(3);
/// How long the peer holds back a reply without PIPELINING, watching for further commands.
const QUIET: Duration = Duration::from_millis(100);
/// Any single read or wait of the peer or the test.
const LIMIT: Duration = Duration::from_secs(10);

/// A scripted SMTP server for one connection. It records every line the client sent.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
    pipelining: bool,
    seen: Vec<String>,
}

impl Peer {
    /// Accepts the engine's connection, greets, and answers EHLO, listing PIPELINING or not.
    async fn accept(listener: &TcpListener, pipelining: bool) -> Peer {
        let (stream, _) = tokio::time::timeout(LIMIT, listener.accept())
            .await
            .expect("the engine did not connect")
            .expect("accept");
        let mut peer = Peer {
            stream,
            buf: Vec::new(),
            pipelining,
            seen: Vec::new(),
        };
        peer.write("220 peer.b.test ESMTP\r\n").await;
        let ehlo = peer.read_line(LIMIT).await.expect("EHLO");
        assert!(ehlo.starts_with("EHLO "), "{ehlo:?}");
        peer.write(if pipelining {
            "250-peer.b.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n"
        } else {
            "250-peer.b.test\r\n250 8BITMIME\r\n"
        })
        .await;
        peer
    }

    async fn write(&mut self, text: &str) {
        self.stream.write_all(text.as_bytes()).await.expect("write");
    }

    /// The next line from the client (without CRLF), or `None` if none came within `wait`.
    async fn read_line(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(nl) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..nl]).into_owned();
                self.buf.drain(..nl + 2);
                self.seen.push(line.clone());
                return Some(line);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .ok()?
                .expect("read");
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whatever the client sent that has not been read yet, without waiting.
    fn unread(&mut self) -> Vec<u8> {
        let mut extra = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = self.stream.try_read(&mut chunk) {
            extra.extend_from_slice(&chunk[..n]);
        }
        extra
    }

    /// The client's next commands, one per reply in `replies`. With PIPELINING all of them
    /// must arrive before the peer sends any reply (RFC 2920 §3.1: one group), and the replies
    /// then go out in one write; without it, each command must come alone: the client sends
    /// nothing more until it has the reply (RFC 5321 §4.3.1).
    async fn exchange(&mut self, replies: &[&str]) -> Vec<String> {
        if self.pipelining {
            let cmds = self.read_group(replies.len()).await;
            let all: String = replies.iter().map(|r| format!("{r}\r\n")).collect();
            self.write(&all).await;
            cmds
        } else {
            let mut cmds = Vec::new();
            for reply in replies {
                let cmd = self.read_line(LIMIT).await.expect("a command");
                tokio::time::sleep(QUIET).await;
                let extra = self.unread();
                assert!(
                    extra.is_empty(),
                    "the client pipelined to a server without PIPELINING: {:?} came before \
                     the reply to {cmd:?}",
                    String::from_utf8_lossy(&extra)
                );
                cmds.push(cmd);
                self.write(&format!("{reply}\r\n")).await;
            }
            cmds
        }
    }

    /// `n` commands of a pipelined group, before any reply.
    async fn read_group(&mut self, n: usize) -> Vec<String> {
        let mut cmds = Vec::new();
        while cmds.len() < n {
            match self.read_line(GROUP_WAIT).await {
                Some(line) => cmds.push(line),
                None => panic!(
                    "the client stopped before the end of the group, waiting for a reply: \
                     got only {cmds:?}"
                ),
            }
        }
        cmds
    }

    /// Message lines after a 354, up to the final dot (RFC 5321 §4.1.1.4).
    async fn read_data(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line(LIMIT).await.expect("message data");
            if line == "." {
                return lines;
            }
            lines.push(line);
        }
    }

    /// QUIT, answered; then the client must close.
    async fn quit(&mut self) {
        let cmds = self.exchange(&["221 2.0.0 bye"]).await;
        assert_eq!(cmds, ["QUIT"]);
        assert_eq!(self.read_line(LIMIT).await, None, "data after QUIT");
    }
}

/// A queue in a temporary SQLite store, and an engine delivering `b.test` to a local port.
struct Setup {
    store: Arc<store_sqlite::SqliteStore>,
    listener: TcpListener,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_sqlite::open(dir.path()).expect("store");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Setup {
            store,
            listener,
            shutdown: CancellationToken::new(),
            _dir: dir,
        }
    }

    async fn enqueue(&self, recipients: &[&str], subject: &str) -> QueueId {
        let body = format!(
            "From: <alice@a.test>\r\nTo: <{}>\r\nSubject: {subject}\r\n\r\nHello.\r\n",
            recipients.join(">, <")
        );
        let env = OutboundEnvelope {
            sender: "alice@a.test".into(),
            recipients: recipients
                .iter()
                .map(|a| OutboundRecipient {
                    address: (*a).to_string(),
                    orcpt: None,
                    notify: DsnNotify::default(),
                })
                .collect(),
            envid: None,
            ret: None,
            account: None,
            smtputf8: false,
        };
        self.store
            .enqueue(Arc::new(body.into_bytes()), &env)
            .await
            .expect("enqueue")
    }

    /// Starts the engine (after the messages were queued, so that one task takes them all
    /// over one connection).
    fn start(&self) -> JoinHandle<()> {
        let mut config = QueueConfig::new("a.test");
        config.remote_port = self.listener.local_addr().expect("addr").port();
        config.connect_timeout = LIMIT;
        config.command_timeout = LIMIT;
        config.data_timeout = LIMIT;
        let dns = Dns::static_only(BTreeMap::from([(
            "b.test".to_string(),
            DnsOverride {
                a: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                ..DnsOverride::default()
            },
        )]));
        let engine =
            Engine::with_dns(config, self.store.clone(), self.store.clone(), dns).expect("engine");
        tokio::spawn(engine.run(self.shutdown.clone()))
    }

    /// The recipients of message `id` once each has had an attempt recorded.
    async fn settled(&self, id: QueueId) -> Vec<QueuedRecipient> {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            let msg = self
                .store
                .queued_message(id)
                .await
                .expect("queue")
                .expect("the message is queued");
            if msg.recipients.iter().all(|r| r.last_attempt.is_some()) {
                return msg.recipients;
            }
            assert!(tokio::time::Instant::now() < deadline, "no result: {msg:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The body of the one DSN (null sender) in the queue.
    async fn dsn(&self) -> String {
        let list = self.store.list_queue().await.expect("list");
        let dsns: Vec<_> = list.iter().filter(|m| m.sender.is_empty()).collect();
        assert_eq!(dsns.len(), 1, "one DSN expected: {list:?}");
        let body = self.store.queued_body(dsns[0].id).await.expect("body");
        String::from_utf8_lossy(&body).into_owned()
    }
}

fn status_of<'a>(rcpts: &'a [QueuedRecipient], address: &str) -> (RecipientStatus, &'a str) {
    let r = rcpts
        .iter()
        .find(|r| r.address == address)
        .expect("recipient");
    (r.status, r.last_error.as_deref().unwrap_or(""))
}

/// MAIL, RCPT carol (250), RCPT bob (550), DATA (354): the message reaches the peer for carol,
/// bob fails for good and gets a failure DSN, in both modes.
async fn one_recipient_refused(pipelining: bool) {
    let s = Setup::new().await;
    let id = s
        .enqueue(&["carol@b.test", "bob@b.test"], "one refused")
        .await;
    let engine = s.start();
    let mut peer = Peer::accept(&s.listener, pipelining).await;
    let cmds = peer
        .exchange(&[
            "250 2.1.0 sender ok",
            "250 2.1.5 carol ok",
            "550 5.1.1 no such user bob",
            "354 go ahead",
        ])
        .await;
    assert!(cmds[0].starts_with("MAIL FROM:<alice@a.test>"), "{cmds:?}");
    assert_eq!(
        cmds[1..],
        ["RCPT TO:<carol@b.test>", "RCPT TO:<bob@b.test>", "DATA"]
    );
    let data = peer.read_data().await;
    assert!(
        data.contains(&"Subject: one refused".to_string()),
        "{data:?}"
    );
    peer.write("250 2.0.0 queued as 1\r\n").await;
    peer.quit().await;

    let rcpts = s.settled(id).await;
    assert_eq!(
        status_of(&rcpts, "carol@b.test"),
        (RecipientStatus::Delivered, "")
    );
    assert_eq!(
        status_of(&rcpts, "bob@b.test"),
        (RecipientStatus::Failed, "550 5.1.1 no such user bob")
    );
    let dsn = s.dsn().await;
    assert!(dsn.contains("Final-Recipient: rfc822; bob@b.test"), "{dsn}");
    assert!(
        !dsn.contains("Final-Recipient: rfc822; carol@b.test"),
        "{dsn}"
    );
    s.shutdown.cancel();
    engine.await.expect("engine");
}

#[tokio::test]
async fn pipelined_group_with_one_recipient_refused() {
    one_recipient_refused(true).await;
}

#[tokio::test]
async fn without_pipelining_one_command_at_a_time() {
    one_recipient_refused(false).await;
}

/// RFC 2920 §3.1: every RCPT refused, yet the server answers the pipelined DATA with 354. The
/// client must end the data at once with a lone dot (no message content) and reset.
#[tokio::test]
async fn pipelined_data_accepted_after_every_recipient_refused() {
    let s = Setup::new().await;
    let id = s.enqueue(&["carol@b.test", "bob@b.test"], "nobody").await;
    let engine = s.start();
    let mut peer = Peer::accept(&s.listener, true).await;
    let cmds = peer
        .exchange(&[
            "250 2.1.0 sender ok",
            "550 5.1.1 no such user carol",
            "450 4.2.1 bob is busy",
            "354 go ahead",
        ])
        .await;
    assert_eq!(
        cmds[1..],
        ["RCPT TO:<carol@b.test>", "RCPT TO:<bob@b.test>", "DATA"]
    );
    let data = peer.read_data().await;
    assert!(data.is_empty(), "message sent to nobody: {data:?}");
    peer.write("554 5.5.1 no valid recipients\r\n").await;
    assert_eq!(peer.exchange(&["250 2.0.0 reset"]).await, ["RSET"]);
    peer.quit().await;
    assert!(
        !peer.seen.iter().any(|l| l.contains("nobody")),
        "{:?}",
        peer.seen
    );

    let rcpts = s.settled(id).await;
    assert_eq!(
        status_of(&rcpts, "carol@b.test"),
        (RecipientStatus::Failed, "550 5.1.1 no such user carol")
    );
    // 4xx: still pending, to be retried.
    assert_eq!(
        status_of(&rcpts, "bob@b.test"),
        (RecipientStatus::Pending, "450 4.2.1 bob is busy")
    );
    s.shutdown.cancel();
    engine.await.expect("engine");
}

/// Two messages over one connection: DATA of the first is refused, the client resets (and
/// waits for the reply), and the second transaction then gets its own replies.
async fn rset_between_messages(pipelining: bool) {
    let s = Setup::new().await;
    let first = s.enqueue(&["carol@b.test"], "first").await;
    let second = s.enqueue(&["dave@b.test"], "second").await;
    let engine = s.start();
    let mut peer = Peer::accept(&s.listener, pipelining).await;
    let cmds = peer
        .exchange(&[
            "250 2.1.0 ok",
            "250 2.1.5 ok",
            "554 5.7.1 refused by policy",
        ])
        .await;
    assert_eq!(cmds[2], "DATA");
    assert_eq!(peer.exchange(&["250 2.0.0 reset"]).await, ["RSET"]);
    let cmds2 = peer
        .exchange(&["250 2.1.0 ok", "250 2.1.5 ok", "354 go ahead"])
        .await;
    assert!(cmds2[0].starts_with("MAIL FROM:"), "{cmds2:?}");
    assert_eq!(cmds2[2], "DATA");
    assert!(!peer.read_data().await.is_empty());
    peer.write("250 2.0.0 queued\r\n").await;
    peer.quit().await;

    // The queue decides the order; the peer refused whichever came first.
    let (refused, delivered) = if cmds[1] == "RCPT TO:<carol@b.test>" {
        ((first, "carol@b.test"), (second, "dave@b.test"))
    } else {
        ((second, "dave@b.test"), (first, "carol@b.test"))
    };
    assert_eq!(cmds2[1], format!("RCPT TO:<{}>", delivered.1));
    assert_eq!(
        status_of(&s.settled(refused.0).await, refused.1),
        (RecipientStatus::Failed, "554 5.7.1 refused by policy")
    );
    assert_eq!(
        status_of(&s.settled(delivered.0).await, delivered.1),
        (RecipientStatus::Delivered, "")
    );
    s.shutdown.cancel();
    engine.await.expect("engine");
}

#[tokio::test]
async fn pipelined_rset_between_messages() {
    rset_between_messages(true).await;
}

#[tokio::test]
async fn serial_rset_between_messages() {
    rset_between_messages(false).await;
}

/// RFC 5321 §3.8: a 421 to the pipelined MAIL, then the server closes without answering the
/// rest of the group. The 421 is every recipient's (temporary) outcome.
#[tokio::test]
async fn pipelined_421_then_close() {
    let s = Setup::new().await;
    let id = s.enqueue(&["carol@b.test", "bob@b.test"], "closing").await;
    let engine = s.start();
    let mut peer = Peer::accept(&s.listener, true).await;
    let cmds = peer.read_group(4).await;
    assert_eq!(cmds[3], "DATA");
    peer.write("421 4.3.2 shutting down\r\n").await;
    drop(peer);

    let rcpts = s.settled(id).await;
    for a in ["carol@b.test", "bob@b.test"] {
        assert_eq!(
            status_of(&rcpts, a),
            (RecipientStatus::Pending, "421 4.3.2 shutting down")
        );
    }
    s.shutdown.cancel();
    engine.await.expect("engine");
}

/// RFC 5321 §4.3.2: DATA is answered 354 or with a failure. A 250 instead means the message
/// was never sent: it must not count as delivered (it stays queued as a temporary failure),
/// and the connection, whose state is unknown, is dropped without QUIT — in both modes.
async fn data_answered_250(pipelining: bool) {
    let s = Setup::new().await;
    let id = s.enqueue(&["carol@b.test"], "no 354").await;
    let engine = s.start();
    let mut peer = Peer::accept(&s.listener, pipelining).await;
    let cmds = peer
        .exchange(&["250 2.1.0 ok", "250 2.1.5 ok", "250 2.0.0 sure"])
        .await;
    assert_eq!(cmds[2], "DATA", "{cmds:?}");
    let rcpts = s.settled(id).await;
    let (status, error) = status_of(&rcpts, "carol@b.test");
    assert_eq!(status, RecipientStatus::Pending, "{error}");
    assert!(error.starts_with("451 4.5.0 "), "{error}");
    assert_eq!(
        peer.read_line(LIMIT).await,
        None,
        "nothing more on that connection"
    );
    s.shutdown.cancel();
    engine.await.expect("engine");
}

#[tokio::test]
async fn pipelined_data_answered_250_is_not_delivery() {
    data_answered_250(true).await;
}

#[tokio::test]
async fn serial_data_answered_250_is_not_delivery() {
    data_answered_250(false).await;
}

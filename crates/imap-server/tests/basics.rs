//! Greeting, capabilities, framing errors, STARTTLS refusal, timeouts over `tokio::io::duplex`.

use std::sync::Arc;
use std::time::Duration;

use imap_server::{ImapConfig, ImapServer};
use server_kit::{ConnInfo, Shutdown};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

struct Client {
    r: BufReader<tokio::io::ReadHalf<DuplexStream>>,
    w: tokio::io::WriteHalf<DuplexStream>,
    _dir: tempfile::TempDir,
}

impl Client {
    async fn line(&mut self) -> String {
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), self.r.read_until(b'\n', &mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(buf.ends_with(b"\r\n"), "{buf:?}");
        String::from_utf8(buf[..buf.len() - 2].to_vec()).unwrap()
    }
    async fn send(&mut self, data: &str) {
        self.w.write_all(data.as_bytes()).await.unwrap();
    }
    async fn cmd(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n")).await;
        self.line().await
    }
    async fn expect_closed(mut self) {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), self.r.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }
}

async fn connect(peer: &str, shutdown: Shutdown, idle: Duration) -> Client {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let mut config = ImapConfig::new("mail.example.org");
    config.idle_timeout = idle;
    config.max_line_length = 256;
    let server = Arc::new(ImapServer {
        config,
        store: store.clone(),
        auth: auth::Authenticator::new(store, Duration::from_millis(5)),
        tls: None,
        recent: Default::default(),
    });
    let (client, server_side) = tokio::io::duplex(16 * 1024);
    let info = ConnInfo {
        id: 7,
        peer: peer.parse().unwrap(),
        local: "127.0.0.1:143".parse().unwrap(),
        listener: "imap",
        slot: Default::default(),
    };
    tokio::spawn(imap_server::serve(
        server,
        Box::new(server_side),
        false,
        info,
        shutdown,
    ));
    let (r, w) = tokio::io::split(client);
    Client {
        r: BufReader::new(r),
        w,
        _dir: dir,
    }
}

#[tokio::test]
async fn greeting_capability_noop_logout() {
    let mut c = connect("127.0.0.1:4000", Shutdown::new(), Duration::from_secs(60)).await;
    assert_eq!(
        c.line().await,
        "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN AUTH=LOGIN SASL-IR ENABLE IDLE ID LITERAL+ NAMESPACE UNSELECT UIDPLUS MOVE SPECIAL-USE LIST-EXTENDED LIST-STATUS CHILDREN UTF8=ACCEPT ESEARCH SEARCHRES BINARY MULTIAPPEND CONDSTORE QRESYNC SAVEDATE SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT CONTEXT=SEARCH CONTEXT=SORT PARTIAL CATENATE URLAUTH URLAUTH=BINARY NOTIFY QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE APPENDLIMIT=52428800] yubin IMAP ready"
    );
    assert_eq!(
        c.cmd("a1 capability").await,
        "* CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN AUTH=LOGIN SASL-IR ENABLE IDLE ID LITERAL+ NAMESPACE UNSELECT UIDPLUS MOVE SPECIAL-USE LIST-EXTENDED LIST-STATUS CHILDREN UTF8=ACCEPT ESEARCH SEARCHRES BINARY MULTIAPPEND CONDSTORE QRESYNC SAVEDATE SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT CONTEXT=SEARCH CONTEXT=SORT PARTIAL CATENATE URLAUTH URLAUTH=BINARY NOTIFY QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE APPENDLIMIT=52428800"
    );
    assert_eq!(c.line().await, "a1 OK CAPABILITY completed");
    assert_eq!(c.cmd("a2 NOOP").await, "a2 OK NOOP completed");
    assert_eq!(
        c.cmd("a3 NOOP extra").await,
        "a3 BAD syntax error: unexpected characters at end of command"
    );
    // Wrong state: tagged BAD, the session goes on.
    assert_eq!(
        c.cmd("a4 SELECT INBOX").await,
        "a4 BAD command not valid in this state"
    );
    // A synchronizing literal gets a continuation request.
    assert_eq!(c.cmd("a5 LOGIN {5}").await, "+ Ready");
    assert_eq!(
        c.cmd("nobod x").await,
        "a5 NO [AUTHENTICATIONFAILED] invalid credentials"
    );
    // A non-synchronizing literal's bytes are data, never taken as a command.
    c.send("a6 LOGIN {11+}\r\nx1 LOGOUT\r\n secret\r\n").await;
    assert_eq!(
        c.line().await,
        "a6 NO [AUTHENTICATIONFAILED] invalid credentials"
    );
    assert_eq!(c.cmd("a7 STARTTLS").await, "a7 BAD STARTTLS not available");
    assert_eq!(c.cmd("").await, "* BAD malformed command");
    assert_eq!(c.cmd("a+ NOOP").await, "* BAD malformed command");
    assert_eq!(
        c.cmd(&format!("a8 NOOP {}", "x".repeat(300))).await,
        "a8 BAD line too long"
    );
    assert_eq!(c.cmd("a9 LOGOUT").await, "* BYE yubin IMAP logging out");
    assert_eq!(c.line().await, "a9 OK LOGOUT completed");
    c.expect_closed().await;
}

#[tokio::test]
async fn logindisabled_on_plaintext_network_connections() {
    let mut c = connect("192.0.2.1:4000", Shutdown::new(), Duration::from_secs(60)).await;
    assert_eq!(
        c.line().await,
        "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 LOGINDISABLED SASL-IR ENABLE IDLE ID LITERAL+ NAMESPACE UNSELECT UIDPLUS MOVE SPECIAL-USE LIST-EXTENDED LIST-STATUS CHILDREN UTF8=ACCEPT ESEARCH SEARCHRES BINARY MULTIAPPEND CONDSTORE QRESYNC SAVEDATE SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT CONTEXT=SEARCH CONTEXT=SORT PARTIAL CATENATE URLAUTH URLAUTH=BINARY NOTIFY QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE APPENDLIMIT=52428800] yubin IMAP ready"
    );
    assert_eq!(
        c.cmd("t CAPABILITY").await,
        "* CAPABILITY IMAP4rev1 IMAP4rev2 LOGINDISABLED SASL-IR ENABLE IDLE ID LITERAL+ NAMESPACE UNSELECT UIDPLUS MOVE SPECIAL-USE LIST-EXTENDED LIST-STATUS CHILDREN UTF8=ACCEPT ESEARCH SEARCHRES BINARY MULTIAPPEND CONDSTORE QRESYNC SAVEDATE SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT CONTEXT=SEARCH CONTEXT=SORT PARTIAL CATENATE URLAUTH URLAUTH=BINARY NOTIFY QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE APPENDLIMIT=52428800"
    );
    c.line().await;
    // RFC 9051 §6.2.3: no password on a plaintext network connection.
    assert_eq!(
        c.cmd("t2 LOGIN a b").await,
        "t2 NO [PRIVACYREQUIRED] use TLS before sending a password"
    );
    assert_eq!(
        c.cmd("t3 AUTHENTICATE PLAIN AGEAYg==").await,
        "t3 NO [PRIVACYREQUIRED] use TLS before sending a password"
    );
}

#[tokio::test]
async fn shutdown_and_idle_send_bye() {
    let shutdown = Shutdown::new();
    let mut c = connect("127.0.0.1:4000", shutdown.clone(), Duration::from_secs(60)).await;
    c.line().await;
    shutdown.cancel();
    assert_eq!(c.line().await, "* BYE server shutting down");
    c.expect_closed().await;

    let mut c = connect(
        "127.0.0.1:4000",
        Shutdown::new(),
        Duration::from_millis(200),
    )
    .await;
    c.line().await;
    assert_eq!(c.line().await, "* BYE autologout; idle for too long");
    c.expect_closed().await;
}

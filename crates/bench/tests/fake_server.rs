//! Runs the load generator and the idle test against a small in-process SMTP server that
//! records what it receives, so the client's bytes and the report's counts are checked.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use yubin_bench::client::Envelope;
use yubin_bench::{idle, load};

/// How the fake server answers.
#[derive(Clone, Copy)]
enum Mode {
    /// Accept everything.
    Accept,
    /// Reply 550 5.1.1 to every RCPT of an odd-numbered connection.
    RejectOddRcpt,
    /// Close the connection right after the banner.
    HangUpAfterBanner,
}

#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    active: AtomicUsize,
    max_active: AtomicUsize,
    /// DATA contents as received (before the terminating "." line).
    messages: Mutex<Vec<Vec<u8>>>,
    commands: Mutex<Vec<String>>,
}

async fn serve_one(sock: tokio::net::TcpStream, n: usize, mode: Mode, seen: Arc<Seen>) {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    if w.write_all(b"220 fake ESMTP\r\n").await.is_err() {
        return;
    }
    if matches!(mode, Mode::HangUpAfterBanner) {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let cmd = String::from_utf8_lossy(&line).trim_end().to_owned();
        let verb = cmd
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        seen.commands.lock().await.push(cmd.clone());
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-fake\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            "MAIL" => b"250 2.1.0 ok\r\n",
            "RCPT" if matches!(mode, Mode::RejectOddRcpt) && n % 2 == 1 => {
                b"550 5.1.1 no such user\r\n"
            }
            "RCPT" => b"250 2.1.5 ok\r\n",
            "DATA" => {
                let _ = w.write_all(b"354 go ahead\r\n").await;
                let mut data = Vec::new();
                loop {
                    line.clear();
                    if r.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == b".\r\n" {
                        break;
                    }
                    data.extend_from_slice(&line);
                }
                seen.messages.lock().await.push(data);
                b"250 2.0.0 stored\r\n"
            }
            "QUIT" => {
                let _ = w.write_all(b"221 2.0.0 bye\r\n").await;
                return;
            }
            _ => b"500 5.5.1 what\r\n",
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}

async fn fake_server(mode: Mode) -> (String, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let n = s.connections.fetch_add(1, Ordering::SeqCst);
            let now = s.active.fetch_add(1, Ordering::SeqCst) + 1;
            s.max_active.fetch_max(now, Ordering::SeqCst);
            let s2 = Arc::clone(&s);
            tokio::spawn(async move {
                serve_one(sock, n, mode, Arc::clone(&s2)).await;
                s2.active.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, seen)
}

fn config(addr: &str, messages: u64, concurrency: usize) -> load::LoadConfig {
    load::LoadConfig {
        addr: addr.to_owned(),
        messages,
        concurrency,
        size: 10240,
        envelope: Envelope {
            helo: "client.test".into(),
            from: "a@x.test".into(),
            to: "user1@bench.test".into(),
        },
        io_timeout: Duration::from_secs(10),
        pid: Some(std::process::id()),
        sample_every: Duration::from_millis(5),
        dkim: None,
    }
}

#[tokio::test]
async fn delivers_every_message_on_its_own_connection() {
    let (addr, seen) = fake_server(Mode::Accept).await;
    let report = load::run(config(&addr, 40, 4)).await.expect("run");
    assert_eq!(report.ok, 40);
    assert_eq!(report.failed(), 0);
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        40,
        "one connection per message"
    );
    assert!(
        seen.max_active.load(Ordering::SeqCst) <= 4,
        "never more than C at once"
    );
    let lat = report.data_end.expect("latencies");
    assert!(lat.p50 <= lat.p90 && lat.p90 <= lat.p99 && lat.p99 <= lat.max);
    assert!(report.rss_max_kib.unwrap_or(0) > 0 && report.hwm_kib.unwrap_or(0) > 0);

    let messages = seen.messages.lock().await;
    assert_eq!(messages.len(), 40);
    let mut ids = std::collections::HashSet::new();
    for m in messages.iter() {
        // About the requested size, CRLF-terminated, headers then blank line then body.
        assert!((10240..10240 + 200).contains(&m.len()), "size {}", m.len());
        assert!(m.ends_with(b"\r\n"));
        let text = std::str::from_utf8(m).expect("ascii");
        assert!(text.starts_with("Date: "));
        assert!(text.contains("\r\n\r\n"));
        let id = text
            .lines()
            .find(|l| l.starts_with("Message-ID:"))
            .expect("Message-ID")
            .to_owned();
        ids.insert(id);
    }
    assert_eq!(ids.len(), 40, "Message-IDs are unique");
    let commands = seen.commands.lock().await;
    assert!(commands.contains(&"MAIL FROM:<a@x.test>".to_owned()));
    assert!(commands.contains(&"RCPT TO:<user1@bench.test>".to_owned()));
    assert_eq!(commands.iter().filter(|c| *c == "QUIT").count(), 40);
}

#[tokio::test]
async fn groups_rejections_by_step_and_code() {
    let (addr, seen) = fake_server(Mode::RejectOddRcpt).await;
    let report = load::run(config(&addr, 10, 1)).await.expect("run");
    assert_eq!(report.ok, 5);
    assert_eq!(report.failures.get("RCPT 550 5.1.1"), Some(&5));
    assert_eq!(report.failures.len(), 1);
    assert_eq!(seen.messages.lock().await.len(), 5);
    assert!(
        report
            .json()
            .contains("\"failures\":{\"RCPT 550 5.1.1\":5}")
    );
}

#[tokio::test]
async fn a_server_that_hangs_up_is_a_failure_not_a_panic() {
    let (addr, _seen) = fake_server(Mode::HangUpAfterBanner).await;
    let report = load::run(config(&addr, 6, 3)).await.expect("run");
    assert_eq!(report.ok, 0);
    assert_eq!(report.failed(), 6);
    assert!(report.data_end.is_none());
    let keys: Vec<_> = report.failures.keys().collect();
    assert!(keys.iter().all(|k| k.starts_with("EHLO io:")), "{keys:?}");
}

#[tokio::test]
async fn nothing_listening_counts_connect_failures() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let report = load::run(config(&addr, 3, 2)).await.expect("run");
    assert_eq!(report.ok, 0);
    assert_eq!(
        report.failures.get("connect io: connection refused"),
        Some(&3)
    );
}

#[tokio::test]
async fn idle_connections_stay_open_and_are_counted() {
    let (addr, seen) = fake_server(Mode::Accept).await;
    let report = idle::run(idle::IdleConfig {
        addr,
        connections: 30,
        pid: std::process::id(),
        settle: Duration::from_millis(50),
        open_parallel: 8,
        io_timeout: Duration::from_secs(10),
    })
    .await
    .expect("idle run");
    assert_eq!((report.open, report.failed, report.still_open), (30, 0, 30));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 30);
    assert!(report.bytes_per_conn().is_some());
}

#[tokio::test]
async fn idle_notices_connections_the_server_closed() {
    let (addr, _seen) = fake_server(Mode::HangUpAfterBanner).await;
    let report = idle::run(idle::IdleConfig {
        addr,
        connections: 5,
        pid: std::process::id(),
        settle: Duration::from_millis(100),
        open_parallel: 5,
        io_timeout: Duration::from_secs(10),
    })
    .await
    .expect("idle run");
    assert_eq!((report.open, report.still_open), (5, 0));
}

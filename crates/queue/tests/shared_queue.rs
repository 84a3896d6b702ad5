//! The queue shared by two processes: two engines, each with its own handle on one SQLite data
//! directory (separate connections and writer threads, as two `yubin` processes would have),
//! deliver to an SMTP sink on loopback. Every message arrives exactly once; work claimed by a
//! process that died is taken over when its lease expires, not before. The same with two
//! nodes on one PostgreSQL database (the `*_on_postgres` tests, skipped without
//! `YUBIN_TEST_PG_URL`; see `scripts/pg-test-cluster`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use queue::dns::Dns;
use queue::{DnsOverride, Engine, QueueConfig};
use store::{
    ClaimLimits, DsnNotify, OutboundEnvelope, OutboundRecipient, QueueId, QueueStore,
    RecipientStatus, Store,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const LIMIT: Duration = Duration::from_secs(60);

/// Subjects the sink received, one entry per message whose data arrived (recorded before the
/// sink's reply to it).
type Received = Arc<Mutex<Vec<String>>>;

/// An SMTP server that accepts every message, on any number of connections at once, and
/// records each message's Subject when its data has arrived; it answers the end of the data
/// after `delay`.
async fn sink(delay: Duration) -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let received = serve_sink(listener, delay);
    (port, received)
}

/// Runs the sink on `listener`.
fn serve_sink(listener: TcpListener, delay: Duration) -> Received {
    let received: Received = Arc::default();
    let r = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let r = Arc::clone(&r);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink.test\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            let _ = write.write_all(b"354 go ahead\r\n").await;
                            let mut subject = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                if let Some(s) = l.strip_prefix("Subject: ") {
                                    subject = s.to_string();
                                }
                            }
                            r.lock().unwrap().push(subject);
                            tokio::time::sleep(delay).await;
                            b"250 2.0.0 queued\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                            break;
                        }
                        _ => b"250 2.0.0 ok\r\n",
                    };
                    if write.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    received
}

fn start<S: QueueStore + Store + 'static>(
    store: &Arc<S>,
    port: u16,
    lease: Duration,
) -> (JoinHandle<()>, CancellationToken) {
    let mut config = QueueConfig::new("a.test");
    config.remote_port = port;
    config.poll_interval = Duration::from_millis(200);
    config.lease = lease;
    config.max_concurrent_deliveries = 4;
    config.max_per_destination = 2;
    let loopback = DnsOverride {
        a: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        ..DnsOverride::default()
    };
    let dns = Dns::static_only(BTreeMap::from([
        ("b.test".to_string(), loopback.clone()),
        ("c.test".to_string(), loopback),
        (
            "slow.test".to_string(),
            DnsOverride {
                a: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))],
                ..DnsOverride::default()
            },
        ),
    ]));
    let engine = Engine::with_dns(config, store.clone(), store.clone(), dns).expect("engine");
    let shutdown = CancellationToken::new();
    (tokio::spawn(engine.run(shutdown.clone())), shutdown)
}

async fn enqueue<S: QueueStore>(store: &Arc<S>, to: &str, subject: &str) -> QueueId {
    let body = format!("From: <alice@a.test>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\r\nHi.\r\n");
    let env = OutboundEnvelope {
        sender: "alice@a.test".into(),
        recipients: vec![OutboundRecipient {
            address: to.into(),
            orcpt: None,
            notify: DsnNotify::NEVER,
        }],
        envid: None,
        ret: None,
        account: None,
        smtputf8: false,
    };
    store
        .enqueue(Arc::new(body.into_bytes()), &env)
        .await
        .expect("enqueue")
}

/// Waits until the sink has `n` messages.
async fn wait_for(received: &Received, n: usize) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while received.lock().unwrap().len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} messages arrived",
            received.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the queue no longer records `id`'s first recipient as pending: the sink
/// records a message before it replies, so the engine's outcome lands a moment later.
async fn settled<S: QueueStore>(store: &S, id: QueueId) -> Option<store::QueuedMessage> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let m = store.queued_message(id).await.expect("read")?;
        if m.recipients
            .iter()
            .all(|r| r.status != RecipientStatus::Pending)
        {
            return Some(m);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two engines on two handles of one store deliver 200 messages (to two domains, enqueued
/// through both handles while both run): each arrives exactly once, and the queue records
/// every recipient as delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_deliver_each_message_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = store_sqlite::open(dir.path()).expect("open a");
    let b = store_sqlite::open(dir.path()).expect("open b");
    deliver_each_message_once(a, b).await;
}

/// The same with two nodes on one PostgreSQL database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_each_message_once_on_postgres() {
    let Some(db) = pg::TestDb::create("engines_once").await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    deliver_each_message_once(a, b).await;
    db.cleanup().await;
}

async fn deliver_each_message_once<S: QueueStore + Store + 'static>(a: Arc<S>, b: Arc<S>) {
    // A little time per message, so the engines' work overlaps.
    let (port, received) = sink(Duration::from_millis(5)).await;
    let (ea, sa) = start(&a, port, Duration::from_secs(30));
    let (eb, sb) = start(&b, port, Duration::from_secs(30));
    let mut ids = Vec::new();
    for i in 0..200 {
        let (store, to) = match i % 4 {
            0 => (&a, "x@b.test"),
            1 => (&b, "y@b.test"),
            2 => (&a, "z@c.test"),
            _ => (&b, "w@b.test"),
        };
        ids.push(enqueue(store, to, &format!("m{i}")).await);
    }
    wait_for(&received, 200).await;
    // Nothing more arrives: no second delivery of anything.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = received.lock().unwrap().clone();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in &got {
        *counts.entry(s.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(got.len(), 200);
    for i in 0..200 {
        assert!(
            counts.contains_key(format!("m{i}").as_str()),
            "m{i} missing"
        );
    }
    for id in ids {
        if let Some(m) = settled(&*a, id).await {
            assert!(
                m.recipients
                    .iter()
                    .all(|r| r.status == RecipientStatus::Delivered && r.attempts == 1),
                "{m:?}"
            );
        }
    }
    sa.cancel();
    sb.cancel();
    ea.await.expect("engine a");
    eb.await.expect("engine b");
}

/// Work claimed by a process that then died (its lease never renewed nor released) waits for
/// the lease to expire, then the other process delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_work_is_taken_over_after_its_lease() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = store_sqlite::open(dir.path()).expect("open a");
    let b = store_sqlite::open(dir.path()).expect("open b");
    dead_holders_work_is_taken_over(a, b).await;
}

/// The same with two nodes on one PostgreSQL database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_work_is_taken_over_after_its_lease_on_postgres() {
    let Some(db) = pg::TestDb::create("engines_dead").await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    dead_holders_work_is_taken_over(a, b).await;
    db.cleanup().await;
}

async fn dead_holders_work_is_taken_over<S: QueueStore + Store + 'static>(a: Arc<S>, b: Arc<S>) {
    let (port, received) = sink(Duration::ZERO).await;
    let id = enqueue(&a, "x@b.test", "orphan").await;
    let now = chrono_now();
    let limits = ClaimLimits {
        leases: 1,
        per_batch: 10,
        per_destination: 10,
        single_destination: false,
    };
    let claims = a
        .claim_due("dead-node", now, 4, &limits)
        .await
        .expect("claim");
    assert_eq!(claims.len(), 1);
    drop(a); // the "process" is gone, its lease stays
    let (eb, sb) = start(&b, port, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        received.lock().unwrap().is_empty(),
        "taken while the lease was live"
    );
    let held = b.queued_message(id).await.expect("read").expect("queued");
    assert_eq!(held.recipients[0].lease, Some(claims[0].lease.id));
    wait_for(&received, 1).await;
    assert_eq!(*received.lock().unwrap(), ["orphan"]);
    let m = settled(&*b, id).await.expect("queued");
    assert_eq!(m.recipients[0].status, RecipientStatus::Delivered);
    sb.cancel();
    eb.await.expect("engine b");
}

/// A delivery that takes longer than the lease: its holder renews the lease meanwhile, so
/// the other process never takes the message, and it arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_delivery_keeps_its_lease() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = store_sqlite::open(dir.path()).expect("open a");
    let b = store_sqlite::open(dir.path()).expect("open b");
    long_delivery_keeps_its_lease(a, b).await;
}

/// The same with two nodes on one PostgreSQL database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_delivery_keeps_its_lease_on_postgres() {
    let Some(db) = pg::TestDb::create("engines_renew").await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    long_delivery_keeps_its_lease(a, b).await;
    db.cleanup().await;
}

async fn long_delivery_keeps_its_lease<S: QueueStore + Store + 'static>(a: Arc<S>, b: Arc<S>) {
    let (port, received) = sink(Duration::from_secs(7)).await;
    let id = enqueue(&a, "x@b.test", "slow").await;
    let (ea, sa) = start(&a, port, Duration::from_secs(3));
    // Engine a claims it first (it was notified of the enqueue); then b joins.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (eb, sb) = start(&b, port, Duration::from_secs(3));
    // The peer answers after 7 s; the lease (3 s) was renewed twice meanwhile.
    let m = settled(&*b, id).await.expect("queued");
    assert_eq!(m.recipients[0].status, RecipientStatus::Delivered);
    assert_eq!(m.recipients[0].attempts, 1);
    assert_eq!(*received.lock().unwrap(), ["slow"], "sent once");
    sa.cancel();
    sb.cancel();
    ea.await.expect("engine a");
    eb.await.expect("engine b");
}

/// No head-of-line blocking: 1,000 messages queued for a slow destination (2 s per message)
/// before one for another domain — the other one is delivered at once, not after the 1,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_destination_does_not_delay_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = store_sqlite::open(dir.path()).expect("open");
    let (port, quick) = sink(Duration::ZERO).await;
    // The slow domain's host: another loopback address, the same port.
    let slow_listener = TcpListener::bind(("127.0.0.2", port))
        .await
        .expect("bind 127.0.0.2");
    let slow = serve_sink(slow_listener, Duration::from_secs(2));
    let fill = |n: usize| {
        let a = Arc::clone(&a);
        async move {
            for i in 0..n {
                enqueue(&a, "x@slow.test", &format!("slow{i}")).await;
            }
        }
    };
    // Four writers share commits.
    tokio::join!(fill(250), fill(250), fill(250), fill(250));
    enqueue(&a, "y@b.test", "quick").await;
    let (e, s) = start(&a, port, Duration::from_secs(30));
    let started = tokio::time::Instant::now();
    wait_for(&quick, 1).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited {:?} behind the slow domain",
        started.elapsed()
    );
    assert_eq!(*quick.lock().unwrap(), ["quick"]);
    // Meanwhile the slow domain had its connections (2 at most, 50 messages each).
    assert!(
        slow.lock().unwrap().len() <= 4,
        "{:?}",
        slow.lock().unwrap().len()
    );
    s.cancel();
    e.await.expect("engine");
}

/// A process that stops (gracefully) while delivering releases its leases: the work is due
/// again at once for the next start or another process, not after the lease's 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_the_leases_in_flight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = store_sqlite::open(dir.path()).expect("open");
    let (port, received) = sink(Duration::from_secs(600)).await;
    let id = enqueue(&a, "x@b.test", "cut off").await;
    let (e, s) = start(&a, port, Duration::from_secs(30));
    wait_for(&received, 1).await; // the engine waits for the reply to the data now
    let t = chrono_now();
    assert_eq!(a.leases(t).await.expect("leases").len(), 1);
    s.cancel();
    tokio::time::timeout(Duration::from_secs(10), e)
        .await
        .expect("the engine stops")
        .expect("engine");
    assert!(a.leases(t).await.expect("leases").is_empty());
    let m = a.queued_message(id).await.expect("read").expect("queued");
    let r = &m.recipients[0];
    assert_eq!(
        (r.status, r.lease, r.attempts),
        (RecipientStatus::Pending, None, 0)
    );
    assert!(r.next_attempt <= chrono_now(), "due at once: {r:?}");
}

mod pg {
    //! A database of its own for one test on the server `YUBIN_TEST_PG_URL` names.

    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use store_postgres::{ConnectOptions, PgStore};

    pub struct TestDb {
        admin_url: String,
        name: String,
        url: String,
    }

    static COUNTER: AtomicU32 = AtomicU32::new(0);

    async fn client(url: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
        tokio::spawn(conn);
        client
    }

    impl TestDb {
        /// A fresh database, or `None` (after saying why) without a server.
        pub async fn create(test: &str) -> Option<TestDb> {
            let Ok(admin_url) = std::env::var("YUBIN_TEST_PG_URL") else {
                eprintln!("skipped: set YUBIN_TEST_PG_URL (scripts/pg-test-cluster)");
                return None;
            };
            let name = format!(
                "yubin_q_{test}_{}_{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            );
            client(&admin_url)
                .await
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            // The URL's database name is its last path segment.
            let (base, query) = admin_url
                .split_once('?')
                .map_or((admin_url.as_str(), None), |(b, q)| (b, Some(q)));
            let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
            let url = match query {
                Some(q) => format!("{server}/{name}?{q}"),
                None => format!("{server}/{name}"),
            };
            Some(TestDb {
                admin_url,
                name,
                url,
            })
        }

        /// A node on this database.
        pub async fn store(&self) -> Arc<PgStore> {
            store_postgres::connect(&self.url, &ConnectOptions::default())
                .await
                .expect("connect")
        }

        pub async fn cleanup(self) {
            let _ = client(&self.admin_url)
                .await
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await;
        }
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

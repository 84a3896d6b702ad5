//! A delivery whose result the store cannot record for a moment (a full disk, a database
//! restart) is recorded once the store is back, not made again: the recipient gets one copy.
//! Found by the crash harness (tests/crash/disk_full.py).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use queue::dns::Dns;
use queue::{DnsOverride, Engine, QueueConfig};
use store::{
    AttemptResult, Claim, ClaimLimits, DsnNotify, Lease, LeaseId, OutboundEnvelope,
    OutboundRecipient, QueueId, QueueStore, QueuedMessage, RecipientStatus, StoreError,
    StoreResult, UnixTime,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The store's queue, with `record_attempts` failing (temporarily) `failures` times.
struct Flaky {
    inner: Arc<store_sqlite::SqliteStore>,
    failures: AtomicU32,
}

#[async_trait]
impl QueueStore for Flaky {
    async fn enqueue(&self, m: Arc<Vec<u8>>, e: &OutboundEnvelope) -> StoreResult<QueueId> {
        self.inner.enqueue(m, e).await
    }
    fn queue_notifier(&self) -> Arc<tokio::sync::Notify> {
        self.inner.queue_notifier()
    }
    async fn claim_due(
        &self,
        holder: &str,
        now: UnixTime,
        lease_secs: u64,
        limits: &ClaimLimits,
    ) -> StoreResult<Vec<Claim>> {
        self.inner.claim_due(holder, now, lease_secs, limits).await
    }
    async fn renew(&self, l: LeaseId, h: &str, now: UnixTime, s: u64) -> StoreResult<bool> {
        self.inner.renew(l, h, now, s).await
    }
    async fn release(&self, lease: LeaseId, now: UnixTime) -> StoreResult<()> {
        self.inner.release(lease, now).await
    }
    async fn leases(&self, now: UnixTime) -> StoreResult<Vec<Lease>> {
        self.inner.leases(now).await
    }
    async fn next_due(&self) -> StoreResult<Option<UnixTime>> {
        self.inner.next_due().await
    }
    async fn queued_message(&self, id: QueueId) -> StoreResult<Option<QueuedMessage>> {
        self.inner.queued_message(id).await
    }
    async fn list_queue(&self) -> StoreResult<Vec<QueuedMessage>> {
        self.inner.list_queue().await
    }
    async fn queued_body(&self, id: QueueId) -> StoreResult<Arc<Vec<u8>>> {
        self.inner.queued_body(id).await
    }
    async fn record_attempts(&self, lease: LeaseId, r: &[AttemptResult]) -> StoreResult<()> {
        if self.failures.load(Ordering::SeqCst) > 0 {
            self.failures.fetch_sub(1, Ordering::SeqCst);
            return Err(StoreError::Temporary("database or disk is full".into()));
        }
        self.inner.record_attempts(lease, r).await
    }
    async fn set_delay_notified(&self, id: QueueId) -> StoreResult<()> {
        self.inner.set_delay_notified(id).await
    }
    async fn retry_queued(&self, id: Option<QueueId>, now: UnixTime) -> StoreResult<u64> {
        self.inner.retry_queued(id, now).await
    }
    async fn delete_queued(&self, id: QueueId) -> StoreResult<()> {
        self.inner.delete_queued(id).await
    }
    async fn remove_finished(&self) -> StoreResult<u64> {
        self.inner.remove_finished().await
    }
}

/// An SMTP server that accepts everything; counts the messages whose data arrived.
async fn sink() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply: &[u8] =
                        match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                            "EHLO" => b"250-sink.test\r\n250 8BITMIME\r\n",
                            "DATA" => {
                                let _ = write.write_all(b"354 go ahead\r\n").await;
                                while let Ok(Some(l)) = lines.next_line().await {
                                    if l == "." {
                                        break;
                                    }
                                }
                                c.fetch_add(1, Ordering::SeqCst);
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
    (port, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_the_store_could_not_record_at_once_is_recorded_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = store_sqlite::open(dir.path()).expect("open");
    let flaky = Arc::new(Flaky {
        inner: sqlite.clone(),
        failures: AtomicU32::new(3),
    });
    let (port, received) = sink().await;
    let mut config = QueueConfig::new("a.test");
    config.remote_port = port;
    config.poll_interval = Duration::from_millis(100);
    config.retry_initial = Duration::from_secs(1);
    config.lease = Duration::from_secs(10);
    let dns = Dns::static_only(BTreeMap::from([(
        "b.test".to_string(),
        DnsOverride {
            a: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            ..DnsOverride::default()
        },
    )]));
    let engine = Engine::with_dns(config, flaky.clone(), sqlite.clone(), dns).expect("engine");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(engine.run(shutdown.clone()));

    let env = OutboundEnvelope {
        sender: "alice@a.test".into(),
        recipients: vec![OutboundRecipient {
            address: "x@b.test".into(),
            orcpt: None,
            notify: DsnNotify::NEVER,
        }],
        envid: None,
        ret: None,
        account: None,
        smtputf8: false,
    };
    let body = b"From: <alice@a.test>\r\nSubject: once\r\n\r\nHi.\r\n".to_vec();
    let id = flaky.enqueue(Arc::new(body), &env).await.expect("enqueue");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = sqlite
            .queued_message(id)
            .await
            .expect("read")
            .expect("queued");
        if m.recipients[0].status == RecipientStatus::Delivered {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never recorded: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Long enough for a retry (1 s) to have sent it again, had the result been dropped.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        received.load(Ordering::SeqCst),
        1,
        "delivered more than once"
    );
    assert_eq!(flaky.failures.load(Ordering::SeqCst), 0);
    shutdown.cancel();
    task.await.expect("engine");
}

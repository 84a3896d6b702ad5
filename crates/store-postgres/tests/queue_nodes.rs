//! The shared queue on two nodes, beyond the conformance suite: what PostgreSQL's concurrency
//! adds (claims that skip rows other transactions are changing, a connection limit that holds
//! when many claims race, a sending allowance that holds when many sessions race) and the
//! indexes every claim read searches. Skipped without `YUBIN_TEST_PG_URL`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestDb;
use store::{
    Claim, ClaimLimits, DsnNotify, OutboundEnvelope, OutboundRecipient, QueueId, QueueStore,
    SendingLimits, SendingLog,
};
use store_postgres::PgStore;

/// Far enough in the future that everything enqueued now is due.
const LATER: i64 = 4_000_000_000;

fn envelope(rcpt: &str) -> OutboundEnvelope {
    OutboundEnvelope {
        sender: "s@here.test".into(),
        recipients: vec![OutboundRecipient {
            address: rcpt.into(),
            orcpt: None,
            notify: DsnNotify::default(),
        }],
        envid: None,
        ret: None,
        account: None,
        smtputf8: false,
    }
}

async fn enqueue(s: &PgStore, rcpt: &str, n: usize) -> Vec<QueueId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let body = Arc::new(format!("Subject: {i}\r\n\r\nq\r\n").into_bytes());
        ids.push(s.enqueue(body, &envelope(rcpt)).await.unwrap());
    }
    ids
}

fn claimed(claims: &[Claim]) -> Vec<QueueId> {
    claims
        .iter()
        .flat_map(|c| c.messages.iter().map(|m| m.message.id))
        .collect()
}

const ONE_BY_ONE: ClaimLimits = ClaimLimits {
    leases: 10,
    per_batch: 10,
    per_destination: 10,
    single_destination: false,
};

/// A recipient another transaction has locked (a result being recorded, say) is skipped by a
/// claim, not waited for, and is claimed once that transaction is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_skip_recipients_another_transaction_is_changing() {
    let Some(db) = TestDb::create("claim_skip_locked").await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let ids = enqueue(&a, "x@remote.test", 2).await;
    let mut other = db.client().await;
    let busy = other.transaction().await.unwrap();
    busy.execute(
        "SELECT 1 FROM queue_recipients WHERE message = $1 FOR UPDATE",
        &[&ids[0]],
    )
    .await
    .unwrap();
    let first = tokio::time::timeout(
        Duration::from_secs(5),
        b.claim_due("node-b", LATER, 60, &ONE_BY_ONE),
    )
    .await
    .expect("not blocked by the locked row")
    .unwrap();
    assert_eq!(claimed(&first), vec![ids[1]]);
    busy.rollback().await.unwrap();
    let second = b.claim_due("node-b", LATER, 60, &ONE_BY_ONE).await.unwrap();
    assert_eq!(claimed(&second), vec![ids[0]]);
    drop((a, b));
    db.cleanup().await;
}

/// Eight claims at once, four through each node, ten times over: a destination limited to two
/// connections never gets a third lease, however the claims interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_claims_keep_the_destination_limit() {
    let Some(db) = TestDb::create("claim_race_limit").await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    enqueue(&a, "x@busy.test", 40).await;
    let limits = ClaimLimits {
        leases: 4,
        per_batch: 1,
        per_destination: 2,
        single_destination: false,
    };
    for round in 0..10 {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = Arc::clone(if i % 2 == 0 { &a } else { &b });
            tasks.push(tokio::spawn(async move {
                s.claim_due(&format!("node-{i}"), LATER, 60, &limits)
                    .await
                    .unwrap()
            }));
        }
        let mut claims = Vec::new();
        for t in tasks {
            claims.extend(t.await.unwrap());
        }
        // Claims that skipped the destination while another took it: one more, alone.
        claims.extend(a.claim_due("node-a", LATER, 60, &limits).await.unwrap());
        assert_eq!(claims.len(), 2, "round {round}: {claims:?}");
        assert_eq!(b.leases(LATER).await.unwrap().len(), 2);
        for c in &claims {
            a.release(c.lease.id, LATER).await.unwrap();
        }
    }
    drop((a, b));
    db.cleanup().await;
}

/// Sixteen sessions at once, half on each node, each sending one message against an
/// allowance of five, for ten accounts in turn: exactly five are counted each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_senders_share_one_allowance() {
    let Some(db) = TestDb::create("sending_race").await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let limits = SendingLimits {
        max_messages: Some(5),
        max_recipients: None,
    };
    let client = db.client().await;
    for account in 0..10 {
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s = Arc::clone(if i % 2 == 0 { &a } else { &b });
            tasks.push(tokio::spawn(async move {
                s.record_sending(store::AccountId(account), 1, 1_000, 0, limits)
                    .await
                    .unwrap()
            }));
        }
        let mut counted = 0;
        for t in tasks {
            counted += usize::from(t.await.unwrap().is_ok());
        }
        assert_eq!(counted, 5, "account {account}");
        let rows: i64 = client
            .query_one(
                "SELECT count(*) FROM sending_log WHERE account = $1",
                &[&account],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 5);
    }
    drop((a, b));
    db.cleanup().await;
}

/// Each read of a claim round, and the sending log's, searches its index on tables of a few
/// thousand rows (sequential scans ruled out as well): a round costs the due domains and the
/// work it takes, never the whole queue; the per-domain read needs no sort, so it stops at its
/// batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_reads_search_their_indexes() {
    let Some(db) = TestDb::create("claim_plans").await else {
        return;
    };
    let store = db.store().await;
    let id = enqueue(&store, "x@plan.test", 1).await[0];
    let client = db.client().await;
    client
        .execute(
            "INSERT INTO queue_recipients (message, address, domain, notify, status,
                                           next_attempt, lease)
             SELECT $1, 'r' || i || '@d' || (i % 500) || '.test', 'd' || (i % 500) || '.test', 0,
                    CASE WHEN i % 3 = 0 THEN 'delivered' ELSE 'pending' END, i,
                    CASE WHEN i % 4 = 0 THEN i / 4 END
             FROM generate_series(1, 5000) AS i",
            &[&id],
        )
        .await
        .unwrap();
    client
        .batch_execute(
            "INSERT INTO queue_domains (domain, next_due)
               SELECT 'd' || i || '.test', i FROM generate_series(1, 2000) AS i;
             INSERT INTO queue_leases (destination, domain, holder, expires)
               SELECT 'd' || (i % 500) || '.test', 'd' || (i % 500) || '.test', 'n', i
               FROM generate_series(1, 5000) AS i;
             INSERT INTO sending_log (account, at, recipients)
               SELECT i % 500, i, 1 FROM generate_series(1, 5000) AS i;
             ANALYZE;
             SET enable_seqscan = off; SET enable_bitmapscan = off;",
        )
        .await
        .unwrap();
    for (sql, index) in [
        (
            "SELECT next_due, domain FROM queue_domains
             WHERE next_due <= 1500 AND (next_due, domain) > (1000, 'd1000.test')
             ORDER BY next_due, domain LIMIT 64",
            "queue_domains_due",
        ),
        (
            "SELECT count(*) FROM queue_leases WHERE destination = 'd7.test' AND expires > 4000",
            "queue_leases_destination",
        ),
        (
            "SELECT id, message FROM queue_recipients
             WHERE status = 'pending' AND domain = 'd7.test' AND next_attempt <= 4000
             ORDER BY next_attempt, id FOR UPDATE SKIP LOCKED",
            "queue_recipients_domain_due",
        ),
        (
            "SELECT min(next_attempt) FROM queue_recipients
             WHERE status = 'pending' AND domain = 'd7.test'",
            "queue_recipients_domain_due",
        ),
        (
            "UPDATE queue_recipients SET next_attempt = 5 WHERE lease = 7 AND status = 'pending'",
            "queue_recipients_lease",
        ),
        (
            "DELETE FROM queue_leases WHERE expires <= 20",
            "queue_leases_expires",
        ),
        (
            "SELECT count(*), coalesce(sum(recipients), 0) FROM sending_log
             WHERE account = 1 AND at >= 4000",
            "sending_log_account",
        ),
    ] {
        let plan: Vec<String> = client
            .query(&format!("EXPLAIN {sql}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(plan.contains(&format!("using {index}")), "{sql}\n{plan}");
        assert!(!plan.contains("Sort"), "{sql} sorts:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "{sql}\n{plan}");
    }
    drop(store);
    db.cleanup().await;
}

/// Schema version 2 on a version-1 database with queued mail: every pending recipient's domain
/// gets its `queue_domains` row (its earliest due time), no recipient is held, and the mail is
/// claimable at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_migrates_to_leases() {
    let Some(db) = TestDb::create("queue_migration").await else {
        return;
    };
    let store = db.store().await;
    let ids = [
        enqueue(&store, "x@one.test", 2).await,
        enqueue(&store, "y@two.test", 1).await,
    ]
    .concat();
    drop(store);
    // Back to before the queue step, the queue rows kept.
    let client = db.client().await;
    client
        .batch_execute(
            "DROP TABLE queue_leases, queue_domains, sending_log;
             DROP INDEX queue_recipients_domain_due;
             ALTER TABLE queue_recipients DROP COLUMN lease;
             UPDATE queue_recipients SET next_attempt = 100 + id;
             DROP TABLE dkim_keys;
             DROP TABLE login_failures, login_bans;
             DROP TABLE greylist;
             ALTER TABLE messages DROP COLUMN save_date, DROP COLUMN retrieved_at;
             DROP TABLE quota_warnings;
             ALTER TABLE accounts DROP COLUMN message_limit, DROP COLUMN messages_used,
               DROP COLUMN storage_warned, DROP COLUMN messages_warned;
             ALTER TABLE accounts DROP COLUMN pop3_expire_days;
             ALTER TABLE expunged DROP COLUMN expunged_at;
             ALTER TABLE mailboxes DROP COLUMN expunge_floor;
             DELETE FROM schema_migrations WHERE version >= 4;",
        )
        .await
        .unwrap();
    let store = db.store().await;
    assert_eq!(
        store.schema_version().await.unwrap(),
        store_postgres::SCHEMA_VERSION
    );
    let due: Vec<(String, i64)> = client
        .query(
            "SELECT domain, next_due FROM queue_domains ORDER BY domain",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let first: i64 = client
        .query_one(
            "SELECT min(id) FROM queue_recipients WHERE domain = 'one.test'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let two: i64 = client
        .query_one(
            "SELECT id FROM queue_recipients WHERE domain = 'two.test'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        due,
        vec![
            ("one.test".to_string(), 100 + first),
            ("two.test".to_string(), 100 + two)
        ]
    );
    let m = store.queued_message(ids[0]).await.unwrap().unwrap();
    assert_eq!(m.recipients[0].lease, None);
    let claims = store
        .claim_due("node-a", LATER, 60, &ONE_BY_ONE)
        .await
        .unwrap();
    let mut got = claimed(&claims);
    got.sort_unstable();
    assert_eq!(got, ids);
    drop(store);
    db.cleanup().await;
}

/// Work that becomes due on one node wakes the other node's scheduler at once (NOTIFY
/// `yubin_queue`), not at its next poll: an enqueue, a lease released, a retry. A node is
/// not woken by its own wake-ups through the database (its scheduler was notified directly).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_work_wakes_the_other_nodes_scheduler() {
    let Some(db) = TestDb::create("queue_wake").await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let (on_a, on_b) = (a.queue_notifier(), b.queue_notifier());
    // Each follower wakes its own scheduler once when it (re)connects: let those pass.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for n in [&on_a, &on_b] {
        let _ = tokio::time::timeout(Duration::from_millis(100), n.notified()).await;
    }
    let woken = |n: Arc<tokio::sync::Notify>| async move {
        tokio::time::timeout(Duration::from_secs(3), n.notified())
            .await
            .is_ok()
    };

    let b_waits = tokio::spawn(woken(Arc::clone(&on_b)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let ids = enqueue(&a, "x@wake.test", 1).await;
    assert!(b_waits.await.unwrap(), "an enqueue on a wakes b");

    let claims = b.claim_due("b", LATER, 30, &ONE_BY_ONE).await.unwrap();
    assert_eq!(claimed(&claims), ids);
    let a_waits = tokio::spawn(woken(Arc::clone(&on_a)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    b.release(claims[0].lease.id, LATER).await.unwrap();
    assert!(a_waits.await.unwrap(), "a release on b wakes a");

    let b_waits = tokio::spawn(woken(Arc::clone(&on_b)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.retry_queued(None, 1).await.unwrap();
    assert!(b_waits.await.unwrap(), "a retry on a wakes b");

    // a's own enqueue notified a directly (a permit is stored), and nothing more arrives
    // through the database for a.
    enqueue(&a, "y@wake.test", 1).await;
    on_a.notified().await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), on_a.notified())
            .await
            .is_err(),
        "a is not woken again by its own NOTIFY"
    );
    db.cleanup().await;
}

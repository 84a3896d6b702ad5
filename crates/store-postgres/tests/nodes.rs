//! Two `PgStore` handles on one database — two yubin nodes, as far as the store can tell (each
//! has its own connection pool, change hub and lease holder name). What one writes, the other
//! reads; concurrent writers on both never hand out a UID or MODSEQ twice (leases across
//! nodes: `coord.rs`). Skipped without `YUBIN_TEST_PG_URL`.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::TestDb;
use mail_types::{Address, Domain};
use store::{Directory, FlagOp, Flags, INBOX, MailStore, StoreError, SystemFlags};
use store_postgres::{ConnectOptions, PgStore};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

fn msg(body: &str) -> Arc<Vec<u8>> {
    Arc::new(format!("Subject: nodes\r\n\r\n{body}\r\n").into_bytes())
}

/// A database with domain `nodes.test` and users `u0@`, `u1@`, … made through node A, and
/// two nodes on it.
async fn two_nodes(
    test: &str,
    users: usize,
) -> Option<(TestDb, Arc<PgStore>, Arc<PgStore>, Vec<store::AccountId>)> {
    let db = TestDb::create(test).await?;
    let a = db.store().await;
    let b = db.store().await;
    a.add_domain(&Domain::parse("nodes.test").unwrap())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..users {
        ids.push(
            a.add_user(&addr(&format!("u{i}@nodes.test")), HASH)
                .await
                .unwrap(),
        );
    }
    Some((db, a, b, ids))
}

async fn inbox(s: &PgStore, account: store::AccountId) -> store::MailboxId {
    s.lookup_mailbox(account, INBOX).await.unwrap().unwrap().id
}

/// RFC 9051 §2.3.1.1 across nodes: APPENDs to one mailbox from four tasks on each of two
/// nodes get distinct UIDs, each task's UIDs increase, together they are exactly 1..=N, and
/// every message has its own MODSEQ, ordered like its UID (both come from one locked update).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_on_two_nodes_get_distinct_increasing_uids() {
    let Some((db, a, b, ids)) = two_nodes("concurrent_appends", 1).await else {
        return;
    };
    let mailbox = inbox(&a, ids[0]).await;
    const TASKS: usize = 4;
    const EACH: usize = 25;
    let mut handles = Vec::new();
    for t in 0..TASKS * 2 {
        let node = if t % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        handles.push(tokio::spawn(async move {
            let mut uids = Vec::new();
            for i in 0..EACH {
                let st = node
                    .append(
                        mailbox,
                        msg(&format!("task {t} message {i}")),
                        &Flags::default(),
                        1,
                    )
                    .await
                    .expect("append");
                uids.push(st.uid);
            }
            uids
        }));
    }
    let mut all = BTreeSet::new();
    for h in handles {
        let uids = h.await.unwrap();
        assert!(
            uids.windows(2).all(|w| w[0] < w[1]),
            "one writer's UIDs increase: {uids:?}"
        );
        for u in uids {
            assert!(all.insert(u), "UID {u} handed out twice");
        }
    }
    let n = (TASKS * 2 * EACH) as u32;
    assert_eq!(all, (1..=n).collect::<BTreeSet<_>>());
    // Both nodes read the same mailbox.
    for node in [&a, &b] {
        let info = node.mailbox(mailbox).await.unwrap();
        assert_eq!((info.messages, info.uid_next), (n, n + 1));
        let metas = node.list_messages(mailbox).await.unwrap();
        let modseqs: Vec<u64> = metas.iter().map(|m| m.modseq).collect();
        assert!(
            modseqs.windows(2).all(|w| w[0] < w[1]),
            "MODSEQs distinct and in UID order"
        );
        assert_eq!(info.highest_modseq, *modseqs.last().unwrap());
    }
    drop((a, b));
    db.cleanup().await;
}

/// Deliveries to two accounts in opposite orders from two nodes lock the same INBOXes: none
/// fails (no deadlock reaches the caller), and each INBOX numbers them 1..=N.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crossed_deliveries_on_two_nodes_all_succeed() {
    let Some((db, a, b, ids)) = two_nodes("crossed_deliveries", 2).await else {
        return;
    };
    let (x, y) = (ids[0], ids[1]);
    const EACH: usize = 30;
    let run = |node: Arc<PgStore>, order: [store::AccountId; 2], tag: &'static str| {
        tokio::spawn(async move {
            for i in 0..EACH {
                // The same bytes on both nodes now and then: one shared body.
                let body = if i % 3 == 0 {
                    msg("shared")
                } else {
                    msg(&format!("{tag} {i}"))
                };
                let stored = node.deliver(body, 1, &order).await.expect("deliver");
                assert_eq!(stored.len(), 2);
            }
        })
    };
    let (r1, r2) = tokio::join!(
        run(Arc::clone(&a), [x, y], "a"),
        run(Arc::clone(&b), [y, x], "b")
    );
    r1.unwrap();
    r2.unwrap();
    for account in [x, y] {
        let uids: Vec<u32> = b
            .list_messages(inbox(&b, account).await)
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect();
        assert_eq!(uids, (1..=(2 * EACH) as u32).collect::<Vec<_>>());
    }
    // The shared body is stored once, counted once per message.
    let client = db.client().await;
    let shared = msg("shared");
    let row = client
        .query_one(
            "SELECT count(*), sum(refcount)::bigint FROM blobs WHERE size = $1",
            &[&(shared.len() as i64)],
        )
        .await
        .unwrap();
    let (rows, refs): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(rows, 1);
    assert_eq!(refs, 2 * 2 * (EACH as u64).div_ceil(3) as i64);
    // Quota is exact after all the concurrent charges.
    for account in [x, y] {
        let sum: u64 = a
            .list_messages(inbox(&a, account).await)
            .await
            .unwrap()
            .iter()
            .map(|m| m.size)
            .sum();
        assert_eq!(b.quota(account).await.unwrap().used, sum);
    }
    drop((a, b));
    db.cleanup().await;
}

/// Whatever one node writes, the other reads at once: delivery, flags, mailboxes, accounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_one_node_are_read_on_the_other() {
    let Some((db, a, b, ids)) = two_nodes("writes_visible", 1).await else {
        return;
    };
    let acc = ids[0];
    // The account made on A is found on B.
    assert_eq!(
        b.find_user(&addr("u0@nodes.test"))
            .await
            .unwrap()
            .unwrap()
            .id,
        acc
    );
    let st = a.deliver(msg("hello"), 7, &[acc]).await.unwrap();
    let on_b = b.list_messages(st[0].mailbox).await.unwrap();
    assert_eq!(on_b.len(), 1);
    assert_eq!(on_b[0].uid, st[0].uid);
    assert_eq!(
        b.read_message(st[0].mailbox, st[0].uid)
            .await
            .unwrap()
            .as_deref(),
        Some(msg("hello").as_slice())
    );

    let seen = Flags {
        system: SystemFlags::SEEN,
        keywords: vec!["$Forwarded".into()],
    };
    let changed = b
        .store_flags(st[0].mailbox, &[st[0].uid], FlagOp::Add, &seen)
        .await
        .unwrap();
    let on_a = a.get_messages(st[0].mailbox, &[st[0].uid]).await.unwrap();
    assert_eq!(on_a[0].flags, seen);
    assert_eq!(on_a[0].modseq, changed[0].2);
    assert_eq!(
        a.mailbox(st[0].mailbox).await.unwrap().highest_modseq,
        changed[0].2
    );

    let created = a.create_mailbox(acc, "Shared/Projects").await.unwrap();
    assert_eq!(
        b.lookup_mailbox(acc, "Shared/Projects")
            .await
            .unwrap()
            .unwrap()
            .id,
        created.id
    );
    b.rename_mailbox(created.id, "Elsewhere").await.unwrap();
    assert!(
        a.lookup_mailbox(acc, "Shared/Projects")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(a.mailbox(created.id).await.unwrap().name, "Elsewhere");

    // Expunged on B, in A's expunge log (QRESYNC).
    let before = a.mailbox(st[0].mailbox).await.unwrap().highest_modseq;
    b.expunge(st[0].mailbox, &[st[0].uid]).await.unwrap();
    assert_eq!(
        a.expunged_since(st[0].mailbox, before).await.unwrap(),
        vec![st[0].uid]
    );

    // An account deleted on B is gone for A.
    b.delete_user(&addr("u0@nodes.test")).await.unwrap();
    assert!(a.find_user(&addr("u0@nodes.test")).await.unwrap().is_none());
    assert!(matches!(
        a.deliver(msg("late"), 1, &[acc]).await,
        Err(StoreError::NotFound(_))
    ));
    // No body outlives its last message: none is left, nor any row of the account.
    let client = db.client().await;
    let left: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM blobs) + (SELECT count(*) FROM messages)
                  + (SELECT count(*) FROM mailboxes) + (SELECT count(*) FROM subscriptions)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    drop((a, b));
    db.cleanup().await;
}

/// Two nodes creating the same mailbox at once: one creates it, the other is told it exists
/// (the loser's unique violation is retried and then answered properly).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_give_one_mailbox_and_exists() {
    let Some((db, a, b, ids)) = two_nodes("racing_creates", 1).await else {
        return;
    };
    let acc = ids[0];
    for round in 0..10 {
        let name = format!("Race/{round}/Box");
        let (ra, rb) = tokio::join!(a.create_mailbox(acc, &name), b.create_mailbox(acc, &name));
        let oks = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(oks, 1, "round {round}: {ra:?} {rb:?}");
        let err = if ra.is_err() { ra } else { rb };
        assert!(matches!(err, Err(StoreError::Exists(_))), "{err:?}");
    }
    let names: Vec<String> = a
        .lookup_mailboxes(acc)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .filter(|n| n.starts_with("Race"))
        .collect();
    assert_eq!(
        names.len(),
        1 + 10 * 2,
        "Race, Race/n, Race/n/Box: {names:?}"
    );
    drop((a, b));
    db.cleanup().await;
}

/// Several nodes starting at once on an empty database: every one migrates or waits, none
/// fails, and each step is applied once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_migrate_once() {
    let Some(db) = TestDb::create("concurrent_starts").await else {
        return;
    };
    let mut starts = Vec::new();
    for _ in 0..4 {
        let url = db.url.clone();
        starts.push(tokio::spawn(async move {
            store_postgres::connect(&url, &ConnectOptions::default()).await
        }));
    }
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.unwrap().expect("start"));
    }
    let client = db.client().await;
    let versions: Vec<i32> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        (1..=store_postgres::SCHEMA_VERSION).collect::<Vec<_>>()
    );
    // Starting again later is a no-op.
    let again = db.store().await;
    assert_eq!(
        again.schema_version().await.unwrap(),
        store_postgres::SCHEMA_VERSION
    );
    drop((stores, again));
    db.cleanup().await;
}

/// Each committed change to an account is announced with `NOTIFY yubin_changes, '<id>'` (the
/// wake-up other nodes will listen for); a failed write announces nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_changes_notify_their_account() {
    let Some((db, a, _b, ids)) = two_nodes("notify", 2).await else {
        return;
    };
    let (listener, mut conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let Ok(tokio_postgres::AsyncMessage::Notification(n)) = m {
                let _ = tx.send((n.channel().to_string(), n.payload().to_string()));
            }
        }
    });
    listener
        .batch_execute("LISTEN yubin_changes")
        .await
        .unwrap();

    // Over quota: rolled back, nothing announced.
    a.set_quota(&addr("u1@nodes.test"), Some(1)).await.unwrap();
    assert!(matches!(
        a.deliver(msg("too big"), 1, &[ids[1]]).await,
        Err(StoreError::OverQuota)
    ));
    a.deliver(msg("wake up"), 1, &[ids[0]]).await.unwrap();
    let (channel, payload) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("notification within 5 s")
        .unwrap();
    assert_eq!(channel, "yubin_changes");
    // `<account>:<seq>`: a wake-up naming the account and its change log position.
    assert!(payload.starts_with(&format!("{}:", ids[0])), "{payload}");
    assert!(rx.try_recv().is_err(), "one notification for one commit");
    db.cleanup().await;
}

/// Events of one mailbox reach subscribers in commit order — UIDs and MODSEQs ascending —
/// even when many tasks of one node append at once (an IMAP session adds new messages at the
/// end of its view in the order it hears of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_of_concurrent_writers_arrive_in_commit_order() {
    let Some((db, a, _b, ids)) = two_nodes("events_order", 1).await else {
        return;
    };
    let mailbox = inbox(&a, ids[0]).await;
    let mut rx = a.subscribe(ids[0]).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let a = Arc::clone(&a);
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                a.append(mailbox, msg(&format!("{t}/{i}")), &Flags::default(), 1)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut seen = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        if let store::Change::NewMessage(m) = ev.change {
            seen.push((m.uid, m.modseq));
        }
    }
    assert_eq!(seen.len(), 8 * 15);
    assert!(
        seen.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1),
        "events out of order: {seen:?}"
    );
    db.cleanup().await;
}

/// A database migrated by a newer yubin is refused rather than used with an older schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let Some(db) = TestDb::create("newer_schema").await else {
        return;
    };
    drop(db.store().await);
    let client = db.client().await;
    client
        .execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, 'from the future')",
            &[&(store_postgres::SCHEMA_VERSION + 1)],
        )
        .await
        .unwrap();
    let refused = store_postgres::connect(&db.url, &ConnectOptions::default()).await;
    assert!(
        matches!(&refused, Err(StoreError::Invalid(m)) if m.contains("newer")),
        "{:?}",
        refused.err()
    );
    db.cleanup().await;
}

/// An account added on one node while another deletes its domain: either the account exists
/// and the domain stays (deletion refused), or the domain is gone and the account is refused
/// with `NotFound` — never a half-made account or a temporary error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn add_user_racing_delete_domain_is_all_or_nothing() {
    let Some((db, a, b, _)) = two_nodes("user_vs_domain", 0).await else {
        return;
    };
    for round in 0..10 {
        let domain = Domain::parse(&format!("race{round}.test")).unwrap();
        a.add_domain(&domain).await.unwrap();
        let user = addr(&format!("x@race{round}.test"));
        let (added, deleted) = tokio::join!(a.add_user(&user, HASH), b.delete_domain(&domain));
        match (&added, &deleted) {
            (Ok(id), Err(StoreError::Invalid(_))) => {
                assert!(b.is_local_domain(&domain).await.unwrap());
                assert_eq!(b.find_user(&user).await.unwrap().unwrap().id, *id);
                assert_eq!(b.lookup_mailboxes(*id).await.unwrap().len(), 6);
            }
            (Err(StoreError::NotFound(_)), Ok(())) => {
                assert!(!a.is_local_domain(&domain).await.unwrap());
                assert!(a.find_user(&user).await.unwrap().is_none());
            }
            other => panic!("round {round}: {other:?}"),
        }
    }
    drop((a, b));
    db.cleanup().await;
}

/// Message facts cached by one node are read from the table by the other (whose memory cache
/// is empty); a node asking for another version gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_facts_put_on_one_node_are_read_on_the_other() {
    let Some((db, a, b, ids)) = two_nodes("facts_nodes", 1).await else {
        return;
    };
    let st = a.deliver(msg("facts"), 1, &[ids[0]]).await.unwrap();
    a.deliver(msg("facts"), 1, &[ids[0]]).await.unwrap();
    let bodies = a.message_bodies(st[0].mailbox, &[1, 2], 3).await.unwrap();
    assert!(bodies.iter().all(|b| b.facts.is_none()));
    let facts = store::MessageFacts {
        version: 3,
        header: b"Subject: nodes\r\n\r\n".to_vec(),
        envelope: b"(NIL \"nodes\")".to_vec(),
        envelope_utf8: None,
        body: b"(\"TEXT\" \"PLAIN\")".to_vec(),
        body_utf8: Some(b"utf8".to_vec()),
        bodystructure: b"(\"TEXT\" \"PLAIN\" NIL)".to_vec(),
        bodystructure_utf8: None,
    };
    a.put_message_facts(vec![(bodies[0].blob.clone(), facts.clone())])
        .await
        .unwrap();
    let on_b = b.message_bodies(st[0].mailbox, &[2, 1], 3).await.unwrap();
    assert_eq!(on_b.iter().map(|x| x.uid).collect::<Vec<_>>(), [1, 2]);
    for body in &on_b {
        assert_eq!(body.facts.as_deref(), Some(&facts), "shared by both copies");
    }
    assert!(
        b.message_bodies(st[0].mailbox, &[1], 4).await.unwrap()[0]
            .facts
            .is_none()
    );
    drop((a, b));
    db.cleanup().await;
}

/// A large body is streamed out of the database (`blob_stream.rs`) byte for byte, whatever
/// the reader's buffer size; a small one comes whole; a body gone is `Expunged`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_stream_byte_for_byte() {
    use tokio::io::AsyncReadExt;
    let Some((db, a, b, ids)) = two_nodes("large_bodies", 1).await else {
        return;
    };
    let mut big = b"Subject: big\r\n\r\n".to_vec();
    big.extend((0..3_000_000u32).map(|i| (i % 251) as u8));
    let big = Arc::new(big);
    let st = a.deliver(Arc::clone(&big), 1, &[ids[0]]).await.unwrap();
    let small = a.deliver(msg("small"), 1, &[ids[0]]).await.unwrap();
    let metas = b.list_messages(st[0].mailbox).await.unwrap();
    let mut r = b.open_blob(&metas[0].blob).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4093];
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.len(), big.len());
    assert!(got == *big, "streamed bytes differ");
    drop(r);
    let mut whole = Vec::new();
    b.open_blob(&metas[1].blob)
        .await
        .unwrap()
        .read_to_end(&mut whole)
        .await
        .unwrap();
    assert_eq!(whole, *msg("small"));
    a.expunge(st[0].mailbox, &[st[0].uid, small[0].uid])
        .await
        .unwrap();
    for m in &metas {
        assert!(matches!(
            b.open_blob(&m.blob).await,
            Err(StoreError::Expunged)
        ));
    }
    drop((a, b));
    db.cleanup().await;
}

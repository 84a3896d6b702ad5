//! Leases across nodes on PostgreSQL (RFC 1939 §8 maildrop locks): a `store::LeaseGuard` on
//! one node keeps the name from the other for as long as it lives (renewed past its time to
//! live), and a lease left by a dead node lapses at its expiry by the database's clock.
//! Skipped without `YUBIN_TEST_PG_URL`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestDb;
use store::{Coordination, Directory, LeaseGuard, MailStore, StoreError};

/// Tries `acquire_lease` until it succeeds (a dropped guard releases in the background).
async fn acquire_soon(s: &dyn Coordination, name: &str, holder: &str) {
    for _ in 0..250 {
        match s.acquire_lease(name, holder, Duration::from_secs(60)).await {
            Ok(()) => return,
            Err(StoreError::InUse) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("{e:?}"),
        }
    }
    panic!("lease {name} never freed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maildrop_lease_holds_across_nodes_and_lapses() {
    let Some(db) = TestDb::create("maildrop_lease").await else {
        return;
    };
    let (a, b) = (db.store().await, db.store().await);
    let name = "pop3-maildrop/42";
    let ttl = Duration::from_millis(900);

    let guard = LeaseGuard::acquire(a.clone() as Arc<dyn Coordination>, name, ttl)
        .await
        .unwrap();
    assert_eq!(
        b.acquire_lease(name, "node-b#1", ttl).await,
        Err(StoreError::InUse)
    );
    // Held past several lifetimes: renewed by A, still refused on B.
    tokio::time::sleep(ttl * 3).await;
    assert!(guard.is_held());
    assert_eq!(
        b.acquire_lease(name, "node-b#1", ttl).await,
        Err(StoreError::InUse)
    );
    let client = db.client().await;
    let holder: String = client
        .query_one("SELECT holder FROM leases WHERE name = $1", &[&name])
        .await
        .unwrap()
        .get(0);
    assert_eq!(holder, guard.holder(), "the row names the guard's holder");
    drop(guard);
    acquire_soon(b.as_ref(), name, "node-b#1").await;
    assert_eq!(
        a.acquire_lease(name, "node-a#2", ttl).await,
        Err(StoreError::InUse)
    );

    // A node that died holding a lease: its row stays until it expires by the database's
    // clock (whatever the nodes' clocks say).
    let other = "pop3-maildrop/43";
    client
        .execute(
            "INSERT INTO leases (name, holder, expires_at)
             VALUES ($1, 'dead-node#1', now() + interval '1 second')",
            &[&other],
        )
        .await
        .unwrap();
    assert_eq!(
        b.acquire_lease(other, "node-b#2", ttl).await,
        Err(StoreError::InUse)
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    b.acquire_lease(other, "node-b#2", ttl)
        .await
        .expect("expired lease taken");
    let holder: String = client
        .query_one("SELECT holder FROM leases WHERE name = $1", &[&other])
        .await
        .unwrap()
        .get(0);
    assert_eq!(holder, "node-b#2");
    assert!(!a.renew_lease(other, "dead-node#1", ttl).await.unwrap());
    drop((a, b));
    db.cleanup().await;
}

/// Many nodes racing for one free lease and one new secret: exactly one lease holder, one
/// secret for all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_nodes_get_one_lease_and_one_secret() {
    let Some(db) = TestDb::create("racing_leases").await else {
        return;
    };
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(db.store().await);
    }
    let mut tasks = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for j in 0..4 {
            let n = n.clone();
            tasks.push(tokio::spawn(async move {
                let won = n
                    .acquire_lease("race", &format!("n{i}#{j}"), Duration::from_secs(60))
                    .await;
                let secret = n
                    .shared_secret("race-secret", format!("s{i}-{j}").as_bytes())
                    .await
                    .unwrap();
                (won, secret)
            }));
        }
    }
    let mut winners = 0;
    let mut secrets = std::collections::BTreeSet::new();
    for t in tasks {
        let (won, secret) = t.await.unwrap();
        match won {
            Ok(()) => winners += 1,
            Err(StoreError::InUse) => {}
            Err(e) => panic!("{e:?}"),
        }
        secrets.insert(secret);
    }
    assert_eq!(winners, 1);
    assert_eq!(secrets.len(), 1, "{secrets:?}");
    drop(nodes);
    db.cleanup().await;
}

/// A version-1 database (the old maildrop-lock `leases` table, no secrets, no recent marks)
/// is upgraded in place: its mailboxes get a recent mark of 0 (their messages are recent once
/// more), the old lease rows go, and the new tables work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_is_upgraded() {
    let Some(db) = TestDb::create("upgrade_v1").await else {
        return;
    };
    let s = db.store().await;
    s.add_domain(&mail_types::Domain::parse("up.test").unwrap())
        .await
        .unwrap();
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    let acc = s
        .add_user(&mail_types::Address::parse("u@up.test").unwrap(), hash)
        .await
        .unwrap();
    for body in ["Subject: a\r\n\r\n1\r\n", "Subject: b\r\n\r\n2\r\n"] {
        s.deliver(std::sync::Arc::new(body.as_bytes().to_vec()), 1, &[acc])
            .await
            .unwrap();
    }
    drop(s);
    // Back to what version 1 left.
    let client = db.client().await;
    client
        .batch_execute(
            "DELETE FROM schema_migrations WHERE version >= 2;
             DROP TABLE leases; DROP TABLE secrets;
             DROP TABLE change_log; DROP TABLE change_heads;
             DROP TABLE queue_leases, queue_domains, sending_log;
             DROP INDEX queue_recipients_domain_due;
             ALTER TABLE queue_recipients DROP COLUMN lease;
             DROP TABLE dkim_keys;
             DROP TABLE login_failures, login_bans;
             DROP TABLE greylist;
             ALTER TABLE messages DROP COLUMN save_date, DROP COLUMN retrieved_at;
             DROP TABLE quota_warnings;
             ALTER TABLE accounts DROP COLUMN message_limit, DROP COLUMN messages_used,
               DROP COLUMN storage_warned, DROP COLUMN messages_warned;
             ALTER TABLE accounts DROP COLUMN pop3_expire_days;
             ALTER TABLE mailboxes DROP COLUMN recent_uid;
             ALTER TABLE expunged DROP COLUMN expunged_at;
             ALTER TABLE mailboxes DROP COLUMN expunge_floor;
             CREATE TABLE leases (name text PRIMARY KEY, node text NOT NULL,
                                  token bigint NOT NULL, expires_at timestamptz NOT NULL);
             INSERT INTO leases VALUES ('maildrop:1', 'old-node', 7, now() + interval '1 hour');",
        )
        .await
        .unwrap();
    let s = db.store().await;
    assert_eq!(
        s.schema_version().await.unwrap(),
        store_postgres::SCHEMA_VERSION
    );
    let inbox = s.lookup_mailbox(acc, store::INBOX).await.unwrap().unwrap();
    assert_eq!(s.recent_mark(inbox.id).await.unwrap(), 0);
    // Version 8 counted the messages already there (RFC 9208 MESSAGE).
    assert_eq!(s.quota(acc).await.unwrap().messages, 2);
    let leases: i64 = client
        .query_one("SELECT count(*) FROM leases", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(leases, 0, "the old lock rows are gone");
    s.acquire_lease("pop3-maildrop/1", "n#1", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(s.shared_secret("k", b"v").await.unwrap(), b"v");
    drop(s);
    db.cleanup().await;
}

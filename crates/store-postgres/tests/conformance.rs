//! The store conformance suite against PostgreSQL, each check on a fresh database (and once all
//! together on one store). Skipped without `YUBIN_TEST_PG_URL`.

mod common;

use std::sync::Arc;

use common::TestDb;
use store::Store;
use store::conformance;

macro_rules! check {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(db) = TestDb::create(stringify!($name)).await else {
                return;
            };
            let store = db.store().await;
            conformance::$name(store.as_ref()).await;
            drop(store);
            db.cleanup().await;
        }
    };
}

check!(domains_and_users);
check!(add_users_in_batches);
check!(aliases_and_catch_all);
check!(pop3_expire_choice);
check!(default_mailboxes);
check!(delivery_uids_and_dedup);
check!(append_and_blobs);
check!(flags);
check!(copy_and_expunge);
check!(conditional_store_and_expunge_log);
check!(expunge_log_pruning);
check!(mailbox_names);
check!(rename_and_delete);
check!(subscriptions);
check!(change_events);
check!(urlauth_keys);
check!(message_facts_cache);
check!(expunge_deleted_and_counts);
check!(calls_are_scoped_to_the_account);
check!(leases);
check!(move_messages);
check!(append_many);
check!(dkim_keys);
check!(save_dates);
check!(retrievals_and_aged_messages);
check!(quota_limits_and_counters);
check!(quota_warnings);

/// RFC 9208 quotas: deliveries through two nodes racing for the last bytes of one account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_race_across_nodes() {
    let Some(db) = TestDb::create("quota_race_across_nodes").await else {
        return;
    };
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (db.store().await, db.store().await);
    conformance::quota_race(a.clone(), b.clone()).await;
    drop((a, b));
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_guard() {
    let Some(db) = TestDb::create("lease_guard").await else {
        return;
    };
    let store: Arc<dyn Store> = db.store().await;
    conformance::lease_guard(store.clone()).await;
    drop(store);
    db.cleanup().await;
}

/// Checks on two handles of one database: two nodes' worth of state (pools, memory).
macro_rules! across {
    ($name:ident, $check:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(db) = TestDb::create(stringify!($name)).await else {
                return;
            };
            let (a, b) = (db.store().await, db.store().await);
            conformance::$check(a.as_ref(), b.as_ref()).await;
            drop((a, b));
            db.cleanup().await;
        }
    };
}

across!(leases_across_nodes, leases_across);
across!(shared_secrets_across_nodes, shared_secrets);
across!(recent_claims_across_nodes, recent_claims);
across!(dkim_keys_across_nodes, dkim_keys_across);

/// `yubin migrate` from the embedded store to PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_sqlite_to_postgres() {
    let Some(db) = TestDb::create("transfer_to_pg").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let from = store_sqlite::open(dir.path()).expect("open source");
    let to = db.store().await;
    conformance::transfer_round_trip(from.as_ref(), to.as_ref()).await;
    drop(to);
    db.cleanup().await;
}

/// `yubin migrate` from PostgreSQL to the embedded store: the PostgreSQL store filled by a
/// copy from the embedded one (queue state included) is copied again into a fresh embedded
/// store, and both compared. (`transfer_round_trip` with PostgreSQL as the source needs the
/// queue's claims on PostgreSQL, which come separately.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_postgres_to_sqlite() {
    let Some(db) = TestDb::create("transfer_from_pg").await else {
        return;
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = store_sqlite::open(a.path()).expect("open source");
    let pg = db.store().await;
    conformance::transfer_round_trip(first.as_ref(), pg.as_ref()).await;
    let last = store_sqlite::open(b.path()).expect("open target");
    conformance::transfer_copy_again(pg.as_ref(), last.as_ref()).await;
    drop(pg);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_on_one_store() {
    let Some(db) = TestDb::create("all_on_one_store").await else {
        return;
    };
    let store: Arc<dyn Store> = db.store().await;
    conformance::run_all(store).await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_checks() {
    let Some(db) = TestDb::create("queue_checks").await else {
        return;
    };
    let store = db.store().await;
    conformance::queue_enqueue_and_read(store.as_ref()).await;
    conformance::queue_attempts_and_cleanup(store.as_ref()).await;
    conformance::run_queue(store.as_ref()).await;
    // Every body reference was released and the bodies deleted with the last one.
    let client = db.client().await;
    let blobs: i64 = client
        .query_one("SELECT count(*) FROM blobs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(blobs, 0, "queue bodies left behind");
    drop(store);
    db.cleanup().await;
}

/// Runs `$body` with two stores (two "nodes": separate pools and memory) on one fresh
/// database.
macro_rules! two_nodes {
    ($name:ident, |$a:ident, $b:ident| $body:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(db) = TestDb::create(stringify!($name)).await else {
                return;
            };
            let ($a, $b) = (db.store().await, db.store().await);
            $body.await;
            drop(($a, $b));
            db.cleanup().await;
        }
    };
}

two_nodes!(changes_across_handles, |a, b| {
    conformance::changes_across_handles(a.as_ref(), b.as_ref())
});
two_nodes!(concurrent_appends_across_handles, |a, b| {
    conformance::concurrent_appends_across_handles(a.as_ref(), b.as_ref())
});
two_nodes!(queue_claims_are_exclusive, |a, b| {
    conformance::queue_claims_are_exclusive(a.as_ref(), b.as_ref())
});
two_nodes!(queue_lease_expiry_and_renew, |a, b| {
    conformance::queue_lease_expiry_and_renew(a.as_ref(), b.as_ref())
});
two_nodes!(queue_destination_limit, |a, b| {
    conformance::queue_destination_limit(a.as_ref(), b.as_ref())
});
two_nodes!(sending_log_limits, |a, b| {
    conformance::sending_log_limits(a.as_ref(), b.as_ref())
});
two_nodes!(login_guard_counters_and_bans, |a, b| {
    conformance::login_guard_counters_and_bans(a.as_ref(), b.as_ref())
});
two_nodes!(greylist_triples, |a, b| {
    conformance::greylist_triples(a.as_ref(), b.as_ref())
});
two_nodes!(queue_fair_claims, |a, _b| {
    conformance::queue_fair_claims(a.as_ref())
});
two_nodes!(queue_shared_all_on_one_store, |a, b| async {
    conformance::run_queue(a.as_ref()).await;
    conformance::run_queue_shared(a.as_ref(), b.as_ref()).await;
});

/// `yubin check`: clean after every kind of write, then reports damage done on purpose,
/// including a body whose bytes no longer match its hash and size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_damage() {
    let Some(db) = TestDb::create("check_reports_damage").await else {
        return;
    };
    let store: Arc<dyn Store> = db.store().await;
    let url = db.url.clone();
    conformance::check_reports_damage(store.as_ref(), |d| async move {
        let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let (mailbox, account) = (d.mailbox.number, d.account.0);
        c.execute(
            "UPDATE mailboxes SET uid_next = 1 WHERE id = $1",
            &[&mailbox],
        )
        .await
        .unwrap();
        c.execute(
            "UPDATE accounts SET quota_used = quota_used + 7 WHERE id = $1",
            &[&account],
        )
        .await
        .unwrap();
        let hash_of = async |uid: u32| -> String {
            c.query_one(
                "SELECT blob_hash FROM messages WHERE mailbox_id = $1 AND uid = $2",
                &[&mailbox, &(uid as i64)],
            )
            .await
            .unwrap()
            .get(0)
        };
        let counted = hash_of(d.refcount_of).await;
        c.execute(
            "UPDATE blobs SET refcount = refcount + 1 WHERE hash = $1",
            &[&counted],
        )
        .await
        .unwrap();
        let big = hash_of(d.body_of).await;
        c.execute("UPDATE blobs SET data = 'damaged' WHERE hash = $1", &[&big])
            .await
            .unwrap();
        vec![format!("body {big}: 7 bytes")]
    })
    .await;
    drop(store);
    db.cleanup().await;
}

//! The store conformance suite against the SQLite backend, each check on a fresh data directory
//! (and once all together on one store).

use std::sync::Arc;

use store::Store;
use store::conformance;

fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_sqlite::open(dir.path()).expect("open");
    (dir, store)
}

macro_rules! check {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = fresh();
            conformance::$name(store.as_ref()).await;
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
check!(leases);
check!(move_messages);
check!(append_many);
check!(save_dates);
check!(retrievals_and_aged_messages);
check!(quota_limits_and_counters);
check!(quota_warnings);

/// RFC 9208 quotas: deliveries through two handles (two processes' writers) racing for the
/// last bytes of one account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_race_across_handles() {
    let (_dir, a, b) = two_handles();
    conformance::quota_race(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_guard() {
    let (_dir, store) = fresh();
    conformance::lease_guard(store).await;
}

/// Two handles on one data directory: two processes' worth of state (writer threads,
/// connections, memory), one database.
fn two_handles() -> (tempfile::TempDir, Arc<dyn Store>, Arc<dyn Store>) {
    let (dir, a) = fresh();
    let b = store_sqlite::open(dir.path()).expect("second handle");
    (dir, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_across_handles() {
    let (_dir, a, b) = two_handles();
    conformance::leases_across(a.as_ref(), b.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_secrets_across_handles() {
    let (_dir, a, b) = two_handles();
    conformance::shared_secrets(a.as_ref(), b.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_claims_across_handles() {
    let (_dir, a, b) = two_handles();
    conformance::recent_claims(a.as_ref(), b.as_ref()).await;
}
check!(message_facts_cache);
check!(expunge_deleted_and_counts);
check!(calls_are_scoped_to_the_account);
check!(dkim_keys);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkim_keys_across_handles() {
    let (_dir, a, b) = two_handles();
    conformance::dkim_keys_across(a.as_ref(), b.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_on_one_store() {
    let (_dir, store) = fresh();
    conformance::run_all(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_sqlite::open(dir.path()).expect("open");
    conformance::queue_enqueue_and_read(store.as_ref()).await;
    conformance::queue_attempts_and_cleanup(store.as_ref()).await;
    conformance::run_queue(store.as_ref()).await;
    // Every body reference was released and the files unlinked after the commit.
    drop(store);
    let mut files = 0;
    for sub in std::fs::read_dir(dir.path().join("blobs")).expect("blobs") {
        files += std::fs::read_dir(sub.expect("entry").path())
            .expect("fan-out")
            .count();
    }
    assert_eq!(files, 0, "queue bodies left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_across_handles() {
    let (_dir, a, b) = two_handles();
    conformance::changes_across_handles(a.as_ref(), b.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_across_handles() {
    let (_dir, a, b) = two_handles();
    conformance::concurrent_appends_across_handles(a.as_ref(), b.as_ref()).await;
}

/// `yubin migrate` between two embedded stores (the same code copies to and from PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_round_trip() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let from = store_sqlite::open(a.path()).expect("open source");
    let to = store_sqlite::open(b.path()).expect("open target");
    conformance::transfer_round_trip(from.as_ref(), to.as_ref()).await;
    // And the copy, copied again, without claiming anything in it.
    let c = tempfile::tempdir().unwrap();
    let last = store_sqlite::open(c.path()).expect("open second target");
    conformance::transfer_copy_again(to.as_ref(), last.as_ref()).await;
}

/// Two handles on one data directory: two processes' connections and writer threads.
fn two_sqlite_handles() -> (
    tempfile::TempDir,
    Arc<store_sqlite::SqliteStore>,
    Arc<store_sqlite::SqliteStore>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = store_sqlite::open(dir.path()).expect("open a");
    let b = store_sqlite::open(dir.path()).expect("open b");
    (dir, a, b)
}

macro_rules! shared {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, a, b) = two_sqlite_handles();
            conformance::$name(a.as_ref(), b.as_ref()).await;
        }
    };
}

shared!(queue_claims_are_exclusive);
shared!(queue_lease_expiry_and_renew);
shared!(queue_destination_limit);
shared!(sending_log_limits);
shared!(login_guard_counters_and_bans);
shared!(greylist_triples);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_fair_claims() {
    let (_dir, store) = fresh_sqlite();
    conformance::queue_fair_claims(store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_shared_all_on_one_store() {
    let (_dir, a, b) = two_sqlite_handles();
    conformance::run_queue(a.as_ref()).await;
    conformance::run_queue_shared(a.as_ref(), b.as_ref()).await;
}

fn fresh_sqlite() -> (tempfile::TempDir, Arc<store_sqlite::SqliteStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_sqlite::open(dir.path()).expect("open");
    (dir, store)
}

/// `yubin check`: clean after every kind of write, then reports damage done on purpose — in
/// the database, a deleted body file, and a file no row references.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_damage() {
    let (dir, store) = fresh();
    let path = dir.path().to_path_buf();
    conformance::check_reports_damage(store.as_ref(), |d| async move {
        let db = rusqlite::Connection::open(path.join("yubin.db")).unwrap();
        db.execute(
            "UPDATE mailboxes SET uid_next = 1 WHERE id = ?1",
            [d.mailbox.number],
        )
        .unwrap();
        db.execute(
            "UPDATE accounts SET quota_used = quota_used + 7 WHERE id = ?1",
            [d.account.0],
        )
        .unwrap();
        let hash_of = |uid: u32| -> String {
            db.query_row(
                "SELECT blob_hash FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
                rusqlite::params![d.mailbox.number, uid],
                |r| r.get(0),
            )
            .unwrap()
        };
        let counted = hash_of(d.refcount_of);
        db.execute(
            "UPDATE blobs SET refcount = refcount + 1 WHERE hash = ?1",
            [&counted],
        )
        .unwrap();
        let big = hash_of(d.body_of);
        std::fs::remove_file(path.join("blobs").join(&big[..2]).join(&big)).unwrap();
        let orphan = "ab".repeat(32);
        std::fs::write(path.join("blobs/ab").join(&orphan), b"left over").unwrap();
        vec![
            format!("body {big}: file missing"),
            format!("body {orphan}: file without a row"),
        ]
    })
    .await;
    // A young orphan is a delivery in progress beside a live server: not reported.
    let report = store
        .check(std::time::Duration::from_secs(600))
        .await
        .unwrap();
    assert!(
        !report.problems.iter().any(|p| p.contains("without a row")),
        "{report}"
    );
}

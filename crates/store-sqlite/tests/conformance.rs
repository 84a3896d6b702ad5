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
check!(aliases_and_catch_all);
check!(default_mailboxes);
check!(delivery_uids_and_dedup);
check!(append_and_blobs);
check!(flags);
check!(copy_and_expunge);
check!(conditional_store_and_expunge_log);
check!(mailbox_names);
check!(rename_and_delete);
check!(subscriptions);
check!(change_events);
check!(urlauth_keys);
check!(maildrop_lock);
check!(message_facts_cache);
check!(expunge_deleted_and_counts);

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

/// Two handles on one data directory, as the server and the admin CLI (or two servers) are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = store_sqlite::open(dir.path()).expect("open a");
    let b = store_sqlite::open_with(
        dir.path(),
        &store_sqlite::OpenOptions {
            sweep: false,
            ..Default::default()
        },
    )
    .expect("open b");
    conformance::changes_across_handles(a.as_ref(), b.as_ref()).await;
    conformance::concurrent_appends_across_handles(a.as_ref(), b.as_ref()).await;
}

/// `yubin migrate` between two embedded stores (the same code copies to and from PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_round_trip() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let from = store_sqlite::open(a.path()).expect("open source");
    let to = store_sqlite::open(b.path()).expect("open target");
    conformance::transfer_round_trip(from.as_ref(), to.as_ref()).await;
}

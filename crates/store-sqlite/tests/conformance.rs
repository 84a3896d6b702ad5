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
check!(mailbox_names);
check!(rename_and_delete);
check!(change_events);
check!(maildrop_lock);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_on_one_store() {
    let (_dir, store) = fresh();
    conformance::run_all(store).await;
}

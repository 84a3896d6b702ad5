//! MOVE and MULTIAPPEND as single transactions, and the coordination rows, as this backend
//! keeps them: quota at its limit, blob references, what `sqlite3 yubin.db` shows, and what
//! survives a reopen.

use std::sync::Arc;
use std::time::Duration;

use mail_types::Address;
use store::{AppendMessage, Coordination, Directory, Flags, INBOX, MailStore, StoreError};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

async fn user(
    store: &store_sqlite::SqliteStore,
    address: &str,
) -> (store::AccountId, store::MailboxId) {
    let a = addr(address);
    let _ = store.add_domain(a.domain()).await;
    let id = store.add_user(&a, HASH).await.unwrap();
    let inbox = store.find_mailbox(id, INBOX).await.unwrap().unwrap().id;
    (id, inbox)
}

fn body(n: usize, c: u8) -> Arc<Vec<u8>> {
    Arc::new(vec![c; n])
}

fn item(bytes: Arc<Vec<u8>>) -> AppendMessage {
    AppendMessage {
        bytes,
        flags: Flags::default(),
        internal_date: 1,
    }
}

fn count(dir: &std::path::Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(dir.join("yubin.db")).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// RFC 3502 §6.3.11: a batch whose last message exceeds the quota stores none of them — no
/// row, no UID used, no quota charged, no blob row left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiappend_over_quota_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let (acc, ib) = user(&store, "q@multi.test").await;
    store
        .set_quota(&addr("q@multi.test"), Some(250))
        .await
        .unwrap();
    let r = store
        .append_many(
            ib,
            vec![
                item(body(100, b'a')),
                item(body(100, b'b')),
                item(body(100, b'c')),
            ],
        )
        .await;
    assert_eq!(r, Err(StoreError::OverQuota));
    let mb = store.mailbox(ib).await.unwrap();
    assert_eq!((mb.messages, mb.uid_next), (0, 1));
    assert_eq!(store.quota(acc).await.unwrap().used, 0);
    assert_eq!(count(dir.path(), "SELECT count(*) FROM blobs"), 0);
    let ok = store
        .append_many(ib, vec![item(body(100, b'a')), item(body(100, b'b'))])
        .await
        .unwrap();
    assert_eq!(ok.iter().map(|s| s.uid).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(store.quota(acc).await.unwrap().used, 200);
}

/// MOVE keeps the account's usage: at its quota limit, COPY is refused but MOVE to Trash works,
/// and the blob references end where they started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_at_the_quota_limit_and_blob_references() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let (acc, ib) = user(&store, "full@move.test").await;
    store
        .set_quota(&addr("full@move.test"), Some(200))
        .await
        .unwrap();
    store.deliver(body(100, b'x'), 1, &[acc]).await.unwrap();
    store.deliver(body(100, b'y'), 1, &[acc]).await.unwrap();
    let trash = store.find_mailbox(acc, "Trash").await.unwrap().unwrap();
    assert_eq!(
        store.copy_messages(ib, &[1], trash.id).await,
        Err(StoreError::OverQuota)
    );
    let refs = "SELECT sum(refcount) FROM blobs";
    assert_eq!(count(dir.path(), refs), 2);
    let pairs = store.move_messages(ib, &[1, 2], trash.id).await.unwrap();
    assert_eq!(pairs, vec![(1, 1), (2, 2)]);
    assert_eq!(store.quota(acc).await.unwrap().used, 200);
    assert_eq!(count(dir.path(), refs), 2);
    assert_eq!(
        count(
            dir.path(),
            &format!("SELECT count(*) FROM expunged WHERE mailbox_id = {ib}")
        ),
        2
    );
    // The files are still there (no reference went to zero on the way).
    let trash_msgs = store.list_messages(trash.id).await.unwrap();
    assert_eq!(
        store.read_blob(&trash_msgs[0].blob, 100).await.unwrap(),
        *body(100, b'x')
    );
}

/// Leases and secrets are rows an admin can read; `\Recent` marks outlive the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordination_rows_are_readable_and_marks_persist() {
    let dir = tempfile::tempdir().unwrap();
    let ib = {
        let store = store_sqlite::open(dir.path()).unwrap();
        let (acc, ib) = user(&store, "r@rows.test").await;
        store.deliver(body(10, b'r'), 1, &[acc]).await.unwrap();
        store
            .acquire_lease("pop3-maildrop/7", "host-1#1", Duration::from_secs(60))
            .await
            .unwrap();
        store.shared_secret("x", b"secret").await.unwrap();
        assert_eq!(store.claim_recent(ib, 1).await.unwrap(), 0);
        ib
    };
    assert_eq!(
        count(
            dir.path(),
            "SELECT count(*) FROM leases WHERE name = 'pop3-maildrop/7' AND holder = 'host-1#1'
             AND expires_at > 0"
        ),
        1
    );
    assert_eq!(
        count(
            dir.path(),
            "SELECT length(value) FROM secrets WHERE name = 'x'"
        ),
        6
    );
    let store = store_sqlite::open(dir.path()).unwrap();
    assert_eq!(store.recent_mark(ib).await.unwrap(), 1);
    assert_eq!(
        store.claim_recent(ib, 1).await.unwrap(),
        1,
        "not recent again"
    );
    assert_eq!(
        store
            .acquire_lease("pop3-maildrop/7", "host-2#1", Duration::from_secs(60))
            .await,
        Err(StoreError::InUse),
        "a lease outlives its process until it expires"
    );
}

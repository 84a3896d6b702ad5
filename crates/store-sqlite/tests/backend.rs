//! Behaviour specific to the SQLite + blob-directory backend: blob sharing and removal, crash
//! sweep, persistence across reopen, concurrency, quota limits, the on-disk schema.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mail_types::{Address, Domain};
use store::{Directory, FlagOp, Flags, INBOX, MailStore, MessageMeta, StoreError, SystemFlags};
use store_sqlite::SqliteStore;
use tokio::io::AsyncReadExt;

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

/// Names of the files under `blobs/` (temporary files start with a dot).
fn all_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("blobs")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Hashes of the blob files on disk (no temporary files).
fn blob_files(dir: &Path) -> Vec<String> {
    let mut out = all_files(dir);
    out.retain(|f| !f.starts_with('.'));
    out.sort();
    out
}

/// A body larger than those kept in the database (`INLINE_BODY_MAX`), so it is a blob file.
fn large(text: &[u8]) -> Vec<u8> {
    let mut body = text.to_vec();
    body.resize(store_sqlite::INLINE_BODY_MAX as usize + 1, b'x');
    body
}

/// Hashes of the bodies kept in the database.
fn db_bodies(dir: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.join("yubin.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT hash FROM blob_bodies ORDER BY hash")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Blob files are unlinked right after the commit, asynchronously to the caller.
async fn wait_for_files(dir: &Path, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while blob_files(dir).len() != expected {
        assert!(
            Instant::now() < deadline,
            "expected {expected} blob files, have {:?}",
            blob_files(dir)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn users(store: &SqliteStore, domain: &str, n: usize) -> Vec<store::AccountId> {
    store
        .add_domain(&Domain::parse(domain).unwrap())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            store
                .add_user(&addr(&format!("u{i}@{domain}")), HASH)
                .await
                .unwrap(),
        );
    }
    ids
}

async fn inbox(store: &SqliteStore, account: store::AccountId) -> store::MailboxId {
    store
        .find_mailbox(account, INBOX)
        .await
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_blob_for_ten_recipients_removed_after_last_reference() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let ids = users(&store, "ten.test", 10).await;
    let body = Arc::new(large(b"Subject: hi\r\n\r\nten\r\n"));
    let stored = store.deliver(body.clone(), 1, &ids).await.unwrap();
    assert_eq!(stored.len(), 10);
    let files = blob_files(dir.path());
    assert_eq!(files.len(), 1, "stored once");
    let on_disk = std::fs::read(
        dir.path()
            .join("blobs")
            .join(&files[0][0..2])
            .join(&files[0]),
    )
    .unwrap();
    assert_eq!(on_disk, *body);

    // Delivering the same bytes again shares the file too.
    store.deliver(body.clone(), 2, &ids[..1]).await.unwrap();
    assert_eq!(blob_files(dir.path()).len(), 1);

    // Expunge all references but one: the file stays.
    for (i, &acc) in ids.iter().enumerate() {
        let ib = inbox(&store, acc).await;
        let uids: Vec<u32> = if i == 0 { vec![1, 2] } else { vec![1] };
        let keep_last = i == ids.len() - 1;
        if !keep_last {
            assert_eq!(store.expunge(ib, &uids).await.unwrap(), uids);
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(blob_files(dir.path()).len(), 1, "still referenced once");
    let last = inbox(&store, ids[9]).await;
    let meta = store.list_messages(last).await.unwrap();
    let mut read = Vec::new();
    store
        .open_blob(&meta[0].blob)
        .await
        .unwrap()
        .read_to_end(&mut read)
        .await
        .unwrap();
    assert_eq!(read, *body);

    store.expunge(last, &[1]).await.unwrap();
    wait_for_files(dir.path(), 0).await;
    assert!(matches!(
        store.open_blob(&meta[0].blob).await,
        Err(StoreError::Expunged)
    ));
}

/// A small body is stored once in the database (no file), shared by its recipients and their
/// copies, read back through every read path, and deleted with its last reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_bodies_live_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let ids = users(&store, "small.test", 2).await;
    let body = Arc::new(b"Subject: small\r\n\r\nkept in the database\r\n".to_vec());
    store.deliver(body.clone(), 1, &ids).await.unwrap();
    assert!(blob_files(dir.path()).is_empty());
    assert_eq!(db_bodies(dir.path()).len(), 1);

    let ib0 = inbox(&store, ids[0]).await;
    let meta = store.list_messages(ib0).await.unwrap();
    let blob = meta[0].blob.clone();
    let mut read = Vec::new();
    store
        .open_blob(&blob)
        .await
        .unwrap()
        .read_to_end(&mut read)
        .await
        .unwrap();
    assert_eq!(read, *body);
    assert_eq!(
        store.read_blob(&blob, body.len() as u64).await.unwrap(),
        *body
    );
    // A wrong size hint still finds it.
    assert_eq!(store.read_blob(&blob, 1 << 30).await.unwrap(), *body);
    assert_eq!(store.read_message(ib0, 1).await.unwrap().unwrap(), *body);

    store.expunge(ib0, &[1]).await.unwrap();
    assert_eq!(db_bodies(dir.path()).len(), 1, "still referenced by u1");
    store
        .expunge(inbox(&store, ids[1]).await, &[1])
        .await
        .unwrap();
    assert!(db_bodies(dir.path()).is_empty());
    assert!(matches!(
        store.read_blob(&blob, body.len() as u64).await,
        Err(StoreError::Expunged)
    ));
    assert!(matches!(
        store.open_blob(&blob).await,
        Err(StoreError::Expunged)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_user_and_mailbox_release_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let ids = users(&store, "del.test", 2).await;
    store
        .deliver(Arc::new(large(b"shared")), 1, &ids)
        .await
        .unwrap();
    store
        .deliver(Arc::new(large(b"only u0")), 1, &ids[..1])
        .await
        .unwrap();
    let trash = store.find_mailbox(ids[1], "Trash").await.unwrap().unwrap();
    store
        .copy_messages(inbox(&store, ids[1]).await, &[1], trash.id)
        .await
        .unwrap();
    assert_eq!(blob_files(dir.path()).len(), 2);

    store.delete_user(&addr("u0@del.test")).await.unwrap();
    wait_for_files(dir.path(), 1).await;
    store.delete_mailbox(trash.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(blob_files(dir.path()).len(), 1, "INBOX copy still there");
    store.delete_user(&addr("u1@del.test")).await.unwrap();
    wait_for_files(dir.path(), 0).await;
    store
        .delete_domain(&Domain::parse("del.test").unwrap())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_everything_and_sweeps_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let (acc, ib, uid_validity, modseq) = {
        let store = store_sqlite::open(dir.path()).unwrap();
        let ids = users(&store, "reopen.test", 1).await;
        store
            .set_quota(&addr("u0@reopen.test"), Some(1_000_000))
            .await
            .unwrap();
        store
            .add_alias("@reopen.test", &[addr("u0@reopen.test")])
            .await
            .unwrap();
        let ib = inbox(&store, ids[0]).await;
        store
            .deliver(Arc::new(b"persist me".to_vec()), 7, &ids)
            .await
            .unwrap();
        let seen = Flags {
            system: SystemFlags::SEEN,
            keywords: vec!["$Label1".into()],
        };
        store
            .store_flags(ib, &[1], FlagOp::Add, &seen)
            .await
            .unwrap();
        store.create_mailbox(ids[0], "Keep/This").await.unwrap();
        let info = store.mailbox(ib).await.unwrap();
        (ids[0], ib, info.uid_validity, info.highest_modseq)
    };

    // Simulate a crash between a blob write and its commit, a stale temp file, and a fresh one
    // (which may belong to another process writing right now).
    let orphan = "ab".repeat(32);
    let orphan_dir = dir.path().join("blobs/ab");
    std::fs::create_dir_all(&orphan_dir).unwrap();
    std::fs::write(orphan_dir.join(&orphan), b"orphan").unwrap();
    let stale = orphan_dir.join(format!(".{orphan}.1.1.tmp"));
    let f = std::fs::File::create(&stale).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    drop(f);
    let fresh = orphan_dir.join(format!(".{orphan}.1.2.tmp"));
    std::fs::write(&fresh, b"in flight").unwrap();
    // "persist me" is small: its body is in the database, not a file.
    assert_eq!(blob_files(dir.path()), vec![orphan.clone()]);
    assert_eq!(all_files(dir.path()).len(), 3);

    let store = store_sqlite::open(dir.path()).unwrap();
    let report = store.sweep_report();
    assert_eq!((report.orphan_files, report.tmp_files), (1, 1));
    assert!(blob_files(dir.path()).is_empty());
    assert_eq!(all_files(dir.path()).len(), 1, "the fresh temp file");
    assert_eq!(db_bodies(dir.path()).len(), 1, "persist me");
    assert!(!stale.exists());
    assert!(fresh.exists());

    let user = store
        .find_user(&addr("u0@reopen.test"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((user.id, user.quota_limit), (acc, Some(1_000_000)));
    assert_eq!(
        store
            .resolve_recipient(&addr("x@reopen.test"))
            .await
            .unwrap(),
        vec![acc]
    );
    let info = store.mailbox(ib).await.unwrap();
    assert_eq!(
        (info.uid_validity, info.highest_modseq, info.uid_next),
        (uid_validity, modseq, 2)
    );
    let msgs = store.list_messages(ib).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].flags.keywords, vec!["$Label1".to_string()]);
    assert!(msgs[0].flags.system.contains(SystemFlags::SEEN));
    assert_eq!(msgs[0].internal_date, 7);
    assert!(
        store
            .find_mailbox(acc, "Keep/This")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.quota(acc).await.unwrap().used, 10);
    let mut body = Vec::new();
    store
        .open_blob(&msgs[0].blob)
        .await
        .unwrap()
        .read_to_end(&mut body)
        .await
        .unwrap();
    assert_eq!(body, b"persist me");
    // UIDs continue after reopen.
    assert_eq!(
        store
            .deliver(Arc::new(b"next".to_vec()), 1, &[acc])
            .await
            .unwrap()[0]
            .uid,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_deliveries_get_unique_uids() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let ids = users(&store, "many.test", 3).await;
    let mut tasks = Vec::new();
    for t in 0..50 {
        let store = Arc::clone(&store);
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..4 {
                let body = Arc::new(format!("task {t} msg {i}").into_bytes());
                let st = store.deliver(body, 1, &ids).await.expect("delivered");
                got.push(st[0].uid);
            }
            got
        }));
    }
    let mut uids = Vec::new();
    for t in tasks {
        uids.extend(t.await.unwrap());
    }
    uids.sort_unstable();
    assert_eq!(uids, (1..=200).collect::<Vec<u32>>());
    for acc in ids {
        let ib = store.mailbox(inbox(&store, acc).await).await.unwrap();
        assert_eq!((ib.messages, ib.uid_next), (200, 201));
        // Every delivery bumped HIGHESTMODSEQ once (it starts at 1).
        assert_eq!(ib.highest_modseq, 201);
    }
    // Small bodies: all in the database, none a file.
    assert_eq!(db_bodies(dir.path()).len(), 200);
    assert!(blob_files(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_limit_refuses_without_side_effects() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let ids = users(&store, "quota.test", 2).await;
    store
        .set_quota(&addr("u1@quota.test"), Some(100))
        .await
        .unwrap();
    let big = Arc::new(vec![b'x'; 101]);
    assert_eq!(
        store.deliver(big.clone(), 1, &ids).await,
        Err(StoreError::OverQuota)
    );
    // All or nothing: u0 did not get it either, and no UID was used.
    let ib0 = store.mailbox(inbox(&store, ids[0]).await).await.unwrap();
    assert_eq!((ib0.messages, ib0.uid_next), (0, 1));
    assert_eq!(store.quota(ids[0]).await.unwrap().used, 0);
    let sent = store.find_mailbox(ids[1], "Sent").await.unwrap().unwrap();
    assert_eq!(
        store.append(sent.id, big, &Flags::default(), 1).await,
        Err(StoreError::OverQuota)
    );
    let fits = Arc::new(vec![b'y'; 100]);
    store.deliver(fits, 1, &ids).await.unwrap();
    assert_eq!(store.quota(ids[1]).await.unwrap().used, 100);
    let ib1 = inbox(&store, ids[1]).await;
    let trash = store.find_mailbox(ids[1], "Trash").await.unwrap().unwrap();
    assert_eq!(
        store.copy_messages(ib1, &[1], trash.id).await,
        Err(StoreError::OverQuota)
    );
    // Orphans of refused writes are only files; the failed request left no row behind.
    store.set_quota(&addr("u1@quota.test"), None).await.unwrap();
    assert_eq!(store.quota(ids[1]).await.unwrap().limit, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readable_schema_and_a_second_process() {
    let dir = tempfile::tempdir().unwrap();
    let server = store_sqlite::open(dir.path()).unwrap();
    // The admin CLI opens the same data directory while the server runs.
    let cli = store_sqlite::open(dir.path()).unwrap();
    cli.add_domain(&Domain::parse("cli.test").unwrap())
        .await
        .unwrap();
    let acc = cli.add_user(&addr("admin@cli.test"), HASH).await.unwrap();
    let writes = (0..20).map(|i| {
        let server = Arc::clone(&server);
        tokio::spawn(async move { server.deliver(Arc::new(vec![i; 10]), 1, &[acc]).await })
    });
    let users_cli = (0..5).map(|i| {
        let cli = Arc::clone(&cli);
        tokio::spawn(async move { cli.add_user(&addr(&format!("c{i}@cli.test")), HASH).await })
    });
    for w in writes.collect::<Vec<_>>() {
        w.await.unwrap().unwrap();
    }
    for u in users_cli.collect::<Vec<_>>() {
        u.await.unwrap().unwrap();
    }
    assert_eq!(server.user_count().await.unwrap(), 6);
    drop(cli);

    let db = rusqlite::Connection::open(dir.path().join("yubin.db")).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, store_sqlite::SCHEMA_VERSION);
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let (n, used): (i64, i64) = db
        .query_row(
            "SELECT count(*), (SELECT quota_used FROM accounts WHERE address = 'admin@cli.test')
             FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
             WHERE b.name = 'INBOX' AND b.account_id = ?1",
            [acc],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((n, used), (20, 200));
    let refs: i64 = db
        .query_row("SELECT sum(refcount) FROM blobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(refs, 20);
    let special: String = db
        .query_row(
            "SELECT special_use FROM mailboxes WHERE account_id = ?1 AND name = 'Junk'",
            [acc],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(special, "junk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_blob_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let ids = users(&store, "lost.test", 1).await;
    store
        .deliver(Arc::new(large(b"gone")), 1, &ids)
        .await
        .unwrap();
    for f in blob_files(dir.path()) {
        let p = dir.path().join("blobs").join(&f[0..2]).join(&f);
        std::fs::remove_file(p).unwrap();
    }
    let meta = store
        .list_messages(inbox(&store, ids[0]).await)
        .await
        .unwrap();
    assert!(matches!(
        store.open_blob(&meta[0].blob).await,
        Err(StoreError::Expunged | StoreError::NotFound(_))
    ));
    // Delivering the same content again re-creates the file the existing row points to.
    store
        .deliver(Arc::new(large(b"gone")), 1, &ids)
        .await
        .unwrap();
    let mut body = Vec::new();
    store
        .open_blob(&meta[0].blob)
        .await
        .unwrap()
        .read_to_end(&mut body)
        .await
        .unwrap();
    assert_eq!(body, large(b"gone"));
}

/// The SELECT listing and the many-UID `get_messages` path (one range scan) agree with
/// `list_messages`: same UIDs, flags and order, expunged and unknown UIDs skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uid_flag_listing_and_range_reads_match_full_listing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let account = users(&store, "range.test", 1).await[0];
    let mb = inbox(&store, account).await;
    for i in 0..100u32 {
        let mut flags = Flags::default();
        if i % 3 == 0 {
            flags.system.insert(SystemFlags::SEEN);
        }
        let msg = Arc::new(format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes());
        store.append(mb, msg, &flags, 1_700_000_000).await.unwrap();
    }
    store.expunge(mb, &[5, 6, 50]).await.unwrap();
    let all = store.list_messages(mb).await.unwrap();
    assert_eq!(all.len(), 97);
    let compact = store.list_summaries(mb).await.unwrap();
    let expect: Vec<_> = all.iter().cloned().map(MessageMeta::summary).collect();
    assert_eq!(compact, expect);
    assert!(
        compact
            .iter()
            .any(|m| m.flags.system.contains(SystemFlags::SEEN))
    );
    // Dense request (range scan): 1..=200 includes expunged and never-used UIDs.
    let wanted: Vec<u32> = (1..=200).rev().collect();
    assert_eq!(store.get_messages(mb, &wanted).await.unwrap(), all);
    // Sparse request (point lookups) gives the same rows for the same UIDs.
    let sparse = store.get_messages(mb, &[100, 1, 5]).await.unwrap();
    let uids: Vec<u32> = sparse.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [1, 100]);
    // Every other UID: still dense enough for the range scan, only the asked ones come back.
    let odd: Vec<u32> = (1..=100).filter(|u| u % 2 == 1).collect();
    let got = store.get_messages(mb, &odd).await.unwrap();
    assert!(got.iter().all(|m| m.uid % 2 == 1));
    assert_eq!(got.len(), 49); // 5 is expunged
    let info = store.mailbox(mb).await.unwrap();
    // 34 of 100 were \\Seen (i % 3 == 0); none of UIDs 5, 6, 50 was.
    assert_eq!((info.messages, info.unseen), (97, 97 - 34));
}

/// The summaries (SELECT's view) agree with the full rows on everything but the blob id,
/// keywords included; `read_blob` and `read_message` return the stored bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_and_whole_message_reads_match_full_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let account = users(&store, "flags.test", 1).await[0];
    let mb = inbox(&store, account).await;
    for i in 0..60u32 {
        let mut flags = Flags::default();
        if i % 2 == 0 {
            flags.system.insert(SystemFlags::FLAGGED);
        }
        if i % 5 == 0 {
            flags.keywords.push("$Label1".into());
        }
        let msg = Arc::new(format!("Subject: {i}\r\n\r\nbody {i}\r\n").into_bytes());
        store
            .append(mb, msg, &flags, 1_700_000_000 + i64::from(i))
            .await
            .unwrap();
    }
    store.expunge(mb, &[7]).await.unwrap();
    let light = store.list_summaries(mb).await.unwrap();
    assert_eq!(light.len(), 59);
    assert_eq!(light[0].flags.keywords, vec!["$Label1".to_string()]);
    assert!(light[0].flags.system.contains(SystemFlags::FLAGGED));
    assert!(light[1].flags.keywords.is_empty());
    assert!(!light[1].flags.system.contains(SystemFlags::FLAGGED));
    assert_eq!(light[1].internal_date, 1_700_000_001);
    let full = store.list_messages(mb).await.unwrap();
    assert!(full.iter().all(|m| !m.blob.0.is_empty()));
    let full: Vec<_> = full.into_iter().map(MessageMeta::summary).collect();
    assert_eq!(light, full);
    assert_eq!(
        store.read_message(mb, 3).await.unwrap().as_deref(),
        Some(&b"Subject: 2\r\n\r\nbody 2\r\n"[..])
    );
    assert_eq!(store.read_message(mb, 7).await.unwrap(), None, "expunged");
    let meta = store.get_messages(mb, &[3]).await.unwrap();
    let body = store.read_blob(&meta[0].blob, meta[0].size).await.unwrap();
    assert_eq!(body, b"Subject: 2\r\n\r\nbody 2\r\n");
    let bogus = store::BlobId("../../etc/passwd".into());
    assert!(matches!(
        store.read_blob(&bogus, 0).await,
        Err(StoreError::NotFound(_))
    ));
}

/// The writer never checkpoints (that would stall a whole batch of deliveries); the background
/// checkpointer must still move committed pages into the database file.
#[tokio::test(flavor = "multi_thread")]
async fn wal_is_checkpointed_off_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    let ids = users(&store, "wal.test", 1).await;
    // Let the checkpoint of the set-up writes happen, then measure.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let db = dir.path().join("yubin.db");
    let before = std::fs::metadata(&db).unwrap().len();
    for i in 0..300 {
        let body = format!("Subject: {i}\r\n\r\n{}\r\n", "x".repeat(500));
        store
            .deliver(Arc::new(body.into_bytes()), i, &ids)
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::metadata(&db).unwrap().len() <= before {
        assert!(
            Instant::now() < deadline,
            "no checkpoint moved the 300 deliveries into yubin.db"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

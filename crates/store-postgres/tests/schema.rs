//! The schema as an admin and the planner see it: readable tables, and the covering index that
//! serves IMAP SELECT and STATUS from the index alone. Skipped without `YUBIN_TEST_PG_URL`.

mod common;

use common::TestDb;
use mail_types::{Address, Domain};
use store::{Directory, INBOX, MailStore};

/// The reads of every message's summary (SELECT's view, STATUS counts) can be index-only
/// scans of `messages_summary`: no column they need is missing from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_and_counts_are_served_by_the_covering_index() {
    let Some(db) = TestDb::create("covering_index").await else {
        return;
    };
    let store = db.store().await;
    store
        .add_domain(&Domain::parse("plan.test").unwrap())
        .await
        .unwrap();
    let acc = store
        .add_user(&Address::parse("p@plan.test").unwrap(), "x")
        .await
        .unwrap();
    for i in 0..50 {
        let body = std::sync::Arc::new(format!("Subject: {i}\r\n\r\nx\r\n").into_bytes());
        store.deliver(body, 1, &[acc]).await.unwrap();
    }
    let mailbox = store.lookup_mailbox(acc, INBOX).await.unwrap().unwrap().id;
    let client = db.client().await;
    // The visibility map lets the planner skip the rows; the table is too small to make an
    // index worth it unless sequential scans are ruled out.
    client
        .batch_execute("VACUUM ANALYZE messages")
        .await
        .unwrap();
    client
        .batch_execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
        .await
        .unwrap();
    for sql in [
        "SELECT uid, size, internal_date, flags, keywords, modseq FROM messages
         WHERE mailbox_id = $1 ORDER BY uid",
        "SELECT uid, flags, keywords FROM messages WHERE mailbox_id = $1 ORDER BY uid",
        "SELECT count(*), count(*) FILTER (WHERE (flags & 1) = 0), sum(size)
         FROM messages WHERE mailbox_id = $1",
    ] {
        let plan: Vec<String> = client
            .query(&format!("EXPLAIN {sql}"), &[&mailbox])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Only Scan using messages_summary"),
            "{sql}\n{plan}"
        );
    }
    drop(store);
    db.cleanup().await;
}

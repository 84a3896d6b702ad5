//! A session whose change feed fell behind (more events than the feed keeps per account,
//! `store::CHANGE_FEED_CAPACITY`) rereads the mailbox and still tells its client
//! everything: the flags of every changed message, new messages, expunges.

mod common;

use common::{env, plain};

#[tokio::test]
async fn a_lagging_session_resyncs_and_misses_nothing() {
    let env = env().await;
    let n = store::CHANGE_FEED_CAPACITY * 2 + 10;
    for i in 0..n {
        env.deliver(&plain(&format!("m{i}"))).await;
    }
    let mut a = env.login().await;
    let mut b = env.login().await;
    for c in [&mut a, &mut b] {
        c.cmd("e", "ENABLE IMAP4rev2").await;
        c.cmd("s", "SELECT INBOX").await;
    }
    // One STORE over every message: more events than the feed keeps.
    b.cmd("t", "STORE 1:* +FLAGS.SILENT (\\Flagged)").await;
    b.cmd("x", "STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("y", "EXPUNGE").await;
    env.deliver(&plain("late")).await;
    let r = a.cmd("n", "NOOP").await;
    let flagged = r
        .iter()
        .filter(|l| l.contains(" FETCH (") && l.contains("\\Flagged"))
        .count();
    assert!(
        flagged >= n - 1,
        "{flagged} of {n} flag changes told: {:?}",
        &r[..5]
    );
    assert!(r.contains(&"* 2 EXPUNGE".to_string()), "{r:?}");
    assert!(r.contains(&format!("* {} EXISTS", n + 1)), "{r:?}");
    // The view is right afterwards: a search over it sees every flag.
    let s = a.cmd("s", "SEARCH UNFLAGGED").await;
    assert_eq!(s[0], format!("* ESEARCH (TAG \"s\") ALL {n}"), "{s:?}");
}

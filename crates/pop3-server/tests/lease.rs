//! The maildrop lock (RFC 1939 §8) as a lease in the store: it holds against another process
//! on the same data directory, lasts as long as the session (renewed), expires when its
//! process is gone, and a session that lost it deletes nothing.

mod common;

use std::time::Duration;

use common::{Harness, PASSWORD, USER, connect_to};
use server_kit::Shutdown;
use store::{Coordination, MailStore};

const MSG: &[u8] = b"Subject: one\r\n\r\nbody\r\n";
const IN_USE: &str = "-ERR [IN-USE] maildrop is locked by another session, try again later";

fn lease_name(h: &Harness) -> String {
    format!("pop3-maildrop/{}", h.account)
}

/// A session on one process locks the maildrop against a session on another, for longer than
/// the lease's time to live (it is renewed), until QUIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_holds_across_processes_while_the_session_lives() {
    let h = Harness::with_config(|c| c.maildrop_lease = Duration::from_millis(300)).await;
    h.deliver(MSG).await;
    let other = h.other_process();
    let mut first = h.login().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut second = connect_to(&other, "127.0.0.1:40001", Shutdown::new()).await;
    assert_eq!(second.cmd(&format!("USER {USER}")).await, "+OK send PASS");
    assert_eq!(second.cmd(&format!("PASS {PASSWORD}")).await, IN_USE);
    assert_eq!(first.cmd("QUIT").await, "+OK yubin POP3 signing off");
    first.expect_closed().await;
    // Released before the +OK: the other process gets it at once.
    assert_eq!(second.cmd(&format!("USER {USER}")).await, "+OK send PASS");
    let r = second.cmd(&format!("PASS {PASSWORD}")).await;
    assert!(r.starts_with("+OK maildrop has 1"), "{r}");
    second.disconnect().await;
    // A dropped connection releases it too.
    let again = h.login_to(&other).await;
    again.disconnect().await;
    h.login().await.disconnect().await;
}

/// A process killed while it held the lock leaves a lease nobody renews: refused until it
/// expires, then free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_holders_lock_expires() {
    let h = Harness::new().await;
    h.store
        .acquire_lease(&lease_name(&h), "killed-1#1", Duration::from_millis(400))
        .await
        .unwrap();
    let mut c = h.connect().await;
    assert_eq!(c.cmd(&format!("USER {USER}")).await, "+OK send PASS");
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")).await, IN_USE);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(c.cmd(&format!("USER {USER}")).await, "+OK send PASS");
    let r = c.cmd(&format!("PASS {PASSWORD}")).await;
    assert!(r.starts_with("+OK maildrop has 0"), "{r}");
    c.disconnect().await;
}

/// RFC 1939 §8: a session whose lease was taken by another holder (it stalled past the
/// expiry) must not act on the maildrop: QUIT deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_lost_its_lock_deletes_nothing() {
    let h = Harness::new().await;
    h.deliver(MSG).await;
    let mut c = h.login().await;
    assert!(c.cmd("DELE 1").await.starts_with("+OK"));
    // What an expiry and a takeover look like from the store: another holder has the lease.
    let db = rusqlite::Connection::open(h.dir.path().join("yubin.db")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let n = db
        .execute(
            "UPDATE leases SET holder = 'thief-1#1' WHERE name = ?1",
            [lease_name(&h)],
        )
        .unwrap();
    assert_eq!(n, 1, "the session's lease is a row");
    assert_eq!(
        c.cmd("QUIT").await,
        "-ERR [IN-USE] maildrop lock lost to another session; no messages deleted"
    );
    c.expect_closed().await;
    let inbox = h
        .store
        .find_mailbox(h.account, "INBOX")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.store.list_messages(inbox.id).await.unwrap().len(), 1);
    // The thief's lease is untouched by the losing session's release.
    assert_eq!(
        h.store
            .acquire_lease(&lease_name(&h), "x#1", Duration::from_secs(1))
            .await,
        Err(store::StoreError::InUse)
    );
}

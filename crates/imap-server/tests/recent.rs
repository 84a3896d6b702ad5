//! `\Recent` across processes (RFC 3501 §2.3.2: recent in exactly one session, the first to
//! see it): two servers with their own store handles and trackers on one data directory, as
//! two yubin processes would run them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, Env, connect_to, env, plain};
use imap_server::{ImapConfig, ImapServer};
use server_kit::ConnSlot;

/// An IMAP server of another process on `env`'s data directory.
fn other_process(env: &Env) -> Arc<ImapServer> {
    let store = store_sqlite::open(env.store.data_dir()).unwrap();
    Arc::new(ImapServer {
        config: ImapConfig::new("mail.example.org"),
        store: store.clone(),
        auth: auth::Authenticator::new(store, Duration::from_millis(5)),
        tls: None,
        recent: Default::default(),
    })
}

async fn login(server: &Arc<ImapServer>) -> Client {
    let mut c = connect_to(server.clone(), ConnSlot::default()).await;
    let r = c.cmd("l", "LOGIN alice@example.org secret").await;
    assert!(r[0].starts_with("l OK"), "{r:?}");
    c
}

fn recent_line(r: &[String]) -> &str {
    r.iter()
        .find(|l| l.ends_with(" RECENT"))
        .map(String::as_str)
        .unwrap_or("no RECENT")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_is_claimed_once_across_processes() {
    let env = env().await;
    env.deliver(&plain("one")).await;
    env.deliver(&plain("two")).await;
    let other = other_process(&env);

    let mut a = env.login().await;
    let r = a.cmd("s", "SELECT INBOX").await;
    assert_eq!(recent_line(&r), "* 2 RECENT");
    // Another process: the messages were this process's session's.
    let mut b = login(&other).await;
    let r = b.cmd("s", "SELECT INBOX").await;
    assert_eq!(recent_line(&r), "* 0 RECENT");
    let r = b.cmd("f", "FETCH 1:* FLAGS").await;
    assert_eq!(
        r,
        [
            "* 1 FETCH (FLAGS ())",
            "* 2 FETCH (FLAGS ())",
            "f OK FETCH completed"
        ]
    );
    b.cmd("u", "UNSELECT").await;

    // A third message: EXAMINE and STATUS elsewhere peek without taking it...
    env.deliver(&plain("three")).await;
    let mut c = login(&other).await;
    assert_eq!(
        c.cmd("st", "STATUS INBOX (RECENT)").await,
        ["* STATUS \"INBOX\" (RECENT 1)", "st OK STATUS completed"]
    );
    let r = c.cmd("e", "EXAMINE INBOX").await;
    assert_eq!(recent_line(&r), "* 1 RECENT");
    // ... the first read-write session of any process claims it ...
    let r = b.cmd("s2", "SELECT INBOX").await;
    assert_eq!(recent_line(&r), "* 1 RECENT");
    let r = b.cmd("f2", "FETCH 3 FLAGS").await;
    assert_eq!(r[0], "* 3 FETCH (FLAGS (\\Recent))");
    // ... and the session that selected first, told of it now, does not get it.
    let r = a.cmd("n", "NOOP").await;
    assert_eq!(r, ["* 3 EXISTS", "* 2 RECENT", "n OK NOOP completed"]);
    let r = a.cmd("f", "FETCH 3 FLAGS").await;
    assert_eq!(r[0], "* 3 FETCH (FLAGS ())");
    assert_eq!(
        c.cmd("st2", "STATUS INBOX (RECENT)").await,
        ["* STATUS \"INBOX\" (RECENT 0)", "st2 OK STATUS completed"]
    );

    // A restarted process (new handle, empty tracker) does not make them recent again.
    let restarted = other_process(&env);
    let mut d = login(&restarted).await;
    let r = d.cmd("s", "SELECT INBOX").await;
    assert_eq!(recent_line(&r), "* 0 RECENT");
}

/// Sends `APPEND <mailbox> {n+}` with `body` and returns the tagged reply and what came before.
async fn append(c: &mut Client, tag: &str, mailbox: &str, body: &str) -> Vec<String> {
    c.cmd(
        tag,
        &format!("APPEND {mailbox} {{{}+}}\r\n{body}", body.len()),
    )
    .await
}

/// NOOP until the session is told of `exists` messages (another process's writes arrive
/// with the change log's poll).
async fn noop_until(c: &mut Client, exists: &str) -> Vec<String> {
    for i in 0..100 {
        let r = c.cmd(&format!("n{i}"), "NOOP").await;
        if r.iter().any(|l| l == exists) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never told {exists}");
}

/// APPEND to the selected mailbox claims `\Recent` with the message (RFC 3501 §2.3.2: the
/// appending session is told of it at the end of its command), together with what nobody
/// claimed before it; another process's session then gets none of it. APPEND to another
/// mailbox, or from an EXAMINE session, claims nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_to_the_selected_mailbox_claims_recent() {
    let env = env().await;
    let other = other_process(&env);
    let mut a = env.login().await;
    a.cmd("c", "CREATE Other").await;
    let r = a.cmd("s", "SELECT INBOX").await;
    assert_eq!(recent_line(&r), "* 0 RECENT");
    let mut b = login(&other).await;
    b.cmd("s", "SELECT INBOX").await;

    // Delivered while a is selected (not yet told), then a's own APPEND: both are a's.
    env.deliver(&plain("delivered")).await;
    let r = append(&mut a, "a1", "INBOX", &plain("appended")).await;
    let uv = r.last().unwrap().split(' ').nth(3).unwrap().to_string();
    assert_eq!(
        r,
        [
            "* 2 EXISTS".to_string(),
            "* 2 RECENT".to_string(),
            format!("a1 OK [APPENDUID {uv} 2] APPEND completed"),
        ]
    );
    let r = a.cmd("f", "FETCH 1:2 FLAGS").await;
    assert_eq!(
        r[..2],
        [
            "* 1 FETCH (FLAGS (\\Recent))",
            "* 2 FETCH (FLAGS (\\Recent))"
        ]
    );
    let r = noop_until(&mut b, "* 2 EXISTS").await;
    assert_eq!(recent_line(&r), "* 0 RECENT");
    let r = b.cmd("f", "FETCH 1:2 FLAGS").await;
    assert_eq!(r[..2], ["* 1 FETCH (FLAGS ())", "* 2 FETCH (FLAGS ())"]);

    // To a mailbox that is not selected: the first session to select it gets it.
    let r = append(&mut a, "a2", "Other", &plain("filed")).await;
    assert_eq!(r.len(), 1, "{r:?}");
    let mut c = login(&other).await;
    let r = c.cmd("s", "SELECT Other").await;
    assert_eq!(recent_line(&r), "* 1 RECENT");

    // From an EXAMINE session: it only peeks; b, told of it next, claims it.
    let r = c.cmd("e", "EXAMINE INBOX").await;
    assert_eq!(recent_line(&r), "* 0 RECENT");
    let r = append(&mut c, "a3", "INBOX", &plain("examined")).await;
    // (Told at the end of the APPEND, or — when this process has yet to read a's earlier
    // write from the log, which comes first — at a command soon after.)
    let r = if r.iter().any(|l| l == "* 3 EXISTS") {
        r
    } else {
        noop_until(&mut c, "* 3 EXISTS").await
    };
    assert_eq!(recent_line(&r), "* 1 RECENT");
    let r = noop_until(&mut b, "* 3 EXISTS").await;
    assert_eq!(recent_line(&r), "* 1 RECENT");
    let r = b.cmd("f", "FETCH 3 FLAGS").await;
    assert_eq!(r[0], "* 3 FETCH (FLAGS (\\Recent))");
    let r = noop_until(&mut a, "* 3 EXISTS").await;
    assert_eq!(recent_line(&r), "* 2 RECENT");
}

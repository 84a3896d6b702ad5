//! FETCH from the store's cache of parsed message facts, and large bodies streamed from the
//! blob: the replies are byte for byte what the message holds, whichever path serves them.

mod common;

use common::env;
use store::MailStore;

const MSG: &str = "From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: cached\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nHello\r\n";

/// The first ENVELOPE/BODYSTRUCTURE/header fetch parses the message and caches its facts; the
/// next ones answer the same bytes from the cache, which a second session shares.
#[tokio::test]
async fn facts_are_cached_and_answer_the_same() {
    let env = env().await;
    env.deliver(MSG).await;
    let mut a = env.login().await;
    a.cmd("s", "SELECT INBOX").await;
    let items = "(ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[HEADER.FIELDS (Subject)] RFC822.HEADER BODY.PEEK[TEXT])";
    let first = a.cmd("f1", &format!("FETCH 1 {items}")).await;
    assert!(
        first[0].contains("ENVELOPE (\"Mon, 1 Jan 2024 10:00:00 +0000\" \"cached\""),
        "{first:?}"
    );
    assert!(
        first[0].contains("BODY[HEADER.FIELDS (Subject)] {19}\r\nSubject: cached\r\n\r\n"),
        "{first:?}"
    );
    assert!(
        first[0].contains("BODY[TEXT] {7}\r\nHello\r\n"),
        "{first:?}"
    );

    // The write-back is asynchronous: wait until the cache has the entry.
    let inbox = env
        .store
        .find_mailbox(env.account, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut cached = false;
    for _ in 0..100 {
        let b = env
            .store
            .message_bodies(inbox, &[1], imap_server::FACTS_VERSION)
            .await
            .unwrap();
        if b[0].facts.is_some() {
            cached = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(cached, "facts written back to the store");
    let mut b = env.login().await;
    b.cmd("s", "EXAMINE INBOX").await;
    assert_eq!(b.cmd("f2", &format!("FETCH 1 {items}")).await[0], first[0]);
    assert_eq!(a.cmd("f3", &format!("FETCH 1 {items}")).await[0], first[0]);
}

/// Bodies above the streaming threshold go from the file in chunks; the literal, the items
/// around it and the \Seen update are as for a small one.
#[tokio::test]
async fn large_bodies_are_streamed_exactly() {
    let env = env().await;
    let mut body = String::new();
    let mut n = 0;
    while body.len() < 600 * 1024 {
        body.push_str(&format!("line {n:06} of a large message body\r\n"));
        n += 1;
    }
    let msg = format!("From: bob@example.net\r\nSubject: big\r\n\r\n{body}");
    let header_len = msg.len() - body.len();
    env.deliver(&msg).await;
    let mut c = env.login().await;
    c.cmd("s", "SELECT INBOX").await;
    let r = c.cmd("f", "FETCH 1 (UID BODY[] RFC822.SIZE)").await;
    let expect = format!(
        "* 1 FETCH (UID 1 BODY[] {{{}}}\r\n{msg} RFC822.SIZE {} FLAGS (\\Seen \\Recent))",
        msg.len(),
        msg.len()
    );
    assert!(
        r[0] == expect,
        "whole body differs ({} vs {} octets)",
        r[0].len(),
        expect.len()
    );
    let r = c.cmd("t", "UID FETCH 1 (BODY.PEEK[TEXT])").await;
    assert_eq!(
        r[0],
        format!(
            "* 1 FETCH (UID 1 BODY[TEXT] {{{}}}\r\n{body})",
            msg.len() - header_len
        )
    );
    assert_eq!(r[1], "t OK UID FETCH completed");
    // A partial is not streamed but read: the same octets.
    let r = c.cmd("p", "FETCH 1 (BODY.PEEK[]<100.50>)").await;
    assert_eq!(
        r[0],
        format!("* 1 FETCH (BODY[]<100> {{50}}\r\n{})", &msg[100..150])
    );
}

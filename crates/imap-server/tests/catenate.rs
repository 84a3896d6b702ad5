//! CATENATE (RFC 4469): APPEND of literals and URL parts, BADURL, TOOBIG, and MULTIAPPEND
//! staying all-or-nothing.

mod common;

use common::{Env, env};
use store::MailStore;

const ONE: &str = "Subject: one\r\nFrom: a@example.org\r\n\r\nbody one\r\n";
const MULTI: &str = "Subject: multi\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nfirst part\r\n--b\r\nContent-Type: text/x-y\r\n\r\nsecond\r\n--b--\r\n";

async fn uid_validity(env: &Env) -> u32 {
    env.store
        .find_mailbox(env.account, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .uid_validity
}

#[tokio::test]
async fn text_and_url_parts() {
    let env = env().await;
    env.deliver(ONE).await;
    env.deliver(MULTI).await;
    let uv = uid_validity(&env).await;
    let mut c = env.login().await;
    c.cmd("e", "ENABLE IMAP4rev2").await;
    // Authenticated state: URLs relative to imap://alice@host/.
    assert_eq!(
        c.cmd(
            "a1",
            &format!(
                "APPEND INBOX (\\Seen) CATENATE (URL \"/INBOX;UIDVALIDITY={uv}/;UID=1/;SECTION=HEADER\" TEXT {{10+}}\r\nnew body\r\n URL \"/INBOX/;uid=2/;section=1.mime\" URL \"/INBOX/;uid=2/;section=2\")"
            )
        )
        .await,
        [format!("a1 OK [APPENDUID {uv} 3] APPEND completed")]
    );
    // Selected state: `;UID=` relative to the selected mailbox; an absolute URL of the user.
    c.cmd("s", "SELECT INBOX").await;
    assert_eq!(
        c.cmd(
            "a2",
            "APPEND INBOX CATENATE (TEXT {10+}\r\nX-New: 1\r\n URL \";UID=1/;SECTION=TEXT\" URL \"imap://alice@example.org/INBOX/;UID=2/;SECTION=1/;PARTIAL=6.4\")"
        )
        .await,
        [
            "* 4 EXISTS".to_string(),
            format!("a2 OK [APPENDUID {uv} 4] APPEND completed")
        ]
    );
    assert_eq!(
        c.cmd("f", "FETCH 3:4 (FLAGS BODY.PEEK[])").await,
        [
            "* 3 FETCH (FLAGS (\\Seen) BODY[] {81}\r\nSubject: one\r\nFrom: a@example.org\r\n\r\nnew body\r\nContent-Type: text/plain\r\n\r\nsecond)",
            "* 4 FETCH (FLAGS () BODY[] {24}\r\nX-New: 1\r\nbody one\r\npart)",
            "f OK FETCH completed",
        ]
    );
    // The source messages were not marked \Seen by being catenated (RFC 4469 §3).
    assert_eq!(
        c.cmd("g", "FETCH 1:2 FLAGS").await,
        [
            "* 1 FETCH (FLAGS ())",
            "* 2 FETCH (FLAGS ())",
            "g OK FETCH completed"
        ]
    );
}

#[tokio::test]
async fn bad_urls_store_nothing() {
    let env = env().await;
    env.deliver(ONE).await;
    let uv = uid_validity(&env).await;
    // Another user's message, reachable only with a URLAUTH.
    env.add_user("bob@example.org", "pw", Some(ONE)).await;
    let mut c = env.login().await;
    for (url, why) in [
        ("/INBOX/;UID=9".to_string(), "no such message"),
        (
            format!("/INBOX;UIDVALIDITY={}/;UID=1", uv + 1),
            "other UIDVALIDITY",
        ),
        ("/Nope/;UID=1".into(), "no such mailbox"),
        ("/INBOX/;UID=1/;SECTION=4".into(), "no such part"),
        ("imap://bob@example.org/INBOX/;UID=1".into(), "another user"),
        (";UID=1".into(), "relative without a selected mailbox"),
        ("/INBOX".into(), "a mailbox, not a message"),
    ] {
        assert_eq!(
            c.cmd(
                "b",
                &format!("APPEND INBOX CATENATE (TEXT {{8+}}\r\nX: 1\r\n\r\n URL \"{url}\" TEXT {{2+}}\r\nz\n)")
            )
            .await,
            [format!(
                "b NO [BADURL {url}] CATENATE URL names nothing"
            )],
            "{why}"
        );
    }
    // The first bad URL is the one reported (RFC 4469 §4.1).
    assert_eq!(
        c.cmd(
            "c",
            "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" URL \"/INBOX/;UID=7\" URL \"/INBOX/;UID=8\")"
        )
        .await,
        ["c NO [BADURL /INBOX/;UID=7] CATENATE URL names nothing"]
    );
    // A missing target mailbox is TRYCREATE, before any URL is looked at.
    assert_eq!(
        c.cmd("d", "APPEND Nope CATENATE (URL \"/INBOX/;UID=7\")")
            .await,
        ["d NO [TRYCREATE] no such mailbox"]
    );
    assert_eq!(
        c.cmd("s", "STATUS INBOX (MESSAGES UIDNEXT)").await,
        [
            "* STATUS \"INBOX\" (MESSAGES 1 UIDNEXT 2)",
            "s OK STATUS completed"
        ]
    );
    // Malformed CATENATE syntax is BAD.
    assert_eq!(
        c.cmd("e", "APPEND INBOX CATENATE ()").await[0],
        "e BAD syntax error: expected TEXT or URL"
    );
}

#[tokio::test]
async fn result_over_the_append_limit_is_toobig() {
    let mut env = env().await;
    env.reconfigure(|c| c.max_message_size = 100);
    env.deliver(ONE).await; // 47 octets
    let uv = uid_validity(&env).await;
    let mut c = env.login().await;
    // RFC 4469 §4.2: the result may not exceed the APPEND limit (APPENDLIMIT=100).
    assert_eq!(
        c.cmd(
            "a",
            "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" URL \"/INBOX/;UID=1\" TEXT {7+}\r\n1234567)"
        )
        .await,
        ["a NO [TOOBIG] CATENATE result is too large"]
    );
    assert_eq!(
        c.cmd(
            "b",
            "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" URL \"/INBOX/;UID=1\" TEXT {6+}\r\n123456)"
        )
        .await,
        [format!("b OK [APPENDUID {uv} 2] APPEND completed")]
    );
}

/// RFC 3502 §6.3.11: MULTIAPPEND is all or nothing, CATENATE messages included — a bad URL
/// in the second message stores nothing; a store failure on the second (here: the quota)
/// stores nothing either, in one transaction: not even a UID is used up.
#[tokio::test]
async fn multiappend_with_catenate_rolls_back() {
    let env = env().await;
    env.deliver(ONE).await;
    let uv = uid_validity(&env).await;
    let mut c = env.login().await;
    assert_eq!(
        c.cmd(
            "a",
            "APPEND INBOX {5+}\r\nX: 1\n CATENATE (URL \"/INBOX/;UID=1\") CATENATE (URL \"/INBOX/;UID=5\")"
        )
        .await,
        ["a NO [BADURL /INBOX/;UID=5] CATENATE URL names nothing"]
    );
    assert_eq!(
        c.cmd("s", "STATUS INBOX (MESSAGES UIDNEXT)").await,
        [
            "* STATUS \"INBOX\" (MESSAGES 1 UIDNEXT 2)",
            "s OK STATUS completed"
        ]
    );
    // Room for one more copy of the message, not two.
    let used = env.store.quota(env.account).await.unwrap().used;
    env.store
        .set_quota(
            &mail_types::Address::parse("alice@example.org").unwrap(),
            Some(used + 60),
        )
        .await
        .unwrap();
    assert_eq!(
        c.cmd(
            "b",
            "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\") CATENATE (URL \"/INBOX/;UID=1\")"
        )
        .await,
        ["b NO [OVERQUOTA] over quota"]
    );
    // The batch was one transaction: no message stored, no UID used.
    assert_eq!(
        c.cmd("s", "STATUS INBOX (MESSAGES UIDNEXT)").await,
        [
            "* STATUS \"INBOX\" (MESSAGES 1 UIDNEXT 2)",
            "s OK STATUS completed"
        ]
    );
    assert_eq!(
        c.cmd("c", "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\")")
            .await,
        [format!("c OK [APPENDUID {uv} 2] APPEND completed")]
    );
}

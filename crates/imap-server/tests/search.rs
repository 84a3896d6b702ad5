//! SEARCH / UID SEARCH / ESEARCH against a real store-sqlite in a temporary directory.

mod common;

use common::{Client, Env, env};

/// Expunged before the tests, so UIDs (2, 3, 4) differ from sequence numbers (1, 2, 3).
const DUMMY: &str = "From: x@example.net\r\nSubject: dummy\r\n\r\nnothing\r\n";

/// Internal date 2023-11-14 22:13:20 UTC.
const PLAIN: &str = "From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: Hello there\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nHi Alice!\r\n";

/// Internal date 2024-03-09 16:00:00 UTC. "zebra" only inside the base64 part, "café" only
/// inside the quoted-printable part.
const MULTI: &str = "From: bob@example.net\r\nTo: carol@example.org\r\nSubject: Parts\r\nDate: Fri, 8 Mar 2024 23:30:00 -0800\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nQSB6ZWJyYSBjcm9zc2luZyBoZXJlLg0K\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nUn caf=C3=A9 s'il vous pla=\r\n=C3=AEt\r\n--b1--\r\n";

/// Internal date 2024-07-03 09:46:40 UTC; RFC 2047 subject ("Grüße aus Köln") and sender
/// name ("Jörg"); over 1000 octets.
fn encoded() -> String {
    format!(
        "From: =?ISO-8859-1?Q?J=F6rg?= <joerg@example.com>\r\nTo: dave@example.org\r\nSubject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\nMessage-ID: <abc@example.com>\r\nDate: Wed, 3 Jul 2024 11:00:00 +0200\r\n\r\n{}\r\n",
        "padding line\r\n".repeat(80)
    )
}

/// A selected rev1 session over: seq 1 = PLAIN (\Seen), 2 = MULTI, 3 = encoded
/// (\Seen \Flagged); UIDs 2, 3, 4.
async fn setup(env: &Env) -> Client {
    env.deliver_at(DUMMY, 1_600_000_000).await;
    env.deliver_at(PLAIN, 1_700_000_000).await;
    env.deliver_at(MULTI, 1_710_000_000).await;
    env.deliver_at(&encoded(), 1_720_000_000).await;
    let mut c = env.login().await;
    let r = c.cmd("s", "SELECT INBOX").await;
    assert!(r.contains(&"* 4 EXISTS".to_string()), "{r:?}");
    c.cmd("f0", "STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.cmd("e", "EXPUNGE").await;
    assert_eq!(r[0], "* 1 EXPUNGE");
    c.cmd("f1", "STORE 1 +FLAGS.SILENT (\\Seen)").await;
    c.cmd("f2", "STORE 3 +FLAGS.SILENT (\\Seen \\Flagged)")
        .await;
    c
}

/// The untagged SEARCH/ESEARCH line of a command, and checks the tagged OK.
async fn search(c: &mut Client, tag: &str, args: &str) -> String {
    let r = c.cmd(tag, args).await;
    assert_eq!(r.len(), 2, "{args}: {r:?}");
    assert_eq!(r[1], format!("{tag} OK SEARCH completed"), "{args}: {r:?}");
    r[0].clone()
}

#[tokio::test]
async fn flag_size_date_and_set_keys() {
    let env = env().await;
    let mut c = setup(&env).await;
    let cases = [
        ("SEARCH ALL", "* SEARCH 1 2 3"),
        ("SEARCH SEEN", "* SEARCH 1 3"),
        ("SEARCH UNSEEN", "* SEARCH 2"),
        ("SEARCH FLAGGED", "* SEARCH 3"),
        ("SEARCH UNFLAGGED SEEN", "* SEARCH 1"),
        ("SEARCH DELETED", "* SEARCH"),
        ("SEARCH NOT SEEN", "* SEARCH 2"),
        ("SEARCH OR FLAGGED UNSEEN", "* SEARCH 2 3"),
        ("SEARCH (SEEN UNFLAGGED) ALL", "* SEARCH 1"),
        ("SEARCH LARGER 1000", "* SEARCH 3"),
        ("SEARCH SMALLER 1000", "* SEARCH 1 2"),
        ("SEARCH SINCE 9-Mar-2024", "* SEARCH 2 3"),
        ("SEARCH SINCE 10-Mar-2024", "* SEARCH 3"),
        ("SEARCH BEFORE 9-Mar-2024", "* SEARCH 1"),
        ("SEARCH ON 14-Nov-2023", "* SEARCH 1"),
        ("SEARCH 2:3", "* SEARCH 2 3"),
        ("SEARCH 2:*", "* SEARCH 2 3"),
        ("SEARCH 1,3 SEEN", "* SEARCH 1 3"),
        ("SEARCH UID 3", "* SEARCH 2"),
        ("SEARCH UID 3:*", "* SEARCH 2 3"),
        ("SEARCH KEYWORD $Junk", "* SEARCH"),
        ("SEARCH UNKEYWORD $Junk SEEN", "* SEARCH 1 3"),
        ("SEARCH $", "* SEARCH"),
        ("UID SEARCH SEEN", "* SEARCH 2 4"),
        ("UID SEARCH UID 3:*", "* SEARCH 3 4"),
        ("UID SEARCH 1", "* SEARCH 2"),
        ("SEARCH CHARSET US-ASCII SEEN", "* SEARCH 1 3"),
    ];
    for (i, (cmd, want)) in cases.iter().enumerate() {
        assert_eq!(search(&mut c, &format!("t{i}"), cmd).await, *want, "{cmd}");
    }
}

#[tokio::test]
async fn header_and_body_keys() {
    let env = env().await;
    let mut c = setup(&env).await;
    let cases = [
        ("SEARCH FROM bob", "* SEARCH 1 2"),
        ("SEARCH FROM BOB@EXAMPLE.NET", "* SEARCH 1 2"),
        ("SEARCH FROM joerg", "* SEARCH 3"),
        ("SEARCH TO carol", "* SEARCH 2"),
        ("SEARCH CC bob", "* SEARCH"),
        ("SEARCH SUBJECT hello", "* SEARCH 1"),
        ("SEARCH SUBJECT \"aus\"", "* SEARCH 3"),
        ("SEARCH BODY zebra", "* SEARCH 2"),
        ("SEARCH BODY ZEBRA", "* SEARCH 2"),
        ("SEARCH BODY alice", "* SEARCH 1"),
        ("SEARCH BODY alice@example.org", "* SEARCH"),
        ("SEARCH TEXT alice@example.org", "* SEARCH 1"),
        ("SEARCH TEXT zebra", "* SEARCH 2"),
        ("SEARCH HEADER Message-ID \"\"", "* SEARCH 3"),
        ("SEARCH HEADER message-id abc@", "* SEARCH 3"),
        ("SEARCH HEADER X-Missing \"\"", "* SEARCH"),
        ("SEARCH NOT BODY zebra", "* SEARCH 1 3"),
        ("SEARCH OR BODY zebra SUBJECT hello", "* SEARCH 1 2"),
        ("SEARCH SEEN BODY padding", "* SEARCH 3"),
        ("SEARCH UNSEEN FROM bob", "* SEARCH 2"),
        // Date: header dates as written, ignoring the zone (RFC 9051 §6.4.4).
        ("SEARCH SENTON 8-Mar-2024", "* SEARCH 2"),
        ("SEARCH SENTBEFORE 8-Mar-2024", "* SEARCH 1"),
        ("SEARCH SENTSINCE 3-Jul-2024", "* SEARCH 3"),
        ("UID SEARCH BODY zebra", "* SEARCH 3"),
    ];
    for (i, (cmd, want)) in cases.iter().enumerate() {
        assert_eq!(search(&mut c, &format!("t{i}"), cmd).await, *want, "{cmd}");
    }
    // UTF-8 search strings as literals: decoded RFC 2047 subject / sender, QP body.
    for (i, (key, word, want)) in [
        ("SUBJECT", "köln", "* SEARCH 3"),
        ("SUBJECT", "GRÜSSE", "* SEARCH"),
        ("SUBJECT", "grüße", "* SEARCH 3"),
        ("FROM", "jörg", "* SEARCH 3"),
        ("BODY", "café", "* SEARCH 2"),
        ("BODY", "plaît", "* SEARCH 2"),
    ]
    .iter()
    .enumerate()
    {
        let tag = format!("u{i}");
        c.send(&format!(
            "{tag} SEARCH CHARSET UTF-8 {key} {{{}+}}\r\n{word}\r\n",
            word.len()
        ))
        .await;
        let r = c.until(&tag).await;
        assert_eq!(r[0], *want, "{key} {word}: {r:?}");
        assert_eq!(r[1], format!("{tag} OK SEARCH completed"));
    }
}

#[tokio::test]
async fn esearch_return_options() {
    let env = env().await;
    let mut c = setup(&env).await;
    let cases = [
        (
            "SEARCH RETURN (MIN MAX COUNT) SEEN",
            "* ESEARCH (TAG \"t0\") MIN 1 MAX 3 COUNT 2",
        ),
        ("SEARCH RETURN () SEEN", "* ESEARCH (TAG \"t1\") ALL 1,3"),
        ("SEARCH RETURN (ALL) 1:*", "* ESEARCH (TAG \"t2\") ALL 1:3"),
        (
            "UID SEARCH RETURN (ALL COUNT) SEEN",
            "* ESEARCH (TAG \"t3\") UID ALL 2,4 COUNT 2",
        ),
        (
            "SEARCH RETURN (MIN MAX ALL COUNT) DELETED",
            "* ESEARCH (TAG \"t4\") COUNT 0",
        ),
        ("SEARCH RETURN (MIN) DELETED", "* ESEARCH (TAG \"t5\")"),
        (
            "UID SEARCH RETURN (MAX) BODY zebra",
            "* ESEARCH (TAG \"t6\") UID MAX 3",
        ),
    ];
    for (i, (cmd, want)) in cases.iter().enumerate() {
        assert_eq!(search(&mut c, &format!("t{i}"), cmd).await, *want, "{cmd}");
    }
}

#[tokio::test]
async fn rev2_sessions_get_esearch() {
    let env = env().await;
    drop(setup(&env).await);
    let mut c = env.login().await;
    let r = c.cmd("en", "ENABLE IMAP4rev2").await;
    assert_eq!(r[0], "* ENABLED IMAP4rev2");
    c.cmd("s", "SELECT INBOX").await;
    assert_eq!(
        search(&mut c, "a", "SEARCH ALL").await,
        "* ESEARCH (TAG \"a\") ALL 1:3"
    );
    assert_eq!(
        search(&mut c, "b", "UID SEARCH UNSEEN").await,
        "* ESEARCH (TAG \"b\") UID ALL 3"
    );
    assert_eq!(
        search(&mut c, "c", "SEARCH DRAFT").await,
        "* ESEARCH (TAG \"c\")"
    );
    assert_eq!(
        search(&mut c, "d", "SEARCH RETURN (COUNT) ALL").await,
        "* ESEARCH (TAG \"d\") COUNT 3"
    );
}

#[tokio::test]
async fn errors_and_capability() {
    let env = env().await;
    let mut c = setup(&env).await;
    let r = c.cmd("a", "SEARCH CHARSET KOI8-R ALL").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].starts_with("a NO [BADCHARSET (UTF-8 US-ASCII)]"),
        "{r:?}"
    );
    // RFC 7162 §7: `mod-sequence-valzer` is a number.
    let r = c.cmd("b", "SEARCH MODSEQ five").await;
    assert!(r[0].starts_with("b BAD "), "{r:?}");
    // RFC 5182: SAVE alone answers only the tagged OK (tests/protocol.rs has the rest).
    let r = c.cmd("c", "SEARCH RETURN (SAVE) ALL").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].starts_with("c OK "), "{r:?}");
    let r = c.cmd("d", "SEARCH FROB").await;
    assert!(r.last().unwrap().starts_with("d BAD "), "{r:?}");
    let r = c.cmd("e", "CAPABILITY").await;
    assert!(r[0].contains(" ESEARCH"), "{r:?}");
    assert!(r[0].contains(" SEARCHRES"), "{r:?}");
    // Still usable after the errors.
    assert_eq!(search(&mut c, "f", "SEARCH SEEN").await, "* SEARCH 1 3");
    // Not valid without a selected mailbox.
    c.cmd("u", "UNSELECT").await;
    let r = c.cmd("g", "SEARCH ALL").await;
    assert!(r[0].starts_with("g BAD "), "{r:?}");
}

#[tokio::test]
async fn search_holds_back_expunge() {
    let env = env().await;
    let mut c = setup(&env).await;
    let mut other = env.login().await;
    other.cmd("s", "SELECT INBOX").await;
    other.cmd("f", "STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    other.cmd("e", "EXPUNGE").await;
    // RFC 9051 §7.5.1: no EXPUNGE during SEARCH; the gone message simply does not match.
    let r = c.cmd("a", "SEARCH ALL").await;
    assert!(!r.iter().any(|l| l.ends_with("EXPUNGE")), "{r:?}");
    assert!(r.contains(&"* SEARCH 1 3".to_string()), "{r:?}");
    let r = c.cmd("n", "NOOP").await;
    assert!(r.contains(&"* 2 EXPUNGE".to_string()), "{r:?}");
}

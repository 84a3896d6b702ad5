//! Protocol details closed after the first version: `\Recent` (RFC 3501 §2.3.2), SEARCHRES
//! (RFC 5182), BINARY (RFC 3516), MULTIAPPEND (RFC 3502), DELETE with inferiors and client
//! quirks. Each test builds its own server and store.

mod common;

use common::{Client, env};
use tokio::io::AsyncWriteExt;

const SIMPLE: &str =
    "From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: Hi\r\n\r\nHello\r\n";

async fn selected(c: &mut Client, tag: &str, cmd: &str) -> Vec<String> {
    let r = c.cmd(tag, cmd).await;
    assert!(r.last().unwrap().starts_with(&format!("{tag} OK")), "{r:?}");
    r
}

fn recent_line(r: &[String]) -> Option<&String> {
    r.iter().find(|l| l.ends_with(" RECENT"))
}

#[tokio::test]
async fn recent_belongs_to_the_first_session() {
    let env = env().await;
    env.deliver(SIMPLE).await;
    env.deliver(SIMPLE).await;
    let mut a = env.login().await;
    let mut b = env.login().await;
    let mut c = env.login().await;

    // EXAMINE peeks without taking \Recent away (RFC 3501 §6.3.2).
    let r = selected(&mut c, "e", "EXAMINE INBOX").await;
    assert_eq!(recent_line(&r).unwrap(), "* 2 RECENT");
    c.cmd("u", "UNSELECT").await;
    assert_eq!(
        c.cmd("st", "STATUS INBOX (RECENT MESSAGES)").await[0],
        "* STATUS \"INBOX\" (RECENT 2 MESSAGES 2)"
    );

    let r = selected(&mut a, "s", "SELECT INBOX").await;
    assert_eq!(recent_line(&r).unwrap(), "* 2 RECENT");
    let r = selected(&mut b, "s", "SELECT INBOX").await;
    assert_eq!(recent_line(&r).unwrap(), "* 0 RECENT");
    assert_eq!(
        c.cmd("st", "STATUS INBOX (RECENT)").await[0],
        "* STATUS \"INBOX\" (RECENT 0)"
    );

    assert_eq!(
        a.cmd("f", "FETCH 1 FLAGS").await[0],
        "* 1 FETCH (FLAGS (\\Recent))"
    );
    assert_eq!(b.cmd("f", "FETCH 1 FLAGS").await[0], "* 1 FETCH (FLAGS ())");
    a.cmd("t", "STORE 1 +FLAGS.SILENT (\\Seen)").await;
    assert_eq!(a.cmd("r", "SEARCH RECENT").await[0], "* SEARCH 1 2");
    assert_eq!(a.cmd("n", "SEARCH NEW").await[0], "* SEARCH 2");
    assert_eq!(a.cmd("o", "SEARCH OLD").await[0], "* SEARCH");
    // b learns of a's \Seen first (the pending change is applied before SEARCH reads).
    assert_eq!(
        b.cmd("r", "SEARCH RECENT").await,
        [
            "* 1 FETCH (UID 1 FLAGS (\\Seen))",
            "* SEARCH",
            "r OK SEARCH completed"
        ]
    );
    assert_eq!(b.cmd("o", "SEARCH OLD").await[0], "* SEARCH 1 2");

    // A new message is claimed by the first session told about it.
    env.deliver(SIMPLE).await;
    assert_eq!(
        c.cmd("st", "STATUS INBOX (RECENT)").await[0],
        "* STATUS \"INBOX\" (RECENT 1)"
    );
    assert_eq!(
        b.cmd("n", "NOOP").await,
        ["* 3 EXISTS", "* 1 RECENT", "n OK NOOP completed"]
    );
    assert_eq!(
        a.cmd("n", "NOOP").await,
        ["* 3 EXISTS", "* 2 RECENT", "n OK NOOP completed"]
    );
    assert_eq!(
        b.cmd("f", "FETCH 3 FLAGS").await[0],
        "* 3 FETCH (FLAGS (\\Recent))"
    );
    assert_eq!(a.cmd("f", "FETCH 3 FLAGS").await[0], "* 3 FETCH (FLAGS ())");
}

#[tokio::test]
async fn rev2_sessions_never_see_or_claim_recent() {
    let env = env().await;
    env.deliver(SIMPLE).await;
    let mut v2 = env.login().await;
    v2.cmd("e", "ENABLE IMAP4rev2").await;
    let r = selected(&mut v2, "s", "SELECT INBOX").await;
    assert_eq!(recent_line(&r), None, "{r:?}");
    assert_eq!(
        v2.cmd("f", "FETCH 1 FLAGS").await[0],
        "* 1 FETCH (FLAGS ())"
    );
    env.deliver(SIMPLE).await;
    assert_eq!(
        v2.cmd("n", "NOOP").await,
        ["* 2 EXISTS", "n OK NOOP completed"]
    );
    let mut v1 = env.login().await;
    let r = selected(&mut v1, "s", "SELECT INBOX").await;
    assert_eq!(recent_line(&r).unwrap(), "* 2 RECENT");
}

#[tokio::test]
async fn searchres_saves_and_dollar_follows_expunges() {
    let env = env().await;
    for _ in 0..4 {
        env.deliver(SIMPLE).await;
    }
    let mut c = env.login().await;
    let caps = c.cmd("c", "CAPABILITY").await;
    assert!(caps[0].contains(" SEARCHRES"), "{caps:?}");
    selected(&mut c, "s", "SELECT INBOX").await;
    c.cmd("t", "STORE 2,4 +FLAGS.SILENT (\\Flagged)").await;
    // Before any SAVE `$` is empty (RFC 5182 §2.1).
    assert_eq!(c.cmd("e", "FETCH $ UID").await, ["e OK FETCH completed"]);
    // SAVE alone: no ESEARCH, only the tagged OK.
    let r = c.cmd("a", "SEARCH RETURN (SAVE) FLAGGED").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].starts_with("a OK "), "{r:?}");
    assert_eq!(
        c.cmd("f", "FETCH $ UID").await,
        [
            "* 2 FETCH (UID 2)",
            "* 4 FETCH (UID 4)",
            "f OK FETCH completed"
        ]
    );
    assert_eq!(
        c.cmd("u", "UID STORE $ +FLAGS (\\Seen)").await,
        [
            "* 2 FETCH (UID 2 FLAGS (\\Seen \\Flagged \\Recent))",
            "* 4 FETCH (UID 4 FLAGS (\\Seen \\Flagged \\Recent))",
            "u OK UID STORE completed"
        ]
    );
    assert_eq!(c.cmd("x", "SEARCH $ SEEN").await[0], "* SEARCH 2 4");
    assert_eq!(c.cmd("x", "UID SEARCH NOT $").await[0], "* SEARCH 1 3");
    c.cmd("cr", "CREATE Archive").await;
    let r = c.cmd("cp", "COPY $ Archive").await;
    assert!(r[0].contains(" 2,4 1:2] COPY"), "{r:?}");
    // Expunged messages leave the saved result.
    c.cmd("d", "STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    c.cmd("ex", "EXPUNGE").await;
    assert_eq!(c.cmd("x", "SEARCH $").await[0], "* SEARCH 3");
    // SAVE with MIN/MAX saves just those (RFC 5182 §2.4) and still answers ESEARCH.
    let r = c.cmd("m", "SEARCH RETURN (SAVE MIN) ALL").await;
    assert_eq!(r[0], "* ESEARCH (TAG \"m\") MIN 1");
    assert_eq!(c.cmd("x", "UID SEARCH $").await[0], "* SEARCH 1");
    // A failed SAVE empties it.
    let r = c.cmd("b", "SEARCH RETURN (SAVE) CHARSET KOI8-R ALL").await;
    assert!(r[0].starts_with("b NO [BADCHARSET"), "{r:?}");
    assert_eq!(c.cmd("x", "SEARCH $").await[0], "* SEARCH");
    // Reset by SELECT.
    c.cmd("a2", "SEARCH RETURN (SAVE) ALL").await;
    assert_eq!(c.cmd("x", "SEARCH $").await[0], "* SEARCH 1 2 3");
    selected(&mut c, "s2", "SELECT INBOX").await;
    assert_eq!(c.cmd("x", "SEARCH $").await[0], "* SEARCH");
    let r = c.cmd("mv", "MOVE $ Archive").await;
    assert_eq!(r, ["mv OK MOVE completed"]);
}

const BIN: &str = "From: a@example.net\r\nSubject: bin\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAGFiYw==\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: x-klingon\r\n\r\nqapla\r\n--b--\r\n";

#[tokio::test]
async fn binary_fetch_decodes_parts() {
    let env = env().await;
    env.deliver(BIN).await;
    let mut c = env.login().await;
    assert!(c.cmd("c", "CAPABILITY").await[0].contains(" BINARY"));
    c.cmd("e", "ENABLE IMAP4rev2").await;
    selected(&mut c, "s", "SELECT INBOX").await;
    // NUL in the data: literal8 (RFC 3516 §4.2).
    assert_eq!(
        c.cmd("f", "FETCH 1 BINARY.PEEK[1]").await[0],
        "* 1 FETCH (BINARY[1] ~{4}\r\n\0abc)"
    );
    assert_eq!(
        c.cmd("f", "FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2]<1.4>)")
            .await[0],
        "* 1 FETCH (BINARY.SIZE[2] 5 BINARY[2]<1> {4}\r\naf\u{e9})"
    );
    assert_eq!(
        c.cmd("f", "FETCH 1 BINARY.PEEK[3]").await,
        ["f NO [UNKNOWN-CTE] unknown Content-Transfer-Encoding"]
    );
    assert_eq!(
        c.cmd("f", "FETCH 1 BINARY.PEEK[9]").await[0],
        "* 1 FETCH (BINARY[9] NIL)"
    );
    // Without .PEEK \Seen is set (and reported).
    assert_eq!(
        c.cmd("f", "FETCH 1 BINARY[2]").await[0],
        "* 1 FETCH (BINARY[2] {5}\r\ncaf\u{e9} FLAGS (\\Seen))"
    );
    // APPEND accepts literal8 data (RFC 3516 §4.4) and stores the binary part base64-encoded,
    // so BODY[] can carry it; BINARY gives back the bytes sent.
    c.send("a APPEND INBOX ~{11}\r\n").await;
    assert_eq!(c.line().await, "+ Ready");
    c.w.write_all(b"S: x\r\n\r\n\0\r\n\r\n").await.unwrap();
    let r = c.until("a").await;
    assert!(r.last().unwrap().starts_with("a OK [APPENDUID "), "{r:?}");
    assert_eq!(
        c.cmd("f", "FETCH 2 BODY.PEEK[]").await[0],
        "* 2 FETCH (BODY[] {47}\r\nS: x\r\nContent-Transfer-Encoding: base64\r\n\r\nAA0K)"
    );
    assert_eq!(
        c.cmd("f", "FETCH 2 (BINARY.SIZE[1] BINARY.PEEK[1])").await[0],
        "* 2 FETCH (BINARY.SIZE[1] 3 BINARY[1] ~{3}\r\n\0\r\n)"
    );
}

#[tokio::test]
async fn multiappend_is_all_or_nothing() {
    let env = env().await;
    let mut c = env.login().await;
    let (m1, m2) = ("Subject: one\r\n\r\n1\r\n", "Subject: two\r\n\r\n2\r\n");
    c.send(&format!(
        "a APPEND INBOX (\\Seen) {{{}+}}\r\n{m1} {{{}+}}\r\n{m2}\r\n",
        m1.len(),
        m2.len()
    ))
    .await;
    let r = c.until("a").await;
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(r[0].starts_with("a OK [APPENDUID "), "{r:?}");
    assert!(r[0].ends_with(" 1:2] APPEND completed"), "{r:?}");
    // The second message is empty: neither is stored.
    c.send(&format!(
        "b APPEND INBOX {{{}+}}\r\n{m1} {{0+}}\r\n\r\n",
        m1.len()
    ))
    .await;
    assert_eq!(c.until("b").await, ["b NO [CANNOT] empty message"]);
    assert_eq!(
        c.cmd("s", "STATUS INBOX (MESSAGES UIDNEXT)").await[0],
        "* STATUS \"INBOX\" (MESSAGES 2 UIDNEXT 3)"
    );
}

#[tokio::test]
async fn appendlimit_and_oversized_non_sync_literal() {
    let mut env = env().await;
    env.reconfigure(|c| c.max_message_size = 50);
    let mut c = env.login().await;
    let caps = c.cmd("c", "CAPABILITY").await;
    assert!(caps[0].contains(" APPENDLIMIT=50"), "{caps:?}");
    assert!(caps[0].contains(" LITERAL+ "), "{caps:?}");
    // RFC 7888 §4: the non-synchronising literal's bytes are read and dropped, the command
    // refused, and the connection goes on.
    let big = "x".repeat(100);
    c.send(&format!("a APPEND INBOX {{100+}}\r\n{big}\r\n"))
        .await;
    assert_eq!(c.until("a").await, ["a NO [TOOBIG] literal too large"]);
    assert_eq!(c.cmd("n", "NOOP").await, ["n OK NOOP completed"]);
    // A synchronising one is refused before the client sends it.
    c.send("b APPEND INBOX {100}\r\n").await;
    assert_eq!(c.until("b").await, ["b NO [TOOBIG] literal too large"]);
    assert_eq!(c.cmd("n", "NOOP").await, ["n OK NOOP completed"]);
}

#[tokio::test]
async fn delete_with_inferiors_is_refused() {
    let env = env().await;
    let mut c = env.login().await;
    // RFC 9051 §6.3.4: CREATE makes the parent too.
    assert_eq!(
        c.cmd("a", "CREATE Work/2024").await,
        ["a OK CREATE completed"]
    );
    assert_eq!(
        c.cmd("b", "CREATE Work").await,
        ["b NO [ALREADYEXISTS] already exists"]
    );
    c.send("ap APPEND Work {14+}\r\nSubject: w\r\n\r\n\r\n")
        .await;
    assert!(c.until("ap").await[0].starts_with("ap OK "));
    assert_eq!(
        c.cmd("d", "DELETE Work").await,
        ["d NO [HASCHILDREN] mailbox has inferiors; delete them first"]
    );
    // Nothing was lost.
    assert_eq!(
        c.cmd("s", "STATUS Work (MESSAGES)").await[0],
        "* STATUS \"Work\" (MESSAGES 1)"
    );
    assert_eq!(
        c.cmd("d", "DELETE Work/2024").await,
        ["d OK DELETE completed"]
    );
    assert_eq!(c.cmd("d", "DELETE Work").await, ["d OK DELETE completed"]);
    assert_eq!(
        c.cmd("l", "LIST \"\" \"Work*\"").await,
        ["l OK LIST completed"]
    );
}

#[tokio::test]
async fn uid_fetch_star_sees_new_messages_and_highest_uid() {
    let env = env().await;
    env.deliver(SIMPLE).await;
    env.deliver(SIMPLE).await;
    let mut c = env.login().await;
    selected(&mut c, "s", "SELECT INBOX").await;
    // RFC 9051 §6.4.9: `*` is the highest UID even when below the other end.
    assert_eq!(
        c.cmd("a", "UID FETCH 10:* UID").await,
        ["* 2 FETCH (UID 2)", "a OK UID FETCH completed"]
    );
    // Delivered by another connection: announced first, then fetched.
    env.deliver(SIMPLE).await;
    assert_eq!(
        c.cmd("b", "UID FETCH 3:* (UID FLAGS)").await,
        [
            "* 3 EXISTS",
            "* 3 RECENT",
            "* 3 FETCH (UID 3 FLAGS (\\Recent))",
            "b OK UID FETCH completed"
        ]
    );
    // EXPUNGE by another session is never sent during UID FETCH/STORE/SEARCH (RFC 9051
    // §7.5.1), only at a command that allows it.
    let mut d = env.login().await;
    selected(&mut d, "s", "SELECT INBOX").await;
    d.cmd("t", "STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    d.cmd("e", "EXPUNGE").await;
    for cmd in [
        "UID FETCH 1:* UID",
        "UID STORE 2 +FLAGS.SILENT (x)",
        "UID SEARCH ALL",
    ] {
        let r = c.cmd("q", cmd).await;
        assert!(!r.iter().any(|l| l.ends_with("EXPUNGE")), "{cmd}: {r:?}");
    }
    assert_eq!(
        c.cmd("n", "NOOP").await,
        ["* 1 EXPUNGE", "n OK NOOP completed"]
    );
}

#[tokio::test]
async fn enable_lists_what_it_enabled_and_raw_ampersand_names() {
    let env = env().await;
    let mut c = env.login().await;
    assert_eq!(
        c.cmd("e", "ENABLE UTF8=ACCEPT X-UNKNOWN").await,
        ["* ENABLED UTF8=ACCEPT", "e OK ENABLE completed"]
    );
    assert_eq!(
        c.cmd("e", "ENABLE utf8=accept").await,
        ["* ENABLED", "e OK ENABLE completed"]
    );
    // Thunderbird after UTF8=ACCEPT: a raw `&` is just a character (RFC 6855 §3).
    assert_eq!(
        c.cmd("c", "CREATE \"R&D\"").await,
        ["c OK CREATE completed"]
    );
    assert_eq!(
        c.cmd("l", "LIST \"\" \"R*\"").await[0],
        "* LIST (\\HasNoChildren) \"/\" \"R&D\""
    );
    // A rev1 client sees it in modified UTF-7.
    let mut old = env.login().await;
    assert_eq!(
        old.cmd("l", "LIST \"\" \"R*\"").await[0],
        "* LIST (\\HasNoChildren) \"/\" \"R&-D\""
    );
    let mut v2 = env.login().await;
    assert_eq!(
        v2.cmd("e", "ENABLE IMAP4rev2 UTF8=ACCEPT").await,
        ["* ENABLED IMAP4rev2 UTF8=ACCEPT", "e OK ENABLE completed"]
    );
}

const EIGHT_BIT: &str = "From: =?UTF-8?B?SsO2cmc=?= <j@example.net>\r\nSubject: Gr\u{fc}\u{df}e\r\nContent-Type: text/plain; charset=utf-8; name=\"\u{e9}t\u{e9}.txt\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\nhi\r\n";

#[tokio::test]
async fn envelope_never_nil_and_no_utf8_to_rev1() {
    let env = env().await;
    env.deliver("Subject: x\r\n\r\nno from\r\n").await;
    env.deliver(EIGHT_BIT).await;
    let mut c = env.login().await;
    selected(&mut c, "s", "SELECT INBOX").await;
    assert_eq!(
        c.cmd("f", "FETCH 1 ENVELOPE").await[0],
        "* 1 FETCH (ENVELOPE (NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL))"
    );
    let r = c.cmd("f", "FETCH 2 (ENVELOPE BODYSTRUCTURE)").await;
    assert!(r[0].is_ascii(), "{r:?}");
    assert!(
        r[0].starts_with("* 2 FETCH (ENVELOPE (NIL \"=?UTF-8?B?R3LDvMOfZQ==?=\" ((\"=?UTF-8?B?SsO2cmc=?=\" NIL \"j\" \"example.net\"))"),
        "{r:?}"
    );
    assert!(
        r[0].contains("(\"CHARSET\" \"utf-8\" \"NAME\" \"=?UTF-8?B?w6l0w6kudHh0?=\")"),
        "{r:?}"
    );
    // With UTF-8 enabled the text goes as UTF-8 quoted strings (RFC 6855 §3).
    let mut u = env.login().await;
    u.cmd("e", "ENABLE UTF8=ACCEPT").await;
    selected(&mut u, "s", "SELECT INBOX").await;
    let r = u.cmd("f", "FETCH 2 ENVELOPE").await;
    assert!(
        r[0].starts_with("* 2 FETCH (ENVELOPE (NIL \"Gr\u{fc}\u{df}e\" ((\"J\u{f6}rg\" NIL"),
        "{r:?}"
    );
}

#[tokio::test]
async fn trycreate_and_pipelining_after_done() {
    let env = env().await;
    env.deliver(SIMPLE).await;
    let mut c = env.login().await;
    selected(&mut c, "s", "SELECT INBOX").await;
    for (t, cmd) in [
        ("c", "COPY 1 Nope"),
        ("m", "MOVE 1 Nope"),
        ("u", "UID MOVE 1 Nope"),
    ] {
        assert_eq!(
            c.cmd(t, cmd).await,
            [format!("{t} NO [TRYCREATE] no such mailbox")]
        );
    }
    c.send("a APPEND Nope {14+}\r\nSubject: w\r\n\r\n\r\n")
        .await;
    assert_eq!(c.until("a").await, ["a NO [TRYCREATE] no such mailbox"]);
    // Commands pipelined behind DONE run in order after it.
    c.send("i IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling");
    c.send("DONE\r\nx1 UID FETCH 1 UID\r\nx2 NOOP\r\nx3 FETCH 1 FLAGS\r\n")
        .await;
    assert_eq!(c.until("i").await, ["i OK IDLE terminated"]);
    assert_eq!(
        c.until("x1").await,
        ["* 1 FETCH (UID 1)", "x1 OK UID FETCH completed"]
    );
    assert_eq!(c.until("x2").await, ["x2 OK NOOP completed"]);
    assert_eq!(
        c.until("x3").await,
        ["* 1 FETCH (FLAGS (\\Recent))", "x3 OK FETCH completed"]
    );
}

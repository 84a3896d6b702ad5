//! Whole sessions against a real store-sqlite in a temporary directory.

mod common;

use common::env;

const SIMPLE: &str = "From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: Hello there\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nHi Alice!\r\n";

const MULTI: &str = "From: bob@example.net\r\nSubject: Parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nfirst part\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b1--\r\n";

#[tokio::test]
async fn login_authenticate_and_list() {
    let env = env().await;
    let mut c = env.connect().await;
    assert_eq!(
        c.cmd("a", "LOGIN alice@example.org wrong").await,
        ["a NO [AUTHENTICATIONFAILED] invalid credentials"]
    );
    // AUTHENTICATE PLAIN with SASL-IR: "\0alice@example.org\0secret".
    let r = c
        .cmd(
            "b",
            "AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHNlY3JldA==",
        )
        .await;
    assert!(
        r[0].starts_with("b OK [CAPABILITY IMAP4rev1 IMAP4rev2 ENABLE"),
        "{r:?}"
    );
    assert_eq!(
        c.cmd("c", "LOGIN a b").await,
        ["c BAD command not valid in this state"]
    );
    let r = c.cmd("d", "LIST \"\" \"*\"").await;
    assert!(
        r.contains(&"* LIST (\\HasNoChildren) \"/\" \"INBOX\"".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(&"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"".to_string()),
        "{r:?}"
    );
    assert!(
        r.contains(&"* LIST (\\HasNoChildren \\Trash) \"/\" \"Trash\"".to_string()),
        "{r:?}"
    );
    assert_eq!(
        c.cmd("e", "CREATE Work/Projects").await,
        ["e OK CREATE completed"]
    );
    assert_eq!(
        c.cmd("f", "CREATE Work/Projects").await,
        ["f NO [ALREADYEXISTS] already exists"]
    );
    assert_eq!(
        c.cmd("g", "CREATE a/../b").await,
        ["g NO [CANNOT] operation refused"]
    );
    let r = c.cmd("h", "LIST \"\" \"Work/%\"").await;
    assert_eq!(
        r,
        [
            "* LIST (\\HasNoChildren) \"/\" \"Work/Projects\"",
            "h OK LIST completed"
        ]
    );
    let r = c
        .cmd("i", "LIST \"\" \"%\" RETURN (STATUS (MESSAGES UIDNEXT))")
        .await;
    assert!(
        r.contains(&"* STATUS \"INBOX\" (MESSAGES 0 UIDNEXT 1)".to_string()),
        "{r:?}"
    );
    let r = c.cmd("j", "STATUS Nope (MESSAGES)").await;
    assert_eq!(r, ["j NO [NONEXISTENT] no such mailbox"]);
    assert_eq!(
        c.cmd("k", "ENABLE IMAP4rev2").await,
        ["* ENABLED IMAP4rev2", "k OK ENABLE completed"]
    );
    assert_eq!(
        c.cmd("l", "ENABLE IMAP4rev2").await,
        ["* ENABLED", "l OK ENABLE completed"]
    );
    // Mailbox names are UTF-8 after ENABLE IMAP4rev2.
    assert_eq!(
        c.cmd("m", "CREATE \"Entwürfe\"").await,
        ["m OK CREATE completed"]
    );
    let r = c.cmd("n", "LIST \"\" \"Entw*\"").await;
    assert_eq!(r[0], "* LIST (\\HasNoChildren) \"/\" \"Entwürfe\"");
}

#[tokio::test]
async fn select_append_fetch_store() {
    let env = env().await;
    env.deliver(SIMPLE).await;
    let mut c = env.login().await;
    let r = c.cmd("s", "SELECT INBOX").await;
    assert_eq!(
        r[0],
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
    );
    assert_eq!(r[1], "* 1 EXISTS");
    // RFC 3501 §2.3.2: the first session to select after delivery sees it as recent.
    assert_eq!(r[2], "* 1 RECENT");
    assert!(
        r.iter().any(|l| l.starts_with("* OK [UIDVALIDITY ")),
        "{r:?}"
    );
    assert!(
        r.contains(&"* OK [UIDNEXT 2] predicted next UID".to_string()),
        "{r:?}"
    );
    assert!(
        r.iter().any(|l| l.starts_with(
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"
        )),
        "{r:?}"
    );
    assert_eq!(r.last().unwrap(), "s OK [READ-WRITE] SELECT completed");

    let lit = MULTI.len();
    c.send(&format!("a APPEND INBOX (\\Flagged) {{{lit}}}\r\n"))
        .await;
    assert_eq!(c.line().await, "+ Ready");
    c.send(&format!("{MULTI}\r\n")).await;
    let r = c.until("a").await;
    assert_eq!(r[0], "* 2 EXISTS");
    assert!(r.last().unwrap().starts_with("a OK [APPENDUID "), "{r:?}");
    assert!(r.last().unwrap().contains(" 2] APPEND"), "{r:?}");

    let r = c
        .cmd("f1", "FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])")
        .await;
    assert_eq!(
        r[0],
        "* 1 FETCH (FLAGS (\\Recent) BODY[HEADER.FIELDS (Subject)] {24}\r\nSubject: Hello there\r\n\r\n)"
    );
    let r = c.cmd("f2", "FETCH 1 BODY[]<0.4>").await;
    assert_eq!(
        r[0],
        "* 1 FETCH (BODY[]<0> {4}\r\nFrom FLAGS (\\Seen \\Recent))"
    );
    let r = c
        .cmd(
            "f3",
            "UID FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.MIME] BODY.PEEK[TEXT]<0.8>)",
        )
        .await;
    assert!(
        r[0].starts_with("* 2 FETCH (UID 2 BODY[1] {10}\r\nfirst part BODY[2.MIME] {"),
        "{r:?}"
    );
    assert!(
        r[0].contains("Content-Transfer-Encoding: base64\r\n\r\n"),
        "{r:?}"
    );
    assert!(r[0].ends_with("BODY[TEXT]<0> {8}\r\npreamble)"), "{r:?}");
    let r = c.cmd("f4", "FETCH 2 BODYSTRUCTURE").await;
    assert!(r[0].starts_with("* 2 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 10 1"), "{r:?}");
    assert!(
        r[0].contains("(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"BASE64\" 4"),
        "{r:?}"
    );
    assert!(r[0].contains("\"MIXED\" (\"BOUNDARY\" \"b1\")"), "{r:?}");
    let r = c.cmd("f5", "FETCH 1 ENVELOPE").await;
    assert_eq!(
        r[0],
        "* 1 FETCH (ENVELOPE (\"Mon, 1 Jan 2024 10:00:00 +0000\" \"Hello there\" ((\"Bob\" NIL \"bob\" \"example.net\")) ((\"Bob\" NIL \"bob\" \"example.net\")) ((\"Bob\" NIL \"bob\" \"example.net\")) ((NIL NIL \"alice\" \"example.org\")) NIL NIL NIL NIL))"
    );

    let r = c.cmd("t1", "STORE 1:2 +FLAGS (\\Answered $Work)").await;
    // RFC 9051 §7.3.5: the new keyword is announced before the FETCH that shows it.
    assert_eq!(
        r[0],
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)"
    );
    assert!(r[1].starts_with("* OK [PERMANENTFLAGS ("), "{r:?}");
    assert_eq!(r[2], "* 1 FETCH (FLAGS (\\Seen \\Answered $Work \\Recent))");
    assert_eq!(
        r[3],
        "* 2 FETCH (FLAGS (\\Answered \\Flagged $Work \\Recent))"
    );
    assert_eq!(r[4], "t1 OK STORE completed");
    let r = c.cmd("t2", "UID STORE 2 -FLAGS.SILENT (\\Flagged)").await;
    assert_eq!(r, ["t2 OK UID STORE completed"]);
    let r = c.cmd("t3", "FETCH 1:* (UID FLAGS)").await;
    assert_eq!(r[1], "* 2 FETCH (UID 2 FLAGS (\\Answered $Work \\Recent))");

    // Bad input: tagged BAD and the session goes on.
    assert_eq!(c.cmd("b1", "FETCH 0 FLAGS").await.len(), 1);
    assert!(c.cmd("b2", "FETCH 1 (FLAGS").await[0].starts_with("b2 BAD "));
    assert_eq!(
        c.cmd("b3", "FETCH 9 FLAGS").await,
        ["b3 BAD invalid message sequence number"]
    );
    assert_eq!(
        c.cmd("b4", "ENABLE IMAP4rev2").await,
        ["b4 BAD command not valid in this state"]
    );
    assert_eq!(c.cmd("n", "NOOP").await, ["n OK NOOP completed"]);
}

#[tokio::test]
async fn copy_move_expunge() {
    let env = env().await;
    for _ in 0..4 {
        env.deliver(SIMPLE).await;
    }
    let mut c = env.login().await;
    c.cmd("s", "SELECT INBOX").await;
    let r = c.cmd("c", "COPY 1:2 Archive").await;
    assert!(r[0].starts_with("c OK [COPYUID "), "{r:?}");
    assert!(r[0].contains(" 1:2 1:2] COPY"), "{r:?}");
    assert_eq!(
        c.cmd("c2", "COPY 1 Nope").await,
        ["c2 NO [TRYCREATE] no such mailbox"]
    );
    let r = c.cmd("m", "UID MOVE 3 Trash").await;
    assert!(r[0].starts_with("* OK [COPYUID "), "{r:?}");
    assert_eq!(r[1], "* 3 EXPUNGE");
    assert_eq!(r[2], "m OK MOVE completed");
    // Now uids 1,2,4 at 1..3; delete 1 and 3 (uids 1 and 4).
    c.cmd("d", "STORE 1,3 +FLAGS.SILENT (\\Deleted)").await;
    let r = c.cmd("e", "EXPUNGE").await;
    // Highest first (as Dovecot): each number is also the one it had before the command.
    assert_eq!(r, ["* 3 EXPUNGE", "* 1 EXPUNGE", "e OK EXPUNGE completed"]);
    let r = c.cmd("f", "FETCH 1:* UID").await;
    assert_eq!(r, ["* 1 FETCH (UID 2)", "f OK FETCH completed"]);
    let r = c.cmd("st", "STATUS Archive (MESSAGES)").await;
    assert_eq!(r[0], "* STATUS \"Archive\" (MESSAGES 2)");
}

#[tokio::test]
async fn two_sessions_see_each_other() {
    let env = env().await;
    env.deliver(SIMPLE).await;
    env.deliver(SIMPLE).await;
    let mut a = env.login().await;
    let mut b = env.login().await;
    a.cmd("s", "SELECT INBOX").await;
    b.cmd("s", "SELECT INBOX").await;

    // Flag change on b, seen by a at NOOP.
    b.cmd("t", "STORE 2 +FLAGS.SILENT (\\Flagged)").await;
    let r = a.cmd("n1", "NOOP").await;
    assert_eq!(
        r,
        [
            "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Recent))",
            "n1 OK NOOP completed"
        ]
    );

    // Expunge on b: a does not get EXPUNGE during FETCH, but at NOOP.
    b.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("e", "EXPUNGE").await;
    let r = a.cmd("f", "FETCH 2 UID").await;
    assert_eq!(
        r,
        [
            // b's pending flag change is applied (and told) before FETCH reads the view.
            "* 1 FETCH (UID 1 FLAGS (\\Deleted \\Recent))",
            "* 2 FETCH (UID 2)",
            "f OK FETCH completed"
        ]
    );
    let r = a.cmd("n2", "NOOP").await;
    assert_eq!(r, ["* 1 EXPUNGE", "n2 OK NOOP completed"]);

    // New delivery seen during IDLE; DONE with a pipelined command after it.
    a.send("i IDLE\r\n").await;
    assert_eq!(a.line().await, "+ idling");
    env.deliver(SIMPLE).await;
    assert_eq!(a.line().await, "* 2 EXISTS");
    // a selected first: UID 2 (from SELECT) and UID 3 (claimed now) are recent in a only.
    assert_eq!(a.line().await, "* 2 RECENT");
    let r = b.cmd("t2", "STORE 1 +FLAGS.SILENT (\\Seen)").await;
    assert_eq!(r, ["* 2 EXISTS", "* 0 RECENT", "t2 OK STORE completed"]);
    assert_eq!(
        a.line().await,
        "* 1 FETCH (UID 2 FLAGS (\\Seen \\Flagged \\Recent))"
    );
    a.send("DONE\r\nx FETCH 2 UID\r\n").await;
    assert_eq!(a.until("i").await, ["i OK IDLE terminated"]);
    assert_eq!(
        a.until("x").await,
        ["* 2 FETCH (UID 3)", "x OK FETCH completed"]
    );
}

/// The session's view of flags follows the store in MODSEQ order: its own STORE is not echoed
/// back, a later change by another session is, and a message that arrived and was flagged
/// elsewhere before this session heard of it shows its latest flags, in order after EXISTS.
#[tokio::test]
async fn view_follows_flag_changes_in_modseq_order() {
    let env = env().await;
    env.deliver(SIMPLE).await;
    let mut a = env.login().await;
    let mut b = env.login().await;
    a.cmd("e", "ENABLE IMAP4rev2").await;
    b.cmd("e", "ENABLE IMAP4rev2").await;
    a.cmd("s", "SELECT INBOX").await;
    b.cmd("s", "SELECT INBOX").await;

    // a's own change: answered once, not repeated at the next command.
    assert_eq!(
        a.cmd("t1", "STORE 1 +FLAGS (\\Seen)").await,
        ["* 1 FETCH (FLAGS (\\Seen))", "t1 OK STORE completed"]
    );
    assert_eq!(a.cmd("n1", "NOOP").await, ["n1 OK NOOP completed"]);

    // b changes it after a: a is told, and its FETCH and SEARCH answer from the new state.
    b.cmd("t2", "STORE 1 FLAGS (\\Flagged $Label1)").await;
    let r = a.cmd("f1", "FETCH 1 (FLAGS)").await;
    assert_eq!(
        r,
        [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)] flags permitted",
            "* 1 FETCH (UID 1 FLAGS (\\Flagged $Label1))",
            "* 1 FETCH (FLAGS (\\Flagged $Label1))",
            "f1 OK FETCH completed"
        ]
    );
    assert_eq!(
        a.cmd("q1", "SEARCH UNSEEN KEYWORD $label1").await[0],
        "* ESEARCH (TAG \"q1\") ALL 1"
    );

    // A message arrives and b flags it before a hears of it: a gets EXISTS, then the
    // message with its current flags, and no FETCH for a message it was not told of yet.
    env.deliver(SIMPLE).await;
    b.cmd("n2", "NOOP").await;
    b.cmd("t3", "STORE 2 +FLAGS.SILENT (\\Answered)").await;
    assert_eq!(
        a.cmd("n3", "NOOP").await,
        ["* 2 EXISTS", "n3 OK NOOP completed"]
    );
    assert_eq!(
        a.cmd("f2", "FETCH 2 (FLAGS)").await,
        ["* 2 FETCH (FLAGS (\\Answered))", "f2 OK FETCH completed"]
    );
}

/// SELECT of the mailbox already selected reuses the session's view: after another session's
/// flag change, expunge and new message, it shows exactly what a fresh session's SELECT shows.
#[tokio::test]
async fn reselect_matches_a_fresh_select() {
    let env = env().await;
    for _ in 0..4 {
        env.deliver(SIMPLE).await;
    }
    let mut a = env.login().await;
    let mut b = env.login().await;
    for c in [&mut a, &mut b] {
        c.cmd("e", "ENABLE IMAP4rev2").await;
        c.cmd("s", "SELECT INBOX").await;
    }
    b.cmd("t", "STORE 2 +FLAGS.SILENT (\\Seen $Done)").await;
    b.cmd("d", "STORE 3 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("x", "EXPUNGE").await;
    env.deliver(SIMPLE).await;
    b.cmd("t2", "STORE 4 +FLAGS.SILENT (\\Flagged)").await; // the new message, UID 5

    let again = a.cmd("s2", "SELECT INBOX").await;
    assert!(again.contains(&"* 4 EXISTS".to_string()), "{again:?}");
    assert!(
        !again
            .iter()
            .any(|l| l.contains("EXPUNGE") || l.contains("FETCH")),
        "nothing about the previous selection: {again:?}"
    );
    let mut fresh = env.login().await;
    fresh.cmd("e", "ENABLE IMAP4rev2").await;
    fresh.cmd("s", "SELECT INBOX").await;
    let want = fresh.cmd("f", "FETCH 1:* (UID FLAGS RFC822.SIZE)").await;
    assert_eq!(a.cmd("f", "FETCH 1:* (UID FLAGS RFC822.SIZE)").await, want);
    assert!(
        want.contains(&"* 2 FETCH (UID 2 FLAGS (\\Seen $Done) RFC822.SIZE 125)".to_string())
            && want.contains(&"* 4 FETCH (UID 5 FLAGS (\\Flagged) RFC822.SIZE 125)".to_string()),
        "{want:?}"
    );
    // EXAMINE of the same mailbox then works on the same view, read-only.
    let r = a.cmd("x2", "EXAMINE INBOX").await;
    assert!(r.last().unwrap().starts_with("x2 OK [READ-ONLY]"), "{r:?}");
    assert_eq!(a.cmd("f", "FETCH 1:* (UID FLAGS RFC822.SIZE)").await, want);
}

/// Issue item 4: LIST matching is linear — 10,000-character patterns of every hostile shape
/// answer within a second over a few hundred mailboxes, while another session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_list_patterns_do_not_stall() {
    let env = env().await;
    for i in 0..300 {
        store::MailStore::create_mailbox(
            env.store.as_ref(),
            env.account,
            &format!("x{}/xx/x{i}", i % 7),
        )
        .await
        .unwrap();
    }
    env.deliver(SIMPLE).await;
    let mut a = env.login().await;
    let hostile = [
        format!("{}x", "*".repeat(9_999)),
        "*x".repeat(5_000),
        "%x".repeat(5_000),
        "*%".repeat(5_000),
        format!("{}y", "x*".repeat(4_999)),
        "x".repeat(10_000),
    ];
    let start = std::time::Instant::now();
    let lists = tokio::spawn(async move {
        let mut answers = Vec::new();
        for (i, p) in hostile.iter().enumerate() {
            let r = a.cmd(&format!("l{i}"), &format!("LIST \"\" \"{p}\"")).await;
            answers.push((r.len(), r.last().unwrap().clone()));
            let r = a.cmd(&format!("s{i}"), &format!("LSUB \"\" \"{p}\"")).await;
            assert_eq!(r.last().unwrap(), &format!("s{i} OK LSUB completed"));
        }
        answers
    });
    // Meanwhile the other session logs in, selects and fetches.
    let mut other = env.login().await;
    let r = other.cmd("s", "SELECT INBOX").await;
    assert!(r.last().unwrap().starts_with("s OK [READ-WRITE]"), "{r:?}");
    let r = other
        .cmd("f", "FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        .await;
    assert_eq!(r.last().unwrap(), "f OK FETCH completed");
    let other_done = start.elapsed();
    let answers = lists.await.unwrap();
    let elapsed = start.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(1), "{elapsed:?}");
    assert!(other_done <= elapsed, "{other_done:?} {elapsed:?}");
    // `*…*x` finds the 7 `xN/xx` and INBOX (matched in any case); `*x*x…`, `%x%x…` and
    // `xxx…` need more characters than any name has; `*%*%…` is `*` (every mailbox: 6
    // defaults, 300, their 7 + 7 parents); `x*x*…x*y` finds nothing.
    let found: Vec<usize> = answers.iter().map(|(n, _)| n - 1).collect();
    assert_eq!(found, [8, 0, 0, 6 + 300 + 14, 0, 0], "{answers:?}");
}

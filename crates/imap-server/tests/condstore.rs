//! CONDSTORE (RFC 7162 §3.1): HIGHESTMODSEQ, FETCH MODSEQ / CHANGEDSINCE, STORE
//! UNCHANGEDSINCE, SEARCH MODSEQ, and MODSEQ in the FETCH responses once it is on; QRESYNC
//! (§3.2): SELECT (QRESYNC ...), UID FETCH (CHANGEDSINCE n VANISHED), VANISHED for expunges.
//! The MODSEQs are the store's; each test reads them back from the store to state the exact
//! lines.

mod common;

use common::{Env, env};
use store::{MailStore, MailboxId, ModSeq, SystemFlags};

const SIMPLE: &str =
    "From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: Hi\r\n\r\nHello\r\n";

async fn inbox(env: &Env) -> MailboxId {
    env.store
        .find_mailbox(env.account, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .id
}

/// The store's HIGHESTMODSEQ of INBOX.
async fn highest(env: &Env) -> ModSeq {
    env.store
        .mailbox(inbox(env).await)
        .await
        .unwrap()
        .highest_modseq
}

/// The store's (UID, MODSEQ, flags) of every INBOX message.
async fn messages(env: &Env) -> Vec<(u32, ModSeq, SystemFlags)> {
    env.store
        .list_messages(inbox(env).await)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.uid, m.modseq, m.flags.system))
        .collect()
}

#[tokio::test]
async fn enable_select_fetch_store_search() {
    let env = env().await;
    for _ in 0..3 {
        env.deliver(SIMPLE).await;
    }
    let mut a = env.login().await;
    assert!(
        a.cmd("c", "CAPABILITY").await[0].contains(" CONDSTORE"),
        "advertised"
    );
    // RFC 5161 §3.2 / RFC 7162 §3.1: ENABLED lists only what this command turned on.
    assert_eq!(
        a.cmd("e1", "ENABLE CONDSTORE").await,
        ["* ENABLED CONDSTORE", "e1 OK ENABLE completed"]
    );
    assert_eq!(
        a.cmd("e2", "ENABLE CONDSTORE").await,
        ["* ENABLED", "e2 OK ENABLE completed"]
    );

    // RFC 7162 §3.1.2.1: SELECT reports the store's HIGHESTMODSEQ.
    let h0 = highest(&env).await;
    let r = a.cmd("s", "SELECT INBOX").await;
    assert!(
        r.contains(&format!("* OK [HIGHESTMODSEQ {h0}] highest")),
        "{r:?}"
    );
    assert_eq!(r.last().unwrap(), "s OK [READ-WRITE] SELECT completed");

    // RFC 7162 §3.1.4: each message's own MODSEQ, not the mailbox's.
    let m = messages(&env).await;
    assert!(m[0].1 < m[2].1, "{m:?}");
    assert_eq!(
        a.cmd("f1", "FETCH 1:* (MODSEQ)").await,
        [
            format!("* 1 FETCH (MODSEQ ({}))", m[0].1),
            format!("* 2 FETCH (MODSEQ ({}))", m[1].1),
            format!("* 3 FETCH (MODSEQ ({}))", m[2].1),
            "f1 OK FETCH completed".to_string(),
        ]
    );

    // RFC 7162 §3.1.3: the STORE reply carries the new MODSEQ.
    let r = a.cmd("t1", "STORE 2 +FLAGS (\\Seen)").await;
    let h1 = highest(&env).await;
    assert!(h1 > h0);
    assert_eq!(
        r,
        [
            // A rev1 session: this session holds \\Recent (RFC 3501 §2.3.2).
            format!("* 2 FETCH (MODSEQ ({h1}) FLAGS (\\Seen \\Recent))"),
            "t1 OK STORE completed".to_string()
        ]
    );

    // RFC 7162 §3.1.4.1: CHANGEDSINCE returns only what changed, with MODSEQ implied.
    assert_eq!(
        a.cmd("f2", &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h0})"))
            .await,
        [
            format!("* 2 FETCH (UID 2 MODSEQ ({h1}) FLAGS (\\Seen \\Recent))"),
            "f2 OK UID FETCH completed".to_string()
        ]
    );
    assert_eq!(
        a.cmd("f3", &format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {h1})"))
            .await,
        ["f3 OK FETCH completed"]
    );

    // RFC 7162 §3.1.3 (example 1): message 2 changed after h0, so it fails the test and is
    // left alone; the others are changed and reported, .SILENT or not, with their MODSEQ.
    let r = a
        .cmd(
            "t2",
            &format!("STORE 1:3 (UNCHANGEDSINCE {h0}) +FLAGS.SILENT (\\Flagged)"),
        )
        .await;
    let h2 = highest(&env).await;
    assert!(h2 > h1);
    assert_eq!(
        r,
        [
            format!("* 1 FETCH (MODSEQ ({h2}))"),
            format!("* 3 FETCH (MODSEQ ({h2}))"),
            "t2 OK [MODIFIED 2] conditional STORE failed for some messages".to_string()
        ]
    );
    let m = messages(&env).await;
    assert_eq!(m[1].2, SystemFlags::SEEN, "message 2 not flagged: {m:?}");
    assert_eq!(m[0].2, SystemFlags::FLAGGED);
    // UID STORE names the failed messages by UID; UNCHANGEDSINCE 0 always fails.
    assert_eq!(
        a.cmd("t3", "UID STORE 3 (UNCHANGEDSINCE 0) -FLAGS (\\Flagged)")
            .await,
        ["t3 OK [MODIFIED 3] conditional STORE failed for some messages"]
    );
    assert_eq!(messages(&env).await[2].2, SystemFlags::FLAGGED);

    // RFC 7162 §3.1.5: SEARCH MODSEQ matches MODSEQ >= n and reports the highest found.
    assert_eq!(
        a.cmd("q1", &format!("SEARCH MODSEQ {h1}")).await,
        [
            format!("* SEARCH 1 2 3 (MODSEQ {h2})"),
            "q1 OK SEARCH completed".to_string()
        ]
    );
    assert_eq!(
        a.cmd("q2", &format!("SEARCH MODSEQ {}", h2 + 1)).await,
        ["* SEARCH", "q2 OK SEARCH completed"]
    );
    assert_eq!(
        a.cmd(
            "q3",
            &format!("UID SEARCH RETURN (ALL COUNT) MODSEQ \"/flags/\\\\seen\" all {h1} SEEN")
        )
        .await,
        [
            format!("* ESEARCH (TAG \"q3\") UID ALL 2 COUNT 1 MODSEQ {h1}"),
            "q3 OK SEARCH completed".to_string()
        ]
    );
    // RFC 7162 §3.1.5: with only MIN, the MODSEQ of the message returned.
    assert_eq!(
        a.cmd("q4", &format!("SEARCH RETURN (MIN) MODSEQ {h0}"))
            .await,
        [
            format!("* ESEARCH (TAG \"q4\") MIN 1 MODSEQ {h2}"),
            "q4 OK SEARCH completed".to_string()
        ]
    );
    assert_eq!(
        a.cmd("q5", &format!("SEARCH RETURN (MAX) MODSEQ {h0} SEEN"))
            .await,
        [
            format!("* ESEARCH (TAG \"q5\") MAX 2 MODSEQ {h1}"),
            "q5 OK SEARCH completed".to_string()
        ]
    );
    assert_eq!(
        a.cmd("st", "STATUS INBOX (HIGHESTMODSEQ)").await,
        [
            format!("* STATUS \"INBOX\" (HIGHESTMODSEQ {h2})"),
            "st OK STATUS completed".to_string()
        ]
    );
}

/// RFC 7162 §3.1: a FETCH MODSEQ in the selected state enables CONDSTORE and reports the
/// HIGHESTMODSEQ first; from then on flag replies carry MODSEQ. SELECT (CONDSTORE) enables it
/// too; sessions that never enable it see no MODSEQ anywhere.
#[tokio::test]
async fn enabling_commands_in_selected_state() {
    let env = env().await;
    env.deliver(SIMPLE).await;
    let mut a = env.login().await;
    a.cmd("e", "ENABLE IMAP4rev2").await;
    let r = a.cmd("s", "SELECT INBOX").await;
    assert!(!r.iter().any(|l| l.contains("MODSEQ")), "{r:?}");
    assert_eq!(
        a.cmd("t0", "STORE 1 +FLAGS (\\Draft)").await,
        ["* 1 FETCH (FLAGS (\\Draft))", "t0 OK STORE completed"]
    );
    let h = highest(&env).await;
    assert_eq!(
        a.cmd("f", "FETCH 1 (UID MODSEQ)").await,
        [
            format!("* OK [HIGHESTMODSEQ {h}] highest"),
            format!("* 1 FETCH (UID 1 MODSEQ ({h}))"),
            "f OK FETCH completed".to_string()
        ]
    );
    let r = a.cmd("t1", "STORE 1 +FLAGS (\\Seen)").await;
    assert_eq!(
        r,
        [
            format!("* 1 FETCH (MODSEQ ({}) FLAGS (\\Seen \\Draft))", h + 1),
            "t1 OK STORE completed".to_string()
        ]
    );
    // A STORE that changes nothing keeps the MODSEQ; .SILENT then says nothing.
    assert_eq!(
        a.cmd("t2", "STORE 1 +FLAGS.SILENT (\\Seen)").await,
        ["t2 OK STORE completed"]
    );

    let mut b = env.login().await;
    let r = b.cmd("s", "EXAMINE INBOX (CONDSTORE)").await;
    assert!(
        r.contains(&format!("* OK [HIGHESTMODSEQ {}] highest", h + 1)),
        "{r:?}"
    );
    assert_eq!(r.last().unwrap(), "s OK [READ-ONLY] EXAMINE completed");
    // Unknown SELECT parameters are still refused (RFC 4466 §2.1).
    let r = b.cmd("s2", "SELECT INBOX (FROB)").await;
    assert!(r.last().unwrap().starts_with("s2 BAD "), "{r:?}");
}

/// Two sessions: b changes flags; a's CHANGEDSINCE sees exactly those messages in MODSEQ
/// order, and a's STORE UNCHANGEDSINCE with the MODSEQ it had is refused for them.
#[tokio::test]
async fn changes_from_another_session() {
    let env = env().await;
    for _ in 0..4 {
        env.deliver(SIMPLE).await;
    }
    let mut a = env.login().await;
    let mut b = env.login().await;
    assert_eq!(
        a.cmd("e", "ENABLE IMAP4rev2 CONDSTORE").await,
        ["* ENABLED IMAP4rev2 CONDSTORE", "e OK ENABLE completed"]
    );
    a.cmd("s", "SELECT INBOX").await;
    let h0 = highest(&env).await;
    b.cmd("e", "ENABLE IMAP4rev2").await;
    b.cmd("s", "SELECT INBOX").await;
    b.cmd("t1", "STORE 3 +FLAGS (\\Answered)").await;
    b.cmd("t2", "STORE 1 +FLAGS (\\Flagged)").await;
    let (m3, m1) = (h0 + 1, h0 + 2);
    assert_eq!(highest(&env).await, m1);

    // The changes reach a first as unsolicited FETCH with UID and MODSEQ (RFC 7162 §3.1),
    // then the answer to the CHANGEDSINCE fetch.
    assert_eq!(
        a.cmd("f", &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h0})"))
            .await,
        [
            format!("* 3 FETCH (UID 3 MODSEQ ({m3}) FLAGS (\\Answered))"),
            format!("* 1 FETCH (UID 1 MODSEQ ({m1}) FLAGS (\\Flagged))"),
            format!("* 1 FETCH (UID 1 MODSEQ ({m1}) FLAGS (\\Flagged))"),
            format!("* 3 FETCH (UID 3 MODSEQ ({m3}) FLAGS (\\Answered))"),
            "f OK UID FETCH completed".to_string()
        ]
    );
    // Only what changed since m3: message 1.
    assert_eq!(
        a.cmd("f2", &format!("FETCH 1:* (UID) (CHANGEDSINCE {m3})"))
            .await,
        [
            format!("* 1 FETCH (UID 1 MODSEQ ({m1}))"),
            "f2 OK FETCH completed".to_string()
        ]
    );

    // a's stale STORE: 1 and 3 fail, 2 and 4 are changed.
    let r = a
        .cmd(
            "t",
            &format!("UID STORE 1:4 (UNCHANGEDSINCE {h0}) +FLAGS (\\Deleted)"),
        )
        .await;
    let h = highest(&env).await;
    assert_eq!(
        r,
        [
            format!("* 2 FETCH (UID 2 MODSEQ ({h}) FLAGS (\\Deleted))"),
            format!("* 4 FETCH (UID 4 MODSEQ ({h}) FLAGS (\\Deleted))"),
            "t OK [MODIFIED 1,3] conditional STORE failed for some messages".to_string()
        ]
    );
    let m = messages(&env).await;
    assert_eq!(
        m.iter().map(|x| x.2).collect::<Vec<_>>(),
        [
            SystemFlags::FLAGGED,
            SystemFlags::DELETED,
            SystemFlags::ANSWERED,
            SystemFlags::DELETED
        ]
    );
    // b, which never enabled CONDSTORE, hears of a's changes without MODSEQ.
    assert_eq!(
        b.cmd("n", "NOOP").await,
        [
            "* 2 FETCH (UID 2 FLAGS (\\Deleted))",
            "* 4 FETCH (UID 4 FLAGS (\\Deleted))",
            "n OK NOOP completed"
        ]
    );
}

/// RFC 7162 §3.2.5: a client that was away resynchronises in its SELECT: VANISHED (EARLIER)
/// lists exactly the UIDs expunged since its MODSEQ, FETCH exactly the messages changed since.
#[tokio::test]
async fn qresync_select_after_expunges_and_flag_changes() {
    let env = env().await;
    for _ in 0..5 {
        env.deliver(SIMPLE).await;
    }
    let uv = env
        .store
        .find_mailbox(env.account, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .uid_validity;
    let h0 = highest(&env).await;

    let mut b = env.login().await;
    b.cmd("e", "ENABLE IMAP4rev2").await;
    b.cmd("s", "SELECT INBOX").await;
    // QRESYNC before ENABLE QRESYNC is BAD (§3.2.5); the mailbox stays selected.
    assert_eq!(
        b.cmd("q", &format!("SELECT INBOX (QRESYNC ({uv} {h0}))"))
            .await,
        [
            "* OK [CLOSED] previous mailbox closed",
            "q BAD ENABLE QRESYNC first"
        ]
    );
    b.cmd("s", "SELECT INBOX").await;
    b.cmd("d", "UID STORE 1,4 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("x", "EXPUNGE").await;
    b.cmd("t1", "UID STORE 2 +FLAGS (\\Seen)").await;
    b.cmd("t2", "UID STORE 3 +FLAGS (\\Flagged)").await;
    let (m2, m3) = (h0 + 3, h0 + 4);
    assert_eq!(highest(&env).await, m3);

    let mut c = env.login().await;
    assert!(c.cmd("c", "CAPABILITY").await[0].contains(" QRESYNC"));
    assert_eq!(
        c.cmd("e", "ENABLE IMAP4rev2 QRESYNC").await,
        ["* ENABLED IMAP4rev2 QRESYNC", "e OK ENABLE completed"]
    );
    assert_eq!(
        c.cmd("s", &format!("SELECT INBOX (QRESYNC ({uv} {h0}))"))
            .await,
        [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)".to_string(),
            "* 3 EXISTS".to_string(),
            format!("* OK [UIDVALIDITY {uv}] UIDs valid"),
            "* OK [UIDNEXT 6] predicted next UID".to_string(),
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] flags permitted"
                .to_string(),
            format!("* OK [HIGHESTMODSEQ {m3}] highest"),
            "* VANISHED (EARLIER) 1,4".to_string(),
            format!("* 1 FETCH (UID 2 MODSEQ ({m2}) FLAGS (\\Seen))"),
            format!("* 2 FETCH (UID 3 MODSEQ ({m3}) FLAGS (\\Flagged))"),
            "* LIST () \"/\" \"INBOX\"".to_string(),
            "s OK [READ-WRITE] SELECT completed".to_string(),
        ]
    );
    // Known UIDs limit both lists; a later MODSEQ leaves only what followed it.
    let r = c
        .cmd("s2", &format!("EXAMINE INBOX (QRESYNC ({uv} {h0} 3:5))"))
        .await;
    let extra: Vec<&String> = r
        .iter()
        .filter(|l| l.contains("VANISHED") || l.contains("FETCH"))
        .collect();
    assert_eq!(
        extra,
        [
            "* VANISHED (EARLIER) 4",
            &format!("* 2 FETCH (UID 3 MODSEQ ({m3}) FLAGS (\\Flagged))")
        ]
    );
    let r = c
        .cmd("s3", &format!("EXAMINE INBOX (QRESYNC ({uv} {m2}))"))
        .await;
    assert!(!r.iter().any(|l| l.contains("VANISHED")), "{r:?}");
    assert_eq!(r.iter().filter(|l| l.contains("FETCH")).count(), 1, "{r:?}");
    // Another UIDVALIDITY: the parameter is ignored (the client must resynchronise fully).
    let r = c
        .cmd("s4", &format!("SELECT INBOX (QRESYNC ({} 1))", uv + 1))
        .await;
    assert!(
        !r.iter()
            .any(|l| l.contains("VANISHED") || l.contains("FETCH")),
        "{r:?}"
    );
    assert!(
        r.contains(&format!("* OK [HIGHESTMODSEQ {m3}] highest")),
        "{r:?}"
    );

    // RFC 7162 §3.2.6: UID FETCH (CHANGEDSINCE n VANISHED).
    assert_eq!(
        c.cmd(
            "f",
            &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h0} VANISHED)")
        )
        .await,
        [
            "* VANISHED (EARLIER) 1,4".to_string(),
            format!("* 1 FETCH (UID 2 MODSEQ ({m2}) FLAGS (\\Seen))"),
            format!("* 2 FETCH (UID 3 MODSEQ ({m3}) FLAGS (\\Flagged))"),
            "f OK UID FETCH completed".to_string(),
        ]
    );
    let r = c
        .cmd(
            "f2",
            &format!("FETCH 1:* (FLAGS) (CHANGEDSINCE {h0} VANISHED)"),
        )
        .await;
    assert!(r[0].starts_with("f2 BAD "), "{r:?}");
    let r = b
        .cmd(
            "f3",
            &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {h0} VANISHED)"),
        )
        .await;
    assert!(r[0].starts_with("f3 BAD "), "without ENABLE QRESYNC: {r:?}");

    // RFC 7162 §3.2.10: with QRESYNC on, expunges are VANISHED, not EXPUNGE — another
    // session's and this session's own.
    b.cmd("d2", "UID STORE 5 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("x2", "EXPUNGE").await;
    let m5 = highest(&env).await - 1;
    assert_eq!(
        c.cmd("n", "NOOP").await,
        [
            format!("* 3 FETCH (UID 5 MODSEQ ({m5}) FLAGS (\\Deleted))"),
            "* VANISHED 5".to_string(),
            "n OK NOOP completed".to_string()
        ]
    );
    c.cmd("d3", "UID STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(
        c.cmd("x3", "EXPUNGE").await,
        ["* VANISHED 2", "x3 OK EXPUNGE completed"]
    );
    // b, without QRESYNC, still gets EXPUNGE (after the flag change, without MODSEQ).
    assert_eq!(
        b.cmd("n", "NOOP").await,
        [
            "* 1 FETCH (UID 2 FLAGS (\\Seen \\Deleted))",
            "* 1 EXPUNGE",
            "n OK NOOP completed"
        ]
    );
}

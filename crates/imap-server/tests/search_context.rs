//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): updating searches and sorts follow the
//! changes of other sessions and of their own, against a real store-sqlite in a temporary
//! directory.

mod common;

use common::{env, plain};

/// The untagged ESEARCH, EXISTS and EXPUNGE lines of a reply, in order (FETCH lines about
/// flags are left out).
fn updates(r: &[String]) -> Vec<String> {
    r.iter()
        .filter(|l| l.starts_with("* ESEARCH") || l.ends_with(" EXISTS") || l.ends_with(" EXPUNGE"))
        .cloned()
        .collect()
}

/// RFC 5267 §4.3: a SEARCH context follows the changes of another session and of its own;
/// REMOVEFROM comes before the EXPUNGE, ADDTO after the EXISTS.
#[tokio::test]
async fn search_context_follows_other_sessions() {
    let env = env().await;
    for s in ["one", "two", "three", "four"] {
        env.deliver(&plain(s)).await;
    }
    let mut a = env.login().await;
    let mut b = env.login().await;
    a.cmd("s", "SELECT INBOX").await;
    b.cmd("s", "SELECT INBOX").await;
    // Messages 2 and 4 are flagged at first.
    b.cmd("f", "STORE 2,4 +FLAGS.SILENT (\\Flagged)").await;
    a.cmd("n", "NOOP").await;
    assert_eq!(
        a.one("A1", "SEARCH RETURN (UPDATE ALL) FLAGGED", "* ESEARCH")
            .await,
        "* ESEARCH (TAG \"A1\") ALL 2,4"
    );
    assert_eq!(
        a.one(
            "A2",
            "UID SEARCH RETURN (UPDATE COUNT) UNFLAGGED",
            "* ESEARCH"
        )
        .await,
        "* ESEARCH (TAG \"A2\") UID COUNT 2"
    );
    // Another session flags 1 and unflags 4.
    b.cmd("f", "STORE 1 +FLAGS.SILENT (\\Flagged)").await;
    b.cmd("f", "STORE 4 -FLAGS.SILENT (\\Flagged)").await;
    let r = a.cmd("n", "NOOP").await;
    assert_eq!(
        updates(&r),
        [
            "* ESEARCH (TAG \"A1\") REMOVEFROM (0 4) ADDTO (0 1)",
            "* ESEARCH (TAG \"A2\") UID REMOVEFROM (0 1) ADDTO (0 4)",
        ]
    );
    // A new flagged message: ADDTO after EXISTS, with its sequence number.
    env.deliver(&plain("five")).await;
    b.cmd("n", "NOOP").await;
    b.cmd("f", "STORE 5 +FLAGS.SILENT (\\Flagged)").await;
    let r = a.cmd("n", "NOOP").await;
    assert_eq!(
        updates(&r),
        ["* 5 EXISTS", "* ESEARCH (TAG \"A1\") ADDTO (0 5)"]
    );
    // The other session expunges 2 (a member of A1) and 3 (of A2): REMOVEFROM numbered as
    // before, then the EXPUNGEs, highest first.
    b.cmd("d", "STORE 2:3 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("e", "EXPUNGE").await;
    let r = a.cmd("n", "NOOP").await;
    assert_eq!(
        updates(&r),
        [
            "* ESEARCH (TAG \"A1\") REMOVEFROM (0 2)",
            "* ESEARCH (TAG \"A2\") UID REMOVEFROM (0 3)",
            "* 3 EXPUNGE",
            "* 2 EXPUNGE",
        ]
    );
    // This session's own STORE counts too.
    let r = a.cmd("o", "STORE 1 -FLAGS.SILENT (\\Flagged)").await;
    assert_eq!(
        updates(&r),
        [
            "* ESEARCH (TAG \"A1\") REMOVEFROM (0 1)",
            "* ESEARCH (TAG \"A2\") UID ADDTO (0 1)",
        ]
    );
    // RFC 5267 §4.3: the tag of a live context cannot be used for another.
    assert_eq!(
        a.cmd("A1", "SEARCH RETURN (UPDATE) ALL").await,
        ["A1 BAD tag already in use by an updating search"]
    );
    // CANCELUPDATE stops the updates; the other context goes on.
    assert_eq!(
        a.cmd("c", "CANCELUPDATE \"A2\"").await,
        ["c OK CANCELUPDATE completed"]
    );
    b.cmd("f", "STORE 1 +FLAGS.SILENT (\\Flagged)").await;
    let r = a.cmd("n", "NOOP").await;
    assert_eq!(updates(&r), ["* ESEARCH (TAG \"A1\") ADDTO (0 1)"]);
    // Updates end with the selection.
    a.cmd("s2", "SELECT INBOX").await;
    b.cmd("f", "STORE 1 -FLAGS.SILENT (\\Flagged)").await;
    let r = a.cmd("n", "NOOP").await;
    assert_eq!(updates(&r), Vec::<String>::new());
    assert_eq!(
        a.cmd("c", "CANCELUPDATE \"A1\"").await,
        ["c NO no updating search with tag \"A1\""]
    );
}

/// RFC 5267 §4.3.3/§4.3.4 for SORT: positions in the sort order; and the content of new
/// messages is searched when the criteria need it.
#[tokio::test]
async fn sort_context_positions() {
    let env = env().await;
    for s in ["b", "d", "f"] {
        env.deliver(&plain(s)).await;
    }
    let mut a = env.login().await;
    let mut b = env.login().await;
    a.cmd("s", "SELECT INBOX").await;
    b.cmd("s", "SELECT INBOX").await;
    assert_eq!(
        a.one(
            "S1",
            "UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 UNSEEN",
            "* ESEARCH"
        )
        .await,
        "* ESEARCH (TAG \"S1\") UID ALL 1:3"
    );
    assert_eq!(
        a.one(
            "S2",
            "SORT RETURN (UPDATE) (REVERSE SUBJECT) UTF-8 BODY hello",
            "* ESEARCH"
        )
        .await,
        "* ESEARCH (TAG \"S2\")"
    );
    // Three new messages land between and around the others.
    for s in ["a", "c", "e"] {
        b.cmd(
            "ap",
            &format!("APPEND INBOX {{{}+}}\r\n{}", plain(s).len(), plain(s)),
        )
        .await;
    }
    let r = a.cmd("n", "NOOP").await;
    assert_eq!(
        updates(&r),
        [
            "* 6 EXISTS",
            // In order a b c d e f: "a" at 1, "c" at 3, "e" at 5 (each with the earlier ones
            // in place).
            "* ESEARCH (TAG \"S1\") UID ADDTO (1 4 3 5 5 6)",
            // Reverse order f e d c b a; by sequence number.
            "* ESEARCH (TAG \"S2\") ADDTO (2 6 4 5 6 4)",
        ]
    );
    // Seen messages leave S1: "b" (position 2) and "c" (3) are one run; "f" (6) another.
    b.cmd("f", "STORE 1,5,3 +FLAGS.SILENT (\\Seen)").await;
    let r = a.cmd("n", "NOOP").await;
    assert_eq!(
        updates(&r),
        ["* ESEARCH (TAG \"S1\") UID REMOVEFROM (2 1,5 4 3)"]
    );
    // Expunging "d" (UID 2): S2 is told before the EXPUNGE, at its position.
    b.cmd("d", "STORE 2 +FLAGS.SILENT (\\Deleted)").await;
    b.cmd("e", "EXPUNGE").await;
    let r = a.cmd("n", "NOOP").await;
    assert_eq!(
        updates(&r),
        [
            "* ESEARCH (TAG \"S1\") UID REMOVEFROM (2 2)",
            "* ESEARCH (TAG \"S2\") REMOVEFROM (3 2)",
            "* 2 EXPUNGE",
        ]
    );
    // During IDLE too.
    a.send("i IDLE\r\n").await;
    assert_eq!(a.line().await, "+ idling");
    b.cmd("f", "STORE 1 -FLAGS.SILENT (\\Seen)").await;
    let mut got = Vec::new();
    while got.is_empty() {
        let l = a.line().await;
        if l.starts_with("* ESEARCH") {
            got.push(l);
        }
    }
    // "b" is back, between "a" and "e".
    assert_eq!(got, ["* ESEARCH (TAG \"S1\") UID ADDTO (2 1)"]);
    a.send("DONE\r\n").await;
    a.until("i").await;
}

/// RFC 5267 §4.3.1: past the limit of updating contexts, the search is answered with
/// `* NO [NOUPDATE]` and no updates follow for it.
#[tokio::test]
async fn too_many_contexts() {
    let env = env().await;
    env.deliver(&plain("x")).await;
    let mut a = env.login().await;
    a.cmd("s", "SELECT INBOX").await;
    for i in 0..8 {
        let r = a.cmd(&format!("u{i}"), "SEARCH RETURN (UPDATE) SEEN").await;
        assert_eq!(r.len(), 2, "{r:?}");
    }
    let r = a.cmd("u8", "SEARCH RETURN (UPDATE COUNT) SEEN").await;
    assert_eq!(
        r,
        [
            "* NO [NOUPDATE \"u8\"] too many updating searches, no updates for this one",
            "* ESEARCH (TAG \"u8\") COUNT 0",
            "u8 OK SEARCH completed",
        ]
    );
    let r = a.cmd("f", "STORE 1 +FLAGS.SILENT (\\Seen)").await;
    let tags: Vec<String> = updates(&r);
    assert_eq!(tags.len(), 8, "{r:?}");
    assert!(!tags.iter().any(|l| l.contains("\"u8\"")), "{r:?}");
}

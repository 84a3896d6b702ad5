//! RFC 9051 §7.3.5 / RFC 3501 §7.2.6: a keyword is listed in FLAGS (and PERMANENTFLAGS)
//! before any FETCH shows it — at SELECT for the keywords in use, and by a new untagged FLAGS
//! when one comes into use while the mailbox is selected (imaptest's "Keyword used without
//! being in FLAGS").

mod common;

use common::env;

const MSG: &str = "From: bob@example.net\r\nSubject: k\r\n\r\nbody\r\n";
const SYSTEM: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

#[tokio::test]
async fn select_lists_the_keywords_in_use() {
    let env = env().await;
    env.deliver(MSG).await;
    env.deliver(MSG).await;
    let mut a = env.login().await;
    a.cmd("s", "SELECT INBOX").await;
    a.cmd("t", "STORE 2 +FLAGS.SILENT ($Work NonJunk)").await;
    let r = a.cmd("s2", "EXAMINE INBOX").await;
    assert!(
        r.contains(&format!("* FLAGS ({SYSTEM} $Work NonJunk)")),
        "{r:?}"
    );
    assert!(
        r.contains(&"* OK [PERMANENTFLAGS ()] flags permitted".to_string()),
        "EXAMINE: nothing is permanent: {r:?}"
    );
    let r = a.cmd("s3", "SELECT INBOX").await;
    assert!(
        r.contains(&format!(
            "* OK [PERMANENTFLAGS ({SYSTEM} $Work NonJunk \\*)] flags permitted"
        )),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_new_keyword_from_another_session_is_announced_before_its_fetch() {
    let env = env().await;
    env.deliver(MSG).await;
    let mut a = env.login().await;
    let mut b = env.login().await;
    for c in [&mut a, &mut b] {
        c.cmd("e", "ENABLE IMAP4rev2").await;
        c.cmd("s", "SELECT INBOX").await;
    }
    assert_eq!(
        b.cmd("t", "STORE 1 +FLAGS ($Label1)").await,
        [
            format!("* FLAGS ({SYSTEM} $Label1)"),
            format!("* OK [PERMANENTFLAGS ({SYSTEM} $Label1 \\*)] flags permitted"),
            "* 1 FETCH (FLAGS ($Label1))".to_string(),
            "t OK STORE completed".to_string(),
        ],
        "this session's own STORE announces it too"
    );
    assert_eq!(
        a.cmd("n", "NOOP").await,
        [
            format!("* FLAGS ({SYSTEM} $Label1)"),
            format!("* OK [PERMANENTFLAGS ({SYSTEM} $Label1 \\*)] flags permitted"),
            "* 1 FETCH (UID 1 FLAGS ($Label1))".to_string(),
            "n OK NOOP completed".to_string(),
        ]
    );
    // Announced once: a keyword the client knows (in any case) is not announced again.
    b.cmd("t2", "STORE 1 FLAGS ($label1 \\Seen)").await;
    assert_eq!(
        a.cmd("n2", "NOOP").await,
        [
            "* 1 FETCH (UID 1 FLAGS (\\Seen $label1))".to_string(),
            "n2 OK NOOP completed".to_string(),
        ]
    );
    // A message appended elsewhere with a new keyword: FLAGS comes before the FETCH that
    // shows it.
    let r = b
        .cmd(
            "ap",
            &format!("APPEND INBOX ($Fresh) {{{}+}}\r\n{MSG}", MSG.len()),
        )
        .await;
    assert!(r.last().unwrap().starts_with("ap OK"), "{r:?}");
    let r = a.cmd("f", "FETCH 2 (FLAGS)").await;
    let flags = r
        .iter()
        .position(|l| l == &format!("* FLAGS ({SYSTEM} $Label1 $Fresh)"))
        .expect("FLAGS announced");
    let fetch = r
        .iter()
        .position(|l| l == "* 2 FETCH (FLAGS ($Fresh))")
        .expect("FETCH");
    assert!(flags < fetch, "{r:?}");
}

//! NOTIFY (RFC 5465): what a session hears of another session's changes, without sending a
//! command: STATUS for other mailboxes, EXISTS + FETCH for the selected one, LIST for names
//! and subscriptions; NOTIFY NONE; IDLE; SELECTED-DELAYED; errors.

mod common;

use std::time::Duration;

use common::{Client, env};
use store::MailStore;

/// Nothing arrives unsolicited for a moment.
async fn quiet(c: &mut Client) {
    let mut buf = String::new();
    let r = tokio::time::timeout(
        Duration::from_millis(300),
        tokio::io::AsyncBufReadExt::read_line(&mut c.r, &mut buf),
    )
    .await;
    assert!(r.is_err(), "unexpected: {buf:?}");
}

#[tokio::test]
async fn other_mailbox_status_and_selected_fetch() {
    let env = env().await;
    env.deliver("Subject: 1\r\n\r\nx\r\n").await;
    let mut a = env.login().await;
    a.cmd("e", "ENABLE IMAP4rev2").await;
    a.cmd("c", "CREATE Lists").await;
    a.cmd("s", "SELECT INBOX").await;
    let lists = env
        .store
        .find_mailbox(env.account, "Lists")
        .await
        .unwrap()
        .unwrap();
    let uv = lists.uid_validity;
    assert_eq!(
        a.cmd(
            "n",
            "NOTIFY SET STATUS (selected (MessageNew (UID FLAGS) MessageExpunge)) (subtree Lists (MessageNew MessageExpunge))"
        )
        .await,
        [
            format!("* STATUS \"Lists\" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY {uv} UNSEEN 0)"),
            "n OK NOTIFY completed".into()
        ]
    );
    let mut b = env.login().await;
    // Another session appends to a mailbox that is not selected: STATUS, no command needed.
    b.cmd("a", "APPEND Lists {10+}\r\nSubject: 2").await;
    assert_eq!(
        a.line().await,
        format!("* STATUS \"Lists\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY {uv} UNSEEN 1)")
    );
    // ... and to the selected one: EXISTS and the FETCH asked for (RFC 5465 §5.2).
    b.cmd("a", "APPEND INBOX (\\Flagged) {10+}\r\nSubject: 3")
        .await;
    assert_eq!(a.line().await, "* 2 EXISTS");
    assert_eq!(a.line().await, "* 2 FETCH (UID 2 FLAGS (\\Flagged))");
    // Expunges in the selected mailbox come at once with SELECTED (§6.1.1).
    b.cmd("s", "SELECT INBOX").await;
    b.cmd("x", "STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(a.line().await, "* 1 FETCH (UID 1 FLAGS (\\Deleted))");
    b.cmd("x", "EXPUNGE").await;
    assert_eq!(a.line().await, "* 1 EXPUNGE");
    quiet(&mut a).await;
    // NOTIFY NONE: nothing more between commands, nor STATUS at the end of commands.
    assert_eq!(a.cmd("n", "NOTIFY NONE").await, ["n OK NOTIFY completed"]);
    b.cmd("a", "APPEND Lists {10+}\r\nSubject: 4").await;
    b.cmd("a", "APPEND INBOX {10+}\r\nSubject: 5").await;
    quiet(&mut a).await;
    assert_eq!(
        a.cmd("p", "NOOP").await,
        ["* 2 EXISTS", "p OK NOOP completed"]
    );
}

#[tokio::test]
async fn without_selected_group_the_selected_mailbox_waits() {
    let env = env().await;
    let mut a = env.login().await;
    a.cmd("e", "ENABLE IMAP4rev2").await;
    a.cmd("s", "SELECT INBOX").await;
    a.cmd("n", "NOTIFY SET (personal (MessageNew MessageExpunge))")
        .await;
    let mut b = env.login().await;
    b.cmd("a", "APPEND INBOX {10+}\r\nSubject: 1").await;
    b.cmd("a", "APPEND Sent {10+}\r\nSubject: 2").await;
    // Sent is watched; the selected INBOX is not (no SELECTED group): its EXISTS waits.
    let sent = a.line().await;
    assert!(
        sent.starts_with("* STATUS \"Sent\" (MESSAGES 1 UIDNEXT 2 "),
        "{sent}"
    );
    quiet(&mut a).await;
    assert_eq!(
        a.cmd("p", "NOOP").await,
        ["* 1 EXISTS", "p OK NOOP completed"]
    );
}

#[tokio::test]
async fn selected_delayed_keeps_expunges_for_a_command() {
    let env = env().await;
    env.deliver("Subject: 1\r\n\r\nx\r\n").await;
    env.deliver("Subject: 2\r\n\r\nx\r\n").await;
    let mut a = env.login().await;
    a.cmd("e", "ENABLE IMAP4rev2").await;
    a.cmd("s", "SELECT INBOX").await;
    a.cmd(
        "n",
        "NOTIFY SET (selected-delayed (MessageNew MessageExpunge FlagChange))",
    )
    .await;
    let mut b = env.login().await;
    b.cmd("s", "SELECT INBOX").await;
    b.cmd("x", "STORE 1 +FLAGS.SILENT (\\Deleted)").await;
    assert_eq!(a.line().await, "* 1 FETCH (UID 1 FLAGS (\\Deleted))");
    b.cmd("x", "EXPUNGE").await;
    quiet(&mut a).await;
    // FETCH does not allow EXPUNGE responses; NOOP does (RFC 9051 §7.5.1).
    assert_eq!(
        a.cmd("f", "FETCH 2 (FLAGS)").await,
        ["* 2 FETCH (FLAGS ())", "f OK FETCH completed"]
    );
    assert_eq!(
        a.cmd("p", "NOOP").await,
        ["* 1 EXPUNGE", "p OK NOOP completed"]
    );
}

#[tokio::test]
async fn mailbox_names_and_subscriptions() {
    let env = env().await;
    let mut a = env.login().await;
    a.cmd("e", "ENABLE IMAP4rev2").await;
    a.cmd(
        "n",
        "NOTIFY SET (personal (MailboxName SubscriptionChange))",
    )
    .await;
    let mut b = env.login().await;
    b.cmd("c", "CREATE Work").await;
    assert_eq!(a.line().await, "* LIST (\\HasNoChildren) \"/\" \"Work\"");
    b.cmd("c", "SUBSCRIBE Work").await;
    assert_eq!(
        a.line().await,
        "* LIST (\\Subscribed \\HasNoChildren) \"/\" \"Work\""
    );
    b.cmd("c", "CREATE Work/Old").await;
    assert_eq!(
        a.line().await,
        "* LIST (\\HasNoChildren) \"/\" \"Work/Old\""
    );
    // RFC 5465 §5.4: the parent is affected too.
    assert_eq!(
        a.line().await,
        "* LIST (\\Subscribed \\HasChildren) \"/\" \"Work\""
    );
    // A rename is one LIST with OLDNAME; its inferiors' renames are not reported. The
    // subscription stays with the old name (RFC 9051 §6.3.7: never removed unasked).
    b.cmd("r", "RENAME Work Play").await;
    assert_eq!(
        a.line().await,
        "* LIST (\\HasChildren) \"/\" \"Play\" (\"OLDNAME\" (\"Work\"))"
    );
    quiet(&mut a).await;
    b.cmd("d", "DELETE Play/Old").await;
    assert_eq!(a.line().await, "* LIST (\\NonExistent) \"/\" \"Play/Old\"");
    assert_eq!(a.line().await, "* LIST (\\HasNoChildren) \"/\" \"Play\"");
    // Unsubscribing the old name, whose mailbox is gone, is reported too.
    b.cmd("u", "UNSUBSCRIBE Work").await;
    let line = a.line().await;
    assert_eq!(line, "* LIST (\\NonExistent) \"/\" \"Work\"");
    quiet(&mut a).await;
}

#[tokio::test]
async fn idle_hears_other_mailboxes() {
    let env = env().await;
    let mut a = env.login().await;
    a.cmd("e", "ENABLE IMAP4rev2").await;
    a.cmd("s", "SELECT INBOX").await;
    a.cmd(
        "n",
        "NOTIFY SET (selected (MessageNew MessageExpunge)) (mailboxes Drafts (MessageNew MessageExpunge FlagChange))",
    )
    .await;
    a.send("i IDLE\r\n").await;
    assert_eq!(a.line().await, "+ idling");
    let mut b = env.login().await;
    b.cmd("a", "APPEND Drafts {10+}\r\nSubject: 1").await;
    let drafts = a.line().await;
    assert!(
        drafts.starts_with("* STATUS \"Drafts\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ")
            && drafts.contains(" UNSEEN 1 HIGHESTMODSEQ "),
        "{drafts}"
    );
    b.cmd("a", "APPEND INBOX {10+}\r\nSubject: 2").await;
    assert_eq!(a.line().await, "* 1 EXISTS");
    // Not watched: nothing.
    b.cmd("a", "APPEND Sent {10+}\r\nSubject: 3").await;
    quiet(&mut a).await;
    a.send("DONE\r\n").await;
    assert_eq!(a.line().await, "i OK IDLE terminated");
}

#[tokio::test]
async fn refused_forms() {
    let env = env().await;
    let mut a = env.login().await;
    let supported =
        "[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]";
    for (cmd, reply) in [
        (
            "NOTIFY SET (personal (MessageNew MessageExpunge AnnotationChange))",
            format!("t NO {supported} unsupported NOTIFY event"),
        ),
        (
            "NOTIFY SET (inboxes (MailboxMetadataChange))",
            format!("t NO {supported} unsupported NOTIFY event"),
        ),
        (
            "NOTIFY SET (selected (MessageNew))",
            "t BAD MessageNew and MessageExpunge must be given together (and with FlagChange)"
                .into(),
        ),
        (
            "NOTIFY SET (selected (FlagChange))",
            "t BAD MessageNew and MessageExpunge must be given together (and with FlagChange)"
                .into(),
        ),
        (
            "NOTIFY SET (selected (MailboxName))",
            "t BAD only message events apply to SELECTED".into(),
        ),
        (
            "NOTIFY SET (selected NONE) (selected-delayed NONE)",
            "t BAD SELECTED given twice".into(),
        ),
        (
            "NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
            "t BAD MessageNew attributes only apply to SELECTED".into(),
        ),
        (
            "NOTIFY SET (personal)",
            "t BAD syntax error: expected a space".into(),
        ),
    ] {
        assert_eq!(a.cmd("t", cmd).await, [reply], "{cmd}");
    }
    // Not before login.
    let mut c = env.connect().await;
    assert_eq!(
        c.cmd("t", "NOTIFY NONE").await,
        ["t BAD command not valid in this state"]
    );
}

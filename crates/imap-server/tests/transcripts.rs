//! Exact response syntax, after the examples of RFC 9051 / RFC 3501: ENVELOPE and BODY
//! quoting, literals for 8-bit data, STATUS, LIST.

mod common;

use common::env;
use store::MailStore;

/// The message of RFC 3501 §6.4.5's FETCH example, rebuilt so that its ENVELOPE and BODY
/// come out as printed there (a 92-line, 3028-octet US-ASCII body). One difference: the
/// example puts a space between the two Cc addresses, which the grammar (`env-cc = "("
/// 1*address ")"`, RFC 9051 §9) does not have; the encoder follows the grammar.
fn rfc_message() -> String {
    let mut body = String::new();
    for _ in 0..91 {
        body.push_str(&"x".repeat(31));
        body.push_str("\r\n");
    }
    body.push_str(&"y".repeat(23));
    body.push_str("\r\n");
    assert_eq!(body.len(), 3028);
    format!(
        "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n\
         From: Terry Gray <gray@cac.washington.edu>\r\n\
         Subject: IMAP4rev1 WG mtg summary and minutes\r\n\
         To: imap@cac.washington.edu\r\n\
         cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n\
         Message-Id: <B27397-0100000@cac.washington.edu>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\
         \r\n{body}"
    )
}

#[tokio::test]
async fn rfc_fetch_envelope_and_body() {
    let env = env().await;
    env.deliver(&rfc_message()).await;
    let mut c = env.login().await;
    c.cmd("e", "ENABLE IMAP4rev2").await;
    c.cmd("s", "SELECT INBOX").await;
    c.cmd("t", "STORE 1 +FLAGS.SILENT (\\Seen)").await;
    assert_eq!(
        c.cmd("a003", "FETCH 1 (FLAGS ENVELOPE BODY)").await,
        [
            "* 1 FETCH (FLAGS (\\Seen) ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \
             \"IMAP4rev1 WG mtg summary and minutes\" \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) \
             ((NIL NIL \"imap\" \"cac.washington.edu\")) \
             ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")\
             (\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \
             \"<B27397-0100000@cac.washington.edu>\") \
             BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))",
            "a003 OK FETCH completed"
        ]
    );
}

#[tokio::test]
async fn quoting_and_literals_in_envelope() {
    let env = env().await;
    // A quote and a backslash in the subject; a Latin-1 (not UTF-8) byte in another.
    env.deliver("Subject: say \"hi\" \\o/\r\n\r\nx\r\n").await;
    let mut raw = b"Subject: caf".to_vec();
    raw.extend_from_slice(b"\xe9\r\n\r\nx\r\n");
    env.store
        .deliver(std::sync::Arc::new(raw), 1_700_000_000, &[env.account])
        .await
        .unwrap();
    let mut c = env.login().await;
    c.cmd("e", "ENABLE IMAP4rev2").await;
    c.cmd("s", "SELECT INBOX").await;
    assert_eq!(
        c.cmd("f", "FETCH 1 ENVELOPE").await[0],
        "* 1 FETCH (ENVELOPE (NIL \"say \\\"hi\\\" \\\\o/\" NIL NIL NIL NIL NIL NIL NIL NIL))"
    );
    // RFC 9051 §4.3: 8-bit data that is not UTF-8 cannot be quoted: a literal.
    assert_eq!(
        c.cmd("f", "FETCH 2 ENVELOPE").await[0],
        "* 2 FETCH (ENVELOPE (NIL {4}\r\ncaf\u{fffd} NIL NIL NIL NIL NIL NIL NIL NIL))"
    );
}

#[tokio::test]
async fn rfc_status_and_list() {
    let env = env().await;
    let mut c = env.login().await;
    c.cmd("c", "CREATE blurdybloop").await;
    c.cmd("c", "CREATE foo/bar").await;
    // RFC 9051 §6.3.11 (names are always sent quoted, which the grammar allows).
    assert_eq!(
        c.cmd("A042", "STATUS blurdybloop (UIDNEXT MESSAGES)").await,
        [
            "* STATUS \"blurdybloop\" (UIDNEXT 1 MESSAGES 0)",
            "A042 OK STATUS completed"
        ]
    );
    // RFC 9051 §6.3.9: the empty pattern gives the delimiter.
    assert_eq!(
        c.cmd("A101", "LIST \"\" \"\"").await,
        ["* LIST (\\Noselect) \"/\" \"\"", "A101 OK LIST completed"]
    );
    let r = c.cmd("A102", "LIST \"\" %").await;
    for want in [
        "* LIST (\\HasNoChildren) \"/\" \"blurdybloop\"",
        "* LIST (\\HasChildren) \"/\" \"foo\"",
        "* LIST (\\HasNoChildren) \"/\" \"INBOX\"",
        "* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
        "A102 OK LIST completed",
    ] {
        assert!(r.contains(&want.to_string()), "{want}: {r:?}");
    }
    // `%` stops at the delimiter.
    assert!(!r.iter().any(|l| l.contains("foo/bar")), "{r:?}");
}

/// A message forwarded as an attachment: the inner message is part 2 (RFC 9051 §6.4.5).
const FORWARDED: &str = "From: Ann <ann@example.org>\r\n\
Subject: Fwd: plans\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
--outer\r\n\
Content-Type: text/plain\r\n\
\r\n\
See below.\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: Bob <bob@example.net>\r\n\
Subject: plans\r\n\
Content-Type: multipart/alternative; boundary=\"inner\"\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Meet at 10.\r\n\
--inner\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PHA+TWVldCBhdCAxMC48L3A+\r\n\
--inner--\r\n\
\r\n\
--outer--\r\n";

#[tokio::test]
async fn sections_of_an_attached_message() {
    let env = env().await;
    env.deliver(FORWARDED).await;
    let mut c = env.login().await;
    c.cmd("e", "ENABLE IMAP4rev2").await;
    c.cmd("s", "SELECT INBOX").await;
    let fetch = async |c: &mut common::Client, items: &str| {
        let r = c.cmd("f", &format!("FETCH 1 ({items})")).await;
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[1], "f OK FETCH completed");
        r[0].clone()
    };
    assert_eq!(
        fetch(&mut c, "BODY.PEEK[2.HEADER]").await,
        "* 1 FETCH (BODY[2.HEADER] {102}\r\nFrom: Bob <bob@example.net>\r\nSubject: plans\r\n\
         Content-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n)"
    );
    assert_eq!(
        fetch(&mut c, "BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]").await,
        "* 1 FETCH (BODY[2.HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: plans\r\n\r\n)"
    );
    assert_eq!(
        fetch(&mut c, "BODY.PEEK[2.1]").await,
        "* 1 FETCH (BODY[2.1] {11}\r\nMeet at 10.)"
    );
    assert_eq!(
        fetch(&mut c, "BODY.PEEK[2.2.MIME]").await,
        "* 1 FETCH (BODY[2.2.MIME] {77}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n)"
    );
    assert_eq!(
        fetch(&mut c, "BINARY.SIZE[2.2] BINARY.PEEK[2.2]").await,
        "* 1 FETCH (BINARY.SIZE[2.2] 18 BINARY[2.2] {18}\r\n<p>Meet at 10.</p>)"
    );
    assert_eq!(
        fetch(&mut c, "BODY.PEEK[2.TEXT]<0.7>").await,
        "* 1 FETCH (BODY[2.TEXT]<0> {7}\r\n--inner)"
    );
    // HEADER of a part that is not a message, and a part that does not exist: empty.
    assert_eq!(
        fetch(&mut c, "BODY.PEEK[1.HEADER] BODY.PEEK[2.3]").await,
        "* 1 FETCH (BODY[1.HEADER] {0}\r\n BODY[2.3] {0}\r\n)"
    );
    assert_eq!(
        fetch(&mut c, "BODYSTRUCTURE").await,
        "* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 1 \
         NIL NIL NIL NIL)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 290 (NIL \"plans\" \
         ((\"Bob\" NIL \"bob\" \"example.net\")) ((\"Bob\" NIL \"bob\" \"example.net\")) \
         ((\"Bob\" NIL \"bob\" \"example.net\")) NIL NIL NIL NIL NIL) \
         ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 11 1 NIL NIL NIL NIL)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"BASE64\" 24 1 NIL NIL NIL NIL) \
         \"ALTERNATIVE\" (\"BOUNDARY\" \"inner\") NIL NIL NIL) 14 NIL NIL NIL NIL) \
         \"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL))"
    );
}

/// RFC 5322 §3.4 groups in ENVELOPE (RFC 9051 §7.5.2): a start marker with the group name,
/// the members, an end marker; an empty group is the two markers.
#[tokio::test]
async fn envelope_groups_routes_and_comments() {
    let env = env().await;
    env.deliver(
        "From: user@domain (Real Name)\r\n\
         To: group: g1@d1.org, \"G Two\" <g2@d2.org>;, group2: g3@d3.org;\r\n\
         Cc: empty:;, other: (just a comment) ;\r\n\
         Bcc: <@route1,@route2:user@domain>, Forgot <f@x.org> Comma <c@x.org>\r\n\
         Subject: groups\r\n\r\nbody\r\n",
    )
    .await;
    let mut c = env.login().await;
    c.cmd("s", "SELECT INBOX").await;
    assert_eq!(
        c.cmd("f", "FETCH 1 ENVELOPE").await,
        [
            "* 1 FETCH (ENVELOPE (NIL \"groups\" ((\"Real Name\" NIL \"user\" \"domain\")) \
             ((\"Real Name\" NIL \"user\" \"domain\")) ((\"Real Name\" NIL \"user\" \"domain\")) \
             ((NIL NIL \"group\" NIL)(NIL NIL \"g1\" \"d1.org\")(\"G Two\" NIL \"g2\" \"d2.org\")\
             (NIL NIL NIL NIL)(NIL NIL \"group2\" NIL)(NIL NIL \"g3\" \"d3.org\")(NIL NIL NIL NIL)) \
             ((NIL NIL \"empty\" NIL)(NIL NIL NIL NIL)(NIL NIL \"other\" NIL)(NIL NIL NIL NIL)) \
             ((NIL \"@route1,@route2\" \"user\" \"domain\")(\"Forgot\" NIL \"f\" \"x.org\")\
             (\"Comma\" NIL \"c\" \"x.org\")) NIL NIL))",
            "f OK FETCH completed"
        ]
    );
}

/// Subscriptions are names (RFC 9051 §6.3.7): they survive DELETE and RENAME; LIST
/// (SUBSCRIBED) marks the gone ones `\NonExistent` (RFC 5258 §3.1), LSUB `\Noselect`, and LSUB
/// with `%` shows an unsubscribed parent of subscriptions as `\Noselect` (RFC 3501 §6.3.9).
#[tokio::test]
async fn subscriptions_of_missing_mailboxes() {
    let env = env().await;
    let mut c = env.login().await;
    for cmd in [
        "CREATE p/kept",
        "CREATE p/gone",
        "CREATE q",
        "SUBSCRIBE p/kept",
        "SUBSCRIBE p/gone",
        "SUBSCRIBE q",
        "DELETE p/gone",
        "RENAME q r",
    ] {
        let r = c.cmd("c", cmd).await;
        assert!(r[0].starts_with("c OK"), "{cmd}: {r:?}");
    }
    assert_eq!(
        c.cmd("a", "LSUB \"\" *").await,
        [
            "* LSUB (\\HasNoChildren) \"/\" \"INBOX\"",
            "* LSUB (\\HasNoChildren \\Archive) \"/\" \"Archive\"",
            "* LSUB (\\HasNoChildren \\Drafts) \"/\" \"Drafts\"",
            "* LSUB (\\HasNoChildren \\Junk) \"/\" \"Junk\"",
            "* LSUB (\\HasNoChildren \\Sent) \"/\" \"Sent\"",
            "* LSUB (\\HasNoChildren \\Trash) \"/\" \"Trash\"",
            "* LSUB (\\Noselect \\HasNoChildren) \"/\" \"p/gone\"",
            "* LSUB (\\HasNoChildren) \"/\" \"p/kept\"",
            "* LSUB (\\Noselect \\HasNoChildren) \"/\" \"q\"",
            "a OK LSUB completed"
        ]
    );
    assert_eq!(
        c.cmd("b", "LSUB \"\" %").await[6..],
        [
            "* LSUB (\\Noselect \\HasChildren) \"/\" \"p\"",
            "* LSUB (\\Noselect \\HasNoChildren) \"/\" \"q\"",
            "b OK LSUB completed"
        ]
    );
    assert_eq!(
        c.cmd("c", "LIST (SUBSCRIBED) \"\" (p/* q r)").await,
        [
            "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"p/gone\"",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"p/kept\"",
            "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"q\"",
            "c OK LIST completed"
        ]
    );
    // RFC 5258 §3.5: `p` is not subscribed, but has subscriptions the pattern does not reach.
    assert_eq!(
        c.cmd("d", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %").await[6..],
        [
            "* LIST (\\HasChildren) \"/\" \"p\" (\"CHILDINFO\" (\"SUBSCRIBED\"))",
            "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"q\"",
            "d OK LIST completed"
        ]
    );
    assert_eq!(
        c.cmd("e", "LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (p p/*)")
            .await,
        [
            "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" \"p/gone\"",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"p/kept\"",
            "e OK LIST completed"
        ]
    );
    // The gone subscription can be dropped; the renamed mailbox was not subscribed.
    assert_eq!(
        c.cmd("f", "UNSUBSCRIBE p/gone").await,
        ["f OK UNSUBSCRIBE completed"]
    );
    assert_eq!(
        c.cmd("f", "UNSUBSCRIBE q").await,
        ["f OK UNSUBSCRIBE completed"]
    );
    assert_eq!(
        c.cmd("g", "LIST \"\" * RETURN (SUBSCRIBED)").await[6..],
        [
            "* LIST (\\HasChildren) \"/\" \"p\"",
            "* LIST (\\HasNoChildren \\Subscribed) \"/\" \"p/kept\"",
            "* LIST (\\HasNoChildren) \"/\" \"r\"",
            "g OK LIST completed"
        ]
    );
    assert_eq!(
        c.cmd("h", "SUBSCRIBE nowhere").await,
        ["h NO [NONEXISTENT] no such mailbox"]
    );
}

/// RFC 2971 §3.3 limits what a client should send; longer values are accepted (and only a
/// clipped summary is logged), and the session goes on.
#[tokio::test]
async fn id_with_long_values() {
    let env = env().await;
    let mut c = env.connect().await;
    let value = "v".repeat(1500);
    let params: Vec<String> = (0..40)
        .map(|i| format!("\"field-name-longer-than-thirty-octets-{i}\" \"{value}\""))
        .collect();
    assert_eq!(
        c.cmd("a", &format!("ID ({})", params.join(" "))).await,
        ["* ID (\"name\" \"yubin\")", "a OK ID completed"]
    );
    assert_eq!(c.cmd("b", "NOOP").await, ["b OK NOOP completed"]);
}

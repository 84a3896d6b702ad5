//! Transcript tests of receiving mail (MX mode): delivery, aliases, refusals, pipelining,
//! BDAT, and the SMTP smuggling case.

mod common;

use common::{addr, harness};
use smtp_server::SmtpMode;
use store::Directory;

const REMOTE: &str = "192.0.2.1";

#[tokio::test]
async fn full_transaction_delivers_with_trace_fields() {
    let h = harness(SmtpMode::Mx, |_| {}).await;
    let mut c = h.connect(REMOTE).await;
    let ehlo = c.cmd("EHLO client.example", "250-mx.example.com\r\n").await;
    for cap in [
        "250-PIPELINING\r\n",
        "250-8BITMIME\r\n",
        "250-SMTPUTF8\r\n",
        "250-SIZE 26214400\r\n",
        "250-ENHANCEDSTATUSCODES\r\n",
        "250-DSN\r\n",
        "CHUNKING\r\n",
    ] {
        assert!(ehlo.contains(cap), "{cap} missing in {ehlo:?}");
    }
    // No TLS configured, and no AUTH in clear from a remote peer on port 25.
    assert!(
        !ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo:?}"
    );
    c.cmd(
        "MAIL FROM:<Sender@Remote.example> BODY=8BITMIME RET=HDRS ENVID=QQ314159",
        "250 2.1.0",
    )
    .await;
    // RFC 3461 parameters are accepted for local delivery (and ignored: it is final).
    c.cmd(
        "RCPT TO:<Alice@Example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Alice+40Example.com",
        "250 2.1.5",
    )
    .await;
    c.cmd("DATA", "354 ").await;
    c.send(b"Subject: hi\r\n\r\nline one\r\n..dotted\r\nlast")
        .await;
    c.send(b"\r\n.\r\n").await;
    let ok = c.expect("250 2.0.0 Ok: queued as ").await;
    let id = ok.trim_end().rsplit(' ').next().unwrap().to_string();
    c.cmd("QUIT", "221 2.0.0 Bye").await;
    c.expect_closed().await;

    let inbox = h.inbox(h.alice).await;
    assert_eq!(inbox.len(), 1);
    let msg = String::from_utf8(inbox[0].clone()).unwrap();
    let expected_start = format!(
        "Return-Path: <sender@remote.example>\r\nReceived: from client.example (unknown [192.0.2.1])\r\n\
         \tby mx.example.com (yubin) with ESMTP id {id}\r\n\tfor <alice@example.com>; "
    );
    assert!(msg.starts_with(&expected_start), "{msg:?}");
    assert!(
        msg.ends_with(" +0000\r\nSubject: hi\r\n\r\nline one\r\n.dotted\r\nlast\r\n"),
        "{msg:?}"
    );
    assert!(h.inbox(h.bob).await.is_empty());
}

#[tokio::test]
async fn alias_and_duplicate_accounts_stored_once_each() {
    let h = harness(SmtpMode::Mx, |_| {}).await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("helo client.example", "250 mx.example.com").await;
    c.cmd("mail from:<>", "250 2.1.0").await;
    c.cmd("rcpt to:<team@example.com>", "250 2.1.5").await;
    c.cmd("rcpt to:<alice@example.com>", "250 2.1.5").await;
    c.cmd("data", "354").await;
    c.send(b"Subject: team\r\n\r\nbody\r\n.\r\n").await;
    c.expect("250 2.0.0").await;
    let a = h.inbox(h.alice).await;
    let b = h.inbox(h.bob).await;
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(a, b);
    let msg = String::from_utf8(a[0].clone()).unwrap();
    assert!(msg.starts_with("Return-Path: <>\r\n"), "{msg:?}");
    // HELO → "with SMTP"; several recipients → no "for" clause.
    assert!(
        msg.contains(" with SMTP id ") && !msg.contains("\tfor <"),
        "{msg:?}"
    );
}

#[tokio::test]
async fn recipient_refusals() {
    let h = harness(SmtpMode::Mx, |c| c.max_recipients = 2).await;
    h.store
        .set_quota(&addr("bob@example.com"), Some(10))
        .await
        .unwrap();
    let mut c = h.connect(REMOTE).await;
    c.cmd("EHLO client.example", "250-").await;
    c.cmd("MAIL FROM:<s@remote.example> SIZE=100", "250").await;
    c.cmd("RCPT TO:<nobody@example.com>", "550 5.1.1").await;
    c.cmd("RCPT TO:<victim@elsewhere.example>", "550 5.7.1")
        .await;
    c.cmd("RCPT TO:<bob@example.com>", "452 4.2.2").await;
    c.cmd("RCPT TO:<not-an-address>", "501 5.1.3").await;
    c.cmd("RCPT TO:<alice@example.com> XFOO=1", "555 5.5.4")
        .await;
    c.cmd("RCPT TO:<alice@example.com>", "250").await;
    // The alias includes bob, who is full.
    c.cmd("RCPT TO:<team@example.com>", "452 4.2.2").await;
    c.cmd("RCPT TO:<ALICE@example.com>", "250").await;
    c.cmd("RCPT TO:<alice@example.com>", "452 4.5.3").await;
    c.cmd("RSET", "250 2.0.0").await;
    c.cmd("RCPT TO:<alice@example.com>", "503 5.5.1").await;
}

#[tokio::test]
async fn sequence_and_syntax_errors() {
    let h = harness(SmtpMode::Mx, |c| c.max_line_length = 512).await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("MAIL FROM:<a@remote.example>", "503 5.5.1").await;
    c.cmd("EHLO", "501 5.5.4").await;
    c.cmd("EHLO client.example", "250-").await;
    c.cmd("DATA", "503 5.5.1").await;
    c.cmd("MAIL FROM:<a@remote.example> FOO=BAR", "555 5.5.4")
        .await;
    c.cmd("MAIL FROM:<a b>", "501 5.1.7").await;
    c.cmd("MAIL FROM:<a@remote.example>", "250").await;
    c.cmd("MAIL FROM:<a@remote.example>", "503 5.5.1").await;
    c.cmd("DATA", "503 5.5.1").await;
    c.cmd("XYZZY", "500 5.5.1").await;
    let long = format!("NOOP {}", "x".repeat(2_000_000));
    c.cmd(&long, "500 5.5.2").await;
    c.cmd("NOOP", "250 2.0.0").await;
    c.cmd("VRFY alice", "252 2.5.0").await;
    c.cmd("HELP", "214 2.0.0").await;
    c.cmd("STARTTLS", "454 4.7.0").await;
}

#[tokio::test]
async fn oversize_messages_refused_with_552() {
    let h = harness(SmtpMode::Mx, |c| c.max_message_size = 1000).await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("EHLO client.example", "250-").await;
    c.cmd("MAIL FROM:<a@remote.example> SIZE=1001", "552 5.3.4")
        .await;
    c.cmd("MAIL FROM:<a@remote.example>", "250").await;
    c.cmd("RCPT TO:<alice@example.com>", "250").await;
    c.cmd("DATA", "354").await;
    let line = "y".repeat(98) + "\r\n";
    c.send(line.repeat(50).as_bytes()).await;
    c.send(b".\r\n").await;
    c.expect("552 5.3.4").await;
    // The session goes on, the transaction is over.
    c.cmd("RCPT TO:<alice@example.com>", "503").await;
    c.cmd("NOOP", "250").await;
    assert!(h.inbox(h.alice).await.is_empty());
}

#[tokio::test]
async fn pipelined_transaction() {
    let h = harness(SmtpMode::Mx, |_| {}).await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("EHLO client.example", "250-").await;
    c.send(
        b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.com>\r\n\
          RCPT TO:<ghost@example.com>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n",
    )
    .await;
    c.expect("250 2.1.0").await;
    c.expect("250 2.1.5").await;
    c.expect("550 5.1.1").await;
    c.expect("250 2.1.5").await;
    c.expect("354").await;
    // The end of data and the next commands in one write.
    c.send(b"Subject: p\r\n\r\nx\r\n.\r\nRSET\r\nQUIT\r\n")
        .await;
    c.expect("250 2.0.0 Ok: queued").await;
    c.expect("250 2.0.0 Ok").await;
    c.expect("221").await;
    c.expect_closed().await;
    assert_eq!(h.inbox(h.alice).await.len(), 1);
    assert_eq!(h.inbox(h.bob).await.len(), 1);
}

#[tokio::test]
async fn bdat_chunks() {
    let h = harness(SmtpMode::Mx, |c| c.max_message_size = 100).await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("EHLO client.example", "250-").await;
    // A chunk outside a transaction is consumed, not run as commands.
    c.send(b"BDAT 6\r\nQUIT\r\n").await;
    c.expect("503 5.5.1").await;
    c.cmd("MAIL FROM:<a@remote.example> BODY=BINARYMIME", "250")
        .await;
    c.cmd("RCPT TO:<alice@example.com>", "250").await;
    c.cmd("DATA", "503 5.5.1").await;
    c.send(b"BDAT 14\r\nSubject: b\r\n\r\nBDAT 5 LAST\r\nhello")
        .await;
    c.expect("250 2.0.0 14 octets").await;
    c.expect("250 2.0.0 Ok: queued as").await;
    // BDAT 0 LAST ends an empty-chunk message.
    c.cmd("MAIL FROM:<a@remote.example>", "250").await;
    c.cmd("RCPT TO:<bob@example.com>", "250").await;
    c.send(b"BDAT 8\r\nline\r\n\r\n").await;
    c.expect("250").await;
    c.cmd("BDAT 0 LAST", "250 2.0.0 Ok: queued").await;
    // Over the size limit: the chunk is discarded, 552, the transaction is gone.
    c.cmd("MAIL FROM:<a@remote.example>", "250").await;
    c.cmd("RCPT TO:<alice@example.com>", "250").await;
    c.send(format!("BDAT 101\r\n{}", "z".repeat(101)).as_bytes())
        .await;
    c.expect("552 5.3.4").await;
    c.send(b"BDAT 4 LAST\r\nNOOP").await;
    c.expect("503").await;
    c.cmd("NOOP", "250").await;

    let a = h.inbox(h.alice).await;
    assert_eq!(a.len(), 1);
    let msg = String::from_utf8(a[0].clone()).unwrap();
    assert!(msg.ends_with("\r\nSubject: b\r\n\r\nhello\r\n"), "{msg:?}");
    let b = h.inbox(h.bob).await;
    assert!(String::from_utf8_lossy(&b[0]).ends_with("+0000\r\nline\r\n\r\n"));
}

/// RFC 2920 §3.2 (7): the replies to a pipelined MAIL and RCPT are sent as soon as the input
/// runs dry, even when that happens inside the BDAT chunk that follows them.
#[tokio::test]
async fn pipelined_replies_are_sent_before_waiting_for_the_rest_of_a_chunk() {
    let h = harness(SmtpMode::Mx, |_| {}).await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("EHLO client.example", "250-").await;
    c.send(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.com>\r\nBDAT 20 LAST\r\nSubject: p\r\n")
        .await;
    c.expect("250 2.1.0").await;
    c.expect("250 2.1.5").await;
    c.send(b"\r\nbody\r\n").await;
    c.expect("250 2.0.0 Ok: queued").await;
    assert_eq!(h.inbox(h.alice).await.len(), 1);
}

#[tokio::test]
async fn bare_lf_dot_does_not_end_data() {
    let h = harness(SmtpMode::Mx, |_| {}).await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("EHLO client.example", "250-").await;
    c.cmd("MAIL FROM:<a@remote.example>", "250").await;
    c.cmd("RCPT TO:<alice@example.com>", "250").await;
    c.cmd("DATA", "354").await;
    c.send(
        b"Subject: a\r\n\r\nfirst\n.\r\nMAIL FROM:<evil@remote.example>\r\n\
          RCPT TO:<bob@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\n",
    )
    .await;
    c.expect("250 2.0.0 Ok: queued").await;
    c.cmd("NOOP", "250 2.0.0 Ok\r\n").await;
    assert!(h.inbox(h.bob).await.is_empty());
    let a = h.inbox(h.alice).await;
    assert_eq!(a.len(), 1);
    let msg = String::from_utf8(a[0].clone()).unwrap();
    assert!(
        msg.ends_with("first\n.\r\nMAIL FROM:<evil@remote.example>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\n"),
        "{msg:?}"
    );
}

#[tokio::test]
async fn postmaster_is_accepted_when_it_exists() {
    let h = harness(SmtpMode::Mx, |_| {}).await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("EHLO client.example", "250-").await;
    c.cmd("MAIL FROM:<a@remote.example>", "250").await;
    c.cmd("RCPT TO:<Postmaster>", "550 5.1.1").await;
    h.store
        .add_alias("postmaster@example.com", &[addr("bob@example.com")])
        .await
        .unwrap();
    c.cmd("RCPT TO:<Postmaster>", "250").await;
}

/// RFC 6531 §3.4/§3.5: a non-ASCII address is accepted only in a transaction whose MAIL
/// declared SMTPUTF8; otherwise 553 5.6.7 and the transaction goes on.
#[tokio::test]
async fn non_ascii_addresses_need_smtputf8() {
    let h = harness(SmtpMode::Mx, |_| {}).await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("EHLO client.example", "250-mx.example.com").await;
    c.cmd("MAIL FROM:<jürgen@remote.example>", "553 5.6.7 ")
        .await;
    c.cmd("MAIL FROM:<sender@remote.example>", "250 2.1.0")
        .await;
    c.cmd("RCPT TO:<bjørn@example.com>", "553 5.6.7 ").await;
    c.cmd("RCPT TO:<alice@example.com>", "250 2.1.5").await;
    c.cmd("RSET", "250").await;
    // With SMTPUTF8 the same addresses get their ordinary answers.
    c.cmd("MAIL FROM:<jürgen@remote.example> SMTPUTF8", "250 2.1.0")
        .await;
    c.cmd("RCPT TO:<bjørn@example.com>", "550 5.1.1").await;
    c.cmd("RCPT TO:<alice@example.com>", "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    c.send(b"Subject: utf8\r\n\r\nbody\r\n.\r\n").await;
    c.expect("250 2.0.0").await;
    let inbox = h.inbox(h.alice).await;
    let msg = String::from_utf8(inbox[0].clone()).unwrap();
    assert!(
        msg.starts_with("Return-Path: <jürgen@remote.example>"),
        "{msg:?}"
    );
    assert!(msg.contains("with UTF8SMTP id "), "{msg:?}");
}

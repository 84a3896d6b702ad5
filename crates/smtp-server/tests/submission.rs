//! Submission policy (RFC 6409): sender and From: checks, header fixes, sending limits, remote
//! recipients through the outbound queue with their DSN parameters (RFC 3461), and
//! AUTH SCRAM-SHA-256 (RFC 5802, RFC 7677) with a client written here from the RFC formulas.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Client, Harness, PASSWORD, harness, harness_with};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use smtp_server::SmtpMode;
use store::{DsnNotify, DsnRet, QueueStore};

const LOOPBACK: &str = "127.0.0.1";

fn plain(user: &str, pass: &str) -> String {
    STANDARD.encode(format!("\0{user}\0{pass}"))
}

/// A session on the submission port, from loopback, authenticated as `user`.
async fn login(h: &Harness, user: &str) -> Client {
    let mut c = h.connect(LOOPBACK).await;
    c.cmd("EHLO client.example", "250-").await;
    c.cmd(
        &format!("AUTH PLAIN {}", plain(user, PASSWORD)),
        "235 2.7.0",
    )
    .await;
    c
}

/// Sends one message (MAIL, RCPTs, DATA) and returns the final reply.
async fn send(c: &mut Client, from: &str, rcpts: &[&str], message: &str) -> String {
    c.cmd(&format!("MAIL FROM:<{from}>"), "250").await;
    for r in rcpts {
        c.cmd(&format!("RCPT TO:<{r}>"), "250").await;
    }
    c.cmd("DATA", "354").await;
    c.send(format!("{message}.\r\n").as_bytes()).await;
    c.reply().await
}

#[tokio::test]
async fn envelope_sender_must_be_the_user_or_an_alias() {
    let h = harness(SmtpMode::Submission, |_| {}).await;
    let mut c = login(&h, "alice@example.com").await;
    c.cmd("MAIL FROM:<bob@example.com>", "553 5.7.1").await;
    c.cmd("MAIL FROM:<ceo@elsewhere.example>", "553 5.7.1")
        .await;
    // team@example.com is an alias with alice among its targets.
    c.cmd("MAIL FROM:<team@example.com>", "250 2.1.0").await;
    c.cmd("RSET", "250").await;
    c.cmd("MAIL FROM:<Alice@Example.COM>", "250 2.1.0").await;
    c.cmd("RSET", "250").await;
    // The null sender (MDNs, RFC 8098) is allowed.
    c.cmd("MAIL FROM:<>", "250 2.1.0").await;
}

#[tokio::test]
async fn from_header_must_be_the_users() {
    let h = harness(SmtpMode::Submission, |_| {}).await;
    let mut c = login(&h, "alice@example.com").await;
    let forged = "From: Bob <bob@example.com>\r\nSubject: x\r\n\r\nhi\r\n";
    let r = send(&mut c, "alice@example.com", &["bob@example.com"], forged).await;
    assert!(r.starts_with("553 5.7.1"), "{r:?}");
    // Two From: fields (a display trick) and none at all are refused too.
    let two = "From: alice@example.com\r\nFrom: bob@example.com\r\n\r\nhi\r\n";
    let r = send(&mut c, "alice@example.com", &["bob@example.com"], two).await;
    assert!(r.starts_with("553 5.7.1"), "{r:?}");
    let none = "Subject: x\r\n\r\nhi\r\n";
    let r = send(&mut c, "alice@example.com", &["bob@example.com"], none).await;
    assert!(r.starts_with("553 5.7.1"), "{r:?}");
    // With BDAT the check comes after the LAST chunk.
    c.cmd("MAIL FROM:<alice@example.com>", "250").await;
    c.cmd("RCPT TO:<bob@example.com>", "250").await;
    let body = "From: mallory@example.com\r\n\r\nhi\r\n";
    c.send(format!("BDAT {} LAST\r\n{body}", body.len()).as_bytes())
        .await;
    c.expect("553 5.7.1").await;
    assert!(h.inbox(h.bob).await.is_empty());
    // The alias is fine in From:, and the session goes on after the refusals.
    let ok = "From: The Team <team@example.com>\r\n\r\nhi\r\n";
    let r = send(&mut c, "alice@example.com", &["bob@example.com"], ok).await;
    assert!(r.starts_with("250 2.0.0"), "{r:?}");
    assert_eq!(h.inbox(h.bob).await.len(), 1);
}

#[tokio::test]
async fn date_and_message_id_added_and_bcc_stripped() {
    let h = harness(SmtpMode::Submission, |_| {}).await;
    let mut c = login(&h, "alice@example.com").await;
    let msg = "From: alice@example.com\r\nTo: bob@example.com\r\nBcc: secret@example.com,\r\n \
               hidden@example.com\r\nSubject: s\r\n\r\nBcc: in the body stays\r\n";
    let r = send(&mut c, "alice@example.com", &["bob@example.com"], msg).await;
    assert!(r.starts_with("250 2.0.0"), "{r:?}");
    let stored = String::from_utf8(h.inbox(h.bob).await.remove(0)).unwrap();
    let (head, body) = stored.split_once("\r\n\r\n").unwrap();
    assert!(!head.to_ascii_lowercase().contains("bcc"), "{stored:?}");
    assert!(!stored.contains("secret@") && !stored.contains("hidden@"));
    assert_eq!(body, "Bcc: in the body stays\r\n");
    assert!(head.contains("\r\nDate: "), "{head:?}");
    let id_line = head
        .lines()
        .find(|l| l.starts_with("Message-ID: <"))
        .expect("Message-ID added");
    assert!(id_line.ends_with("@mx.example.com>"), "{id_line:?}");
    assert!(head.contains("\r\nFrom: alice@example.com\r\nTo: bob@example.com\r\nSubject: s"));

    // Present Date and Message-ID are kept as they are, not doubled.
    let msg = "From: alice@example.com\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\
               Message-ID: <x@client>\r\n\r\nhi\r\n";
    send(&mut c, "alice@example.com", &["bob@example.com"], msg).await;
    let stored = String::from_utf8(h.inbox(h.bob).await.remove(1)).unwrap();
    assert_eq!(stored.matches("Date: ").count(), 1, "{stored:?}");
    assert_eq!(stored.matches("Message-ID: ").count(), 1, "{stored:?}");
    assert!(stored.contains("Message-ID: <x@client>\r\n"));
}

#[tokio::test]
async fn hourly_limits_answer_450() {
    let h = harness(SmtpMode::Submission, |c| {
        c.max_messages_per_hour = Some(2);
        c.max_recipients_per_hour = Some(2);
    })
    .await;
    let mut c = login(&h, "alice@example.com").await;
    let msg = "From: alice@example.com\r\n\r\nhi\r\n";
    let r = send(&mut c, "alice@example.com", &["bob@example.com"], msg).await;
    assert!(r.starts_with("250"), "{r:?}");
    // One recipient used, one in this transaction: a third would exceed 2 per hour.
    c.cmd("MAIL FROM:<alice@example.com>", "250").await;
    c.cmd("RCPT TO:<bob@example.com>", "250").await;
    c.cmd("RCPT TO:<alice@example.com>", "450 4.7.1").await;
    c.cmd("DATA", "354").await;
    c.send(format!("{msg}.\r\n").as_bytes()).await;
    c.expect("250").await;
    // Two messages sent: the next MAIL is refused, in a new session too (per account).
    c.cmd("MAIL FROM:<alice@example.com>", "450 4.7.1").await;
    let mut c2 = login(&h, "alice@example.com").await;
    c2.cmd("MAIL FROM:<alice@example.com>", "450 4.7.1").await;
    // Another account has its own allowance.
    let mut b = login(&h, "bob@example.com").await;
    b.cmd("MAIL FROM:<bob@example.com>", "250").await;
}

/// Two sessions of one account pass MAIL and RCPT on the same usage; the allowance is
/// counted with its check in one store transaction after the data, so only one message is
/// accepted and the other gets `450 4.7.1` (check-then-record would have taken both).
#[tokio::test]
async fn parallel_sessions_cannot_overshoot_the_hourly_limit() {
    let h = harness(SmtpMode::Submission, |c| c.max_messages_per_hour = Some(1)).await;
    let msg = "From: alice@example.com\r\n\r\nhi\r\n";
    let mut c1 = login(&h, "alice@example.com").await;
    let mut c2 = login(&h, "alice@example.com").await;
    for c in [&mut c1, &mut c2] {
        c.cmd("MAIL FROM:<alice@example.com>", "250").await;
        c.cmd("RCPT TO:<bob@example.com>", "250").await;
        c.cmd("DATA", "354").await;
    }
    c1.send(format!("{msg}.\r\n").as_bytes()).await;
    c1.expect("250").await;
    c2.send(format!("{msg}.\r\n").as_bytes()).await;
    c2.expect("450 4.7.1").await;
    assert_eq!(
        h.inbox(h.bob).await.len(),
        1,
        "the refused message was not stored"
    );
    // The refusal ended the transaction; the session goes on and MAIL is refused early now.
    c2.cmd("MAIL FROM:<alice@example.com>", "450 4.7.1").await;
}

#[tokio::test]
async fn remote_recipient_without_queue_is_451_and_never_relayed_unauthenticated() {
    let h = harness(SmtpMode::Submission, |_| {}).await;
    let mut c = login(&h, "alice@example.com").await;
    c.cmd("MAIL FROM:<alice@example.com>", "250").await;
    c.cmd("RCPT TO:<friend@elsewhere.example>", "451 4.4.0")
        .await;

    let h = harness_with(SmtpMode::Mx, |_| {}, None, true).await;
    let mut c = h.connect("192.0.2.1").await;
    c.cmd("EHLO client.example", "250-").await;
    c.cmd("MAIL FROM:<alice@example.com>", "250").await;
    c.cmd("RCPT TO:<friend@elsewhere.example>", "550 5.7.1")
        .await;
}

#[tokio::test]
async fn remote_recipients_are_queued_with_dsn_parameters() {
    let h = harness_with(SmtpMode::Submission, |_| {}, None, true).await;
    let mut c = login(&h, "alice@example.com").await;
    c.cmd(
        "MAIL FROM:<alice@example.com> RET=HDRS ENVID=QQ314159",
        "250",
    )
    .await;
    c.cmd(
        "RCPT TO:<friend@elsewhere.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Friend+40elsewhere.example",
        "250 2.1.5",
    )
    .await;
    c.cmd("RCPT TO:<other@far.example>", "250 2.1.5").await;
    c.cmd("RCPT TO:<bob@example.com> NOTIFY=NEVER", "250 2.1.5")
        .await;
    c.cmd("DATA", "354").await;
    c.send(b"From: alice@example.com\r\nBcc: x@y.example\r\nSubject: out\r\n\r\nhello\r\n.\r\n")
        .await;
    c.expect("250 2.0.0 Ok: queued as").await;

    // The local recipient got it in its mailbox.
    assert_eq!(h.inbox(h.bob).await.len(), 1);
    // One queue entry for the two remote recipients, with the envelope's DSN parameters.
    let queue = h.store.list_queue().await.unwrap();
    assert_eq!(queue.len(), 1, "{queue:?}");
    let q = &queue[0];
    assert_eq!(q.sender, "alice@example.com");
    assert_eq!(q.envid.as_deref(), Some("QQ314159"));
    assert_eq!(q.ret, Some(DsnRet::Headers));
    assert_eq!(q.account, Some(h.alice));
    let rcpts: Vec<_> = q
        .recipients
        .iter()
        .map(|r| (r.address.as_str(), r.orcpt.as_deref(), r.notify))
        .collect();
    assert_eq!(
        rcpts,
        vec![
            (
                "friend@elsewhere.example",
                // Kept decoded in the queue (RFC 3464 §2.3.1); re-encoded for the next hop.
                Some("RFC822;Friend@elsewhere.example"),
                DsnNotify {
                    success: true,
                    failure: true,
                    delay: false
                }
            ),
            ("other@far.example", None, DsnNotify::default()),
        ]
    );
    // The queued copy: a Received: field but no Return-Path (RFC 5321 §4.4), fixes applied.
    let body = h.store.queued_body(q.id).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.starts_with("Received: from client.example"),
        "{text:?}"
    );
    assert!(
        !text.contains("Return-Path") && !text.contains("Bcc"),
        "{text:?}"
    );
    assert!(text.contains("\r\nMessage-ID: <") && text.ends_with("\r\n\r\nhello\r\n"));
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// `Hi()` — RFC 5802 §2.2.
fn hi(password: &[u8], salt: &[u8], i: u32) -> Vec<u8> {
    let mut u = hmac(password, &[salt, &[0, 0, 0, 1][..]].concat());
    let mut out = u.clone();
    for _ in 1..i {
        u = hmac(password, &u);
        out.iter_mut().zip(&u).for_each(|(o, x)| *o ^= x);
    }
    out
}

/// Runs the SCRAM-SHA-256 exchange as a client (RFC 5802 §3, §5) up to the server's answer
/// to the client-final message; returns that reply and the expected server signature.
async fn scram_client(c: &mut Client, user: &str, password: &str) -> (String, String) {
    let bare = format!("n={user},r=clientNONCE12345");
    let first = STANDARD.encode(format!("n,,{bare}"));
    let challenge = c.cmd(&format!("AUTH SCRAM-SHA-256 {first}"), "334 ").await;
    let server_first =
        String::from_utf8(STANDARD.decode(challenge[4..].trim_end()).unwrap()).unwrap();
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 0;
    for attr in server_first.split(',') {
        match attr.split_at(2) {
            ("r=", v) => nonce = v,
            ("s=", v) => salt = STANDARD.decode(v).unwrap(),
            ("i=", v) => iterations = v.parse().unwrap(),
            _ => {}
        }
    }
    assert!(
        nonce.starts_with("clientNONCE12345") && nonce.len() > 16,
        "{server_first}"
    );
    assert!(iterations >= 4096);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let salted = hi(password.as_bytes(), &salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let signature = hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    let server_key = hmac(&salted, b"Server Key");
    let expected_v = format!(
        "v={}",
        STANDARD.encode(hmac(&server_key, auth_message.as_bytes()))
    );
    let last = STANDARD.encode(format!("{without_proof},p={}", STANDARD.encode(proof)));
    c.send(format!("{last}\r\n").as_bytes()).await;
    (c.reply().await, expected_v)
}

#[tokio::test]
async fn auth_scram_sha_256_full_exchange() {
    let h = harness(SmtpMode::Submission, |_| {}).await;
    let mut c = h.connect(LOOPBACK).await;
    let ehlo = c.cmd("EHLO client.example", "250-").await;
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN SCRAM-SHA-256\r\n"),
        "{ehlo:?}"
    );
    let (reply, expected_v) = scram_client(&mut c, "alice@example.com", PASSWORD).await;
    // The server-final message comes as a 334 challenge; the client verifies it.
    assert!(reply.starts_with("334 "), "{reply:?}");
    let v = STANDARD.decode(reply[4..].trim_end()).unwrap();
    assert_eq!(String::from_utf8(v).unwrap(), expected_v);
    c.cmd("", "235 2.7.0").await;
    c.cmd("MAIL FROM:<alice@example.com>", "250").await;

    // Wrong password: 535 at the client-final step.
    let mut c = h.connect(LOOPBACK).await;
    c.cmd("EHLO client.example", "250-").await;
    let (reply, _) = scram_client(&mut c, "alice@example.com", "wrong").await;
    assert!(reply.starts_with("535 5.7.8"), "{reply:?}");
    // bob has no SCRAM credentials (password set before): 535, but PLAIN still works.
    let (reply, _) = scram_client(&mut c, "bob@example.com", PASSWORD).await;
    assert!(reply.starts_with("535 5.7.8"), "{reply:?}");
    // Unknown users go through the same steps.
    let (reply, _) = scram_client(&mut c, "nobody@example.com", PASSWORD).await;
    assert!(reply.starts_with("535 5.7.8"), "{reply:?}");
    c.expect("421 4.7.0").await;
    let mut c = login(&h, "bob@example.com").await;
    c.cmd("MAIL FROM:<bob@example.com>", "250").await;

    // Malformed client-first, channel binding asked for, and cancel.
    let mut c = h.connect(LOOPBACK).await;
    c.cmd("EHLO client.example", "250-").await;
    let p = STANDARD.encode("p=tls-unique,,n=alice@example.com,r=abc");
    c.cmd(&format!("AUTH SCRAM-SHA-256 {p}"), "501").await;
    c.cmd("AUTH SCRAM-SHA-256", "334 \r\n").await;
    c.cmd("*", "501 5.7.0").await;
}

/// Without sending limits nothing is counted: no row in the store's sending log per message
/// (issue 12: a rate-limiter record for every message, with no limit set, grew the log).
#[tokio::test]
async fn no_sending_log_rows_without_limits() {
    use store::SendingLog;
    let h = harness(SmtpMode::Submission, |_| {}).await;
    let mut c = login(&h, "alice@example.com").await;
    let msg = "From: alice@example.com\r\n\r\nhi\r\n";
    for _ in 0..3 {
        let r = send(&mut c, "alice@example.com", &["bob@example.com"], msg).await;
        assert!(r.starts_with("250"), "{r:?}");
    }
    let usage = h.store.sending_usage(h.alice, 0).await.unwrap();
    assert_eq!((usage.messages, usage.recipients), (0, 0));
    // With a limit, the same messages are counted.
    let h = harness(SmtpMode::Submission, |c| c.max_messages_per_hour = Some(10)).await;
    let mut c = login(&h, "alice@example.com").await;
    send(&mut c, "alice@example.com", &["bob@example.com"], msg).await;
    let usage = h.store.sending_usage(h.alice, 0).await.unwrap();
    assert_eq!((usage.messages, usage.recipients), (1, 1));
}

/// The transfer budget (`SmtpConfig::transfer_budget`): DATA over it gets `452 4.3.1` after
/// its end, BDAT before its chunk is kept; the budget is whole again afterwards.
#[tokio::test]
async fn transfers_over_the_budget_get_452() {
    let budget = server_kit::MemoryBudget::new(300 * 1024);
    let b = std::sync::Arc::clone(&budget);
    let h = harness(SmtpMode::Submission, move |c| c.transfer_budget = b).await;
    let mut held = budget.charge();
    assert!(held.reserve(200 * 1024), "another transfer holds 200 KiB");
    let line = "x".repeat(70) + "\r\n";
    let big = format!("From: alice@example.com\r\n\r\n{}", line.repeat(2000));
    let mut c = login(&h, "alice@example.com").await;
    c.cmd("MAIL FROM:<alice@example.com>", "250").await;
    c.cmd("RCPT TO:<bob@example.com>", "250").await;
    c.cmd("DATA", "354").await;
    c.send(format!("{big}.\r\n").as_bytes()).await;
    c.expect("452 4.3.1").await;
    c.cmd("MAIL FROM:<alice@example.com>", "250").await;
    c.cmd("RCPT TO:<bob@example.com>", "250").await;
    c.send(format!("BDAT {} LAST\r\n{big}", big.len()).as_bytes())
        .await;
    c.expect("452 4.3.1").await;
    assert_eq!(
        budget.used(),
        held.held(),
        "the refused transfers hold nothing"
    );
    drop(held);
    let r = send(&mut c, "alice@example.com", &["bob@example.com"], &big).await;
    assert!(r.starts_with("250"), "{r:?}");
    assert_eq!(budget.used(), 0);
    assert_eq!(h.inbox(h.bob).await.len(), 1);
}

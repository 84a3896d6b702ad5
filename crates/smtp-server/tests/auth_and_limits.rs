//! Transcript tests of submission (AUTH, relay rules) and of session limits (timeouts,
//! shutdown, error counts).

mod common;

use std::time::Duration;

use common::{PASSWORD, harness};
use server_kit::Shutdown;
use smtp_server::SmtpMode;

const REMOTE: &str = "192.0.2.1";
const LOOPBACK: &str = "127.0.0.1";

fn plain(user: &str, pass: &str) -> String {
    sasl::encode(format!("\0{user}\0{pass}").as_bytes())
}

#[tokio::test]
async fn submission_requires_auth_and_refuses_it_in_clear_from_remote() {
    let h = harness(SmtpMode::Submission, |_| {}).await;
    let mut c = h.connect(REMOTE).await;
    let ehlo = c.cmd("EHLO client.example", "250-").await;
    assert!(!ehlo.contains("AUTH"), "{ehlo:?}");
    c.cmd("MAIL FROM:<alice@example.com>", "530 5.7.0").await;
    let line = format!("AUTH PLAIN {}", plain("alice@example.com", PASSWORD));
    c.cmd(
        &line,
        "538 5.7.11 Encryption required for requested authentication mechanism",
    )
    .await;
    c.cmd("AUTH LOGIN", "538 5.7.11").await;
}

#[tokio::test]
async fn mx_does_not_offer_auth_in_clear_even_from_loopback() {
    let h = harness(SmtpMode::Mx, |_| {}).await;
    let mut c = h.connect(LOOPBACK).await;
    let ehlo = c.cmd("EHLO client.example", "250-").await;
    assert!(!ehlo.contains("AUTH"), "{ehlo:?}");
    c.cmd("AUTH PLAIN", "538 5.7.11").await;
}

#[tokio::test]
async fn submission_over_loopback_with_plain() {
    let h = harness(SmtpMode::Submission, |_| {}).await;
    let mut c = h.connect(LOOPBACK).await;
    c.cmd("AUTH PLAIN", "503 5.5.1").await;
    let ehlo = c.cmd("EHLO client.example", "250-").await;
    assert!(
        ehlo.contains("AUTH PLAIN LOGIN SCRAM-SHA-256\r\n"),
        "{ehlo:?}"
    );
    c.cmd("MAIL FROM:<alice@example.com>", "530 5.7.0").await;
    let wrong = format!("AUTH PLAIN {}", plain("alice@example.com", "wrong"));
    c.cmd(&wrong, "535 5.7.8").await;
    let right = format!("AUTH PLAIN {}", plain("alice@example.com", PASSWORD));
    c.cmd(&right, "235 2.7.0").await;
    c.cmd(&right, "503 5.5.1").await;
    c.cmd("MAIL FROM:<alice@example.com>", "250").await;
    c.cmd("RCPT TO:<friend@elsewhere.example>", "451 4.4.0")
        .await;
    c.cmd("RCPT TO:<bob@example.com>", "250").await;
    c.cmd("AUTH PLAIN", "503 5.5.1").await;
    c.cmd("DATA", "354").await;
    c.send(b"From: alice@example.com\r\nSubject: local\r\n\r\nhi bob\r\n.\r\n")
        .await;
    c.expect("250 2.0.0 Ok: queued").await;
    let b = h.inbox(h.bob).await;
    let msg = String::from_utf8(b[0].clone()).unwrap();
    assert!(msg.contains(" with ESMTPA id "), "{msg:?}");
}

#[tokio::test]
async fn plain_with_empty_challenge_and_login_and_cancel() {
    let h = harness(SmtpMode::Submission, |_| {}).await;
    let mut c = h.connect(LOOPBACK).await;
    c.cmd("EHLO client.example", "250-").await;
    // PLAIN without initial response: empty 334 challenge (RFC 4954 §4).
    c.cmd("AUTH PLAIN", "334 \r\n").await;
    c.cmd("*", "501 5.7.0").await;
    c.cmd("AUTH PLAIN", "334 \r\n").await;
    c.cmd("not base64!", "501 5.5.2").await;
    c.cmd("AUTH CRAM-MD5", "504 5.5.4").await;
    // LOGIN: username and password prompts.
    c.cmd("AUTH LOGIN", "334 VXNlcm5hbWU6\r\n").await;
    c.cmd(&sasl::encode(b"alice@example.com"), "334 UGFzc3dvcmQ6\r\n")
        .await;
    c.cmd(&sasl::encode(PASSWORD.as_bytes()), "235 2.7.0").await;
}

#[tokio::test]
async fn login_with_initial_response() {
    let h = harness(SmtpMode::Submission, |_| {}).await;
    let mut c = h.connect(LOOPBACK).await;
    c.cmd("EHLO client.example", "250-").await;
    let line = format!("AUTH LOGIN {}", sasl::encode(b"bob@example.com"));
    c.cmd(&line, "334 UGFzc3dvcmQ6\r\n").await;
    c.cmd(&sasl::encode(PASSWORD.as_bytes()), "235 2.7.0").await;
    c.cmd("MAIL FROM:<bob@example.com>", "250").await;
}

#[tokio::test]
async fn too_many_auth_failures_close() {
    let h = harness(SmtpMode::Submission, |_| {}).await;
    let mut c = h.connect(LOOPBACK).await;
    c.cmd("EHLO client.example", "250-").await;
    let wrong = format!("AUTH PLAIN {}", plain("alice@example.com", "nope"));
    c.cmd(&wrong, "535 5.7.8").await;
    c.cmd(&wrong, "535 5.7.8").await;
    c.cmd(&wrong, "535 5.7.8").await;
    c.expect("421 4.7.0").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn too_many_errors_close() {
    let h = harness(SmtpMode::Mx, |c| c.max_errors = 3).await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("FOO", "500 5.5.1").await;
    c.cmd("BAR", "500 5.5.1").await;
    c.cmd("BAZ", "500 5.5.1").await;
    c.expect("421 4.7.0").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn command_timeout_sends_421() {
    let h = harness(SmtpMode::Mx, |c| {
        c.command_timeout = Duration::from_millis(200)
    })
    .await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("EHLO client.example", "250-").await;
    c.expect("421 4.4.2 mx.example.com Error: timeout exceeded")
        .await;
    c.expect_closed().await;
}

#[tokio::test]
async fn data_timeout_sends_421() {
    let h = harness(SmtpMode::Mx, |c| {
        c.data_timeout = Duration::from_millis(200)
    })
    .await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("EHLO client.example", "250-").await;
    c.cmd("MAIL FROM:<a@remote.example>", "250").await;
    c.cmd("RCPT TO:<alice@example.com>", "250").await;
    c.cmd("DATA", "354").await;
    c.send(b"Subject: slow\r\n").await;
    c.expect("421 4.4.2").await;
    c.expect_closed().await;
    assert!(h.inbox(h.alice).await.is_empty());
}

/// Slowloris inside DATA: a byte every 100 ms, each well within the data timeout, must not
/// hold the session for ever; the content has to arrive in pieces of 64 KiB per timeout.
#[tokio::test]
async fn data_trickled_a_byte_at_a_time_times_out() {
    let h = harness(SmtpMode::Mx, |c| {
        c.data_timeout = Duration::from_millis(500)
    })
    .await;
    let mut c = h.connect(REMOTE).await;
    c.cmd("EHLO client.example", "250-").await;
    c.cmd("MAIL FROM:<a@remote.example>", "250").await;
    c.cmd("RCPT TO:<alice@example.com>", "250").await;
    c.cmd("DATA", "354").await;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(5) && c.try_send(b"x").await {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "held for {:?}",
        started.elapsed()
    );
    c.expect("421 4.4.2").await;
    c.expect_closed().await;
    assert!(h.inbox(h.alice).await.is_empty());
}

#[tokio::test]
async fn shutdown_while_idle_sends_421() {
    let h = harness(SmtpMode::Mx, |_| {}).await;
    let shutdown = Shutdown::new();
    let mut c = h.connect_with(REMOTE, shutdown.clone()).await;
    c.cmd("EHLO client.example", "250-").await;
    shutdown.cancel();
    c.expect("421 4.3.2 mx.example.com Service shutting down")
        .await;
    c.expect_closed().await;
}

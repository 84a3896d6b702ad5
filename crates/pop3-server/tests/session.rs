//! POP3 sessions against a real store, over `tokio::io::duplex`.

mod common;

use std::time::Duration;

use common::{Harness, PASSWORD, USER};
use server_kit::Shutdown;
use store::MailStore;

const MSG1: &[u8] = b"From: bob@example.net\r\nSubject: one\r\n\r\nHello\r\n";
const MSG2: &[u8] =
    b"From: carol@example.net\r\nSubject: two\r\n\r\nBody line 1\r\nBody line 2\r\n";

fn b64(data: &[u8]) -> String {
    sasl::encode(data)
}

#[tokio::test]
async fn user_pass_login_stat_list_uidl() {
    let h = Harness::new().await;
    let s1 = h.deliver(MSG1).await;
    let s2 = h.deliver(MSG2).await;
    let mut c = h.connect().await;
    // Commands are case-insensitive (RFC 1939 §3).
    assert_eq!(c.cmd(&format!("user {USER}")).await, "+OK send PASS");
    assert_eq!(
        c.cmd(&format!("PASS {PASSWORD}")).await,
        format!(
            "+OK maildrop has 2 messages ({} octets)",
            MSG1.len() + MSG2.len()
        )
    );
    assert_eq!(
        c.cmd("STAT").await,
        format!("+OK 2 {}", MSG1.len() + MSG2.len())
    );
    assert_eq!(
        c.cmd("LIST").await,
        format!("+OK 2 messages ({} octets)", MSG1.len() + MSG2.len())
    );
    assert_eq!(
        c.body_lines().await,
        [format!("1 {}", MSG1.len()), format!("2 {}", MSG2.len())]
    );
    assert_eq!(c.cmd("LIST 2").await, format!("+OK 2 {}", MSG2.len()));
    assert_eq!(c.cmd("LIST 3").await, "-ERR no such message 3");
    assert_eq!(c.cmd("LIST 0").await, "-ERR no such message 0");
    let uid1 = format!("{:08x}{:08x}", s1.uid_validity, s1.uid);
    let uid2 = format!("{:08x}{:08x}", s2.uid_validity, s2.uid);
    assert!(c.cmd("UIDL").await.starts_with("+OK"));
    assert_eq!(
        c.body_lines().await,
        [format!("1 {uid1}"), format!("2 {uid2}")]
    );
    assert_eq!(c.cmd("UIDL 1").await, format!("+OK 1 {uid1}"));
    assert_eq!(c.cmd("NOOP").await, "+OK");
    assert_eq!(c.cmd("RETR x").await, "-ERR invalid number");
    assert_eq!(c.cmd("XYZZY").await, "-ERR unknown command");
    assert_eq!(c.cmd("USER again").await, "-ERR already logged in");
    assert_eq!(c.cmd("QUIT").await, "+OK yubin POP3 signing off");
    c.expect_closed().await;
}

#[tokio::test]
async fn commands_need_login_and_pass_needs_user() {
    let h = Harness::new().await;
    let mut c = h.connect().await;
    assert_eq!(
        c.cmd("STAT").await,
        "-ERR not logged in; use USER/PASS or AUTH first"
    );
    assert_eq!(c.cmd("PASS x").await, "-ERR send USER first");
    assert_eq!(c.cmd("STLS").await, "-ERR STLS not available");
    assert_eq!(c.cmd("QUIT").await, "+OK yubin POP3 signing off");
    c.expect_closed().await;
}

#[tokio::test]
async fn auth_plain_and_login() {
    let h = Harness::new().await;
    h.deliver(MSG1).await;
    let plain = b64(format!("\0{USER}\0{PASSWORD}").as_bytes());

    // With initial response.
    let mut c = h.connect().await;
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {plain}")).await,
        format!("+OK maildrop has 1 messages ({} octets)", MSG1.len())
    );
    assert_eq!(c.cmd("QUIT").await, "+OK yubin POP3 signing off");
    c.expect_closed().await;

    // Without: an empty challenge first (RFC 5034 §4).
    let mut c = h.connect().await;
    assert_eq!(c.cmd("AUTH").await, "+OK SASL mechanisms follow");
    assert_eq!(c.body_lines().await, ["PLAIN", "LOGIN"]);
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(c.cmd("*").await, "-ERR authentication cancelled");
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert_eq!(c.cmd("!!!").await, "-ERR invalid SASL response");
    assert_eq!(
        c.cmd("AUTH CRAM-MD5").await,
        "-ERR unsupported SASL mechanism"
    );
    assert_eq!(c.cmd("AUTH PLAIN").await, "+ ");
    assert!(c.cmd(&plain).await.starts_with("+OK maildrop has 1"));
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {}", MSG1.len()));
    assert_eq!(c.cmd("QUIT").await, "+OK yubin POP3 signing off");
    c.expect_closed().await;

    // LOGIN: Username:, Password: challenges.
    let mut c = h.connect().await;
    assert_eq!(c.cmd("AUTH LOGIN").await, "+ VXNlcm5hbWU6");
    assert_eq!(c.cmd(&b64(USER.as_bytes())).await, "+ UGFzc3dvcmQ6");
    assert!(
        c.cmd(&b64(PASSWORD.as_bytes()))
            .await
            .starts_with("+OK maildrop has 1")
    );
    c.disconnect().await;

    // Wrong password through SASL: [AUTH].
    let mut c = h.connect().await;
    let wrong = b64(format!("\0{USER}\0nope").as_bytes());
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {wrong}")).await,
        "-ERR [AUTH] invalid user name or password"
    );
    c.disconnect().await;
}

#[tokio::test]
async fn retr_and_top_byte_stuff() {
    let h = Harness::new().await;
    let msg: &[u8] =
        b"Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nmiddle . dot\r\nlast\r\n";
    h.deliver(msg).await;
    let mut c = h.login().await;
    assert_eq!(c.cmd("RETR 1").await, format!("+OK {} octets", msg.len()));
    assert_eq!(
        c.body().await,
        b"Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\n..\r\nmiddle . dot\r\nlast\r\n.\r\n"
    );
    assert_eq!(c.cmd("TOP 1 0").await, "+OK top of message follows");
    assert_eq!(c.body().await, b"Subject: dots\r\n\r\n.\r\n");
    assert_eq!(c.cmd("TOP 1 2").await, "+OK top of message follows");
    assert_eq!(
        c.body().await,
        b"Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\n.\r\n"
    );
    assert_eq!(c.cmd("RETR 2").await, "-ERR no such message 2");
    assert_eq!(c.cmd("TOP 2 1").await, "-ERR no such message 2");
    assert_eq!(c.cmd("QUIT").await, "+OK yubin POP3 signing off");
    c.expect_closed().await;
}

#[tokio::test]
async fn large_message_is_streamed_whole() {
    // Small chunks so that the message crosses many chunk boundaries, with a dot line at each.
    let h = Harness::with_config(|c| c.retr_chunk_size = 512).await;
    let mut msg = b"Subject: big\r\n\r\n".to_vec();
    let mut expected = msg.clone();
    for i in 0..5000 {
        let line = format!(".{i:0>20}\r\n");
        msg.extend_from_slice(line.as_bytes());
        expected.push(b'.');
        expected.extend_from_slice(line.as_bytes());
    }
    // No final CRLF: the server must add one before the terminator.
    msg.extend_from_slice(b"tail");
    expected.extend_from_slice(b"tail\r\n.\r\n");
    h.deliver(&msg).await;
    let mut c = h.login().await;
    assert_eq!(c.cmd("RETR 1").await, format!("+OK {} octets", msg.len()));
    assert_eq!(c.body().await, expected);
    c.disconnect().await;
}

#[tokio::test]
async fn dele_then_quit_removes() {
    let h = Harness::new().await;
    h.deliver(MSG1).await;
    let s2 = h.deliver(MSG2).await;
    let mut c = h.login().await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(c.cmd("DELE 1").await, "-ERR message 1 already deleted");
    assert_eq!(c.cmd("RETR 1").await, "-ERR message 1 already deleted");
    assert_eq!(c.cmd("LIST 1").await, "-ERR message 1 already deleted");
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {}", MSG2.len()));
    assert!(c.cmd("LIST").await.starts_with("+OK 1 messages"));
    assert_eq!(c.body_lines().await, [format!("2 {}", MSG2.len())]);
    assert_eq!(
        c.cmd("QUIT").await,
        "+OK yubin POP3 signing off (1 messages deleted)"
    );
    c.expect_closed().await;

    let inbox = h
        .store
        .find_mailbox(h.account, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let left = h.store.list_messages(inbox.id).await.unwrap();
    assert_eq!(left.iter().map(|m| m.uid).collect::<Vec<_>>(), [s2.uid]);

    let mut c = h.login().await;
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {}", MSG2.len()));
    assert_eq!(
        c.cmd("UIDL 1").await,
        format!("+OK 1 {:08x}{:08x}", s2.uid_validity, s2.uid)
    );
    c.disconnect().await;
}

#[tokio::test]
async fn dele_then_disconnect_or_rset_keeps() {
    let h = Harness::new().await;
    h.deliver(MSG1).await;
    h.deliver(MSG2).await;
    let mut c = h.login().await;
    assert_eq!(c.cmd("DELE 2").await, "+OK message 2 deleted");
    c.disconnect().await;

    let mut c = h.login().await;
    assert_eq!(
        c.cmd("STAT").await,
        format!("+OK 2 {}", MSG1.len() + MSG2.len())
    );
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(c.cmd("DELE 2").await, "+OK message 2 deleted");
    assert_eq!(c.cmd("STAT").await, "+OK 0 0");
    assert_eq!(
        c.cmd("RSET").await,
        format!(
            "+OK maildrop has 2 messages ({} octets)",
            MSG1.len() + MSG2.len()
        )
    );
    assert_eq!(c.cmd("QUIT").await, "+OK yubin POP3 signing off");
    c.expect_closed().await;

    let inbox = h
        .store
        .find_mailbox(h.account, "INBOX")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.store.list_messages(inbox.id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn second_login_is_in_use() {
    let h = Harness::new().await;
    h.deliver(MSG1).await;
    let mut first = h.login().await;
    let mut second = h.connect().await;
    assert_eq!(second.cmd(&format!("USER {USER}")).await, "+OK send PASS");
    assert_eq!(
        second.cmd(&format!("PASS {PASSWORD}")).await,
        "-ERR [IN-USE] maildrop is locked by another session, try again later"
    );
    // Still in AUTHORIZATION: the first session ends, then the second can log in.
    assert_eq!(first.cmd("QUIT").await, "+OK yubin POP3 signing off");
    first.expect_closed().await;
    assert_eq!(second.cmd(&format!("USER {USER}")).await, "+OK send PASS");
    assert!(
        second
            .cmd(&format!("PASS {PASSWORD}"))
            .await
            .starts_with("+OK maildrop has 1")
    );
    second.disconnect().await;
}

#[tokio::test]
async fn uidl_is_stable_across_sessions() {
    let h = Harness::new().await;
    h.deliver(MSG1).await;
    h.deliver(MSG2).await;
    let mut listings = Vec::new();
    for _ in 0..2 {
        let mut c = h.login().await;
        assert!(c.cmd("UIDL").await.starts_with("+OK"));
        let lines = c.body_lines().await;
        assert_eq!(lines.len(), 2);
        for line in &lines {
            let id = line.split(' ').nth(1).unwrap();
            assert!((1..=70).contains(&id.len()));
            assert!(id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        }
        listings.push(lines);
        c.disconnect().await;
    }
    assert_eq!(listings[0], listings[1]);
    assert_ne!(
        listings[0][0].split(' ').nth(1),
        listings[0][1].split(' ').nth(1)
    );
}

#[tokio::test]
async fn mail_arriving_mid_session_waits_for_next_session() {
    let h = Harness::new().await;
    h.deliver(MSG1).await;
    let mut c = h.login().await;
    h.deliver(MSG2).await;
    assert_eq!(c.cmd("STAT").await, format!("+OK 1 {}", MSG1.len()));
    assert_eq!(c.cmd("RETR 2").await, "-ERR no such message 2");
    assert_eq!(c.cmd("QUIT").await, "+OK yubin POP3 signing off");
    c.expect_closed().await;

    let mut c = h.login().await;
    assert_eq!(
        c.cmd("STAT").await,
        format!("+OK 2 {}", MSG1.len() + MSG2.len())
    );
    c.disconnect().await;
}

#[tokio::test]
async fn message_expunged_meanwhile_gives_err() {
    let h = Harness::new().await;
    let s1 = h.deliver(MSG1).await;
    h.deliver(MSG2).await;
    let mut c = h.login().await;
    // Another protocol (IMAP) expunges message 1 during the POP3 session.
    h.store.expunge(s1.mailbox, &[s1.uid]).await.unwrap();
    assert_eq!(
        c.cmd("RETR 1").await,
        "-ERR message 1 was deleted by another session"
    );
    // The session goes on.
    assert_eq!(c.cmd("RETR 2").await, format!("+OK {} octets", MSG2.len()));
    assert_eq!(c.body().await, [MSG2, b".\r\n"].concat());
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
    c.expect_closed().await;
}

#[tokio::test]
async fn plaintext_from_the_network_is_refused() {
    let h = Harness::new().await;
    let mut c = h.connect_from("192.0.2.7:5555", Shutdown::new()).await;
    assert_eq!(c.cmd("CAPA").await, "+OK Capability list follows");
    let caps = c.body_lines().await;
    assert!(caps.contains(&"TOP".to_string()));
    assert!(caps.contains(&"RESP-CODES".to_string()));
    assert!(
        !caps.iter().any(|c| c == "USER" || c.starts_with("SASL")),
        "{caps:?}"
    );
    let refusal = "-ERR [AUTH] plaintext authentication is not allowed on this connection; use STLS or port 995";
    assert_eq!(c.cmd(&format!("USER {USER}")).await, refusal);
    assert_eq!(c.cmd("AUTH PLAIN").await, refusal);
    assert_eq!(
        c.cmd(&format!("PASS {PASSWORD}")).await,
        "-ERR send USER first"
    );
    c.disconnect().await;

    // From loopback the same server offers and accepts passwords.
    let mut c = h.connect().await;
    assert_eq!(c.cmd("CAPA").await, "+OK Capability list follows");
    let caps = c.body_lines().await;
    assert!(caps.contains(&"USER".to_string()));
    assert!(caps.contains(&"SASL PLAIN LOGIN".to_string()));
    assert!(caps.contains(&"IMPLEMENTATION yubin".to_string()));
    c.disconnect().await;
}

#[tokio::test]
async fn overlong_line_is_refused_and_session_goes_on() {
    let h = Harness::new().await;
    let mut c = h.connect().await;
    let long = format!("NOOP {}", "x".repeat(5000));
    assert_eq!(c.cmd(&long).await, "-ERR line too long");
    assert_eq!(c.cmd(&format!("USER {USER}")).await, "+OK send PASS");
    c.disconnect().await;
}

#[tokio::test]
async fn too_many_failed_logins_close() {
    let h = Harness::new().await;
    let mut c = h.connect().await;
    for _ in 0..2 {
        assert_eq!(c.cmd(&format!("USER {USER}")).await, "+OK send PASS");
        assert_eq!(
            c.cmd("PASS wrong").await,
            "-ERR [AUTH] invalid user name or password"
        );
    }
    assert_eq!(c.cmd("USER nobody@example.org").await, "+OK send PASS");
    assert_eq!(
        c.cmd("PASS wrong").await,
        "-ERR [AUTH] invalid user name or password; too many failures, closing"
    );
    c.expect_closed().await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let h = Harness::new().await;
    h.deliver(MSG1).await;
    let mut c = h.connect().await;
    c.send_raw(format!("USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nDELE 1\r\nQUIT\r\n").as_bytes())
        .await;
    assert_eq!(c.line().await, "+OK send PASS");
    assert!(c.line().await.starts_with("+OK maildrop has 1"));
    assert_eq!(c.line().await, format!("+OK 1 {}", MSG1.len()));
    assert_eq!(c.line().await, "+OK message 1 deleted");
    assert_eq!(
        c.line().await,
        "+OK yubin POP3 signing off (1 messages deleted)"
    );
    c.expect_closed().await;
}

#[tokio::test]
async fn shutdown_closes_without_update() {
    let h = Harness::new().await;
    h.deliver(MSG1).await;
    let shutdown = Shutdown::new();
    let mut c = h.connect_from("127.0.0.1:40001", shutdown.clone()).await;
    assert_eq!(c.cmd(&format!("USER {USER}")).await, "+OK send PASS");
    assert!(c.cmd(&format!("PASS {PASSWORD}")).await.starts_with("+OK"));
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    shutdown.cancel();
    assert_eq!(c.line().await, "-ERR [SYS/TEMP] server shutting down");
    c.expect_closed().await;
    let inbox = h
        .store
        .find_mailbox(h.account, "INBOX")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.store.list_messages(inbox.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn idle_timeout_autologout() {
    let h = Harness::with_config(|c| c.idle_timeout = Duration::from_millis(300)).await;
    h.deliver(MSG1).await;
    let mut c = h.login().await;
    assert_eq!(c.cmd("DELE 1").await, "+OK message 1 deleted");
    assert_eq!(c.line().await, "-ERR autologout: idle for too long");
    c.expect_closed().await;
    let inbox = h
        .store
        .find_mailbox(h.account, "INBOX")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(h.store.list_messages(inbox.id).await.unwrap().len(), 1);
}

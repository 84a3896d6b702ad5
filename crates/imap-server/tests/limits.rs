//! What a session does to stay cheap and reachable: the connection slot is given back at
//! LOGOUT before the last reply, literals before login are limited to what LOGIN needs, and
//! IDLE sends a keepalive while the autologout timer still bounds it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use server_kit::ConnSlot;
use tokio::io::AsyncReadExt;

use common::{connect_to, env};

/// Sets its flag when dropped: stands for the listener's connection-limit guard.
struct Guard(Arc<AtomicBool>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn logout_releases_the_slot_before_the_tagged_ok() {
    let env = env().await;
    let srv = env.server_with(|_| {});
    for login in [false, true] {
        let released = Arc::new(AtomicBool::new(false));
        let slot = ConnSlot::new(Guard(released.clone()));
        let mut c = connect_to(srv.clone(), slot.clone()).await;
        if login {
            let r = c.cmd("l1", "LOGIN alice@example.org secret").await;
            assert!(r[0].starts_with("l1 OK"), "{r:?}");
        }
        assert!(slot.is_held());
        c.send("z LOGOUT\r\n").await;
        assert_eq!(c.line().await, "* BYE yubin IMAP logging out");
        // The slot is free by the time the client can read the tagged OK.
        assert!(released.load(Ordering::SeqCst));
        assert_eq!(c.line().await, "z OK LOGOUT completed");
        let mut rest = Vec::new();
        c.r.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}

#[tokio::test]
async fn slot_stays_held_while_the_session_goes_on() {
    let env = env().await;
    let released = Arc::new(AtomicBool::new(false));
    let slot = ConnSlot::new(Guard(released.clone()));
    let mut c = connect_to(env.server_with(|_| {}), slot).await;
    let r = c.cmd("a", "LOGIN alice@example.org wrong").await;
    assert!(r[0].starts_with("a NO [AUTHENTICATIONFAILED]"), "{r:?}");
    assert_eq!(c.cmd("b", "NOOP").await, ["b OK NOOP completed"]);
    assert!(!released.load(Ordering::SeqCst));
}

#[tokio::test]
async fn large_synchronising_literal_before_login_is_refused_unread() {
    let env = env().await;
    let mut c = connect_to(env.server_with(|_| {}), ConnSlot::default()).await;
    // 30 MiB announced: refused at once, no continuation request, nothing read.
    c.send("a1 LOGIN {31457280}\r\n").await;
    assert_eq!(c.line().await, "a1 NO [TOOBIG] literal too large");
    // Just over the limit (8 KiB by default): refused too.
    c.send("a2 LOGIN {8193}\r\n").await;
    assert_eq!(c.line().await, "a2 NO [TOOBIG] literal too large");
    // The session goes on; a password in a literal at the limit is fine.
    c.send("a3 LOGIN alice@example.org {6}\r\n").await;
    assert_eq!(c.line().await, "+ Ready");
    c.send("secret\r\n").await;
    let r = c.until("a3").await;
    assert!(r[0].starts_with("a3 OK [CAPABILITY"), "{r:?}");
}

#[tokio::test]
async fn large_non_synchronising_literal_before_login_closes_the_connection() {
    let env = env().await;
    let mut c = connect_to(env.server_with(|_| {}), ConnSlot::default()).await;
    c.send("a1 LOGIN {31457280+}\r\n").await;
    c.send(&"x".repeat(4096)).await;
    assert_eq!(c.line().await, "a1 NO [TOOBIG] literal too large");
    assert_eq!(c.line().await, "* BYE literal too large before login");
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), c.r.read_to_end(&mut rest))
        .await
        .expect("closed at once")
        .unwrap();
    assert!(rest.is_empty());
    // A small one is fine (RFC 7888 LITERAL+).
    let mut c = connect_to(env.server_with(|_| {}), ConnSlot::default()).await;
    let r = c
        .cmd("a2", "LOGIN {17+}\r\nalice@example.org {6+}\r\nsecret")
        .await;
    assert!(r[0].starts_with("a2 OK [CAPABILITY"), "{r:?}");
}

#[tokio::test]
async fn full_limits_after_login() {
    let env = env().await;
    let srv = env.server_with(|c| c.max_preauth_literal = 1024);
    let mut c = connect_to(srv, ConnSlot::default()).await;
    c.send("a1 LOGIN alice@example.org {2000}\r\n").await;
    assert_eq!(c.line().await, "a1 NO [TOOBIG] literal too large");
    let r = c.cmd("a2", "LOGIN alice@example.org secret").await;
    assert!(r[0].starts_with("a2 OK"), "{r:?}");
    // After login an APPEND literal far over the pre-login limit is accepted.
    let body = format!("Subject: big\r\n\r\n{}\r\n", "y".repeat(20_000));
    c.send(&format!("a3 APPEND INBOX {{{}}}\r\n", body.len()))
        .await;
    assert_eq!(c.line().await, "+ Ready");
    c.send(&format!("{body}\r\n")).await;
    let r = c.until("a3").await;
    assert!(r.last().unwrap().starts_with("a3 OK [APPENDUID"), "{r:?}");
    // Also with LITERAL+ in the same write as the LOGIN (pipelined).
    let mut c = connect_to(
        env.server_with(|c| c.max_preauth_literal = 1024),
        ConnSlot::default(),
    )
    .await;
    c.send(&format!(
        "b1 LOGIN alice@example.org secret\r\nb2 APPEND INBOX {{{}+}}\r\n{}\r\n",
        body.len(),
        body
    ))
    .await;
    let r = c.until("b2").await;
    assert!(r[0].starts_with("b1 OK"), "{r:?}");
    assert!(r.last().unwrap().starts_with("b2 OK [APPENDUID"), "{r:?}");
}

#[tokio::test]
async fn idle_keepalive_and_autologout() {
    let env = env().await;
    let srv = env.server_with(|c| {
        c.idle_keepalive = Duration::from_millis(300);
        c.idle_timeout = Duration::from_millis(1500);
    });
    let mut c = connect_to(srv.clone(), ConnSlot::default()).await;
    c.cmd("l", "LOGIN alice@example.org secret").await;
    c.cmd("s", "SELECT INBOX").await;
    c.send("i IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling");
    let start = Instant::now();
    assert_eq!(c.line().await, "* OK Still here");
    let first = start.elapsed();
    assert!(first >= Duration::from_millis(250), "{first:?}");
    assert_eq!(c.line().await, "* OK Still here");
    // A change during IDLE arrives between keepalives.
    env.deliver("Subject: x\r\n\r\nbody\r\n").await;
    let mut lines = Vec::new();
    while lines
        .last()
        .is_none_or(|l: &String| l.starts_with("* OK Still here"))
    {
        lines.push(c.line().await);
    }
    assert_eq!(lines.last().unwrap(), "* 1 EXISTS");
    // Keepalives do not extend the session: autologout ends the IDLE after idle_timeout.
    let bye = loop {
        let l = c.line().await;
        if l.starts_with("* BYE") {
            break l;
        }
        assert!(
            ["* OK Still here", "* 1 RECENT"].contains(&l.as_str()),
            "{l}"
        );
    };
    assert_eq!(bye, "* BYE autologout; idle for too long");
    let total = start.elapsed();
    assert!(
        total >= Duration::from_millis(1400) && total < Duration::from_secs(5),
        "{total:?}"
    );

    // DONE after a keepalive ends IDLE normally.
    let mut c = connect_to(srv, ConnSlot::default()).await;
    c.cmd("l", "LOGIN alice@example.org secret").await;
    c.send("i IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling");
    assert_eq!(c.line().await, "* OK Still here");
    c.send("DONE\r\n").await;
    assert_eq!(c.until("i").await, ["i OK IDLE terminated"]);
}

#[tokio::test]
async fn no_keepalive_when_turned_off() {
    let env = env().await;
    let srv = env.server_with(|c| {
        c.idle_keepalive = Duration::ZERO;
        c.idle_timeout = Duration::from_millis(600);
    });
    let mut c = connect_to(srv, ConnSlot::default()).await;
    c.cmd("l", "LOGIN alice@example.org secret").await;
    c.send("i IDLE\r\n").await;
    assert_eq!(c.line().await, "+ idling");
    assert_eq!(c.line().await, "* BYE autologout; idle for too long");
}

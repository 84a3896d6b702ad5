//! RFC 2449 §5 and §6.7: CAPA after login keeps the AUTHORIZATION-state capabilities, EXPIRE
//! follows the server's policy (per user after login), and RETR records the first retrieval.

mod common;

use std::sync::Arc;

use common::{Harness, USER};
use pop3_server::{Expire, ExpirePolicy};
use store::{INBOX, MailStore, MessageDates};

/// Seven days for alice, fourteen for everyone else.
#[derive(Debug)]
struct PerUser;

impl ExpirePolicy for PerUser {
    fn before_login(&self) -> (Expire, bool) {
        (Expire::Days(7), true)
    }
    fn for_user(&self, address: &str) -> Expire {
        if address == USER {
            Expire::Days(7)
        } else {
            Expire::Days(14)
        }
    }
}

#[tokio::test]
async fn capa_in_both_states_and_expire() {
    let h = Harness::new().await;
    let mut c = h.connect().await;
    assert_eq!(c.cmd("CAPA").await, "+OK Capability list follows");
    let before = c.body_lines().await;
    assert!(before.contains(&"EXPIRE NEVER".to_string()), "{before:?}");
    c.disconnect().await;

    let mut c = h.login().await;
    assert_eq!(c.cmd("CAPA").await, "+OK Capability list follows");
    let after = c.body_lines().await;
    // RFC 2449 §5: "Capabilities available in the AUTHORIZATION state MUST be announced in
    // both states."
    assert!(after.contains(&"USER".to_string()), "{after:?}");
    assert!(after.contains(&"SASL PLAIN LOGIN".to_string()), "{after:?}");
    assert!(after.contains(&"EXPIRE NEVER".to_string()), "{after:?}");
    assert!(!after.iter().any(|c| c == "STLS"));
    c.disconnect().await;

    let h = Harness::with_config(|c| c.expire = Arc::new(PerUser)).await;
    let mut c = h.connect().await;
    c.cmd("CAPA").await;
    assert!(c.body_lines().await.contains(&"EXPIRE 7 USER".to_string()));
    c.disconnect().await;
    let mut c = h.login().await;
    c.cmd("CAPA").await;
    let after = c.body_lines().await;
    assert!(after.contains(&"EXPIRE 7".to_string()), "{after:?}");
    assert!(
        !after
            .iter()
            .any(|c| c.ends_with("USER") && c.starts_with("EXPIRE"))
    );
    c.disconnect().await;
}

#[tokio::test]
async fn retr_records_the_first_retrieval_only() {
    let h = Harness::new().await;
    h.deliver(b"Subject: a\r\n\r\none\r\n").await;
    h.deliver(b"Subject: b\r\n\r\ntwo\r\n").await;
    let inbox = h
        .store
        .find_mailbox(h.account, INBOX)
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut c = h.login().await;
    assert!(c.cmd("TOP 2 0").await.starts_with("+OK"));
    c.body().await;
    assert!(c.cmd("RETR 1").await.starts_with("+OK"));
    c.body().await;
    let dates = h.store.retrieved_dates(inbox, &[1, 2]).await.unwrap();
    assert_eq!(dates[1], (2, None), "TOP is not a retrieval");
    let first = dates[0].1.expect("RETR recorded");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(c.cmd("RETR 1").await.starts_with("+OK"));
    c.body().await;
    assert!(c.cmd("QUIT").await.starts_with("+OK"));
    let dates = h.store.retrieved_dates(inbox, &[1]).await.unwrap();
    assert_eq!(dates[0].1, Some(first), "the first RETR counts");
}

//! RFC 9208 QUOTA in a session: GETQUOTA/GETQUOTAROOT from the store's counters, SETQUOTA
//! for quota administrators only, the per-state capabilities, and `NO [OVERQUOTA]` on APPEND
//! and COPY while MOVE within the account works (exact responses).

mod common;

use common::env;
use store::{Directory, MailStore, QuotaLimits, QuotaStore};

fn addr(s: &str) -> mail_types::Address {
    mail_types::Address::parse(s).unwrap()
}

#[tokio::test]
async fn getquota_getquotaroot_and_the_paths_that_refuse() {
    let env = env().await;
    let limits = QuotaLimits {
        storage: Some(4096),
        messages: Some(2),
    };
    env.store
        .set_quota_limits(&addr("alice@example.org"), limits)
        .await
        .unwrap();
    let mut c = env.login().await;
    let caps = c.one("c", "CAPABILITY", "* CAPABILITY").await;
    assert!(caps.contains(" QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE"));
    assert!(!caps.contains("QUOTASET"), "{caps}");
    let uv = uid_validity(&env).await;
    assert_eq!(
        c.cmd("a", "APPEND INBOX {3+}\r\nx\r\n").await,
        [format!("a OK [APPENDUID {uv} 1] APPEND completed")]
    );
    assert_eq!(
        c.cmd("g", "GETQUOTAROOT INBOX").await,
        [
            "* QUOTAROOT \"INBOX\" \"\"",
            "* QUOTA \"\" (STORAGE 1 4 MESSAGE 1 2)",
            "g OK GETQUOTAROOT completed"
        ]
    );
    c.cmd("a", "APPEND INBOX {3+}\r\ny\r\n").await;
    assert_eq!(
        c.cmd("a", "APPEND INBOX {3+}\r\nz\r\n").await,
        ["a NO [OVERQUOTA] over quota"]
    );
    assert_eq!(
        c.cmd("q", "GETQUOTA \"\"").await,
        [
            "* QUOTA \"\" (STORAGE 1 4 MESSAGE 2 2)",
            "q OK GETQUOTA completed"
        ]
    );
    c.cmd("s", "SELECT INBOX").await;
    assert_eq!(
        c.cmd("k", "COPY 1 Trash").await,
        ["k NO [OVERQUOTA] over quota"]
    );
    let moved = c.cmd("m", "MOVE 1 Trash").await;
    assert!(moved.last().unwrap().starts_with("m OK"), "{moved:?}");
    assert_eq!(
        c.cmd("t", "SETQUOTA \"\" (STORAGE 10)").await,
        ["t NO [NOPERM] permission denied"]
    );
    assert_eq!(
        c.cmd("o", "GETQUOTA \"bob@example.org\"").await,
        ["o NO [NONEXISTENT] no such quota root"]
    );
}

#[tokio::test]
async fn setquota_for_administrators() {
    let mut env = env().await;
    env.add_user("bob@example.org", "pw", None).await;
    env.reconfigure(|c| c.quota_admins = vec!["ALICE@example.org".into()]);
    let mut c = env.login().await;
    let caps = c.one("c", "CAPABILITY", "* CAPABILITY").await;
    assert!(caps.contains(" QUOTASET"), "{caps}");
    assert_eq!(
        c.cmd("g", "GETQUOTA bob@example.org").await,
        ["g NO [NONEXISTENT] no such quota root (no limit)"]
    );
    assert_eq!(
        c.cmd("s", "SETQUOTA bob@example.org (STORAGE 100 MESSAGE 7)")
            .await,
        [
            "* QUOTA bob@example.org (STORAGE 0 100 MESSAGE 0 7)",
            "s OK SETQUOTA completed"
        ]
    );
    let bob = env
        .store
        .find_user(&addr("bob@example.org"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (bob.quota_limit, bob.message_limit),
        (Some(100 * 1024), Some(7))
    );
    assert_eq!(
        c.cmd("e", "SETQUOTA \"\" ()").await,
        ["e OK SETQUOTA completed"]
    );
    assert_eq!(
        c.cmd("b", "SETQUOTA \"\" (STORAGE x)").await[0]
            .split(' ')
            .nth(1),
        Some("BAD")
    );
}

async fn uid_validity(env: &common::Env) -> u32 {
    env.store
        .find_mailbox(env.account, "INBOX")
        .await
        .unwrap()
        .unwrap()
        .uid_validity
}

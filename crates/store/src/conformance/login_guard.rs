//! `LoginGuardStore`: failure counters in two windows, counted across handles without losing a
//! count, cleared by subject; bans replaced, listed while in force, lifted, purged.

use crate::{Ban, FailureCount, FailureWindows, GuardScope, LoginGuardStore};

const WINDOWS: FailureWindows = FailureWindows {
    long_secs: 86_400,
    short_secs: 300,
};

/// Counters and bans through two handles (two processes or nodes on one store).
pub async fn login_guard_counters_and_bans(a: &dyn LoginGuardStore, b: &dyn LoginGuardStore) {
    let t = 1_700_000_000;
    let ip = GuardScope::Ip;
    // Parallel failures from both handles: every one is counted.
    let (ra, rb) = tokio::join!(
        async {
            let mut last = FailureCount::default();
            for _ in 0..10 {
                last = a
                    .record_login_failure(ip, "192.0.2.1", t, WINDOWS)
                    .await
                    .expect("count");
            }
            last
        },
        async {
            let mut last = FailureCount::default();
            for _ in 0..10 {
                last = b
                    .record_login_failure(ip, "192.0.2.1", t, WINDOWS)
                    .await
                    .expect("count");
            }
            last
        }
    );
    assert_eq!(ra.long.max(rb.long), 20, "{ra:?} {rb:?}");
    let c = a
        .record_login_failure(ip, "192.0.2.1", t + 10, WINDOWS)
        .await
        .expect("count");
    assert_eq!(
        c,
        FailureCount {
            long: 21,
            short: 21
        }
    );
    // The short window ends: it restarts with this failure; the long one goes on.
    let c = b
        .record_login_failure(ip, "192.0.2.1", t + 300, WINDOWS)
        .await
        .expect("count");
    assert_eq!(c, FailureCount { long: 22, short: 1 });
    // The long window ends too.
    let c = a
        .record_login_failure(ip, "192.0.2.1", t + 86_400, WINDOWS)
        .await
        .expect("count");
    assert_eq!(c, FailureCount { long: 1, short: 1 });
    // Scopes and subjects are counted apart.
    let c = a
        .record_login_failure(GuardScope::Account, "192.0.2.1", t, WINDOWS)
        .await
        .expect("count");
    assert_eq!(c, FailureCount { long: 1, short: 1 });
    let c = a
        .record_login_failure(ip, "2001:db8:1:2::", t + 86_400, WINDOWS)
        .await
        .expect("count");
    assert_eq!(c.long, 1);
    // Which addresses failed lately.
    assert_eq!(
        b.login_failures_since(ip, t + 86_400).await.expect("since"),
        vec!["192.0.2.1".to_string(), "2001:db8:1:2::".to_string()]
    );
    assert_eq!(
        b.login_failures_since(ip, t + 86_401).await.expect("since"),
        Vec::<String>::new()
    );
    // Clearing one subject leaves the others.
    b.clear_login_failures(ip, "192.0.2.1")
        .await
        .expect("clear");
    let c = a
        .record_login_failure(ip, "192.0.2.1", t + 86_401, WINDOWS)
        .await
        .expect("count");
    assert_eq!(c, FailureCount { long: 1, short: 1 });
    let c = a
        .record_login_failure(GuardScope::Account, "192.0.2.1", t + 1, WINDOWS)
        .await
        .expect("count");
    assert_eq!(c.long, 2, "the account counter was not cleared");

    // Bans: one per address, replaced by a newer one, seen by the other handle.
    let ban = |ip: &str, until: i64, reason: &str| Ban {
        ip: ip.to_string(),
        until,
        created: t,
        reason: reason.to_string(),
    };
    a.add_ban(&ban("192.0.2.1", t + 60, "burst"))
        .await
        .expect("ban");
    a.add_ban(&ban("198.51.100.7", t + 3600, "failures"))
        .await
        .expect("ban");
    b.add_ban(&ban("192.0.2.1", t + 120, "manual"))
        .await
        .expect("ban");
    assert_eq!(
        a.active_bans(t).await.expect("bans"),
        vec![
            ban("192.0.2.1", t + 120, "manual"),
            ban("198.51.100.7", t + 3600, "failures")
        ]
    );
    // A ban ends at `until`.
    assert_eq!(
        b.active_bans(t + 120).await.expect("bans"),
        vec![ban("198.51.100.7", t + 3600, "failures")]
    );
    assert!(b.remove_ban("198.51.100.7").await.expect("unban"));
    assert!(!b.remove_ban("198.51.100.7").await.expect("unban again"));
    assert_eq!(
        a.active_bans(t).await.expect("bans"),
        vec![ban("192.0.2.1", t + 120, "manual")]
    );
    // Purge: ended bans and stale counters go, the rest stays.
    let gone = a
        .purge_login_guard(t + 120, t + 86_401)
        .await
        .expect("purge");
    // The ban, the account counter (last failure t + 1) and the IPv6 counter (t + 86_400).
    assert_eq!(gone, 3);
    assert_eq!(a.active_bans(0).await.expect("bans"), Vec::<Ban>::new());
    assert_eq!(
        a.login_failures_since(ip, 0).await.expect("since"),
        vec!["192.0.2.1".to_string()]
    );
}

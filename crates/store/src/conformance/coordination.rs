//! Conformance checks for what processes sharing a store agree on: leases (RFC 1939 §8
//! maildrop locks), shared secrets and `\Recent` claims (RFC 3501 §2.3.2). The `_across`
//! checks take two handles on the same store (two processes' worth of state).

use std::sync::Arc;
use std::time::Duration;

use super::{inbox, msg, setup};
use crate::{Coordination, Flags, LeaseGuard, MailboxId, Store, StoreError, SystemFlags};

const LONG: Duration = Duration::from_secs(60);

/// Acquire, refuse while held (even to the same holder), renew, release, and expiry.
pub async fn leases(s: &dyn Store) {
    let name = "conformance/lease-a";
    s.acquire_lease(name, "n1#1", LONG).await.unwrap();
    assert_eq!(
        s.acquire_lease(name, "n2#1", LONG).await,
        Err(StoreError::InUse)
    );
    assert_eq!(
        s.acquire_lease(name, "n1#1", LONG).await,
        Err(StoreError::InUse),
        "not re-entrant"
    );
    // Other names are independent.
    s.acquire_lease("conformance/lease-b", "n2#1", LONG)
        .await
        .unwrap();
    assert!(s.renew_lease(name, "n1#1", LONG).await.unwrap());
    assert!(!s.renew_lease(name, "n2#1", LONG).await.unwrap());
    // Releasing someone else's lease does nothing.
    s.release_lease(name, "n2#1").await.unwrap();
    assert_eq!(
        s.acquire_lease(name, "n3#1", LONG).await,
        Err(StoreError::InUse)
    );
    s.release_lease(name, "n1#1").await.unwrap();
    assert!(!s.renew_lease(name, "n1#1", LONG).await.unwrap(), "gone");
    s.acquire_lease(name, "n3#1", LONG).await.unwrap();

    // Expiry: a holder that stops renewing loses the lease to the next one.
    let short = "conformance/lease-short";
    s.acquire_lease(short, "dead#1", Duration::from_millis(150))
        .await
        .unwrap();
    assert_eq!(
        s.acquire_lease(short, "live#1", LONG).await,
        Err(StoreError::InUse)
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Expired but not taken: still the holder's to renew.
    assert!(
        s.renew_lease(short, "dead#1", Duration::from_millis(150))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.acquire_lease(short, "live#1", LONG).await.unwrap();
    assert!(
        !s.renew_lease(short, "dead#1", LONG).await.unwrap(),
        "taken by another holder: lost"
    );
}

/// [`LeaseGuard`]: held while it lives, renewed past its time to live, free after release
/// and after drop.
pub async fn lease_guard(store: Arc<dyn Store>) {
    let c: Arc<dyn Coordination> = store.clone();
    let ttl = Duration::from_millis(300);
    let g = LeaseGuard::acquire(c.clone(), "conformance/guard", ttl)
        .await
        .unwrap();
    assert!(g.holder().starts_with(crate::node_id()));
    assert!(matches!(
        LeaseGuard::acquire(c.clone(), "conformance/guard", ttl).await,
        Err(StoreError::InUse)
    ));
    // Three times the time to live: only the renewals keep it.
    tokio::time::sleep(ttl * 3).await;
    assert!(g.is_held());
    assert!(g.confirm().await.unwrap());
    assert_eq!(
        store
            .acquire_lease("conformance/guard", "thief#1", ttl)
            .await,
        Err(StoreError::InUse)
    );
    g.release().await;
    let g2 = LeaseGuard::acquire(c.clone(), "conformance/guard", ttl)
        .await
        .unwrap();
    drop(g2);
    // Dropped: released in the background.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match store
            .acquire_lease("conformance/guard", "next#1", LONG)
            .await
        {
            Ok(()) => break,
            Err(StoreError::InUse) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("dropped guard's lease never freed: {e:?}"),
        }
    }
    // A guard whose lease another holder took after it expired learns so at `confirm`.
    store
        .acquire_lease("conformance/guard-lost", "old#1", Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let g3 = LeaseGuard::acquire(c, "conformance/guard-lost", LONG)
        .await
        .expect("expired lease can be taken");
    assert!(g3.confirm().await.unwrap());
    store
        .release_lease("conformance/guard-lost", g3.holder())
        .await
        .unwrap();
    assert!(!g3.confirm().await.unwrap());
    assert!(!g3.is_held());
}

/// Two handles on one store see each other's leases.
pub async fn leases_across(a: &dyn Store, b: &dyn Store) {
    let name = "conformance/across";
    a.acquire_lease(name, "a#1", LONG).await.unwrap();
    assert_eq!(
        b.acquire_lease(name, "b#1", LONG).await,
        Err(StoreError::InUse)
    );
    a.release_lease(name, "a#1").await.unwrap();
    b.acquire_lease(name, "b#1", LONG).await.unwrap();
    assert_eq!(
        a.acquire_lease(name, "a#2", LONG).await,
        Err(StoreError::InUse)
    );
}

/// A secret is created once; later callers (and other handles) get the first one.
pub async fn shared_secrets(a: &dyn Store, b: &dyn Store) {
    let first = a.shared_secret("conformance/s", b"first").await.unwrap();
    assert_eq!(first, b"first");
    assert_eq!(
        b.shared_secret("conformance/s", b"second").await.unwrap(),
        b"first"
    );
    assert_eq!(
        a.shared_secret("conformance/s", b"third").await.unwrap(),
        b"first"
    );
    assert_eq!(
        b.shared_secret("conformance/t", b"other").await.unwrap(),
        b"other"
    );
}

/// RFC 3501 §2.3.2: each UID is claimed as recent once, by the first claimer, on any handle;
/// peeking claims nothing; the mark only grows.
pub async fn recent_claims(a: &dyn Store, b: &dyn Store) {
    let ids = setup(a, "recent.conformance.test", &["r"]).await;
    let ib = inbox(a, ids[0]).await;
    for i in 0..3 {
        a.deliver(msg(&format!("r{i}")), 1, &ids).await.unwrap();
    }
    assert_eq!(a.recent_mark(ib).await.unwrap(), 0);
    assert_eq!(
        b.recent_mark(ib).await.unwrap(),
        0,
        "peeking claims nothing"
    );
    assert_eq!(a.claim_recent(ib, 3).await.unwrap(), 0, "1..=3 are a's");
    assert_eq!(b.claim_recent(ib, 3).await.unwrap(), 3, "none left for b");
    assert_eq!(b.recent_mark(ib).await.unwrap(), 3);
    a.deliver(msg("r3"), 1, &ids).await.unwrap();
    assert_eq!(b.claim_recent(ib, 4).await.unwrap(), 3, "4 is b's");
    assert_eq!(a.claim_recent(ib, 2).await.unwrap(), 4, "a lower claim");
    assert_eq!(a.recent_mark(ib).await.unwrap(), 4, "marks never go down");
    // Concurrent claims of the same UIDs: exactly one gets them.
    a.deliver(msg("r4"), 1, &ids).await.unwrap();
    let (x, y) = tokio::join!(a.claim_recent(ib, 5), b.claim_recent(ib, 5));
    let mut got = [x.unwrap(), y.unwrap()];
    got.sort_unstable();
    assert_eq!(got, [4, 5]);
    assert!(matches!(
        a.claim_recent(MailboxId::new(ib.account, i64::MAX - 1), 1)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        a.recent_mark(MailboxId::new(ib.account, i64::MAX - 1))
            .await,
        Err(StoreError::NotFound(_))
    ));

    // APPEND by a session that has the mailbox selected claims in the same step: the new
    // message and those nobody claimed before it are the appender's, on every handle.
    a.deliver(msg("r5"), 1, &ids).await.unwrap();
    let seen = Flags {
        system: SystemFlags::SEEN,
        keywords: vec!["$Junk".into()],
    };
    let (stored, before) = b
        .append_claiming_recent(ib, msg("r6"), &seen, 7)
        .await
        .unwrap();
    assert_eq!(
        (stored.mailbox, stored.uid, before),
        (ib, 7, 5),
        "6..=7 are b's"
    );
    assert_eq!(a.recent_mark(ib).await.unwrap(), 7);
    assert_eq!(a.claim_recent(ib, 7).await.unwrap(), 7, "none left for a");
    let m = a.get_messages(ib, &[7]).await.unwrap();
    assert_eq!(
        (m.len(), &m[0].flags, m[0].internal_date),
        (1, &seen, 7),
        "stored as APPEND stores it"
    );
    // An unknown mailbox: NotFound.
    assert!(matches!(
        a.append_claiming_recent(MailboxId::new(ib.account, i64::MAX - 1), msg("x"), &seen, 1)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

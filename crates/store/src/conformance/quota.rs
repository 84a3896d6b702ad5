//! Conformance checks for quotas (RFC 9208): limits resolved from overrides and defaults,
//! counters equal to the real sums after every kind of change, refusals that leave nothing,
//! MOVE at the limit, the race for the last bytes, and warnings once per crossing.

use std::sync::Arc;

use super::{addr, inbox, msg, setup};
use crate::{
    AccountId, AppendMessage, Flags, QuotaDefaults, QuotaLimits, QuotaResource, Store, StoreError,
};

/// The real sums over the account's mailboxes: (bytes, messages).
async fn real_sums(s: &dyn Store, acc: AccountId) -> (u64, u64) {
    let mut bytes = 0;
    let mut count = 0;
    for mb in s.list_mailboxes(acc).await.unwrap() {
        for m in s.list_messages(mb.id).await.unwrap() {
            bytes += m.size;
            count += 1;
        }
    }
    (bytes, count)
}

async fn assert_counters(s: &dyn Store, acc: AccountId, what: &str) {
    let q = s.quota(acc).await.unwrap();
    assert_eq!(
        (q.used, q.messages),
        real_sums(s, acc).await,
        "after {what}"
    );
}

fn limits(storage: Option<u64>, messages: Option<u64>) -> QuotaLimits {
    QuotaLimits { storage, messages }
}

/// Defaults per domain and globally, account overrides, and the counters after delivery,
/// APPEND, MULTIAPPEND, COPY, MOVE, expunge, RENAME of INBOX and DELETE of a mailbox.
pub async fn quota_limits_and_counters(s: &dyn Store) {
    let domain = "quota.conformance.test";
    let ids = setup(s, domain, &["q1", "q2"]).await;
    let (a, b) = (ids[0], ids[1]);
    let mut defaults = QuotaDefaults {
        global: limits(Some(1 << 30), Some(1000)),
        ..Default::default()
    };
    defaults
        .domains
        .insert(domain.into(), limits(Some(10_000), None));
    s.set_quota_defaults(defaults.clone());
    let q = s.quota(a).await.unwrap();
    assert_eq!((q.limit, q.message_limit), (Some(10_000), Some(1000)));
    s.set_quota_limits(&addr(&format!("q2@{domain}")), limits(None, Some(3)))
        .await
        .unwrap();
    let q = s.quota(b).await.unwrap();
    assert_eq!((q.limit, q.message_limit), (Some(10_000), Some(3)));
    let user = s
        .find_user(&addr(&format!("q2@{domain}")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((user.quota_limit, user.message_limit), (None, Some(3)));
    assert!(matches!(
        s.set_quota_limits(&addr(&format!("nobody@{domain}")), limits(Some(1), None))
            .await,
        Err(StoreError::NotFound(_))
    ));

    // Every kind of change keeps both counters equal to the real sums.
    let ib = inbox(s, a).await;
    s.deliver(msg("one"), 1, &[a, b]).await.unwrap();
    assert_counters(s, a, "delivery").await;
    assert_counters(s, b, "delivery").await;
    s.append(ib, msg("two"), &Flags::default(), 2)
        .await
        .unwrap();
    assert_counters(s, a, "append").await;
    let batch = (0..3)
        .map(|i| AppendMessage {
            bytes: msg(&format!("batch {i}")),
            flags: Flags::default(),
            internal_date: 3,
        })
        .collect();
    s.append_many(ib, batch).await.unwrap();
    assert_counters(s, a, "append_many").await;
    let trash = s.find_mailbox(a, "Trash").await.unwrap().unwrap().id;
    s.copy_messages(ib, &[1, 2], trash).await.unwrap();
    assert_counters(s, a, "copy").await;
    let before = s.quota(a).await.unwrap();
    s.move_messages(ib, &[3], trash).await.unwrap();
    assert_eq!(s.quota(a).await.unwrap(), before, "MOVE changes no usage");
    assert_counters(s, a, "move").await;
    s.expunge(ib, &[1]).await.unwrap();
    assert_counters(s, a, "expunge").await;
    s.rename_mailbox(ib, "Old").await.unwrap();
    assert_counters(s, a, "rename of INBOX").await;
    let old = s.find_mailbox(a, "Old").await.unwrap().unwrap().id;
    s.delete_mailbox(old).await.unwrap();
    assert_counters(s, a, "delete of a mailbox").await;
    assert!(
        s.quota(a).await.unwrap().messages > 0,
        "Trash still holds some"
    );

    // MESSAGE: q2 may hold 3; a refused delivery, APPEND or COPY stores nothing.
    let ib_b = inbox(s, b).await;
    s.deliver(msg("b2"), 1, &[b]).await.unwrap();
    s.append(ib_b, msg("b3"), &Flags::default(), 1)
        .await
        .unwrap();
    let full = s.quota(b).await.unwrap();
    assert_eq!(full.messages, 3);
    assert!(full.would_exceed(1));
    assert_eq!(
        s.deliver(msg("b4"), 1, &[b]).await,
        Err(StoreError::OverQuota)
    );
    assert_eq!(
        s.append(ib_b, msg("b4"), &Flags::default(), 1).await,
        Err(StoreError::OverQuota)
    );
    let trash_b = s.find_mailbox(b, "Trash").await.unwrap().unwrap().id;
    assert_eq!(
        s.copy_messages(ib_b, &[1], trash_b).await,
        Err(StoreError::OverQuota)
    );
    assert_eq!(s.quota(b).await.unwrap(), full, "refusals change nothing");
    assert_eq!(s.mailbox(ib_b).await.unwrap().uid_next, 4, "no UID used");
    // RFC 9208 §4: a MOVE within the account is never refused for quota.
    s.move_messages(ib_b, &[1, 2], trash_b).await.unwrap();
    assert_eq!(s.quota(b).await.unwrap(), full);
    assert_counters(s, b, "move at the limit").await;

    // STORAGE: a lowered limit refuses what no longer fits; removing the override restores
    // the domain's default.
    let used = s.quota(a).await.unwrap().used;
    s.set_quota_limits(
        &addr(&format!("q1@{domain}")),
        limits(Some(used + 10), None),
    )
    .await
    .unwrap();
    let big = Arc::new(vec![b'x'; 11]);
    assert_eq!(
        s.deliver(big.clone(), 1, &[a]).await,
        Err(StoreError::OverQuota)
    );
    let fits = Arc::new(vec![b'y'; 10]);
    s.deliver(fits, 1, &[a]).await.unwrap();
    assert_eq!(
        s.quota(a).await.unwrap().used,
        used + 10,
        "exactly at the limit"
    );
    s.set_quota_limits(&addr(&format!("q1@{domain}")), QuotaLimits::default())
        .await
        .unwrap();
    assert_eq!(s.quota(a).await.unwrap().limit, Some(10_000));
    s.deliver(big, 1, &[a]).await.unwrap();
    assert_counters(s, a, "the last delivery").await;

    let report = s.quota_report().await.unwrap();
    let row = report.iter().find(|r| r.account == b).expect("q2 listed");
    assert_eq!(row.quota, s.quota(b).await.unwrap());
    assert_eq!(row.overrides, limits(None, Some(3)));
    s.set_quota_defaults(QuotaDefaults::default());
    assert_eq!(s.quota(a).await.unwrap().limit, None);
    while !s.take_quota_warnings(100).await.unwrap().is_empty() {}
}

/// Many concurrent deliveries, half through each handle (`a` and `b` may be two processes
/// or nodes on one database, or the same store), race for the last bytes: exactly as many as
/// fit are stored, the others are refused with `OverQuota`, usage never passes the limit, and
/// the counters equal the real sums afterwards.
pub async fn quota_race(store: Arc<dyn Store>, other: Arc<dyn Store>) {
    let domain = "race.quota.conformance.test";
    let ids = setup(store.as_ref(), domain, &["r"]).await;
    let acc = ids[0];
    let size = 100u64;
    // Room for exactly 7 messages of `size` bytes.
    store
        .set_quota_limits(
            &addr(&format!("r@{domain}")),
            limits(Some(7 * size + size / 2), None),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let s = Arc::clone(if i % 2 == 0 { &store } else { &other });
        tasks.push(tokio::spawn(async move {
            let body = Arc::new(vec![b'a' + i; size as usize]);
            s.deliver(body, 1, &[acc]).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::OverQuota) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 7, "exactly what fits");
    let q = store.quota(acc).await.unwrap();
    assert_eq!((q.used, q.messages), (7 * size, 7));
    assert_counters(store.as_ref(), acc, "the race").await;
    while !store.take_quota_warnings(100).await.unwrap().is_empty() {}
}

/// A warning is queued once per upward crossing of each threshold, per resource; falling
/// below re-arms it; each queued warning is handed out once.
pub async fn quota_warnings(s: &dyn Store) {
    let domain = "warn.quota.conformance.test";
    let ids = setup(s, domain, &["w"]).await;
    let acc = ids[0];
    while !s.take_quota_warnings(1000).await.unwrap().is_empty() {}
    s.set_quota_limits(&addr(&format!("w@{domain}")), limits(Some(1000), Some(10)))
        .await
        .unwrap();
    let ib = inbox(s, acc).await;
    let body = |n: usize| Arc::new(vec![b'z'; n]);
    s.deliver(body(790), 1, &[acc]).await.unwrap();
    assert!(s.take_quota_warnings(10).await.unwrap().is_empty(), "79%");
    s.deliver(body(20), 1, &[acc]).await.unwrap(); // 81%
    let w = s.take_quota_warnings(10).await.unwrap();
    assert_eq!(w.len(), 1);
    assert_eq!(
        (
            w[0].account,
            w[0].resource,
            w[0].percent,
            w[0].used,
            w[0].limit
        ),
        (acc, QuotaResource::Storage, 80, 810, 1000)
    );
    assert_eq!(w[0].address, addr(&format!("w@{domain}")));
    assert!(
        s.take_quota_warnings(10).await.unwrap().is_empty(),
        "taken once"
    );
    s.deliver(body(10), 1, &[acc]).await.unwrap(); // 82%: no new crossing
    assert!(s.take_quota_warnings(10).await.unwrap().is_empty());
    s.deliver(body(130), 1, &[acc]).await.unwrap(); // 95%
    let w = s.take_quota_warnings(10).await.unwrap();
    assert_eq!(
        w.iter()
            .map(|w| (w.resource, w.percent))
            .collect::<Vec<_>>(),
        vec![(QuotaResource::Storage, 95)]
    );
    // Falling below 80% re-arms both thresholds; crossing 80% again warns again.
    s.expunge(ib, &[1]).await.unwrap(); // 160 bytes
    s.deliver(body(700), 1, &[acc]).await.unwrap(); // 860
    let w = s.take_quota_warnings(10).await.unwrap();
    assert_eq!(
        w.iter()
            .map(|w| (w.resource, w.percent))
            .collect::<Vec<_>>(),
        vec![(QuotaResource::Storage, 80)]
    );
    // MESSAGE: 4 messages now; the 8th crosses 80%.
    assert_eq!(s.quota(acc).await.unwrap().messages, 4);
    s.set_quota_limits(&addr(&format!("w@{domain}")), limits(None, Some(10)))
        .await
        .unwrap();
    for _ in 0..4 {
        s.append(ib, body(1), &Flags::default(), 1).await.unwrap();
    }
    let w = s.take_quota_warnings(10).await.unwrap();
    assert_eq!(
        w.iter()
            .map(|w| (w.resource, w.percent, w.used))
            .collect::<Vec<_>>(),
        vec![(QuotaResource::Messages, 80, 8)]
    );
}

//! The expunge log's pruning (`ExpungeLogLimits`) and what `vanished_since` says afterwards.

use super::{inbox, msg, setup};
use crate::{ExpungeLogLimits, Store};

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// RFC 7162 §3.2.5.2: once rows are pruned, a MODSEQ at or below the pruned ones is no longer
/// covered (`None`: the client needs a full resync); above them the log stays exact.
pub async fn expunge_log_pruning(s: &dyn Store) {
    let ids = setup(s, "prune.conformance.test", &["p"]).await;
    let ib = inbox(s, ids[0]).await;
    for i in 0..6 {
        s.deliver(msg(&format!("p{i}")), 1, &ids).await.unwrap();
    }
    let m0 = s.mailbox(ib).await.unwrap().highest_modseq;
    assert_eq!(s.vanished_since(ib, m0).await.unwrap(), Some(vec![]));
    s.expunge(ib, &[1]).await.unwrap();
    let e1 = s.mailbox(ib).await.unwrap().highest_modseq;
    s.expunge(ib, &[2]).await.unwrap();
    let e2 = s.mailbox(ib).await.unwrap().highest_modseq;
    s.expunge(ib, &[3, 4]).await.unwrap();
    let e3 = s.mailbox(ib).await.unwrap().highest_modseq;
    assert!(m0 < e1 && e1 < e2 && e2 < e3);
    assert_eq!(
        s.vanished_since(ib, m0).await.unwrap(),
        Some(vec![1, 2, 3, 4])
    );

    // Nothing to prune within the limits.
    let roomy = ExpungeLogLimits {
        max_per_mailbox: 4,
        max_age_secs: 3600,
    };
    s.prune_expunge_log(roomy, unix_now()).await.unwrap();
    assert_eq!(
        s.vanished_since(ib, m0).await.unwrap(),
        Some(vec![1, 2, 3, 4])
    );

    // Keep 2 rows: 3 and 4 (one MODSEQ) stay; 1 and 2 go, whole MODSEQs at a time.
    let by_count = ExpungeLogLimits {
        max_per_mailbox: 2,
        max_age_secs: 0,
    };
    assert!(s.prune_expunge_log(by_count, unix_now()).await.unwrap() >= 2);
    assert_eq!(s.vanished_since(ib, m0).await.unwrap(), None);
    assert_eq!(s.vanished_since(ib, e1).await.unwrap(), None);
    assert_eq!(s.vanished_since(ib, e2).await.unwrap(), Some(vec![3, 4]));
    assert_eq!(s.expunged_since(ib, m0).await.unwrap(), vec![3, 4]);
    // Pruning again changes nothing here.
    s.prune_expunge_log(by_count, unix_now()).await.unwrap();
    assert_eq!(s.vanished_since(ib, e2).await.unwrap(), Some(vec![3, 4]));

    // By age: a day later every row is older than an hour.
    let by_age = ExpungeLogLimits {
        max_per_mailbox: 0,
        max_age_secs: 3600,
    };
    s.prune_expunge_log(by_age, unix_now() + 86_400)
        .await
        .unwrap();
    assert_eq!(s.vanished_since(ib, e2).await.unwrap(), None);
    assert_eq!(s.vanished_since(ib, e3).await.unwrap(), Some(vec![]));
    // New expunges are logged above the floor as before.
    s.expunge(ib, &[5]).await.unwrap();
    assert_eq!(s.vanished_since(ib, e3).await.unwrap(), Some(vec![5]));
    // No limits: nothing goes.
    let none = ExpungeLogLimits {
        max_per_mailbox: 0,
        max_age_secs: 0,
    };
    assert_eq!(
        s.prune_expunge_log(none, unix_now() + 86_400)
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.vanished_since(ib, e3).await.unwrap(), Some(vec![5]));
}

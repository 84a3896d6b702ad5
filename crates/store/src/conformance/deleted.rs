//! Conformance checks for expunging what is `\Deleted` and for counting without listing.

use super::{inbox, msg, setup};
use crate::{FlagOp, Flags, Store, SystemFlags};

fn deleted() -> Flags {
    Flags {
        system: SystemFlags::DELETED,
        keywords: vec![],
    }
}

/// `expunge_deleted` removes exactly the `\Deleted` messages among those named (or of the
/// whole mailbox) as the store has them at that moment; `count_messages` counts by UID and
/// flag.
pub async fn expunge_deleted_and_counts(s: &dyn Store) {
    let ids = setup(s, "deleted.conformance.test", &["d1"]).await;
    let inbox = inbox(s, ids[0]).await;
    for i in 0..6 {
        s.deliver(msg(&format!("deleted check {i}")), 1, &[ids[0]])
            .await
            .unwrap();
    }
    s.store_flags(inbox, &[2, 3, 5, 6], FlagOp::Add, &deleted())
        .await
        .unwrap();
    assert_eq!(s.count_messages(inbox, 0, None).await.unwrap(), 6);
    assert_eq!(s.count_messages(inbox, 4, None).await.unwrap(), 2);
    assert_eq!(
        s.count_messages(inbox, 2, Some(SystemFlags::DELETED))
            .await
            .unwrap(),
        3
    );
    // Another session took \Deleted away from 3: it stays.
    s.store_flags(inbox, &[3], FlagOp::Remove, &deleted())
        .await
        .unwrap();
    assert_eq!(
        s.expunge_deleted(inbox, Some(&[1, 3, 5])).await.unwrap(),
        vec![5],
        "only the named ones that are \\Deleted now"
    );
    assert_eq!(s.expunge_deleted(inbox, None).await.unwrap(), vec![2, 6]);
    assert_eq!(
        s.expunge_deleted(inbox, None).await.unwrap(),
        Vec::<u32>::new()
    );
    let left: Vec<_> = s
        .list_messages(inbox)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, [1, 3, 4]);
    assert_eq!(
        s.count_messages(inbox, 0, Some(SystemFlags::DELETED))
            .await
            .unwrap(),
        0
    );
}

//! `MailStore::check`: clean after every kind of write, and reporting damage done on purpose.

use std::future::Future;
use std::time::Duration;

use super::{inbox, msg, setup};
use crate::{AccountId, FlagOp, Flags, MailboxId, Store, SystemFlags, Uid};

/// What a backend's test damages, by SQL or on disk, for [`check_reports_damage`].
#[derive(Debug, Clone, Copy)]
pub struct Damage {
    pub account: AccountId,
    /// The backend sets this mailbox's UIDNEXT to 1 (below its messages' UIDs).
    pub mailbox: MailboxId,
    /// The backend adds one to the reference count of this message's body ...
    pub refcount_of: Uid,
    /// ... and damages this (large, 40 KiB) message's body: deletes its file, or changes its
    /// bytes. It also raises `account`'s storage counter by 7 bytes.
    pub body_of: Uid,
}

/// A check finds nothing after deliveries, appends (small and large bodies), copies, moves,
/// flag changes and expunges; then reports each damage a backend does on purpose — UIDNEXT,
/// the quota counter, a reference count, and the backend's own body damage, whose line
/// contains each of the strings `damage` returns.
pub async fn check_reports_damage<F, Fut>(s: &dyn Store, damage: F)
where
    F: FnOnce(Damage) -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let acc = setup(s, "check.test", &["alice", "bob"]).await;
    let inbox_a = inbox(s, acc[0]).await;
    let trash = s.create_mailbox(acc[0], "Kept").await.expect("create");
    for i in 0..5 {
        s.deliver(msg(&format!("m{i}")), 1_700_000_000, &acc)
            .await
            .expect("deliver");
    }
    let large = std::sync::Arc::new(
        format!("Subject: large\r\n\r\n{}\r\n", "x".repeat(40 * 1024)).into_bytes(),
    );
    let big = s
        .append(inbox_a, large, &Flags::default(), 1_700_000_000)
        .await
        .expect("append large");
    s.copy_messages(inbox_a, &[1, 2], trash.id)
        .await
        .expect("copy");
    s.move_messages(inbox_a, &[3], trash.id)
        .await
        .expect("move");
    let deleted = Flags {
        system: SystemFlags::DELETED,
        keywords: vec![],
    };
    s.store_flags(inbox_a, &[4], FlagOp::Add, &deleted)
        .await
        .expect("store");
    s.expunge_deleted(inbox_a, None).await.expect("expunge");
    s.expunge(trash.id, &[1]).await.expect("expunge");

    let report = s.check(Duration::ZERO).await.expect("check");
    assert!(report.is_clean(), "a consistent store: {report}");
    assert!(report.accounts >= 2 && report.messages >= 10, "{report:?}");
    assert!(report.blobs >= 6, "{report:?}");

    let own = damage(Damage {
        account: acc[0],
        mailbox: inbox_a,
        refcount_of: 1,
        body_of: big.uid,
    })
    .await;
    let report = s.check(Duration::ZERO).await.expect("check");
    let text = report.to_string();
    for expected in [
        "UIDNEXT 1 is not above UID",
        "quota counters say",
        "refcount",
    ]
    .into_iter()
    .map(String::from)
    .chain(own)
    {
        assert!(
            report.problems.iter().any(|p| p.contains(&expected)),
            "{expected:?} not reported:\n{text}"
        );
    }
    assert!(text.ends_with("problems"), "{text}");
}

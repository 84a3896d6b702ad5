//! Checks with two handles on one store: two processes on one SQLite data directory, two nodes
//! on one PostgreSQL database. Whatever one handle writes, the other's subscribers hear, in
//! order, within a few seconds; concurrent writers never share a UID.

use std::collections::BTreeSet;

use super::{addr, inbox, msg, next_event, setup};
use crate::{Change, FlagOp, Flags, RecvError, Store, SystemFlags};

/// A delivery through `a` reaches a session subscribed through `b`; flags set through `b`
/// reach `a`'s; deleting the account through `a` ends `b`'s feed.
pub async fn changes_across_handles(a: &dyn Store, b: &dyn Store) {
    let ids = setup(a, "across.conformance.test", &["x"]).await;
    let acc = ids[0];
    let ib = inbox(a, acc).await;
    let mut on_b = b.subscribe(acc).await.unwrap();
    let mut on_a = a.subscribe(acc).await.unwrap();

    let st = a.deliver(msg("across"), 5, &[acc]).await.unwrap();
    let ev = next_event(&mut on_b).await;
    assert_eq!((ev.account(), ev.mailbox), (acc, ib));
    let Change::NewMessage(m) = ev.change else {
        panic!("expected NewMessage, got {ev:?}")
    };
    assert_eq!(m.uid, st[0].uid);
    assert!(matches!(
        next_event(&mut on_a).await.change,
        Change::NewMessage(_)
    ));

    let seen = Flags {
        system: SystemFlags::SEEN,
        keywords: vec!["$Label1".into()],
    };
    b.store_flags(ib, &[m.uid], FlagOp::Add, &seen)
        .await
        .unwrap();
    for feed in [&mut on_a, &mut on_b] {
        match next_event(feed).await.change {
            Change::FlagsChanged { uid, flags, .. } => {
                assert_eq!((uid, flags), (m.uid, seen.clone()))
            }
            other => panic!("expected FlagsChanged, got {other:?}"),
        }
    }

    // Many batches in a row arrive complete and in order on the other handle.
    let mut uids = Vec::new();
    for i in 0..20 {
        uids.push(a.deliver(msg(&format!("n{i}")), 6, &[acc]).await.unwrap()[0].uid);
    }
    let mut heard = Vec::new();
    while heard.len() < uids.len() {
        match next_event(&mut on_b).await.change {
            Change::NewMessage(m) => heard.push(m.uid),
            other => panic!("expected NewMessage, got {other:?}"),
        }
    }
    assert_eq!(heard, uids);

    a.delete_user(&addr("x@across.conformance.test"))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), on_b.recv())
            .await
            .expect("the deletion within 5 s")
        {
            Ok(ev) if ev.change == Change::AccountDeleted => break,
            Ok(_) => {}
            Err(e) => panic!("feed ended before AccountDeleted: {e:?}"),
        }
    }
    assert_eq!(on_b.recv().await, Err(RecvError::Closed));
}

/// APPENDs to one mailbox through both handles at once get distinct UIDs, each handle's in
/// increasing order, and the mailbox lists them all (RFC 9051 §2.3.1.1).
pub async fn concurrent_appends_across_handles(a: &dyn Store, b: &dyn Store) {
    let ids = setup(a, "appends.conformance.test", &["y"]).await;
    let ib = inbox(a, ids[0]).await;
    let (ua, ub) = tokio::join!(append_many(a, ib, "a"), append_many(b, ib, "b"));
    assert!(ua.windows(2).all(|w| w[0] < w[1]), "{ua:?}");
    assert!(ub.windows(2).all(|w| w[0] < w[1]), "{ub:?}");
    let all: BTreeSet<u32> = ua.iter().chain(&ub).copied().collect();
    assert_eq!(all.len(), 50, "UIDs shared: {ua:?} {ub:?}");
    let listed: BTreeSet<u32> = b
        .list_summaries(ib)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(listed, all);
    assert_eq!(
        b.mailbox(ib).await.unwrap().uid_next,
        *all.last().unwrap() + 1
    );
}

async fn append_many(s: &dyn Store, mailbox: crate::MailboxId, tag: &str) -> Vec<crate::Uid> {
    let mut uids = Vec::new();
    for i in 0..25 {
        let st = s
            .append(mailbox, msg(&format!("{tag}{i}")), &Flags::default(), 7)
            .await
            .unwrap();
        uids.push(st.uid);
    }
    uids
}

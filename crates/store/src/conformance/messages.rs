//! Conformance checks for messages: delivery, APPEND, flags, copy, expunge, events.

use tokio::io::AsyncReadExt;

use super::{addr, inbox, msg, next_event, setup};
use crate::{AccountId, BlobId, Change, FlagOp, Flags, MailboxId, Store, StoreError, SystemFlags};

/// Delivery to several accounts, UID monotonicity across expunges, quota, blob sharing.
pub async fn delivery_uids_and_dedup(s: &dyn Store) {
    let ids = setup(s, "deliver.conformance.test", &["e1", "e2"]).await;
    let (e1, e2) = (ids[0], ids[1]);
    let m1 = msg("one");
    let stored = s
        .deliver(m1.clone(), 1_700_000_000, &[e1, e2, e1])
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "duplicate recipients ignored");
    assert_eq!(stored[0].mailbox.account, e1);
    assert_eq!(stored[1].mailbox.account, e2);
    assert!(stored.iter().all(|st| st.uid == 1));
    let in1 = inbox(s, e1).await;
    assert_eq!(stored[0].mailbox, in1);
    assert_eq!(
        stored[0].uid_validity,
        s.mailbox(in1).await.unwrap().uid_validity
    );

    let a = s.list_messages(in1).await.unwrap();
    let b = s.list_messages(inbox(s, e2).await).await.unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].blob, b[0].blob, "one blob for both recipients");
    assert_eq!(a[0].size, m1.len() as u64);
    assert_eq!(a[0].internal_date, 1_700_000_000);
    assert_eq!(a[0].flags, Flags::default(), "new mail is unseen");
    let mut body = Vec::new();
    s.open_blob(&a[0].blob)
        .await
        .unwrap()
        .read_to_end(&mut body)
        .await
        .unwrap();
    assert_eq!(body, *m1);

    let q = s.quota(e1).await.unwrap();
    assert_eq!(q.used, m1.len() as u64);
    assert_eq!(q.limit, None);

    let s2 = s.deliver(msg("two"), 1, &[e1]).await.unwrap();
    let s3 = s.deliver(msg("three"), 1, &[e1]).await.unwrap();
    assert_eq!((s2[0].uid, s3[0].uid), (2, 3));
    let before = s.mailbox(in1).await.unwrap();
    assert_eq!((before.messages, before.unseen, before.uid_next), (3, 3, 4));
    // RFC 9051 §2.3.1.1: expunging the highest UID does not make it reusable.
    assert_eq!(s.expunge(in1, &[3]).await.unwrap(), vec![3]);
    let s4 = s.deliver(msg("four"), 1, &[e1]).await.unwrap();
    assert_eq!(s4[0].uid, 4);
    let uids: Vec<_> = s
        .list_messages(in1)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids, vec![1, 2, 4]);
    let after = s.mailbox(in1).await.unwrap();
    assert!(after.highest_modseq > before.highest_modseq);
    assert_eq!(after.uid_validity, before.uid_validity);
    let q = s.quota(e1).await.unwrap();
    let sum: u64 = s
        .list_messages(in1)
        .await
        .unwrap()
        .iter()
        .map(|m| m.size)
        .sum();
    assert_eq!(q.used, sum, "quota follows expunge and delivery");
    assert_eq!(after.size, sum);

    assert!(s.deliver(msg("x"), 1, &[]).await.unwrap().is_empty());
    assert!(
        s.deliver(msg("x"), 1, &[AccountId(i64::MAX)])
            .await
            .is_err()
    );
    assert_eq!(
        s.get_messages(in1, &[4, 1, 99])
            .await
            .unwrap()
            .iter()
            .map(|m| m.uid)
            .collect::<Vec<_>>(),
        vec![1, 4]
    );
}

/// APPEND with flags; blob streaming; unknown blobs.
pub async fn append_and_blobs(s: &dyn Store) {
    let ids = setup(s, "append.conformance.test", &["f"]).await;
    let sent = s.find_mailbox(ids[0], "Sent").await.unwrap().unwrap();
    let flags = Flags {
        system: SystemFlags::SEEN,
        keywords: vec!["$Forwarded".into()],
    };
    let st = s.append(sent.id, msg("sent"), &flags, 42).await.unwrap();
    assert_eq!((st.mailbox, st.uid), (sent.id, 1));
    let m = &s.get_messages(sent.id, &[1]).await.unwrap()[0];
    assert_eq!(m.flags, flags);
    assert_eq!(m.internal_date, 42);
    let info = s.mailbox(sent.id).await.unwrap();
    assert_eq!((info.messages, info.unseen), (1, 0));
    let bad = Flags {
        system: SystemFlags::empty(),
        keywords: vec!["bad keyword".into()],
    };
    assert!(matches!(
        s.append(sent.id, msg("x"), &bad, 1).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.append(
            MailboxId::new(sent.id.account, i64::MAX),
            msg("x"),
            &Flags::default(),
            1
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
    let unknown = BlobId("0".repeat(64));
    assert!(matches!(
        s.open_blob(&unknown).await,
        Err(StoreError::NotFound(_) | StoreError::Expunged)
    ));
    let evil = BlobId("../../yubin.db".into());
    assert!(s.open_blob(&evil).await.is_err());

    // Summaries are the messages without blob ids; read_message gives the stored bytes.
    let second = s
        .append(sent.id, msg("second"), &Flags::default(), 43)
        .await
        .unwrap();
    let full = s.list_messages(sent.id).await.unwrap();
    let summaries = s.list_summaries(sent.id).await.unwrap();
    assert_eq!(summaries.len(), 2);
    for (m, sum) in full.into_iter().zip(&summaries) {
        assert_eq!(&m.summary(), sum);
    }
    assert_eq!(
        s.read_message(sent.id, second.uid)
            .await
            .unwrap()
            .as_deref(),
        Some(msg("second").as_slice())
    );
    assert_eq!(s.read_message(sent.id, 99).await.unwrap(), None);
    assert!(
        s.list_summaries(MailboxId::new(sent.id.account, i64::MAX))
            .await
            .is_err(),
        "an unknown mailbox is an error, not an empty list"
    );
    // SELECT's read: the mailbox and its summaries together.
    let crate::OpenedMailbox {
        info,
        messages: opened,
    } = s.open_mailbox(ids[0], "Sent").await.unwrap().unwrap();
    assert_eq!((info.id, info.uid_next), (sent.id, second.uid + 1));
    let flags: Vec<_> = summaries.iter().map(|m| (m.uid, m.flags.clone())).collect();
    assert_eq!(opened, flags);
    let newest = summaries.iter().map(|m| m.modseq).max().unwrap();
    assert!(
        info.highest_modseq >= newest,
        "HIGHESTMODSEQ covers every message"
    );
    assert!(s.open_mailbox(ids[0], "Nope").await.unwrap().is_none());
    assert!(s.open_mailbox(ids[0], "../x").await.unwrap().is_none());
}

/// STORE semantics: add/remove/replace, only changed messages reported, MODSEQ increases.
pub async fn flags(s: &dyn Store) {
    let ids = setup(s, "flags.conformance.test", &["g"]).await;
    let ib = inbox(s, ids[0]).await;
    for i in 0..3 {
        s.deliver(msg(&format!("m{i}")), 1, &ids).await.unwrap();
    }
    let m0 = s.mailbox(ib).await.unwrap().highest_modseq;
    let seen = Flags {
        system: SystemFlags::SEEN,
        keywords: vec![],
    };
    let r = s
        .store_flags(ib, &[1, 2, 99], FlagOp::Add, &seen)
        .await
        .unwrap();
    assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2]);
    assert!(
        r.iter()
            .all(|x| x.1.system == SystemFlags::SEEN && x.2 > m0)
    );
    let m1 = s.mailbox(ib).await.unwrap();
    assert_eq!(m1.unseen, 1);
    assert_eq!(m1.highest_modseq, r[0].2);
    // Adding a flag that is already set changes nothing.
    assert!(
        s.store_flags(ib, &[1], FlagOp::Add, &seen)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.mailbox(ib).await.unwrap().highest_modseq,
        m1.highest_modseq
    );

    let kw = Flags {
        system: SystemFlags::FLAGGED,
        keywords: vec!["$Junk".into(), "$junk".into()],
    };
    let r = s.store_flags(ib, &[1], FlagOp::Add, &kw).await.unwrap();
    assert_eq!(r[0].1.keywords, vec!["$Junk".to_string()]);
    assert!(r[0].1.system.contains(SystemFlags::SEEN));
    assert!(r[0].1.system.contains(SystemFlags::FLAGGED));
    let rm = Flags {
        system: SystemFlags::SEEN,
        keywords: vec!["$JUNK".into()],
    };
    let r = s.store_flags(ib, &[1], FlagOp::Remove, &rm).await.unwrap();
    assert_eq!(
        r[0].1,
        Flags {
            system: SystemFlags::FLAGGED,
            keywords: vec![]
        }
    );
    let r = s
        .store_flags(
            ib,
            &[1, 3],
            FlagOp::Replace,
            &Flags {
                system: SystemFlags::DELETED,
                keywords: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].2, r[1].2, "one MODSEQ per command");
    let metas = s.list_messages(ib).await.unwrap();
    assert_eq!(metas[0].flags.system, SystemFlags::DELETED);
    assert_eq!(metas[0].modseq, r[0].2);
    assert!(matches!(
        s.store_flags(
            ib,
            &[1],
            FlagOp::Add,
            &Flags {
                system: SystemFlags::empty(),
                keywords: vec!["a(b".into()]
            }
        )
        .await,
        Err(StoreError::Invalid(_))
    ));
}

/// COPY shares blobs and keeps order and flags; EXPUNGE reports only what it removed.
pub async fn copy_and_expunge(s: &dyn Store) {
    let ids = setup(s, "copy.conformance.test", &["h", "other"]).await;
    let ib = inbox(s, ids[0]).await;
    for i in 0..4 {
        s.deliver(msg(&format!("c{i}")), 100 + i, &ids[..1])
            .await
            .unwrap();
    }
    let seen = Flags {
        system: SystemFlags::SEEN,
        keywords: vec!["k".into()],
    };
    s.store_flags(ib, &[3], FlagOp::Add, &seen).await.unwrap();
    let trash = s.find_mailbox(ids[0], "Trash").await.unwrap().unwrap();
    let used = s.quota(ids[0]).await.unwrap().used;

    let pairs = s.copy_messages(ib, &[4, 1, 3, 77], trash.id).await.unwrap();
    assert_eq!(
        pairs,
        vec![(1, 1), (3, 2), (4, 3)],
        "new UIDs in source-UID order"
    );
    let src = s.get_messages(ib, &[1, 3, 4]).await.unwrap();
    let dst = s.list_messages(trash.id).await.unwrap();
    for (a, b) in src.iter().zip(&dst) {
        assert_eq!(a.blob, b.blob, "blobs are shared");
        assert_eq!((a.size, a.internal_date), (b.size, b.internal_date));
        assert_eq!(a.flags, b.flags);
    }
    let copied: u64 = src.iter().map(|m| m.size).sum();
    assert_eq!(s.quota(ids[0]).await.unwrap().used, used + copied);

    let other_inbox = inbox(s, ids[1]).await;
    assert!(
        s.copy_messages(ib, &[1], other_inbox).await.is_err(),
        "cross-account copy refused"
    );

    let m0 = s.mailbox(ib).await.unwrap().highest_modseq;
    assert_eq!(s.expunge(ib, &[1, 2, 50]).await.unwrap(), vec![1, 2]);
    assert!(s.expunge(ib, &[1, 2]).await.unwrap().is_empty());
    assert!(s.mailbox(ib).await.unwrap().highest_modseq > m0);
    // The copies survive the originals.
    let mut body = Vec::new();
    s.open_blob(&dst[0].blob)
        .await
        .unwrap()
        .read_to_end(&mut body)
        .await
        .unwrap();
    assert!(body.ends_with(b"c0\r\n"));
    assert_eq!(s.list_messages(trash.id).await.unwrap().len(), 3);
}

/// Events arrive after delivery, flag changes, expunge and mailbox creation, per account.
pub async fn change_events(s: &dyn Store) {
    let ids = setup(s, "events.conformance.test", &["k", "l"]).await;
    let acc = ids[0];
    let mut rx = s.subscribe(acc).await.unwrap();
    let mut other = s.subscribe(ids[1]).await.unwrap();
    let ib = inbox(s, acc).await;

    let st = s.deliver(msg("ev"), 1, &[acc]).await.unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!((ev.account(), ev.mailbox), (acc, ib));
    let Change::NewMessage(new) = ev.change else {
        panic!("expected NewMessage, got {ev:?}")
    };
    let uid = new.uid;
    assert_eq!(uid, st[0].uid);
    assert_eq!(new.modseq, s.mailbox(ib).await.unwrap().highest_modseq);
    // The event carries what the store has, so a session need not read it back.
    let stored = s.list_summaries(ib).await.unwrap();
    assert_eq!(stored.last(), Some(&new));
    assert_eq!(
        (new.internal_date, new.flags.clone()),
        (1, Flags::default())
    );

    let seen = Flags {
        system: SystemFlags::SEEN,
        keywords: vec![],
    };
    s.store_flags(ib, &[uid], FlagOp::Add, &seen).await.unwrap();
    match next_event(&mut rx).await.change {
        Change::FlagsChanged { uid: u, flags, .. } => {
            assert_eq!(u, uid);
            assert_eq!(flags, seen);
        }
        other => panic!("expected FlagsChanged, got {other:?}"),
    }

    s.expunge(ib, &[uid]).await.unwrap();
    match next_event(&mut rx).await.change {
        Change::Expunged { uids, .. } => assert_eq!(uids, vec![uid]),
        other => panic!("expected Expunged, got {other:?}"),
    }

    let created = s.create_mailbox(acc, "Events").await.unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!(
        (ev.mailbox, ev.change),
        (
            created.id,
            Change::MailboxCreated {
                name: "Events".into()
            }
        )
    );
    s.set_subscribed(acc, "Events", true).await.unwrap();
    assert_eq!(
        next_event(&mut rx).await.change,
        Change::SubscriptionChanged {
            name: "Events".into(),
            subscribed: true
        }
    );
    s.create_mailbox(acc, "Events/Sub").await.unwrap();
    next_event(&mut rx).await;
    s.rename_mailbox(created.id, "Renamed").await.unwrap();
    let mut renames = vec![
        next_event(&mut rx).await.change,
        next_event(&mut rx).await.change,
    ];
    renames.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        renames,
        [
            Change::MailboxRenamed {
                old_name: "Events".into(),
                new_name: "Renamed".into()
            },
            Change::MailboxRenamed {
                old_name: "Events/Sub".into(),
                new_name: "Renamed/Sub".into()
            },
        ]
    );
    let sub = s.find_mailbox(acc, "Renamed/Sub").await.unwrap().unwrap();
    s.delete_mailbox(sub.id).await.unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!(
        (ev.mailbox, ev.change),
        (
            sub.id,
            Change::MailboxDeleted {
                name: "Renamed/Sub".into()
            }
        )
    );
    let heard = other.try_recv();
    assert!(heard.is_err(), "other accounts hear nothing: {heard:?}");

    // Deleting the account tells its sessions, then closes their feeds.
    s.delete_user(&addr("k@events.conformance.test"))
        .await
        .unwrap();
    loop {
        let ev = next_event(&mut rx).await;
        if ev.change == Change::AccountDeleted {
            assert_eq!(ev.account(), acc);
            break;
        }
    }
    assert_eq!(rx.recv().await, Err(crate::RecvError::Closed));
    assert!(rx.is_closed());
    assert_eq!(other.try_recv(), Err(crate::TryRecvError::Empty));
}

/// RFC 7162: STORE UNCHANGEDSINCE tests and changes in one step; the expunge log lists what
/// was expunged after a MODSEQ (QRESYNC).
pub async fn conditional_store_and_expunge_log(s: &dyn Store) {
    let ids = setup(s, "condstore.conformance.test", &["q"]).await;
    let ib = inbox(s, ids[0]).await;
    for i in 0..4 {
        s.deliver(msg(&format!("q{i}")), 1, &ids).await.unwrap();
    }
    let seen = Flags {
        system: SystemFlags::SEEN,
        keywords: vec![],
    };
    let flagged = Flags {
        system: SystemFlags::FLAGGED,
        keywords: vec![],
    };
    let base = s.mailbox(ib).await.unwrap().highest_modseq;
    let r = s.store_flags(ib, &[2], FlagOp::Add, &seen).await.unwrap();
    let m2 = r[0].2;
    assert!(m2 > base);
    // 2 changed after `base`: it fails the test; 1 and 3 pass; 99 does not exist.
    let crate::ConditionalStore {
        changed,
        failed: modified,
    } = s
        .store_flags_unchanged_since(ib, &[3, 2, 1, 99], FlagOp::Add, &flagged, base)
        .await
        .unwrap();
    assert_eq!(modified, vec![2]);
    assert_eq!(changed.iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 3]);
    assert!(changed.iter().all(|c| c.2 > m2));
    let metas = s.list_messages(ib).await.unwrap();
    assert_eq!(metas[1].flags.system, SystemFlags::SEEN, "2 left alone");
    assert_eq!(metas[1].modseq, m2);
    // With the current MODSEQ the test passes.
    let crate::ConditionalStore {
        changed,
        failed: modified,
    } = s
        .store_flags_unchanged_since(ib, &[2], FlagOp::Add, &flagged, m2)
        .await
        .unwrap();
    assert!(modified.is_empty());
    assert_eq!(changed.len(), 1);

    let before = s.mailbox(ib).await.unwrap().highest_modseq;
    assert!(s.expunged_since(ib, before).await.unwrap().is_empty());
    s.expunge(ib, &[3]).await.unwrap();
    let mid = s.mailbox(ib).await.unwrap().highest_modseq;
    assert!(mid > before, "an expunge bumps HIGHESTMODSEQ");
    s.expunge(ib, &[1]).await.unwrap();
    assert_eq!(s.expunged_since(ib, before).await.unwrap(), vec![1, 3]);
    assert_eq!(s.expunged_since(ib, mid).await.unwrap(), vec![1]);
    assert!(
        s.expunged_since(ib, u64::MAX >> 1)
            .await
            .unwrap()
            .is_empty()
    );
}

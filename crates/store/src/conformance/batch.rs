//! Conformance checks for the multi-message calls that must be one transaction: MOVE
//! (RFC 6851 §3.3) and MULTIAPPEND (RFC 3502).

use std::sync::Arc;

use super::{inbox, msg, next_event, setup};
use crate::{AppendMessage, Change, FlagOp, Flags, MailboxId, Store, StoreError, SystemFlags};

fn item(body: &str, flags: Flags, date: i64) -> AppendMessage {
    AppendMessage {
        bytes: msg(body),
        flags,
        internal_date: date,
    }
}

/// MOVE: the destination gets the messages (flags, dates, bodies kept; new UIDs in source
/// order), the source loses them with an expunge-log entry, both MODSEQs grow, quota is
/// unchanged, and the events say so in COPYUID-then-EXPUNGE order.
pub async fn move_messages(s: &dyn Store) {
    let ids = setup(s, "move.conformance.test", &["mv", "other"]).await;
    let acc = ids[0];
    let ib = inbox(s, acc).await;
    for i in 0..4 {
        s.deliver(msg(&format!("m{i}")), 200 + i, &ids[..1])
            .await
            .unwrap();
    }
    let seen = Flags {
        system: SystemFlags::SEEN,
        keywords: vec!["k".into()],
    };
    s.store_flags(ib, &[3], FlagOp::Add, &seen).await.unwrap();
    let trash = s.find_mailbox(acc, "Trash").await.unwrap().unwrap();
    let before = s.get_messages(ib, &[1, 3, 4]).await.unwrap();
    let used = s.quota(acc).await.unwrap().used;
    let src_modseq = s.mailbox(ib).await.unwrap().highest_modseq;
    let dst_modseq = s.mailbox(trash.id).await.unwrap().highest_modseq;
    let mut rx = s.subscribe(acc).await.unwrap();

    let pairs = s.move_messages(ib, &[4, 1, 3, 77], trash.id).await.unwrap();
    assert_eq!(pairs, vec![(1, 1), (3, 2), (4, 3)], "source-UID order");

    let left: Vec<u32> = s
        .list_messages(ib)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, vec![2], "the source keeps only what was not moved");
    let moved = s.list_messages(trash.id).await.unwrap();
    assert_eq!(moved.iter().map(|m| m.uid).collect::<Vec<_>>(), [1, 2, 3]);
    for (a, b) in before.iter().zip(&moved) {
        assert_eq!(
            (&a.blob, a.size, a.internal_date, &a.flags),
            (&b.blob, b.size, b.internal_date, &b.flags)
        );
        let body = s.read_blob(&b.blob, b.size).await.unwrap();
        assert_eq!(body.len() as u64, b.size);
    }
    let src_after = s.mailbox(ib).await.unwrap().highest_modseq;
    let dst_after = s.mailbox(trash.id).await.unwrap().highest_modseq;
    assert!(src_after > src_modseq && dst_after > dst_modseq);
    assert!(moved.iter().all(|m| m.modseq > dst_modseq));
    assert_eq!(
        s.expunged_since(ib, src_modseq).await.unwrap(),
        vec![1, 3, 4],
        "the expunge log records the moved UIDs"
    );
    assert_eq!(s.quota(acc).await.unwrap().used, used, "quota unchanged");

    // Events: the destination's new messages, then the source's expunge (RFC 6851 §4.3).
    for (i, uid) in [1, 2, 3].into_iter().enumerate() {
        let ev = next_event(&mut rx).await;
        assert_eq!(ev.mailbox, trash.id, "event {i}");
        assert!(matches!(ev.change, Change::NewMessage(ref m) if m.uid == uid));
    }
    let ev = next_event(&mut rx).await;
    assert_eq!(ev.mailbox, ib);
    assert_eq!(
        ev.change,
        Change::Expunged {
            uids: vec![1, 3, 4],
            modseq: src_after
        }
    );

    // Nothing to move: nothing changes.
    assert!(
        s.move_messages(ib, &[1, 99], trash.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.mailbox(ib).await.unwrap().highest_modseq, src_after);
    // Another account's mailbox: refused, nothing moved.
    let theirs = inbox(s, ids[1]).await;
    assert!(s.move_messages(ib, &[2], theirs).await.is_err());
    assert_eq!(s.list_messages(ib).await.unwrap().len(), 1);
    assert!(s.list_messages(theirs).await.unwrap().is_empty());
    // Back again: the UIDs in the source are new ones (never reused).
    let back = s.move_messages(trash.id, &[1, 2, 3], ib).await.unwrap();
    assert_eq!(back, vec![(1, 5), (2, 6), (3, 7)]);
    assert!(s.list_messages(trash.id).await.unwrap().is_empty());
}

/// MULTIAPPEND: all or nothing. A failing message leaves the mailbox exactly as it was (rows,
/// UIDNEXT, HIGHESTMODSEQ); a good batch gets consecutive, increasing UIDs in order.
pub async fn append_many(s: &dyn Store) {
    let ids = setup(s, "multiappend.conformance.test", &["ma"]).await;
    let mb = s.create_mailbox(ids[0], "Batch").await.unwrap();
    let first = s
        .append(mb.id, msg("solo"), &Flags::default(), 10)
        .await
        .unwrap();
    assert_eq!(first.uid, 1);
    let state = s.mailbox(mb.id).await.unwrap();
    let used = s.quota(ids[0]).await.unwrap().used;

    let bad = Flags {
        system: SystemFlags::default(),
        keywords: vec!["bad keyword".into()],
    };
    let r = s
        .append_many(
            mb.id,
            vec![
                item("a", Flags::default(), 11),
                item("b", Flags::default(), 12),
                item("c", bad, 13),
            ],
        )
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let after = s.mailbox(mb.id).await.unwrap();
    assert_eq!(
        (after.messages, after.uid_next, after.highest_modseq),
        (state.messages, state.uid_next, state.highest_modseq),
        "a failed batch leaves the mailbox unchanged"
    );
    assert_eq!(s.quota(ids[0]).await.unwrap().used, used);

    let flagged = Flags {
        system: SystemFlags::FLAGGED,
        keywords: vec!["$Label1".into()],
    };
    let stored = s
        .append_many(
            mb.id,
            vec![
                item("x", Flags::default(), 21),
                item("y", flagged.clone(), 22),
                item("z", Flags::default(), 23),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        stored.iter().map(|st| st.uid).collect::<Vec<_>>(),
        vec![2, 3, 4],
        "consecutive UIDs after the last one, in order"
    );
    assert!(
        stored
            .iter()
            .all(|st| st.uid_validity == mb.uid_validity && st.mailbox == mb.id)
    );
    let metas = s.get_messages(mb.id, &[2, 3, 4]).await.unwrap();
    assert_eq!(
        metas.iter().map(|m| m.internal_date).collect::<Vec<_>>(),
        [21, 22, 23]
    );
    assert_eq!(metas[1].flags, flagged);
    assert!(metas.iter().all(|m| m.modseq > state.highest_modseq));
    for (m, body) in metas.iter().zip(["x", "y", "z"]) {
        assert_eq!(
            s.read_blob(&m.blob, m.size).await.unwrap(),
            *msg(body),
            "bodies in order"
        );
    }
    let used_now = s.quota(ids[0]).await.unwrap().used;
    assert_eq!(used_now, used + metas.iter().map(|m| m.size).sum::<u64>());
    // The next APPEND continues after the batch.
    let next = s
        .append(
            mb.id,
            Arc::new(b"Subject: n\r\n\r\nn\r\n".to_vec()),
            &Flags::default(),
            30,
        )
        .await
        .unwrap();
    assert_eq!(next.uid, 5);
    assert!(s.append_many(mb.id, Vec::new()).await.unwrap().is_empty());
    assert!(matches!(
        s.append_many(
            MailboxId::new(mb.id.account, i64::MAX - 1),
            vec![item("q", Flags::default(), 1)]
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
}

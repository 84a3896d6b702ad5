//! `MessageDates`: save dates (RFC 8514) set at every way into a mailbox, first POP3
//! retrievals, and the aged-message batches retention removes.

use super::{inbox, msg, setup};
use crate::{AgeBasis, Flags, Store, UnixTime};

fn now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as UnixTime
}

/// Whether `d` is the save date of something saved during this check (a few seconds).
fn recent(d: Option<UnixTime>, start: UnixTime) -> bool {
    d.is_some_and(|d| d >= start - 1 && d <= now() + 1)
}

/// Delivery, APPEND, COPY and MOVE set the save date to the store's clock, whatever the
/// internal date (RFC 8514 §1: the date the message was saved into its mailbox); missing UIDs
/// and foreign mailboxes are not answered.
pub async fn save_dates(store: &dyn Store) {
    let start = now();
    let ids = setup(store, "savedate.test", &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let ib = inbox(store, a).await;
    store.deliver(msg("d1"), 1_000, &[a]).await.unwrap();
    let trash = store.find_mailbox(a, "Trash").await.unwrap().unwrap().id;
    let st = store
        .append(trash, msg("ap"), &Flags::default(), 2_000)
        .await
        .unwrap();
    assert_eq!(st.uid, 1);
    let dates = store.save_dates(ib, &[1, 7]).await.unwrap();
    assert_eq!(dates.len(), 1, "missing UIDs are skipped: {dates:?}");
    assert_eq!(dates[0].0, 1);
    assert!(recent(dates[0].1, start), "delivery: {dates:?}");
    let dates = store.save_dates(trash, &[1]).await.unwrap();
    assert!(recent(dates[0].1, start), "APPEND: {dates:?}");

    // COPY and MOVE: a new save date in the destination (equal to or after the source's).
    let copied = store.copy_messages(ib, &[1], trash).await.unwrap();
    assert_eq!(copied, [(1, 2)]);
    let moved = store.move_messages(trash, &[1], ib).await.unwrap();
    assert_eq!(moved, [(1, 2)]);
    let src = store.save_dates(ib, &[1]).await.unwrap()[0].1.unwrap();
    for (mb, uid) in [(trash, 2), (ib, 2)] {
        let d = store.save_dates(mb, &[uid]).await.unwrap();
        assert!(recent(d[0].1, start), "{d:?}");
        assert!(d[0].1.unwrap() >= src);
    }
    assert!(store.save_dates(trash, &[1]).await.unwrap().is_empty());

    // Scoped to the account.
    let other = crate::MailboxId::new(b, ib.number);
    assert!(store.save_dates(other, &[1]).await.is_err());
    assert!(store.mark_retrieved(other, &[1], 5).await.is_err());
}

/// The first RETR is kept (later ones do not move it); aged messages come in UID order and
/// bounded batches, by save date (internal date where there is none) or by retrieval (never
/// for messages not retrieved); a copy is neither retrieved nor old.
pub async fn retrievals_and_aged_messages(store: &dyn Store) {
    let ids = setup(store, "aged.test", &["a"]).await;
    let a = ids[0];
    let ib = inbox(store, a).await;
    for i in 0..5 {
        store
            .deliver(msg(&format!("m{i}")), 1_000, &[a])
            .await
            .unwrap();
    }
    assert_eq!(store.mark_retrieved(ib, &[2, 3, 9], 100).await.unwrap(), 2);
    assert_eq!(store.mark_retrieved(ib, &[3, 4], 500).await.unwrap(), 1);
    assert_eq!(
        store.retrieved_dates(ib, &[1, 2, 3, 4]).await.unwrap(),
        [(1, None), (2, Some(100)), (3, Some(100)), (4, Some(500))]
    );
    let aged = |basis, before, limit| store.aged_messages(ib, basis, before, limit);
    assert_eq!(
        aged(AgeBasis::Retrieved, 100, 10).await.unwrap(),
        [] as [u32; 0]
    );
    assert_eq!(aged(AgeBasis::Retrieved, 101, 10).await.unwrap(), [2, 3]);
    assert_eq!(aged(AgeBasis::Retrieved, 501, 10).await.unwrap(), [2, 3, 4]);
    assert_eq!(aged(AgeBasis::Retrieved, 501, 2).await.unwrap(), [2, 3]);

    // By save date: everything was saved just now.
    let t = now();
    assert!(aged(AgeBasis::Saved, t - 60, 10).await.unwrap().is_empty());
    assert_eq!(
        aged(AgeBasis::Saved, t + 60, 10).await.unwrap(),
        [1, 2, 3, 4, 5]
    );
    // A batch: three of the five (saved in the same second: any three), ascending.
    let batch = aged(AgeBasis::Saved, t + 60, 3).await.unwrap();
    assert_eq!(batch.len(), 3, "{batch:?}");
    assert!(batch.windows(2).all(|w| w[0] < w[1]) && batch.iter().all(|u| (1..=5).contains(u)));

    // A copy is a new message of its mailbox: not retrieved there.
    let archive = store.find_mailbox(a, "Archive").await.unwrap().unwrap().id;
    store.copy_messages(ib, &[2], archive).await.unwrap();
    assert_eq!(
        store.retrieved_dates(archive, &[1]).await.unwrap(),
        [(1, None)]
    );
    // The expunged are gone from the batches.
    store.expunge(ib, &[2]).await.unwrap();
    assert_eq!(aged(AgeBasis::Retrieved, 501, 10).await.unwrap(), [3, 4]);
}

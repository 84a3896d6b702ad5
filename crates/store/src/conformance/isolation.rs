//! Account scoping: every mailbox and message call on a mailbox id that names the wrong
//! account is answered `NotFound`, and changes nothing — what a session of one account could
//! reach with another account's mailbox number.

use super::{inbox, msg, setup};
use crate::{AppendMessage, FlagOp, Flags, MailboxId, Store, StoreError, StoreResult, SystemFlags};

#[track_caller]
fn refused<T: std::fmt::Debug>(what: &str, r: StoreResult<T>) {
    assert!(
        matches!(r, Err(StoreError::NotFound(_))),
        "{what} on another account's mailbox: {r:?}"
    );
}

/// Account `b` names account `a`'s INBOX (the real mailbox number, `b` as its account): every
/// call is refused, and `a`'s mailbox is as before.
pub async fn calls_are_scoped_to_the_account(s: &dyn Store) {
    let ids = setup(s, "isolation.conformance.test", &["a", "b"]).await;
    let (a, b) = (ids[0], ids[1]);
    let mine = inbox(s, a).await;
    let b_inbox = inbox(s, b).await;
    for i in 0..3 {
        s.deliver(msg(&format!("isolation {i}")), 1, &[a])
            .await
            .unwrap();
    }
    s.urlauth_key(mine, b"key of a").await.unwrap();
    let before = s.list_messages(mine).await.unwrap();
    let forged = MailboxId::new(b, mine.number);
    let seen = Flags {
        system: SystemFlags(SystemFlags::SEEN.0 | SystemFlags::DELETED.0),
        keywords: vec![],
    };

    refused("mailbox", s.mailbox(forged).await);
    refused(
        "append",
        s.append(forged, msg("intruder"), &Flags::default(), 1)
            .await,
    );
    refused(
        "append_many",
        s.append_many(
            forged,
            vec![AppendMessage {
                bytes: msg("intruder"),
                flags: Flags::default(),
                internal_date: 1,
            }],
        )
        .await,
    );
    refused("list_messages", s.list_messages(forged).await);
    refused("list_summaries", s.list_summaries(forged).await);
    refused("get_messages", s.get_messages(forged, &[1, 2]).await);
    refused("read_message", s.read_message(forged, 1).await);
    refused("message_bodies", s.message_bodies(forged, &[1], 1).await);
    refused(
        "store_flags",
        s.store_flags(forged, &[1, 2, 3], FlagOp::Add, &seen).await,
    );
    refused(
        "store_flags_unchanged_since",
        s.store_flags_unchanged_since(forged, &[1], FlagOp::Add, &seen, u64::MAX)
            .await,
    );
    refused("expunged_since", s.expunged_since(forged, 0).await);
    refused(
        "copy_messages from",
        s.copy_messages(forged, &[1], b_inbox).await,
    );
    refused(
        "move_messages from",
        s.move_messages(forged, &[1], b_inbox).await,
    );
    refused("expunge", s.expunge(forged, &[1]).await);
    refused("expunge_deleted", s.expunge_deleted(forged, None).await);
    refused("count_messages", s.count_messages(forged, 0, None).await);
    refused("urlauth_key", s.urlauth_key(forged, b"fresh").await);
    refused("find_urlauth_key", s.find_urlauth_key(forged).await);
    refused("claim_recent", s.claim_recent(forged, 3).await);
    refused(
        "append_claiming_recent",
        s.append_claiming_recent(forged, msg("intruder"), &Flags::default(), 1)
            .await,
    );
    refused("recent_mark", s.recent_mark(forged).await);
    refused("rename_mailbox", s.rename_mailbox(forged, "Stolen").await);
    refused("delete_mailbox", s.delete_mailbox(forged).await);
    // RESETKEY of b (its own account) naming a's mailbox forgets nothing of a's.
    let _ = s.reset_urlauth_keys(b, Some(forged)).await;

    // Into another account's mailbox, from one's own: refused as well.
    s.deliver(msg("b's own"), 1, &[b]).await.unwrap();
    let into_a = MailboxId::new(b, mine.number);
    refused(
        "copy_messages to",
        s.copy_messages(b_inbox, &[1], into_a).await,
    );
    refused(
        "move_messages to",
        s.move_messages(b_inbox, &[1], into_a).await,
    );
    let real_into_a = mine;
    refused(
        "copy_messages to another account",
        s.copy_messages(b_inbox, &[1], real_into_a).await,
    );

    assert_eq!(
        s.list_messages(mine).await.unwrap(),
        before,
        "a's mailbox unchanged"
    );
    assert_eq!(
        s.find_urlauth_key(mine).await.unwrap().as_deref(),
        Some(&b"key of a"[..])
    );
    assert_eq!(s.recent_mark(mine).await.unwrap(), 0);
    assert_eq!(s.list_messages(b_inbox).await.unwrap().len(), 1);
    let a_boxes = s.list_mailboxes(a).await.unwrap();
    assert!(a_boxes.iter().any(|m| m.id == mine && m.name == "INBOX"));
}

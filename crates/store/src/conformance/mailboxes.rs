//! Conformance checks for mailboxes: defaults, name rules, rename, delete, subscriptions.

use super::{addr, inbox, msg, setup};
use crate::{DEFAULT_MAILBOXES, Flags, INBOX, SpecialUse, Store, StoreError};

/// Every new account gets INBOX, Sent, Drafts, Trash, Junk, Archive with their special use.
pub async fn default_mailboxes(s: &dyn Store) {
    let ids = setup(s, "mbx.conformance.test", &["dana"]).await;
    let list = s.list_mailboxes(ids[0]).await.unwrap();
    assert_eq!(list.len(), DEFAULT_MAILBOXES.len());
    for (name, special) in DEFAULT_MAILBOXES {
        let m = list
            .iter()
            .find(|m| m.name == *name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(m.special_use, *special, "{name}");
        assert_eq!(m.id.account, ids[0]);
        assert_ne!(m.uid_validity, 0);
        assert_eq!(m.uid_next, 1);
        assert_eq!((m.messages, m.unseen, m.size), (0, 0, 0));
    }
    let trash = list
        .iter()
        .find(|m| m.special_use == Some(SpecialUse::Trash))
        .unwrap();
    assert_eq!(trash.name, "Trash");
    // RFC 9051 §5.1: INBOX is case-insensitive.
    let i = s
        .find_mailbox(ids[0], "iNbOx")
        .await
        .unwrap()
        .expect("inbox");
    assert_eq!(i.name, INBOX);
    assert!(s.find_mailbox(ids[0], "sent").await.unwrap().is_none());
    assert!(s.find_mailbox(ids[0], "Nope").await.unwrap().is_none());
    assert_eq!(s.mailbox(i.id).await.unwrap(), i);
}

/// Name rules for CREATE and RENAME.
pub async fn mailbox_names(s: &dyn Store) {
    let ids = setup(s, "names.conformance.test", &["i"]).await;
    let acc = ids[0];
    for bad in [
        "",
        "/a",
        "a/",
        "a//b",
        "a/../b",
        "..",
        "a\u{1}b",
        &"x".repeat(1025),
    ] {
        assert!(
            matches!(
                s.create_mailbox(acc, bad).await,
                Err(StoreError::Invalid(_))
            ),
            "{bad:?} must be refused"
        );
    }
    for inbox in ["INBOX", "inbox", "InBoX"] {
        assert!(matches!(
            s.create_mailbox(acc, inbox).await,
            Err(StoreError::Exists(_))
        ));
    }
    // RFC 9051 §6.3.4: missing superiors are created.
    let deep = s.create_mailbox(acc, "Projects/2024/Q1").await.unwrap();
    assert_eq!(deep.name, "Projects/2024/Q1");
    assert_ne!(deep.uid_validity, 0);
    assert!(s.find_mailbox(acc, "Projects").await.unwrap().is_some());
    assert!(
        s.find_mailbox(acc, "Projects/2024")
            .await
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        s.create_mailbox(acc, "Projects/2024").await,
        Err(StoreError::Exists(_))
    ));
    let uni = s.create_mailbox(acc, "Entwürfe/日本").await.unwrap();
    assert_eq!(uni.name, "Entwürfe/日本");

    s.set_subscribed(acc, "Projects", true).await.unwrap();
    assert!(
        s.find_mailbox(acc, "Projects")
            .await
            .unwrap()
            .unwrap()
            .subscribed
    );
    s.set_subscribed(acc, "Projects", false).await.unwrap();
    assert!(
        !s.find_mailbox(acc, "Projects")
            .await
            .unwrap()
            .unwrap()
            .subscribed
    );
    assert!(s.set_subscribed(acc, "Missing", true).await.is_err());
}

/// RENAME moves inferiors; renaming INBOX moves its messages; DELETE; re-created mailboxes get a
/// new UIDVALIDITY.
pub async fn rename_and_delete(s: &dyn Store) {
    let ids = setup(s, "rename.conformance.test", &["j"]).await;
    let acc = ids[0];
    let work = s.create_mailbox(acc, "Work").await.unwrap();
    let child = s.create_mailbox(acc, "Work/Old").await.unwrap();
    s.append(work.id, msg("w"), &Flags::default(), 1)
        .await
        .unwrap();

    assert!(matches!(
        s.rename_mailbox(work.id, "Sent").await,
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        s.rename_mailbox(work.id, "Work/Sub").await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.rename_mailbox(work.id, "a//b").await,
        Err(StoreError::Invalid(_))
    ));
    s.rename_mailbox(work.id, "Archive/Work").await.unwrap();
    let moved = s.mailbox(work.id).await.unwrap();
    assert_eq!(moved.name, "Archive/Work");
    assert_eq!(moved.messages, 1);
    assert_eq!(s.mailbox(child.id).await.unwrap().name, "Archive/Work/Old");
    assert!(s.find_mailbox(acc, "Work").await.unwrap().is_none());

    // Re-creating a name gives a different UIDVALIDITY (RFC 9051 §2.3.1.1).
    let again = s.create_mailbox(acc, "Work").await.unwrap();
    assert_ne!(again.uid_validity, work.uid_validity);
    s.delete_mailbox(again.id).await.unwrap();
    let third = s.create_mailbox(acc, "Work").await.unwrap();
    assert_ne!(third.uid_validity, again.uid_validity);
    assert!(s.mailbox(again.id).await.is_err());

    // RFC 9051 §6.3.6: renaming INBOX moves its messages and leaves it empty.
    let ib = inbox(s, acc).await;
    s.deliver(msg("i1"), 1, &[acc]).await.unwrap();
    s.deliver(msg("i2"), 1, &[acc]).await.unwrap();
    s.rename_mailbox(ib, "Old Inbox").await.unwrap();
    let old = s
        .find_mailbox(acc, "Old Inbox")
        .await
        .unwrap()
        .expect("created");
    assert_eq!(old.messages, 2);
    let inbox_now = s.mailbox(ib).await.unwrap();
    assert_eq!((inbox_now.name.as_str(), inbox_now.messages), (INBOX, 0));
    assert_eq!(inbox_now.uid_next, 3, "INBOX UIDs are not reused");
    let st = s.deliver(msg("i3"), 1, &[acc]).await.unwrap();
    assert_eq!(st[0].uid, 3);

    assert!(matches!(
        s.delete_mailbox(ib).await,
        Err(StoreError::Invalid(_))
    ));
    let used = s.quota(acc).await.unwrap().used;
    let old_size = old.size;
    s.delete_mailbox(old.id).await.unwrap();
    assert_eq!(s.quota(acc).await.unwrap().used, used - old_size);
    assert!(matches!(
        s.delete_mailbox(old.id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// RFC 4467 §2.2: one access key per mailbox, kept until RESETKEY, gone with its mailbox
/// and account; keys of one account are independent of another's.
pub async fn urlauth_keys(s: &dyn Store) {
    let ids = setup(s, "urlauth.conformance.test", &["k", "l"]).await;
    let (acc, other) = (ids[0], ids[1]);
    let ib = inbox(s, acc).await;
    let box2 = s.create_mailbox(acc, "Keys").await.unwrap().id;
    let other_ib = inbox(s, other).await;

    assert_eq!(s.find_urlauth_key(ib).await.unwrap(), None);
    let k1 = s.urlauth_key(ib, &[1; 32]).await.unwrap();
    assert_eq!(k1, vec![1; 32]);
    // An existing key is kept, whatever fresh key is offered.
    assert_eq!(s.urlauth_key(ib, &[2; 32]).await.unwrap(), k1);
    assert_eq!(s.find_urlauth_key(ib).await.unwrap(), Some(k1.clone()));
    s.urlauth_key(box2, &[3; 32]).await.unwrap();
    s.urlauth_key(other_ib, &[4; 32]).await.unwrap();

    // RESETKEY of one mailbox.
    s.reset_urlauth_keys(acc, Some(ib)).await.unwrap();
    assert_eq!(s.find_urlauth_key(ib).await.unwrap(), None);
    assert_eq!(s.find_urlauth_key(box2).await.unwrap(), Some(vec![3; 32]));
    assert_eq!(s.urlauth_key(ib, &[5; 32]).await.unwrap(), vec![5; 32]);
    // Another account's mailbox is not touched by this account's RESETKEY.
    s.reset_urlauth_keys(acc, Some(other_ib)).await.unwrap();
    assert_eq!(
        s.find_urlauth_key(other_ib).await.unwrap(),
        Some(vec![4; 32])
    );
    // RESETKEY without a mailbox: every key of the account.
    s.reset_urlauth_keys(acc, None).await.unwrap();
    assert_eq!(s.find_urlauth_key(ib).await.unwrap(), None);
    assert_eq!(s.find_urlauth_key(box2).await.unwrap(), None);
    assert_eq!(
        s.find_urlauth_key(other_ib).await.unwrap(),
        Some(vec![4; 32])
    );

    // Keys go with their mailbox; a missing mailbox has none.
    s.urlauth_key(box2, &[6; 32]).await.unwrap();
    s.delete_mailbox(box2).await.unwrap();
    assert_eq!(s.find_urlauth_key(box2).await.unwrap(), None);
    assert!(matches!(
        s.urlauth_key(box2, &[7; 32]).await,
        Err(StoreError::NotFound(_))
    ));
    // And with their account.
    s.delete_user(&addr("l@urlauth.conformance.test"))
        .await
        .unwrap();
    assert_eq!(s.find_urlauth_key(other_ib).await.unwrap(), None);
}

/// Subscriptions are names (RFC 9051 §6.3.7): made for an existing mailbox, they outlive it
/// (DELETE, RENAME) and can be removed after it is gone.
pub async fn subscriptions(s: &dyn Store) {
    let ids = setup(s, "subs.conformance.test", &["k", "l"]).await;
    let acc = ids[0];
    // New accounts are subscribed to their default mailboxes.
    let mut defaults: Vec<String> = DEFAULT_MAILBOXES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    defaults.sort();
    assert_eq!(s.list_subscriptions(acc).await.unwrap(), defaults);
    let subscribed = async |name: &str| {
        s.find_mailbox(acc, name)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{name} exists"))
            .subscribed
    };
    s.create_mailbox(acc, "Work/Old").await.unwrap();
    s.set_subscribed(acc, "Work/Old", true).await.unwrap();
    s.set_subscribed(acc, "Work/Old", true).await.unwrap();
    assert!(subscribed("Work/Old").await);
    assert!(!subscribed("Work").await);
    assert!(matches!(
        s.set_subscribed(acc, "Missing", true).await,
        Err(StoreError::NotFound(_))
    ));
    // The subscription outlives its mailbox, and a mailbox created again under the name is
    // subscribed.
    let old = s.find_mailbox(acc, "Work/Old").await.unwrap().unwrap();
    s.delete_mailbox(old.id).await.unwrap();
    let subs = s.list_subscriptions(acc).await.unwrap();
    assert!(subs.contains(&"Work/Old".to_string()), "{subs:?}");
    s.create_mailbox(acc, "Work/Old").await.unwrap();
    assert!(subscribed("Work/Old").await);
    // RENAME leaves subscriptions with the old names.
    s.set_subscribed(acc, "Work", true).await.unwrap();
    let work = s.find_mailbox(acc, "Work").await.unwrap().unwrap();
    s.rename_mailbox(work.id, "Job").await.unwrap();
    let subs = s.list_subscriptions(acc).await.unwrap();
    assert!(subs.contains(&"Work".to_string()), "{subs:?}");
    assert!(subs.contains(&"Work/Old".to_string()), "{subs:?}");
    assert!(!subs.iter().any(|n| n.starts_with("Job")), "{subs:?}");
    assert!(!subscribed("Job").await);
    // Unsubscribing names whose mailboxes are gone; a name not subscribed is NotFound.
    s.set_subscribed(acc, "Work", false).await.unwrap();
    s.set_subscribed(acc, "Work/Old", false).await.unwrap();
    assert!(matches!(
        s.set_subscribed(acc, "Work", false).await,
        Err(StoreError::NotFound(_))
    ));
    // INBOX in any case is INBOX.
    s.set_subscribed(acc, "inbox", false).await.unwrap();
    assert!(!subscribed(INBOX).await);
    s.set_subscribed(acc, "Inbox", true).await.unwrap();
    assert!(
        s.list_subscriptions(acc)
            .await
            .unwrap()
            .contains(&INBOX.to_string())
    );
    assert_eq!(s.list_subscriptions(acc).await.unwrap(), defaults);
    // Listing without counts gives the same mailboxes.
    let full = s.list_mailboxes(acc).await.unwrap();
    let brief = s.lookup_mailboxes(acc).await.unwrap();
    let key = |m: &crate::MailboxInfo| (m.id, m.name.clone(), m.subscribed, m.special_use);
    assert_eq!(
        full.iter().map(key).collect::<Vec<_>>(),
        brief.iter().map(key).collect::<Vec<_>>()
    );
    // Per account, and gone with the account.
    assert_eq!(s.list_subscriptions(ids[1]).await.unwrap(), defaults);
    s.delete_user(&addr("l@subs.conformance.test"))
        .await
        .unwrap();
    assert!(s.list_subscriptions(ids[1]).await.unwrap().is_empty());
}

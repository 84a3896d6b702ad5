//! The backend-independent conformance suite (cargo feature `conformance`).
//!
//! Every backend's tests call [`run_all`] (or the single checks) with a fresh, empty store. Each
//! check creates its own domain, so checks may share one store and run in any order. The checks
//! assert the trait contract as the protocol crates rely on it; panics are the failures.

use std::sync::Arc;
use std::time::Duration;

use mail_types::{Address, Domain};
use tokio::io::AsyncReadExt;
use tokio::sync::broadcast;

use crate::{
    AccountId, Change, ChangeEvent, DEFAULT_MAILBOXES, FlagOp, Flags, INBOX, MailboxId, SpecialUse,
    Store, StoreError, SystemFlags,
};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

fn addr(s: &str) -> Address {
    Address::parse(s).expect("test address")
}

fn dom(s: &str) -> Domain {
    Domain::parse(s).expect("test domain")
}

fn msg(body: &str) -> Arc<Vec<u8>> {
    Arc::new(format!("Subject: test\r\n\r\n{body}\r\n").into_bytes())
}

/// Creates `domain` and the users `local@domain` for each of `locals`.
async fn setup(store: &dyn Store, domain: &str, locals: &[&str]) -> Vec<AccountId> {
    store.add_domain(&dom(domain)).await.expect("add_domain");
    let mut ids = Vec::new();
    for l in locals {
        let id = store
            .add_user(&addr(&format!("{l}@{domain}")), HASH)
            .await
            .expect("add_user");
        ids.push(id);
    }
    ids
}

async fn inbox(store: &dyn Store, account: AccountId) -> MailboxId {
    store
        .find_mailbox(account, INBOX)
        .await
        .expect("find_mailbox")
        .expect("INBOX exists")
        .id
}

/// The next event, failing after a few seconds.
async fn next_event(rx: &mut broadcast::Receiver<ChangeEvent>) -> ChangeEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("event within 5 s")
        .expect("event channel open")
}

/// Runs every check against `store`.
pub async fn run_all(store: Arc<dyn Store>) {
    let s = store.as_ref();
    domains_and_users(s).await;
    aliases_and_catch_all(s).await;
    default_mailboxes(s).await;
    delivery_uids_and_dedup(s).await;
    append_and_blobs(s).await;
    flags(s).await;
    copy_and_expunge(s).await;
    mailbox_names(s).await;
    rename_and_delete(s).await;
    change_events(s).await;
    maildrop_lock(s).await;
}

/// Domains and accounts: existence rules, canonical addresses, refusal to delete a used domain.
pub async fn domains_and_users(s: &dyn Store) {
    let users_before = s.user_count().await.unwrap();
    let d = dom("Users.Conformance.Test");
    assert!(!s.is_local_domain(&d).await.unwrap());
    assert!(
        matches!(
            s.add_user(&addr("a@users.conformance.test"), HASH).await,
            Err(StoreError::NotFound(_))
        ),
        "add_user needs the domain"
    );
    s.add_domain(&d).await.unwrap();
    assert!(matches!(s.add_domain(&d).await, Err(StoreError::Exists(_))));
    assert!(
        s.is_local_domain(&dom("USERS.conformance.TEST"))
            .await
            .unwrap()
    );
    assert!(s.list_domains().await.unwrap().contains(&d));

    let id = s
        .add_user(&addr("Alice@Users.Conformance.Test"), HASH)
        .await
        .unwrap();
    assert!(matches!(
        s.add_user(&addr("alice@users.conformance.test"), HASH)
            .await,
        Err(StoreError::Exists(_))
    ));
    let found = s
        .find_user(&addr("ALICE@users.conformance.test"))
        .await
        .unwrap()
        .expect("found case-insensitively");
    assert_eq!(found.id, id);
    assert_eq!(found.address.to_string(), "alice@users.conformance.test");
    assert_eq!(found.password_hash, HASH);
    assert_eq!(s.user_count().await.unwrap(), users_before + 1);
    assert!(s.list_users().await.unwrap().iter().any(|u| u.id == id));

    s.set_password(&addr("alice@users.conformance.test"), "$argon2id$new")
        .await
        .unwrap();
    let found = s
        .find_user(&addr("alice@users.conformance.test"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.password_hash, "$argon2id$new");
    assert!(matches!(
        s.set_password(&addr("nobody@users.conformance.test"), HASH)
            .await,
        Err(StoreError::NotFound(_))
    ));

    assert!(matches!(
        s.delete_domain(&d).await,
        Err(StoreError::Invalid(_))
    ));
    s.delete_user(&addr("alice@users.conformance.test"))
        .await
        .unwrap();
    assert!(
        s.find_user(&addr("alice@users.conformance.test"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        s.delete_user(&addr("alice@users.conformance.test")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.user_count().await.unwrap(), users_before);
    s.delete_domain(&d).await.unwrap();
    assert!(!s.is_local_domain(&d).await.unwrap());
    assert!(matches!(
        s.delete_domain(&d).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Aliases, catch-all, and the order user → alias → catch-all.
pub async fn aliases_and_catch_all(s: &dyn Store) {
    let d = "alias.conformance.test";
    let ids = setup(s, d, &["bob", "carol"]).await;
    let (bob, carol) = (ids[0], ids[1]);
    let a = |l: &str| addr(&format!("{l}@{d}"));

    assert_eq!(s.resolve_recipient(&a("bob")).await.unwrap(), vec![bob]);
    assert_eq!(s.resolve_recipient(&a("BOB")).await.unwrap(), vec![bob]);
    assert!(s.resolve_recipient(&a("nobody")).await.unwrap().is_empty());

    assert!(matches!(
        s.add_alias(&format!("team@{d}"), &[a("ghost")]).await,
        Err(StoreError::NotFound(_))
    ));
    s.add_alias(&format!("Team@{d}"), &[a("bob"), a("carol")])
        .await
        .unwrap();
    assert_eq!(
        s.resolve_recipient(&a("team")).await.unwrap(),
        vec![bob, carol]
    );
    // Replacing an alias replaces its targets.
    s.add_alias(&format!("team@{d}"), &[a("carol")])
        .await
        .unwrap();
    assert_eq!(s.resolve_recipient(&a("team")).await.unwrap(), vec![carol]);

    s.add_alias(&format!("@{d}"), &[a("bob")]).await.unwrap();
    assert_eq!(
        s.resolve_recipient(&a("anything")).await.unwrap(),
        vec![bob]
    );
    // The user itself and explicit aliases win over the catch-all.
    assert_eq!(s.resolve_recipient(&a("carol")).await.unwrap(), vec![carol]);
    assert_eq!(s.resolve_recipient(&a("team")).await.unwrap(), vec![carol]);
    // Another domain's catch-all does not apply.
    assert!(
        s.resolve_recipient(&addr("anything@elsewhere.conformance.test"))
            .await
            .unwrap()
            .is_empty()
    );

    let aliases = s.list_aliases().await.unwrap();
    let team = aliases
        .iter()
        .find(|x| x.source == format!("team@{d}"))
        .expect("team alias listed");
    assert_eq!(team.targets, vec![a("carol")]);
    assert!(aliases.iter().any(|x| x.source == format!("@{d}")));

    assert!(matches!(
        s.delete_domain(&dom(d)).await,
        Err(StoreError::Invalid(_))
    ));
    s.delete_alias(&format!("@{d}")).await.unwrap();
    assert!(
        s.resolve_recipient(&a("anything"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        s.delete_alias(&format!("@{d}")).await,
        Err(StoreError::NotFound(_))
    ));
}

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
        assert_eq!(m.account, ids[0]);
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
    assert_eq!(stored[0].account, e1);
    assert_eq!(stored[1].account, e2);
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
    assert!(s.deliver(msg("x"), 1, &[AccountId::MAX]).await.is_err());
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
        s.append(MailboxId::MAX, msg("x"), &Flags::default(), 1)
            .await,
        Err(StoreError::NotFound(_))
    ));
    let unknown = crate::BlobId("0".repeat(64));
    assert!(matches!(
        s.open_blob(&unknown).await,
        Err(StoreError::NotFound(_) | StoreError::Expunged)
    ));
    let evil = crate::BlobId("../../yubin.db".into());
    assert!(s.open_blob(&evil).await.is_err());
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

/// Events arrive after delivery, flag changes, expunge and mailbox creation, per account.
pub async fn change_events(s: &dyn Store) {
    let ids = setup(s, "events.conformance.test", &["k", "l"]).await;
    let acc = ids[0];
    let mut rx = s.subscribe(acc);
    let mut other = s.subscribe(ids[1]);
    let ib = inbox(s, acc).await;

    let st = s.deliver(msg("ev"), 1, &[acc]).await.unwrap();
    let ev = next_event(&mut rx).await;
    assert_eq!((ev.account, ev.mailbox), (acc, ib));
    let Change::NewMessage { uid, modseq } = ev.change else {
        panic!("expected NewMessage, got {ev:?}")
    };
    assert_eq!(uid, st[0].uid);
    assert_eq!(modseq, s.mailbox(ib).await.unwrap().highest_modseq);

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
        (created.id, Change::MailboxCreated)
    );
    let heard = other.try_recv();
    assert!(heard.is_err(), "other accounts hear nothing: {heard:?}");
}

/// RFC 1939 §8: one maildrop lock per account.
pub async fn maildrop_lock(s: &dyn Store) {
    let ids = setup(s, "lock.conformance.test", &["m", "n"]).await;
    let lock = s.lock_maildrop(ids[0]).await.unwrap();
    assert!(matches!(
        s.lock_maildrop(ids[0]).await,
        Err(StoreError::InUse)
    ));
    let other = s.lock_maildrop(ids[1]).await.unwrap();
    drop(lock);
    let again = s.lock_maildrop(ids[0]).await.unwrap();
    drop((again, other));
}

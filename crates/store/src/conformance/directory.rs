//! Conformance checks for the directory: domains, accounts, aliases.

use super::{HASH, addr, dom, setup};
use crate::{Store, StoreError};

/// A batch of new accounts (an import): created with their default mailboxes, existing
/// addresses and unknown domains reported in order, nothing else changed.
pub async fn add_users_in_batches(s: &dyn Store) {
    s.add_domain(&dom("batch.conformance.test")).await.unwrap();
    let old = s
        .add_user(&addr("old@batch.conformance.test"), "$argon2id$old")
        .await
        .unwrap();
    let batch: Vec<_> = [
        ("a@batch.conformance.test", "{SSHA}x"),
        ("OLD@batch.conformance.test", "$6$new"),
        ("b@nowhere.conformance.test", "$6$b"),
        ("c@batch.conformance.test", "$2y$05$c"),
    ]
    .iter()
    .map(|(a, h)| (addr(a), h.to_string()))
    .collect();
    let out = s.add_users(&batch).await.unwrap();
    assert_eq!(out.len(), 4);
    let crate::NewUserOutcome::Created(a) = out[0] else {
        panic!("{out:?}");
    };
    assert_eq!(out[1], crate::NewUserOutcome::Exists);
    assert_eq!(out[2], crate::NewUserOutcome::NoDomain);
    assert!(matches!(out[3], crate::NewUserOutcome::Created(_)));
    let found = s
        .find_user(&addr("a@batch.conformance.test"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, found.password_hash.as_str()), (a, "{SSHA}x"));
    let old_now = s
        .find_user(&addr("old@batch.conformance.test"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (old_now.id, old_now.password_hash.as_str()),
        (old, "$argon2id$old")
    );
    // The same default mailboxes as add_user makes.
    let names = |id| async move {
        let mut v: Vec<String> = s
            .list_mailboxes(id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(a).await, names(old).await);
    assert!(names(a).await.contains(&"INBOX".to_string()));
    assert_eq!(s.add_users(&[]).await.unwrap(), vec![]);
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
    // Page by page, the same accounts in the same order as the whole list.
    let whole: Vec<_> = s
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.id)
        .collect();
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = s.list_users_after(after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.address.clone());
        paged.extend(page.iter().map(|u| u.id));
    }
    assert_eq!(paged, whole);
    assert!(
        s.list_users_after(Some(&addr("alice@users.conformance.test")), 1000)
            .await
            .unwrap()
            .iter()
            .all(|u| u.address.to_string().as_str() > "alice@users.conformance.test")
    );

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

    // SCRAM credentials: stored, returned, and cleared by a new password.
    assert_eq!(found.scram, None);
    let alice = addr("alice@users.conformance.test");
    s.set_scram(&alice, "SCRAM-SHA-256$4096:c2FsdA==$a:b")
        .await
        .unwrap();
    let found = s.find_user(&alice).await.unwrap().unwrap();
    assert_eq!(
        found.scram.as_deref(),
        Some("SCRAM-SHA-256$4096:c2FsdA==$a:b")
    );
    s.set_password(&alice, "$argon2id$newer").await.unwrap();
    assert_eq!(s.find_user(&alice).await.unwrap().unwrap().scram, None);
    // An upgrade after a login replaces the hash only if it is still the one verified.
    assert!(
        !s.replace_password(&alice, "{SSHA}old", "$argon2id$up", Some("SCRAM-SHA-256$x"))
            .await
            .unwrap()
    );
    let found = s.find_user(&alice).await.unwrap().unwrap();
    assert_eq!(
        (found.password_hash.as_str(), found.scram),
        ("$argon2id$newer", None)
    );
    assert!(
        s.replace_password(
            &alice,
            "$argon2id$newer",
            "$argon2id$up",
            Some("SCRAM-SHA-256$x")
        )
        .await
        .unwrap()
    );
    let found = s.find_user(&alice).await.unwrap().unwrap();
    assert_eq!(found.password_hash, "$argon2id$up");
    assert_eq!(found.scram.as_deref(), Some("SCRAM-SHA-256$x"));
    assert!(
        !s.replace_password(&addr("nobody@users.conformance.test"), "a", "b", None)
            .await
            .unwrap()
    );
    s.set_password(&alice, "$argon2id$newer").await.unwrap();
    assert!(matches!(
        s.set_scram(&addr("nobody@users.conformance.test"), "x")
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

/// The account's own POP3 retention choice: unset by default, set, changed, cleared, listed
/// for the accounts that have one, and `NotFound` for a missing user.
pub async fn pop3_expire_choice(s: &dyn Store) {
    use crate::Pop3Expire;
    setup(s, "pop3choice.conformance.test", &["ann", "ben"]).await;
    let ann = addr("ann@pop3choice.conformance.test");
    let ben = addr("Ben@POP3choice.conformance.test");
    assert_eq!(s.pop3_expire(&ann).await.unwrap(), None);
    s.set_pop3_expire(&ann, Some(Pop3Expire::Days(7)))
        .await
        .unwrap();
    s.set_pop3_expire(&ben, Some(Pop3Expire::Never))
        .await
        .unwrap();
    assert_eq!(
        s.pop3_expire(&ann).await.unwrap(),
        Some(Pop3Expire::Days(7))
    );
    assert_eq!(s.pop3_expire(&ben).await.unwrap(), Some(Pop3Expire::Never));
    s.set_pop3_expire(&ann, Some(Pop3Expire::Days(0)))
        .await
        .unwrap();
    assert_eq!(
        s.pop3_expire(&ann).await.unwrap(),
        Some(Pop3Expire::Days(0))
    );
    let mine = |all: Vec<(mail_types::Address, Pop3Expire)>| {
        all.into_iter()
            .filter(|(a, _)| a.domain().as_str() == "pop3choice.conformance.test")
            .map(|(a, c)| (a.to_string(), c))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        mine(s.pop3_expire_choices().await.unwrap()),
        vec![
            (
                "ann@pop3choice.conformance.test".to_string(),
                Pop3Expire::Days(0)
            ),
            (
                "ben@pop3choice.conformance.test".to_string(),
                Pop3Expire::Never
            ),
        ]
    );
    s.set_pop3_expire(&ann, None).await.unwrap();
    assert_eq!(s.pop3_expire(&ann).await.unwrap(), None);
    assert_eq!(
        mine(s.pop3_expire_choices().await.unwrap()),
        vec![(
            "ben@pop3choice.conformance.test".to_string(),
            Pop3Expire::Never
        )]
    );
    let nobody = addr("nobody@pop3choice.conformance.test");
    assert!(matches!(
        s.pop3_expire(&nobody).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.set_pop3_expire(&nobody, Some(Pop3Expire::Never)).await,
        Err(StoreError::NotFound(_))
    ));
}

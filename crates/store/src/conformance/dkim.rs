//! Conformance checks for DKIM signing keys ([`crate::DkimKeyStore`]): one set of keys for every
//! process and node on the store.

use crate::{DkimAlgorithm, DkimKey, DkimKeyStore, StoreError};

/// A key record; the PEM is a marker, not a real key (the store does not parse it).
fn key(domain: &str, selector: &str, algorithm: DkimAlgorithm, created_at: i64) -> DkimKey {
    DkimKey {
        domain: domain.into(),
        selector: selector.into(),
        algorithm,
        private_key_pem: format!(
            "-----BEGIN PRIVATE KEY-----\n{domain}/{selector}/{created_at}\n-----END PRIVATE KEY-----\n"
        ),
        created_at,
    }
}

fn names(keys: &[DkimKey]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| (k.domain.clone(), k.selector.clone()))
        .collect()
}

/// Add (names lower-cased), refuse a duplicate, list, pick the signing key, remove.
pub async fn dkim_keys(s: &dyn DkimKeyStore) {
    let old = key("Sign.TEST", "Old", DkimAlgorithm::Rsa, 1_000);
    s.add_dkim_key(&old).await.unwrap();
    let stored = s.dkim_keys(Some("sign.test")).await.unwrap();
    assert_eq!(
        stored,
        vec![old.canonical()],
        "names lower-cased, the rest kept"
    );
    assert_eq!(stored[0].private_key_pem, old.private_key_pem);

    // The same (domain, selector), in any case, is refused and the first key kept.
    let again = key("sign.test", "OLD", DkimAlgorithm::Ed25519, 5_000);
    match s.add_dkim_key(&again).await {
        Err(StoreError::Exists(_)) => {}
        other => panic!("a duplicate selector must be refused with Exists, got {other:?}"),
    }
    assert_eq!(s.dkim_keys(Some("sign.test")).await.unwrap(), stored);

    // Two newer keys, the last two in the same second, and one of another domain.
    s.add_dkim_key(&key("sign.test", "new", DkimAlgorithm::Ed25519, 2_000))
        .await
        .unwrap();
    s.add_dkim_key(&key("sign.test", "a-later", DkimAlgorithm::Ed25519, 2_000))
        .await
        .unwrap();
    s.add_dkim_key(&key("other-sign.test", "x", DkimAlgorithm::Rsa, 9_000))
        .await
        .unwrap();

    let one = s.dkim_keys(Some("SIGN.test")).await.unwrap();
    assert_eq!(
        names(&one),
        [
            ("sign.test", "old"),
            ("sign.test", "new"),
            ("sign.test", "a-later")
        ]
        .map(|(d, s)| (d.to_string(), s.to_string())),
        "a domain's keys, oldest first (stored order within a second)"
    );
    let all = s.dkim_keys(None).await.unwrap();
    let ours: Vec<_> = names(&all)
        .into_iter()
        .filter(|(d, _)| d.ends_with("sign.test"))
        .collect();
    assert_eq!(
        ours,
        [
            ("other-sign.test", "x"),
            ("sign.test", "old"),
            ("sign.test", "new"),
            ("sign.test", "a-later")
        ]
        .map(|(d, s)| (d.to_string(), s.to_string())),
        "all keys, by domain"
    );
    assert!(s.dkim_keys(Some("none.test")).await.unwrap().is_empty());

    // The signing key: the newest, of a second the one stored last ...
    let newest = s
        .dkim_signing_key("sign.test", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(newest.selector, "a-later");
    assert_eq!(newest.algorithm, DkimAlgorithm::Ed25519);
    assert_eq!(
        newest.private_key_pem,
        key("sign.test", "a-later", DkimAlgorithm::Ed25519, 2_000).private_key_pem
    );
    // ... or the configured selector's, in any case; none for an unknown selector or domain.
    let configured = s
        .dkim_signing_key("Sign.Test.", Some("OLD"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(configured, old.canonical());
    assert_eq!(
        s.dkim_signing_key("sign.test", Some("gone")).await.unwrap(),
        None
    );
    assert_eq!(s.dkim_signing_key("none.test", None).await.unwrap(), None);

    // Remove: the next newest signs; removing again is NotFound.
    s.remove_dkim_key("sign.test", "A-Later").await.unwrap();
    assert_eq!(
        s.dkim_signing_key("sign.test", None)
            .await
            .unwrap()
            .unwrap()
            .selector,
        "new"
    );
    match s.remove_dkim_key("sign.test", "a-later").await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("removing a missing key must be NotFound, got {other:?}"),
    }
    // The selector is free again.
    s.add_dkim_key(&key("sign.test", "a-later", DkimAlgorithm::Rsa, 3_000))
        .await
        .unwrap();
    assert_eq!(
        s.dkim_signing_key("sign.test", None)
            .await
            .unwrap()
            .unwrap()
            .algorithm,
        DkimAlgorithm::Rsa
    );
}

/// A key added through one handle (process, node) is read and refused as a duplicate through
/// the other, and a removal is seen by both.
pub async fn dkim_keys_across(a: &dyn DkimKeyStore, b: &dyn DkimKeyStore) {
    let k = key("across-sign.test", "s1", DkimAlgorithm::Ed25519, 100);
    a.add_dkim_key(&k).await.unwrap();
    assert_eq!(
        b.dkim_signing_key("across-sign.test", None).await.unwrap(),
        Some(k.clone())
    );
    assert!(matches!(
        b.add_dkim_key(&k).await,
        Err(StoreError::Exists(_))
    ));
    b.remove_dkim_key("across-sign.test", "s1").await.unwrap();
    assert!(
        a.dkim_keys(Some("across-sign.test"))
            .await
            .unwrap()
            .is_empty()
    );
}

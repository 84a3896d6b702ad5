//! The signer against a real (embedded) store: keys from the store, the cache's refresh, the
//! configured selector, and the import of key files.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use store::{DkimAlgorithm, DkimKey, DkimKeyStore};

use super::*;

fn store() -> (tempfile::TempDir, Arc<dyn DkimKeyStore>) {
    let dir = tempfile::tempdir().unwrap();
    let s = store_sqlite::open(&dir.path().join("data")).unwrap();
    (dir, s)
}

async fn add(keys: &dyn DkimKeyStore, domain: &str, selector: &str, alg: DkimAlgorithm, at: i64) {
    let k = generate(alg).unwrap();
    keys.add_dkim_key(&DkimKey {
        domain: domain.into(),
        selector: selector.into(),
        algorithm: alg,
        private_key_pem: k.pem,
        created_at: at,
    })
    .await
    .unwrap();
}

/// The `s=` tag of a signature header.
fn selector_of(sig: &str) -> &str {
    sig.split("s=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .trim()
}

const MSG: &[u8] = b"From: Alice <alice@A.test>\r\nTo: b@b.test\r\nSubject: hi\r\n\r\nbody\r\n";

#[tokio::test]
async fn signs_with_the_newest_key_of_the_from_domain() {
    let (_dir, keys) = store();
    add(keys.as_ref(), "a.test", "old", DkimAlgorithm::Rsa, 100).await;
    add(keys.as_ref(), "a.test", "s1", DkimAlgorithm::Ed25519, 200).await;
    let signer = Signer::new(keys.clone(), BTreeMap::new(), Duration::from_secs(60));
    let sig = signer.sign(MSG).await.expect("signed");
    assert!(sig.starts_with("DKIM-Signature: "), "{sig}");
    assert!(
        sig.contains("d=a.test") && sig.contains("a=ed25519-sha256"),
        "{sig}"
    );
    assert_eq!(selector_of(&sig), "s1");
    assert!(sig.contains("c=relaxed/relaxed"), "{sig}");
    // From over-signed: listed twice in h=.
    let h: String = sig
        .split("h=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .replace([' ', '\r', '\n', '\t'], "");
    assert_eq!(h.to_ascii_lowercase().matches("from").count(), 2, "{h}");
    assert!(
        signer
            .sign(b"From: x@other.test\r\n\r\nb\r\n")
            .await
            .is_none()
    );
    assert!(
        signer
            .sign(b"Subject: no from\r\n\r\nb\r\n")
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_configured_selector_wins_and_a_missing_one_signs_nothing() {
    let (_dir, keys) = store();
    add(keys.as_ref(), "a.test", "old", DkimAlgorithm::Rsa, 100).await;
    add(keys.as_ref(), "a.test", "new", DkimAlgorithm::Ed25519, 200).await;
    let selectors = BTreeMap::from([
        ("A.test".to_string(), "OLD".to_string()),
        ("c.test".to_string(), "gone".to_string()),
    ]);
    add(
        keys.as_ref(),
        "c.test",
        "other",
        DkimAlgorithm::Ed25519,
        300,
    )
    .await;
    let signer = Signer::new(keys.clone(), selectors, Duration::from_secs(60));
    let sig = signer.sign(MSG).await.expect("signed");
    assert_eq!(selector_of(&sig), "old");
    assert!(sig.contains("a=rsa-sha256"), "{sig}");
    assert!(signer.sign(b"From: c@c.test\r\n\r\nb\r\n").await.is_none());
}

/// Keys are read once and then served from memory; a new key of a domain without one is
/// picked up after MISS_REFRESH, a replaced key after the refresh interval.
#[tokio::test]
async fn keys_added_later_are_used_without_a_restart() {
    let (_dir, keys) = store();
    let refresh = Duration::from_millis(300);
    let signer = Signer::new(keys.clone(), BTreeMap::new(), refresh);
    assert!(signer.sign(MSG).await.is_none());
    add(keys.as_ref(), "a.test", "s1", DkimAlgorithm::Ed25519, 100).await;
    // Within the refresh interval the cache answers (no store read per message) ...
    assert!(signer.sign(MSG).await.is_none());
    tokio::time::sleep(refresh).await;
    // ... after it, the new key signs.
    let sig = signer.sign(MSG).await.expect("signed after the refresh");
    assert_eq!(selector_of(&sig), "s1");
    // A newer key takes over after the next refresh; until then the known one signs.
    add(keys.as_ref(), "a.test", "s2", DkimAlgorithm::Ed25519, 200).await;
    assert_eq!(selector_of(&signer.sign(MSG).await.unwrap()), "s1");
    tokio::time::sleep(refresh).await;
    assert_eq!(selector_of(&signer.sign(MSG).await.unwrap()), "s2");
    // A removed key stops signing after the next refresh.
    keys.remove_dkim_key("a.test", "s2").await.unwrap();
    keys.remove_dkim_key("a.test", "s1").await.unwrap();
    tokio::time::sleep(refresh).await;
    assert!(signer.sign(MSG).await.is_none());
}

#[tokio::test]
async fn key_files_are_imported_once_with_their_age() {
    let (dir, keys) = store();
    let files = dir.path().join("dkim");
    let write = |domain: &str, selector: &str, pem: &str, age_secs: u64| {
        let d = files.join(domain);
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join(format!("{selector}.pem"));
        std::fs::write(&path, pem).unwrap();
        let t = std::time::SystemTime::now() - Duration::from_secs(age_secs);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(t)
            .unwrap();
        path
    };
    let older = generate(DkimAlgorithm::Rsa).unwrap();
    let newer = generate(DkimAlgorithm::Ed25519).unwrap();
    write("Example.COM", "older", &older.pem, 3600);
    write("example.com", "newer", &newer.pem, 60);
    write("example.com", "junk", "not a key", 10);
    std::fs::write(files.join("stray.pem"), "x").unwrap();
    // A selector the store has already, with another key: the store's stays.
    add(keys.as_ref(), "other.test", "s", DkimAlgorithm::Ed25519, 1).await;
    let clash = write("other.test", "s", &newer.pem, 10);

    let imported = import_key_files(&files, keys.as_ref()).await.unwrap();
    let names: Vec<_> = imported
        .iter()
        .map(|f| (f.domain.as_str(), f.selector.as_str()))
        .collect();
    assert_eq!(names, [("example.com", "newer"), ("example.com", "older")]);
    let stored = keys.dkim_keys(Some("example.com")).await.unwrap();
    assert_eq!(stored.len(), 2);
    let (o, n) = (&stored[0], &stored[1]);
    assert_eq!(
        (o.selector.as_str(), o.algorithm),
        ("older", DkimAlgorithm::Rsa)
    );
    assert_eq!(
        (n.selector.as_str(), n.algorithm),
        ("newer", DkimAlgorithm::Ed25519)
    );
    assert_eq!(n.private_key_pem, newer.pem);
    assert!(
        n.created_at > o.created_at,
        "file times kept: the newest file still signs"
    );
    assert_ne!(
        keys.dkim_signing_key("other.test", None)
            .await
            .unwrap()
            .unwrap()
            .private_key_pem,
        newer.pem
    );
    // The files stay; a second run imports nothing.
    assert!(clash.is_file() && files.join("example.com/newer.pem").is_file());
    assert!(
        import_key_files(&files, keys.as_ref())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(keys.dkim_keys(None).await.unwrap().len(), 3);
    // No directory: nothing to do.
    assert!(
        import_key_files(&dir.path().join("none"), keys.as_ref())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Many deliveries signing at once (on the blocking pool, a few at a time): every one gets
/// its signature, from one parse of the key (the same key signs, the body hash differs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_signing_on_the_blocking_pool() {
    let (_dir, keys) = store();
    add(keys.as_ref(), "a.test", "s1", DkimAlgorithm::Rsa, 100).await;
    let signer = Arc::new(Signer::new(keys, BTreeMap::new(), Duration::from_secs(60)));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let signer = Arc::clone(&signer);
        tasks.push(tokio::spawn(async move {
            let mut msg = MSG.to_vec();
            msg.extend(format!("line {i}\r\n").repeat(1000).into_bytes());
            signer.sign_shared(Arc::new(msg)).await
        }));
    }
    let mut hashes = std::collections::HashSet::new();
    for t in tasks {
        let sig = t.await.unwrap().expect("signed");
        assert_eq!(selector_of(&sig), "s1");
        let bh = sig.split("bh=").nth(1).unwrap().split(';').next().unwrap();
        hashes.insert(bh.to_string());
    }
    assert_eq!(hashes.len(), 16, "each message hashed on its own");
    assert_eq!(
        signer.signing.available_permits(),
        std::thread::available_parallelism().map_or(2, |n| n.get())
    );
}

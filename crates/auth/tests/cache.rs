//! The credential cache through `Authenticator::authenticate`, over a real store: a repeated
//! correct login skips argon2; wrong passwords, changed passwords and deleted accounts do not.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth::{AuthError, Authenticator, CacheConfig};
use mail_types::{Address, Domain};
use store::Directory;

const DELAY: Duration = Duration::from_millis(50);

struct Env {
    store: Arc<store_sqlite::SqliteStore>,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    store
        .add_domain(&Domain::parse("d.test").unwrap())
        .await
        .unwrap();
    store
        .add_user(&addr("a@d.test"), &auth::hash_password("pass"))
        .await
        .unwrap();
    Env { store, _dir: dir }
}

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

fn peer() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

async fn login(a: &Authenticator, user: &str, pass: &str) -> Result<store::AccountId, AuthError> {
    a.authenticate(user, pass, "test", peer())
        .await
        .map(|ok| ok.account)
}

#[tokio::test]
async fn repeated_login_skips_argon2_and_wrong_password_still_pays() {
    let env = env().await;
    let a = Authenticator::new(env.store.clone(), DELAY);
    let id = login(&a, "a@d.test", "pass").await.unwrap();
    assert_eq!(a.argon2_runs(), 1);
    for _ in 0..5 {
        assert_eq!(login(&a, "a@d.test", "pass").await, Ok(id));
    }
    assert_eq!(a.argon2_runs(), 1, "cached logins run no argon2");
    // The username is matched as the directory spells it (case-insensitive domain).
    assert_eq!(login(&a, "a@D.TEST", "pass").await, Ok(id));
    assert_eq!(a.argon2_runs(), 1);

    // A wrong password: full argon2 and the failure delay, every time.
    for wrong in ["pas", "Pass", "pass ", ""] {
        let t = Instant::now();
        assert_eq!(login(&a, "a@d.test", wrong).await, Err(AuthError::Invalid));
        assert!(t.elapsed() >= DELAY, "{wrong:?} answered without the delay");
    }
    assert_eq!(a.argon2_runs(), 5);
    // …and the right one still hits the cache afterwards.
    assert_eq!(login(&a, "a@d.test", "pass").await, Ok(id));
    assert_eq!(a.argon2_runs(), 5);
    // A clone (another listener) shares the cache.
    let b = a.clone();
    assert_eq!(login(&b, "a@d.test", "pass").await, Ok(id));
    assert_eq!(a.argon2_runs(), 5);
}

#[tokio::test]
async fn password_change_and_deletion_by_another_writer_take_effect_at_once() {
    let env = env().await;
    let a = Authenticator::new(env.store.clone(), DELAY);
    login(&a, "a@d.test", "pass").await.unwrap();
    login(&a, "a@d.test", "pass").await.unwrap();
    assert_eq!(a.argon2_runs(), 1);

    // What `yubin user passwd` does, without telling the authenticator.
    env.store
        .set_password(&addr("a@d.test"), &auth::hash_password("new"))
        .await
        .unwrap();
    assert_eq!(login(&a, "a@d.test", "pass").await, Err(AuthError::Invalid));
    assert_eq!(
        a.argon2_runs(),
        2,
        "the old password was checked with argon2"
    );
    login(&a, "a@d.test", "new").await.unwrap();
    login(&a, "a@d.test", "new").await.unwrap();
    assert_eq!(a.argon2_runs(), 3);

    // Setting the same password again gives a new salt, so a new hash: a miss, then cached.
    env.store
        .set_password(&addr("a@d.test"), &auth::hash_password("new"))
        .await
        .unwrap();
    login(&a, "a@d.test", "new").await.unwrap();
    assert_eq!(a.argon2_runs(), 4);

    // What `yubin user del` does.
    env.store.delete_user(&addr("a@d.test")).await.unwrap();
    assert_eq!(login(&a, "a@d.test", "new").await, Err(AuthError::Invalid));
    // Re-created with the same password: a new hash, so nothing cached applies.
    env.store
        .add_user(&addr("a@d.test"), &auth::hash_password("new"))
        .await
        .unwrap();
    let runs = a.argon2_runs();
    login(&a, "a@d.test", "new").await.unwrap();
    assert_eq!(a.argon2_runs(), runs + 1);
}

#[tokio::test]
async fn disabled_cache_runs_argon2_every_time() {
    let env = env().await;
    let a = Authenticator::new(env.store.clone(), DELAY).with_cache(CacheConfig::DISABLED);
    for _ in 0..3 {
        login(&a, "a@d.test", "pass").await.unwrap();
    }
    assert_eq!(a.argon2_runs(), 3);
}

#[tokio::test]
async fn entries_expire_after_the_ttl() {
    let env = env().await;
    let a = Authenticator::new(env.store.clone(), DELAY).with_cache(CacheConfig {
        ttl: Duration::from_millis(200),
        max_entries: 10,
    });
    login(&a, "a@d.test", "pass").await.unwrap();
    login(&a, "a@d.test", "pass").await.unwrap();
    assert_eq!(a.argon2_runs(), 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    login(&a, "a@d.test", "pass").await.unwrap();
    assert_eq!(a.argon2_runs(), 2);
}

#[tokio::test]
async fn unknown_users_are_never_cached() {
    let env = env().await;
    let a = Authenticator::new(env.store.clone(), DELAY);
    for _ in 0..2 {
        assert_eq!(
            login(&a, "nobody@d.test", "pass").await,
            Err(AuthError::Invalid)
        );
    }
    assert_eq!(a.argon2_runs(), 2);
}

//! The password-guessing defence on a real (embedded) store with an injected clock: delays grow
//! with failures, a threshold bans the address (durably: a second handle, like another process
//! or node, sees it), a success clears the address's counter, trusted networks are exempt, and
//! an account attacked from many addresses slows failures from them but not from its owner's.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use auth::{GuardPolicy, LoginGuard};
use store::LoginGuardStore;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn policy() -> GuardPolicy {
    GuardPolicy {
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(1600),
        max_failures: 10,
        window: Duration::from_secs(3600),
        ban: Duration::from_secs(600),
        burst_failures: 5,
        burst_window: Duration::from_secs(60),
        burst_ban: Duration::from_secs(120),
        refresh: Duration::from_secs(5),
        trusted: server_kit::TrustedNetworks::parse(&["10.0.0.0/8"]).unwrap(),
        ..GuardPolicy::default()
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn LoginGuardStore>,
    time: Arc<AtomicI64>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn LoginGuardStore> = store_sqlite::open(dir.path()).unwrap();
        Fixture {
            _dir: dir,
            store,
            time: Arc::new(AtomicI64::new(1_800_000_000)),
        }
    }

    fn guard(&self, policy: GuardPolicy) -> LoginGuard {
        let time = Arc::clone(&self.time);
        LoginGuard::with_clock(
            Arc::clone(&self.store),
            policy,
            Arc::new(move || time.load(Ordering::SeqCst)),
        )
    }

    fn advance(&self, secs: i64) {
        self.time.fetch_add(secs, Ordering::SeqCst);
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test]
async fn delays_grow_then_a_burst_bans_until_it_expires() {
    let f = Fixture::new();
    let g = f.guard(policy());
    let attacker = ip("192.0.2.1");
    let mut delays = Vec::new();
    for _ in 0..4 {
        delays.push(ms(g.failed(attacker, None, "test").await));
        f.advance(1);
    }
    assert_eq!(delays, [100, 100, 100, 200]);
    assert!(g.banned(attacker).await.is_none());
    // The fifth failure within the burst window bans for burst_ban.
    assert_eq!(ms(g.failed(attacker, None, "test").await), 400);
    let ban = g.banned(attacker).await.expect("banned");
    assert_eq!(
        (ban.reason.as_str(), ban.until),
        ("burst", ban.created + 120)
    );
    // Durable and shared: a second guard on the same store (another process) sees it.
    let other = f.guard(policy());
    assert_eq!(other.banned(attacker).await, Some(ban.clone()));
    // Another address is not affected.
    assert!(g.banned(ip("192.0.2.2")).await.is_none());
    // The ban ends at `until` (the view is reread after the refresh interval).
    f.advance(ban.until - f.time.load(Ordering::SeqCst) - 1);
    assert!(g.banned(attacker).await.is_some());
    f.advance(1);
    assert!(g.banned(attacker).await.is_none());
    assert!(other.banned(attacker).await.is_none());
}

#[tokio::test]
async fn the_daily_threshold_bans_for_longer_and_a_success_resets_the_counter() {
    let f = Fixture::new();
    let g = f.guard(policy());
    let client = ip("2001:db8:1:2::7");
    // Slow failures (never a burst): 9 pass, the 10th within the window bans for `ban`.
    for n in 1..=9 {
        let d = g.failed(client, None, "test").await;
        assert_eq!(d, policy().delay(n));
        f.advance(61);
    }
    assert!(g.banned(client).await.is_none());
    // A success clears the counter: the next failure counts from 1 again.
    g.succeeded(client, "alice@example.test").await;
    assert_eq!(ms(g.failed(client, None, "test").await), 100);
    for _ in 0..9 {
        f.advance(61);
        g.failed(client, None, "test").await;
    }
    let ban = g.banned(client).await.expect("banned");
    assert_eq!(ban.reason, "failures");
    assert_eq!(ban.until - ban.created, 600);
    // IPv6 addresses count by /64: a neighbour address is banned too.
    assert!(g.banned(ip("2001:db8:1:2::8")).await.is_some());
    assert!(g.banned(ip("2001:db8:1:3::7")).await.is_none());
}

#[tokio::test]
async fn a_success_on_another_node_clears_failures_counted_here() {
    let f = Fixture::new();
    let (a, b) = (f.guard(policy()), f.guard(policy()));
    let client = ip("198.51.100.9");
    // b learns of the failures counted by a at its next refresh.
    assert!(b.banned(client).await.is_none());
    for _ in 0..3 {
        a.failed(client, None, "test").await;
    }
    f.advance(5);
    assert!(b.banned(client).await.is_none());
    b.succeeded(client, "alice@example.test").await;
    assert_eq!(
        ms(a.failed(client, None, "test").await),
        100,
        "counter was cleared"
    );
}

#[tokio::test]
async fn trusted_networks_are_neither_counted_nor_banned() {
    let f = Fixture::new();
    let g = f.guard(policy());
    let inside = ip("10.1.2.3");
    for _ in 0..20 {
        assert_eq!(ms(g.failed(inside, None, "test").await), 100);
    }
    assert!(g.banned(inside).await.is_none());
    // Even a ban made by hand does not apply.
    g.ban(inside, Duration::from_secs(60), "manual")
        .await
        .unwrap();
    assert!(g.banned(inside).await.is_none());
    assert_eq!(f.store.active_bans(0).await.unwrap().len(), 1);
    // Off entirely: nothing is counted.
    let off = f.guard(GuardPolicy {
        enabled: false,
        ..policy()
    });
    for _ in 0..20 {
        off.failed(ip("192.0.2.50"), None, "test").await;
    }
    assert!(off.banned(ip("192.0.2.50")).await.is_none());
    assert!(f.store.active_bans(0).await.unwrap().len() == 1);
}

#[tokio::test]
async fn an_account_under_attack_is_slowed_except_from_its_owners_addresses() {
    let f = Fixture::new();
    let g = f.guard(GuardPolicy {
        burst_failures: 0,
        max_failures: 0,
        ..policy()
    });
    let account = Some("alice@example.test");
    let owner = ip("203.0.113.5");
    g.succeeded(owner, "alice@example.test").await;
    // Twenty attackers, two guesses each: no address reaches a threshold, the account does.
    for i in 0..20 {
        let attacker = ip(&format!("192.0.2.{}", 100 + i));
        g.failed(attacker, account, "test").await;
        g.failed(attacker, account, "test").await;
        f.advance(1);
    }
    // A fresh attacker address waits the maximum at its first failure.
    assert_eq!(ms(g.failed(ip("192.0.2.250"), account, "test").await), 1600);
    // The owner, mistyping from a known address, waits only by its own address's count.
    assert_eq!(ms(g.failed(owner, account, "test").await), 100);
    // The owner's address is not locked out: nothing is banned.
    assert!(g.banned(owner).await.is_none());
    // Another account is not slowed.
    assert_eq!(
        ms(
            g.failed(ip("192.0.2.251"), Some("bob@example.test"), "test")
                .await
        ),
        100
    );
}

/// Through `Authenticator`: failures are counted per address and per existing account, a
/// banned address is refused before any password work (PLAIN and SCRAM), and success clears.
#[tokio::test]
async fn the_authenticator_refuses_banned_addresses_before_checking_passwords() {
    use auth::{AuthError, Authenticator, CacheConfig};
    use mail_types::{Address, Domain};
    use store::Directory;

    let dir = tempfile::tempdir().unwrap();
    let store = store_sqlite::open(dir.path()).unwrap();
    store
        .add_domain(&Domain::parse("d.test").unwrap())
        .await
        .unwrap();
    store
        .add_user(
            &Address::parse("a@d.test").unwrap(),
            &auth::hash_password("pass"),
        )
        .await
        .unwrap();
    let guard = Arc::new(LoginGuard::new(
        store.clone(),
        GuardPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(8),
            burst_failures: 3,
            trusted: server_kit::TrustedNetworks::none(),
            ..GuardPolicy::default()
        },
    ));
    let auth = Authenticator::new(store.clone(), Duration::from_secs(60))
        .with_cache(CacheConfig::DISABLED)
        .with_guard(guard);
    let (attacker, friend) = (ip("127.0.0.1"), ip("127.0.0.2"));
    // The guard's delay (1 ms), not the authenticator's fixed 60 s, answers failures.
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        auth.authenticate("a@d.test", "nope", "test", attacker),
    )
    .await
    .expect("the guard's delay");
    assert_eq!(r, Err(AuthError::Invalid));
    assert_eq!(
        auth.authenticate("nobody@d.test", "x", "test", attacker)
            .await,
        Err(AuthError::Invalid)
    );
    // The account's own counter only counts existing accounts.
    assert_eq!(
        store
            .record_login_failure(
                store::GuardScope::Account,
                "nobody@d.test",
                0,
                GuardPolicy::default().windows()
            )
            .await
            .unwrap()
            .long,
        1
    );
    assert_eq!(
        auth.authenticate("a@d.test", "nope", "test", attacker)
            .await,
        Err(AuthError::Invalid)
    );
    let runs = auth.argon2_runs();
    let banned = auth
        .authenticate("a@d.test", "pass", "test", attacker)
        .await;
    assert!(
        matches!(banned, Err(AuthError::Banned { .. })),
        "{banned:?}"
    );
    assert_eq!(auth.argon2_runs(), runs, "no password check while banned");
    let first = sasl::scram::client_first(b"n,,n=a@d.test,r=abcdefgh").unwrap();
    assert!(matches!(
        auth.scram_start(first, "test", attacker).await,
        Err(AuthError::Banned { .. })
    ));
    // Another address logs in.
    assert!(
        auth.authenticate("a@d.test", "pass", "test", friend)
            .await
            .is_ok()
    );
}

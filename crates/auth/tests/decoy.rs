//! The SCRAM decoy secret is stored once and shared: two processes on one store (two handles
//! here) answer an unknown user with the same salt, so asking two nodes behind a load balancer
//! does not reveal that the user does not exist (RFC 5802 §9).

use std::net::IpAddr;
use std::time::Duration;

use auth::Authenticator;

fn peer() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// The `s=` of the server-first message `auth` answers a client-first for `user` with.
async fn salt_for(auth: &Authenticator, user: &str) -> String {
    let first = sasl::scram::client_first(format!("n,,n={user},r=abcdefgh").as_bytes()).unwrap();
    let (_, server_first) = auth.scram_start(first, "test", peer()).await.unwrap();
    let text = String::from_utf8(server_first).unwrap();
    text.split(',')
        .find_map(|f| f.strip_prefix("s="))
        .expect("salt in server-first")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_get_the_same_salt_from_every_process() {
    let dir = tempfile::tempdir().unwrap();
    let a = store_sqlite::open(dir.path()).unwrap();
    let b = store_sqlite::open(dir.path()).unwrap();
    let (secret_a, secret_b) = tokio::join!(
        auth::load_decoy_secret(a.as_ref()),
        auth::load_decoy_secret(b.as_ref())
    );
    let (secret_a, secret_b) = (secret_a.unwrap(), secret_b.unwrap());
    assert_eq!(secret_a.len(), 32);
    assert_eq!(secret_a, secret_b, "one secret for every handle");

    let delay = Duration::from_millis(1);
    let auth_a = Authenticator::new(a.clone(), delay).with_decoy_secret(secret_a.clone());
    let auth_b = Authenticator::new(b.clone(), delay).with_decoy_secret(secret_b);
    let (sa, sb) = (
        salt_for(&auth_a, "nobody@d.test").await,
        salt_for(&auth_b, "nobody@d.test").await,
    );
    assert_eq!(sa, sb, "the same fake salt on both processes");
    assert_eq!(
        sa,
        salt_for(&auth_a, "nobody@d.test").await,
        "and every time"
    );
    assert_ne!(sa, salt_for(&auth_a, "other@d.test").await, "per user");

    // Without the shared secret each process would make up its own: the leak this closes.
    let alone = Authenticator::new(b, delay);
    assert_ne!(salt_for(&alone, "nobody@d.test").await, sa);
    // A restarted process gets the same one.
    drop((auth_a, a));
    let c = store_sqlite::open(dir.path()).unwrap();
    assert_eq!(auth::load_decoy_secret(c.as_ref()).await.unwrap(), secret_a);
}

//! `imap-users`: creates many accounts straight in a yubin data directory through the store
//! (no server may be running on it), all with the same password: the argon2 hash is computed
//! once, where `yubin user add` would pay it (and a process start) per account. For the
//! benchmarks that need thousands of distinct accounts (IDLE memory, imaptest's 100 users).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::anyhow;
use store::{Directory, StoreError};
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct UsersConfig {
    pub data_dir: std::path::PathBuf,
    /// Full addresses; their domains are added when missing.
    pub users: Vec<String>,
    pub password: String,
    /// Accounts created at once (the store's writer commits them in groups).
    pub parallel: usize,
}

/// Creates the accounts; those that exist already are left as they are. Returns a JSON line.
pub async fn run(cfg: UsersConfig) -> anyhow::Result<String> {
    let start = Instant::now();
    let dir = cfg.data_dir.clone();
    let store = crate::imap_fill::open_store(dir).await?;
    let addresses = cfg
        .users
        .iter()
        .map(|u| mail_types::Address::parse(u).map_err(|e| anyhow!("{u}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut domains: Vec<_> = addresses.iter().map(|a| a.domain().clone()).collect();
    domains.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    domains.dedup();
    for d in &domains {
        match store.add_domain(d).await {
            Ok(()) | Err(StoreError::Exists(_)) => {}
            Err(e) => return Err(anyhow!("adding domain {d}: {e}")),
        }
    }
    let password = cfg.password.clone();
    let phc = Arc::new(tokio::task::spawn_blocking(move || auth::hash_password(&password)).await?);
    let addresses = Arc::new(addresses);
    let next = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..cfg.parallel.max(1) {
        let (store, addresses, next, created, phc) = (
            Arc::clone(&store),
            Arc::clone(&addresses),
            Arc::clone(&next),
            Arc::clone(&created),
            Arc::clone(&phc),
        );
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(address) = addresses.get(i) else {
                    return anyhow::Ok(());
                };
                match store.add_user(address, &phc).await {
                    Ok(_) => {
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(StoreError::Exists(_)) => {}
                    Err(e) => return Err(anyhow!("adding {address}: {e}")),
                }
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    drop(store);
    let s = start.elapsed().as_secs_f64();
    Ok(format!(
        "{{\"mode\":\"imap-users\",\"users\":{},\"created\":{},\"elapsed_s\":{s:.3}}}",
        cfg.users.len(),
        created.load(Ordering::Relaxed)
    ))
}

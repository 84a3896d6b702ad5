//! Leases: exclusive claims with expiry, shared by every node (table `leases`). Used for the
//! POP3 maildrop lock (RFC 1939 §8: "the POP3 server … acquire[s] an exclusive-access lock on
//! the maildrop").
//!
//! A lease names its holder — this process ([`PgStore`]'s node name) and one acquisition of it
//! (a random token) — and expires at a time of the database's clock, so nodes need no agreed
//! clocks. While a guard is held, a task renews the lease every third of its lifetime; a node
//! that dies stops renewing and its leases lapse. Dropping the guard frees the name at once in
//! this process and deletes the row in the background; until that delete has run, this
//! process may take the name again (same node), another node may not.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use store::{StoreError, StoreResult};

use crate::db::exec;
use crate::error::IntoStore;

/// The names this process holds, and its identity in the `leases` table.
pub struct Leases {
    pool: Pool,
    /// This process, e.g. `mx1:4242:9f3c…` (host, pid, random).
    node: String,
    held: Mutex<HashSet<String>>,
    ttl: Duration,
}

/// Held while a lease is; dropping it releases the lease.
pub struct LeaseGuard {
    leases: Arc<Leases>,
    name: String,
    token: i64,
    renew: Option<tokio::task::JoinHandle<()>>,
}

impl Leases {
    pub fn new(pool: Pool, node: String, ttl: Duration) -> Leases {
        Leases {
            pool,
            node,
            held: Mutex::new(HashSet::new()),
            ttl,
        }
    }

    fn seconds(&self) -> f64 {
        self.ttl.as_secs_f64()
    }

    /// Takes the lease `name`; `InUse` while another holder's lease has not expired.
    pub async fn acquire(self: &Arc<Self>, name: &str) -> StoreResult<LeaseGuard> {
        if !self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string())
        {
            return Err(StoreError::InUse);
        }
        // From here on, `guard` gives the name back if anything fails.
        let mut guard = LeaseGuard {
            leases: Arc::clone(self),
            name: name.to_string(),
            token: rand::random::<i64>(),
            renew: None,
        };
        // Taken when free, expired, or left by this process (a guard dropped a moment ago
        // whose delete has not run yet: its token no longer matches, so that delete and its
        // renewals leave the new lease alone).
        let taken = async {
            let client = self.pool.get().await?;
            exec(
                &client,
                "INSERT INTO leases (name, node, token, expires_at)
                 VALUES ($1, $2, $3, now() + make_interval(secs => $4))
                 ON CONFLICT (name) DO UPDATE
                   SET node = excluded.node, token = excluded.token,
                       expires_at = excluded.expires_at
                 WHERE leases.expires_at < now() OR leases.node = excluded.node",
                &[&name, &self.node, &guard.token, &self.seconds()],
            )
            .await
        }
        .await
        .st()?;
        if taken == 0 {
            return Err(StoreError::InUse);
        }
        guard.renew = Some(tokio::spawn(renew_loop(
            Arc::clone(self),
            guard.name.clone(),
            guard.token,
        )));
        Ok(guard)
    }
}

/// Extends the lease every third of its lifetime while the guard lives.
async fn renew_loop(leases: Arc<Leases>, name: String, token: i64) {
    let period = leases.ttl / 3;
    loop {
        tokio::time::sleep(period).await;
        let renewed = async {
            let client = leases.pool.get().await?;
            exec(
                &client,
                "UPDATE leases SET expires_at = now() + make_interval(secs => $3)
                 WHERE name = $1 AND token = $2",
                &[&name, &token, &leases.seconds()],
            )
            .await
        }
        .await;
        match renewed {
            Ok(1) => {}
            Ok(_) => {
                // Expired and taken by another node (this one was cut off for longer than
                // the lease lifetime): nothing left to renew.
                tracing::warn!(lease = %name, "lease lost");
                return;
            }
            Err(e) => tracing::warn!(lease = %name, error = ?e, "cannot renew lease"),
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(task) = self.renew.take() {
            task.abort();
            // Without a runtime (shutdown) the lease simply expires.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let (pool, name, token) = (self.leases.pool.clone(), self.name.clone(), self.token);
                rt.spawn(async move {
                    let deleted = async {
                        let client = pool.get().await?;
                        exec(
                            &client,
                            "DELETE FROM leases WHERE name = $1 AND token = $2",
                            &[&name, &token],
                        )
                        .await
                    }
                    .await;
                    if let Err(e) = deleted {
                        tracing::warn!(lease = %name, error = ?e, "cannot release lease");
                    }
                });
            }
        }
        self.leases
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
    }
}

/// A name for this process: host, pid and a random part (two processes with the same pid on
/// one host, one after the other, must not take each other's leases).
pub fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

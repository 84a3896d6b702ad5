//! Holding a lease of [`Coordination`] for as long as a value lives: taken by
//! [`LeaseGuard::acquire`], renewed in the background every third of its time to live,
//! given up by [`LeaseGuard::release`] or, failing that, when the guard is dropped. A process
//! killed with its leases held stops renewing them, and they expire after their time to live.
//!
//! Invariant: every guard has a holder name of its own (`node#n`), so two guards of one
//! process never mistake each other's lease for their own (renewing or releasing it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::{Coordination, StoreResult};

/// This process's name among the processes sharing a store: the host name and a random
/// suffix drawn at start (so a restarted process is a new holder), e.g. `mx1-3f9a0c12`. For
/// logs and the `leases` table; it carries no authority.
pub fn node_id() -> &'static str {
    static NODE: OnceLock<String> = OnceLock::new();
    NODE.get_or_init(|| {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let host = if host.is_empty() {
            "yubin".into()
        } else {
            host
        };
        format!("{host}-{:08x}", rand::random::<u32>())
    })
}

/// A fresh holder name for one guard: [`node_id`] and a per-process counter.
fn next_holder() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(1);
    format!("{}#{}", node_id(), SEQ.fetch_add(1, Ordering::Relaxed))
}

/// A lease held by this process; see the module documentation.
pub struct LeaseGuard {
    store: Arc<dyn Coordination>,
    name: String,
    holder: String,
    ttl: Duration,
    /// Cleared by the renewal task when the lease turned out to be lost.
    held: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
    released: bool,
}

impl LeaseGuard {
    /// Takes the lease `name` for `ttl` (`InUse` while someone else holds it) and starts
    /// renewing it. Needs a tokio runtime.
    pub async fn acquire(
        store: Arc<dyn Coordination>,
        name: impl Into<String>,
        ttl: Duration,
    ) -> StoreResult<LeaseGuard> {
        let name = name.into();
        let holder = next_holder();
        store.acquire_lease(&name, &holder, ttl).await?;
        let held = Arc::new(AtomicBool::new(true));
        let renewer = tokio::spawn(renew_loop(
            Arc::clone(&store),
            name.clone(),
            holder.clone(),
            ttl,
            Arc::clone(&held),
        ));
        Ok(LeaseGuard {
            store,
            name,
            holder,
            ttl,
            held,
            renewer,
            released: false,
        })
    }

    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This guard's holder name (`node#n`), as the store records it.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// False once a renewal found the lease lost (this process stalled past its expiry and
    /// another holder took it).
    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }

    /// Renews the lease now and says whether it is still this guard's: what to ask right
    /// before acting on the exclusivity (e.g. before POP3's UPDATE state expunges).
    pub async fn confirm(&self) -> StoreResult<bool> {
        if !self.is_held() {
            return Ok(false);
        }
        let ok = self
            .store
            .renew_lease(&self.name, &self.holder, self.ttl)
            .await?;
        if !ok {
            self.held.store(false, Ordering::Release);
        }
        Ok(ok)
    }

    /// Gives the lease up and waits until the store has recorded it, so whoever asks next
    /// finds it free. A failure is logged; the lease then expires on its own.
    pub async fn release(mut self) {
        self.renewer.abort();
        self.released = true;
        if let Err(e) = self.store.release_lease(&self.name, &self.holder).await {
            tracing::warn!(lease = %self.name, error = %e, "cannot release lease; it will expire");
        }
    }
}

impl Drop for LeaseGuard {
    /// Without [`LeaseGuard::release`]: stops renewing and releases in the background (when
    /// there is no runtime left, the lease expires after its time to live).
    fn drop(&mut self) {
        self.renewer.abort();
        if self.released {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (store, name, holder) = (
                Arc::clone(&self.store),
                std::mem::take(&mut self.name),
                std::mem::take(&mut self.holder),
            );
            rt.spawn(async move {
                if let Err(e) = store.release_lease(&name, &holder).await {
                    tracing::warn!(lease = %name, error = %e, "cannot release lease; it will expire");
                }
            });
        }
    }
}

/// Renews every third of the time to live, so two renewals may fail (a busy database) before
/// the lease expires.
async fn renew_loop(
    store: Arc<dyn Coordination>,
    name: String,
    holder: String,
    ttl: Duration,
    held: Arc<AtomicBool>,
) {
    let every = (ttl / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(every).await;
        match store.renew_lease(&name, &holder, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(lease = %name, holder = %holder, "lease lost to another holder");
                held.store(false, Ordering::Release);
                return;
            }
            Err(e) => tracing::warn!(lease = %name, error = %e, "lease renewal failed; retrying"),
        }
    }
}

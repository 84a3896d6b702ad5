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
    /// finds it free. A failure is logged and the release retried in the background (see
    /// [`release_until_done`]).
    pub async fn release(mut self) {
        self.renewer.abort();
        self.released = true;
        if let Err(e) = self.store.release_lease(&self.name, &self.holder).await {
            tracing::warn!(lease = %self.name, error = %e, "cannot release lease; retrying");
            let (name, holder) = (
                std::mem::take(&mut self.name),
                std::mem::take(&mut self.holder),
            );
            tokio::spawn(release_until_done(
                Arc::clone(&self.store),
                name,
                holder,
                self.ttl,
            ));
        }
    }
}

/// Retries a release that failed (the database was unreachable) until it succeeds or the
/// lease has expired anyway. Without it, a session that ended during a database outage kept
/// its lease — a POP3 maildrop lock — for the whole time to live after the database came
/// back (found by the crash harness, tests/crash/pg_restart.py: `-ERR [IN-USE]` for a minute
/// after a two-second PostgreSQL restart).
async fn release_until_done(
    store: Arc<dyn Coordination>,
    name: String,
    holder: String,
    ttl: Duration,
) {
    let until = tokio::time::Instant::now() + ttl;
    let mut pause = Duration::from_millis(100);
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(pause).await;
        match store.release_lease(&name, &holder).await {
            Ok(()) => return,
            Err(e) => tracing::debug!(lease = %name, error = %e, "lease release failed; retrying"),
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
    tracing::warn!(lease = %name, "cannot release lease; it expired");
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
            let ttl = self.ttl;
            rt.spawn(async move {
                if let Err(e) = store.release_lease(&name, &holder).await {
                    tracing::warn!(lease = %name, error = %e, "cannot release lease; retrying");
                    release_until_done(store, name, holder, ttl).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU32;

    /// A store whose database is "down" for the first `failures` releases.
    #[derive(Default)]
    struct Flaky {
        failures: AtomicU32,
        held: Mutex<Option<String>>,
    }

    #[async_trait::async_trait]
    impl Coordination for Flaky {
        async fn acquire_lease(&self, _: &str, holder: &str, _: Duration) -> StoreResult<()> {
            let mut held = self.held.lock().unwrap();
            if held.is_some() {
                return Err(StoreError::InUse);
            }
            *held = Some(holder.to_string());
            Ok(())
        }
        async fn renew_lease(&self, _: &str, holder: &str, _: Duration) -> StoreResult<bool> {
            Ok(self.held.lock().unwrap().as_deref() == Some(holder))
        }
        async fn release_lease(&self, _: &str, holder: &str) -> StoreResult<()> {
            if self.failures.load(Ordering::SeqCst) > 0 {
                self.failures.fetch_sub(1, Ordering::SeqCst);
                return Err(StoreError::Temporary("database down".into()));
            }
            let mut held = self.held.lock().unwrap();
            if held.as_deref() == Some(holder) {
                *held = None;
            }
            Ok(())
        }
        async fn shared_secret(&self, _: &str, fresh: &[u8]) -> StoreResult<Vec<u8>> {
            Ok(fresh.to_vec())
        }
    }

    /// A release during a database outage is retried once the database is back, long before
    /// the lease would expire (a POP3 maildrop is not locked for the whole time to live).
    #[tokio::test]
    async fn a_release_that_failed_is_retried() {
        for drop_it in [false, true] {
            let store = Arc::new(Flaky::default());
            let guard = LeaseGuard::acquire(store.clone(), "m", Duration::from_secs(60))
                .await
                .unwrap();
            store.failures.store(3, Ordering::SeqCst);
            if drop_it {
                drop(guard);
            } else {
                guard.release().await;
            }
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while store.held.lock().unwrap().is_some() {
                assert!(tokio::time::Instant::now() < deadline, "still held");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(store.failures.load(Ordering::SeqCst), 0);
        }
    }
}

//! Scheduling: claim rounds, one delivery task per lease, and keeping leases alive.
//!
//! A round asks the store for at most as many leases as this process has free delivery
//! slots, each lease one destination's batch; the store goes round the destinations so that
//! none waits behind another (see `store::QueueStore::claim_due`). Rounds follow each other
//! while they take work and slots are left, so a busy destination gets a further batch per
//! round up to its connection limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use store::{Claim, ClaimLimits, LeaseId, StoreError};
use tokio_util::sync::CancellationToken;

use super::{Engine, Work, now};

/// Messages per lease: one connection carries them in turn.
const MESSAGES_PER_BATCH: usize = 50;

/// How long shutdown waits for the delivery tasks to release their leases.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

impl Engine {
    /// Runs the scheduler until `shutdown`: wakes on enqueue and when a lease is released, and
    /// polls so that retries that came due, expired leases of other processes and changes by
    /// the admin CLI are seen. At shutdown the deliveries in flight are dropped and their
    /// leases released, so that the next start (or another process) takes the work at once
    /// instead of after the leases' expiry; a transaction cut off may be repeated then
    /// (RFC 5321 §6.1).
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let notify = self.queue.queue_notifier();
        let mut last_cleanup = Instant::now();
        tracing::info!(node = %self.node, "outbound queue started");
        loop {
            let notified = notify.notified();
            loop {
                match self.dispatch().await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming queued work failed");
                        break;
                    }
                }
            }
            if last_cleanup.elapsed() > Duration::from_secs(30) {
                last_cleanup = Instant::now();
                match self.queue.remove_finished().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::debug!(removed = n, "finished messages removed from the queue")
                    }
                    Err(e) => tracing::warn!(error = %e, "queue cleanup failed"),
                }
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
                _ = shutdown.cancelled() => break,
            }
        }
        self.stop.cancel();
        self.tasks.close();
        if tokio::time::timeout(RELEASE_WAIT, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("some leases were not released at shutdown; they expire");
        }
        tracing::info!("outbound queue stopped");
    }

    fn lease_secs(&self) -> u64 {
        self.config.lease.as_secs().max(3)
    }

    /// One claim round; starts a task per lease. `true`: another round may take more now.
    async fn dispatch(self: &Arc<Self>) -> Result<bool, StoreError> {
        let free = self.global.available_permits();
        if free == 0 {
            return Ok(false);
        }
        let limits = ClaimLimits {
            leases: free,
            per_batch: MESSAGES_PER_BATCH,
            per_destination: self.config.max_per_destination.max(1),
            single_destination: self.config.smarthost.is_some(),
        };
        let claims = self
            .queue
            .claim_due(&self.node, now(), self.lease_secs(), &limits)
            .await?;
        let more = !claims.is_empty() && claims.len() < free;
        for claim in claims {
            // Only this loop takes permits, and it asked for no more leases than were free.
            let permit = Arc::clone(&self.global).try_acquire_owned().ok();
            let engine = Arc::clone(self);
            self.tasks.spawn(async move {
                let _permit = match permit {
                    Some(p) => p,
                    None => match Arc::clone(&engine.global).acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                };
                engine.run_lease(claim).await;
            });
        }
        Ok(more)
    }

    /// Delivers a lease's batch while renewing the lease, then releases it (its connection
    /// slot, and any recipient left without a result). If the task dies instead, the lease
    /// expires on its own.
    async fn run_lease(self: &Arc<Self>, claim: Claim) {
        let lease = claim.lease;
        tracing::debug!(
            lease = lease.id,
            destination = %lease.destination,
            messages = claim.messages.len(),
            "lease claimed"
        );
        let lost = Arc::new(AtomicBool::new(false));
        let work: Vec<Work> = claim
            .messages
            .into_iter()
            .map(|m| Work {
                msg: m.message,
                rcpts: m.recipients,
            })
            .collect();
        tokio::select! {
            biased;
            () = self.deliver_batch(lease.id, &lease.destination, work, &lost) => {}
            () = self.keep_lease(lease.id, &lost) => {}
            () = self.stop.cancelled() => {}
        }
        if let Err(e) = self.queue.release(lease.id, now()).await {
            tracing::warn!(lease = lease.id, error = %e, "cannot release a lease; it expires");
        }
    }

    /// Renews the lease every third of its time, forever; sets `lost` (and stops renewing)
    /// once the store says the lease is gone.
    async fn keep_lease(&self, lease: LeaseId, lost: &AtomicBool) {
        let every = Duration::from_secs((self.lease_secs() / 3).max(1));
        loop {
            tokio::time::sleep(every).await;
            match self
                .queue
                .renew(lease, &self.node, now(), self.lease_secs())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(lease, "lease lost (expired): stopping its deliveries");
                    lost.store(true, Ordering::Release);
                    std::future::pending::<()>().await;
                }
                // Two more tries before it runs out.
                Err(e) => tracing::warn!(lease, error = %e, "cannot renew a lease"),
            }
        }
    }
}

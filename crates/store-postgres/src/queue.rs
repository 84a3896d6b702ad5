//! [`store::QueueStore`] for the PostgreSQL store: thin async glue around `ops_queue.rs` and
//! `claims.rs`. Writes are transactions (durable before `Ok`); the scheduler of this process
//! is notified after the commit, and those of the other nodes by `NOTIFY yubin_queue` sent
//! with it (see `change_log.rs`). Retries coming due and expired leases are found by the
//! scheduler's poll.

use std::sync::Arc;

use async_trait::async_trait;
use store::{
    AttemptResult, Claim, ClaimLimits, Lease, LeaseId, OutboundEnvelope, QueueId, QueueStore,
    QueuedMessage, StoreResult, UnixTime,
};

use crate::error::PgResult;
use crate::mailstore::hash_of;
use crate::ops_msg::NewBlob;
use crate::tx::Tx;
use crate::tx::{read, snapshot, write_tx};
use crate::{PgStore, claims, ops_queue};

/// Releases a lease and wakes every node's scheduler: its recipients may be due again and a
/// connection slot of its destination is free.
async fn release_waking(tx: &mut Tx<'_>, lease: LeaseId, now: UnixTime) -> PgResult<()> {
    claims::release(&tx.t, lease, now).await?;
    tx.queue_wake = true;
    Ok(())
}

#[async_trait]
impl QueueStore for PgStore {
    async fn enqueue(
        &self,
        message: Arc<Vec<u8>>,
        envelope: &OutboundEnvelope,
    ) -> StoreResult<QueueId> {
        let hash = hash_of(&message);
        let blob = NewBlob {
            hash: &hash,
            bytes: &message,
        };
        let id = write_tx!(self, |tx| ops_queue::enqueue(tx, &blob, envelope))?;
        self.queue_notify.notify_one();
        Ok(id)
    }

    fn queue_notifier(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.queue_notify)
    }

    async fn claim_due(
        &self,
        holder: &str,
        now: UnixTime,
        lease_secs: u64,
        limits: &ClaimLimits,
    ) -> StoreResult<Vec<Claim>> {
        write_tx!(self, |tx| claims::claim(
            &tx.t, holder, now, lease_secs, limits
        ))
    }

    async fn renew(
        &self,
        lease: LeaseId,
        holder: &str,
        now: UnixTime,
        lease_secs: u64,
    ) -> StoreResult<bool> {
        write_tx!(self, |tx| claims::renew(
            &tx.t, lease, holder, now, lease_secs
        ))
    }

    async fn release(&self, lease: LeaseId, now: UnixTime) -> StoreResult<()> {
        write_tx!(self, |tx| release_waking(tx, lease, now))?;
        // Its recipients may be due again, and its connection slot is free.
        self.queue_notify.notify_one();
        Ok(())
    }

    async fn leases(&self, now: UnixTime) -> StoreResult<Vec<Lease>> {
        read!(self, |c| claims::leases(c, now))
    }

    async fn next_due(&self) -> StoreResult<Option<UnixTime>> {
        read!(self, |c| ops_queue::next_due(c))
    }

    async fn queued_message(&self, id: QueueId) -> StoreResult<Option<QueuedMessage>> {
        snapshot!(self, |t| ops_queue::queued_message(t, id))
    }

    async fn list_queue(&self) -> StoreResult<Vec<QueuedMessage>> {
        snapshot!(self, |t| ops_queue::list_queue(t))
    }

    async fn queued_body(&self, id: QueueId) -> StoreResult<Arc<Vec<u8>>> {
        read!(self, |c| ops_queue::body(c, id)).map(Arc::new)
    }

    async fn record_attempts(&self, lease: LeaseId, results: &[AttemptResult]) -> StoreResult<()> {
        if results.is_empty() {
            return Ok(());
        }
        write_tx!(self, |tx| ops_queue::record_attempts(tx, lease, results))
    }

    async fn set_delay_notified(&self, id: QueueId) -> StoreResult<()> {
        write_tx!(self, |tx| ops_queue::set_delay_notified(tx, id))
    }

    async fn retry_queued(&self, id: Option<QueueId>, now: UnixTime) -> StoreResult<u64> {
        let n = write_tx!(self, |tx| ops_queue::retry(tx, id, now))?;
        self.queue_notify.notify_one();
        Ok(n)
    }

    async fn delete_queued(&self, id: QueueId) -> StoreResult<()> {
        write_tx!(self, |tx| ops_queue::delete(tx, id))
    }

    async fn remove_finished(&self) -> StoreResult<u64> {
        write_tx!(self, |tx| ops_queue::remove_finished(tx))
    }
}

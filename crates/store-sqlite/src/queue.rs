//! [`store::QueueStore`] and [`store::SendingLog`] for the embedded store: thin async glue
//! around `ops_queue.rs`, `ops_claim.rs` and `ops_sending.rs`.
//! Writes go through the writer thread (group commit, durable before `Ok`); the scheduler is
//! notified after the commit. Changes made by another process (the admin CLI) are not
//! notified here: the scheduler also polls.

use std::sync::Arc;

use async_trait::async_trait;
use store::{
    AccountId, AttemptResult, Claim, ClaimLimits, Lease, LeaseId, OutboundEnvelope, QueueId,
    QueueStore, QueuedMessage, SendingLimits, SendingLog, SendingUsage, StoreError, StoreResult,
    UnixTime,
};

use crate::blobs::is_valid_hash;
use crate::bodies;
use crate::db::io_err;
use crate::ops_msg::NewBlob;
use crate::{SqliteStore, ops_claim, ops_queue, ops_sending};

#[async_trait]
impl QueueStore for SqliteStore {
    async fn enqueue(
        &self,
        message: Arc<Vec<u8>>,
        envelope: &OutboundEnvelope,
    ) -> StoreResult<QueueId> {
        let hash = self.write_blob(&message).await?;
        let envelope = envelope.clone();
        let id = self
            .writer
            .run(move |tx| {
                let blob = NewBlob {
                    hash: &hash,
                    bytes: &message,
                };
                ops_queue::enqueue(tx, &blob, &envelope)
            })
            .await?;
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
        let (holder, limits) = (holder.to_string(), *limits);
        self.writer
            .run(move |tx| ops_claim::claim(tx.conn, &holder, now, lease_secs, &limits))
            .await
    }

    async fn renew(
        &self,
        lease: LeaseId,
        holder: &str,
        now: UnixTime,
        lease_secs: u64,
    ) -> StoreResult<bool> {
        let holder = holder.to_string();
        self.writer
            .run(move |tx| ops_claim::renew(tx.conn, lease, &holder, now, lease_secs))
            .await
    }

    async fn release(&self, lease: LeaseId, now: UnixTime) -> StoreResult<()> {
        self.writer
            .run(move |tx| ops_claim::release(tx.conn, lease, now))
            .await?;
        // Its recipients may be due again, and its connection slot is free.
        self.queue_notify.notify_one();
        Ok(())
    }

    async fn leases(&self, now: UnixTime) -> StoreResult<Vec<Lease>> {
        self.readers.read(move |c| ops_claim::leases(c, now)).await
    }

    async fn next_due(&self) -> StoreResult<Option<UnixTime>> {
        self.readers.read(ops_queue::next_due).await
    }

    async fn queued_message(&self, id: QueueId) -> StoreResult<Option<QueuedMessage>> {
        self.readers
            .read(move |c| ops_queue::queued_message(c, id))
            .await
    }

    async fn list_queue(&self) -> StoreResult<Vec<QueuedMessage>> {
        self.readers.read(ops_queue::list_queue).await
    }

    async fn queued_body(&self, id: QueueId) -> StoreResult<Arc<Vec<u8>>> {
        let hash = self
            .readers
            .read(move |c| ops_queue::body_hash(c, id))
            .await?;
        if !is_valid_hash(&hash) {
            return Err(StoreError::NotFound(format!("queued message {id}")));
        }
        let inline = {
            let hash = hash.clone();
            self.readers
                .read_inline(move |c| bodies::get(c, &hash))
                .await?
        };
        if let Some(bytes) = inline {
            return Ok(Arc::new(bytes));
        }
        match tokio::fs::read(self.blobs.path(&hash)).await {
            Ok(bytes) => Ok(Arc::new(bytes)),
            // Deleted from the queue (and unlinked) meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(format!("queued message {id}")))
            }
            Err(e) => Err(io_err("reading queued message", e)),
        }
    }

    async fn record_attempts(&self, lease: LeaseId, results: &[AttemptResult]) -> StoreResult<()> {
        if results.is_empty() {
            return Ok(());
        }
        let results = results.to_vec();
        self.writer
            .run(move |tx| ops_queue::record_attempts(tx.conn, lease, &results))
            .await
    }

    async fn set_delay_notified(&self, id: QueueId) -> StoreResult<()> {
        self.writer
            .run(move |tx| ops_queue::set_delay_notified(tx.conn, id))
            .await
    }

    async fn retry_queued(&self, id: Option<QueueId>, now: UnixTime) -> StoreResult<u64> {
        let n = self
            .writer
            .run(move |tx| ops_queue::retry(tx.conn, id, now))
            .await?;
        self.queue_notify.notify_one();
        Ok(n)
    }

    async fn delete_queued(&self, id: QueueId) -> StoreResult<()> {
        self.writer.run(move |tx| ops_queue::delete(tx, id)).await
    }

    async fn remove_finished(&self) -> StoreResult<u64> {
        self.writer.run(ops_queue::remove_finished).await
    }
}

#[async_trait]
impl SendingLog for SqliteStore {
    async fn sending_usage(
        &self,
        account: AccountId,
        since: UnixTime,
    ) -> StoreResult<SendingUsage> {
        self.readers
            .read(move |c| ops_sending::usage(c, account, since))
            .await
    }

    async fn record_sending(
        &self,
        account: AccountId,
        recipients: u32,
        now: UnixTime,
        since: UnixTime,
        limits: SendingLimits,
    ) -> StoreResult<Result<i64, SendingUsage>> {
        self.writer
            .run(move |tx| ops_sending::record(tx.conn, account, recipients, now, since, limits))
            .await
    }

    async fn forget_sending(&self, id: i64) -> StoreResult<()> {
        self.writer
            .run(move |tx| ops_sending::forget(tx.conn, id))
            .await
    }
}

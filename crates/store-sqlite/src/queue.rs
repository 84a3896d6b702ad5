//! [`store::QueueStore`] for the embedded store: thin async glue around `ops_queue.rs`.
//! Writes go through the writer thread (group commit, durable before `Ok`); the scheduler is
//! notified after the commit. Changes made by another process (the admin CLI) are not
//! notified here: the scheduler also polls.

use std::sync::Arc;

use async_trait::async_trait;
use store::{
    AttemptResult, OutboundEnvelope, QueueId, QueueStore, QueuedMessage, StoreError, StoreResult,
    UnixTime,
};

use crate::blobs::is_valid_hash;
use crate::db::io_err;
use crate::ops_msg::NewBlob;
use crate::{SqliteStore, ops_queue};

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

    async fn due_messages(&self, now: UnixTime, limit: usize) -> StoreResult<Vec<QueuedMessage>> {
        self.readers
            .read(move |c| ops_queue::due_messages(c, now, limit))
            .await
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
        match tokio::fs::read(self.blobs.path(&hash)).await {
            Ok(bytes) => Ok(Arc::new(bytes)),
            // Deleted from the queue (and unlinked) meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(format!("queued message {id}")))
            }
            Err(e) => Err(io_err("reading queued message", e)),
        }
    }

    async fn record_attempts(&self, results: &[AttemptResult]) -> StoreResult<()> {
        if results.is_empty() {
            return Ok(());
        }
        let results = results.to_vec();
        self.writer
            .run(move |tx| ops_queue::record_attempts(tx.conn, &results))
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

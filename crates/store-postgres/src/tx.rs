//! Write transactions: run, retry on conflict, commit, then announce.
//!
//! Every write runs in one PostgreSQL transaction (READ COMMITTED) through [`write_tx!`]:
//! - Conflicts between nodes are settled by row locks taken in a fixed order (see `prim.rs`);
//!   when PostgreSQL still aborts one side (serialization failure 40001, deadlock 40P01) or a
//!   concurrent insert of the same name wins (unique violation 23505), the whole transaction is
//!   run again, at most [`MAX_ATTEMPTS`] times, after a short random pause.
//! - `Ok` is returned only after COMMIT has returned: with `synchronous_commit = on` (forced
//!   for every connection, see `lib.rs`) the write is then durable.
//! - The change events an operation queued in [`Tx::events`] are published after the commit,
//!   in commit order per mailbox ([`Tx::commit`]), through [`crate::PgStore::publish`] — one
//!   place, so a durable change log can replace it. The
//!   transaction also sends `NOTIFY yubin_changes, '<account id>'` for each account it changed
//!   (delivered by PostgreSQL only if it commits), the wake-up other nodes will listen for.

use std::time::Duration;

use deadpool_postgres::Transaction;
use store::ChangeEvent;

use crate::error::PgResult;

/// How many times a write transaction is tried before its conflict is reported as a
/// temporary failure.
pub const MAX_ATTEMPTS: u32 = 8;

/// An open write transaction and the after-commit effects of the operation running in it.
pub struct Tx<'a> {
    pub t: Transaction<'a>,
    /// The configured quota defaults when the transaction began (`prim::charge_quota`).
    pub quota: std::sync::Arc<store::QuotaDefaults>,
    /// Published after the commit.
    pub events: Vec<ChangeEvent>,
    /// Queued work became due (enqueue, release, retry): other nodes' schedulers are woken
    /// with `NOTIFY yubin_queue` when the transaction commits (`change_log.rs`).
    pub queue_wake: bool,
}

impl<'a> Tx<'a> {
    pub async fn begin(
        client: &'a mut deadpool_postgres::Client,
        quota: std::sync::Arc<store::QuotaDefaults>,
    ) -> PgResult<Tx<'a>> {
        Ok(Tx {
            t: client.transaction().await?,
            quota,
            events: Vec::new(),
            queue_wake: false,
        })
    }

    /// Queues the wake-ups of the accounts with events, commits, and publishes the events.
    ///
    /// Events of one mailbox are published in commit (= MODSEQ) order, as sessions expect: the
    /// publishing shards of the accounts concerned are held from before COMMIT until the
    /// events are out. A later transaction on the same mailbox waited for this one's row lock,
    /// which COMMIT releases, so it reaches its own COMMIT (and the shard) only after this
    /// one took the shard. A shard is only ever held across a COMMIT, which waits for no
    /// other transaction, so holding several (in index order) cannot deadlock.
    pub async fn commit(self, store: &crate::PgStore) -> PgResult<()> {
        if self.queue_wake {
            crate::change_log::wake_queues(&self.t, &store.instance).await?;
        }
        let mut accounts: Vec<store::AccountId> = self.events.iter().map(|e| e.account()).collect();
        accounts.sort_unstable();
        accounts.dedup();
        if accounts.is_empty() {
            self.t.commit().await?;
            return Ok(());
        }
        // The log rows and wake-ups commit (or roll back) with the change they describe.
        let batches = crate::change_log::append(&self.t, self.events).await?;
        let mut shards: Vec<usize> = accounts.iter().map(|a| store.publish_shard(*a)).collect();
        shards.sort_unstable();
        shards.dedup();
        let mut held = Vec::with_capacity(shards.len());
        for i in shards {
            held.push(store.publish_order[i].lock().await);
        }
        self.t.commit().await?;
        store.publish(batches);
        drop(held);
        Ok(())
    }
}

/// The pause before attempt `attempt + 1`: a few milliseconds, growing, randomised so that two
/// nodes that collided do not collide again in step.
pub fn backoff(attempt: u32) -> Duration {
    let base = 2u64 << attempt.min(6);
    Duration::from_millis(base + rand::random::<u64>() % base)
}

/// Runs `$body` — an expression of type `impl Future<Output = PgResult<T>>` that uses `$tx`, a
/// `&mut Tx` — in a write transaction of `$store` (a `&PgStore`), retried on conflicts;
/// publishes the events after the commit. Evaluates to `StoreResult<T>`.
///
/// A macro rather than a function taking a closure: the body borrows the transaction and the
/// caller's arguments, which an async closure cannot yet express with a `Send` future.
macro_rules! write_tx {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store: &$crate::PgStore = $store;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result: $crate::error::PgResult<_> = async {
                let mut client = store.pool.get().await?;
                let mut txv = $crate::tx::Tx::begin(&mut client, store.quota_defaults()).await?;
                let out = {
                    let $tx = &mut txv;
                    $body.await?
                };
                txv.commit(store).await?;
                Ok(out)
            }
            .await;
            match result {
                Ok(out) => break Ok(out),
                Err(e) if e.retryable() && attempt < $crate::tx::MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = ?e, "write conflict, retrying");
                    tokio::time::sleep($crate::tx::backoff(attempt)).await;
                }
                Err(e) => break Err(e.into_store()),
            }
        }
    }};
}

pub(crate) use write_tx;

/// Runs `$body` (a future of `PgResult<T>` using `$t`, a `&Transaction`) in one read-only
/// REPEATABLE READ transaction of `$store`: every statement sees the same snapshot. For reads
/// whose statements must agree (a mailbox and its messages). Evaluates to `StoreResult<T>`.
macro_rules! snapshot {
    ($store:expr, |$t:ident| $body:expr) => {{
        let store: &$crate::PgStore = $store;
        let result: $crate::error::PgResult<_> = async {
            let mut client = store.pool.get().await?;
            let tv = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let out = {
                let $t = &tv;
                $body.await?
            };
            tv.commit().await?;
            Ok(out)
        }
        .await;
        result.map_err($crate::error::Error::into_store)
    }};
}

/// Runs `$body` (a future of `PgResult<T>` using `$c`, a pooled client) outside a transaction:
/// for reads of one statement (a snapshot by itself). Evaluates to `StoreResult<T>`.
macro_rules! read {
    ($store:expr, |$c:ident| $body:expr) => {{
        let store: &$crate::PgStore = $store;
        let result: $crate::error::PgResult<_> = async {
            let client = store.pool.get().await?;
            let $c = &client;
            $body.await
        }
        .await;
        result.map_err($crate::error::Error::into_store)
    }};
}

pub(crate) use {read, snapshot};

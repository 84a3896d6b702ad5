//! Follows the change log for writes of other processes on the same data directory (the admin
//! CLI, a retention job): polls the log's newest rows, wakes the hub for the accounts it
//! watches, and answers the hub's fill requests from the log.
//!
//! SQLite has no notifications between processes; a poll of one indexed range query every
//! `interval` (50 ms by default) is the wake-up. This process's own writes are published by
//! the writer directly and seen here only as already-delivered `seq`s.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use store::{AccountId, ChangeHub, ChangeLogReader, LoggedBatch, StoreResult};

use crate::change_log;
use crate::readers::ReadPool;

/// The follower task; dropping it stops the task.
pub struct Follower {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct LogReader {
    readers: Arc<ReadPool>,
}

#[async_trait]
impl ChangeLogReader for LogReader {
    async fn changes_after(
        &self,
        account: AccountId,
        after: u64,
        limit: usize,
    ) -> StoreResult<(u64, Vec<LoggedBatch>)> {
        self.readers
            .read(move |c| change_log::after(c, account, after, limit))
            .await
    }
}

/// Starts the follower on the current tokio runtime; `None` outside one (a store opened by a
/// blocking program then sees only its own changes).
pub fn start(readers: Arc<ReadPool>, hub: Arc<ChangeHub>, interval: Duration) -> Option<Follower> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let task = runtime.spawn(async move {
        let log = LogReader { readers };
        let mut last_id = log.readers.read(change_log::last_id).await.unwrap_or(0);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let from = last_id;
                    match log.readers.read_inline(move |c| change_log::since(c, from)).await {
                        Ok((last, heads)) => {
                            last_id = last;
                            for (account, seq) in heads {
                                hub.wake(account, seq);
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "polling the change log failed"),
                    }
                }
                _ = hub.fill_wanted() => {}
            }
            store::fill_requested(&hub, &log).await;
        }
    });
    Some(Follower { task })
}

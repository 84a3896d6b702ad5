//! Filling a hub's gaps from the backend's change log.

use async_trait::async_trait;

use crate::{AccountId, ChangeHub, LoggedBatch, StoreResult};

/// Read access to a backend's change log.
#[async_trait]
pub trait ChangeLogReader: Send + Sync {
    /// The account's log head (its last `seq`; 0 when it has none) and the batches after
    /// `after` that the log still holds, ascending, at most `limit` of them.
    async fn changes_after(
        &self,
        account: AccountId,
        after: u64,
        limit: usize,
    ) -> StoreResult<(u64, Vec<LoggedBatch>)>;
}

/// Batches read per account and fill; a subscriber further behind resyncs.
const FILL_LIMIT: usize = 1_000;

/// Answers the hub's pending fill requests from the log: publishes the missing batches in
/// order, or tells the subscribers to resync when the log no longer has them (pruned). A read
/// error leaves the request for the next round.
pub async fn fill_requested(hub: &ChangeHub, log: &dyn ChangeLogReader) {
    for (account, last) in hub.take_fill_requests() {
        match log.changes_after(account, last, FILL_LIMIT).await {
            Ok((head, batches)) => match batches.first() {
                // Seqs have no gaps and the log is pruned from its oldest end: what follows
                // `last` is complete when it starts right after it. (`head` may have been read
                // before or after the rows, so it is not compared with their end.)
                Some(first) if first.seq == last + 1 => {
                    let full = batches.len() >= FILL_LIMIT;
                    hub.publish(batches);
                    if full {
                        hub.wake(account, u64::MAX);
                    }
                }
                // Pruned before this process read it: the subscribers reread the store.
                Some(_) => {
                    let end = batches.last().map_or(head, |b| b.seq.max(head));
                    hub.resync(account, end);
                }
                None if head > last => hub.resync(account, head),
                None => {}
            },
            Err(e) => {
                // Asked again, so the follower's next round retries.
                tracing::warn!(%account, error = %e, "reading the change log failed");
                hub.wake(account, u64::MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Change, ChangeEvent, MailboxId, TryRecvError};

    const A: AccountId = AccountId(1);

    /// A log that kept the batches from `oldest` to `head`.
    struct Log {
        oldest: u64,
        head: u64,
    }

    #[async_trait]
    impl ChangeLogReader for Log {
        async fn changes_after(
            &self,
            account: AccountId,
            after: u64,
            limit: usize,
        ) -> StoreResult<(u64, Vec<LoggedBatch>)> {
            let batches = (after.max(self.oldest - 1) + 1..=self.head)
                .take(limit)
                .map(|seq| LoggedBatch {
                    account,
                    seq,
                    events: vec![ChangeEvent {
                        mailbox: MailboxId::new(account, seq as i64),
                        change: Change::MailboxCreated { name: "x".into() },
                    }],
                })
                .collect();
            Ok((self.head, batches))
        }
    }

    #[tokio::test]
    async fn fills_from_the_log_in_order() {
        let hub = ChangeHub::default();
        let mut feed = hub.subscribe(A);
        hub.start_at(A, 2);
        hub.wake(A, 4);
        fill_requested(&hub, &Log { oldest: 1, head: 4 }).await;
        assert_eq!(feed.try_recv().unwrap().mailbox.number, 3);
        assert_eq!(feed.try_recv().unwrap().mailbox.number, 4);
        assert_eq!(feed.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(hub.last_seq(A), Some(4));
    }

    #[tokio::test]
    async fn a_pruned_log_makes_subscribers_resync() {
        let hub = ChangeHub::default();
        let mut feed = hub.subscribe(A);
        hub.start_at(A, 2);
        hub.wake(A, 9);
        fill_requested(&hub, &Log { oldest: 6, head: 9 }).await;
        assert_eq!(feed.try_recv(), Err(TryRecvError::Resync));
        assert_eq!(feed.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(hub.last_seq(A), Some(9));
    }
}

//! The durable change log on PostgreSQL (schema step 2) and the follower that brings other
//! nodes' changes to this node's sessions.
//!
//! - Writing: each write transaction appends one row per account it changed, with the
//!   account's next `seq` from `change_heads` (the upsert row-locks the account's head until
//!   COMMIT, so seqs are gap-free and in commit order per account), and sends
//!   `NOTIFY yubin_changes, '<account>:<seq>'` — delivered by PostgreSQL only if it commits.
//! - Following: one dedicated connection per node LISTENs; a notification only wakes the hub
//!   ("account A is at seq N"), which asks for the missing batches; they are read from the log.
//!   Notifications may be lost with the connection: after every (re)connect every watched
//!   account is filled from the log. A subscriber the log cannot serve (pruned) resyncs.
//! - Pruning: every node deletes rows older than the retention now and then.
//! - The same connection LISTENs for queue wake-ups (`yubin_queue`): a node that enqueued,
//!   released a lease or retried wakes the other nodes' schedulers at once instead of at their
//!   next poll.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Pool, Transaction};
use store::{AccountId, ChangeEvent, ChangeHub, ChangeLogReader, LoggedBatch, StoreResult};
use tokio_postgres::AsyncMessage;

use crate::error::{Error, PgResult};

/// The channel of the change wake-ups; the payload is `<account id>:<seq>`.
pub const CHANNEL: &str = "yubin_changes";

/// How often a node deletes old log rows.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// Appends the transaction's events to the log, one batch per account (accounts in ascending
/// order: the head rows are locked in one order by every transaction, so never in a cycle),
/// and queues their wake-ups. Runs inside the write transaction, just before COMMIT.
pub async fn append<C: GenericClient>(
    t: &C,
    events: Vec<ChangeEvent>,
) -> PgResult<Vec<LoggedBatch>> {
    let mut groups = store::group_by_account(events);
    groups.sort_by_key(|(account, _)| *account);
    let head = t
        .prepare_cached(
            "INSERT INTO change_heads (account, seq) VALUES ($1, 1)
             ON CONFLICT (account) DO UPDATE SET seq = change_heads.seq + 1
             RETURNING seq",
        )
        .await?;
    let insert = t
        .prepare_cached("INSERT INTO change_log (account, seq, events) VALUES ($1, $2, $3)")
        .await?;
    let notify = t.prepare_cached("SELECT pg_notify($1, $2)").await?;
    let mut batches = Vec::with_capacity(groups.len());
    for (account, events) in groups {
        let seq: i64 = t.query_one(&head, &[&account]).await?.get(0);
        t.execute(&insert, &[&account, &seq, &store::encode_events(&events)])
            .await?;
        t.execute(&notify, &[&CHANNEL, &format!("{account}:{seq}")])
            .await?;
        batches.push(LoggedBatch {
            account,
            seq: u64::try_from(seq).unwrap_or(0),
            events,
        });
    }
    Ok(batches)
}

/// The account's last `seq` (0 before its first change).
pub async fn head<C: GenericClient>(c: &C, account: AccountId) -> PgResult<u64> {
    let st = c
        .prepare_cached("SELECT seq FROM change_heads WHERE account = $1")
        .await?;
    Ok(c.query_opt(&st, &[&account])
        .await?
        .map_or(0, |r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0)))
}

/// Reads the log for the hub's fills.
pub(crate) struct LogReader {
    pub pool: Pool,
}

#[async_trait]
impl ChangeLogReader for LogReader {
    async fn changes_after(
        &self,
        account: AccountId,
        after: u64,
        limit: usize,
    ) -> StoreResult<(u64, Vec<LoggedBatch>)> {
        let result: PgResult<_> = async {
            let client = self.pool.get().await?;
            let head = head(&client, account).await?;
            if head <= after {
                return Ok((head, Vec::new()));
            }
            let st = client
                .prepare_cached(
                    "SELECT seq, events FROM change_log WHERE account = $1 AND seq > $2
                     ORDER BY seq LIMIT $3",
                )
                .await?;
            let rows = client
                .query(
                    &st,
                    &[
                        &account,
                        &i64::try_from(after).unwrap_or(i64::MAX),
                        &i64::try_from(limit).unwrap_or(i64::MAX),
                    ],
                )
                .await?;
            let mut batches = Vec::with_capacity(rows.len());
            for row in rows {
                let seq: i64 = row.get(0);
                let text: String = row.get(1);
                batches.push(LoggedBatch {
                    account,
                    seq: u64::try_from(seq).unwrap_or(0),
                    events: store::decode_events(&text).map_err(Error::Store)?,
                });
            }
            Ok((head, batches))
        }
        .await;
        result.map_err(Error::into_store)
    }
}

/// The channel of the queue wake-ups: queued work became due on another node (enqueue,
/// release, retry). The payload names the sending handle, which ignores its own.
const QUEUE_CHANNEL: &str = "yubin_queue";

/// Where the follower delivers queue wake-ups.
pub struct QueueWake {
    /// The scheduler's notifier (`store::QueueStore::queue_notifier`).
    pub notify: Arc<tokio::sync::Notify>,
    /// This handle's name in the payload.
    pub instance: String,
}

/// Wakes every node's scheduler when the transaction commits (PostgreSQL delivers NOTIFY at
/// COMMIT, and folds identical ones of a transaction into one).
pub async fn wake_queues(t: &Transaction<'_>, instance: &str) -> Result<(), tokio_postgres::Error> {
    t.execute("SELECT pg_notify($1, $2)", &[&QUEUE_CHANNEL, &instance])
        .await?;
    Ok(())
}

/// The follower task; dropping it stops the task (and closes its connection).
pub struct Follower {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the follower on the current runtime.
pub fn start(
    config: tokio_postgres::Config,
    pool: Pool,
    hub: Arc<ChangeHub>,
    queue: QueueWake,
    retention: Duration,
) -> Follower {
    let task = tokio::spawn(async move {
        let log = LogReader { pool };
        let mut backoff = Duration::from_millis(100);
        loop {
            match listen(&config, &log, &hub, &queue, retention).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(error = %e, "change notifications: connection lost; reconnecting");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
    Follower { task }
}

/// One LISTEN connection's life: returns when it breaks.
async fn listen(
    config: &tokio_postgres::Config,
    log: &LogReader,
    hub: &ChangeHub,
    queue: &QueueWake,
    retention: Duration,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tokio_postgres::NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let queue_notify = Arc::clone(&queue.notify);
    let instance = queue.instance.clone();
    // The connection delivers notifications only while it is polled.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == QUEUE_CHANNEL => {
                    if n.payload() != instance {
                        queue_notify.notify_one();
                    }
                }
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "change notifications: connection error");
                    break;
                }
                None => break,
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {QUEUE_CHANNEL}"))
        .await?;
    // Whatever was committed while nobody listened: every watched account reads the log, and
    // the scheduler looks for due work.
    hub.wake_all();
    queue.notify.notify_one();
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            payload = rx.recv() => {
                let Some(payload) = payload else { break };
                if let Some((account, seq)) = parse(&payload) {
                    hub.wake(account, seq);
                }
                // Take every notification already queued before reading the log.
                while let Ok(payload) = rx.try_recv() {
                    if let Some((account, seq)) = parse(&payload) {
                        hub.wake(account, seq);
                    }
                }
            }
            _ = hub.fill_wanted() => {}
            _ = prune.tick() => {
                let secs = retention.as_secs_f64();
                if let Err(e) = client
                    .execute(
                        "DELETE FROM change_log WHERE created < now() - make_interval(secs => $1)",
                        &[&secs],
                    )
                    .await
                {
                    tracing::warn!(error = %e, "pruning the change log failed");
                }
            }
        }
        store::fill_requested(hub, log).await;
    }
    driver.abort();
    Ok(())
}

fn parse(payload: &str) -> Option<(AccountId, u64)> {
    let (account, seq) = payload.split_once(':')?;
    Some((AccountId(account.parse().ok()?), seq.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn payloads() {
        assert_eq!(parse("42:7"), Some((store::AccountId(42), 7)));
        assert_eq!(parse("42"), None);
        assert_eq!(parse("x:1"), None);
    }
}

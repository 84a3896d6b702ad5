//! The outbound queue engine (RFC 5321 §4.5.4 retry strategy, §5 address resolution), one
//! file per purpose:
//! - `schedule.rs` — claim rounds (leases from the store), delivery tasks, lease renewal;
//! - `connect.rs` — which hosts to try (smarthost or MX) and opening a connection;
//! - `batch.rs` — one lease's messages over as few connections as possible;
//! - `transaction.rs` — one message's SMTP transaction, an outcome per recipient;
//! - `outcome.rs` — pure: outcome, attempts and age → status, next attempt, DSN;
//! - `finish.rs` — recording one message's results and sending the DSNs they call for;
//! - `dsn_route.rs` — where a DSN goes: the sender's INBOX, or the queue.
//!
//! Invariants:
//! - Work is claimed from the store under a lease (`store::QueueStore::claim_due`): a
//!   (message, destination domain) is worked on by at most one task of one process while the
//!   lease is live, and the task renews the lease while it works. A process that dies leaves
//!   its work to whoever claims after the lease expires.
//! - A recipient's result is recorded only after the next hop answered for it (or the attempt
//!   failed); a crash before that leaves it pending, so it is tried again: re-delivery happens
//!   only when SMTP itself cannot tell whether the peer took the message (RFC 5321 §6.1), or a
//!   lease expired while its holder still worked (it stops at the next message once it sees).
//! - DSNs are sent before the results that cause them are recorded: a crash in between may
//!   repeat a DSN but never loses one.
//! - Each message's results are recorded as soon as the peer answered for it, before the next
//!   message is sent on the connection: a crash re-sends at most the messages whose
//!   transaction was in progress (one per open connection), never a whole batch.

mod batch;
mod connect;
mod dsn_route;
mod finish;
pub(crate) mod outcome;
mod schedule;
mod transaction;

use std::sync::Arc;

use store::{QueueStore, QueuedMessage, Store, UnixTime};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::Connectors;
use crate::config::QueueConfig;
use crate::dkim::Signer;
use crate::dns::Dns;

fn now() -> UnixTime {
    chrono::Utc::now().timestamp()
}

/// One message of a lease and the recipient ids to try.
struct Work {
    msg: QueuedMessage,
    rcpts: Vec<i64>,
}

pub struct Engine {
    config: QueueConfig,
    queue: Arc<dyn QueueStore>,
    store: Arc<dyn Store>,
    dns: Dns,
    tls: Connectors,
    signer: Signer,
    /// This process's delivery slots (`max_concurrent_deliveries`); a claim round asks for
    /// at most as many leases as are free.
    global: Arc<Semaphore>,
    /// The holder name of this process's leases (see [`Engine::node_id`]).
    node: String,
    /// The delivery tasks, so that shutdown can stop them and release their leases.
    tasks: TaskTracker,
    /// Cancelled at shutdown: delivery tasks stop and release their leases.
    stop: CancellationToken,
}

impl Engine {
    pub fn new(
        config: QueueConfig,
        queue: Arc<dyn QueueStore>,
        store: Arc<dyn Store>,
    ) -> Result<Arc<Engine>, String> {
        let dns = Dns::new(config.nameservers.as_deref(), config.dns_override.clone());
        Engine::with_dns(config, queue, store, dns)
    }

    pub fn with_dns(
        config: QueueConfig,
        queue: Arc<dyn QueueStore>,
        store: Arc<dyn Store>,
        dns: Dns,
    ) -> Result<Arc<Engine>, String> {
        let tls = Connectors::new().map_err(|e| format!("TLS client setup: {e}"))?;
        let signer = Signer::new(
            store.clone(),
            config.dkim_selectors.clone(),
            config.dkim_refresh,
        );
        Ok(Arc::new(Engine {
            global: Arc::new(Semaphore::new(config.max_concurrent_deliveries.max(1))),
            node: node_id(&config.hostname),
            config,
            queue,
            store,
            dns,
            tls,
            signer,
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
        }))
    }

    /// The name this process holds its leases under: host name, process id and a random
    /// part (so that a restarted process, even with the same pid, never takes its
    /// predecessor's leases for its own). Shown by `yubin queue list` and in logs.
    pub fn node_id(&self) -> &str {
        &self.node
    }
}

fn node_id(hostname: &str) -> String {
    format!(
        "{hostname}/{}/{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

//! yubin's shared store for several nodes: accounts, mailboxes, messages, message bodies and
//! the outbound queue in one PostgreSQL database, implementing [`store::Directory`],
//! [`store::MailStore`] and [`store::QueueStore`] with the semantics of the embedded store
//! (`store-sqlite`), so that N yubin nodes behind a load balancer serve every account.
//!
//! - Schema (`schema.rs`): readable tables, versioned migrations in `schema_migrations`,
//!   applied under an advisory lock so nodes starting together do not race.
//! - Message bodies live in `blobs` (`bytea`), content-addressed by SHA-256 and shared by
//!   every message and queue entry with the same bytes (a reference count; the row goes in
//!   the transaction that drops the last reference). Large ones are streamed out in slices
//!   (`blob_stream.rs`); parsed facts are cached per body in `message_facts` and in memory.
//! - Writes (`tx.rs`): one READ COMMITTED transaction each, with row locks in a fixed order
//!   (`prim.rs`) so UIDs and MODSEQs stay strictly increasing per mailbox (RFC 9051
//!   §2.3.1.1, RFC 7162 §3.1) under concurrent writers on different nodes; retried on
//!   serialization failures and deadlocks; durable on `Ok` (`synchronous_commit = on` is
//!   forced for every connection).
//! - Change events are published in this process after the commit, and each transaction
//!   that changed an account sends `NOTIFY yubin_changes, '<account id>'` for other nodes.
//! - What nodes agree on (`coord.rs`, `store::Coordination`): leases with expiry by the
//!   database's clock in `leases` (the POP3 maildrop lock, RFC 1939 §8, held across nodes and
//!   lapsing when its holder dies), store-wide secrets in `secrets`, and each mailbox's
//!   `\Recent` mark (RFC 3501 §2.3.2) in `mailboxes.recent_uid`.
//! - DKIM signing keys in `dkim_keys` (`dkim.rs`, `store::DkimKeyStore`): every node signs
//!   with the same keys.
//! - `yubin migrate` to and from PostgreSQL (`transfer.rs`, `store::transfer::Transfer`).
//! - The outbound queue is shared by the nodes: work is claimed under leases per (message,
//!   destination domain), with per-destination connection limits counted across nodes
//!   (`claims.rs`); the per-account sending limits count in one `sending_log` (`sending.rs`).
//! - The password-guessing defence's failed-login counters and IP bans (`login_guard.rs`,
//!   `store::LoginGuardStore`) are shared by the nodes too.
//!
//! Not implemented: TLS to the database server (connect over a private network or a local
//! socket), reading change events of other nodes (the LISTEN side).

mod batch;
mod blob_stream;
mod change_log;
mod check;
mod claims;
mod coord;
mod dates;
mod db;
mod dkim;
mod error;
mod expunge_log;
mod greylist;
mod login_guard;
mod mailstore;
mod ops_dir;
mod ops_mailbox;
mod ops_msg;
mod ops_queue;
mod ops_urlauth;
mod prim;
mod queue;
mod quota;
mod reads;
mod schema;
mod sending;
mod transfer;
mod tx;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use mail_types::Address;
use store::{AccountId, ChangeHub, StoreError, StoreResult};

use crate::tx::write_tx;
use store::backend::facts_cache;

pub use crate::schema::SCHEMA_VERSION;

/// The PostgreSQL store. Cheap to share behind an `Arc`; several `PgStore`s (in one process or
/// on several nodes) on one database see each other's writes.
pub struct PgStore {
    pub(crate) pool: Pool,
    hub: Arc<ChangeHub>,
    /// Woken after each queue change made through this handle.
    pub(crate) queue_notify: Arc<tokio::sync::Notify>,
    /// This handle's name in queue wake-ups, so that its follower ignores its own.
    pub(crate) instance: String,
    /// Held by a committing transaction with events, per shard of accounts (`tx.rs`), so that
    /// events of one mailbox are published in commit order.
    pub(crate) publish_order: Vec<tokio::sync::Mutex<()>>,
    /// The message facts most recently used, in front of the `message_facts` table.
    pub(crate) facts: facts_cache::FactsCache,
    /// Which account each mailbox belongs to (see `store::backend::owners`).
    pub(crate) owners: store::backend::owners::Owners,
    /// The configured quota defaults (`store::QuotaStore::set_quota_defaults`).
    pub(crate) quota: std::sync::RwLock<Arc<store::QuotaDefaults>>,
    /// Brings other nodes' changes to this node's subscribers (see `change_log.rs`).
    _follower: Option<change_log::Follower>,
}

/// Shards of [`PgStore::publish_order`].
const PUBLISH_SHARDS: usize = 64;

/// Settings for [`connect`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Database connections kept by this process at most.
    pub pool_size: usize,
    /// How long to wait for a new connection, and for a free one from the pool.
    pub connect_timeout: Duration,
    /// Bytes of message facts kept in memory (0: none; the table is read every time).
    pub facts_cache_bytes: usize,
    /// How long change log rows are kept: a session further behind rereads what it shows.
    pub change_log_retention: Duration,
    /// Follow other nodes' changes (LISTEN on a connection of its own). Off for short-lived
    /// admin commands, which subscribe to nothing.
    pub follow: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            pool_size: 16,
            connect_timeout: Duration::from_secs(10),
            facts_cache_bytes: facts_cache::DEFAULT_BYTES,
            change_log_retention: Duration::from_secs(120),
            follow: true,
        }
    }
}

/// Connects to the database at `url` (`postgres://user:password@host:port/dbname`, or the
/// key=value form libpq takes), creates or upgrades the schema, and returns the store.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Arc<PgStore>, StoreError> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("database URL: {e}")))?;
    // Every write is acknowledged only once it is durable: whatever the server's or the
    // database's default, this process commits with synchronous_commit on.
    let opts = match config.get_options() {
        Some(o) if !o.is_empty() => format!("{o} -c synchronous_commit=on"),
        _ => "-c synchronous_commit=on".to_string(),
    };
    config.options(&opts);
    if config.get_application_name().is_none() {
        config.application_name("yubin");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(options.connect_timeout);
    }
    let listen_config = config.clone();
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(options.connect_timeout))
        .create_timeout(Some(options.connect_timeout))
        .build()
        .map_err(|e| StoreError::Invalid(format!("database pool: {e}")))?;
    let mut client = pool
        .get()
        .await
        .map_err(|e| StoreError::Temporary(format!("cannot connect to the database: {e}")))?;
    schema::migrate(&mut client)
        .await
        .map_err(error::Error::into_store)?;
    drop(client);
    let hub = Arc::new(ChangeHub::default());
    let queue_notify = Arc::new(tokio::sync::Notify::new());
    let instance = format!("{:016x}", rand::random::<u64>());
    let follower = options.follow.then(|| {
        change_log::start(
            listen_config,
            pool.clone(),
            Arc::clone(&hub),
            change_log::QueueWake {
                notify: Arc::clone(&queue_notify),
                instance: instance.clone(),
            },
            options.change_log_retention,
        )
    });
    Ok(Arc::new(PgStore {
        pool,
        hub,
        _follower: follower,
        queue_notify,
        instance,
        publish_order: (0..PUBLISH_SHARDS)
            .map(|_| tokio::sync::Mutex::new(()))
            .collect(),
        facts: facts_cache::FactsCache::new(options.facts_cache_bytes),
        owners: Default::default(),
        quota: Default::default(),
    }))
}

impl PgStore {
    /// Publishes the events of a committed transaction. The one place events leave the store
    /// (see `tx.rs`).
    pub(crate) fn publish(&self, batches: Vec<store::LoggedBatch>) {
        if !batches.is_empty() {
            self.hub.publish(batches);
        }
    }

    /// The publishing shard of `account`.
    pub(crate) fn publish_shard(&self, account: AccountId) -> usize {
        account.0.rem_euclid(PUBLISH_SHARDS as i64) as usize
    }

    /// The quota defaults this handle applies.
    pub(crate) fn quota_defaults(&self) -> Arc<store::QuotaDefaults> {
        Arc::clone(&self.quota.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Sets (or with `None` removes) an account's storage limit override in bytes, keeping
    /// its message limit (see [`store::QuotaStore::set_quota_limits`]).
    pub async fn set_quota(&self, address: &Address, limit: Option<u64>) -> StoreResult<()> {
        if limit.is_some_and(|l| l > i64::MAX as u64) {
            return Err(StoreError::Invalid("quota limit too large".into()));
        }
        write_tx!(self, |tx| ops_dir::set_quota(tx, address, limit))
    }

    /// The schema version of the database (the highest step in `schema_migrations`).
    pub async fn schema_version(&self) -> StoreResult<i32> {
        tx::read!(self, |c| async {
            Ok(
                db::one(c, "SELECT max(version) FROM schema_migrations", &[])
                    .await?
                    .get(0),
            )
        })
    }
}

//! The durable outbound queue: messages for other domains, waiting for delivery to their MX.
//!
//! A separate trait from [`crate::MailStore`] so that only the parts of yubin that send mail see
//! it. The embedded backend keeps the queue in its SQLite database, with message bodies in the
//! same content-addressed blob store as mailboxes; a PostgreSQL backend shares the queue between
//! nodes.
//!
//! Invariant: `enqueue` returns `Ok` only once the message and its envelope are durable — SMTP
//! answers `250` right after it (RFC 5321 §6.1: the server takes responsibility for the message).
//!
//! ## Claims and leases (several processes on one queue)
//!
//! Several processes (the nodes of a cluster, or two servers on one embedded store) run the
//! queue at once. Work is taken with [`QueueStore::claim_due`], never just read: a claim takes
//! the due recipients of one *(message, destination domain)* for one [`Lease`] held by one
//! process (its node id), until the lease's expiry. Why that unit: the recipients of one
//! message at one domain go in one SMTP transaction (several RCPTs), while its recipients at
//! other domains go to other hosts, possibly from other nodes, so a slow domain never holds
//! up the rest of the message.
//!
//! A lease is one delivery batch: the messages of one destination that one connection carries
//! (at most `ClaimLimits::per_batch`). The per-destination connection limit is therefore "at
//! most `ClaimLimits::per_destination` live leases per destination", counted in the claim's
//! own transaction, so it holds across every process sharing the store.
//!
//! - While a lease is live, its recipients are not due for anyone else: the claim moves their
//!   `next_attempt` to the lease's expiry (a "visibility timeout", as in message queues), so
//!   the index of due work is also the index of unclaimed work. [`QueueStore::renew`] pushes
//!   both forward; the holder renews every third of the lease while it delivers.
//! - A crashed holder's recipients come due again when its lease expires, and the next claim
//!   takes them: a transfer in flight at the crash may be repeated (RFC 5321 §6.1 accepts
//!   that), nothing is lost.
//! - Results are recorded by the holder only ([`QueueStore::record_attempts`] names the lease;
//!   a result for a recipient claimed by a newer lease, or finished, is ignored).
//! - Fairness: one claim round gives each destination domain at most one batch (its oldest due
//!   messages first) and goes round the domains by their earliest due time, so a thousand
//!   messages for one slow domain never delay the mail for others (no head-of-line blocking).
//!
//! A backend does the claim in one write transaction. SQLite serialises writers, so its claim
//! cannot race. A PostgreSQL backend selects the candidate rows with
//! `SELECT … FOR UPDATE SKIP LOCKED` (per destination domain, `ORDER BY next_attempt LIMIT n`
//! over an index on `(domain, next_attempt) WHERE status = 'pending'`) and updates them in the
//! same transaction; rows another node is claiming at that instant are skipped, not waited
//! for. The per-destination lease count takes a row lock on the destination's row (`SELECT …
//! FOR UPDATE` on the table of due destinations) before counting, so two nodes cannot both
//! take the last connection slot. Lease expiry compares against the caller's clock (`now`);
//! nodes must keep their clocks in step (NTP), or such a backend uses the database's clock.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{AccountId, StoreResult, UnixTime};

/// A queued message's identifier, as shown by `yubin queue list`.
pub type QueueId = i64;

/// RFC 3461 §4.1 NOTIFY: which delivery status notifications the sender asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DsnNotify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Default for DsnNotify {
    /// RFC 3461 §4.1: without NOTIFY, the server behaves as if NOTIFY=FAILURE,DELAY.
    fn default() -> Self {
        DsnNotify {
            success: false,
            failure: true,
            delay: true,
        }
    }
}

impl DsnNotify {
    /// The stored form: bit 1 SUCCESS, 2 FAILURE, 4 DELAY (0 = NEVER).
    pub fn bits(self) -> u8 {
        u8::from(self.success) | (u8::from(self.failure) << 1) | (u8::from(self.delay) << 2)
    }

    pub fn from_bits(b: u8) -> DsnNotify {
        DsnNotify {
            success: b & 1 != 0,
            failure: b & 2 != 0,
            delay: b & 4 != 0,
        }
    }

    /// NOTIFY=NEVER.
    pub const NEVER: DsnNotify = DsnNotify {
        success: false,
        failure: false,
        delay: false,
    };
}

/// RFC 3461 §4.3 RET: how much of the message a failure DSN returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnRet {
    Full,
    Headers,
}

impl DsnRet {
    /// The stored spelling: `full` or `hdrs`, as in the RET parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            DsnRet::Full => "full",
            DsnRet::Headers => "hdrs",
        }
    }

    pub fn parse(s: &str) -> Option<DsnRet> {
        match s {
            "full" => Some(DsnRet::Full),
            "hdrs" => Some(DsnRet::Headers),
            _ => None,
        }
    }
}

/// One recipient of an outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecipient {
    /// The forward-path as given in RCPT TO (UTF-8 allowed with SMTPUTF8).
    pub address: String,
    /// RFC 3461 §4.2 ORCPT, kept as `addr-type;xtext-address`.
    pub orcpt: Option<String>,
    pub notify: DsnNotify,
}

/// The SMTP envelope of an outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundEnvelope {
    /// The reverse-path; empty for the null sender `<>` (never bounced, RFC 5321 §4.5.5).
    pub sender: String,
    pub recipients: Vec<OutboundRecipient>,
    /// RFC 3461 §4.4 ENVID.
    pub envid: Option<String>,
    pub ret: Option<DsnRet>,
    /// The authenticated account that submitted it, if any (for logs and sending limits).
    pub account: Option<AccountId>,
    /// The message needs SMTPUTF8 at the next hop (RFC 6531 §3.4).
    pub smtputf8: bool,
}

/// Where one recipient of a queued message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientStatus {
    /// Not delivered yet; tried again at `next_attempt`.
    Pending,
    /// Accepted by the next hop (or delivered locally).
    Delivered,
    /// Given up: permanent error, or too old (RFC 5321 §4.5.4.1).
    Failed,
}

impl RecipientStatus {
    /// The spelling stored and shown by `yubin queue`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientStatus::Pending => "pending",
            RecipientStatus::Delivered => "delivered",
            RecipientStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<RecipientStatus> {
        Some(match s {
            "pending" => RecipientStatus::Pending,
            "delivered" => RecipientStatus::Delivered,
            "failed" => RecipientStatus::Failed,
            _ => return None,
        })
    }
}

/// One recipient row of a queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedRecipient {
    /// Unique within the queue; [`AttemptResult::recipient`] names it.
    pub id: i64,
    pub address: String,
    /// The domain part, lower-case: recipients are grouped by it for delivery.
    pub domain: String,
    pub orcpt: Option<String>,
    pub notify: DsnNotify,
    pub status: RecipientStatus,
    pub attempts: u32,
    pub next_attempt: UnixTime,
    /// The last reply or connection error, for `yubin queue show` and DSNs.
    pub last_error: Option<String>,
    pub last_attempt: Option<UnixTime>,
    /// The lease that claimed it and has not recorded a result yet, if that lease still exists
    /// (it may have expired; [`QueueStore::leases`] lists the live ones with their holders).
    pub lease: Option<LeaseId>,
}

/// A queued message with its envelope and every recipient (whatever their status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: QueueId,
    pub size: u64,
    /// The reverse-path; empty for `<>`.
    pub sender: String,
    pub envid: Option<String>,
    pub ret: Option<DsnRet>,
    pub account: Option<AccountId>,
    pub smtputf8: bool,
    pub created: UnixTime,
    /// A delay notice (RFC 3464 `Action: delayed`) was already sent for this message.
    pub delay_notified: bool,
    pub recipients: Vec<QueuedRecipient>,
}

impl QueuedMessage {
    /// The envelope it was queued with (recipients in order, whatever their status).
    pub fn envelope(&self) -> OutboundEnvelope {
        OutboundEnvelope {
            sender: self.sender.clone(),
            recipients: self
                .recipients
                .iter()
                .map(|r| OutboundRecipient {
                    address: r.address.clone(),
                    orcpt: r.orcpt.clone(),
                    notify: r.notify,
                })
                .collect(),
            envid: self.envid.clone(),
            ret: self.ret,
            account: self.account,
            smtputf8: self.smtputf8,
        }
    }
}

/// What happened to one recipient in one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub recipient: i64,
    /// The new status; `Pending` means "retry at `next_attempt`".
    pub status: RecipientStatus,
    pub next_attempt: UnixTime,
    /// The reply text or connection error (no message content).
    pub error: Option<String>,
    pub at: UnixTime,
}

/// A lease's identifier: unique, never reused.
pub type LeaseId = i64;

/// How much one [`QueueStore::claim_due`] call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    /// At most this many leases (delivery batches) in this call: the caller's free delivery
    /// slots, so that it never holds work it cannot start.
    pub leases: usize,
    /// At most this many messages in one lease (one connection carries them in turn).
    pub per_batch: usize,
    /// At most this many live leases per destination, over every holder (the connection limit
    /// per destination, Postfix's `smtp_destination_concurrency_limit`).
    pub per_destination: usize,
    /// Every message goes to one destination (a smarthost): leases still take one domain's
    /// messages each, but count against the per-destination limit of the destination `""`.
    pub single_destination: bool,
}

/// A live lease: one delivery batch of one holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: LeaseId,
    /// The destination whose connection limit it counts against: the domain, or `""` for
    /// the smarthost.
    pub destination: String,
    /// The recipients' domain.
    pub domain: String,
    /// The node id of the process holding it.
    pub holder: String,
    pub expires: UnixTime,
}

/// One claimed message of a lease, and the recipients the lease holds of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedMessage {
    /// The whole message with every recipient, as [`QueueStore::queued_message`] reads it.
    pub message: QueuedMessage,
    /// The ids of the recipients to deliver now (pending, at the lease's domain).
    pub recipients: Vec<i64>,
}

/// What one claim took: a lease and its messages, oldest due first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub lease: Lease,
    pub messages: Vec<ClaimedMessage>,
}

#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Stores the message and its envelope durably and wakes the delivery scheduler.
    async fn enqueue(
        &self,
        message: Arc<Vec<u8>>,
        envelope: &OutboundEnvelope,
    ) -> StoreResult<QueueId>;

    /// Notified after every enqueue (and other queue changes made by this process), so the
    /// scheduler need not poll for new work.
    fn queue_notifier(&self) -> Arc<tokio::sync::Notify>;

    /// Takes due work for `holder` (see the module documentation): recipients that are pending
    /// and due at `now` (never claimed, their lease expired, or released), grouped into leases
    /// of one destination each, expiring at `now + lease_secs`. Durable on `Ok`; two callers
    /// never get the same recipient while its lease is live. Each destination domain gets at
    /// most one lease per call, with its oldest due messages; domains are taken in the order of
    /// their earliest due recipient, until `limits.leases` leases are made. A destination
    /// that already has `limits.per_destination` live leases (of any holder) gets none.
    async fn claim_due(
        &self,
        holder: &str,
        now: UnixTime,
        lease_secs: u64,
        limits: &ClaimLimits,
    ) -> StoreResult<Vec<Claim>>;

    /// Extends a live lease of `holder` to `now + lease_secs`, with the recipients it still
    /// holds. `Ok(false)`: the lease is gone (expired and cleaned up, or released); the holder
    /// must stop working on it, another process may have its recipients.
    async fn renew(
        &self,
        lease: LeaseId,
        holder: &str,
        now: UnixTime,
        lease_secs: u64,
    ) -> StoreResult<bool>;

    /// Ends a lease: its destination's connection slot is free, and recipients it still holds
    /// (no result recorded) are due again at `now`. Releasing a lease that is gone is no error.
    async fn release(&self, lease: LeaseId, now: UnixTime) -> StoreResult<()>;

    /// The live leases (for `yubin queue list/show`: who delivers what, until when).
    async fn leases(&self, now: UnixTime) -> StoreResult<Vec<Lease>>;

    /// The earliest `next_attempt` of any pending recipient, if any.
    async fn next_due(&self) -> StoreResult<Option<UnixTime>>;

    /// One queued message, or `None`.
    async fn queued_message(&self, id: QueueId) -> StoreResult<Option<QueuedMessage>>;

    /// Every queued message, oldest first (for `yubin queue list`).
    async fn list_queue(&self) -> StoreResult<Vec<QueuedMessage>>;

    /// The message bytes of a queued message (`NotFound` once it has been removed).
    async fn queued_body(&self, id: QueueId) -> StoreResult<Arc<Vec<u8>>>;

    /// Records attempt results of recipients claimed by `lease`, which also ends the lease's
    /// hold on them. A recipient that is no longer pending (deleted, or already finished) or no
    /// longer held by `lease` (claimed again after the lease expired) is skipped silently: a
    /// late result of a holder that lost its lease cannot overwrite the new holder's work.
    /// Durable on `Ok`.
    async fn record_attempts(&self, lease: LeaseId, results: &[AttemptResult]) -> StoreResult<()>;

    /// Marks that the delay notice of a message was sent.
    async fn set_delay_notified(&self, id: QueueId) -> StoreResult<()>;

    /// Makes the pending recipients of message `id` (or of every message with `None`) due at
    /// `now`; returns how many recipients were rescheduled. Recipients held by a live lease
    /// are left alone (they are being delivered). Wakes the scheduler.
    async fn retry_queued(&self, id: Option<QueueId>, now: UnixTime) -> StoreResult<u64>;

    /// Removes a message and all its recipients from the queue, releasing its body
    /// (`NotFound` if there is no such message).
    async fn delete_queued(&self, id: QueueId) -> StoreResult<()>;

    /// Removes every message none of whose recipients is pending any more; returns how many.
    async fn remove_finished(&self) -> StoreResult<u64>;
}

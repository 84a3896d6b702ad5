//! The durable outbound queue: messages for other domains, waiting for delivery to their MX.
//!
//! A separate trait from [`crate::MailStore`] so that only the parts of yubin that send mail see
//! it. The embedded backend keeps the queue in its SQLite database, with message bodies in the
//! same content-addressed blob store as mailboxes; a PostgreSQL backend shares the queue between
//! nodes.
//!
//! Invariant: `enqueue` returns `Ok` only once the message and its envelope are durable — SMTP
//! answers `250` right after it (RFC 5321 §6.1: the server takes responsibility for the message).

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

    /// Messages with at least one pending recipient whose `next_attempt <= now`, oldest first,
    /// at most `limit`, each with all its recipients.
    async fn due_messages(&self, now: UnixTime, limit: usize) -> StoreResult<Vec<QueuedMessage>>;

    /// The earliest `next_attempt` of any pending recipient, if any.
    async fn next_due(&self) -> StoreResult<Option<UnixTime>>;

    /// One queued message, or `None`.
    async fn queued_message(&self, id: QueueId) -> StoreResult<Option<QueuedMessage>>;

    /// Every queued message, oldest first (for `yubin queue list`).
    async fn list_queue(&self) -> StoreResult<Vec<QueuedMessage>>;

    /// The message bytes of a queued message (`NotFound` once it has been removed).
    async fn queued_body(&self, id: QueueId) -> StoreResult<Arc<Vec<u8>>>;

    /// Records attempt results. A recipient that is no longer pending (deleted, or already
    /// finished) is skipped silently. Durable on `Ok`.
    async fn record_attempts(&self, results: &[AttemptResult]) -> StoreResult<()>;

    /// Marks that the delay notice of a message was sent.
    async fn set_delay_notified(&self, id: QueueId) -> StoreResult<()>;

    /// Makes the pending recipients of message `id` (or of every message with `None`) due at
    /// `now`; returns how many recipients were rescheduled. Wakes the scheduler.
    async fn retry_queued(&self, id: Option<QueueId>, now: UnixTime) -> StoreResult<u64>;

    /// Removes a message and all its recipients from the queue, releasing its body
    /// (`NotFound` if there is no such message).
    async fn delete_queued(&self, id: QueueId) -> StoreResult<()>;

    /// Removes every message none of whose recipients is pending any more; returns how many.
    async fn remove_finished(&self) -> StoreResult<u64>;
}

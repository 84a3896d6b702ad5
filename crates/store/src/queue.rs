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

use crate::{AccountId, StoreResult};

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
}

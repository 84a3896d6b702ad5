//! Where a DSN goes: into the sender's INBOX when the sender is local, else through the queue
//! with the null sender. Never to a null sender (RFC 5321 §4.5.5, RFC 3464 §4).

use std::sync::Arc;

use store::{DsnNotify, OutboundEnvelope, OutboundRecipient, QueuedMessage};

use super::{Engine, now};
use crate::dsn::{self, DsnRecipient};

impl Engine {
    /// Builds and sends a DSN about `rcpts` of `msg` to its sender.
    pub(super) async fn send_dsn(&self, msg: &QueuedMessage, rcpts: &[DsnRecipient]) {
        if msg.sender.is_empty() {
            return;
        }
        let original = match self.queue.queued_body(msg.id).await {
            Ok(b) => b,
            Err(_) => Arc::new(Vec::new()),
        };
        let arrival = chrono::DateTime::from_timestamp(msg.created, 0)
            .map(|d| d.to_rfc2822())
            .unwrap_or_default();
        let bytes = match dsn::build(&self.config.hostname, msg, rcpts, &original, &arrival) {
            Ok(b) => Arc::new(b),
            Err(e) => {
                tracing::warn!(queue_id = msg.id, error = %e, "cannot build the DSN");
                return;
            }
        };
        match self.deliver_dsn(&msg.sender, bytes).await {
            Ok(()) => tracing::info!(queue_id = msg.id, recipients = rcpts.len(), "DSN sent"),
            Err(e) => tracing::warn!(queue_id = msg.id, error = %e, "cannot send the DSN"),
        }
    }

    async fn deliver_dsn(&self, to: &str, bytes: Arc<Vec<u8>>) -> Result<(), store::StoreError> {
        if let Ok(addr) = mail_types::Address::parse(to)
            && self.store.is_local_domain(addr.domain()).await?
        {
            let accounts = self.store.resolve_recipient(&addr).await?;
            if accounts.is_empty() {
                tracing::warn!("DSN for a local sender without a mailbox dropped");
                return Ok(());
            }
            self.store.deliver(bytes, now(), &accounts).await?;
            return Ok(());
        }
        let env = OutboundEnvelope {
            sender: String::new(),
            recipients: vec![OutboundRecipient {
                address: to.to_string(),
                orcpt: None,
                notify: DsnNotify::NEVER,
            }],
            envid: None,
            ret: None,
            account: None,
            smtputf8: false,
        };
        self.queue.enqueue(bytes, &env).await.map(|_| ())
    }
}

//! Final delivery of a received message into the local store, and the one mapping from
//! `StoreError` to SMTP replies.
//!
//! Invariant: `250 … queued as` is sent only after `store.deliver` returned Ok; the store has
//! then made the message durable (RFC 5321 §6.1: once accepted, the message must not be lost).

use std::io;
use std::sync::Arc;

use smtp_proto::Reply;
use store::StoreError;

use crate::session::{Flow, Helo, Session, State, Transaction};
use crate::trace::{TraceInfo, new_queue_id, protocol, trace_headers};

/// The reply for a store failure (the one place SMTP maps `StoreError`).
pub(crate) fn store_error_reply(e: &StoreError) -> Reply {
    match e {
        // RFC 3463 X.2.2: mailbox full.
        StoreError::OverQuota => Reply::new(452, "4.2.2", "Mailbox full"),
        // Anything else is our problem, and temporary from the client's view (RFC 3463 X.3.0).
        _ => Reply::new(451, "4.3.0", "Local error in processing, try again later"),
    }
}

impl Session {
    /// Delivers `body` (the DATA or BDAT content) to the transaction's recipients, answers,
    /// and returns the session to the greeted state (RFC 5321 §4.1.1.4: the transaction ends).
    pub(crate) async fn deliver(
        &mut self,
        helo: Helo,
        txn: Transaction,
        mut body: Vec<u8>,
    ) -> io::Result<Flow> {
        self.state = State::Ready(helo.clone());
        // Every stored message ends with CRLF (RFC 5322 §2.1 lines end in CRLF).
        if !body.is_empty() && !body.ends_with(b"\r\n") {
            body.extend_from_slice(b"\r\n");
        }
        let id = new_queue_id();
        let now = chrono::Utc::now();
        let headers = trace_headers(&TraceInfo {
            from: &txn.from,
            helo: &helo.name,
            peer: self.info.peer.ip(),
            hostname: &self.server.config.hostname,
            protocol: protocol(
                helo.extended,
                self.conn.is_tls(),
                self.auth.is_some(),
                txn.params.smtputf8,
            ),
            id: &id,
            for_rcpt: match txn.rcpts.as_slice() {
                [one] => Some(one.address.to_string()),
                _ => None,
            },
            date: now,
        });
        let mut message = Vec::with_capacity(headers.len() + body.len());
        message.extend_from_slice(headers.as_bytes());
        message.extend_from_slice(&body);
        drop(body);
        let size = message.len();

        let mut accounts: Vec<_> = txn
            .rcpts
            .iter()
            .flat_map(|r| r.accounts.iter().copied())
            .collect();
        accounts.sort_unstable();
        accounts.dedup();

        let result = self
            .server
            .store
            .deliver(Arc::new(message), now.timestamp(), &accounts)
            .await;
        let reply = match &result {
            Ok(_) => Reply::new(250, "2.0.0", format!("Ok: queued as {id}")),
            Err(e) => store_error_reply(e),
        };
        tracing::info!(
            conn = self.info.id,
            queue_id = %id,
            size,
            recipients = txn.rcpts.len(),
            accounts = accounts.len(),
            result = match &result {
                Ok(_) => "delivered".to_string(),
                Err(e) => e.to_string(),
            },
            "smtp delivery"
        );
        self.reply(reply).await?;
        // RFC 2920 §3.1: the end of data is a synchronisation point; answer now.
        self.conn.flush().await?;
        Ok(Flow::Continue)
    }
}

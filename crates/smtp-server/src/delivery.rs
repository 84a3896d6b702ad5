//! Final delivery of a received message into the local store, and the one mapping from
//! `StoreError` to SMTP replies.
//!
//! Invariant: `250 … queued as` is sent only after `store.deliver` and `QueueStore::enqueue`
//! returned Ok; the store has then made the message durable (RFC 5321 §6.1: once accepted, the message must not be lost).

use std::io;
use std::sync::Arc;

use smtp_proto::Reply;
use store::{DsnNotify, DsnRet, OutboundEnvelope, OutboundRecipient, StoreError};

use crate::headers::submission_fixes;
use crate::inbound::{Checked, check};
use crate::quota;
use crate::session::{Flow, Helo, Recipient, Session, State, Transaction};
use crate::submission::{check_from, count_message};
use crate::trace::{TraceInfo, new_queue_id, protocol, received, trace_headers};

/// The reply for a store failure (the one place SMTP maps `StoreError`).
pub(crate) fn store_error_reply(e: &StoreError) -> Reply {
    match e {
        // RFC 3463 X.2.2: mailbox full.
        StoreError::OverQuota => Reply::new(452, "4.2.2", "Mailbox full"),
        // RFC 5321 §4.2.5 452 "insufficient system storage"; RFC 3463 §3.4 X.3.1 "mail
        // system full": the disk of the store is full (the client retries later).
        e if e.is_storage_full() => Reply::new(452, "4.3.1", "Insufficient system storage"),
        // Anything else is our problem, and temporary from the client's view (RFC 3463 X.3.0).
        _ => Reply::new(451, "4.3.0", "Local error in processing, try again later"),
    }
}

impl Session {
    /// Delivers `body` (the DATA or BDAT content) to the transaction's recipients, answers,
    /// and returns the session to the greeted state (RFC 5321 §4.1.1.4: the transaction ends).
    ///
    /// For an authenticated sender the From: check and the submission fixes come first
    /// (RFC 6409 §6.1, §8). Local recipients get the message through `store.deliver`; remote
    /// ones through one `outbound.enqueue`. If one of the two fails after the other succeeded,
    /// the client gets a temporary error and will send again: the successful half then arrives
    /// twice (a duplicate, never a loss).
    pub(crate) async fn deliver(
        &mut self,
        helo: Helo,
        mut txn: Transaction,
        mut body: Vec<u8>,
    ) -> io::Result<Flow> {
        self.state = State::Ready(helo.clone());
        // Every stored message ends with CRLF (RFC 5322 §2.1 lines end in CRLF).
        if !body.is_empty() && !body.ends_with(b"\r\n") {
            body.extend_from_slice(b"\r\n");
        }
        let now = chrono::Utc::now();
        if let Some(user) = self.auth.clone() {
            let store = Arc::clone(&self.server.store);
            let refusal = match check_from(store.as_ref(), &user, &body).await {
                Ok(r) => r,
                Err(e) => Some(store_error_reply(&e)),
            };
            if let Some(reply) = refusal {
                telemetry::smtp_rejected(telemetry::Rejection::SenderNotOwned);
                tracing::info!(conn = self.info.id, user = %user.address, "smtp: submission refused: From: not the user's");
                self.reply(reply).await?;
                self.conn.flush().await?;
                return Ok(Flow::Continue);
            }
            body = submission_fixes(&body, &self.server.config.hostname, now);
        }
        // The checks of arriving mail decide before anything is stored (RFC 7489 §6.6.3 policy,
        // RFC 8601 §5 header); see `inbound`.
        let mut auth_results = String::new();
        let mut junk = false;
        let mut auth_summary = String::new();
        let mut client_name = None;
        if let Some(pending) = txn.checks.take() {
            let host = self.server.config.hostname.clone();
            match check(pending, body, &host, self.info.id).await {
                Checked::Refuse(reply) => {
                    telemetry::smtp_rejected(telemetry::Rejection::InboundAuth);
                    self.reply(reply).await?;
                    self.conn.flush().await?;
                    return Ok(Flow::Continue);
                }
                Checked::Accept {
                    body: checked,
                    header,
                    junk: j,
                    summary,
                    client_name: name,
                } => {
                    body = checked;
                    auth_results = header;
                    junk = j;
                    auth_summary = summary;
                    client_name = name;
                }
            }
        }
        // Counted before it is stored, checked in the same store transaction (see `rate.rs`).
        let mut counted = None;
        if let Some(user) = &self.auth {
            let cfg = &self.server.config;
            match count_message(cfg, &self.server.rate, user, txn.rcpts.len()).await {
                Ok(Ok(entry)) => counted = entry,
                Ok(Err(reply)) => {
                    telemetry::smtp_rejected(telemetry::Rejection::RateLimit);
                    tracing::info!(conn = self.info.id, user = %user.address, "smtp: sending limit reached");
                    self.reply(reply).await?;
                    self.conn.flush().await?;
                    return Ok(Flow::Continue);
                }
                Err(e) => {
                    self.reply(store_error_reply(&e)).await?;
                    self.conn.flush().await?;
                    return Ok(Flow::Continue);
                }
            }
        }
        let id = new_queue_id();
        let trace = TraceInfo {
            from: &txn.from,
            helo: &helo.name,
            peer: self.info.peer.ip(),
            client_name: client_name.as_deref(),
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
        };

        let mut accounts: Vec<_> = txn
            .rcpts
            .iter()
            .flat_map(|r| r.accounts.iter().copied())
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        let remote: Vec<_> = txn.rcpts.iter().filter(|r| r.accounts.is_empty()).collect();

        let mut result = Ok(());
        // Local recipients whose mailbox had no room for the message (`quota.rs`).
        let mut full = Vec::new();
        if !accounts.is_empty() {
            // Return-Path, then our results above our Received: (RFC 8601 §5 prepends them,
            // as trace fields are, RFC 5322 §3.6.7).
            let headers = trace_headers(&trace);
            let (return_path, received) = headers.split_at(headers.find('\n').map_or(0, |i| i + 1));
            let mut message = Vec::with_capacity(headers.len() + auth_results.len() + body.len());
            message.extend_from_slice(return_path.as_bytes());
            message.extend_from_slice(auth_results.as_bytes());
            message.extend_from_slice(received.as_bytes());
            message.extend_from_slice(&body);
            let message = Arc::new(message);
            let store = self.server.store.as_ref();
            let begun = std::time::Instant::now();
            result = quota::deliver_with_room(store, message, now.timestamp(), &accounts, junk)
                .await
                .map(|f| full = f);
            telemetry::store_latency(telemetry::StoreOp::Deliver, begun.elapsed());
            if result.is_ok() && full.len() == accounts.len() && remote.is_empty() {
                // Every recipient is full: refuse the message (nothing was stored).
                result = Err(StoreError::OverQuota);
            }
        }
        if result.is_ok() && !remote.is_empty() {
            let headers = received(&trace);
            let mut message = Vec::with_capacity(headers.len() + auth_results.len() + body.len());
            message.extend_from_slice(auth_results.as_bytes());
            message.extend_from_slice(headers.as_bytes());
            message.extend_from_slice(&body);
            let envelope = outbound_envelope(&txn, &remote, self.auth.as_ref().map(|a| a.account));
            result = match &self.server.outbound {
                Some(queue) => {
                    let begun = std::time::Instant::now();
                    let r = queue.enqueue(Arc::new(message), &envelope).await.map(drop);
                    telemetry::store_latency(telemetry::StoreOp::Enqueue, begun.elapsed());
                    r
                }
                // RCPT refuses remote recipients without a queue; kept for safety.
                None => Err(StoreError::Temporary("no outbound queue".into())),
            };
        }
        if result.is_ok() && !full.is_empty() {
            // Delivered to the others: the full ones are reported to the sender (`quota.rs`).
            let failed = quota::full_recipients(&txn.rcpts, &full);
            tracing::info!(conn = self.info.id, queue_id = %id, recipients = ?failed, event = %"quota_refused", "smtp: recipients over quota after DATA, reported to the sender");
            let cfg = &self.server.config;
            if let Err(e) = quota::report_full(
                self.server.store.as_ref(),
                self.server.outbound.as_ref(),
                &cfg.hostname,
                &txn.from,
                &failed,
                &body,
                &id,
            )
            .await
            {
                // Nothing acknowledged may go unreported: the sender tries again later (the
                // others then get the message twice, as when the queue fails after delivery).
                tracing::warn!(conn = self.info.id, queue_id = %id, error = %e, "smtp: the over-quota report could not be sent");
                result = Err(StoreError::Temporary(format!("over-quota report: {e}")));
            }
        }
        let size = body.len();
        drop(body);
        let reply = match &result {
            Ok(()) => {
                telemetry::smtp_message_accepted();
                Reply::new(250, "2.0.0", format!("Ok: queued as {id}"))
            }
            Err(StoreError::OverQuota) => {
                telemetry::smtp_rejected(telemetry::Rejection::OverQuota);
                tracing::info!(conn = self.info.id, queue_id = %id, event = %"quota_refused", "smtp: message refused, every recipient over quota");
                quota::over_quota_reply(self.server.config.over_quota_permanent)
            }
            Err(e) => {
                telemetry::smtp_rejected(telemetry::Rejection::Temporary);
                store_error_reply(e)
            }
        };
        if let (Err(_), Some(entry)) = (&result, counted) {
            self.server.rate.uncount(entry).await;
        }
        tracing::info!(
            conn = self.info.id,
            queue_id = %id,
            size,
            recipients = txn.rcpts.len(),
            accounts = accounts.len(),
            junk,
            auth = %auth_summary,
            remote = remote.len(),
            result = match &result {
                Ok(()) => "delivered".to_string(),
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

/// The queue's envelope: sender, the remote recipients with their RFC 3461 NOTIFY and ORCPT,
/// and the transaction's RET and ENVID (RFC 3461 §4).
fn outbound_envelope(
    txn: &Transaction,
    remote: &[&Recipient],
    account: Option<store::AccountId>,
) -> OutboundEnvelope {
    OutboundEnvelope {
        sender: txn.from.to_string(),
        recipients: remote
            .iter()
            .map(|r| OutboundRecipient {
                address: r.address.to_string(),
                orcpt: r.params.orcpt.as_deref().and_then(decode_orcpt),
                // RFC 3461 §4.1: without NOTIFY, behave as if NOTIFY=FAILURE,DELAY.
                notify: r
                    .params
                    .notify
                    .map_or_else(DsnNotify::default, |n| DsnNotify {
                        success: n.success,
                        failure: n.failure,
                        delay: n.delay,
                    }),
            })
            .collect(),
        envid: txn.params.envid.as_deref().and_then(decode_xtext),
        ret: txn.params.ret.map(|r| match r {
            smtp_proto::Ret::Full => DsnRet::Full,
            smtp_proto::Ret::Hdrs => DsnRet::Headers,
        }),
        account,
        smtputf8: txn.params.smtputf8,
    }
}

/// The queue keeps DSN parameters decoded: RFC 3464 §2.2.1 and §2.3.1 put the decoded values in
/// reports, and the queue's client encodes them again for the next hop (RFC 3461 §4).
fn decode_xtext(s: &str) -> Option<String> {
    smtp_proto::xtext_decode(s).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// `addr-type ";" xtext` → `addr-type ";" decoded`.
fn decode_orcpt(s: &str) -> Option<String> {
    let (kind, addr) = s.split_once(';')?;
    Some(format!("{kind};{}", decode_xtext(addr)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full disk is 452 4.3.1 (RFC 3463 §3.4), other store failures 451 4.3.0, a full
    /// mailbox 452 4.2.2: all temporary, the client tries again later.
    #[test]
    fn store_failures_map_to_temporary_replies() {
        let full = StoreError::Temporary("database: database or disk is full".into());
        let r = store_error_reply(&full);
        assert_eq!((r.code, r.status), (452, Some("4.3.1")));
        let busy = StoreError::Temporary("database: connection refused".into());
        let r = store_error_reply(&busy);
        assert_eq!((r.code, r.status), (451, Some("4.3.0")));
        let r = store_error_reply(&StoreError::OverQuota);
        assert_eq!((r.code, r.status), (452, Some("4.2.2")));
    }
}

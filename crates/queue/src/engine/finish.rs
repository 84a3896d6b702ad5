//! Turning one message's outcomes into recorded results and the DSNs they call for (the
//! decisions themselves are `outcome::decide`).

use store::{AttemptResult, LeaseId, RecipientStatus};

use super::batch::Outcomes;
use super::outcome;
use super::{Engine, Work, now};
use crate::dsn::{Action, DsnRecipient};

impl Engine {
    /// Sends the DSNs the outcomes call for, then records them under `lease` (see the
    /// invariants: a DSN is never lost, at worst repeated).
    pub(super) async fn finish(&self, lease: LeaseId, w: &Work, outcomes: Outcomes) {
        if outcomes.is_empty() {
            return;
        }
        let t = now();
        let msg = &w.msg;
        let policy = self.config.policy();
        let mut results = Vec::new();
        let mut report = Vec::new();
        for r in &msg.recipients {
            let Some(o) = outcomes.get(&r.id) else {
                continue;
            };
            let d = outcome::decide(o, r.notify, r.attempts, msg.created, t, &policy);
            // The audit trail: one line per recipient and attempt.
            let (event, counted) = match d.status {
                RecipientStatus::Delivered => ("delivered", telemetry::DeliveryResult::Delivered),
                RecipientStatus::Failed => ("bounced", telemetry::DeliveryResult::Bounced),
                RecipientStatus::Pending => ("deferred", telemetry::DeliveryResult::Deferred),
            };
            telemetry::delivery_attempt(counted);
            tracing::info!(
                event = %event,
                queue_id = msg.id,
                recipient = %r.address,
                attempt = r.attempts + 1,
                reply = d.error.as_deref().unwrap_or(""),
                "delivery result"
            );
            if let Some(rep) = d.report {
                report.push(DsnRecipient {
                    address: r.address.clone(),
                    orcpt: r.orcpt.clone(),
                    action: rep.action,
                    status: rep.status,
                    diagnostic: Some(rep.diagnostic),
                    remote_mta: rep.remote,
                });
            }
            results.push(AttemptResult {
                recipient: r.id,
                status: d.status,
                next_attempt: d.next_attempt,
                error: d.error,
                at: t,
            });
        }
        if !report.is_empty() {
            self.send_dsn(msg, &report).await;
        }
        // RFC 3464 §2.3.3 "delayed": once per message, for recipients still waiting.
        if policy.delay_notice_due(msg.created, t, msg.delay_notified, msg.sender.is_empty()) {
            let delayed: Vec<DsnRecipient> = results
                .iter()
                .filter(|a| a.status == RecipientStatus::Pending)
                .filter_map(|a| msg.recipients.iter().find(|r| r.id == a.recipient))
                .filter(|r| r.notify.delay)
                .map(|r| DsnRecipient {
                    address: r.address.clone(),
                    orcpt: r.orcpt.clone(),
                    action: Action::Delayed,
                    status: "4.4.1".into(),
                    diagnostic: results
                        .iter()
                        .find(|a| a.recipient == r.id)
                        .and_then(|a| a.error.clone()),
                    remote_mta: None,
                })
                .collect();
            if !delayed.is_empty() {
                self.send_dsn(msg, &delayed).await;
                if let Err(e) = self.queue.set_delay_notified(msg.id).await {
                    tracing::warn!(queue_id = msg.id, error = %e, "cannot record the delay notice");
                }
            }
        }
        self.record(lease, msg.id, &results).await;
    }

    /// Records the results, retrying a temporary failure for up to the lease's time to live
    /// (the lease is renewed meanwhile). A delivery made but not recorded is made again at the
    /// next attempt — a duplicate at the recipient (RFC 5321 §6.1 prefers it to a loss) — so a
    /// store that fails for a moment (a full disk, a database restart) must not turn every
    /// delivery of that moment into one: the crash harness (tests/crash/disk_full.py) found 16
    /// duplicates after the data directory's disk was full for two seconds.
    async fn record(&self, lease: LeaseId, id: store::QueueId, results: &[AttemptResult]) {
        let deadline = tokio::time::Instant::now() + self.config.lease;
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            match self.queue.record_attempts(lease, results).await {
                Ok(()) => return,
                Err(store::StoreError::Temporary(e)) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(queue_id = id, error = %e, "cannot record delivery results yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::warn!(queue_id = id, error = %e, "cannot record delivery results");
                    return;
                }
            }
        }
    }
}

//! Keeps the expunge log bounded: every `[limits] expunge_log_prune_interval_secs`, rows
//! beyond `expunge_log_max_per_mailbox` per mailbox or older than `expunge_log_max_age_days`
//! go (`store::MailStore::prune_expunge_log`). A QRESYNC client further behind than what is
//! left gets a full resync (RFC 7162 §3.2.5.2). Pruning is idempotent, so several nodes on one
//! store may each run it.

use std::sync::Arc;
use std::time::Duration;

use server_kit::Shutdown;
use store::{ExpungeLogLimits, Store};

pub async fn run(
    store: Arc<dyn Store>,
    limits: ExpungeLogLimits,
    interval: Duration,
    shutdown: Shutdown,
) {
    if limits.max_per_mailbox == 0 && limits.max_age_secs == 0 {
        return;
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let now = chrono::Utc::now().timestamp();
        match store.prune_expunge_log(limits, now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "pruned the expunge log"),
            Err(e) => tracing::warn!(error = %e, "pruning the expunge log failed"),
        }
    }
}

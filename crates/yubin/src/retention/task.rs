//! The background task of `yubin serve`: a retention pass every `interval_secs`, on exactly
//! one node at a time — each node tries the store's `retention` lease at each tick; the
//! holder runs the pass (stopping if it loses the lease), the others skip the tick.

use std::sync::Arc;

use server_kit::Shutdown as CancellationToken;
use store::{Coordination, LeaseGuard, Store, StoreError};

use super::Retention;
use super::pass::{self, Options};

/// The lease's name in the store.
pub const LEASE: &str = "retention";

/// Runs until `stop` is cancelled.
pub async fn run(
    store: Arc<dyn Store>,
    config: Retention,
    choices: super::choices::Pop3Choices,
    stop: CancellationToken,
) {
    let coord: Arc<dyn Coordination> = store.clone();
    // The first pass soon after start, then every interval.
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + std::time::Duration::from_secs(1),
        config.interval(),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Every node rereads the users' POP3 choices, for what its POP3 CAPA announces.
        if let Err(e) = choices.reload(store.as_ref()).await {
            tracing::warn!(error = %e, "retention: cannot read the users' POP3 choices");
        }
        let guard = match LeaseGuard::acquire(coord.clone(), LEASE, config.lease()).await {
            Ok(g) => g,
            // Another node runs this tick's pass.
            Err(StoreError::InUse) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "retention: cannot take the lease; skipping this pass");
                continue;
            }
        };
        let opts = Options {
            now: pass::now(),
            dry_run: false,
            batch_size: config.batch_size,
            batch_pause: config.batch_pause(),
            lease: Some(&guard),
        };
        tokio::select! {
            _ = stop.cancelled() => {}
            r = pass::run(store.as_ref(), &config, None, &opts) => {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "retention pass failed; retried at the next interval");
                }
            }
        }
        guard.release().await;
    }
}

//! Graceful shutdown on SIGTERM or Ctrl-C (SIGINT): stop accepting, tell every session to
//! finish (they send `421` / `-ERR` / `* BYE` and close), wait up to a grace period, exit.

use std::time::Duration;

use server_kit::Shutdown;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::task::TaskTracker;

/// The signals that stop the server. Created before the listeners start, so a signal that
/// arrives early is handled instead of killing the process outright.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// Runs the shutdown sequence after `signal_name` arrived. Returns when every session has
/// closed, the grace period is over, or a second signal asks to stop now.
pub async fn drain(
    signal_name: &str,
    signals: &mut Signals,
    shutdown: Shutdown,
    mut accept_loops: JoinSet<()>,
    sessions: TaskTracker,
    grace: Duration,
) {
    tracing::info!(signal = signal_name, "shutting down");
    shutdown.cancel();
    // A loop that panicked has stopped accepting already; nothing more to do for it.
    while accept_loops.join_next().await.is_some() {}
    tracing::info!("all listeners closed; no new connections are accepted");

    sessions.close();
    tracing::info!(
        sessions = sessions.len(),
        grace_secs = grace.as_secs(),
        "waiting for sessions to finish"
    );
    tokio::select! {
        _ = sessions.wait() => tracing::info!("all sessions finished"),
        _ = tokio::time::sleep(grace) => tracing::warn!(
            sessions = sessions.len(),
            "grace period over; dropping the remaining sessions"
        ),
        s = signals.recv() => tracing::warn!(
            signal = s,
            sessions = sessions.len(),
            "second signal; dropping the remaining sessions"
        ),
    }
    tracing::info!("shutdown complete");
}

//! The events the admin console charts (messages accepted and refused per hour,
//! authentication failures per client address), handed to a sink the binary installs.
//!
//! They are recorded at the same call sites as the Prometheus counters, so the charts never
//! depend on the log filter: with `RUST_LOG=warn` no INFO event is even built, and the charts
//! still count. Without a sink (unit tests, CLI commands) every call is a no-op.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

/// Where the charted events go (yubin's in-memory activity ring).
pub trait ActivitySink: Send + Sync {
    /// A message got its 250 after the data.
    fn accepted(&self);
    /// SMTP refused a client, a transaction or a recipient.
    fn refused(&self);
    /// A login failed (wrong password or unknown user) from `peer`.
    fn auth_failure(&self, peer: IpAddr);
}

static SINK: OnceLock<Arc<dyn ActivitySink>> = OnceLock::new();

/// Installs the sink; the first call wins (the process has one).
pub fn set_activity_sink(sink: Arc<dyn ActivitySink>) {
    let _ = SINK.set(sink);
}

pub(crate) fn accepted() {
    if let Some(s) = SINK.get() {
        s.accepted();
    }
}

pub(crate) fn refused() {
    if let Some(s) = SINK.get() {
        s.refused();
    }
}

/// Records a failed login from `peer` (the per-address chart; the Prometheus counter has no
/// address label, so that its series stay bounded).
pub fn auth_failure_from(peer: IpAddr) {
    if let Some(s) = SINK.get() {
        s.auth_failure(peer);
    }
}

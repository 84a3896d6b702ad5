//! Logs go to stderr through `tracing`, filtered by `RUST_LOG` (default `info`), as text or as
//! one JSON object per line (`[log] format`).
//!
//! Audit events — authentication failures, bans, refused relaying, checks of arriving mail,
//! blocklist hits, greylisting, delivery results — are single lines with an `event` field
//! (`event=auth_failure`, `event=relay_refused`, `event=delivered`, …) that an admin can grep
//! or ship.
//!
//! Nothing logged here or anywhere in yubin may contain a password or message contents.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, before anything logs. `default` is the filter
/// used without `RUST_LOG`: `info` for the server, `warn` for admin commands, whose own
/// output is on stdout.
pub fn init(default: &str, format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init` fails only if a subscriber is already set, which then keeps logging.
    let _ = match format {
        // Colour codes only on a terminal, never in log files or journald.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

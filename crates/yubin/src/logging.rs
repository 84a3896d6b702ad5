//! Logs go to stderr through `tracing`, filtered by `RUST_LOG` (default `info`).
//!
//! Nothing logged here or anywhere in yubin may contain a password or message contents.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, before anything logs. `default` is the filter
/// used without `RUST_LOG`: `info` for the server, `warn` for admin commands, whose own
/// output is on stdout.
pub fn init(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // `try_init` fails only if a subscriber is already set, which then keeps logging.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal, never in log files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

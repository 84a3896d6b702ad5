//! Logs go to stderr through `tracing`, filtered by `RUST_LOG` (default `info`), as text or as
//! one JSON object per line (`[log] format`).
//!
//! Audit events — authentication failures, bans, refused relaying, checks of arriving mail,
//! blocklist hits, greylisting, delivery results — are single lines with an `event` field
//! (`event=auth_failure`, `event=relay_refused`, `event=delivered`, …) that an admin can grep
//! or ship.
//!
//! A second layer keeps the recent lines in memory for the admin console's log page, bounded
//! by `[log] tail_lines` and `tail_bytes`. It has the same filter as stderr, so that
//! `RUST_LOG=warn` spares the hot paths every INFO event (a layer at INFO would make every
//! `info!` build its fields). The console's charts are not counted from the log but at the
//! metrics' call sites ([`crate::activity`], [`telemetry::ActivitySink`]).
//!
//! Nothing logged here or anywhere in yubin may contain a password or message contents.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::activity::Activity;
use crate::config::{Log, LogFormat};

/// A line longer than this is cut (a log line is a summary, not a document).
const MAX_LINE: usize = 4096;

/// The recent log lines, oldest first, within both bounds.
pub struct LogTail {
    max_lines: usize,
    max_bytes: usize,
    inner: Mutex<(VecDeque<(Level, String)>, usize)>,
}

impl LogTail {
    pub fn new(max_lines: usize, max_bytes: usize) -> LogTail {
        LogTail {
            max_lines,
            max_bytes,
            inner: Mutex::new((VecDeque::new(), 0)),
        }
    }

    pub fn push(&self, level: Level, mut line: String) {
        if line.len() > MAX_LINE {
            let mut end = MAX_LINE;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push('…');
        }
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (lines, bytes) = &mut *g;
        *bytes += line.len();
        lines.push_back((level, line));
        while lines.len() > self.max_lines || (*bytes > self.max_bytes && !lines.is_empty()) {
            if let Some((_, old)) = lines.pop_front() {
                *bytes -= old.len();
            }
        }
    }

    pub fn lines(&self) -> Vec<(Level, String)> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.0.iter().cloned().collect()
    }
}

/// The log tail and the activity counters the console reads.
pub struct Recent {
    pub tail: Arc<LogTail>,
    pub activity: Arc<Activity>,
}

static RECENT: OnceLock<Recent> = OnceLock::new();

/// The process's log tail and counters (empty ones with the default bounds if [`init`] did
/// not run, as in tests).
pub fn recent() -> &'static Recent {
    let d = Log::default();
    recent_with(d.tail_lines, d.tail_bytes)
}

fn recent_with(lines: usize, bytes: usize) -> &'static Recent {
    RECENT.get_or_init(|| Recent {
        tail: Arc::new(LogTail::new(lines, bytes)),
        activity: Arc::new(Activity::default()),
    })
}

/// Installs the global subscriber. Call once, before anything logs. `default` is the filter
/// used without `RUST_LOG`: `info` for the server, `warn` for admin commands, whose own
/// output is on stdout.
pub fn init(default: &str, log: &Log) {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let recent = recent_with(log.tail_lines, log.tail_bytes);
    telemetry::set_activity_sink(Arc::clone(&recent.activity) as Arc<dyn telemetry::ActivitySink>);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // Colour codes only on a terminal, never in log files or journald.
    let fmt = match log.format {
        LogFormat::Text => fmt.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    let layer = RecentLayer {
        tail: Arc::clone(&recent.tail),
    };
    // `try_init` fails only if a subscriber is already set, which then keeps logging. The
    // tail keeps INFO and above even when stderr shows DEBUG (it is a summary, and bounded).
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter()))
        .with(layer.with_filter(filter()).with_filter(LevelFilter::INFO))
        .try_init();
}

/// The layer that fills the tail.
struct RecentLayer {
    tail: Arc<LogTail>,
}

/// An event's message and fields as `message k=v …`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let v = format!("{value:?}");
        self.record(field, v);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, value.to_string());
    }
}

impl Fields {
    fn record(&mut self, field: &Field, v: String) {
        if field.name() == "message" {
            self.message = v;
            return;
        }
        let _ = write!(self.rest, " {}={}", field.name(), v);
    }
}

impl<S: Subscriber> Layer<S> for RecentLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut f = Fields::default();
        event.record(&mut f);
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let line = format!(
            "{time} {:>5} {}: {}{}",
            meta.level(),
            meta.target(),
            f.message,
            f.rest
        );
        self.tail.push(*meta.level(), line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_bounded_by_lines_and_bytes() {
        let t = LogTail::new(3, 1000);
        for i in 0..5 {
            t.push(Level::INFO, format!("line {i}"));
        }
        let l: Vec<String> = t.lines().into_iter().map(|x| x.1).collect();
        assert_eq!(l, ["line 2", "line 3", "line 4"]);
        let t = LogTail::new(100, 25);
        for i in 0..5 {
            t.push(Level::WARN, format!("line {i} 1234"));
        }
        let l: Vec<String> = t.lines().into_iter().map(|x| x.1).collect();
        assert_eq!(l, ["line 3 1234", "line 4 1234"]);
        // A huge line is cut, on a character boundary.
        let t = LogTail::new(10, 1 << 20);
        t.push(Level::INFO, "é".repeat(MAX_LINE));
        assert!(t.lines()[0].1.len() <= MAX_LINE + '…'.len_utf8());
    }

    #[test]
    fn the_layer_keeps_what_its_filter_lets_through_as_one_line_each() {
        let tail = Arc::new(LogTail::new(100, 1 << 20));
        let layer = RecentLayer {
            tail: Arc::clone(&tail),
        };
        let sub = tracing_subscriber::registry().with(
            layer
                .with_filter(EnvFilter::new("warn"))
                .with_filter(LevelFilter::INFO),
        );
        tracing::subscriber::with_default(sub, || {
            tracing::info!(queue_id = %"Q1", result = "delivered".to_string(), "smtp delivery");
            tracing::warn!(event = %"auth_failure", peer = %"192.0.2.9", "authentication failed");
            tracing::error!(queue_id = %"Q2", "store failed");
            tracing::debug!("not kept");
        });
        let lines = tail.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].1.contains(
                " WARN yubin::logging::tests: authentication failed event=auth_failure peer=192.0.2.9"
            ),
            "{}",
            lines[0].1
        );
        assert!(lines[1].1.contains("ERROR") && lines[1].1.contains("queue_id=Q2"));
    }
}

//! Progress of an import or export: a bar (indicatif) when standard output is a terminal,
//! else a plain line every [`LINE_EVERY`] messages and at each folder's end, for logs.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Plain progress lines: one per this many messages.
const LINE_EVERY: u64 = 10_000;

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    /// Messages done (imported or skipped).
    pub messages: u64,
    last_line: u64,
    /// What the bar counts: messages, or bytes of the source when the count is unknown.
    total: u64,
}

impl Progress {
    /// `total` messages (or bytes, when `bytes`) to go through.
    pub fn new(total: u64, bytes: bool) -> Progress {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let template = if bytes {
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta}) {msg}"
            } else {
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} msgs ({per_sec}, {eta}) {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            messages: 0,
            last_line: 0,
            total,
        }
    }

    /// Names the folder being worked on.
    pub fn folder(&mut self, name: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(name.to_string());
        }
    }

    /// `messages` more done, and `units` more of the bar's total (messages or bytes).
    pub fn advance(&mut self, messages: u64, units: u64, folder: &str) {
        self.messages += messages;
        match &self.bar {
            Some(bar) => bar.inc(units),
            None if self.messages >= self.last_line + LINE_EVERY => {
                self.last_line = self.messages;
                self.line(folder);
            }
            None => {}
        }
    }

    /// A plain line now (at a folder's end), when not drawing a bar.
    pub fn folder_done(&mut self, folder: &str) {
        if self.bar.is_none() {
            self.last_line = self.messages;
            self.line(folder);
        }
    }

    fn line(&self, folder: &str) {
        let _ = writeln!(
            std::io::stdout(),
            "{folder}: {} messages done ({:.0} msgs/s)",
            self.messages,
            self.rate()
        );
    }

    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.total);
            bar.finish_and_clear();
        }
    }
}

//! Reading a server's memory from `/proc/PID/status` (Linux), and a sampler that records the
//! largest resident set seen while a load runs.
//!
//! `VmHWM` is the kernel's own high-water mark of resident memory over the process's whole
//! life (so it includes earlier runs against the same server); the sampler's max of `VmRSS`
//! covers only this run, at the sampling interval's resolution.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

/// Memory figures of one process, in KiB as the kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    /// The part of VmRSS that is the process's own memory (heap, stacks), not pages of
    /// mapped files such as its executable, which the kernel shares and can drop.
    pub anon_kib: u64,
}

/// Parses the `VmRSS:` and `VmHWM:` lines of a `/proc/PID/status` text.
pub fn parse_status(text: &str) -> Option<Mem> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let rest = line.get(name.len()..)?.trim();
        rest.split_whitespace().next()?.parse().ok()
    };
    Some(Mem {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
        anon_kib: field("RssAnon:").unwrap_or(0),
    })
}

/// Reads the current memory figures of `pid`.
pub fn read_mem(pid: u32) -> anyhow::Result<Mem> {
    let path = format!("/proc/{pid}/status");
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))?;
    parse_status(&text).ok_or_else(|| anyhow::anyhow!("no VmRSS/VmHWM in {path}"))
}

/// Samples `VmRSS` of a process every `every` until stopped; keeps the maximum.
pub struct Sampler {
    max_rss: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Sampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        let max_rss = Arc::new(AtomicU64::new(0));
        let max = Arc::clone(&max_rss);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Ok(m) = read_mem(pid) {
                    max.fetch_max(m.rss_kib, Ordering::Relaxed);
                }
            }
        });
        Sampler { max_rss, task }
    }

    /// Stops sampling; returns the largest VmRSS seen (KiB), 0 if none could be read.
    pub fn stop(self) -> u64 {
        self.task.abort();
        self.max_rss.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_status_text() {
        let text = "Name:\tyubin\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t    6789 kB\nRssAnon:\t  5000 kB\n";
        assert_eq!(
            parse_status(text),
            Some(Mem {
                rss_kib: 6789,
                hwm_kib: 12345,
                anon_kib: 5000,
            })
        );
    }

    #[test]
    fn missing_fields_are_none() {
        assert_eq!(parse_status("Name:\tx\nVmRSS:\t1 kB\n"), None);
        assert_eq!(parse_status("VmRSS:\tlots kB\nVmHWM:\t1 kB\n"), None);
    }

    #[test]
    fn reads_own_process() {
        let m = read_mem(std::process::id()).expect("own /proc status");
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
    }
}

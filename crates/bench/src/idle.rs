//! The `idle` test: K connections that read the banner and then sit idle, to measure what
//! one idle SMTP connection costs the server in resident memory.

use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::{Client, Step};
use crate::procfs;
use crate::report::json_string;

#[derive(Debug, Clone)]
pub struct IdleConfig {
    pub addr: String,
    pub connections: usize,
    pub pid: u32,
    /// How long to let the server settle before reading its RSS.
    pub settle: Duration,
    /// How many connections are being opened at the same time.
    pub open_parallel: usize,
    pub io_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdleReport {
    pub addr: String,
    pub requested: usize,
    pub open: usize,
    pub failed: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// Still open when measured after the settle time (the server did not drop them).
    pub still_open: usize,
}

impl IdleReport {
    pub fn bytes_per_conn(&self) -> Option<f64> {
        if self.open == 0 {
            return None;
        }
        let delta = self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0;
        Some(delta / self.open as f64)
    }

    pub fn human(&self) -> String {
        let per = self.bytes_per_conn().map_or("n/a".to_owned(), |b| {
            format!("{b:.0} bytes ({:.1} KiB)", b / 1024.0)
        });
        format!(
            "Idle connections to {}: {} requested, {} open ({} failed), {} still open after settling\n  \
             server VmRSS: {} KiB before, {} KiB after\n  per idle connection: {per}\n",
            self.addr,
            self.requested,
            self.open,
            self.failed,
            self.still_open,
            self.rss_before_kib,
            self.rss_after_kib,
        )
    }

    pub fn json(&self) -> String {
        let per = self
            .bytes_per_conn()
            .map_or("null".to_owned(), |b| format!("{b:.0}"));
        format!(
            "{{\"mode\":\"idle\",\"addr\":{},\"requested\":{},\"open\":{},\"failed\":{},\
             \"still_open\":{},\"rss_before_kib\":{},\"rss_after_kib\":{},\"bytes_per_conn\":{per}}}",
            json_string(&self.addr),
            self.requested,
            self.open,
            self.failed,
            self.still_open,
            self.rss_before_kib,
            self.rss_after_kib,
        )
    }
}

pub async fn run(cfg: IdleConfig) -> anyhow::Result<IdleReport> {
    let before = procfs::read_mem(cfg.pid)?.rss_kib;
    let gate = std::sync::Arc::new(Semaphore::new(cfg.open_parallel.max(1)));
    let mut set = JoinSet::new();
    for _ in 0..cfg.connections {
        let gate = std::sync::Arc::clone(&gate);
        let addr = cfg.addr.clone();
        let t = cfg.io_timeout;
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.ok();
            let mut c = Client::connect(&addr, t).await?;
            let reply = c.read_reply(Step::Banner).await?;
            if reply.code == 220 {
                Ok(c)
            } else {
                Err(crate::client::Failure {
                    step: Step::Banner,
                    what: reply.code.to_string(),
                })
            }
        });
    }
    let mut clients = Vec::with_capacity(cfg.connections);
    let mut failed = 0;
    while let Some(res) = set.join_next().await {
        match res? {
            Ok(c) => clients.push(c),
            Err(_) => failed += 1,
        }
    }
    tokio::time::sleep(cfg.settle).await;
    let after = procfs::read_mem(cfg.pid)?.rss_kib;
    let alive = clients.iter().filter(|c| c.is_idle_open()).count();
    let report = IdleReport {
        addr: cfg.addr,
        requested: cfg.connections,
        open: clients.len(),
        failed,
        rss_before_kib: before,
        rss_after_kib: after,
        still_open: alive,
    };
    drop(clients);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_per_connection_from_rss_delta() {
        let r = IdleReport {
            addr: "a".into(),
            requested: 10,
            open: 8,
            failed: 2,
            rss_before_kib: 1000,
            rss_after_kib: 1080,
            still_open: 8,
        };
        assert_eq!(r.bytes_per_conn(), Some(80.0 * 1024.0 / 8.0));
        assert!(
            r.json().contains("\"bytes_per_conn\":10240}"),
            "{}",
            r.json()
        );
        let none = IdleReport { open: 0, ..r };
        assert_eq!(none.bytes_per_conn(), None);
        assert!(none.json().ends_with("\"bytes_per_conn\":null}"));
    }
}

//! The `idle-latency` report: per-endpoint outcomes, the human-readable block and the JSON
//! line (hand-written, like the other reports).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::{IdleLatencyConfig, Outcome};
use crate::report::{Latency, json_string};

/// What the load senders did.
#[derive(Debug, Default)]
pub(super) struct LoadResult {
    pub ok: u64,
    pub data_end: Vec<Duration>,
    pub failures: BTreeMap<String, u64>,
}

/// Outcomes of the measured deliveries whose sessions were on one IMAP endpoint.
#[derive(Debug, Default, Clone)]
pub struct NodeStats {
    pub after_ack: Vec<Duration>,
    pub after_dot: Vec<Duration>,
    pub early: u64,
    pub missed: u64,
}

impl NodeStats {
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Seen {
                after_ack,
                after_dot,
                early,
            } => {
                self.after_ack.push(after_ack);
                self.after_dot.push(after_dot);
                self.early += u64::from(early);
            }
            Outcome::Missed => self.missed += 1,
        }
    }

    fn merge(&mut self, o: &NodeStats) {
        self.after_ack.extend_from_slice(&o.after_ack);
        self.after_dot.extend_from_slice(&o.after_dot);
        self.early += o.early;
        self.missed += o.missed;
    }
}

pub(super) struct Report<'a> {
    pub(super) cfg: &'a IdleLatencyConfig,
    pub(super) per_node: Vec<NodeStats>,
    pub(super) smtp_failures: BTreeMap<String, u64>,
    pub(super) lost: BTreeMap<String, u64>,
    pub(super) measure_elapsed: Duration,
    pub(super) load: LoadResult,
    pub(super) load_elapsed: Duration,
}

fn lat_text(l: Option<Latency>) -> String {
    l.map_or("none seen".to_owned(), |l| {
        format!(
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            l.p50, l.p90, l.p99, l.max
        )
    })
}

fn lat_json(l: Option<Latency>) -> String {
    l.map_or("null".to_owned(), |l| l.json())
}

fn failures_json(m: &BTreeMap<String, u64>) -> String {
    let v: Vec<String> = m
        .iter()
        .map(|(k, n)| format!("{}:{n}", json_string(k)))
        .collect();
    format!("{{{}}}", v.join(","))
}

impl Report<'_> {
    fn total(&self) -> NodeStats {
        let mut t = NodeStats::default();
        for n in &self.per_node {
            t.merge(n);
        }
        t
    }

    fn load_rate(&self) -> f64 {
        let s = self.load_elapsed.as_secs_f64();
        if s > 0.0 {
            self.load.ok as f64 / s
        } else {
            0.0
        }
    }

    pub(super) fn human(&self) -> String {
        let cfg = self.cfg;
        let mut t = self.total();
        let mut o = String::new();
        let _ = writeln!(
            o,
            "IDLE notification latency: {} deliveries at {}/s via SMTP {} to {} sessions on {} \
             (tls: {}), load: {}",
            cfg.messages,
            cfg.rate,
            cfg.smtp,
            cfg.sessions,
            cfg.imap.join(","),
            cfg.tls,
            if cfg.load == 0 {
                "none".to_owned()
            } else {
                format!(
                    "{} senders to the {} accounts",
                    cfg.load,
                    cfg.load_to.name()
                )
            }
        );
        let _ = writeln!(
            o,
            "  seen: {}   missed (> {} ms): {}   early (EXISTS before 250): {}   SMTP failed: {}   \
             sessions lost: {}   measured for {:.1} s",
            t.after_ack.len(),
            cfg.miss_after.as_millis(),
            t.missed,
            t.early,
            self.smtp_failures.values().sum::<u64>(),
            self.lost.values().sum::<u64>(),
            self.measure_elapsed.as_secs_f64()
        );
        for (key, n) in &self.smtp_failures {
            let _ = writeln!(o, "    SMTP failure {key}: {n}");
        }
        for (why, n) in &self.lost {
            let _ = writeln!(o, "    session lost: {why}: {n}");
        }
        let _ = writeln!(
            o,
            "  250 → EXISTS: {}",
            lat_text(Latency::of(&mut t.after_ack))
        );
        let _ = writeln!(
            o,
            "  \".\" → EXISTS: {}",
            lat_text(Latency::of(&mut t.after_dot))
        );
        if self.per_node.len() > 1 {
            for (addr, n) in cfg.imap.iter().zip(&self.per_node) {
                let mut a = n.after_ack.clone();
                let _ = writeln!(
                    o,
                    "    sessions on {addr}: seen {} missed {}: {}",
                    a.len(),
                    n.missed,
                    lat_text(Latency::of(&mut a))
                );
            }
        }
        if cfg.load > 0 {
            let mut d = self.load.data_end.clone();
            let _ = writeln!(
                o,
                "  load: {} stored, {} failed in {:.1} s = {:.1} msg/s; DATA-end→250 {}",
                self.load.ok,
                self.load.failures.values().sum::<u64>(),
                self.load_elapsed.as_secs_f64(),
                self.load_rate(),
                lat_text(Latency::of(&mut d))
            );
            for (key, n) in &self.load.failures {
                let _ = writeln!(o, "    load failure {key}: {n}");
            }
        }
        o
    }

    pub(super) fn json(&self) -> String {
        let cfg = self.cfg;
        let mut t = self.total();
        let imap: Vec<String> = cfg.imap.iter().map(|a| json_string(a)).collect();
        let per_node: Vec<String> = cfg
            .imap
            .iter()
            .zip(&self.per_node)
            .map(|(addr, n)| {
                let mut a = n.after_ack.clone();
                format!(
                    "{{\"imap\":{},\"count\":{},\"missed\":{},\"early\":{},\"latency_ms\":{}}}",
                    json_string(addr),
                    a.len(),
                    n.missed,
                    n.early,
                    lat_json(Latency::of(&mut a))
                )
            })
            .collect();
        let mut d = self.load.data_end.clone();
        format!(
            "{{\"mode\":\"idle-latency\",\"smtp\":{},\"imap\":[{}],\"tls\":{},\"sessions\":{},\
             \"accounts\":{},\"messages\":{},\"rate\":{},\"load\":{},\"load_to\":\"{}\",\
             \"miss_after_ms\":{},\"count\":{},\"missed\":{},\"early\":{},\"smtp_failed\":{},\
             \"smtp_failures\":{},\"sessions_lost\":{},\"measure_s\":{:.3},\"latency_ms\":{},\
             \"from_dot_ms\":{},\"per_imap\":[{}],\"load_ok\":{},\"load_failed\":{},\
             \"load_failures\":{},\"load_s\":{:.3},\"load_msgs_per_s\":{:.1},\
             \"load_data_end_ms\":{}}}",
            json_string(&cfg.smtp),
            imap.join(","),
            cfg.tls,
            cfg.sessions,
            cfg.logins.len(),
            cfg.messages,
            cfg.rate,
            cfg.load,
            cfg.load_to.name(),
            cfg.miss_after.as_millis(),
            t.after_ack.len(),
            t.missed,
            t.early,
            self.smtp_failures.values().sum::<u64>(),
            failures_json(&self.smtp_failures),
            self.lost.values().sum::<u64>(),
            self.measure_elapsed.as_secs_f64(),
            lat_json(Latency::of(&mut t.after_ack)),
            lat_json(Latency::of(&mut t.after_dot)),
            per_node.join(","),
            self.load.ok,
            self.load.failures.values().sum::<u64>(),
            failures_json(&self.load.failures),
            self.load_elapsed.as_secs_f64(),
            self.load_rate(),
            lat_json(Latency::of(&mut d)),
        )
    }
}

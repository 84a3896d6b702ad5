//! Turning raw measurements into the two outputs: a human-readable block and one JSON line
//! (hand-written, to avoid a serde_json dependency for a dozen fields).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Nearest-rank percentile of an ascending slice: the smallest value such that at least
/// `p` percent of samples are ≤ it. `None` for no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    sorted.get(idx).copied()
}

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Summarises samples (sorts them in place).
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        samples.sort_unstable();
        let ms = |p| percentile(samples, p).map(|d| d.as_secs_f64() * 1000.0);
        Some(Latency {
            p50: ms(50.0)?,
            p90: ms(90.0)?,
            p99: ms(99.0)?,
            max: ms(100.0)?,
        })
    }

    /// `{"p50":…,"p90":…,"p99":…,"max":…}` in milliseconds.
    pub fn json(&self) -> String {
        format!(
            "{{\"p50\":{:.3},\"p90\":{:.3},\"p99\":{:.3},\"max\":{:.3}}}",
            self.p50, self.p90, self.p99, self.max
        )
    }
}

/// Everything one `smtp` run measured.
#[derive(Debug, Clone, Default)]
pub struct SmtpReport {
    pub addr: String,
    pub messages: u64,
    pub concurrency: usize,
    pub size: usize,
    pub ok: u64,
    pub failures: BTreeMap<String, u64>,
    pub elapsed: Duration,
    /// Final `.` CRLF → 250.
    pub data_end: Option<Latency>,
    /// Connect → 250 after DATA (the whole delivery as a client sees it, before QUIT).
    pub session: Option<Latency>,
    pub rss_start_kib: Option<u64>,
    pub rss_max_kib: Option<u64>,
    pub hwm_kib: Option<u64>,
}

impl SmtpReport {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// Messages acknowledged with 250 per wall-clock second.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ok as f64 / s } else { 0.0 }
    }

    pub fn human(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "SMTP load: {} messages of {} bytes, {} concurrent, new connection each, to {}",
            self.messages, self.size, self.concurrency, self.addr
        );
        let _ = writeln!(
            o,
            "  stored (250): {}   failed: {}   wall: {:.2} s   rate: {:.1} msg/s",
            self.ok,
            self.failed(),
            self.elapsed.as_secs_f64(),
            self.rate()
        );
        for (key, n) in &self.failures {
            let _ = writeln!(o, "    failure {key}: {n}");
        }
        let lat = |name: &str, l: &Option<Latency>, o: &mut String| match l {
            Some(l) => {
                let _ = writeln!(
                    o,
                    "  {name}: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                    l.p50, l.p90, l.p99, l.max
                );
            }
            None => {
                let _ = writeln!(o, "  {name}: no successful deliveries");
            }
        };
        lat("DATA-end→250", &self.data_end, &mut o);
        lat("connect→250 ", &self.session, &mut o);
        if let (Some(start), Some(max), Some(hwm)) =
            (self.rss_start_kib, self.rss_max_kib, self.hwm_kib)
        {
            let _ = writeln!(
                o,
                "  server RSS: start {start} KiB, max sampled {max} KiB, VmHWM (lifetime peak) {hwm} KiB"
            );
        }
        o
    }

    pub fn json(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("null".to_owned(), |v| v.to_string());
        let lat = |l: &Option<Latency>| l.map_or("null".to_owned(), |l| l.json());
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|(k, v)| format!("{}:{v}", json_string(k)))
            .collect();
        format!(
            "{{\"mode\":\"smtp\",\"addr\":{},\"messages\":{},\"concurrency\":{},\"size\":{},\
             \"ok\":{},\"failed\":{},\"failures\":{{{}}},\"elapsed_s\":{:.3},\"msgs_per_s\":{:.1},\
             \"data_end_ms\":{},\"session_ms\":{},\"rss_start_kib\":{},\"rss_max_kib\":{},\
             \"vm_hwm_kib\":{}}}",
            json_string(&self.addr),
            self.messages,
            self.concurrency,
            self.size,
            self.ok,
            self.failed(),
            failures.join(","),
            self.elapsed.as_secs_f64(),
            self.rate(),
            lat(&self.data_end),
            lat(&self.session),
            opt(self.rss_start_kib),
            opt(self.rss_max_kib),
            opt(self.hwm_kib),
        )
    }
}

/// A JSON string literal (RFC 8259 §7): quotes, backslashes and control characters escaped.
pub fn json_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&s, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&s, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&s, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&s, 0.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&ms(&[7]), 99.0), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn latency_sorts_unsorted_samples() {
        let mut s = ms(&[30, 10, 20, 40]);
        let l = Latency::of(&mut s).expect("samples");
        assert_eq!((l.p50, l.p90, l.max), (20.0, 40.0, 40.0));
        assert!(Latency::of(&mut []).is_none());
    }

    #[test]
    fn json_escapes_strings() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn json_line_has_rate_failures_and_nulls() {
        let mut r = SmtpReport {
            addr: "127.0.0.1:2525".into(),
            messages: 4,
            concurrency: 2,
            size: 10240,
            ok: 3,
            elapsed: Duration::from_secs(2),
            ..Default::default()
        };
        r.failures.insert("RCPT 550 5.1.1".into(), 1);
        let j = r.json();
        assert!(j.contains("\"msgs_per_s\":1.5,"), "{j}");
        assert!(
            j.contains("\"failed\":1,\"failures\":{\"RCPT 550 5.1.1\":1}"),
            "{j}"
        );
        assert!(j.contains("\"data_end_ms\":null"), "{j}");
        assert!(j.ends_with("\"vm_hwm_kib\":null}"), "{j}");
        assert!(!j.contains('\n'));
    }
}

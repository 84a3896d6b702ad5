//! The `smtp` load: N messages, C connections at a time, a new connection per message (as
//! Postfix's `smtp-source` does), each message counted only when the server answered 250 to
//! the final `.` — which yubin sends only after the message is fsync'd.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;

use crate::client::{Client, Envelope, Failure};
use crate::message;
use crate::procfs::{self, Sampler};
use crate::report::{Latency, SmtpReport};

/// Parameters of one run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub addr: String,
    pub messages: u64,
    pub concurrency: usize,
    pub size: usize,
    pub envelope: Envelope,
    pub io_timeout: Duration,
    pub pid: Option<u32>,
    pub sample_every: Duration,
    /// Sign every message: (RSA or Ed25519 key file, selector); the domain is the From: address's.
    pub dkim: Option<(std::path::PathBuf, String)>,
}

/// What one worker measured.
#[derive(Default)]
struct WorkerResult {
    ok: u64,
    data_end: Vec<Duration>,
    session: Vec<Duration>,
    failures: BTreeMap<String, u64>,
}

/// Delivers one message over a fresh connection; returns (DATA-end→250, connect→250).
async fn one(
    cfg: &LoadConfig,
    signature: &[u8],
    body: &[u8],
    seq: u64,
    run_id: u64,
) -> Result<(Duration, Duration), Failure> {
    let start = Instant::now();
    let mut client = Client::connect(&cfg.addr, cfg.io_timeout).await?;
    let mut headers = signature.to_vec();
    headers.extend(message::headers(
        seq,
        run_id,
        &cfg.envelope.from,
        &cfg.envelope.to,
    ));
    let data_end = client.deliver(&cfg.envelope, &headers, body).await?;
    let session = start.elapsed();
    // The message is stored; a failed QUIT does not change that, so it is not a failure.
    let _ = client.quit().await;
    Ok((data_end, session))
}

async fn worker(
    cfg: Arc<LoadConfig>,
    signature: Arc<Vec<u8>>,
    body: Arc<Vec<u8>>,
    next: Arc<AtomicU64>,
    run_id: u64,
) -> WorkerResult {
    let mut r = WorkerResult::default();
    loop {
        let seq = next.fetch_add(1, Ordering::Relaxed);
        if seq >= cfg.messages {
            return r;
        }
        match one(&cfg, &signature, &body, seq, run_id).await {
            Ok((data_end, session)) => {
                r.ok += 1;
                r.data_end.push(data_end);
                r.session.push(session);
            }
            Err(f) => *r.failures.entry(f.key()).or_default() += 1,
        }
    }
}

/// One message of a run as a file for `smtp-source -F`: signature, headers, body, with LF
/// line ends (smtp-source turns each line end into CRLF and dot-stuffs).
pub fn sample_message(cfg: &LoadConfig) -> anyhow::Result<Vec<u8>> {
    let probe = message::headers(cfg.messages, 0, &cfg.envelope.from, &cfg.envelope.to);
    let body = message::body(message::body_len_for(cfg.size, probe.len()));
    let mut out = match &cfg.dkim {
        Some((key, selector)) => {
            let domain = cfg.envelope.from.rsplit_once('@').map_or("", |(_, d)| d);
            crate::dkim_sign::signature(key, selector, domain, &probe, &body)?
        }
        None => Vec::new(),
    };
    out.extend_from_slice(&probe);
    out.extend_from_slice(&crate::dkim_sign::unstuff(&body));
    let mut lf = Vec::with_capacity(out.len());
    for (i, &b) in out.iter().enumerate() {
        if !(b == b'\r' && out.get(i + 1) == Some(&b'\n')) {
            lf.push(b);
        }
    }
    Ok(lf)
}

/// Runs the load and gathers the report.
pub async fn run(cfg: LoadConfig) -> anyhow::Result<SmtpReport> {
    anyhow::ensure!(cfg.concurrency > 0, "concurrency must be at least 1");
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let probe = message::headers(cfg.messages, run_id, &cfg.envelope.from, &cfg.envelope.to);
    let body = Arc::new(message::body(message::body_len_for(cfg.size, probe.len())));
    let signature = Arc::new(match &cfg.dkim {
        Some((key, selector)) => {
            let domain = cfg.envelope.from.rsplit_once('@').map_or("", |(_, d)| d);
            crate::dkim_sign::signature(key, selector, domain, &probe, &body)?
        }
        None => Vec::new(),
    });

    let rss_start = match cfg.pid {
        Some(pid) => Some(procfs::read_mem(pid)?.rss_kib),
        None => None,
    };
    let sampler = cfg.pid.map(|pid| Sampler::start(pid, cfg.sample_every));

    let cfg = Arc::new(cfg);
    let next = Arc::new(AtomicU64::new(0));
    let workers = cfg
        .concurrency
        .min(usize::try_from(cfg.messages).unwrap_or(usize::MAX));
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..workers {
        set.spawn(worker(
            Arc::clone(&cfg),
            Arc::clone(&signature),
            Arc::clone(&body),
            Arc::clone(&next),
            run_id,
        ));
    }
    let mut ok = 0;
    let mut data_end = Vec::new();
    let mut session = Vec::new();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(res) = set.join_next().await {
        let r = res?;
        ok += r.ok;
        data_end.extend(r.data_end);
        session.extend(r.session);
        for (k, v) in r.failures {
            *failures.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed();

    let rss_max = sampler.map(Sampler::stop);
    // The server may have died during the run; keep the report and say so.
    let hwm = cfg.pid.and_then(|pid| match procfs::read_mem(pid) {
        Ok(m) => Some(m.hwm_kib),
        Err(e) => {
            eprintln!("warning: {e}");
            None
        }
    });
    Ok(SmtpReport {
        addr: cfg.addr.clone(),
        messages: cfg.messages,
        concurrency: cfg.concurrency,
        size: cfg.size,
        ok,
        failures,
        elapsed,
        data_end: Latency::of(&mut data_end),
        session: Latency::of(&mut session),
        rss_start_kib: rss_start,
        rss_max_kib: rss_max,
        hwm_kib: hwm,
    })
}

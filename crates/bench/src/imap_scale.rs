//! `imap-scale`: the hosting-provider scenario of one machine, in four phases against one
//! server process:
//!
//! 1. **hold** — N sessions (TLS by default), each on its own account, connect from source
//!    addresses spread over 127.0.0.0/8 (one address has only ~28k ephemeral ports), log in,
//!    SELECT INBOX and sit in IDLE (RFC 2177). The server's VmRSS against the baseline gives
//!    the cost per session.
//! 2. **deliver** — one message over SMTP to each of D sessions' accounts picked at random;
//!    the time from the SMTP 250 to the `* N EXISTS` (RFC 9051 §7.4.1) the session reads.
//! 3. **leave** — every session ends IDLE with DONE and logs out; after the settle time the
//!    server's VmRSS against the baseline says whether memory came back.
//! 4. **storm** — the same N sessions reconnect at once (every phone after a network blip),
//!    with no client-side pacing: how long until all are back in IDLE, and how many failed.
//!    Their credentials were verified in phase 1, so a server with a credential cache
//!    answers from it.
//!
//! The baseline is the server's VmRSS after a warm-up: a few sessions opened and closed, so
//! one-time allocations (TLS configuration, store caches, the runtime's worker stacks) are not
//! charged to the sessions.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::client::{Client, Envelope};
use crate::imap_client::{ImapClient, Status, exists_of, tls_connector};
use crate::message;
use crate::procfs;
use crate::report::{Latency, json_string};

#[derive(Debug, Clone)]
pub struct ImapScaleConfig {
    pub imap: String,
    pub tls: bool,
    /// SMTP endpoint for the deliveries (plain, no AUTH: the server is the accounts' MX).
    pub smtp: String,
    /// One login per session.
    pub logins: Vec<String>,
    pub password: String,
    pub pid: u32,
    /// Source addresses 127.1.0.1, 127.1.0.2, … used round robin (0: the kernel's choice).
    pub sources: usize,
    /// Sessions being opened at the same time in phase 1.
    pub open_parallel: usize,
    /// Sessions opened before the baseline and closed again.
    pub warmup: usize,
    pub deliveries: usize,
    pub delivery_parallel: usize,
    /// A delivery whose EXISTS has not come this long after its 250 is missed.
    pub miss_after: Duration,
    /// Run phase 4.
    pub storm: bool,
    /// Sessions of phase 4: the last K of phase 1, whose credentials the server verified most
    /// recently (0: all).
    pub storm_sessions: usize,
    /// A last reading this long after phase 1 ended, when the server's credential cache has
    /// let the entries of phase 1 expire (zero: none).
    pub expired_reading: Duration,
    pub settle: Duration,
    pub io_timeout: Duration,
    pub seed: u64,
}

/// The source address of session `i`: 127.1.x.y, never .0 in the last byte.
fn source(cfg: &ImapScaleConfig, i: usize) -> Option<IpAddr> {
    if cfg.sources == 0 {
        return None;
    }
    let k = (i % cfg.sources) as u32;
    let (hi, lo) = (k / 254, k % 254 + 1);
    Some(IpAddr::V4(Ipv4Addr::new(
        127,
        1,
        hi.min(255) as u8,
        lo as u8,
    )))
}

/// What every session task shares with the run.
struct Shared {
    cfg: ImapScaleConfig,
    connector: Option<tokio_rustls::TlsConnector>,
    t0: Instant,
    /// Per session: nanoseconds after `t0` (+1) at which its first new EXISTS was read; 0 none.
    exists_at: Vec<AtomicU64>,
    /// Sessions lost while idling (the server closed or garbled them).
    lost: AtomicUsize,
}

/// How one session's opening went.
type Opened = (usize, Result<(), String>);

/// Opens session `i` and holds it in IDLE until `stop`; then DONE and LOGOUT. Reports the
/// opening on `opened`; returns whether the DONE round trip worked.
async fn hold(
    shared: Arc<Shared>,
    i: usize,
    gate: Option<Arc<Semaphore>>,
    opened: mpsc::UnboundedSender<Opened>,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let cfg = &shared.cfg;
    let login = cfg.logins.get(i).map_or("", String::as_str);
    let permit = match &gate {
        Some(g) => Arc::clone(g).acquire_owned().await.ok(),
        None => None,
    };
    let opening = async {
        let mut c = ImapClient::connect_from(
            &cfg.imap,
            source(cfg, i),
            shared.connector.as_ref(),
            cfg.io_timeout,
        )
        .await?;
        c.login(login, &cfg.password).await?;
        // RFC 9051 §6.3.2: SELECT reports the count later EXISTS responses build on.
        c.ok("SELECT INBOX").await?;
        let base = c.exists;
        let tag = c.idle_start().await?;
        c.shrink();
        anyhow::Ok((c, tag, base))
    };
    let (mut c, tag, base) = match opening.await {
        Ok(v) => v,
        Err(e) => {
            let _ = opened.send((i, Err(e.to_string())));
            return false;
        }
    };
    drop(permit);
    let _ = opened.send((i, Ok(())));
    // An idle server is silent by design (RFC 2177 §3): no read timeout while waiting.
    c.set_io_timeout(Duration::from_secs(24 * 3600));
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            r = c.untagged() => match r {
                Ok(line) => {
                    if exists_of(&line).is_some_and(|n| n > base) {
                        let at = shared.t0.elapsed().as_nanos() as u64 + 1;
                        if let Some(slot) = shared.exists_at.get(i) {
                            let _ = slot.compare_exchange(0, at, Ordering::Relaxed, Ordering::Relaxed);
                        }
                    }
                    c.shrink();
                }
                Err(_) => {
                    shared.lost.fetch_add(1, Ordering::Relaxed);
                    return false;
                }
            },
        }
    }
    c.set_io_timeout(cfg.io_timeout);
    let ok = matches!(c.idle_done(&tag).await, Ok(d) if d.status == Status::Ok);
    let _ = c.command("LOGOUT").await;
    ok
}

/// Sessions `range` opened with at most `parallel` opening at once (`None`: all at once).
struct Held {
    tasks: JoinSet<bool>,
    stop: watch::Sender<bool>,
    open: usize,
    errors: std::collections::BTreeMap<String, usize>,
    took: Duration,
}

async fn open_all(
    shared: &Arc<Shared>,
    range: std::ops::Range<usize>,
    parallel: Option<usize>,
    label: &str,
) -> Held {
    let (stop, stop_rx) = watch::channel(false);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = parallel.map(|p| Arc::new(Semaphore::new(p.max(1))));
    let started = Instant::now();
    let n = range.len();
    let mut tasks = JoinSet::new();
    for i in range {
        tasks.spawn(hold(
            Arc::clone(shared),
            i,
            gate.clone(),
            tx.clone(),
            stop_rx.clone(),
        ));
    }
    drop(tx);
    let mut open = 0;
    let mut errors = std::collections::BTreeMap::new();
    let mut done = 0;
    while let Some((_, r)) = rx.recv().await {
        done += 1;
        match r {
            Ok(()) => open += 1,
            Err(e) => *errors.entry(e).or_default() += 1,
        }
        if done % 5000 == 0 && n > 5000 {
            eprintln!(
                "imap-scale {label}: {done}/{n} opened ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
        if done == n {
            break;
        }
    }
    Held {
        tasks,
        stop,
        open,
        errors,
        took: started.elapsed(),
    }
}

/// Ends every held session; returns how many answered DONE.
async fn close_all(mut held: Held) -> usize {
    let _ = held.stop.send(true);
    let mut answered = 0;
    while let Some(r) = held.tasks.join_next().await {
        if matches!(r, Ok(true)) {
            answered += 1;
        }
    }
    answered
}

/// A small deterministic generator for picking accounts (xorshift64*).
struct Pick(u64);

impl Pick {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
    }
}

/// `d` distinct indices out of `0..n` (partial Fisher–Yates).
fn pick_distinct(n: usize, d: usize, seed: u64) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    let mut rng = Pick(seed | 1);
    let d = d.min(n);
    for k in 0..d {
        let j = k + rng.below(n - k);
        all.swap(k, j);
    }
    all.truncate(d);
    all
}

/// What phase 2 measured.
struct Delivered {
    ok: usize,
    failed: std::collections::BTreeMap<String, usize>,
    latency: Option<Latency>,
    missed: usize,
}

async fn deliver(shared: &Arc<Shared>, targets: Vec<usize>) -> Delivered {
    let cfg = &shared.cfg;
    let body = Arc::new(message::body(2048));
    let gate = Arc::new(Semaphore::new(cfg.delivery_parallel.max(1)));
    let mut set = JoinSet::new();
    for (seq, i) in targets.into_iter().enumerate() {
        let (gate, body, smtp) = (Arc::clone(&gate), Arc::clone(&body), cfg.smtp.clone());
        let to = cfg.logins.get(i).cloned().unwrap_or_default();
        let io_timeout = cfg.io_timeout;
        set.spawn(async move {
            let _permit = gate.acquire_owned().await.ok();
            let env = Envelope {
                helo: "bench.yubin.test".into(),
                from: "scale@bench.yubin.test".into(),
                to: to.clone(),
            };
            let headers = message::headers(seq as u64, 0x5ca1e, &env.from, &to);
            let r = async {
                let mut client = Client::connect(&smtp, io_timeout).await?;
                client.deliver(&env, &headers, &body).await?;
                let at = Instant::now();
                let _ = client.quit().await;
                Ok::<_, crate::client::Failure>(at)
            }
            .await;
            (i, r.map_err(|f| f.key()))
        });
    }
    let mut acks = Vec::new();
    let mut failed = std::collections::BTreeMap::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok((i, Ok(at))) => acks.push((i, at)),
            Ok((_, Err(k))) => *failed.entry(k).or_default() += 1,
            Err(e) => *failed.entry(e.to_string()).or_default() += 1,
        }
    }
    // Wait for the stragglers, at most `miss_after` past the last acknowledgement.
    let deadline = Instant::now() + cfg.miss_after;
    while Instant::now() < deadline {
        let seen = acks
            .iter()
            .filter(|(i, _)| {
                shared
                    .exists_at
                    .get(*i)
                    .is_some_and(|s| s.load(Ordering::Relaxed) != 0)
            })
            .count();
        if seen == acks.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut samples = Vec::new();
    let mut missed = 0;
    for (i, ack) in &acks {
        let at = shared
            .exists_at
            .get(*i)
            .map_or(0, |s| s.load(Ordering::Relaxed));
        if at == 0 {
            missed += 1;
            continue;
        }
        let seen = shared.t0 + Duration::from_nanos(at - 1);
        // The server wakes the session when the message is committed, before it writes the
        // 250: an EXISTS read first counts as zero.
        samples.push(seen.saturating_duration_since(*ack));
    }
    Delivered {
        ok: acks.len(),
        failed,
        latency: Latency::of(&mut samples),
        missed,
    }
}

/// VmRSS and its anonymous part (RssAnon), in KiB.
fn rss(pid: u32) -> (u64, u64) {
    procfs::read_mem(pid).map_or((0, 0), |m| (m.rss_kib, m.anon_kib))
}

fn pct(now: u64, base: u64) -> f64 {
    (now as f64 - base as f64) / base.max(1) as f64 * 100.0
}

fn errors_text(e: &std::collections::BTreeMap<String, usize>) -> String {
    e.iter()
        .map(|(k, n)| format!("\n    failure {k}: {n}"))
        .collect()
}

fn errors_json(e: &std::collections::BTreeMap<String, usize>) -> String {
    let items: Vec<String> = e
        .iter()
        .map(|(k, n)| format!("{}:{n}", json_string(k)))
        .collect();
    format!("{{{}}}", items.join(","))
}

/// Runs the four phases; returns the human-readable report and the JSON line.
pub async fn run(cfg: ImapScaleConfig) -> anyhow::Result<(String, String)> {
    let n = cfg.logins.len();
    anyhow::ensure!(n > cfg.warmup, "more logins than --warmup are needed");
    let connector = if cfg.tls {
        Some(tls_connector()?)
    } else {
        None
    };
    let shared = Arc::new(Shared {
        exists_at: (0..n).map(|_| AtomicU64::new(0)).collect(),
        cfg,
        connector,
        t0: Instant::now(),
        lost: AtomicUsize::new(0),
    });
    let cfg = &shared.cfg;
    let settle = cfg.settle;

    // Warm-up on the last logins, which phase 1 does not use.
    let warm = open_all(
        &shared,
        n - cfg.warmup..n,
        Some(cfg.open_parallel),
        "warm-up",
    )
    .await;
    close_all(warm).await;
    tokio::time::sleep(settle).await;
    let (base, base_anon) = rss(cfg.pid);
    let sessions = n - cfg.warmup;

    // Phase 1: hold.
    let held = open_all(&shared, 0..sessions, Some(cfg.open_parallel), "hold").await;
    let hold_ended = Instant::now();
    tokio::time::sleep(settle).await;
    let (holding, holding_anon) = rss(cfg.pid);
    let per_session = holding.saturating_sub(base) as f64 / held.open.max(1) as f64;
    let per_session_anon = holding_anon.saturating_sub(base_anon) as f64 / held.open.max(1) as f64;

    // Phase 2: deliver.
    let targets = pick_distinct(sessions, cfg.deliveries, cfg.seed);
    let delivered = deliver(&shared, targets).await;

    // Phase 3: leave.
    let (open1, errors1, took1) = (held.open, held.errors.clone(), held.took);
    let answered = close_all(held).await;
    tokio::time::sleep(settle).await;
    let (after, after_anon) = rss(cfg.pid);
    let lost = shared.lost.load(Ordering::Relaxed);

    // Phase 4: storm.
    let storm_n = match cfg.storm_sessions {
        0 => sessions,
        k => k.min(sessions),
    };
    let storm = if cfg.storm {
        let sampler = procfs::Sampler::start(cfg.pid, Duration::from_millis(100));
        let held = open_all(&shared, sessions - storm_n..sessions, None, "storm").await;
        let peak = sampler.stop();
        let (open, errors, took) = (held.open, held.errors.clone(), held.took);
        close_all(held).await;
        tokio::time::sleep(settle).await;
        Some((open, errors, took, peak, rss(cfg.pid).0))
    } else {
        None
    };

    // The credential cache holds the passwords verified in phase 1 until its TTL: a server
    // with no client left should come back to its baseline once they expire.
    let expired = (!cfg.expired_reading.is_zero()).then_some(cfg.expired_reading);
    if let Some(wait) = expired {
        tokio::time::sleep_until((hold_ended + wait).into()).await;
    }
    let expired = expired.map(|wait| (wait, rss(cfg.pid)));

    let mib = |k: u64| k as f64 / 1024.0;
    let (ret, ret_anon) = (pct(after, base), pct(after_anon, base_anon));
    let mut human = format!(
        "IMAP scale against {} (TLS: {}), {sessions} sessions on {sessions} accounts, {} source \
         addresses\n  baseline VmRSS {:.1} MiB, RssAnon {:.1} MiB (after {} warm-up sessions)\n  hold: \
         {open1} in IDLE after {:.1} s{}\n    VmRSS {:.1} MiB: {:.2} KiB per session \
         (RssAnon: {per_session_anon:.2} KiB)\n  deliver: {} \
         delivered ({} failed){}, 250 → EXISTS {}, missed {}\n  leave: {answered} answered \
         DONE, {lost} lost while idling; VmRSS {:.1} MiB = {ret:+.1}% of the baseline, \
         RssAnon {:.1} MiB = {ret_anon:+.1}%\n",
        cfg.imap,
        cfg.tls,
        cfg.sources.max(1),
        mib(base),
        mib(base_anon),
        cfg.warmup,
        took1.as_secs_f64(),
        errors_text(&errors1),
        mib(holding),
        per_session,
        delivered.ok,
        delivered.failed.values().sum::<usize>(),
        errors_text(&delivered.failed),
        delivered.latency.map_or("-".into(), |l| format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            l.p50, l.p99, l.max
        )),
        delivered.missed,
        mib(after),
        mib(after_anon),
    );
    let mut json = format!(
        "{{\"mode\":\"imap-scale\",\"addr\":{},\"tls\":{},\"sessions\":{sessions},\"sources\":{},\
         \"rss_base_kib\":{base},\"open\":{open1},\"open_s\":{:.1},\"open_failures\":{},\
         \"rss_hold_kib\":{holding},\"kib_per_session\":{per_session:.2},\"delivered\":{},\
         \"delivery_failures\":{},\"exists_ms\":{},\"missed\":{},\"answered_done\":{answered},\
         \"lost\":{lost},\"rss_after_kib\":{after},\"after_vs_base_pct\":{ret:.1},\
         \"anon_base_kib\":{base_anon},\"anon_kib_per_session\":{per_session_anon:.2},\
         \"anon_after_kib\":{after_anon},\"anon_after_vs_base_pct\":{ret_anon:.1}",
        json_string(&cfg.imap),
        cfg.tls,
        cfg.sources,
        took1.as_secs_f64(),
        errors_json(&errors1),
        delivered.ok,
        errors_json(&delivered.failed),
        delivered.latency.map_or("null".into(), |l| l.json()),
        delivered.missed,
    );
    if let Some((open, errors, took, peak, rest)) = storm {
        human.push_str(&format!(
            "  storm: {open} of {storm_n} back in IDLE after {:.1} s (all started at once){}\n    \
             peak VmRSS {:.1} MiB; {:.1} MiB after they left again\n",
            took.as_secs_f64(),
            errors_text(&errors),
            mib(peak),
            mib(rest),
        ));
        json.push_str(&format!(
            ",\"storm_sessions\":{storm_n},\"storm_open\":{open},\"storm_s\":{:.1},\"storm_failures\":{},\
             \"storm_peak_kib\":{peak},\"storm_after_kib\":{rest}",
            took.as_secs_f64(),
            errors_json(&errors)
        ));
    }
    if let Some((wait, (rss, anon))) = expired {
        let (ret, ret_anon) = (pct(rss, base), pct(anon, base_anon));
        human.push_str(&format!(
            "  {} s after the hold phase (credential cache expired): VmRSS {:.1} MiB = \
             {ret:+.1}% of the baseline, RssAnon {:.1} MiB = {ret_anon:+.1}%\n",
            wait.as_secs(),
            mib(rss),
            mib(anon),
        ));
        json.push_str(&format!(
            ",\"expired_after_s\":{},\"rss_expired_kib\":{rss},\"expired_vs_base_pct\":{ret:.1},\
             \"anon_expired_kib\":{anon},\"anon_expired_vs_base_pct\":{ret_anon:.1}",
            wait.as_secs()
        ));
    }
    json.push('}');
    Ok((human, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_are_distinct_and_in_range() {
        let p = pick_distinct(100, 40, 7);
        assert_eq!(p.len(), 40);
        let mut s = p.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 40);
        assert!(p.iter().all(|&i| i < 100));
        assert_eq!(pick_distinct(5, 10, 1).len(), 5);
    }

    #[test]
    fn sources_spread_over_loopback_without_zero_hosts() {
        let cfg = ImapScaleConfig {
            imap: String::new(),
            tls: false,
            smtp: String::new(),
            logins: Vec::new(),
            password: String::new(),
            pid: 0,
            sources: 600,
            open_parallel: 1,
            warmup: 0,
            deliveries: 0,
            delivery_parallel: 1,
            miss_after: Duration::ZERO,
            storm: false,
            storm_sessions: 0,
            expired_reading: Duration::ZERO,
            settle: Duration::ZERO,
            io_timeout: Duration::ZERO,
            seed: 1,
        };
        assert_eq!(source(&cfg, 0), Some("127.1.0.1".parse().unwrap()));
        assert_eq!(source(&cfg, 253), Some("127.1.0.254".parse().unwrap()));
        assert_eq!(source(&cfg, 254), Some("127.1.1.1".parse().unwrap()));
        assert_eq!(source(&cfg, 600), source(&cfg, 0));
    }
}

//! `idle-latency`: how long after a delivery is acknowledged an IMAP client in IDLE hears of
//! it — across nodes when `--smtp` and `--imap` name different yubin nodes on one store.
//!
//! K sessions (one account each) log in, SELECT INBOX and IDLE (RFC 2177), spread round robin
//! over the IMAP endpoints. Each session has its own reader task that reads continuously and
//! timestamps every `* N EXISTS` (RFC 9051 §7.4.1) the moment the line is read. At a fixed
//! rate, measured deliveries go over SMTP (RFC 5321, a new connection each, no auth) to the
//! session accounts in turn; the clock starts at the 250 reply to the end of DATA (RFC 5321
//! §4.1.1.4: the message is stored). Optionally C load senders deliver continuously meanwhile.
//!
//! Matching: EXISTS carries a count, not a message identity, so per account the k-th
//! acknowledged delivery (measured or load) is matched to the first EXISTS whose count reaches
//! `base + k`, `base` being the count SELECT reported. A server may announce several messages
//! in one EXISTS (RFC 9051 §7.4.1 gives the new size only), which this rule covers. An EXISTS
//! read before the 250 counts as 0 ms ("early"); the time from the final "." is kept too.
//! Nothing may expunge from the session accounts during a run (counts must only grow), and a
//! delivery the server stored but did not acknowledge (a timeout after commit) would make later
//! matches of that account one message early — the report lists SMTP failures for that reason.
//! Runs are short: the RFC 2177 §3 advice to re-issue IDLE every 29 minutes is not followed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{MissedTickBehavior, timeout_at};

use crate::client::{Client, Envelope, Failure};
use crate::imap_client::{ImapClient, exists_of, tls_connector};
use crate::message;

mod report;
pub use report::NodeStats;
use report::{LoadResult, Report};

/// How long an IDLE reader waits for a line before it gives up: longer than any run.
const IDLE_READ_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// Which accounts the load senders deliver to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadTo {
    /// Accounts without an IDLE session (`--users` above `--sessions`): the EXISTS counts of
    /// the measured accounts see only measured deliveries.
    Others,
    /// The measured accounts themselves: their sessions also hear of the load, and the load's
    /// acknowledgements take part in the count matching.
    Same,
}

impl LoadTo {
    pub fn name(self) -> &'static str {
        match self {
            LoadTo::Others => "others",
            LoadTo::Same => "same",
        }
    }
}

#[derive(Debug, Clone)]
pub struct IdleLatencyConfig {
    /// Where messages are delivered (SMTP, no auth, plain).
    pub smtp: String,
    /// IMAP endpoints; session i connects to `imap[i % len]`.
    pub imap: Vec<String>,
    pub tls: bool,
    /// Login names, one per account.
    pub logins: Vec<String>,
    /// Recipient addresses, parallel to `logins`.
    pub rcpts: Vec<String>,
    pub password: String,
    /// IDLE sessions: accounts `0..sessions` get one each.
    pub sessions: usize,
    pub messages: u64,
    /// Measured deliveries per second.
    pub rate: f64,
    pub load: usize,
    pub load_to: LoadTo,
    /// Message size in bytes (headers + body).
    pub size: usize,
    pub from: String,
    /// A delivery with no EXISTS this long after its 250 is missed.
    pub miss_after: Duration,
    /// How long the load runs before the first measured delivery.
    pub warmup: Duration,
    pub io_timeout: Duration,
    /// Sessions being opened at the same time (each LOGIN costs the server a password hash).
    pub open_parallel: usize,
}

/// One `* N EXISTS` as the reader task read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    pub n: u32,
    pub at: Instant,
}

/// One measured delivery the server acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The EXISTS count that announces it: `base + k` for the k-th acknowledged delivery.
    pub expected: u32,
    /// When the final "." was written.
    pub dot: Instant,
    /// When the 250 was read.
    pub at: Instant,
}

/// What became of one measured delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Seen {
        /// 250 → EXISTS; zero when the EXISTS came first.
        after_ack: Duration,
        /// Final "." → EXISTS.
        after_dot: Duration,
        /// The EXISTS was read before the 250.
        early: bool,
    },
    Missed,
}

/// Finds the EXISTS that announces `ack` in one session's observations (in reading order,
/// counts never decreasing): the first whose count reaches `ack.expected`, if it came within
/// `miss_after` of the 250. Binary search, since the counts are sorted.
pub fn match_ack(obs: &[Observation], ack: &Ack, miss_after: Duration) -> Outcome {
    let i = obs.partition_point(|o| o.n < ack.expected);
    let Some(o) = obs.get(i) else {
        return Outcome::Missed;
    };
    if o.at > ack.at + miss_after {
        return Outcome::Missed;
    }
    Outcome::Seen {
        after_ack: o.at.saturating_duration_since(ack.at),
        after_dot: o.at.saturating_duration_since(ack.dot),
        early: o.at < ack.at,
    }
}

/// The observation an untagged line read at `at` makes, if it is `* N EXISTS`.
pub fn observe(line: &[u8], at: Instant) -> Option<Observation> {
    exists_of(line).map(|n| Observation { n, at })
}

/// Per account with a session: its base count and the acknowledgements so far.
#[derive(Debug, Default)]
struct Account {
    base: u32,
    /// Deliveries acknowledged (measured and, with `LoadTo::Same`, load).
    acked: u32,
    measured: Vec<Ack>,
}

impl Account {
    /// Counts one acknowledgement and returns the EXISTS count that will announce it.
    fn ack(&mut self) -> u32 {
        self.acked = self.acked.saturating_add(1);
        self.base.saturating_add(self.acked)
    }
}

/// What a session's reader task saw.
struct ReaderResult {
    observations: Vec<Observation>,
    /// Why the session ended before it was told to stop.
    lost: Option<String>,
}

/// Connects, logs in, SELECTs INBOX and starts IDLE; returns the client, the IDLE tag and
/// the message count SELECT reported.
async fn open_session(
    addr: &str,
    connector: Option<&tokio_rustls::TlsConnector>,
    login: &str,
    password: &str,
    io_timeout: Duration,
) -> anyhow::Result<(ImapClient, String, u32)> {
    let mut c = ImapClient::connect(addr, connector, io_timeout).await?;
    c.login(login, password).await?;
    // RFC 9051 §6.3.2: SELECT answers with `* N EXISTS`, the count later EXISTS build on.
    c.ok("SELECT INBOX").await?;
    let base = c.exists;
    let tag = c.idle_start().await?;
    Ok((c, tag, base))
}

/// Reads the session until `stop`, timestamping every EXISTS as it arrives; then ends IDLE
/// with DONE (RFC 2177 §3) and logs out.
async fn read_idle(
    mut c: ImapClient,
    tag: String,
    io_timeout: Duration,
    latest: watch::Sender<u32>,
    mut stop: watch::Receiver<bool>,
) -> ReaderResult {
    let mut observations = Vec::new();
    let mut lost = None;
    c.set_io_timeout(IDLE_READ_LIMIT);
    loop {
        tokio::select! {
            biased;
            r = c.untagged() => match r {
                Ok(line) => {
                    if let Some(o) = observe(&line, Instant::now()) {
                        observations.push(o);
                        latest.send_replace(o.n);
                    }
                }
                Err(e) => {
                    lost = Some(e.to_string());
                    break;
                }
            },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if lost.is_none() {
        c.set_io_timeout(io_timeout);
        if let Err(e) = c.idle_done(&tag).await {
            lost = Some(format!("DONE: {e}"));
        } else {
            let _ = c.command("LOGOUT").await;
        }
    }
    ReaderResult { observations, lost }
}

/// Everything a delivery needs, shared by the measured and the load senders.
struct Sender {
    smtp: String,
    helo: String,
    from: String,
    body: Vec<u8>,
    run_id: u64,
    next_seq: AtomicU64,
    io_timeout: Duration,
}

impl Sender {
    /// Delivers one message over a new connection; returns (time "." was written, time 250
    /// was read).
    async fn deliver(&self, to: &str) -> Result<(Instant, Instant), Failure> {
        let mut client = Client::connect(&self.smtp, self.io_timeout).await?;
        let env = Envelope {
            helo: self.helo.clone(),
            from: self.from.clone(),
            to: to.to_owned(),
        };
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let headers = message::headers(seq, self.run_id, &self.from, to);
        let data_end = client.deliver(&env, &headers, &self.body).await?;
        let at = Instant::now();
        // Stored and acknowledged; a failed QUIT changes nothing.
        let _ = client.quit().await;
        Ok((at.checked_sub(data_end).unwrap_or(at), at))
    }
}

/// One load sender: delivers to `targets` (its own stride through them) until `stop`.
async fn load_sender(
    sender: Arc<Sender>,
    worker: usize,
    workers: usize,
    targets: Arc<Vec<usize>>,
    rcpts: Arc<Vec<String>>,
    accounts: Arc<Vec<Mutex<Account>>>,
    stop: watch::Receiver<bool>,
) -> LoadResult {
    let mut r = LoadResult::default();
    let mut i = worker;
    while !*stop.borrow() {
        let Some(&user) = targets.get(i % targets.len().max(1)) else {
            break;
        };
        i = i.wrapping_add(workers);
        let to = rcpts.get(user).map_or("", String::as_str);
        match sender.deliver(to).await {
            Ok((dot, at)) => {
                r.ok += 1;
                r.data_end.push(at - dot);
                if let Some(a) = accounts.get(user) {
                    a.lock().unwrap_or_else(|e| e.into_inner()).ack();
                }
            }
            Err(f) => *r.failures.entry(f.key()).or_default() += 1,
        }
    }
    r
}

/// Runs the benchmark; returns the human-readable report and the JSON line.
pub async fn run(cfg: IdleLatencyConfig) -> anyhow::Result<(String, String)> {
    let k = cfg.sessions;
    ensure!(!cfg.imap.is_empty(), "give at least one --imap address");
    ensure!(k > 0, "--sessions must be at least 1");
    ensure!(
        k <= cfg.logins.len(),
        "--sessions {k} is more than the {} accounts (--users)",
        cfg.logins.len()
    );
    ensure!(
        cfg.rate > 0.0 && cfg.rate.is_finite(),
        "--rate must be positive"
    );
    let load_targets: Vec<usize> = match cfg.load_to {
        LoadTo::Same => (0..k).collect(),
        LoadTo::Others => (k..cfg.logins.len()).collect(),
    };
    if cfg.load > 0 && load_targets.is_empty() {
        bail!("--load-to others needs accounts without a session: raise --users above --sessions");
    }
    let connector = if cfg.tls {
        Some(tls_connector()?)
    } else {
        None
    };

    // 1. Open the IDLE sessions.
    let gate = Arc::new(Semaphore::new(cfg.open_parallel.max(1)));
    let mut opening = JoinSet::new();
    for i in 0..k {
        let addr = cfg
            .imap
            .get(i % cfg.imap.len())
            .cloned()
            .unwrap_or_default();
        let login = cfg.logins.get(i).cloned().unwrap_or_default();
        let (gate, connector, password) =
            (Arc::clone(&gate), connector.clone(), cfg.password.clone());
        let io = cfg.io_timeout;
        opening.spawn(async move {
            let _permit = gate.acquire_owned().await.ok();
            let r = open_session(&addr, connector.as_ref(), &login, &password, io).await;
            (i, r.map_err(|e| format!("{login} on {addr}: {e}")))
        });
    }
    let mut opened = Vec::with_capacity(k);
    while let Some(r) = opening.join_next().await {
        match r? {
            (i, Ok(s)) => opened.push((i, s)),
            (_, Err(e)) => bail!("cannot open an IDLE session: {e}"),
        }
    }
    opened.sort_by_key(|(i, _)| *i);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut latest = Vec::with_capacity(k);
    let mut accounts = Vec::with_capacity(k);
    let mut readers = JoinSet::new();
    for (i, (c, tag, base)) in opened {
        let (tx, rx) = watch::channel(base);
        latest.push(rx);
        accounts.push(Mutex::new(Account {
            base,
            ..Account::default()
        }));
        let stop = stop_rx.clone();
        let io = cfg.io_timeout;
        readers.spawn(async move { (i, read_idle(c, tag, io, tx, stop).await) });
    }
    let accounts = Arc::new(accounts);

    // 2. Start the load and let it warm up.
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let probe = message::headers(u64::MAX, run_id, &cfg.from, "probe@bench.test");
    let sender = Arc::new(Sender {
        smtp: cfg.smtp.clone(),
        helo: "bench.yubin.test".into(),
        from: cfg.from.clone(),
        body: message::body(message::body_len_for(cfg.size, probe.len())),
        run_id,
        next_seq: AtomicU64::new(0),
        io_timeout: cfg.io_timeout,
    });
    let rcpts = Arc::new(cfg.rcpts.clone());
    let load_started = Instant::now();
    let mut load = JoinSet::new();
    let load_targets = Arc::new(load_targets);
    for w in 0..cfg.load {
        load.spawn(load_sender(
            Arc::clone(&sender),
            w,
            cfg.load,
            Arc::clone(&load_targets),
            Arc::clone(&rcpts),
            Arc::clone(&accounts),
            stop_rx.clone(),
        ));
    }
    if cfg.load > 0 {
        tokio::time::sleep(cfg.warmup).await;
    }

    // 3. The measured deliveries, paced: one every 1/rate, each in its own task so a slow
    // delivery does not hold back the schedule.
    let measure_started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / cfg.rate));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut measured = JoinSet::new();
    for j in 0..cfg.messages {
        tick.tick().await;
        let user = usize::try_from(j).unwrap_or(0) % k;
        let (sender, rcpts, accounts) = (
            Arc::clone(&sender),
            Arc::clone(&rcpts),
            Arc::clone(&accounts),
        );
        measured.spawn(async move {
            let to = rcpts.get(user).map_or("", String::as_str);
            let (dot, at) = sender.deliver(to).await?;
            if let Some(a) = accounts.get(user) {
                let mut a = a.lock().unwrap_or_else(|e| e.into_inner());
                let expected = a.ack();
                a.measured.push(Ack { expected, dot, at });
            }
            Ok::<_, Failure>(())
        });
    }
    let mut smtp_failures: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(r) = measured.join_next().await {
        if let Err(f) = r? {
            *smtp_failures.entry(f.key()).or_default() += 1;
        }
    }
    let measure_elapsed = measure_started.elapsed();

    // 4. Wait until every session has heard of its last measured delivery, or missed it.
    for (i, rx) in latest.iter_mut().enumerate() {
        let last = accounts.get(i).and_then(|a| {
            let a = a.lock().unwrap_or_else(|e| e.into_inner());
            a.measured.iter().map(|m| (m.expected, m.at)).max()
        });
        if let Some((expected, at)) = last {
            let deadline = tokio::time::Instant::from_std(at + cfg.miss_after);
            let _ = timeout_at(deadline, rx.wait_for(|n| *n >= expected)).await;
        }
    }

    // 5. Stop the load and the readers.
    stop_tx.send_replace(true);
    let mut load_result = LoadResult::default();
    while let Some(r) = load.join_next().await {
        let r = r?;
        load_result.ok += r.ok;
        load_result.data_end.extend(r.data_end);
        for (key, n) in r.failures {
            *load_result.failures.entry(key).or_default() += n;
        }
    }
    let load_elapsed = load_started.elapsed();
    let mut observed: Vec<Option<ReaderResult>> = (0..k).map(|_| None).collect();
    while let Some(r) = readers.join_next().await {
        let (i, r) = r?;
        if let Some(slot) = observed.get_mut(i) {
            *slot = Some(r);
        }
    }

    // 6. Match and summarise.
    let mut per_node: Vec<NodeStats> = cfg.imap.iter().map(|_| NodeStats::default()).collect();
    let mut lost: BTreeMap<String, u64> = BTreeMap::new();
    for (i, r) in observed.into_iter().enumerate() {
        let Some(r) = r else { continue };
        if let Some(e) = r.lost {
            *lost.entry(e).or_default() += 1;
        }
        let Some(node) = per_node.get_mut(i % cfg.imap.len()) else {
            continue;
        };
        if let Some(a) = accounts.get(i) {
            let a = a.lock().unwrap_or_else(|e| e.into_inner());
            for ack in &a.measured {
                node.add(match_ack(&r.observations, ack, cfg.miss_after));
            }
        }
    }
    let report = Report {
        cfg: &cfg,
        per_node,
        smtp_failures,
        lost,
        measure_elapsed,
        load: load_result,
        load_elapsed,
    };
    Ok((report.human(), report.json()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Latency;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Observations `(count, ms after t0)`.
    fn obs(t0: Instant, v: &[(u32, u64)]) -> Vec<Observation> {
        v.iter()
            .map(|&(n, t)| Observation { n, at: t0 + ms(t) })
            .collect()
    }

    fn ack(t0: Instant, expected: u32, dot: u64, at: u64) -> Ack {
        Ack {
            expected,
            dot: t0 + ms(dot),
            at: t0 + ms(at),
        }
    }

    #[test]
    fn exists_lines_become_observations_other_lines_do_not() {
        let t = Instant::now();
        assert_eq!(
            observe(b"* 7 EXISTS\r\n", t),
            Some(Observation { n: 7, at: t })
        );
        // RFC 9051 §9: keywords are case-insensitive.
        assert_eq!(observe(b"* 12 exists\r\n", t).map(|o| o.n), Some(12));
        assert_eq!(observe(b"* 7 RECENT\r\n", t), None);
        assert_eq!(observe(b"* 3 EXPUNGE\r\n", t), None);
        assert_eq!(observe(b"* 3 FETCH (FLAGS (\\Seen))\r\n", t), None);
        assert_eq!(observe(b"* OK Still here\r\n", t), None);
        assert_eq!(observe(b"* x EXISTS\r\n", t), None);
        assert_eq!(observe(b"* 99999999999 EXISTS\r\n", t), None);
    }

    #[test]
    fn each_delivery_matches_the_first_exists_reaching_its_count() {
        let t0 = Instant::now();
        let o = obs(t0, &[(10, 120), (11, 250), (12, 400)]);
        assert_eq!(
            match_ack(&o, &ack(t0, 11, 90, 100), ms(5000)),
            Outcome::Seen {
                after_ack: ms(150),
                after_dot: ms(160),
                early: false
            }
        );
        assert_eq!(
            match_ack(&o, &ack(t0, 12, 300, 380), ms(5000)),
            Outcome::Seen {
                after_ack: ms(20),
                after_dot: ms(100),
                early: false
            }
        );
    }

    #[test]
    fn one_exists_announcing_two_messages_matches_both() {
        let t0 = Instant::now();
        // RFC 9051 §7.4.1: EXISTS gives the new size; 5 → 7 covers two deliveries.
        let o = obs(t0, &[(5, 0), (7, 300)]);
        for (expected, at, wait) in [(6, 100, 200), (7, 250, 50)] {
            match match_ack(&o, &ack(t0, expected, at - 10, at), ms(5000)) {
                Outcome::Seen { after_ack, .. } => assert_eq!(after_ack, ms(wait)),
                Outcome::Missed => panic!("{expected} missed"),
            }
        }
    }

    #[test]
    fn exists_before_the_250_counts_as_zero_and_early() {
        let t0 = Instant::now();
        let o = obs(t0, &[(3, 40)]);
        assert_eq!(
            match_ack(&o, &ack(t0, 3, 10, 60), ms(5000)),
            Outcome::Seen {
                after_ack: Duration::ZERO,
                after_dot: ms(30),
                early: true
            }
        );
    }

    #[test]
    fn no_exists_or_a_late_one_is_missed() {
        let t0 = Instant::now();
        let o = obs(t0, &[(1, 100), (2, 6000)]);
        assert_eq!(match_ack(&o, &ack(t0, 3, 0, 10), ms(5000)), Outcome::Missed);
        assert_eq!(match_ack(&o, &ack(t0, 2, 0, 10), ms(5000)), Outcome::Missed);
        assert!(matches!(
            match_ack(&o, &ack(t0, 2, 0, 10), ms(6000)),
            Outcome::Seen { .. }
        ));
        assert_eq!(
            match_ack(&[], &ack(t0, 1, 0, 10), ms(5000)),
            Outcome::Missed
        );
    }

    #[test]
    fn acknowledgements_count_up_from_the_selected_size() {
        let mut a = Account {
            base: 40,
            ..Account::default()
        };
        assert_eq!((a.ack(), a.ack(), a.ack()), (41, 42, 43));
    }

    #[test]
    fn percentiles_of_matched_latencies() {
        let mut s = NodeStats::default();
        // 1..=100 ms, shuffled by a stride, plus one miss.
        for i in 0..100u64 {
            let v = ms((i * 37) % 100 + 1);
            s.add(Outcome::Seen {
                after_ack: v,
                after_dot: v + ms(2),
                early: false,
            });
        }
        s.add(Outcome::Missed);
        assert_eq!((s.after_ack.len(), s.missed), (100, 1));
        let l = Latency::of(&mut s.after_ack).expect("samples");
        // Nearest rank: p50 is the 50th smallest, p99 the 99th, max the 100th.
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
        let d = Latency::of(&mut s.after_dot).expect("samples");
        assert_eq!(d.p99, 101.0);
        // A single slow delivery in 1,000 does not move p99.
        let mut many: Vec<Duration> = (0..999).map(|_| ms(10)).collect();
        many.push(ms(900));
        let l = Latency::of(&mut many).expect("samples");
        assert_eq!((l.p99, l.max), (10.0, 900.0));
    }
}

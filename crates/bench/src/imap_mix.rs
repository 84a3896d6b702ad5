//! `imap-mix`: C clients, each logged in as its own user, run a realistic mix of IMAP commands
//! for a fixed time; reports commands per second in total and per command, with latency
//! percentiles (command sent → tagged status read, untagged data included).
//!
//! The mix follows what mail clients send most (weights in percent):
//! - NOOP 4;
//! - SELECT 6 of the other mailbox (INBOX ↔ `other_mailbox`, e.g. Archive; never a re-SELECT
//!   of the selected one, which a server can answer from memory);
//! - `FETCH 1:* (FLAGS UID)` 8 (a flag resync);
//! - a message list page: `FETCH n:n+9 (UID FLAGS ENVELOPE)` 12, and
//!   `FETCH n:n+9 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date
//!   Message-ID)])` 12;
//! - `FETCH n (UID BODYSTRUCTURE)` 8, then the first part's start `FETCH n
//!   (BODY.PEEK[1]<0.2048>)` 8 (a preview), and the whole message `FETCH n (UID RFC822.SIZE
//!   BODY.PEEK[])` 10;
//! - `STORE n ±FLAGS (\Flagged)` 10;
//! - SEARCH 8: `UID SEARCH UNSEEN`, `SEARCH FLAGGED SINCE 1-Jan-2020` or `SEARCH SUBJECT
//!   "re"` (a header search), in turn;
//! - APPEND of an mbox message to INBOX 6; IDLE then DONE 8.
//!
//! Message numbers are drawn uniformly from the selected mailbox as the last `* N EXISTS`
//! says. Each client runs one command at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::imap_client::{Done, ImapClient, Status, quoted, tls_connector};
use crate::report::{Latency, json_string};

/// The commands of the mix, with their weights (sum 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Noop,
    Select,
    FetchFlags,
    FetchEnvelope,
    FetchHeaderFields,
    FetchBodystructure,
    FetchPartial,
    FetchBody,
    Store,
    Search,
    Append,
    Idle,
}

pub const MIX: [(Op, u32); 12] = [
    (Op::Noop, 4),
    (Op::Select, 6),
    (Op::FetchFlags, 8),
    (Op::FetchEnvelope, 12),
    (Op::FetchHeaderFields, 12),
    (Op::FetchBodystructure, 8),
    (Op::FetchPartial, 8),
    (Op::FetchBody, 10),
    (Op::Store, 10),
    (Op::Search, 8),
    (Op::Append, 6),
    (Op::Idle, 8),
];

const OPS: usize = MIX.len();

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Noop => "NOOP",
            Op::Select => "SELECT other",
            Op::FetchFlags => "FETCH 1:* FLAGS",
            Op::FetchEnvelope => "FETCH ENVELOPE",
            Op::FetchHeaderFields => "FETCH HEADER.FIELDS",
            Op::FetchBodystructure => "FETCH BODYSTRUCTURE",
            Op::FetchPartial => "FETCH [1]<0.2048>",
            Op::FetchBody => "FETCH body",
            Op::Store => "STORE",
            Op::Search => "SEARCH",
            Op::Append => "APPEND",
            Op::Idle => "IDLE+DONE",
        }
    }

    fn index(self) -> usize {
        MIX.iter().position(|(o, _)| *o == self).unwrap_or(0)
    }
}

/// xorshift64*: a tiny deterministic generator; quality is plenty for picking commands.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn pick(&mut self) -> Op {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut r = self.below(u64::from(total)) as u32;
        for (op, w) in MIX {
            if r < w {
                return op;
            }
            r -= w;
        }
        Op::Noop
    }
}

#[derive(Debug, Clone)]
pub struct MixConfig {
    pub addr: String,
    pub tls: bool,
    pub users: Vec<String>,
    pub password: String,
    pub seconds: u64,
    pub messages: Arc<Vec<Vec<u8>>>,
    /// The mailbox SELECT alternates with INBOX (it should hold messages too).
    pub other_mailbox: String,
    pub io_timeout: Duration,
    /// A label for the report (e.g. "yubin", "dovecot").
    pub label: String,
}

#[derive(Default)]
struct Tally {
    ok: [u64; OPS],
    failed: [u64; OPS],
    lat: [Vec<Duration>; OPS],
    errors: std::collections::BTreeMap<String, u64>,
}

/// What a client remembers between commands.
struct ClientState {
    /// INBOX is selected (else the other mailbox).
    in_inbox: bool,
    searches: u64,
}

async fn one(
    c: &mut ImapClient,
    op: Op,
    rng: &mut Rng,
    cfg: &MixConfig,
    st: &mut ClientState,
) -> anyhow::Result<Done> {
    let exists = u64::from(c.exists.max(1));
    let n = rng.below(exists) + 1;
    // A page of up to 10 messages from n.
    let page = format!("{n}:{}", (n + 9).min(exists));
    match op {
        Op::Noop => c.command("NOOP").await,
        Op::Select => {
            let target = if st.in_inbox {
                quoted(&cfg.other_mailbox)
            } else {
                "INBOX".to_string()
            };
            let d = c.command(&format!("SELECT {target}")).await?;
            if d.status == Status::Ok {
                st.in_inbox = !st.in_inbox;
            }
            Ok(d)
        }
        Op::FetchFlags => c.command("FETCH 1:* (FLAGS UID)").await,
        Op::FetchEnvelope => c.command(&format!("FETCH {page} (UID FLAGS ENVELOPE)")).await,
        Op::FetchHeaderFields => {
            c.command(&format!(
                "FETCH {page} (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID)])"
            ))
            .await
        }
        Op::FetchBodystructure => c.command(&format!("FETCH {n} (UID BODYSTRUCTURE)")).await,
        Op::FetchPartial => c.command(&format!("FETCH {n} (BODY.PEEK[1]<0.2048>)")).await,
        Op::FetchBody => {
            c.command(&format!("FETCH {n} (UID RFC822.SIZE BODY.PEEK[])"))
                .await
        }
        Op::Store => {
            let sign = if rng.below(2) == 0 { '+' } else { '-' };
            c.command(&format!("STORE {n} {sign}FLAGS (\\Flagged)"))
                .await
        }
        Op::Search => {
            st.searches += 1;
            match st.searches % 3 {
                0 => c.command("UID SEARCH UNSEEN").await,
                1 => c.command("SEARCH FLAGGED SINCE 1-Jan-2020").await,
                _ => c.command("SEARCH SUBJECT \"re\"").await,
            }
        }
        Op::Append => {
            let m = &cfg.messages[rng.below(cfg.messages.len() as u64) as usize];
            c.append("INBOX", "\\Seen", m).await
        }
        Op::Idle => {
            let tag = c.idle_start().await?;
            c.idle_done(&tag).await
        }
    }
}

async fn client(cfg: Arc<MixConfig>, user: String, seed: u64, deadline: Instant) -> Tally {
    let mut t = Tally::default();
    let connector = match cfg.tls.then(tls_connector).transpose() {
        Ok(c) => c,
        Err(e) => {
            t.errors.insert(format!("tls: {e}"), 1);
            return t;
        }
    };
    let setup = async {
        let mut c = ImapClient::connect(&cfg.addr, connector.as_ref(), cfg.io_timeout).await?;
        c.login(&user, &cfg.password).await?;
        c.ok("SELECT INBOX").await?;
        anyhow::Ok(c)
    };
    let mut c = match setup.await {
        Ok(c) => c,
        Err(e) => {
            t.errors.insert(format!("setup: {e}"), 1);
            return t;
        }
    };
    let mut rng = Rng::new(seed);
    let mut st = ClientState {
        in_inbox: true,
        searches: seed,
    };
    while Instant::now() < deadline {
        let op = rng.pick();
        let i = op.index();
        let start = Instant::now();
        match one(&mut c, op, &mut rng, &cfg, &mut st).await {
            Ok(d) if d.status == Status::Ok => {
                t.ok[i] += 1;
                t.lat[i].push(start.elapsed());
            }
            Ok(d) => {
                t.failed[i] += 1;
                *t.errors
                    .entry(format!("{} {:?}", op.name(), d.status))
                    .or_default() += 1;
            }
            Err(e) => {
                t.failed[i] += 1;
                *t.errors.entry(format!("{}: {e}", op.name())).or_default() += 1;
                // The connection state is unknown after an I/O error: stop this client.
                break;
            }
        }
    }
    let _ = c.command("LOGOUT").await;
    t
}

pub async fn run(cfg: MixConfig) -> anyhow::Result<(String, String)> {
    let cfg = Arc::new(cfg);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(cfg.seconds);
    let mut set = JoinSet::new();
    for (i, user) in cfg.users.iter().enumerate() {
        set.spawn(client(
            Arc::clone(&cfg),
            user.clone(),
            i as u64 + 1,
            deadline,
        ));
    }
    let mut all = Tally::default();
    while let Some(r) = set.join_next().await {
        let t = r?;
        for i in 0..OPS {
            all.ok[i] += t.ok[i];
            all.failed[i] += t.failed[i];
            all.lat[i].extend_from_slice(&t.lat[i]);
        }
        for (k, v) in t.errors {
            *all.errors.entry(k).or_default() += v;
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let total: u64 = all.ok.iter().sum();
    let failed: u64 = all.failed.iter().sum();
    let mut every: Vec<Duration> = all.lat.iter().flatten().copied().collect();
    let lat_all = Latency::of(&mut every).unwrap_or_default();
    let mut human = format!(
        "IMAP mixed load ({}) on {}: {} clients, {:.1} s: {total} commands ok, {failed} failed, \
         {:.0} commands/s, p50 {:.2} ms, p99 {:.2} ms\n",
        cfg.label,
        cfg.addr,
        cfg.users.len(),
        secs,
        total as f64 / secs,
        lat_all.p50,
        lat_all.p99
    );
    let mut per = Vec::new();
    for (i, (op, _)) in MIX.iter().enumerate() {
        let l = Latency::of(&mut all.lat[i]).unwrap_or_default();
        human.push_str(&format!(
            "  {:<20} {:>8} ok {:>5} failed {:>9.1}/s  p50 {:>7.2} ms  p99 {:>7.2} ms\n",
            op.name(),
            all.ok[i],
            all.failed[i],
            all.ok[i] as f64 / secs,
            l.p50,
            l.p99
        ));
        per.push(format!(
            "{}:{{\"ok\":{},\"failed\":{},\"per_s\":{:.1},\"p50\":{:.3},\"p99\":{:.3}}}",
            json_string(op.name()),
            all.ok[i],
            all.failed[i],
            all.ok[i] as f64 / secs,
            l.p50,
            l.p99
        ));
    }
    for (e, n) in &all.errors {
        human.push_str(&format!("    failure {e}: {n}\n"));
    }
    let json = format!(
        "{{\"mode\":\"imap-mix\",\"server\":{},\"addr\":{},\"clients\":{},\"seconds\":{secs:.2},\
         \"ok\":{total},\"failed\":{failed},\"cmds_per_s\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\
         \"per_command\":{{{}}}}}",
        json_string(&cfg.label),
        json_string(&cfg.addr),
        cfg.users.len(),
        total as f64 / secs,
        lat_all.p50,
        lat_all.p99,
        per.join(",")
    );
    Ok((human, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_100_and_picks_follow_them() {
        assert_eq!(MIX.iter().map(|(_, w)| w).sum::<u32>(), 100);
        let mut rng = Rng::new(7);
        let mut counts = [0u32; OPS];
        for _ in 0..100_000 {
            counts[rng.pick().index()] += 1;
        }
        for (i, (_, w)) in MIX.iter().enumerate() {
            let expect = w * 1000;
            assert!(counts[i].abs_diff(expect) < 600, "{i}: {}", counts[i]);
        }
    }
}

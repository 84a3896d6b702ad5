//! A stable-toolchain fuzzing harness: replays a target's seed corpus, then mutates it for a
//! bounded time with a seeded mutator (no coverage feedback: that is what cargo-fuzz adds).
//! A failure — a panic, or one input running longer than [`HANG_SECS`] — prints the input in
//! hex and saves it under `target/fuzz-failures/<target>/`, to be replayed and kept as a
//! regression seed.
//!
//! Knobs (environment): `YUBIN_FUZZ_SECS` seconds of mutation per target (default 2, the
//! CI-sized run), `YUBIN_FUZZ_SEED` the mutator's seed (default: from the clock, printed so
//! a run can be repeated), `YUBIN_FUZZ_TARGETS` a comma-separated list to run only some.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One input running longer than this is a hang.
pub const HANG_SECS: u64 = 20;

/// Inputs are kept below this size (a libFuzzer `-max_len` of the same spirit): large
/// enough for a 1,000-level MIME nesting seed.
pub const MAX_LEN: usize = 256 * 1024;

/// The repository's root (this crate is `crates/fuzzing`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `fuzz/corpus/<target>/`.
pub fn corpus_dir(target: &str) -> PathBuf {
    repo_root().join("fuzz/corpus").join(target)
}

/// The files of a target's seed corpus, sorted by name.
pub fn load_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no seed corpus at {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("readable corpus file"))
        })
        .collect();
    out.sort();
    out
}

/// What one run of a target found.
#[derive(Debug, Default)]
pub struct Report {
    pub target: String,
    pub seeds: usize,
    pub executions: u64,
    pub elapsed: Duration,
    /// The seed that took longest to run, and how long.
    pub slowest_seed: (String, Duration),
    /// Saved failing inputs.
    pub failures: Vec<PathBuf>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "{:<14} seeds {:>4}  executions {:>9}  ({:>7.0}/s)  failures {}  slowest seed {} ({:.1} ms)",
            self.target,
            self.seeds,
            self.executions,
            self.executions as f64 / secs,
            self.failures.len(),
            self.slowest_seed.0,
            self.slowest_seed.1.as_secs_f64() * 1000.0,
        )
    }
}

/// Prints one line to the real stderr, past the test harness's output capture, so that the
/// CI log shows the executions per target of a passing run too.
pub fn announce(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Seconds of mutation per target: `YUBIN_FUZZ_SECS`, else `default`.
pub fn secs_from_env(default: f64) -> f64 {
    std::env::var("YUBIN_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Whether `YUBIN_FUZZ_TARGETS` (when set) names `target`.
pub fn selected(target: &str) -> bool {
    std::env::var("YUBIN_FUZZ_TARGETS")
        .map(|list| list.split(',').any(|t| t.trim() == target))
        .unwrap_or(true)
}

/// The mutator's seed: `YUBIN_FUZZ_SEED`, else from the clock.
pub fn seed_from_env() -> u64 {
    std::env::var("YUBIN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// Runs `run` on `input`; on a panic saves the input and returns where.
pub fn run_one(target: &str, run: fn(&[u8]), input: &[u8]) -> Result<(), PathBuf> {
    match catch_unwind(AssertUnwindSafe(|| run(input))) {
        Ok(()) => Ok(()),
        Err(_) => Err(save_failure(target, "crash", input)),
    }
}

/// Panics print one line (message and place), not a backtrace per failing input.
pub fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}"))));
}

/// Saves a failing input as `target/fuzz-failures/<target>/<kind>-<hash>` and prints it.
pub fn save_failure(target: &str, kind: &str, input: &[u8]) -> PathBuf {
    let dir = failures_dir().join(target);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{kind}-{:016x}", fnv(input)));
    let _ = std::fs::write(&path, input);
    let shown = &input[..input.len().min(4096)];
    eprintln!(
        "fuzz {target}: {kind} on a {}-byte input, saved to {}\n  hex: {}{}",
        input.len(),
        path.display(),
        hex(shown),
        if shown.len() < input.len() {
            " …"
        } else {
            ""
        }
    );
    path
}

fn failures_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("fuzz-failures")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Replays `target`'s corpus, then mutates it for `secs` seconds (at most 5 failures saved).
pub fn fuzz(target: &str, run: fn(&[u8]), secs: f64, seed: u64) -> Report {
    quiet_panics();
    let named = load_corpus(target);
    assert!(!named.is_empty(), "{target}: the seed corpus is empty");
    let mut report = Report {
        target: target.to_string(),
        seeds: named.len(),
        ..Report::default()
    };
    let start = Instant::now();
    let watchdog = Watchdog::start(target);
    for (name, input) in &named {
        watchdog.enter(input);
        let t = Instant::now();
        if let Err(p) = run_one(target, run, input) {
            report.failures.push(p);
        }
        if t.elapsed() >= report.slowest_seed.1 {
            report.slowest_seed = (name.clone(), t.elapsed());
        }
        report.executions += 1;
    }
    let corpus: Vec<Vec<u8>> = named.into_iter().map(|(_, b)| b).collect();
    let mut mutator = Mutator::new(seed);
    let deadline = start + Duration::from_secs_f64(secs.max(0.0));
    let mut pool: Vec<Vec<u8>> = Vec::new();
    while Instant::now() < deadline && report.failures.len() < 5 {
        // The smaller of two picks: big seeds (1,000-level nesting) still get mutated, but
        // do not eat the time of the many small ones.
        let from = if !pool.is_empty() && mutator.below(3) == 0 {
            &pool
        } else {
            &corpus
        };
        let (x, y) = (
            &from[mutator.below(from.len())],
            &from[mutator.below(from.len())],
        );
        let base = if x.len() <= y.len() { x } else { y };
        let mut input = base.clone();
        let other = &corpus[mutator.below(corpus.len())];
        for _ in 0..1 + mutator.below(4) {
            mutator.mutate(&mut input, other);
        }
        watchdog.enter(&input);
        if let Err(p) = run_one(target, run, &input) {
            report.failures.push(p);
        }
        report.executions += 1;
        // Stacked mutations: keep a small pool of recent mutants to mutate further.
        if pool.len() < 64 {
            pool.push(input);
        } else {
            let i = mutator.below(pool.len());
            pool[i] = input;
        }
    }
    watchdog.stop();
    report.elapsed = start.elapsed();
    report
}

/// Notices one input running longer than [`HANG_SECS`]: saves it, then ends the process
/// (a hung target cannot be interrupted from inside).
struct Watchdog {
    current: Arc<Mutex<Vec<u8>>>,
    started: Arc<AtomicU64>,
    generation: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
}

impl Watchdog {
    fn start(target: &str) -> Watchdog {
        let w = Watchdog {
            current: Arc::default(),
            started: Arc::default(),
            generation: Arc::default(),
            stop: Arc::default(),
            epoch: Instant::now(),
        };
        let (current, started, generation, stop, epoch) = (
            Arc::clone(&w.current),
            Arc::clone(&w.started),
            Arc::clone(&w.generation),
            Arc::clone(&w.stop),
            w.epoch,
        );
        let target = target.to_string();
        std::thread::spawn(move || {
            let mut last = (u64::MAX, 0);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let g = generation.load(Ordering::Relaxed);
                let at = started.load(Ordering::Relaxed);
                let now = epoch.elapsed().as_millis() as u64;
                if (g, at) == last && now.saturating_sub(at) > HANG_SECS * 1000 {
                    let input = current.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    save_failure(&target, "hang", &input);
                    eprintln!("fuzz {target}: one input ran over {HANG_SECS} s, stopping");
                    std::process::exit(101);
                }
                last = (g, at);
            }
        });
        w
    }

    fn enter(&self, input: &[u8]) {
        {
            let mut c = self.current.lock().unwrap_or_else(|e| e.into_inner());
            c.clear();
            c.extend_from_slice(input);
        }
        self.started
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Byte strings that mean something to one of the parsers: line ends and the end of data,
/// literal markers with lying sizes, section specs, MIME boundaries and encodings, base64,
/// NUL and invalid UTF-8, XML and HTTP pieces.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n.\r\n",
    b"\n.\n",
    b"\r\n.\n",
    b"\n.\r\n",
    b"\r\n\r\n",
    b"{4294967295}\r\n",
    b"{18446744073709551615}\r\n",
    b"{5}\r\n",
    b"{0}\r\n",
    b"{5+}\r\n",
    b"~{5+}\r\n",
    b"~{3}\r\n\0\0\0",
    b"BODY[1.2.3.MIME]",
    b"BODY.PEEK[HEADER.FIELDS (From To)]",
    b"BINARY[1]",
    b"(((((((((((((((((((((((((((((((((",
    b")",
    b"\"",
    b"\\",
    b"*",
    b"1:*",
    b"4294967295",
    b"0",
    b"-1",
    b"LAST",
    b"BDAT 5\r\n",
    b"BDAT 4294967295 LAST\r\n",
    b"DATA\r\n",
    b"MAIL FROM:<a@example.com> SIZE=10 BODY=8BITMIME SMTPUTF8\r\n",
    b"RCPT TO:<b@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+2Bc@example.com\r\n",
    b"AHRpbQB0YW5zdGFhZnRhbnN0YWFm",
    b"====",
    b"=?UTF-8?B?w6k=?=",
    b"=?ISO-8859-1?Q?caf=E9?=",
    b"=\r\n",
    b"=ZZ",
    b"--boundary\r\n",
    b"--boundary--\r\n",
    b"Content-Type: multipart/mixed; boundary=boundary\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"\0",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\xf0\x9f\x93\xac",
    b"&#x110000;",
    b"&amp;",
    b"<!DOCTYPE x [<!ENTITY a \"b\">]>",
    b"<EMailAddress>",
    b"</EMailAddress>",
    b"%40",
    b"%ff",
    b"%",
    b"Host: autoconfig.example.com\r\n",
    b"Content-Length: 99999999\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"n,,n=user,r=",
    b",p=",
    b"=2C",
    b"=3D",
];

/// A small seeded mutator (xorshift64*): bit flips, byte insertion and deletion, chunk
/// duplication, splicing with another corpus entry, protocol tokens, interesting numbers.
pub struct Mutator {
    state: u64,
}

impl Mutator {
    pub fn new(seed: u64) -> Mutator {
        Mutator { state: seed | 1 }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pos(&mut self, input: &[u8]) -> usize {
        self.below(input.len() + 1)
    }

    /// Applies one random mutation to `input`; `other` is another corpus entry to splice.
    pub fn mutate(&mut self, input: &mut Vec<u8>, other: &[u8]) {
        match self.below(10) {
            0 if !input.is_empty() => {
                let i = self.below(input.len());
                input[i] ^= 1 << self.below(8);
            }
            1 => {
                let i = self.pos(input);
                let b = self.next() as u8;
                input.insert(i, b);
            }
            2 if !input.is_empty() => {
                let i = self.below(input.len());
                let n = 1 + self.below(16.min(input.len() - i));
                input.drain(i..i + n);
            }
            3 if !input.is_empty() => {
                let i = self.below(input.len());
                let n = 1 + self.below(64.min(input.len() - i));
                let chunk = input[i..i + n].to_vec();
                let at = self.pos(input);
                for _ in 0..1 + self.below(4) {
                    input.splice(at..at, chunk.iter().copied());
                }
            }
            4 => {
                // Splice: our head with the other's tail.
                let i = self.pos(input);
                let j = self.below(other.len() + 1);
                input.truncate(i);
                input.extend_from_slice(&other[j..]);
            }
            5 | 6 => {
                let t = TOKENS[self.below(TOKENS.len())];
                let at = self.pos(input);
                input.splice(at..at, t.iter().copied());
            }
            7 if !input.is_empty() => {
                // Replace a run of digits (or any byte) with an interesting number.
                let nums: [&[u8]; 6] = [
                    b"0",
                    b"1",
                    b"255",
                    b"65536",
                    b"4294967296",
                    b"99999999999999999999",
                ];
                let n = nums[self.below(nums.len())];
                let i = self.below(input.len());
                let mut end = i;
                while end < input.len() && input[end].is_ascii_digit() {
                    end += 1;
                }
                input.splice(i..end.max(i + 1).min(input.len()), n.iter().copied());
            }
            8 if !input.is_empty() => {
                let i = self.below(input.len());
                input[i] = match self.below(4) {
                    0 => 0,
                    1 => 0xff,
                    2 => b'\n',
                    _ => b' ',
                };
            }
            _ => {
                // Overwrite a piece with a piece of the other entry.
                if !other.is_empty() && !input.is_empty() {
                    let j = self.below(other.len());
                    let n = 1 + self.below(32.min(other.len() - j));
                    let i = self.below(input.len());
                    let end = (i + n).min(input.len());
                    input.splice(i..end, other[j..j + n].iter().copied());
                }
            }
        }
        input.truncate(MAX_LEN);
    }
}

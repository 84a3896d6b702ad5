#!/usr/bin/env python3
"""Soak run: a mixed load on every protocol for a configurable time, with the server's resource
use sampled every few seconds and a plateau verdict (docs/soak.md).

Starts yubin A (under test) and B (A's remote peer for submissions) on loopback with temporary
data directories, runs the operations of benches/soak_load.py at --rate per second, and samples
A's RSS (/proc/PID/status VmRSS), open file descriptors (/proc/PID/fd), SQLite database and WAL
sizes, body-store size and tokio task count (yubin_tokio_tasks_alive from /metrics).

Verdict (printed, and the exit status): after a warm-up (the first 20 %), the last third's
maximum of each series may exceed the middle third's by at most its tolerance; the task count
returns to its idle value once the load stops; no error except those provoked on purpose,
neither in the clients nor in A's or B's logs (ERROR lines, panics).

Writes to --out: samples.csv, summary.json, soak.png (drawn by `yubin-bench plot`), and the
servers' logs. Exit status 0 when the verdict passes, 1 when not, 2 on a harness failure.

Usage: benches/soak.py [--minutes 10] [--rate 2] [--out target/soak]
The binary is $YUBIN_BIN, else target/debug/yubin, else target/release/yubin; the plot needs
target/*/yubin-bench ($YUBIN_BENCH_BIN) and a TTF font ($YUBIN_SOAK_FONT, default DejaVu Sans).
"""

import argparse
import csv
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benches"))

from conftest import PASSWORD, Yubin, free_port  # noqa: E402
from soak_load import MAX_SIZE, OPERATIONS, Load  # noqa: E402

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
MIB = 1024 * 1024

# Series -> (absolute tolerance, relative tolerance): the last third's maximum may exceed the
# middle third's maximum by the larger of the two. RSS (the least of each sample's window):
# allocator noise and caches that settle (see config()); fds: a few connections
# open at the moment of the sample; the WAL is bounded by checkpoints; db and body store hold
# bounded mailboxes whose size wanders with the random message sizes.
TOLERANCES = {
    "rss_mib": (4.0, 0.10),
    "anon_mib": (4.0, 0.10),
    "fds": (5, 0.0),
    "db_mib": (1.0, 0.10),
    "wal_mib": (1.0, 0.10),
    "blobs_mib": (2.0, 0.25),
    "tasks": (10, 0.0),
}
# How often RSS is read between samples (see the sampler).
RSS_EVERY = 0.5
# Tasks alive once the load stopped and its connections closed, over the idle value before it.
IDLE_TASKS_SLACK = 2

COLUMNS = ["t_s", "rss_mib", "rss_peak_mib", "anon_mib", "fds", "db_mib", "wal_mib", "blobs_mib", "tasks", "connections", "queue", "cpu_s", "ops", "provoked", "errors"]


def config(peer_smtp: int | None, full_caches: bool = False) -> str:
    """The soak config of A (peer_smtp: B's port 25) or B (None)."""
    # Bounded caches that fill as the run goes grow RSS until they are full: the facts of every
    # new message (`message_cache_mb`, 64 MiB by default, two generations, never invalidated)
    # and the log tail of the admin console (`[log] tail_lines`, 2,000). Small, they are full
    # within the warm-up, so that growth after it is a leak; --full-caches keeps the defaults
    # (a run of hours then shows the climb to their plateau).
    caches = "" if full_caches else "message_cache_mb = 1\n"
    log = "" if full_caches else "[log]\ntail_lines = 200\n"
    conf = (
        "[limits]\n"
        f"{caches}"
        f"max_message_size = {MAX_SIZE}\n"
        "max_connections_per_ip = 1000\n"
        "connection_rate_per_ip = 0\n"
        "smtp_message_rate_per_ip = 0\n"
        "[metrics]\nenabled = true\nallow = [\"127.0.0.0/8\"]\n"
        f"{log}"
    )
    if peer_smtp is not None:
        conf += (
            f"[queue]\nremote_port = {peer_smtp}\nretry_initial_secs = 2\npoll_interval_secs = 1\n"
            '[dns.override."b.test"]\na = ["127.0.0.1"]\n'
            # The retention sweep runs every 20 s: Trash empties (trash_days = 0) and bob's
            # retrieved POP3 mail goes (pop3_expire_days = 0).
            "[retention]\nenabled = true\ninterval_secs = 20\ntrash_days = 0\npop3_expire_days = 0\n"
        )
    return conf


# Wrong passwords are provoked on purpose: the login guard keeps counting them (its store
# records are part of what must stay bounded) but never bans the load's own address.
AUTH = "ban_after_failures = 0\nban_after_burst = 0\nmax_failure_delay_ms = 500\n"


def start_servers(tmp: Path, full_caches: bool):
    b = Yubin(tmp / "b", config(None), AUTH)
    b.ports["http"] = free_port()
    b.write_config()
    b.cli("domain", "add", "b.test")
    b.cli("user", "add", "dave@b.test", "--password-stdin", stdin=PASSWORD + "\n")
    b.start()
    a = Yubin(tmp / "a", config(b.ports["smtp"], full_caches), AUTH)
    a.ports["http"] = free_port()
    a.write_config()
    a.cli("domain", "add", "example.com")
    for user in ("alice", "bob", "carol"):
        a.cli("user", "add", f"{user}@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    a.start()
    return a, b


# ---- samples ------------------------------------------------------------------------------------


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """A memory figure of /proc/PID/status in MiB: VmRSS now, RssAnon (its part that is not
    file pages: heap, stacks), or VmHWM (the peak so far)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def data_sizes(data: Path) -> tuple[float, float, float]:
    """(SQLite database, its WAL, the body store) in MiB: yubin.db (with its -shm), yubin.db-wal,
    and blobs/ (bodies over 32 KiB; smaller ones are rows of the database)."""
    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except OSError:
            return 0  # not there (yet), or removed between the listing and the stat

    db = size(data / "yubin.db") + size(data / "yubin.db-shm")
    wal = size(data / "yubin.db-wal")
    blobs = 0
    for root, _, files in os.walk(data / "blobs"):
        blobs += sum(size(Path(root) / name) for name in files)
    return db / MIB, wal / MIB, blobs / MIB


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(y: Yubin) -> dict:
    """The unlabelled-summed values of the gauges the soak watches, from A's /metrics."""
    url = f"http://127.0.0.1:{y.ports['http']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out = {"yubin_tokio_tasks_alive": 0.0, "yubin_connections_open": 0.0, "yubin_queue_messages": 0.0}
    for line in text.splitlines():
        m = re.match(r"^(\w+)(\{[^}]*\})? (\S+)$", line)
        if m and m.group(1) in out:
            out[m.group(1)] += float(m.group(3))
    return out


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.ops = {name: 0 for name in OPERATIONS}
        self.provoked = 0
        self.errors = 0
        self.skipped = 0
        self.error_samples: list[str] = []

    def done(self, name: str, provoked: int):
        with self.lock:
            self.ops[name] += 1
            self.provoked += provoked

    def failed(self, name: str, e: BaseException):
        with self.lock:
            if name in self.ops:
                self.ops[name] += 1
            self.errors += 1
            if len(self.error_samples) < 30:
                self.error_samples.append(f"{time.strftime('%H:%M:%S')} {name}: {e!r}")
        print(f"soak: error in {name}: {e!r}", file=sys.stderr)
        if len(self.error_samples) <= 3:
            traceback.print_exc()

    def total(self) -> int:
        with self.lock:
            return sum(self.ops.values())


def sample(a: Yubin, t0: float, c: Counters, rss_low: float, rss_high: float, anon_low: float) -> dict:
    pid = a.proc.pid
    db, wal, blobs = data_sizes(a.data)
    g = scrape(a)
    return {
        "t_s": round(time.time() - t0, 1),
        "rss_mib": round(rss_low, 2),
        "rss_peak_mib": round(rss_high, 2),
        "anon_mib": round(anon_low, 2),
        "fds": fds(pid),
        "db_mib": round(db, 3),
        "wal_mib": round(wal, 3),
        "blobs_mib": round(blobs, 3),
        "tasks": int(g["yubin_tokio_tasks_alive"]),
        "connections": int(g["yubin_connections_open"]),
        "queue": int(g["yubin_queue_messages"]),
        "cpu_s": round(cpu_seconds(pid), 2),
        "ops": c.total(),
        "provoked": c.provoked,
        "errors": c.errors,
    }


# ---- load ---------------------------------------------------------------------------------------


def run_load(load: Load, rate: float, until: float, workers: int, c: Counters):
    """Operations at `rate` per second, picked by weight, run by `workers` threads; when they
    fall behind, operations are skipped (counted) rather than queued without bound."""
    names = [n for n, w in OPERATIONS.items() for _ in range(w)]
    jobs: queue.Queue = queue.Queue(maxsize=workers * 2)

    def worker():
        while True:
            name = jobs.get()
            if name is None:
                return
            try:
                c.done(name, getattr(load, name)())
            except Exception as e:  # counted; the run goes on
                c.failed(name, e)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    # Every operation kind once at the start, so that even a short run covers all of them.
    schedule = list(OPERATIONS)
    next_at = time.time()
    while time.time() < until:
        name = schedule.pop(0) if schedule else names[load.pick(len(names))]
        try:
            jobs.put_nowait(name)
        except queue.Full:
            with c.lock:
                c.skipped += 1
        next_at += 1.0 / rate
        time.sleep(max(0.0, next_at - time.time()))
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join(timeout=120)


# ---- verdict ------------------------------------------------------------------------------------


def plateau(samples: list[dict], warmup: float = 0.2) -> dict:
    """Per series: the middle and last thirds' maxima after the warm-up, and whether the last
    stays within the tolerance of the middle."""
    rest = samples[int(len(samples) * warmup):]
    third = len(rest) // 3
    out = {}
    for key, (absolute, relative) in TOLERANCES.items():
        if third == 0:
            out[key] = {"ok": False, "why": "too few samples"}
            continue
        middle = max(s[key] for s in rest[third: 2 * third])
        last = max(s[key] for s in rest[2 * third:])
        allowed = middle + max(absolute, middle * relative)
        out[key] = {
            "middle_max": middle,
            "last_max": last,
            "allowed": round(allowed, 3),
            "ok": last <= allowed,
            # Informative, for the long runs by hand: the least-squares trend after the warm-up.
            "slope_per_hour": round(slope([(s["t_s"], s[key]) for s in rest]) * 3600, 3),
        }
    return out


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 with fewer than two distinct x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in points) / var


def log_errors(y: Yubin) -> list[str]:
    """A server's ERROR lines and panics."""
    return [line for line in y.logs().splitlines() if " ERROR " in line or "panicked" in line]


def wait_quiet(a: Yubin, timeout: float = 60) -> dict:
    """Waits until A has no connection open and an empty queue; returns the last scrape."""
    deadline = time.time() + timeout
    while True:
        g = scrape(a)
        # The scrape's own HTTP connection is open while it is served.
        if (g["yubin_connections_open"] <= 1 and g["yubin_queue_messages"] == 0) or time.time() > deadline:
            return g
        time.sleep(1)


def plot(out: Path) -> str | None:
    """Draws soak.png with `yubin-bench plot`; returns why not, if it could not."""
    bench = os.environ.get("YUBIN_BENCH_BIN")
    if not bench:
        for profile in ("debug", "release"):
            if (ROOT / "target" / profile / "yubin-bench").exists():
                bench = str(ROOT / "target" / profile / "yubin-bench")
                break
    if not bench:
        return "no yubin-bench binary (cargo build -p yubin-bench)"
    font = os.environ.get("YUBIN_SOAK_FONT", FONT)
    if not Path(font).exists() and shutil.which("fc-match"):
        # Another sans-serif TTF of the system, if fontconfig knows one.
        found = subprocess.run(["fc-match", "-f", "%{file}", "sans-serif:fontformat=TrueType"], capture_output=True, text=True)
        font = found.stdout.strip() or font
    res = subprocess.run(
        [bench, "plot", "--csv", str(out / "samples.csv"), "--out", str(out / "soak.png"), "--font", font,
         "--title", "yubin soak run", "--marks", "0.2,0.4667,0.7333"],
        capture_output=True, text=True,
    )
    return None if res.returncode == 0 else f"yubin-bench plot failed: {res.stderr.strip()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("YUBIN_SOAK_MINUTES", "10")))
    ap.add_argument("--rate", type=float, default=float(os.environ.get("YUBIN_SOAK_RATE", "2")),
                    help="operations per second (each a short session)")
    ap.add_argument("--workers", type=int, default=3, help="client threads running the operations")
    ap.add_argument("--sample-secs", type=float, default=5.0)
    ap.add_argument("--keep", action="store_true", help="keep the servers' data directories (printed at the end)")
    ap.add_argument("--full-caches", action="store_true",
                    help="keep message_cache_mb and the log tail at their defaults (long runs)")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("YUBIN_SOAK_OUT", ROOT / "target" / "soak")))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RUST_LOG", "info")

    tmp = tempfile.mkdtemp(prefix="yubin-soak-")
    a = b = None
    try:
        a, b = start_servers(Path(tmp), args.full_caches)
        time.sleep(3)  # start-up tasks (sweeps, first queue poll) settle
        idle_before = wait_quiet(a)["yubin_tokio_tasks_alive"]
        c = Counters()
        load = Load(a.ports, b.ports)
        t0 = time.time()
        until = t0 + args.minutes * 60
        samples: list[dict] = []
        stop = threading.Event()

        def sampler():
            # RSS is read every RSS_EVERY seconds; a sample keeps the window's least value (what
            # the process holds) and its greatest (transients: an argon2 hash of a wrong
            # password allocates 19 MiB for a moment, a large message its buffers).
            low, high, anon_low = float("inf"), 0.0, float("inf")
            next_at = time.time()
            while not stop.is_set():
                if a.proc.poll() is not None:
                    c.failed("sample", RuntimeError(f"yubin A exited with status {a.proc.returncode}"))
                    return
                try:
                    rss, anon = rss_mib(a.proc.pid), rss_mib(a.proc.pid, "RssAnon")
                    low, high, anon_low = min(low, rss), max(high, rss), min(anon_low, anon)
                    if time.time() >= next_at:
                        samples.append(sample(a, t0, c, low, high, anon_low))
                        low, high, anon_low = float("inf"), 0.0, float("inf")
                        next_at += args.sample_secs
                except Exception as e:
                    c.failed("sample", e)
                stop.wait(RSS_EVERY)

        st = threading.Thread(target=sampler, daemon=True)
        st.start()
        print(f"soak: {args.minutes:g} min at {args.rate:g} op/s; A pid {a.proc.pid}, data {a.data}", flush=True)
        run_load(load, args.rate, until, args.workers, c)
        stop.set()
        st.join()
        with open(args.out / "samples.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(samples)
        if a.proc.poll() is not None:
            print(f"soak: FAIL: yubin A exited with status {a.proc.returncode}; see {args.out}/server-a.log", file=sys.stderr)
            return 1
        quiet = wait_quiet(a)
        time.sleep(2)
        idle_after = wait_quiet(a)["yubin_tokio_tasks_alive"]

        verdict = plateau(samples)
        errors_a, errors_b = log_errors(a), log_errors(b)
        tasks_ok = idle_after <= idle_before + IDLE_TASKS_SLACK
        passed = (
            all(v["ok"] for v in verdict.values())
            and tasks_ok
            and c.errors == 0
            and not errors_a
            and not errors_b
            and quiet["yubin_queue_messages"] == 0
        )
        summary = {
            "minutes": args.minutes,
            "rate": args.rate,
            "full_caches": args.full_caches,
            "samples": len(samples),
            "operations": c.ops,
            "operations_total": c.total(),
            "skipped": c.skipped,
            "provoked_errors": c.provoked,
            "errors": c.errors,
            "error_samples": c.error_samples,
            "server_log_errors": {"a": errors_a[:30], "b": errors_b[:30]},
            "plateau": verdict,
            "idle_tasks": {"before": idle_before, "after": idle_after, "ok": tasks_ok},
            "queue_after": quiet["yubin_queue_messages"],
            # The server's CPU share (of one core) under this load, and the driver's own.
            "server_cpu_share": round(cpu_seconds(a.proc.pid) / max(1.0, samples[-1]["t_s"]), 3) if samples else None,
            "driver_cpu_share": round(sum(os.times()[:2]) / max(1.0, time.time() - t0), 3),
            "rss_mib": {"first": samples[0]["rss_mib"], "max": max(s["rss_mib"] for s in samples), "last": samples[-1]["rss_mib"],
                        "peak": rss_mib(a.proc.pid, "VmHWM")} if samples else None,
            "fds": {"first": samples[0]["fds"], "max": max(s["fds"] for s in samples), "last": samples[-1]["fds"]} if samples else None,
            "passed": passed,
        }
        why_no_plot = plot(args.out)
        summary["plot"] = str(args.out / "soak.png") if why_no_plot is None else why_no_plot
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        report(summary)
        return 0 if passed else 1
    except Exception:
        traceback.print_exc()
        return 2
    finally:
        for y, name in ((a, "a"), (b, "b")):
            if y is not None:
                try:
                    y.stop()
                except Exception:
                    pass
                shutil.copy(y.log_path, args.out / f"server-{name}.log")
        if args.keep:
            print(f"soak: data directories kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(s: dict):
    print(f"soak: {s['minutes']:g} min, {s['operations_total']} operations ({s['skipped']} skipped), "
          f"{s['provoked_errors']} provoked errors, {s['errors']} other errors, "
          f"{len(s['server_log_errors']['a']) + len(s['server_log_errors']['b'])} server ERROR lines")
    for key, v in s["plateau"].items():
        if "middle_max" in v:
            print(f"  {key:10} middle max {v['middle_max']:>8} last max {v['last_max']:>8} allowed {v['allowed']:>8}"
                  f"  trend {v['slope_per_hour']:>+9}/h  {'ok' if v['ok'] else 'GROWS'}")
        else:
            print(f"  {key:10} {v['why']}")
    t = s["idle_tasks"]
    print(f"  idle tasks before {t['before']:g} after {t['after']:g}  {'ok' if t['ok'] else 'LEAK'}")
    for e in s["error_samples"][:10]:
        print(f"  error: {e}")
    for e in s["server_log_errors"]["a"][:5] + s["server_log_errors"]["b"][:5]:
        print(f"  server: {e}")
    print(f"  plot: {s['plot']}")
    print("soak: PASS" if s["passed"] else "soak: FAIL")


if __name__ == "__main__":
    sys.exit(main())

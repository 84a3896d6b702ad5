#!/usr/bin/env python3
"""Several yubin nodes on one PostgreSQL, on this machine (issue 8's benchmark).

For each node count in NODES (default "1 2 3") it starts that many `yubin serve` processes on
loopback sharing one fresh database of the throwaway cluster (scripts/pg-test-cluster), creates
USERS accounts through node 0's admin CLI, and measures, with third-party tools:

  smtp     Postfix's smtp-source: SMTP_MESSAGES messages of SIZE bytes with SMTP_C sessions in
           all, split evenly over the nodes (one smtp-source per node, each to its own user) —
           messages/s, and CPU seconds per 1,000 messages of each node and of PostgreSQL.
  imap     Dovecot's imaptest stress (IMAPTEST, state-tracking random clients) for DURATION s
           with IT_CLIENTS clients split over the nodes (one imaptest per node, its own mailbox
           `bench-N`) — commands/s, state errors, CPU s per 1,000 commands per node and of
           PostgreSQL.
  latency  yubin-bench idle-latency: deliveries through node 0, IDLE sessions on the other nodes
           (node 0 itself with one node) while LOAD senders deliver too — p50/p99 of the time
           from the SMTP 250 to the `* N EXISTS` (the cross-node notification latency).

One machine cannot show real speed-up (all nodes and PostgreSQL share its cores): the figures
show the scaling shape and the cost per message/command of a node. Results are printed as a
table and as JSON lines.

Usage: python3 benches/multinode.py
Environment: NODES ["1 2 3"] DURATION [30] SMTP_MESSAGES [6000] SMTP_C [50] SIZE [10240]
  IT_CLIENTS [50] USERS [60] LOAD [8] LAT_MESSAGES [400] IMAPTEST [/work/tools/imaptest/src/imaptest]
  SKIP_BUILD [0] YUBIN_LOG [warn] BASE_PORT [26000]
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benches"))
import imaptest as it  # noqa: E402  (benches/imaptest.py: cpu_seconds, parse)

ENV = os.environ.get
NODES = [int(n) for n in ENV("NODES", "1 2 3").split()]
DURATION = int(ENV("DURATION", "30"))
SMTP_MESSAGES = int(ENV("SMTP_MESSAGES", "6000"))
SMTP_C = int(ENV("SMTP_C", "50"))
SIZE = int(ENV("SIZE", "10240"))
IT_CLIENTS = int(ENV("IT_CLIENTS", "50"))
USERS = int(ENV("USERS", "60"))
LOAD = int(ENV("LOAD", "8"))
LAT_MESSAGES = int(ENV("LAT_MESSAGES", "400"))
IMAPTEST = ENV("IMAPTEST", "/work/tools/imaptest/src/imaptest")
BASE_PORT = int(ENV("BASE_PORT", "26000"))
PASS = "bench-password-1"
YUBIN = ROOT / "target" / "release" / "yubin"
BENCH = ROOT / "target" / "release" / "yubin-bench"


def log(msg):
    print(f"== {msg}", file=sys.stderr, flush=True)


def pg_url() -> str:
    out = subprocess.run(["bash", str(ROOT / "scripts" / "pg-test-cluster")], check=True,
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if "YUBIN_TEST_PG_URL=" in line:
            return line.split("=", 1)[1].strip().strip("'\"")
    raise SystemExit("pg-test-cluster printed no URL")


def psql(url, sql):
    binary = shutil.which("psql") or str(sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))[-1])
    subprocess.run([binary, url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True,
                   capture_output=True)


def postmaster_pid() -> int:
    out = subprocess.run(["pgrep", "-o", "-f", "postgres.*-D .*yubin-pg-test"], capture_output=True,
                         text=True).stdout.split()
    if not out:
        out = subprocess.run(["pgrep", "-o", "postgres"], capture_output=True, text=True).stdout.split()
    return int(out[0])


class Node:
    def __init__(self, work: Path, i: int, url: str):
        self.dir = work / f"node{i}"
        self.dir.mkdir(parents=True)
        self.smtp = BASE_PORT + 10 * i
        self.imap = BASE_PORT + 10 * i + 1
        self.config = self.dir / "yubin.toml"
        self.config.write_text(
            f'hostname = "node{i}.bench.test"\ndata_dir = "{self.dir / "data"}"\n'
            f'[listen]\nsmtp = ["127.0.0.1:{self.smtp}"]\nsubmission = []\nsubmissions = []\n'
            f'pop3 = []\npop3s = []\nimap = ["127.0.0.1:{self.imap}"]\nimaps = []\n'
            f"[limits]\nmax_connections_per_ip = 100000\nmax_connections = 100000\n"
            f'[storage]\nbackend = "postgres"\nurl = "{url}"\npool_size = 16\n'
        )
        self.proc = None

    def cli(self, *args, stdin=None):
        subprocess.run([str(YUBIN), "--config", str(self.config), *args], input=stdin, text=True,
                       check=True, capture_output=True)

    def start(self):
        env = dict(os.environ, RUST_LOG=ENV("YUBIN_LOG", "warn"))
        self.log = open(self.dir / "yubin.log", "w")
        self.proc = subprocess.Popen([str(YUBIN), "--config", str(self.config), "serve"],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        import socket
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.imap), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"node did not start: {(self.dir / 'yubin.log').read_text()[-2000:]}")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def cpu(pids):
    return [it.cpu_seconds(p) for p in pids]


def run_smtp(nodes, pg_pid):
    per = SMTP_MESSAGES // len(nodes)
    conc = max(1, SMTP_C // len(nodes))
    before = cpu([n.proc.pid for n in nodes] + [pg_pid])
    start = time.monotonic()
    procs = [subprocess.Popen(["smtp-source", "-c", "-l", str(SIZE), "-m", str(per), "-s", str(conc),
                               "-f", "a@x.test", "-t", f"user{i + 1}@bench.test",
                               f"127.0.0.1:{n.smtp}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
             for i, n in enumerate(nodes)]
    errors = [p.communicate()[1] for p in procs]
    wall = time.monotonic() - start
    after = cpu([n.proc.pid for n in nodes] + [pg_pid])
    used = [a - b for a, b in zip(after, before)]
    total = per * len(nodes)
    return {
        "messages": total, "secs": round(wall, 2), "msgs_per_s": round(total / wall, 1),
        "node_cpu_s_per_1000": [round(u * 1000 / per, 3) for u in used[:-1]],
        "pg_cpu_s_per_1000": round(used[-1] * 1000 / total, 3),
        "errors": [e.strip()[-200:] for e in errors if e.strip()],
    }


def run_imap(nodes, pg_pid, work, n):
    box = f"bench-{n}"
    mbox = work / "messages.mbox"
    if not mbox.exists():
        subprocess.run([sys.executable, "/work/shared/tools/gen_mbox.py", str(mbox), "200"], check=True,
                       stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, str(ROOT / "benches" / "imaptest.py"), "mailbox", "create",
                    str(nodes[0].imap), "user%d@bench.test", str(USERS), PASS, box], check=True)
    clients = max(1, IT_CLIENTS // len(nodes))
    before = cpu([x.proc.pid for x in nodes] + [pg_pid])
    outs = []
    procs = []
    for i, node in enumerate(nodes):
        out = work / f"imaptest-n{n}-node{i}.out"
        outs.append(out)
        procs.append(subprocess.Popen(
            [IMAPTEST, "host=127.0.0.1", f"port={node.imap}", "user=user%d@bench.test",
             f"users={USERS}", f"pass={PASS}", f"mbox={mbox}", f"clients={clients}",
             f"secs={DURATION}", f"box={box}"],
            stdout=open(out, "w"), stderr=subprocess.STDOUT))
    for p in procs:
        p.wait(timeout=DURATION + 300)
    after = cpu([x.proc.pid for x in nodes] + [pg_pid])
    used = [a - b for a, b in zip(after, before)]
    parsed = [it.parse(str(o)) for o in outs]
    commands = [p["commands"] for p in parsed]
    total = sum(commands)
    return {
        "clients": clients * len(nodes), "secs": DURATION, "commands": total,
        "cmds_per_s": round(total / DURATION, 1),
        "errors": sum(p["errors"] for p in parsed),
        "node_cpu_s_per_1000": [round(u * 1000 / c, 3) if c else None for u, c in zip(used, commands)],
        "pg_cpu_s_per_1000": round(used[-1] * 1000 / total, 3) if total else None,
    }


def run_latency(nodes):
    imap = [f"127.0.0.1:{n.imap}" for n in (nodes[1:] or nodes)]
    res = subprocess.run(
        [str(BENCH), "idle-latency", "--smtp", f"127.0.0.1:{nodes[0].smtp}", "--imap", ",".join(imap),
         "--user", "user{n}@bench.test", "--users", str(USERS), "--password", PASS,
         "--sessions", str(USERS // 2), "--messages", str(LAT_MESSAGES), "--load", str(LOAD), "--json"],
        capture_output=True, text=True, timeout=600)
    try:
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": (res.stdout + res.stderr)[-1000:]}


def main():
    if ENV("SKIP_BUILD", "0") != "1":
        log("building release binaries")
        subprocess.run(["cargo", "build", "--release", "-p", "yubin", "-p", "yubin-bench"], cwd=ROOT,
                       check=True)
    url = pg_url()
    base = url.rsplit("/", 1)[0]
    pg_pid = postmaster_pid()
    results = []
    with tempfile.TemporaryDirectory(prefix="yubin-multinode-") as tmp:
        work = Path(tmp)
        for n in NODES:
            db = f"yubin_bench_{n}"
            psql(url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            psql(url, f"CREATE DATABASE {db}")
            nodes = [Node(work / f"n{n}", i, f"{base}/{db}") for i in range(n)]
            log(f"{n} node(s): creating {USERS} users")
            nodes[0].cli("domain", "add", "bench.test")
            for u in range(1, USERS + 1):
                nodes[0].cli("user", "add", f"user{u}@bench.test", "--password-stdin", stdin=PASS + "\n")
            for node in nodes:
                node.start()
            try:
                log(f"{n} node(s): smtp-source")
                smtp = run_smtp(nodes, pg_pid)
                log(f"   {smtp}")
                log(f"{n} node(s): imaptest stress")
                imap = run_imap(nodes, pg_pid, work, n)
                log(f"   {imap}")
                log(f"{n} node(s): idle latency")
                lat = run_latency(nodes)
                log(f"   {json.dumps(lat)[:400]}")
            finally:
                for node in nodes:
                    node.stop()
            results.append({"nodes": n, "smtp": smtp, "imap": imap, "latency": lat})
            psql(url, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    print(f"yubin on PostgreSQL, {os.cpu_count()} cores, loopback; smtp-source {SMTP_MESSAGES} x {SIZE} B "
          f"C={SMTP_C}; imaptest stress {IT_CLIENTS} clients {DURATION} s; latency with {LOAD} load senders")
    print("| nodes | SMTP msg/s | CPU s/1k msg per node | PG CPU s/1k msg | IMAP cmd/s | errors | CPU s/1k cmd per node | PG CPU s/1k cmd | IDLE 250→EXISTS p50 / p99 ms (missed) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s, i, l = r["smtp"], r["imap"], r["latency"]
        lat = (l.get("latency_ms") if isinstance(l, dict) else None) or {}
        p50, p99 = lat.get("p50", "?"), lat.get("p99", "?")
        print(f"| {r['nodes']} | {s['msgs_per_s']} | {s['node_cpu_s_per_1000']} | {s['pg_cpu_s_per_1000']} | "
              f"{i['cmds_per_s']} | {i['errors']} | {i['node_cpu_s_per_1000']} | {i['pg_cpu_s_per_1000']} | "
              f"{p50} / {p99} ({l.get('missed', '?') if isinstance(l, dict) else '?'}) |")
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()

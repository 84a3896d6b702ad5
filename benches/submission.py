#!/usr/bin/env python3
"""Submission-to-remote-delivery benchmark: two yubin instances on loopback.

Instance A takes mail on its submission port (587: STARTTLS + AUTH PLAIN, one persistent
session per client, C clients in parallel) for carol@b.test; A's queue delivers it over SMTP
to instance B. Reported per concurrency level:
  - throughput: acknowledged messages per second from the first submission until B has
    stored the last one (end to end, so the queue's delivery rate bounds it);
  - latency 250→remote: from the moment the client read A's 250 reply to the moment B logged
    the message as stored ("smtp delivery ... result=delivered", written after B's fsync and
    before B's own 250), matched through the `id` in B's Received: header. p50/p99/max.

Usage: benches/submission.py [--concurrency 10 50] [--messages 1000 2000] [--size 10240]
The binary is $YUBIN_BIN, else target/release/yubin (build it: cargo build --release -p yubin).
"""

import argparse
import os
import poplib
import re
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("YUBIN_BIN", str(ROOT / "target" / "release" / "yubin"))
os.environ.setdefault("RUST_LOG", "info")

from conftest import PASSWORD, Yubin, client_tls  # noqa: E402

LIMITS = "[limits]\nmax_connections_per_ip = 1000\n"


def setup(tmp: Path, per_destination: int):
    b = Yubin(tmp / "b", LIMITS)
    b.cli("domain", "add", "b.test")
    b.cli("user", "add", "carol@b.test", "--password-stdin", stdin=PASSWORD + "\n")
    b.start()
    a = Yubin(tmp / "a", LIMITS + (
        f"[queue]\nremote_port = {b.ports['smtp']}\nretry_initial_secs = 1\n"
        f"poll_interval_secs = 1\nmax_per_destination = {per_destination}\n"
        '[dns.override."b.test"]\na = ["127.0.0.1"]\n'
    ))
    a.cli("domain", "add", "example.com")
    a.cli("user", "add", "alice@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    a.start()
    return a, b


def client(port: int, counter, size: int, acked: dict, lock: threading.Lock, errors: list):
    filler = ("x" * 76 + "\r\n") * (size // 78 + 1)
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
            s.starttls(context=client_tls())
            s.login("alice@example.com", PASSWORD)
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                msg = (
                    f"From: <alice@example.com>\r\nTo: <carol@b.test>\r\nSubject: bench {n}\r\n"
                    f"X-Bench-Id: {n}\r\n\r\n"
                )
                body = (msg + filler)[:size] + "\r\n"
                s.sendmail("alice@example.com", ["carol@b.test"], body.encode())
                acked[n] = time.time()
    except Exception as e:  # report, don't hide: the run is then invalid
        errors.append(repr(e))


def stored_at_b(b, expected: int, timeout: float) -> dict:
    """Waits until B holds `expected` messages; returns bench id -> B's queue id."""
    deadline = time.time() + timeout
    while True:
        p = poplib.POP3("127.0.0.1", b.ports["pop3"], timeout=60)
        try:
            p.user("carol@b.test")
            p.pass_(PASSWORD)
            count, _ = p.stat()
            if count >= expected or time.time() > deadline:
                ids = {}
                for i in range(1, count + 1):
                    head = b"\n".join(p.top(i, 0)[1])
                    bench = re.search(rb"X-Bench-Id: (\d+)", head)
                    # The first Received: is B's own, "... by <host> (yubin) with ... id <id>".
                    rid = re.search(rb"\(yubin\) with \S+ id (\S+)", head)
                    if bench and rid:
                        ids[int(bench.group(1))] = rid.group(1).decode().rstrip(";")
                return ids
        finally:
            p.quit()
        time.sleep(0.5)


def b_store_times(b) -> dict:
    """B's queue id -> wall-clock time of its "smtp delivery ... delivered" log line."""
    times = {}
    for line in b.logs().splitlines():
        if "smtp delivery" not in line or "delivered" not in line:
            continue
        m = re.search(r"queue_id=(\S+)", line)
        if m:
            stamp = line.split()[0]
            times[m.group(1)] = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return times


def run(c: int, total: int, size: int, per_destination: int):
    with tempfile.TemporaryDirectory(prefix="yubin-subbench-") as tmp:
        a, b = setup(Path(tmp), per_destination)
        try:
            counter = iter(range(total))
            acked: dict = {}
            errors: list = []
            lock = threading.Lock()
            threads = [threading.Thread(target=client, args=(a.ports["submission"], counter, size, acked, lock, errors))
                       for _ in range(c)]
            start = time.time()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            submitted = time.time()
            ids = stored_at_b(b, len(acked), timeout=300)
            stored = b_store_times(b)
            end = max(stored.values()) if stored else time.time()
            lat = sorted(stored[ids[n]] - t for n, t in acked.items() if n in ids and ids[n] in stored)
            missing = len(acked) - len(lat)
            q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
            print(
                f"C={c:<3} msgs={len(acked):<5} size={size} per_destination={per_destination}  "
                f"submit {len(acked) / (submitted - start):7.1f}/s  "
                f"end-to-end {len(acked) / (end - start):7.1f}/s  "
                f"250→B stored p50 {q[49] * 1000:7.1f} ms  p99 {q[98] * 1000:7.1f} ms  "
                f"max {lat[-1] * 1000 if lat else float('nan'):7.1f} ms"
                + (f"  UNMATCHED {missing}" if missing else "")
                + (f"  CLIENT ERRORS {errors[:3]}" if errors else ""),
                flush=True,
            )
        finally:
            a.stop()
            b.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--messages", type=int, nargs="+", default=[1000, 2000])
    ap.add_argument("--size", type=int, default=10240)
    ap.add_argument("--per-destination", type=int, default=20,
                    help="A's [queue] max_per_destination (connections to B); default as shipped")
    args = ap.parse_args()
    if not Path(os.environ["YUBIN_BIN"]).exists():
        sys.exit(f"{os.environ['YUBIN_BIN']} missing: cargo build --release -p yubin")
    print(f"binary {os.environ['YUBIN_BIN']}", flush=True)
    for i, c in enumerate(args.concurrency):
        total = args.messages[min(i, len(args.messages) - 1)]
        run(c, total, args.size, args.per_destination)


if __name__ == "__main__":
    main()

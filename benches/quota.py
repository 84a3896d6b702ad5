#!/usr/bin/env python3
"""GETQUOTA cost: round trips of GETQUOTA "" and GETQUOTAROOT INBOX against NOOP (the same
round trip doing nothing), on C connections at once, against a throw-away yubin (release build
by default) with one account holding MESSAGES messages and a quota.

Usage: benches/quota.py [--commands N] [--concurrency C] [--messages M] [--bin PATH]

Prints one line per command: commands/s and p50/p99 latency in microseconds. GETQUOTA reads one
account row (the counters are kept current by every write), so its cost must not grow with the
mailbox: compare --messages 100 with --messages 20000.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")
        self.n = 0
        self.f.readline()

    def cmd(self, text: str, literal: bytes | None = None) -> bytes:
        self.n += 1
        tag = b"b%d" % self.n
        if literal is None:
            self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.s.sendall(tag + b" " + text.encode() + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError
            if line.startswith(tag + b" "):
                return line


def run(port, command, n, conc) -> tuple[float, list[float]]:
    lat: list[float] = []
    lock = threading.Lock()

    def worker():
        c = Conn(port)
        assert c.cmd(f'LOGIN u@bench.test "{PASSWORD}"').split()[1] == b"OK"
        mine = []
        for _ in range(n // conc):
            t = time.perf_counter()
            r = c.cmd(command)
            mine.append(time.perf_counter() - t)
            assert r.split()[1] == b"OK", r
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(conc)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, lat


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--commands", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--bin", default=str(ROOT / "target" / "release" / "yubin"))
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="yubin-quota-bench."))
    port = free_port()
    cfg = work / "yubin.toml"
    cfg.write_text(
        f'hostname = "mx.bench.test"\ndata_dir = "{work}/data"\n'
        f'[listen]\nsmtp = []\nsubmission = []\nsubmissions = []\npop3 = []\npop3s = []\n'
        f'imap = ["127.0.0.1:{port}"]\nimaps = []\n'
        f"[limits]\nmax_connections_per_ip = 100000\nmax_connections = 100000\n"
        f'[inbound_auth]\nenabled = false\n[quota]\nstorage = "1T"\nmessages = 1000000000\n'
    )
    cli = lambda *args, **kw: subprocess.run([a.bin, "--config", str(cfg), *args], check=True, capture_output=True, **kw)
    cli("domain", "add", "bench.test")
    cli("user", "add", "u@bench.test", "--password-stdin", input=(PASSWORD + "\n").encode())
    server = subprocess.Popen([a.bin, "--config", str(cfg), "serve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.1)
        c = Conn(port)
        c.cmd(f'LOGIN u@bench.test "{PASSWORD}"')
        body = b"Subject: x\r\n\r\n" + b"y" * 2000 + b"\r\n"
        for _ in range(a.messages):
            c.cmd("APPEND INBOX", body)
        print(f"GETQUOTA bench: {a.messages} messages in the account, {a.commands} commands "
              f"on {a.concurrency} connections, {os.cpu_count()} cores")
        for command in ("NOOP", 'GETQUOTA ""', "GETQUOTAROOT INBOX"):
            run(port, command, a.concurrency * 20, a.concurrency)  # warm-up
            elapsed, lat = run(port, command, a.commands, a.concurrency)
            lat.sort()
            p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e6
            print(f"{command:<20} {len(lat) / elapsed:>9.0f} cmd/s   p50 {p(0.5):>7.0f} us   "
                  f"p99 {p(0.99):>7.0f} us   mean {statistics.mean(lat) * 1e6:>7.0f} us")
    finally:
        server.terminate()
        server.wait(timeout=20)
        subprocess.run(["rm", "-rf", str(work)])


if __name__ == "__main__":
    sys.exit(main())

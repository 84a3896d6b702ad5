"""Hostile-input corpus, connection flood (docs/hostile-inputs.md): as many TCP connections as asked
(10,000 in CI; YUBIN_HOSTILE_CONNECTIONS=50000 or `python3 tests/test_hostile_flood.py 50000` by
hand) to the SMTP, POP3 and IMAP listeners from 50 untrusted loopback addresses (127.0.0.2…), so
ephemeral ports do not run out. Each address may hold max_connections_per_ip sessions, which get
their greetings; every other connection gets its protocol's one-line "too many connections"
refusal and is closed. Meanwhile the normal client on 127.0.0.1 (a trusted network) is served
within a few seconds; the server's peak RSS is reported."""

import errno
import multiprocessing
import os
import queue
import resource
import selectors
import socket
import tempfile
import time
from pathlib import Path

from hostile_kit import Probe, rss_kib, start_hostile_server

SOURCES = [f"127.0.0.{i}" for i in range(2, 52)]
PER_IP = 20
LISTENERS = ["smtp", "pop3", "imap"]
# How many connects may wait for their first line at once (the listen backlog is 1024 each).
WINDOW = 1500
REFUSALS = {
    # RFC 5321 §3.1 + RFC 3463 4.7.0; RFC 2449 §8 [SYS/TEMP]; RFC 9051 §7.1.5 BYE greeting.
    "smtp": b"421 4.7.0 mail.example.com Too many connections, try again later\r\n",
    "pop3": b"-ERR [SYS/TEMP] Too many connections\r\n",
    "imap": b"* BYE Too many connections\r\n",
}
GREETINGS = {"smtp": b"220 ", "pop3": b"+OK", "imap": b"* OK "}
IP_BIND_ADDRESS_NO_PORT = 24


def per_ip() -> int:
    """PER_IP, or less where the open-file limit (which the server inherits) is too low for
    every held session plus the server's own descriptors."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return max(1, min(PER_IP, (hard - 300) // len(SOURCES)))


def flood_limits() -> dict:
    return {
        "trusted_networks": ["127.0.0.1/32"],
        "max_connections_per_ip": per_ip(),
        "max_connections": len(SOURCES) * per_ip() + 200,
        "connection_rate_per_ip": 0,
        # The held sessions stay for the whole flood.
        "smtp_command_timeout_secs": 600,
        "pop3_idle_timeout_secs": 600,
        "imap_idle_timeout_secs": 1800,
    }


def raise_nofile(wanted: int) -> int:
    """Raises this process's open-file limit (the server, its child, inherits it) towards
    `wanted`: to the hard limit, and past it where allowed (root); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target_hard in (max(hard, wanted), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, target_hard), target_hard))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Flood:
    """Connections number `first`..`first + count - 1`, each from a source address and to a
    listener picked by its number; all kept open until close() (the refused ones too, closed
    by the server), so the descriptors count against this process's open-file limit."""

    def __init__(self, ports: dict, first: int, count: int):
        self.ports = ports
        self.first = first
        self.count = count
        self.sel = selectors.DefaultSelector()
        self.socks: list[socket.socket] = []
        self.held = 0
        self.refused = 0
        self.wrong: list[bytes] = []
        self.unanswered = 0

    def open_one(self, i: int):
        listener = LISTENERS[i % len(LISTENERS)]
        source = SOURCES[(i // len(LISTENERS)) % len(SOURCES)]
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((source, 0))
        err = s.connect_ex(("127.0.0.1", self.ports[listener]))
        assert err in (0, errno.EINPROGRESS), os.strerror(err)
        self.socks.append(s)
        self.sel.register(s, selectors.EVENT_READ, [listener, b"", time.monotonic()])

    def on_readable(self, key):
        s, (listener, buf, _) = key.fileobj, key.data
        try:
            chunk = s.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        buf += chunk
        key.data[1] = buf
        if b"\n" in buf or not chunk:
            self.sel.unregister(s)
            line = buf.split(b"\n", 1)[0] + b"\n"
            if line == REFUSALS[listener]:
                self.refused += 1
            elif line.startswith(GREETINGS[listener]):
                self.held += 1
            else:
                self.wrong.append(listener.encode() + b": " + buf[:200])

    def run(self, deadline_secs: float):
        started = time.monotonic()
        opened = 0
        while True:
            while opened < self.count and len(self.sel.get_map()) < WINDOW:
                self.open_one(self.first + opened)
                opened += 1
            if opened >= self.count and not self.sel.get_map():
                break
            if time.monotonic() - started > deadline_secs:
                self.unanswered = len(self.sel.get_map())
                break
            for key, _ in self.sel.select(timeout=1.0):
                self.on_readable(key)
        return time.monotonic() - started

    def counts(self) -> dict:
        return {"held": self.held, "refused": self.refused, "wrong": self.wrong[:5],
                "unanswered": self.unanswered}

    def close(self):
        for s in self.socks:
            s.close()
        self.sel.close()


def flood_worker(ports: dict, first: int, count: int, results, release):
    """One process of the flood: opens its share, reports, holds it until `release`."""
    raise_nofile(count + 100)
    flood = Flood(ports, first, count)
    flood.run(deadline_secs=max(120, count / 100))
    results.put(flood.counts())
    release.wait(300)
    flood.close()


def run_flood(server, count: int) -> dict:
    """Spreads the connections over worker processes, each within this machine's open-file
    limit, while the probe runs here; samples the server's RSS throughout."""
    per_worker = max(100, min(count, resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 200))
    ctx = multiprocessing.get_context("fork")
    results, release = ctx.Queue(), ctx.Event()
    workers = []
    for first in range(0, count, per_worker):
        n = min(per_worker, count - first)
        w = ctx.Process(target=flood_worker, args=(dict(server.ports), first, n, results, release))
        w.start()
        workers.append(w)
    probe = Probe(server)
    probe.start()
    started = time.monotonic()
    peak = 0
    reports = []
    try:
        while len(reports) < len(workers):
            try:
                reports.append(results.get(timeout=0.2))
            except queue.Empty:
                assert all(w.is_alive() for w in workers) or not results.empty(), "a flood worker died"
            peak = max(peak, rss_kib(server.proc.pid))
        took = time.monotonic() - started
        # Every connection is open (or closed by the server) while the probe goes on.
        time.sleep(2)
        held_rss = rss_kib(server.proc.pid)
    finally:
        probe.stop()
        release.set()
        for w in workers:
            w.join(30)
    return {
        "connections": count,
        "per_ip": per_ip(),
        "workers": len(workers),
        "seconds": round(took, 1),
        "held": sum(r["held"] for r in reports),
        "refused": sum(r["refused"] for r in reports),
        "wrong": [x for r in reports for x in r["wrong"]],
        "unanswered": sum(r["unanswered"] for r in reports),
        "probe_rounds": probe.rounds,
        "probe_failures": probe.failures,
        "probe_slowest_secs": round(probe.slowest, 2),
        "server_rss_held_kib": held_rss,
        "server_peak_rss_kib": max(peak, rss_kib(server.proc.pid, "VmHWM")),
    }


def check(server, result: dict):
    assert server.proc.poll() is None, server.logs()[-5000:]
    assert "panicked" not in server.logs(), server.logs()[-5000:]
    assert result["wrong"] == [] and result["unanswered"] == 0, result
    # Every address holds exactly its quota; everything else was refused with the reply.
    assert result["held"] == min(result["connections"], len(SOURCES) * per_ip()), result
    assert result["held"] + result["refused"] == result["connections"], result
    assert result["probe_failures"] == [] and result["probe_rounds"] >= 1, result


def connections_wanted() -> int:
    return int(os.environ.get("YUBIN_HOSTILE_CONNECTIONS", "10000"))


def test_connection_flood(tmp_path):
    count = connections_wanted()
    raise_nofile(count + 1000)
    server = start_hostile_server(tmp_path / "s", flood_limits())
    try:
        result = run_flood(server, count)
        print(f"\nconnection flood: {result}")
        check(server, result)
        # Once the flood is gone the server is still fine.
        probe = Probe(server)
        probe.round(10_000)
    finally:
        server.stop()
        server.drop_database()


if __name__ == "__main__":
    # By hand (docs/hostile-inputs.md): python3 tests/test_hostile_flood.py [CONNECTIONS]
    # [--per-ip N]; the debug build, or the binary in YUBIN_BIN.
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("connections", type=int, nargs="?", default=50_000)
    parser.add_argument("--per-ip", type=int, default=PER_IP,
                        help=f"sessions each of the {len(SOURCES)} addresses may hold (default {PER_IP})")
    args = parser.parse_args()
    PER_IP = args.per_ip
    n = args.connections
    raise_nofile(n + 1000)
    with tempfile.TemporaryDirectory(prefix="yubin-flood-") as tmp:
        y = start_hostile_server(Path(tmp) / "s", flood_limits())
        try:
            result = run_flood(y, n)
            print(result)
            check(y, result)
            print(f"PASS: {n} connections, {result['held']} held, server peak RSS "
                  f"{result['server_peak_rss_kib'] / 1024:.1f} MiB")
        finally:
            y.stop()
            y.drop_database()

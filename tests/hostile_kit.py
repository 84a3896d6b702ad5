"""Shared by the hostile-input corpus (tests/test_hostile*.py, docs/hostile-inputs.md): one yubin
with every listener and short timeouts, shared by all cases of a test file, and a normal client
(the probe) that must be served within a few seconds while each attack runs.

After every case the server must still run and its log must hold no panic.
"""

import base64
import imaplib
import poplib
import smtplib
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, Transcript, Yubin, free_port

# Short timeouts, so that slowloris cases end in seconds. The probe opens a fresh session for
# every round, so it never idles into them.
TIMEOUT_SECS = 3
HOSTILE_LIMITS = {
    "smtp_command_timeout_secs": TIMEOUT_SECS,
    "smtp_data_timeout_secs": TIMEOUT_SECS,
    "smtp_write_timeout_secs": TIMEOUT_SECS,
    "pop3_idle_timeout_secs": TIMEOUT_SECS,
    "imap_idle_timeout_secs": TIMEOUT_SECS,
    "tls_handshake_timeout_secs": TIMEOUT_SECS,
    "http_header_timeout_secs": TIMEOUT_SECS,
    "http_connection_timeout_secs": TIMEOUT_SECS * 2,
}
USERS = ("alice", "bob", "probe", "mime", "smuggle", "reader")
# How long one round of the probe (SMTP delivery, IMAP login + FETCH, POP3 STAT) may take.
PROBE_BUDGET_SECS = 5.0


def start_hostile_server(workdir: Path, limits: dict | None = None) -> Yubin:
    """`limits`: `[limits]` keys (TOML values as Python literals) over HOSTILE_LIMITS."""
    merged = {**HOSTILE_LIMITS, **(limits or {})}
    table = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in merged.items())
    y = Yubin(workdir, f"[limits]\n{table}[antispam]\npregreet_delay_ms = 0\n")
    y.ports["https"] = free_port()
    y.write_config()
    y.cli("domain", "add", "example.com")
    for user in USERS:
        y.cli("user", "add", f"{user}@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    return y.start()


class Probe(threading.Thread):
    """The normal client: rounds of an SMTP delivery to probe@, an IMAP login and FETCH of the
    newest message, and a POP3 STAT, each round within PROBE_BUDGET_SECS, until stopped."""

    def __init__(self, server: Yubin):
        super().__init__(daemon=True)
        self.server = server
        self.stopping = threading.Event()
        self.rounds = 0
        self.failures: list[str] = []
        self.slowest = 0.0
        # Seconds each step of the latest round took (SMTP, IMAP, POP3).
        self.steps: list[float] = []

    def run(self):
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.round(self.rounds)
            except Exception as e:  # noqa: BLE001 - every failure is reported by the case
                self.failures.append(f"round {self.rounds}: {e!r}")
            took = time.monotonic() - started
            self.slowest = max(self.slowest, took)
            if took > PROBE_BUDGET_SECS:
                steps = ", ".join(f"{t:.1f}" for t in self.steps)
                self.failures.append(f"round {self.rounds} took {took:.1f}s (SMTP, IMAP, POP3: {steps})")
            self.rounds += 1
            self.stopping.wait(0.2)

    def round(self, n: int):
        ports = self.server.ports
        subject = f"probe {n}"
        self.steps = []
        mark = time.monotonic()
        with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=PROBE_BUDGET_SECS) as s:
            s.sendmail("probe@sender.test", ["probe@example.com"],
                       f"Subject: {subject}\r\n\r\nprobe body {n}\r\n".encode())
        self.steps.append(time.monotonic() - mark)
        mark = time.monotonic()
        m = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=PROBE_BUDGET_SECS)
        try:
            m.login("probe@example.com", PASSWORD)
            typ, data = m.select("INBOX")
            assert typ == "OK", data
            typ, data = m.fetch(data[0].decode(), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert typ == "OK" and subject.encode() in data[0][1], data
        finally:
            m.logout()
        self.steps.append(time.monotonic() - mark)
        mark = time.monotonic()
        p = poplib.POP3("127.0.0.1", ports["pop3"], timeout=PROBE_BUDGET_SECS)
        try:
            p.user("probe@example.com")
            p.pass_(PASSWORD)
            count, _ = p.stat()
            assert count >= 1, count  # at least the message delivered just now
        finally:
            p.quit()
        self.steps.append(time.monotonic() - mark)

    def stop(self):
        self.stopping.set()
        self.join(timeout=PROBE_BUDGET_SECS * 3)


def hostile_server_fixture():
    """A module-scoped fixture: one server for every case of a test file."""

    @pytest.fixture(scope="module")
    def hostile():
        tmp = tempfile.TemporaryDirectory(prefix="yubin-hostile-")
        y = start_hostile_server(Path(tmp.name) / "s")
        yield y
        y.stop()
        y.drop_database()
        tmp.cleanup()

    return hostile


def guarded_fixture():
    """Autouse: the probe runs throughout each case; afterwards it must have been served every
    round, and the server must be alive with no panic in its log."""

    @pytest.fixture(autouse=True)
    def guarded(hostile):
        probe = Probe(hostile)
        probe.start()
        yield probe
        # At least one whole round overlaps the attack's aftermath.
        deadline = time.monotonic() + PROBE_BUDGET_SECS * 2
        first = probe.rounds
        while probe.rounds <= first + 1 and time.monotonic() < deadline and not probe.failures:
            time.sleep(0.05)
        probe.stop()
        assert hostile.proc.poll() is None, f"yubin died:\n{hostile.logs()[-5000:]}"
        assert "panicked" not in hostile.logs(), hostile.logs()[-5000:]
        assert not probe.failures, probe.failures
        assert probe.rounds >= 1, "the probe never completed a round"

    return guarded


# --- raw clients ---------------------------------------------------------------------------


def read_all(sock: socket.socket, wait: float) -> bytes:
    """Everything the peer sends until it closes (marked with <EOF>) or is quiet for `wait`."""
    sock.settimeout(wait)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out + b"<EOF>"
            out += chunk
    except socket.timeout:
        return out
    except ConnectionError:
        return out + b"<RESET>"


def read_until_close(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Everything until the peer closes; and how long that took. Fails after `limit`."""
    started = time.monotonic()
    out = b""
    while True:
        left = limit - (time.monotonic() - started)
        assert left > 0, f"not closed within {limit}s; got {out[-300:]!r}"
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionError:
            chunk = b""
        if not chunk:
            return out, time.monotonic() - started
        out += chunk


def smtp_session(server, listener="smtp") -> Transcript:
    t = Transcript(server.connect(listener))
    assert t.smtp_reply().startswith(b"220 ")
    assert t.cmd(b"EHLO client.test\r\n").startswith(b"250-")
    return t


def imap_session(server, user="alice", listener="imap") -> Transcript:
    t = Transcript(server.connect(listener))
    assert t.line().startswith(b"* OK ")
    if user:
        t.send(b'l LOGIN %s@example.com "%s"\r\n' % (user.encode(), PASSWORD.encode()))
        assert t.line().startswith(b"l OK "), "login failed"
    return t


def imap_tagged(t: Transcript, tag: bytes) -> tuple[list[bytes], bytes]:
    """Lines (literals included, raw) up to the tagged reply of `tag`; and that reply."""
    lines = []
    while True:
        line = t.line()
        if line.startswith(tag + b" "):
            return lines, line
        lines.append(line)
        # A literal: read its bytes whole, so its content is not taken for lines.
        if line.endswith(b"}\r\n") and b"{" in line:
            size = int(line[line.rindex(b"{") + 1:-3].rstrip(b"+"))
            while len(t.buf) < size:
                chunk = t.sock.recv(1 << 20)
                if not chunk:
                    raise EOFError("closed inside a literal")
                t.buf += chunk
            lines.append(t.buf[:size])
            t.buf = t.buf[size:]


def pop3_session(server, user="alice", listener="pop3") -> Transcript:
    t = Transcript(server.connect(listener))
    assert t.line().startswith(b"+OK")
    if user:
        t.send(b"USER %s@example.com\r\nPASS %s\r\n" % (user.encode(), PASSWORD.encode()))
        assert t.line().startswith(b"+OK")
        assert t.line().startswith(b"+OK"), "login failed"
    return t


def deliver(server, rcpt: str, message: bytes) -> bytes:
    """One message over port 25 (loopback is a trusted network); the final reply."""
    t = smtp_session(server)
    t.sock.settimeout(60)
    assert t.cmd(b"MAIL FROM:<sender@sender.test>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<%s>\r\n" % rcpt.encode()).startswith(b"250")
    assert t.cmd(b"DATA\r\n").startswith(b"354")
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    reply = t.cmd(stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    t.cmd(b"QUIT\r\n")
    t.sock.close()
    return reply


def message_count(server, user: str) -> int:
    t = imap_session(server, user)
    t.send(b"s STATUS INBOX (MESSAGES)\r\n")
    lines, done = imap_tagged(t, b"s")
    assert done.startswith(b"s OK"), done
    t.sock.close()
    status = [ln for ln in lines if ln.startswith(b"* STATUS")][0]
    return int(status.rsplit(b"MESSAGES ", 1)[1].split(b")")[0])


def auth_plain(user: bytes, password: bytes) -> bytes:
    return base64.b64encode(b"\0" + user + b"\0" + password)


def rss_kib(pid: int, field="VmRSS") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field}")

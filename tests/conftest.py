"""Harness for yubin's end-to-end tests.

Each test gets its own yubin: the real binary started as a child process on ephemeral loopback
ports with a temporary data directory, driven by clients nobody here wrote (Python's smtplib,
poplib, ssl, curl) and by raw protocol transcripts.
"""

import os
import random
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LISTENERS = ["smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps"]
PASSWORD = "correct horse battery staple"


def yubin_binary() -> str:
    """The binary under test: $YUBIN_BIN, else the debug build, else the release build."""
    env = os.environ.get("YUBIN_BIN")
    if env:
        return env
    for profile in ("debug", "release"):
        path = ROOT / "target" / profile / "yubin"
        if path.exists():
            return str(path)
    raise RuntimeError("build yubin first: cargo build")


# Ports for test servers come from below the kernel's ephemeral range (32768-60999 on Linux), so
# no outgoing connection of this or another test can take one between the probe and the server's
# bind; each is handed out once per test run.
_PORT_RANGE = (20000, 32000)
_ports_given: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that is free now and was not handed out before in this run."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(*_PORT_RANGE)
        if port in _ports_given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise RuntimeError("no free port in %d-%d" % _PORT_RANGE)


def client_tls() -> ssl.SSLContext:
    """The server uses a self-signed certificate in tests: do not verify it."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class PortTaken(Exception):
    """The server could not bind a listener because something else holds the port."""


class Yubin:
    """One yubin server with its own data directory, config and ports."""

    def __init__(self, workdir: Path, extra_config: str = "", auth_config: str = ""):
        self.dir = workdir
        self.data = workdir / "data"
        self.config = workdir / "yubin.toml"
        self.ports = {name: free_port() for name in LISTENERS}
        self.log_path = workdir / "server.log"
        self.proc = None
        self.extra_config = extra_config
        self.auth_config = auth_config
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pg_database = None
        if os.environ.get("YUBIN_TEST_E2E_BACKEND") == "postgres" and "[storage]" not in extra_config:
            self.use_postgres()
        self.write_config()

    def use_postgres(self):
        """YUBIN_TEST_E2E_BACKEND=postgres runs the suite on PostgreSQL: each server gets a
        database of its own on the server of YUBIN_TEST_PG_URL (scripts/pg-test-cluster)."""
        admin = os.environ["YUBIN_TEST_PG_URL"]
        self.pg_database = "yubin_e2e_" + os.urandom(6).hex()
        subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {self.pg_database}"], check=True)
        url = admin.rpartition("/")[0] + "/" + self.pg_database
        self.extra_config += f'\n[storage]\nbackend = "postgres"\nurl = "{url}"\npool_size = 4\n'

    def drop_database(self):
        if self.pg_database:
            admin = os.environ["YUBIN_TEST_PG_URL"]
            subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {self.pg_database} WITH (FORCE)"], check=False)

    def write_config(self):
        # A port of None disables the listener (an empty list).
        listen = "\n".join(f'{n} = ["127.0.0.1:{p}"]' if p else f"{n} = []" for n, p in self.ports.items())
        # The checks of arriving mail need DNS, which a test must bring (tests/dns_server.py):
        # they are off unless the test configures them.
        inbound = "" if "[inbound_auth]" in self.extra_config else "[inbound_auth]\nenabled = false\n"
        self.config.write_text(
            f'hostname = "mail.example.com"\n'
            f'data_dir = "{self.data}"\n'
            f"[listen]\n{listen}\n"
            f"{self.extra_config}\n"
            f"{inbound}"
            f"[auth]\nfailure_delay_ms = 100\n{self.auth_config}\n"
        )

    def cli(self, *args, stdin=None, check=True):
        res = subprocess.run(
            [yubin_binary(), "--config", str(self.config), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"yubin {' '.join(args)} failed: {res.stderr}")
        return res

    def start(self, attempts=3):
        """Starts the server and waits for every listener. If a port was taken after all (another
        program on the machine), picks new ports for the listeners and tries again."""
        for attempt in range(attempts):
            try:
                return self._start_once()
            except PortTaken:
                if attempt == attempts - 1:
                    raise
                self.ports = {name: free_port() if port else None for name, port in self.ports.items()}
                self.write_config()
        return self

    def _start_once(self):
        self.log = open(self.log_path, "ab")
        log_start = self.log.tell()
        self.proc = subprocess.Popen(
            [yubin_binary(), "--config", str(self.config), "serve"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")},
        )
        deadline = time.time() + 30
        for port in filter(None, self.ports.values()):
            while True:
                if self.proc.poll() is not None:
                    self.proc = None
                    self.log.close()
                    if b"address in use" in self.log_path.read_bytes()[log_start:]:
                        raise PortTaken()
                    raise AssertionError(f"yubin exited early:\n{self.logs()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline:
                        raise AssertionError(f"port {port} never opened:\n{self.logs()}")
                    time.sleep(0.05)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=20) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()
        self.proc = None
        return code

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def connect(self, listener: str, timeout=10) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.ports[listener]), timeout=timeout)
        if listener in ("submissions", "pop3s", "imaps"):
            s = client_tls().wrap_socket(s)
        return s


@pytest.fixture
def make_server():
    """Factory: make_server(extra_config="", auth_config="") -> a started Yubin with example.com,
    alice, bob and the alias team@example.com -> alice, bob. `extra_config` holds whole TOML
    tables; `auth_config` holds keys for the `[auth]` table."""
    servers = []
    tmp = tempfile.TemporaryDirectory(prefix="yubin-test-")

    def make(extra_config: str = "", auth_config: str = "", users=True) -> Yubin:
        y = Yubin(Path(tmp.name) / f"s{len(servers)}", extra_config, auth_config)
        if users:
            y.cli("domain", "add", "example.com")
            for user in ("alice@example.com", "bob@example.com"):
                y.cli("user", "add", user, "--password-stdin", stdin=PASSWORD + "\n")
            y.cli("alias", "add", "team@example.com", "alice@example.com", "bob@example.com")
        servers.append(y)
        return y.start()

    yield make
    for y in servers:
        try:
            y.stop()
        except Exception:
            pass
        y.drop_database()
    tmp.cleanup()


@pytest.fixture
def server(make_server) -> Yubin:
    return make_server()


class Transcript:
    """A raw line-oriented protocol client for exact-reply assertions."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; buffered {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def smtp_reply(self) -> bytes:
        """Reads one (possibly multi-line) SMTP reply and returns it whole."""
        out = b""
        while True:
            line = self.line()
            out += line
            if len(line) < 4 or line[3:4] != b"-":
                return out

    def cmd(self, data: bytes) -> bytes:
        self.send(data)
        return self.smtp_reply()

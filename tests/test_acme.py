"""ACME (RFC 8555) against pebble, Let's Encrypt's test CA (Debian's `pebble` package), all on
loopback: pebble's validation authority resolves the names through a DNS server the test runs
and connects to yubin's HTTP listener (HTTP-01) or HTTPS listener (TLS-ALPN-01, RFC 8737).

Checked: the certificate served on IMAPS and HTTPS chains to pebble's root through its
intermediate and names the hostname and the autoconfig names; `yubin tls renew` replaces it on
the running listeners (a new connection sees a new serial, same process); a restart keeps it.
"""

import datetime
import json
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from certs import CertAuthority, pem
from conftest import Yubin, free_port
from dns_server import DnsServer

PEBBLE = shutil.which("pebble")
pytestmark = pytest.mark.skipif(PEBBLE is None, reason="pebble is not installed (apt-get install pebble)")

HOST = "mail.example.com"
NAMES = {HOST, "autoconfig.example.com", "autodiscover.example.com", "ua-auto-config.example.com"}


def make_ca(dirpath: Path) -> tuple[Path, Path, Path]:
    """A CA and a certificate for 127.0.0.1 signed by it, for pebble's own HTTPS (the Debian
    package ships no test certificates). Returns (ca.pem, cert.pem, key.pem)."""
    dirpath.mkdir(parents=True, exist_ok=True)
    ca = CertAuthority("yubin test CA for pebble")
    cert, key = ca.issue("127.0.0.1", dns=["localhost"], ips=["127.0.0.1"])
    paths = (dirpath / "ca.pem", dirpath / "pebble-cert.pem", dirpath / "pebble-key.pem")
    ca.write(paths[0])
    paths[1].write_bytes(pem(cert))
    paths[2].write_bytes(pem(key))
    return paths


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout=20):
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"pebble exited:\n{log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise AssertionError(f"pebble never listened:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)


class Setup:
    """pebble + a DNS server + a yubin whose [tls] acme points at pebble."""

    def __init__(self, tmp: Path, challenge: str, resolvable=NAMES, acme_extra="", validity_secs=None):
        self.tmp = tmp
        self.challenge = challenge
        self.ca, cert, key = make_ca(tmp)
        self.dns = DnsServer({n: [("A", "127.0.0.1")] for n in resolvable}).start()
        self.yubin = Yubin(tmp / "yubin")
        self.yubin.ports["https"] = free_port()
        self.yubin.ports["http"] = free_port() if challenge == "http-01" else None
        self.acme_port, self.mgmt_port = free_port(), free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.acme_port}",
                "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
                "certificate": str(cert),
                "privateKey": str(key),
                # Where pebble's VA connects for each challenge: yubin's listeners.
                "httpPort": self.yubin.ports["http"] or free_port(),
                "tlsPort": self.yubin.ports["https"],
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        if validity_secs:
            config["pebble"]["certificateValidityPeriod"] = validity_secs
        (tmp / "pebble.json").write_text(json.dumps(config))
        self.pebble_log = tmp / "pebble.log"
        env = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            # Every order validates afresh, so renewal exercises the challenge again.
            "PEBBLE_AUTHZREUSE": "0",
        }
        self.pebble = subprocess.Popen(
            [PEBBLE, "-config", str(tmp / "pebble.json"), "-dnsserver", self.dns.address],
            stdout=open(self.pebble_log, "wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        wait_port(self.acme_port, self.pebble, self.pebble_log)
        wait_port(self.mgmt_port, self.pebble, self.pebble_log)
        self.yubin.extra_config = (
            "[tls]\n"
            f'acme = {{ directory = "https://127.0.0.1:{self.acme_port}/dir", '
            f'contact = ["mailto:postmaster@example.com"], challenge = "{challenge}", '
            f'ca_certificates = "{self.ca}", retry_secs = 2{acme_extra} }}\n'
        )
        self.yubin.write_config()
        self.yubin.cli("domain", "add", "example.com")

    def pebble_pem(self, what: str) -> bytes:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        with urllib.request.urlopen(f"https://127.0.0.1:{self.mgmt_port}/{what}/0", context=ctx, timeout=10) as r:
            return r.read()

    def close(self):
        try:
            self.yubin.stop()
        finally:
            self.pebble.terminate()
            self.pebble.wait(timeout=10)
            self.dns.stop()

    def logs(self) -> str:
        return f"--- yubin ---\n{self.yubin.logs()}\n--- pebble ---\n{self.pebble_log.read_text(errors='replace')}"


@pytest.fixture
def setup_factory():
    made = []
    tmp = tempfile.TemporaryDirectory(prefix="yubin-acme-")

    def make(challenge: str, **kw) -> Setup:
        s = Setup(Path(tmp.name) / str(len(made)), challenge, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        try:
            s.close()
        except Exception:
            pass
    tmp.cleanup()


def served_chain(port: int, root_pem: bytes) -> x509.Certificate:
    """Connects with verification against pebble's root and the hostname; returns the leaf."""
    ctx = ssl.create_default_context(cadata=root_pem.decode())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            return x509.load_der_x509_certificate(s.getpeercert(binary_form=True))


def unverified_leaf(port: int) -> x509.Certificate:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            return x509.load_der_x509_certificate(s.getpeercert(binary_form=True))


def wait_for_acme_cert(setup: Setup, timeout=90) -> x509.Certificate:
    """Waits until IMAPS serves a certificate that is not the self-signed one."""
    deadline = time.time() + timeout
    while True:
        leaf = unverified_leaf(setup.yubin.ports["imaps"])
        if leaf.issuer != leaf.subject:
            return leaf
        if time.time() > deadline:
            raise AssertionError(f"no ACME certificate after {timeout}s:\n{setup.logs()}")
        time.sleep(0.5)


def san_names(cert: x509.Certificate) -> set[str]:
    return set(cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value.get_values_for_type(x509.DNSName))


def starttls_leaf(port: int, root_pem: bytes) -> x509.Certificate:
    """The certificate of the SMTP STARTTLS listener, verified against pebble's root."""
    ctx = ssl.create_default_context(cadata=root_pem.decode())
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp._host = HOST  # the name starttls() sends as SNI and checks
        smtp.starttls(context=ctx)
        return x509.load_der_x509_certificate(smtp.sock.getpeercert(binary_form=True))


def check_issued(setup: Setup, names=NAMES) -> x509.Certificate:
    leaf = wait_for_acme_cert(setup)
    root = setup.pebble_pem("roots")
    intermediate = x509.load_pem_x509_certificate(setup.pebble_pem("intermediates"))
    for listener in ("imaps", "https", "submissions", "pop3s"):
        served = served_chain(setup.yubin.ports[listener], root)
        assert served.serial_number == leaf.serial_number, listener
        assert served.issuer == intermediate.subject, listener
        # The leaf's signature is the intermediate's.
        served.verify_directly_issued_by(intermediate)
    assert starttls_leaf(setup.yubin.ports["submission"], root).serial_number == leaf.serial_number
    assert san_names(leaf) == names
    status = setup.yubin.cli("tls", "status").stdout
    assert "source:      acme" in status, status
    assert f"({setup.challenge})" in status and "succeeded" in status, status
    assert f"{leaf.serial_number:x}".lstrip("0")[-8:] in status.replace(":", "").lower(), status
    return leaf


def test_http01_issue_renew_and_keep(setup_factory):
    setup = setup_factory("http-01")
    y = setup.yubin
    y.start()
    # Until the ACME certificate arrives the self-signed one is served.
    leaf = check_issued(setup)
    pid = y.proc.pid

    # The challenge path is answered on plain HTTP (404 for an unknown token), not redirected.
    with socket.create_connection(("127.0.0.1", y.ports["http"]), timeout=10) as s:
        s.sendall(b"GET /.well-known/acme-challenge/nope HTTP/1.1\r\nHost: mail.example.com\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 404"), reply

    # Renewal on the live listeners: a new connection gets a new serial from the same process.
    out = y.cli("tls", "renew")
    assert "renewed" in out.stdout, out.stdout + out.stderr
    root = setup.pebble_pem("roots")
    renewed = served_chain(y.ports["imaps"], root)
    assert renewed.serial_number != leaf.serial_number
    assert served_chain(y.ports["https"], root).serial_number == renewed.serial_number
    assert starttls_leaf(y.ports["smtp"], root).serial_number == renewed.serial_number
    assert y.proc.pid == pid and y.proc.poll() is None
    assert san_names(renewed) == NAMES

    # A restart serves the stored certificate at once, without a new order.
    y.stop()
    y.start()
    again = unverified_leaf(y.ports["imaps"])
    assert again.serial_number == renewed.serial_number
    time.sleep(2)
    assert unverified_leaf(y.ports["imaps"]).serial_number == renewed.serial_number
    key_mode = (y.data / "tls/acme/key.pem").stat().st_mode & 0o777
    assert key_mode == 0o600
    assert (y.data / "tls/acme/account.json").stat().st_mode & 0o777 == 0o600


def test_tls_alpn01_issue(setup_factory):
    setup = setup_factory("tls-alpn-01")
    setup.yubin.start()
    check_issued(setup)
    log = setup.yubin.logs()
    assert "answered an ACME TLS-ALPN-01 validation" in log, log


def test_renew_without_acme_is_an_error(tmp_path):
    y = Yubin(tmp_path / "y")
    res = y.cli("tls", "renew", check=False)
    assert res.returncode == 1
    assert "no [tls] acme" in res.stderr
    res = y.cli("tls", "status")
    assert "source:      self-signed" in res.stdout


def test_renewal_before_expiry_without_a_restart(setup_factory):
    """pebble issues 10-day certificates; with renew_before_days = 30 every check renews, so
    the running server replaces its certificate by itself."""
    setup = setup_factory(
        "tls-alpn-01",
        acme_extra=", renew_before_days = 30, check_interval_secs = 2",
        validity_secs=10 * 86400,
    )
    setup.yubin.start()
    first = check_issued(setup)
    lifetime = first.not_valid_after_utc - first.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=10, hours=1), lifetime
    root = setup.pebble_pem("roots")
    deadline = time.time() + 60
    while served_chain(setup.yubin.ports["imaps"], root).serial_number == first.serial_number:
        assert time.time() < deadline, setup.logs()
        time.sleep(0.5)
    assert setup.yubin.proc.poll() is None


def test_names_that_fail_validation_are_left_out(setup_factory):
    """autodiscover.example.com does not resolve: pebble refuses that authorization; yubin
    says so and takes a certificate for the names that passed."""
    missing = "autodiscover.example.com"
    setup = setup_factory("http-01", resolvable=NAMES - {missing})
    setup.yubin.start()
    check_issued(setup, names=NAMES - {missing})
    log = setup.yubin.logs()
    assert "some names failed validation" in log and missing in log, log


def test_sighup_reloads_configured_files(tmp_path):
    """[tls] cert/key replaced on disk: after SIGHUP new connections get the new certificate."""
    first, second = make_ca(tmp_path / "a"), make_ca(tmp_path / "b")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(first[1].read_bytes())
    key.write_bytes(first[2].read_bytes())
    y = Yubin(tmp_path / "y", extra_config=f'[tls]\ncert = "{cert}"\nkey = "{key}"\n')
    y.start()
    try:
        before = unverified_leaf(y.ports["imaps"])
        assert before == x509.load_pem_x509_certificate(first[1].read_bytes())
        cert.write_bytes(second[1].read_bytes())
        key.write_bytes(second[2].read_bytes())
        y.proc.send_signal(signal.SIGHUP)
        want = x509.load_pem_x509_certificate(second[1].read_bytes())
        deadline = time.time() + 10
        while unverified_leaf(y.ports["imaps"]) != want:
            assert time.time() < deadline, y.logs()
            time.sleep(0.1)
        assert y.proc.poll() is None
        # A broken file is refused and the current certificate stays.
        key.write_text("garbage")
        y.proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert unverified_leaf(y.ports["imaps"]) == want
        assert "cannot reload the TLS certificate" in y.logs()
        status = y.cli("tls", "status").stdout
        assert "source:      files" in status, status
    finally:
        y.stop()

"""Prometheus metrics at /metrics on the real web listeners: traffic over SMTP, IMAP and POP3,
then a scrape with curl parsed by prometheus_client's own parser, and every counter checked to
have moved by exactly the traffic sent. Access control: loopback by default, 403 for an address
that is not allowed and for a wrong token, 200 with the right token."""

import imaplib
import poplib
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import PASSWORD, Yubin, free_port

TOKEN = "s3cret-token-0123456789"


def make(tmp, name, extra=""):
    y = Yubin(Path(tmp) / name, extra_config=extra)
    y.ports["https"] = free_port()
    y.ports["http"] = free_port()
    y.write_config()
    y.cli("domain", "add", "example.com")
    y.cli("user", "add", "alice@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    return y.start()


@pytest.fixture
def tmp():
    d = tempfile.TemporaryDirectory(prefix="yubin-test-")
    yield d.name
    d.cleanup()


def fetch(y, *args, tls=True):
    """(status, body) of GET /metrics with curl."""
    url = f"https://127.0.0.1:{y.ports['https']}/metrics" if tls else f"http://127.0.0.1:{y.ports['http']}/metrics"
    out = subprocess.run(
        ["curl", "-sk", "-o", "-", "-w", "\n%{http_code}", *args, url],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    body, _, status = out.rpartition("\n")
    return int(status), body


def scrape(y, *args, tls=True):
    """The samples as {(name, frozenset(labels)): value}, parsed by prometheus_client."""
    status, body = fetch(y, *args, tls=tls)
    assert status == 200, body
    samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = s.value
    return samples


def value(samples, name, **labels):
    """A series' value; a series not yet created counts as 0."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before, after, name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


def test_traffic_moves_each_counter_by_exactly_what_was_sent(tmp):
    y = make(tmp, "s0")
    try:
        before = scrape(y)
        # The exposition names the process and its metric types.
        assert value(before, "yubin_start_time_seconds") > 1.7e9

        # Three messages in one SMTP session on the MX port.
        with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=10) as s:
            s.ehlo("client.test")
            for i in range(3):
                s.sendmail("carol@sender.test", ["alice@example.com"], f"Subject: m{i}\r\n\r\nbody {i}\r\n")
        # A second session: one unknown user, one relay attempt; nothing accepted.
        with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=10) as s:
            s.ehlo("client.test")
            s.mail("carol@sender.test")
            assert s.rcpt("nobody@example.com")[0] == 550
            assert s.rcpt("someone@elsewhere.test")[0] == 550
            s.rset()
        # SMTP AUTH PLAIN on the submission port: a wrong password, then the right one.
        with smtplib.SMTP("127.0.0.1", y.ports["submission"], timeout=10) as s:
            s.ehlo("client.test")
            s.user, s.password = "alice@example.com", "wrong password"
            with pytest.raises(smtplib.SMTPAuthenticationError):
                s.auth("PLAIN", s.auth_plain)
            s.password = PASSWORD
            assert s.auth("PLAIN", s.auth_plain)[0] == 235
        # IMAP: one failed login, then a good one.
        im = imaplib.IMAP4("127.0.0.1", y.ports["imap"])
        im.starttls()
        with pytest.raises(imaplib.IMAP4.error):
            im.login("alice@example.com", "wrong password")
        im.login("alice@example.com", PASSWORD)
        im.select("INBOX")
        im.logout()
        # POP3: USER/PASS, STAT, QUIT.
        p = poplib.POP3("127.0.0.1", y.ports["pop3"], timeout=10)
        p.stls()
        p.user("alice@example.com")
        p.pass_(PASSWORD)
        assert p.stat()[0] == 3
        p.quit()

        # Connections close asynchronously: wait until none is counted open but this scrape.
        deadline = time.time() + 10
        while True:
            after = scrape(y)
            open_now = sum(v for (n, _), v in after.items() if n == "yubin_connections_open")
            if open_now == 1 or time.time() > deadline:
                break
            time.sleep(0.1)
        assert open_now == 1, "only the scrape itself is open"

        assert delta(before, after, "yubin_smtp_messages_accepted_total") == 3
        assert delta(before, after, "yubin_smtp_rejections_total", reason="unknown_user") == 1
        assert delta(before, after, "yubin_smtp_rejections_total", reason="relay_denied") == 1
        assert delta(before, after, "yubin_connections_accepted_total", protocol="smtp", listener="smtp") == 2
        assert delta(before, after, "yubin_connections_accepted_total", protocol="imap", listener="imap") == 1
        assert delta(before, after, "yubin_connections_accepted_total", protocol="pop3", listener="pop3") == 1
        # The second scrape's own connection.
        assert delta(before, after, "yubin_connections_accepted_total", protocol="http", listener="https") == 1

        count = "yubin_command_duration_seconds_count"
        assert delta(before, after, count, protocol="smtp", command="DATA") == 3
        assert delta(before, after, count, protocol="smtp", command="MAIL") == 4
        assert delta(before, after, count, protocol="smtp", command="RCPT") == 5
        assert delta(before, after, count, protocol="smtp", command="EHLO") == 3
        assert delta(before, after, count, protocol="smtp", command="QUIT") == 3
        assert delta(before, after, count, protocol="imap", command="LOGIN") == 2
        assert delta(before, after, count, protocol="imap", command="SELECT") == 1
        assert delta(before, after, count, protocol="pop3", command="STAT") == 1
        assert delta(before, after, count, protocol="pop3", command="PASS") == 1
        # Buckets are cumulative and end with +Inf = count.
        inf = value(after, "yubin_command_duration_seconds_bucket", protocol="smtp", command="DATA", le="+Inf")
        assert inf == value(after, count, protocol="smtp", command="DATA")

        auth = "yubin_auth_attempts_total"
        assert delta(before, after, auth, protocol="imap", mechanism="password", result="failure") == 1
        assert delta(before, after, auth, protocol="imap", mechanism="password", result="success") == 1
        assert delta(before, after, auth, protocol="pop3", mechanism="password", result="success") == 1
        assert delta(before, after, auth, protocol="pop3", mechanism="password", result="failure") == 0
        assert delta(before, after, auth, protocol="smtp", mechanism="PLAIN", result="failure") == 1
        assert delta(before, after, auth, protocol="smtp", mechanism="PLAIN", result="success") == 1
        assert delta(before, after, count, protocol="smtp", command="AUTH") == 2
        assert delta(before, after, "yubin_connections_accepted_total", protocol="smtp", listener="submission") == 1

        assert delta(before, after, "yubin_store_operation_duration_seconds_count", operation="deliver") == 3
        assert value(after, "yubin_queue_messages") == 0
        assert value(after, "yubin_queue_oldest_message_age_seconds") == 0
        assert value(after, "yubin_bans_active") == 0
        # No label carries an address or a user name.
        for (name, labels) in after:
            for _, v in labels:
                assert "@" not in v and "127.0.0.1" not in v, (name, labels)

        # Plain HTTP serves the endpoint too (Prometheus scrapes it on private networks).
        assert "yubin_smtp_messages_accepted_total 3" in fetch(y, tls=False)[1]
    finally:
        y.stop()


def test_access_needs_an_allowed_address_or_the_token(tmp):
    y = make(tmp, "s0", f'[metrics]\nallow = []\ntoken = "{TOKEN}"\n')
    try:
        status, body = fetch(y)
        assert (status, body) == (403, "forbidden\n")
        assert fetch(y, "-H", "Authorization: Bearer wrong-token-0123456789")[0] == 403
        assert fetch(y, "-H", f"Authorization: Basic {TOKEN}")[0] == 403
        status, body = fetch(y, "-H", f"Authorization: Bearer {TOKEN}")
        assert status == 200
        assert "# TYPE yubin_connections_accepted_total counter" in body
        assert scrape(y, "-H", f"authorization: bearer {TOKEN}", tls=False)
        # Other methods are refused whoever asks.
        assert fetch(y, "-X", "POST", "-H", f"Authorization: Bearer {TOKEN}")[0] == 405
    finally:
        y.stop()


def test_loopback_refused_when_trusted_networks_is_empty(tmp):
    y = make(tmp, "s0", "[limits]\ntrusted_networks = []\n")
    try:
        assert fetch(y)[0] == 403
        # A token is not configured, so none is accepted.
        assert fetch(y, "-H", f"Authorization: Bearer {TOKEN}")[0] == 403
    finally:
        y.stop()


def test_disabled_metrics_are_not_served(tmp):
    y = make(tmp, "s0", "[metrics]\nenabled = false\n")
    try:
        # The path is then an ordinary unknown path.
        assert fetch(y)[0] == 404
    finally:
        y.stop()


def test_docs_and_dashboard_name_only_real_metrics(tmp):
    """docs/metrics.md lists every metric the server exposes, and the Grafana dashboard queries
    only documented metrics."""
    import json
    import re

    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `(yubin_\w+)`", doc, re.M))
    y = make(tmp, "s0")
    try:
        with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=10) as s:
            s.sendmail("carol@sender.test", ["alice@example.com"], "Subject: x\r\n\r\nx\r\n")
        status, body = fetch(y)
    finally:
        y.stop()
    exposed = {f.name + ("_total" if f.type == "counter" else "") for f in text_string_to_metric_families(body)}
    assert exposed - documented == set()
    dashboard = json.loads((root / "docs" / "grafana-dashboard.json").read_text())
    queried = set()
    for panel in dashboard["panels"]:
        for t in panel["targets"]:
            queried |= {re.sub(r"_(bucket|count|sum)$", "", m) for m in re.findall(r"yubin_\w+", t["expr"])}
    assert queried and queried - documented == set()
    # Every documented metric is on the dashboard but the start time (used by its variable).
    assert documented - queried == {"yubin_start_time_seconds"}


def wait_admitted(y, *args):
    """Waits (10 s at most) until /metrics answers 200: over the per-address limit the HTTPS
    port closes before the handshake (curl exit 35)."""
    deadline = time.time() + 10
    while True:
        try:
            status, _ = fetch(y, *args)
        except subprocess.CalledProcessError:
            status = 0
        if status == 200 or time.time() > deadline:
            return
        time.sleep(0.1)


def test_refused_connections_are_counted_by_reason(tmp):
    y = make(tmp, "s0", f'[limits]\ntrusted_networks = []\nmax_connections_per_ip = 2\n[metrics]\ntoken = "{TOKEN}"\n')
    # The scrapes come from another loopback address, so that their own HTTPS connections
    # (which the server sees close a moment after curl exits) never take one of the two slots
    # of 127.0.0.1, which the test fills on purpose.
    auth = ("-H", f"Authorization: Bearer {TOKEN}", "--interface", "127.0.0.2")

    def others_open(samples):
        """Connections open at the scrape besides the scrape's own."""
        return sum(v for (n, _), v in samples.items() if n == "yubin_connections_open") - 1

    try:
        # The start-up probes of the ports hold 127.0.0.1's slots until the server has seen
        # them close: wait until nothing but the scrape is open.
        wait_admitted(y, *auth)
        deadline = time.time() + 10
        while others_open(before := scrape(y, *auth)) > 0:
            assert time.time() < deadline, "the start-up probes never closed"
            time.sleep(0.1)
        held = [y.connect("smtp"), y.connect("smtp")]
        for s in held:
            assert s.recv(512).startswith(b"220")
        with y.connect("smtp") as third:
            assert third.recv(512).startswith(b"421 4.7.0")
        for s in held:
            s.close()
        after = scrape(y, *auth)
        refused = "yubin_connections_refused_total"
        assert delta(before, after, refused, protocol="smtp", listener="smtp", reason="limit") == 1
        assert delta(before, after, refused, protocol="smtp", listener="smtp", reason="banned") == 0
        # Refused connections are not counted as accepted.
        assert delta(before, after, "yubin_connections_accepted_total", protocol="smtp", listener="smtp") == 2
    finally:
        y.stop()


def test_task_gauge_rises_with_sessions_and_returns_to_idle(tmp):
    """yubin_tokio_tasks_alive (read at each scrape) counts a task per open session and falls
    back to its idle value when the sessions close: the soak run (docs/soak.md) relies on it to
    tell a task leak from load."""
    y = make(tmp, "s0")

    def tasks():
        return value(scrape(y, tls=False), "yubin_tokio_tasks_alive")

    def settle(at_most, timeout=10):
        deadline = time.time() + timeout
        while True:
            n = tasks()
            if n <= at_most or time.time() > deadline:
                return n
            time.sleep(0.2)

    try:
        # The start-up probes' connections end within a moment; a background loop may wake
        # during one scrape, so the idle value is the least of a few.
        wait_admitted(y)
        idle = min(tasks() for _ in range(5))
        assert idle > 0
        held = []
        for listener in ("imap", "pop3", "smtp", "imap", "pop3"):
            s = y.connect(listener)
            s.recv(1024)  # the greeting: the session is running
            held.append(s)
        assert tasks() >= idle + len(held)
        for s in held:
            s.close()
        assert settle(idle) == idle
    finally:
        y.stop()

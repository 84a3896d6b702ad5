"""The audit trail: refused relaying, failed logins and every delivery attempt's result are
single log lines with an `event` field — as text by default, or one JSON object per line with
`[log] format = "json"`."""

import imaplib
import json
import time

import pytest

from conftest import Transcript
from test_outbound import FakeSmtp, queue_config, submit


def events(server, name):
    """The JSON log records of one event (every line must be JSON)."""
    out = []
    for line in server.logs().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if record.get("event") == name:
            out.append(record)
    return out


def wait_for_events(server, name, n=1, timeout=20):
    deadline = time.time() + timeout
    while True:
        found = events(server, name)
        if len(found) >= n or time.time() > deadline:
            return found
        time.sleep(0.2)


def test_json_lines_for_relay_attempts_failed_logins_and_deliveries(make_server):
    fake = FakeSmtp(b"550 5.1.1 no such user here", fail_times=1)
    try:
        server = make_server(extra_config=queue_config(fake.port) + '\n[log]\nformat = "json"\n')
        t = Transcript(server.connect("smtp"))
        t.smtp_reply()
        t.cmd(b"EHLO stranger.test\r\n")
        assert t.cmd(b"MAIL FROM:<x@stranger.test>\r\n").startswith(b"250")
        assert t.cmd(b"RCPT TO:<victim@elsewhere.test>\r\n").startswith(b"550 5.7.1")
        t.cmd(b"QUIT\r\n")
        imap = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
        with pytest.raises(imaplib.IMAP4.error):
            imap.login("alice@example.com", "not her password")
        imap.logout()
        # The fake refuses the first delivery for good (550): a bounce.
        submit(server, "nobody@b.test", subject="audited")

        [relay] = wait_for_events(server, "relay_refused")
        assert relay["ip"] == "127.0.0.1"
        assert relay["recipient"] == "victim@elsewhere.test"
        assert relay["level"] == "WARN"
        [failure] = wait_for_events(server, "auth_failure")
        assert failure["user"] == "alice@example.com"
        assert "not her password" not in server.logs(), "a password was logged"
        [bounce] = wait_for_events(server, "bounced")
        assert bounce["recipient"] == "nobody@b.test"
        assert bounce["attempt"] == 1
        assert "550 5.1.1" in bounce["reply"]
    finally:
        fake.stop()


def test_text_lines_carry_the_event_field(make_server):
    fake = FakeSmtp(b"250 2.0.0 ok")
    try:
        server = make_server(extra_config=queue_config(fake.port))
        submit(server, "someone@b.test", subject="plain")
        deadline = time.time() + 20
        while "event=delivered" not in server.logs():
            assert time.time() < deadline, server.logs()
            time.sleep(0.2)
        line = next(l for l in server.logs().splitlines() if "event=delivered" in l)
        assert "recipient=someone@b.test" in line
        assert "queue_id=" in line
    finally:
        fake.stop()

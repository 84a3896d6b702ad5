"""Hostile-input corpus, relay side of SMTP smuggling (docs/hostile-inputs.md): a message whose
text holds a bare-LF or bare-CR end-of-data lookalike is stored as one message (test_hostile.py);
when yubin relays it to another server it must not pass the bare line ends on, or a receiver
that takes a bare LF for a line end would see the message end there and run the smuggled
commands as if yubin had sent them (the Dec 2023 advisories; RFC 5321 §2.3.8: an SMTP client
MUST NOT transmit a bare CR or LF)."""

import base64
import re
import time

import pytest

from conftest import PASSWORD, Transcript
from test_outbound import FakeSmtp, queue_config

SMUGGLING = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r"]


def submit_raw(server, body: bytes):
    """AUTH PLAIN over plain text from loopback (allowed by default) and DATA with `body`
    exactly as given (smtplib would rewrite its line ends)."""
    t = Transcript(server.connect("submission"))
    assert t.smtp_reply().startswith(b"220")
    assert t.cmd(b"EHLO client.test\r\n").startswith(b"250")
    auth = base64.b64encode(b"\0alice@example.com\0" + PASSWORD.encode())
    assert t.cmd(b"AUTH PLAIN " + auth + b"\r\n").startswith(b"235")
    assert t.cmd(b"MAIL FROM:<alice@example.com>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<carol@b.test>\r\n").startswith(b"250")
    assert t.cmd(b"DATA\r\n").startswith(b"354")
    assert t.cmd(body + b"\r\n.\r\n").startswith(b"250")
    t.cmd(b"QUIT\r\n")


@pytest.mark.parametrize("end", SMUGGLING, ids=lambda b: b.decode().replace("\r", "CR").replace("\n", "LF"))
def test_relayed_message_carries_no_bare_line_ends(make_server, end):
    remote = FakeSmtp(b"250 ok")
    try:
        a = make_server(extra_config=queue_config(remote.port))
        body = (b"From: alice@example.com\r\nTo: carol@b.test\r\nSubject: carrier\r\n\r\ncarrier text" + end
                + b"MAIL FROM:<ceo@victim.test>\r\nRCPT TO:<carol@b.test>\r\nDATA\r\n"
                + b"From: ceo@victim.test\r\nSubject: smuggled\r\n\r\nsmuggled text")
        submit_raw(a, body)
        deadline = time.time() + 30
        while not remote.received and time.time() < deadline:
            time.sleep(0.2)
        assert len(remote.received) == 1, a.logs()[-3000:]
        wire = remote.received[0]
        # Every CR is followed by LF and every LF preceded by CR: no bare line end to be read
        # as the end of the data by any receiver.
        assert re.search(rb"\r(?!\n)|(?<!\r)\n", wire) is None, wire
        assert b"smuggled text" in wire and b"MAIL FROM:<ceo@victim.test>" in wire
        # The fake server saw one message whose end is the real one.
        assert wire.endswith(b"smuggled text\r\n.\r\n"), wire[-200:]
    finally:
        remote.stop()

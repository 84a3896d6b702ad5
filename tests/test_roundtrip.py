"""The first end-to-end path: mail arrives over SMTP, the user downloads it over POP3."""

import poplib
import smtplib
import subprocess

from conftest import PASSWORD, client_tls

MESSAGE = (
    b"From: Carol <carol@sender.test>\r\n"
    b"To: alice@example.com, team@example.com\r\n"
    b"Subject: round trip\r\n"
    b"Message-ID: <rt-1@sender.test>\r\n"
    b"\r\n"
    b"Hello Alice,\r\n"
    b".a line that starts with a dot\r\n"
    b"..two dots\r\n"
    b"\r\n"
    b"caf\xc3\xa9 8-bit body\r\n"
)


def pop3s(server, user):
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls(), timeout=10)
    p.user(user)
    p.pass_(PASSWORD)
    return p


def retr_all(p):
    count, _ = p.stat()
    return [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, count + 1)]


def split_trace(stored: bytes):
    """Returns (trace headers, original message) of a stored message."""
    assert stored.startswith(b"Return-Path: <carol@sender.test>\r\n"), stored[:200]
    i = stored.index(b"From: Carol")
    return stored[:i], stored[i:]


def test_smtp_starttls_to_user_and_alias_then_pop3s(server):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        s.ehlo("client.sender.test")
        assert s.has_extn("starttls")
        s.starttls(context=client_tls())
        s.ehlo("client.sender.test")
        refused = s.sendmail("carol@sender.test", ["alice@example.com", "team@example.com"], MESSAGE)
        assert refused == {}

    p = pop3s(server, "alice@example.com")
    alice = retr_all(p)
    p.quit()
    # alice is a direct recipient and a member of team@: one copy in her INBOX.
    assert len(alice) == 1
    trace, body = split_trace(alice[0])
    assert body == MESSAGE
    assert b"Received: from client.sender.test" in trace
    assert b"by mail.example.com" in trace
    assert b"with ESMTPS" in trace

    p = pop3s(server, "bob@example.com")
    bob = retr_all(p)
    p.quit()
    assert len(bob) == 1
    assert split_trace(bob[0])[1] == MESSAGE


def test_newcomer_path_with_curl(server, tmp_path):
    """README's quick start: send with curl smtp://, read with curl pop3s:// (a client nobody here wrote)."""
    msg = tmp_path / "mail.txt"
    msg.write_bytes(b"From: carol@sender.test\r\nTo: alice@example.com\r\nSubject: via curl\r\n\r\nHi from curl\r\n")
    res = subprocess.run(
        ["curl", "-sS", f"smtp://127.0.0.1:{server.ports['smtp']}", "--mail-from", "carol@sender.test",
         "--mail-rcpt", "alice@example.com", "--upload-file", str(msg)],
        capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr
    res = subprocess.run(
        ["curl", "-sS", "-k", f"pop3s://127.0.0.1:{server.ports['pop3s']}/1",
         "--user", f"alice@example.com:{PASSWORD}"],
        capture_output=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert b"Subject: via curl" in res.stdout
    assert b"Hi from curl" in res.stdout


def test_restart_keeps_messages_uidls_and_accounts(server):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        for i in range(3):
            s.sendmail("carol@sender.test", ["alice@example.com"], MESSAGE.replace(b"round trip", b"msg %d" % i))
    p = pop3s(server, "alice@example.com")
    uidls_before = p.uidl()[1]
    p.quit()
    assert len(uidls_before) == 3

    assert server.stop() == 0
    server.start()

    assert "alice@example.com" in server.cli("user", "list").stdout
    p = pop3s(server, "alice@example.com")
    assert p.uidl()[1] == uidls_before
    msgs = retr_all(p)
    p.quit()
    assert [b"Subject: msg %d" % i in m for i, m in enumerate(msgs)] == [True] * 3


def test_uidl_stable_and_leave_copy_on_server(server):
    """'Leave a copy on the server': UIDLs are the same in every session; new mail gets new ones."""
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        s.sendmail("carol@sender.test", ["alice@example.com"], MESSAGE)
    p = pop3s(server, "alice@example.com")
    first = p.uidl()[1]
    p.quit()
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        s.sendmail("carol@sender.test", ["alice@example.com"], MESSAGE)
    p = pop3s(server, "alice@example.com")
    second = p.uidl()[1]
    p.quit()
    ids1 = [line.split()[1] for line in first]
    ids2 = [line.split()[1] for line in second]
    assert ids2[0] == ids1[0]
    assert len(ids2) == 2 and ids2[1] != ids1[0]

"""POP3 (RFC 1939, 2449, 2595, 5034) driven by poplib and raw transcripts."""

import base64
import poplib
import smtplib
import time

import pytest

from conftest import PASSWORD, Transcript, client_tls


def deliver(server, n=1, to="alice@example.com", body=b"body line\r\n"):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        for i in range(n):
            s.sendmail("carol@sender.test", [to], b"Subject: m%d\r\n\r\n" % i + body)


def login_pop3s(server, user="alice@example.com"):
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls(), timeout=10)
    p.user(user)
    p.pass_(PASSWORD)
    return p


def test_stls_capa_and_commands(server):
    deliver(server, 3, body=b"line one\r\n.dotted line\r\nline three\r\n")
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    assert "STLS" in p.capa()
    p.stls(context=client_tls())
    capa = p.capa()
    assert "STLS" not in capa and "UIDL" in capa and "TOP" in capa and "RESP-CODES" in capa
    p.user("alice@example.com")
    p.pass_(PASSWORD)
    count, size = p.stat()
    assert count == 3 and size > 0
    listing = p.list()[1]
    assert len(listing) == 3 and sum(int(x.split()[1]) for x in listing) == size
    lines = p.retr(2)[1]
    assert b".dotted line" in lines  # poplib un-stuffs: the server stuffed it
    top = p.top(1, 1)[1]
    assert top[-1] == b"line one" and b"" in top
    p.dele(1)
    with pytest.raises(poplib.error_proto):
        p.retr(1)
    assert p.stat()[0] == 2
    p.rset()
    assert p.stat()[0] == 3
    p.dele(1)
    p.quit()
    p = login_pop3s(server)
    assert p.stat()[0] == 2
    p.quit()


def test_disconnect_without_quit_deletes_nothing(server):
    deliver(server, 2)
    p = login_pop3s(server)
    p.dele(1)
    p.dele(2)
    p.close()  # drop the connection without QUIT
    # The server releases the maildrop lock once it sees the disconnect.
    deadline = time.time() + 5
    while True:
        try:
            p = login_pop3s(server)
            break
        except poplib.error_proto as e:
            assert b"[IN-USE]" in e.args[0] and time.time() < deadline
            time.sleep(0.1)
    assert p.stat()[0] == 2
    p.quit()


def test_second_login_gets_in_use(server):
    deliver(server)
    first = login_pop3s(server)
    second = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls(), timeout=10)
    second.user("alice@example.com")
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_(PASSWORD)
    first.quit()
    third = login_pop3s(server)
    third.quit()


def test_snapshot_at_login(server):
    deliver(server)
    p = login_pop3s(server)
    deliver(server)
    assert p.stat()[0] == 1
    p.quit()
    p = login_pop3s(server)
    assert p.stat()[0] == 2
    p.quit()


def test_auth_plain_with_initial_response_and_bad_password(server):
    t = Transcript(server.connect("pop3s"))
    assert t.line().startswith(b"+OK")
    bad = base64.b64encode(b"\0alice@example.com\0nope")
    t.send(b"AUTH PLAIN " + bad + b"\r\n")
    assert t.line().startswith(b"-ERR [AUTH]")
    good = base64.b64encode(b"\0alice@example.com\0" + PASSWORD.encode())
    t.send(b"AUTH PLAIN " + good + b"\r\n")
    assert t.line().startswith(b"+OK")
    t.send(b"STAT\r\n")
    assert t.line().startswith(b"+OK 0 0")


def test_pipelined_bytes_after_stls_are_discarded(server):
    t = Transcript(server.connect("pop3"))
    t.line()
    t.send(b"STLS\r\nUSER alice@example.com\r\n")
    assert t.line().startswith(b"+OK")
    tls = Transcript(client_tls().wrap_socket(t.sock))
    tls.send(b"PASS " + PASSWORD.encode() + b"\r\n")
    # Without the discarded USER, PASS is out of sequence.
    assert tls.line().startswith(b"-ERR")


def test_overlong_line_and_bad_commands(server):
    t = Transcript(server.connect("pop3"))
    t.line()
    t.send(b"USER " + b"a" * 5000 + b"\r\n")
    assert t.line().startswith(b"-ERR")
    t.send(b"BOGUS\r\n")
    assert t.line().startswith(b"-ERR")
    t.send(b"STAT\r\n")
    assert t.line().startswith(b"-ERR")
    t.send(b"CAPA\r\n")
    assert t.line().startswith(b"+OK")
    while t.line() != b".\r\n":
        pass
    t.send(b"QUIT\r\n")
    assert t.line().startswith(b"+OK")


def _rss_kib(pid: int, field: str) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def test_retr_of_a_50_mb_message_streams(make_server):
    """RFC 1939 RETR of a 50 MB message must not hold the message in memory."""
    server = make_server("[limits]\nmax_message_size = 60000000\n")
    line = b"x" * 998 + b"\r\n"
    body = b"Subject: big\r\n\r\n" + line * (50 * 1024 * 1024 // len(line))
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=120) as s:
        s.sendmail("carol@sender.test", ["alice@example.com"], body)
    pid = server.proc.pid
    p = login_pop3s(server)
    time.sleep(0.5)
    # Reset the peak-RSS counter (Linux): what follows is the RETR alone.
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    before = _rss_kib(pid, "VmRSS")
    received = 0
    p._putcmd("RETR 1")
    assert p._getresp().startswith(b"+OK")
    while True:
        chunk, _ = p._getline()
        if chunk == b".":
            break
        received += len(chunk) + 2
    p.quit()
    peak = _rss_kib(pid, "VmHWM")
    assert received >= len(body)
    # The message is 50 MiB; streaming needs a few chunk buffers, not the message.
    assert peak - before < 16 * 1024, f"RSS grew by {peak - before} KiB during RETR"

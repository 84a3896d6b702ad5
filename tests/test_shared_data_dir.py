"""Two `yubin serve` processes on the SAME data directory (different ports), as two nodes of one
store: what must be exclusive or agreed on lives in the database, not in a process's memory —
the POP3 maildrop lock (RFC 1939 §8, a lease that expires when its process is killed), IMAP
\\Recent (RFC 3501 §2.3.2) and the secret behind unknown users' SCRAM salts."""

import base64
import imaplib
import poplib
import signal
import smtplib
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, Transcript, Yubin

LEASE_SECS = 3
LIMITS = f"[limits]\npop3_maildrop_lease_secs = {LEASE_SECS}\n"
IN_USE = b"-ERR [IN-USE] maildrop is locked by another session, try again later"


@pytest.fixture
def pair(make_server):
    """Servers A and B on one data directory, with a short maildrop lease."""
    a = make_server(extra_config=LIMITS)
    b = Yubin(Path(a.dir).parent / "b", LIMITS)
    b.data = a.data
    b.write_config()
    b.start()
    yield a, b
    b.stop()


def deliver(server, subject="hello"):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        s.sendmail("x@example.net", ["alice@example.com"],
                   f"Subject: {subject}\r\n\r\nbody\r\n".encode())


def pop3_login(server) -> poplib.POP3:
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    p.user("alice@example.com")
    p.pass_(PASSWORD)
    return p


def refused(server) -> bytes:
    """The reply to a POP3 login that must fail."""
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    p.user("alice@example.com")
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(PASSWORD)
    p.quit()
    return e.value.args[0]


def test_pop3_lock_holds_across_processes_and_expires_after_kill(pair):
    a, b = pair
    deliver(a)
    pa = pop3_login(a)
    assert pa.stat()[0] == 1
    assert pa.dele(1).startswith(b"+OK")
    assert refused(b) == IN_USE
    # Longer than the lease: A's session renews it.
    time.sleep(LEASE_SECS + 1)
    assert refused(b) == IN_USE
    a.stop(signal.SIGKILL)
    killed = time.monotonic()
    assert refused(b) == IN_USE, "the dead holder's lease runs until it expires"
    # RFC 1939 §8 across processes: once the lease expires, B gets the maildrop.
    while True:
        try:
            pb = pop3_login(b)
            break
        except poplib.error_proto as e:
            assert e.args[0] == IN_USE
            assert time.monotonic() - killed < LEASE_SECS + 5, "lease never expired"
            time.sleep(0.2)
    assert time.monotonic() - killed > 0.5
    # A never reached UPDATE: its DELE is forgotten.
    assert pb.stat()[0] == 1
    pb.quit()


def test_quit_on_one_process_frees_the_maildrop_on_the_other_at_once(pair):
    a, b = pair
    pb = pop3_login(b)
    assert refused(a) == IN_USE
    pb.quit()
    pop3_login(a).quit()
    pop3_login(b).quit()


def test_recent_is_claimed_once_across_processes(pair):
    a, b = pair
    deliver(a, "one")
    ia = imaplib.IMAP4("127.0.0.1", a.ports["imap"])
    ia.login("alice@example.com", PASSWORD)
    ia.select("INBOX")
    assert ia.response("RECENT") == ("RECENT", [b"1"])
    ib = imaplib.IMAP4("127.0.0.1", b.ports["imap"])
    ib.login("alice@example.com", PASSWORD)
    ib.select("INBOX")
    assert ib.response("RECENT") == ("RECENT", [b"0"])
    typ, data = ib.fetch("1", "(FLAGS)")
    assert b"\\Recent" not in data[0], data
    ia.logout()
    ib.logout()


def test_append_to_the_selected_mailbox_is_recent_for_the_appender_only(pair):
    """The appending session claims \\Recent with its APPEND (one store write); a session of
    the other process, selected on the same mailbox, is told of the message without it."""
    a, b = pair
    ia = imaplib.IMAP4("127.0.0.1", a.ports["imap"])
    ia.login("alice@example.com", PASSWORD)
    ia.select("INBOX")
    ib = imaplib.IMAP4("127.0.0.1", b.ports["imap"])
    ib.login("alice@example.com", PASSWORD)
    ib.select("INBOX")
    for c in (ia, ib):  # SELECT's answers, cleared
        c.response("EXISTS")
        c.response("RECENT")
    typ, data = ia.append("INBOX", None, None, b"Subject: mine\r\n\r\nbody\r\n")
    assert typ == "OK", data
    assert ia.response("EXISTS") == ("EXISTS", [b"1"])
    assert ia.response("RECENT") == ("RECENT", [b"1"])
    typ, data = ia.fetch("1", "(FLAGS)")
    assert data == [b"1 (FLAGS (\\Recent))"], data
    # B hears of it within the change log's poll.
    deadline = time.monotonic() + 5
    while ib.response("EXISTS") != ("EXISTS", [b"1"]):
        assert time.monotonic() < deadline, "B was never told"
        time.sleep(0.05)
        ib.noop()
    assert ib.response("RECENT") == ("RECENT", [b"0"])
    typ, data = ib.fetch("1", "(FLAGS)")
    assert data == [b"1 (FLAGS ())"], data
    ia.logout()
    ib.logout()


def scram_salt(server, user: str) -> bytes:
    """The salt of the server-first message for `user` (RFC 5802 §5.1) on submissions."""
    t = Transcript(server.connect("submissions"))
    t.smtp_reply()
    t.cmd(b"EHLO c\r\n")
    first = base64.b64encode(f"n,,n={user},r=pyClientNonce0123".encode())
    reply = t.cmd(b"AUTH SCRAM-SHA-256 " + first + b"\r\n")
    assert reply.startswith(b"334 "), reply
    server_first = base64.b64decode(reply[4:].strip()).decode()
    attrs = dict(x.split("=", 1) for x in server_first.split(","))
    t.cmd(b"*\r\n")
    return base64.b64decode(attrs["s"])


def test_unknown_users_get_the_same_scram_salt_from_both_processes(pair):
    a, b = pair
    ghost = "nobody@example.com"
    salt = scram_salt(a, ghost)
    assert scram_salt(b, ghost) == salt, "a salt differing by node betrays a missing user"
    assert scram_salt(a, ghost) == salt
    assert scram_salt(b, "other-ghost@example.com") != salt
    # A real user's salt is the stored one, the same on both.
    assert scram_salt(a, "alice@example.com") == scram_salt(b, "alice@example.com")
    # Restarted, B still answers with it.
    b.stop()
    b.start()
    assert scram_salt(b, ghost) == salt

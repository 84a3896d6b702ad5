"""Admin commands run beside a live server (another process on the same data directory): what
they change reaches the server's open IMAP sessions through the store's durable change log
(issue 8), not just the next login."""

import imaplib
import socket
import time

from conftest import PASSWORD, Transcript, client_tls


def imap_session(server, user):
    t = Transcript(server.connect("imaps"))
    t.sock.settimeout(10)
    assert t.line().startswith(b"* OK")
    t.send(b"a LOGIN %s \"%s\"\r\n" % (user.encode(), PASSWORD.encode()))
    assert read_until(t, b"a ").startswith(b"a OK"), "login"
    return t


def read_until(t, prefix, limit=200):
    """Reads lines until one starts with `prefix`; returns it."""
    seen = []
    for _ in range(limit):
        line = t.line()
        if line.startswith(prefix):
            return line
        seen.append(line)
    raise AssertionError(f"{prefix!r} not in {seen!r}")


def test_cli_delivery_reaches_an_idle_session_at_once(server):
    t = imap_session(server, "alice@example.com")
    t.send(b"s SELECT INBOX\r\n")
    assert read_until(t, b"* 0 EXISTS")
    read_until(t, b"s OK")
    t.send(b"i IDLE\r\n")
    assert t.line().startswith(b"+ ")

    started = time.monotonic()
    res = server.cli(
        "deliver",
        "alice@example.com",
        stdin="From: cron@example.com\nSubject: nightly report\n\nall good\n",
    )
    assert res.returncode == 0, res.stderr
    assert read_until(t, b"* ") == b"* 1 EXISTS\r\n"
    # The follower polls every 50 ms; well under a second even on a loaded machine.
    assert time.monotonic() - started < 5
    t.send(b"DONE\r\n")
    read_until(t, b"i OK")

    # Stored with CRLF line ends, byte for byte.
    m = imaplib.IMAP4_SSL(
        "127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=10
    )
    m.login("alice@example.com", PASSWORD)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK"
    assert data[0][1] == (
        b"From: cron@example.com\r\nSubject: nightly report\r\n\r\nall good\r\n"
    )
    m.logout()


def test_cli_delivery_exit_status_follows_sysexits(server):
    res = server.cli("deliver", "nobody@example.com", stdin="Subject: x\n\ny\n", check=False)
    assert res.returncode == 67, res.stderr  # EX_NOUSER
    assert "no such local user" in res.stderr
    res = server.cli("deliver", "alice@example.com", stdin="", check=False)
    assert res.returncode == 65, res.stderr  # EX_DATAERR
    # An alias delivers to each of its targets.
    res = server.cli("deliver", "team@example.com", stdin="Subject: all\n\nhi\n")
    assert res.returncode == 0
    for user in ("alice@example.com", "bob@example.com"):
        m = imaplib.IMAP4_SSL(
            "127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=10
        )
        m.login(user, PASSWORD)
        typ, data = m.select("INBOX", readonly=True)
        assert data == [b"1"], user
        m.logout()


def test_user_del_ends_the_users_open_sessions(server):
    idle = imap_session(server, "bob@example.com")
    idle.send(b"s SELECT INBOX\r\n")
    read_until(idle, b"s OK")
    idle.send(b"i IDLE\r\n")
    assert idle.line().startswith(b"+ ")
    busy = imap_session(server, "bob@example.com")
    other = imap_session(server, "alice@example.com")

    server.cli("user", "del", "bob@example.com")

    # RFC 9051 §7.1.5: the server closes the connection with BYE.
    assert read_until(idle, b"* BYE") == b"* BYE account deleted\r\n"
    assert idle.sock.recv(100) == b""
    # A session between commands is told at its next command.
    busy.send(b"n NOOP\r\n")
    assert read_until(busy, b"* BYE") == b"* BYE account deleted\r\n"
    # Its NOOP is not answered OK: the connection closes after the BYE (a tagged reply may
    # come first, the close follows).
    rest = b""
    try:
        while chunk := busy.sock.recv(100):
            rest += chunk
    except (ConnectionError, socket.timeout):
        pass
    assert b"n OK" not in busy.buf + rest
    # Other accounts go on.
    other.send(b"n NOOP\r\n")
    assert read_until(other, b"n ").startswith(b"n OK")
    # And the account cannot log in any more.
    m = imaplib.IMAP4_SSL(
        "127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=10
    )
    try:
        m.login("bob@example.com", PASSWORD)
        raise AssertionError("deleted user logged in")
    except imaplib.IMAP4.error:
        pass

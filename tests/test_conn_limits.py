"""Connection slots and what an anonymous client may cost: a client that logs out and reconnects
at once is served even at one connection per address, and a literal announced before login is
refused before its bytes are read, without growing the server's memory."""

import socket
import time

import pytest

from conftest import PASSWORD, Transcript


def rss_kib(server) -> int:
    with open(f"/proc/{server.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def one_per_ip(make_server):
    # Loopback is trusted (exempt from per-address limits) by default: trust nobody here.
    server = make_server(extra_config=(
        "[limits]\nmax_connections_per_ip = 1\ntrusted_networks = []\nconnection_rate_per_ip = 0\n"
        "[antispam]\npregreet_delay_ms = 0\n"
    ))
    # The harness probed every port to see the server up; wait until those sessions are gone.
    deadline = time.time() + 10
    while True:
        t = Transcript(server.connect("imap"))
        ok = t.line().startswith(b"* OK ")
        t.sock.close()
        if ok:
            break
        assert time.time() < deadline, "the probes' slots were never released"
        time.sleep(0.05)
    time.sleep(0.2)
    return server


def test_imap_logout_then_reconnect_at_once(one_per_ip):
    previous = None
    for i in range(50):
        t = Transcript(one_per_ip.connect("imap"))
        greeting = t.line()
        assert greeting.startswith(b"* OK "), (i, greeting)
        if previous is not None:
            previous.sock.close()
        if i % 10 == 0:
            t.send(b"l LOGIN alice@example.com \"%s\"\r\n" % PASSWORD.encode())
            assert t.line().startswith(b"l OK "), i
        t.send(b"z LOGOUT\r\n")
        assert t.line() == b"* BYE yubin IMAP logging out\r\n"
        assert t.line() == b"z OK LOGOUT completed\r\n"
        # Reconnect right after the tagged OK, before this connection is even closed here.
        previous = t
    previous.sock.close()


def test_pop3_and_smtp_quit_then_reconnect_at_once(one_per_ip):
    for i in range(50):
        t = Transcript(one_per_ip.connect("pop3"))
        assert t.line().startswith(b"+OK"), i
        t.send(b"QUIT\r\n")
        assert t.line().startswith(b"+OK"), i
        s = Transcript(one_per_ip.connect("smtp"))
        t.sock.close()
        assert s.smtp_reply().startswith(b"220 "), i
        assert s.cmd(b"QUIT\r\n").startswith(b"221 "), i
        s.sock.close()


def test_the_limit_still_holds_while_a_session_is_open(one_per_ip):
    t = Transcript(one_per_ip.connect("imap"))
    assert t.line().startswith(b"* OK ")
    refused = Transcript(one_per_ip.connect("imap"))
    assert refused.line() == b"* BYE Too many connections\r\n"
    t.send(b"a NOOP\r\n")
    assert t.line() == b"a OK NOOP completed\r\n"


def test_huge_literal_before_login_is_refused_unread(server):
    # 20 MiB: under the message size limit (25 MiB), far over what LOGIN needs (8 KiB).
    size = 20 * 1024 * 1024
    before = rss_kib(server)
    socks = []
    for i in range(20):
        t = Transcript(server.connect("imap"))
        t.sock.settimeout(5)
        assert t.line().startswith(b"* OK ")
        # The answer comes at once, without a "+" and without the server waiting for a single
        # byte of the literal.
        t.send(b"a%d LOGIN {%d}\r\n" % (i, size))
        assert t.line() == b"a%d NO [TOOBIG] literal too large\r\n" % i
        socks.append(t)
    # The connections stay usable.
    for i, t in enumerate(socks):
        t.send(b"b%d NOOP\r\n" % i)
        assert t.line() == b"b%d OK NOOP completed\r\n" % i
    # Non-synchronising (LITERAL+): the bytes come anyway, so the server refuses and closes
    # rather than reading 20 MiB from an anonymous client.
    for i in range(20):
        t = Transcript(server.connect("imap"))
        t.sock.settimeout(5)
        assert t.line().startswith(b"* OK ")
        t.send(b"c%d LOGIN {%d+}\r\n" % (i, size) + b"x" * 1000)
        assert t.line() == b"c%d NO [TOOBIG] literal too large\r\n" % i
        assert t.line() == b"* BYE literal too large before login\r\n"
        with pytest.raises((EOFError, ConnectionError)):
            t.line()
        socks.append(t)
    grown = rss_kib(server) - before
    assert grown < 16 * 1024, f"RSS grew by {grown} KiB"
    for t in socks:
        t.sock.close()


def test_after_login_literals_get_the_message_limit(server):
    t = Transcript(server.connect("imap"))
    t.sock.settimeout(10)
    assert t.line().startswith(b"* OK ")
    # A password in a literal is fine before login (it is small).
    t.send(b"a LOGIN alice@example.com {%d}\r\n" % len(PASSWORD))
    assert t.line().startswith(b"+ ")
    t.send(PASSWORD.encode() + b"\r\n")
    assert t.line().startswith(b"a OK ")
    message = b"Subject: after login\r\n\r\n" + b"z" * 100_000 + b"\r\n"
    t.send(b"b APPEND INBOX {%d}\r\n" % len(message))
    assert t.line().startswith(b"+ ")
    t.send(message + b"\r\n")
    assert t.line().startswith(b"b OK [APPENDUID ")


def test_tls_handshakes_queue_for_their_turn(make_server):
    """`[limits] tls_handshakes_in_progress`: beyond it, a handshake waits its turn (a reconnect
    storm queues instead of failing). With one turn, a client that connects to the implicit-TLS
    port and never sends its ClientHello holds it until the handshake timeout; a real client
    behind it is served after that, not refused; then a burst of 40 at once is served too."""
    import concurrent.futures
    import imaplib

    from conftest import client_tls

    server = make_server(extra_config="[limits]\ntls_handshakes_in_progress = 1\ntls_handshake_timeout_secs = 4\n")
    time.sleep(0.5)  # the start-up probes' handshakes are over
    stall = socket.create_connection(("127.0.0.1", server.ports["imaps"]), timeout=10)
    time.sleep(0.3)
    t0 = time.monotonic()
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=30)
    waited = time.monotonic() - t0
    assert m.login("alice@example.com", PASSWORD)[0] == "OK"
    m.logout()
    # It waited for the stalled handshake's timeout (4 s, counted from the stall's start).
    assert 2.5 < waited < 8, waited
    assert stall.recv(1) == b""  # the staller was closed at its timeout
    stall.close()

    def client(_):
        with socket.create_connection(("127.0.0.1", server.ports["imaps"]), timeout=30) as s:
            with client_tls().wrap_socket(s) as tls:
                return tls.recv(100)

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        greetings = list(pool.map(client, range(40)))
    assert all(g.startswith(b"* OK") for g in greetings), greetings

"""Hostile-input corpus, protocol level (docs/hostile-inputs.md): slowloris on every port, 10 MB
lines, literals and chunks with lying sizes, invalid UTF-8 and NUL bytes in every field, header
injection, STARTTLS/STLS injection, SMTP smuggling and pipelining floods, against one live yubin
with every listener. Each case asserts the protocol's answer (or a clean close), while a normal
client is served throughout (hostile_kit.Probe) and the server stays up without a panic."""

import concurrent.futures
import re
import socket
import ssl
import time

import pytest

from conftest import PASSWORD, Transcript, client_tls
from hostile_kit import (
    TIMEOUT_SECS,
    auth_plain,
    deliver,
    guarded_fixture,
    hostile_server_fixture,
    imap_session,
    imap_tagged,
    message_count,
    pop3_session,
    read_all,
    read_until_close,
    rss_kib,
    smtp_session,
)

hostile = hostile_server_fixture()
guarded = guarded_fixture()

TEN_MB = 10 * 1024 * 1024
HUNDRED_MB = 100 * 1024 * 1024


# --- slowloris: one byte at a time, every port -----------------------------------------------


def trickle(sock: socket.socket, data: bytes, limit: float) -> tuple[bytes, float]:
    """Sends `data` a byte a second (forever, cycling) until the server closes; returns what it
    sent back and how long it held the connection."""
    started = time.monotonic()
    out = b""
    i = 0
    while time.monotonic() - started < limit:
        try:
            sock.sendall(data[i % len(data):i % len(data) + 1])
        except OSError:
            return out, time.monotonic() - started
        i += 1
        got = read_all(sock, 1.0)
        out += got
        if got.endswith((b"<EOF>", b"<RESET>")):
            return out, time.monotonic() - started
    raise AssertionError(f"still open after {limit}s; got {out[-300:]!r}")


def raw(hostile, listener: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", hostile.ports[listener]), timeout=10)


def slow_smtp(hostile, listener):
    t = smtp_session(hostile, listener) if listener == "smtp" else None
    if t is None:
        s = raw(hostile, listener)
        if listener == "submissions":
            s = client_tls().wrap_socket(s)
        t = Transcript(s)
        assert t.smtp_reply().startswith(b"220 ")
    return trickle(t.sock, b"NOOP\r\n"[:4], TIMEOUT_SECS * 4)


def slow_smtp_data(hostile, _):
    t = smtp_session(hostile)
    t.send(b"MAIL FROM:<slow@sender.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
    assert t.smtp_reply().startswith(b"250")
    assert t.smtp_reply().startswith(b"250")
    assert t.smtp_reply().startswith(b"354")
    return trickle(t.sock, b"Subject: slow\r\n\r\nslow body\r\n", TIMEOUT_SECS * 4)


def slow_smtp_bdat(hostile, _):
    t = smtp_session(hostile)
    t.send(b"MAIL FROM:<slow@sender.test>\r\nRCPT TO:<alice@example.com>\r\nBDAT 100000 LAST\r\n")
    assert t.smtp_reply().startswith(b"250")
    assert t.smtp_reply().startswith(b"250")
    return trickle(t.sock, b"Subject: slow\r\n\r\nslow body\r\n", TIMEOUT_SECS * 4)


def slow_smtp_auth(hostile, _):
    t = smtp_session(hostile, "submission")
    assert t.cmd(b"AUTH PLAIN\r\n").startswith(b"334")
    return trickle(t.sock, auth_plain(b"alice@example.com", b"x"), TIMEOUT_SECS * 4)


def slow_pop3_auth(hostile, _):
    t = pop3_session(hostile, None)
    t.send(b"AUTH PLAIN\r\n")
    assert t.line().startswith(b"+ ")
    return trickle(t.sock, auth_plain(b"alice@example.com", b"x"), TIMEOUT_SECS * 4)


def slow_imap_literal(hostile, _):
    t = imap_session(hostile, None)
    t.send(b"a LOGIN {17}\r\n")
    assert t.line().startswith(b"+ ")
    return trickle(t.sock, b"alice@example.com", TIMEOUT_SECS * 4)


def slow_http_body(hostile, _):
    s = client_tls().wrap_socket(raw(hostile, "https"))
    s.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    return trickle(s, b"<Autodiscover>", TIMEOUT_SECS * 4)


def slow_pop3(hostile, listener):
    s = raw(hostile, listener)
    if listener == "pop3s":
        s = client_tls().wrap_socket(s)
    t = Transcript(s)
    assert t.line().startswith(b"+OK")
    return trickle(t.sock, b"USER alice@example.com", TIMEOUT_SECS * 4)


def slow_imap(hostile, listener):
    s = raw(hostile, listener)
    if listener == "imaps":
        s = client_tls().wrap_socket(s)
    t = Transcript(s)
    assert t.line().startswith(b"* OK ")
    return trickle(t.sock, b"a LOGIN alice@example.com secret", TIMEOUT_SECS * 4)


def slow_handshake(hostile, listener):
    # The first bytes of a TLS ClientHello, a byte a second.
    return trickle(raw(hostile, listener), bytes.fromhex("160301020001"), TIMEOUT_SECS * 4)


def slow_http(hostile, _):
    s = client_tls().wrap_socket(raw(hostile, "https"))
    return trickle(s, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: yes", TIMEOUT_SECS * 4)


# (attack, listener, what the server sends before it closes: a prefix of its last line, or None
# for a silent close). RFC 5321 §4.5.3.2.7 (421 on timeout), RFC 1939 §3 (autologout),
# RFC 9051 §5.4 (autologout with BYE); a TLS handshake has no protocol to answer in yet.
SLOWLORIS = [
    (slow_smtp, "smtp", b"421 4.4.2 "),
    (slow_smtp, "submission", b"421 4.4.2 "),
    (slow_smtp, "submissions", b"421 4.4.2 "),
    (slow_smtp_data, "smtp", b"421 4.4.2 "),
    (slow_smtp_bdat, "smtp", b"421 4.4.2 "),
    (slow_smtp_auth, "submission", b"421 4.4.2 "),
    (slow_pop3_auth, "pop3", b"-ERR autologout"),
    (slow_imap_literal, "imap", b"* BYE autologout"),
    (slow_http_body, "https", None),
    (slow_pop3, "pop3", b"-ERR autologout"),
    (slow_pop3, "pop3s", b"-ERR autologout"),
    (slow_imap, "imap", b"* BYE autologout"),
    (slow_imap, "imaps", b"* BYE autologout"),
    (slow_handshake, "submissions", None),
    (slow_handshake, "pop3s", None),
    (slow_handshake, "imaps", None),
    (slow_handshake, "https", None),
    (slow_http, "https", None),
]


def test_slowloris_on_every_port_is_closed_by_the_timeouts(hostile):
    """A byte a second never completes a command: every listener closes the connection after
    its timeout (3 s here), with its protocol's timeout reply where it has one."""
    with concurrent.futures.ThreadPoolExecutor(len(SLOWLORIS)) as pool:
        futures = {pool.submit(attack, hostile, listener): (attack.__name__, listener, last)
                   for attack, listener, last in SLOWLORIS}
        failures = []
        for future, (name, listener, last) in futures.items():
            try:
                out, held = future.result()
            except Exception as e:  # noqa: BLE001 - collected, reported together
                failures.append(f"{name}[{listener}]: {e!r}")
                continue
            body = out.replace(b"<EOF>", b"").replace(b"<RESET>", b"")
            final = body.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
            if last is not None and not final.startswith(last):
                failures.append(f"{name}[{listener}]: last line {final!r}, wanted {last!r}")
            if held > TIMEOUT_SECS * 2 + 2:
                failures.append(f"{name}[{listener}]: held {held:.1f}s")
    assert not failures, failures


# --- 10 MB lines -----------------------------------------------------------------------------


@pytest.mark.parametrize("listener", ["smtp", "submission"])
def test_ten_megabyte_smtp_line(hostile, listener):
    # RFC 5321 §4.5.3.1.4 (command line at most 512 octets), §4.5.3.1.10: "500 Line too long".
    t = smtp_session(hostile, listener)
    t.send(b"NOOP " + b"A" * TEN_MB + b"\r\nNOOP\r\n")
    assert t.smtp_reply() == b"500 5.5.2 Line too long\r\n"
    assert t.smtp_reply() == b"250 2.0.0 Ok\r\n"


def test_ten_megabyte_smtp_auth_response(hostile):
    # RFC 4954 §4: an overlong AUTH response line; the exchange is cancelled, the session goes on.
    t = smtp_session(hostile, "submission")
    assert t.cmd(b"AUTH PLAIN\r\n").startswith(b"334")
    t.send(b"A" * TEN_MB + b"\r\nNOOP\r\n")
    reply = t.smtp_reply()
    assert reply[:3] == b"500" and b"too long" in reply.lower(), reply
    assert t.smtp_reply() == b"250 2.0.0 Ok\r\n"


def test_ten_megabyte_line_inside_data(hostile):
    # A text line over 1000 octets (RFC 5321 §4.5.3.1.6) inside DATA: the message is taken
    # whole (it is under the size limit) and stored byte for byte; the session goes on.
    t = smtp_session(hostile)
    before = message_count(hostile, "bob")
    t.send(b"MAIL FROM:<x@sender.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
    for _ in range(3):
        t.smtp_reply()
    t.sock.settimeout(60)
    assert t.cmd(b"Subject: long\r\n\r\n" + b"L" * TEN_MB + b"\r\n.\r\n").startswith(b"250 ")
    assert t.cmd(b"NOOP\r\n") == b"250 2.0.0 Ok\r\n"
    assert message_count(hostile, "bob") == before + 1


def test_ten_megabyte_imap_line(hostile):
    # RFC 9051 §7.1.3 BAD for a command the server cannot parse; the session goes on.
    for user in (None, "alice"):
        t = imap_session(hostile, user)
        t.send(b"a " + b"A" * TEN_MB + b"\r\nb NOOP\r\n")
        assert t.line() == b"a BAD line too long\r\n"
        assert t.line() == b"b OK NOOP completed\r\n"


def test_ten_megabyte_imap_authenticate_response(hostile):
    t = imap_session(hostile, None)
    t.send(b"a AUTHENTICATE PLAIN\r\n")
    assert t.line().startswith(b"+")
    t.send(b"A" * TEN_MB + b"\r\nb NOOP\r\n")
    # RFC 9051 §6.2.2: a failed exchange ends in a tagged NO or BAD.
    reply = t.line()
    assert reply.startswith((b"a NO ", b"a BAD ")), reply
    assert t.line() == b"b OK NOOP completed\r\n"


def test_ten_megabyte_pop3_line(hostile):
    # RFC 2449 §4: -ERR for an overlong line; the session goes on.
    for user in (None, "alice"):
        t = pop3_session(hostile, user)
        t.send(b"A" * TEN_MB + b"\r\nNOOP\r\n" if user else b"A" * TEN_MB + b"\r\nCAPA\r\n")
        assert t.line() == b"-ERR line too long\r\n"
        assert t.line().startswith(b"+OK")
        t.sock.close()


def test_ten_megabyte_http_header(hostile):
    # RFC 6585 §5: 431 for header fields too large.
    s = client_tls().wrap_socket(raw(hostile, "https"))
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"A" * TEN_MB + b"\r\n\r\n")
    except OSError:
        pass  # the server may answer and close before reading it all
    out = read_all(s, 5)
    assert out.startswith(b"HTTP/1.1 431 "), out[:200]


# --- literals and chunks with lying sizes ----------------------------------------------------


def test_imap_synchronising_literal_of_100_mb_is_refused_unread(hostile):
    # RFC 9051 §7.1 / RFC 7889: over the APPEND limit, refused before any byte is sent.
    t = imap_session(hostile)
    t.send(b"a APPEND INBOX {%d}\r\n" % HUNDRED_MB)
    assert t.line() == b"a NO [TOOBIG] literal too large\r\n"
    t.send(b"b NOOP\r\n")
    assert t.line() == b"b OK NOOP completed\r\n"


def test_imap_non_synchronising_literal_of_100_mb(hostile):
    # RFC 7888 §4: a LITERAL+ literal over the limit is refused; the server then reads and
    # drops the bytes or closes. Here the client sends 1 MB of them and disconnects.
    before = message_count(hostile, "alice")
    grew = rss_kib(hostile.proc.pid)
    t = imap_session(hostile)
    t.send(b"a APPEND INBOX {%d+}\r\n" % HUNDRED_MB + b"x" * (1 << 20))
    assert t.line() == b"a NO [TOOBIG] literal too large\r\n"
    t.sock.close()
    assert message_count(hostile, "alice") == before
    assert rss_kib(hostile.proc.pid) - grew < 32 * 1024


def test_imap_multiappend_over_the_limit(hostile):
    """RFC 3502: MULTIAPPEND is atomic. 110 literals of 1 MiB each in one command (LITERAL+),
    each under the message limit but together over the limit of one command (100 MiB,
    imap-proto FrameLimits::max_command): refused with NO [TOOBIG], nothing appended, and the
    server's memory bounded well below the 110 MiB sent."""
    before_count = message_count(hostile, "alice")
    before = rss_kib(hostile.proc.pid)
    t = imap_session(hostile)
    t.sock.settimeout(60)
    message = b"Subject: m\r\n\r\n" + b"x" * (1 << 20) + b"\r\n"
    t.send(b"a APPEND INBOX" + b"".join(b" {%d+}\r\n" % len(message) + message for _ in range(110)) + b"\r\n")
    _, done = imap_tagged(t, b"a")
    assert done == b"a NO [TOOBIG] literal too large\r\n", done
    t.sock.close()
    assert message_count(hostile, "alice") == before_count
    assert rss_kib(hostile.proc.pid, "VmRSS") - before < 64 * 1024


def test_imap_literal_shorter_than_announced_then_close(hostile):
    before = message_count(hostile, "alice")
    t = imap_session(hostile)
    t.send(b"a APPEND INBOX {1000}\r\n")
    assert t.line().startswith(b"+ ")
    t.send(b"Subject: lie\r\n\r\nonly this")
    t.sock.close()
    time.sleep(0.5)
    assert message_count(hostile, "alice") == before


def test_imap_preauth_literals_of_100_mb(hostile):
    t = imap_session(hostile, None)
    t.send(b"a LOGIN {%d}\r\n" % HUNDRED_MB)
    assert t.line() == b"a NO [TOOBIG] literal too large\r\n"
    t.send(b"b LOGIN {%d+}\r\n" % HUNDRED_MB + b"x" * 65536)
    assert t.line() == b"b NO [TOOBIG] literal too large\r\n"
    assert t.line() == b"* BYE literal too large before login\r\n"
    read_until_close(t.sock, 5)


def test_smtp_bdat_of_100_mb_that_never_comes(hostile):
    # RFC 3030 §3: the chunk size is announced; the client sends a fraction and disconnects.
    before = message_count(hostile, "alice")
    t = smtp_session(hostile)
    t.send(b"MAIL FROM:<x@sender.test>\r\nRCPT TO:<alice@example.com>\r\n")
    assert t.smtp_reply().startswith(b"250")
    assert t.smtp_reply().startswith(b"250")
    t.send(b"BDAT %d LAST\r\n" % HUNDRED_MB + b"Subject: lie\r\n\r\n" + b"x" * (1 << 20))
    t.sock.close()
    time.sleep(0.5)
    assert message_count(hostile, "alice") == before


def test_smtp_bdat_of_100_mb_sent_whole_is_refused_as_too_big(hostile):
    # RFC 3030 §2 / RFC 1870 §6.3: over SIZE, 552 5.3.4 after the chunk, and the session goes on
    # without the server holding the bytes.
    before = rss_kib(hostile.proc.pid)
    t = smtp_session(hostile)
    t.sock.settimeout(120)
    t.send(b"MAIL FROM:<x@sender.test>\r\nRCPT TO:<alice@example.com>\r\n")
    assert t.smtp_reply().startswith(b"250")
    assert t.smtp_reply().startswith(b"250")
    t.send(b"BDAT %d LAST\r\n" % HUNDRED_MB)
    block = b"y" * (1 << 20)
    for _ in range(100):
        t.send(block)
    assert t.smtp_reply()[:9] == b"552 5.3.4"
    assert t.cmd(b"NOOP\r\n") == b"250 2.0.0 Ok\r\n"
    assert rss_kib(hostile.proc.pid) - before < 64 * 1024


def test_smtp_data_cut_short(hostile):
    before = message_count(hostile, "alice")
    t = smtp_session(hostile)
    t.send(b"MAIL FROM:<x@sender.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
    for _ in range(3):
        t.smtp_reply()
    t.send(b"Subject: cut\r\n\r\nno end of data\r\n.")
    t.sock.close()
    time.sleep(0.5)
    assert message_count(hostile, "alice") == before


def test_http_body_of_100_mb_announced(hostile):
    # RFC 9110 §15.5.14: 413 for a body over the limit, answered without reading it.
    s = client_tls().wrap_socket(raw(hostile, "https"))
    s.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              b"Content-Length: %d\r\n\r\n<Autodiscover" % HUNDRED_MB)
    out = read_all(s, 5)
    assert out.startswith(b"HTTP/1.1 413 "), out[:200]


# --- invalid UTF-8, NUL bytes and header injection in every field ----------------------------

BAD_BYTES = [b"\xff\xfe", b"\xc3\x28", b"a\x00b", b"a\rb", b"a\r\nX-Injected: yes"]


@pytest.mark.parametrize("bad", BAD_BYTES, ids=["ff", "overlong", "nul", "cr", "crlf"])
def test_smtp_fields(hostile, bad):
    """RFC 5321 §4.1.2: a path holds no control characters, and without SMTPUTF8 (RFC 6531)
    no 8-bit bytes: 501 for the argument; the session and the transaction go on."""
    t = smtp_session(hostile)
    if b"\n" in bad:
        # A CRLF ends the command: what follows is a separate (unknown) command.
        t.send(b"MAIL FROM:<" + bad + b"@sender.test>\r\n")
        assert t.smtp_reply()[:3] == b"501"
        assert t.smtp_reply()[:3] == b"500"
        t.send(b"HELO " + bad + b"\r\n")
        assert t.smtp_reply()[:3] == b"250"  # HELO a: a single label is accepted
        assert t.smtp_reply()[:3] == b"500"
    else:
        assert t.cmd(b"EHLO " + bad + b"\r\n")[:3] == b"501"
        assert t.cmd(b"MAIL FROM:<" + bad + b"@sender.test> SMTPUTF8\r\n")[:3] == b"501"
        assert t.cmd(b"EHLO client.test\r\n")[:3] == b"250"
        assert t.cmd(b"MAIL FROM:<x@sender.test>\r\n")[:3] == b"250"
        assert t.cmd(b"RCPT TO:<ali" + bad + b"ce@example.com>\r\n")[:3] == b"501"
        assert t.cmd(b"RCPT TO:<alice@example.com> NOTIFY=" + bad + b"\r\n")[:3] == b"501"
        assert t.cmd(b"RCPT TO:<alice@example.com>\r\n")[:3] == b"250"
    assert t.cmd(b"NOOP\r\n") == b"250 2.0.0 Ok\r\n"


@pytest.mark.parametrize("bad", BAD_BYTES, ids=["ff", "overlong", "nul", "cr", "crlf"])
def test_smtp_auth_username(hostile, bad):
    """AUTH PLAIN with a hostile user name (RFC 4616 §2: UTF-8 without NUL): 535 or 501, no
    login, and nothing injected into the log."""
    t = smtp_session(hostile, "submission")
    reply = t.cmd(b"AUTH PLAIN " + auth_plain(bad + b"\nINJECTED-LOG-LINE", PASSWORD.encode()) + b"\r\n")
    assert reply[:3] in (b"535", b"501"), reply
    assert t.cmd(b"MAIL FROM:<alice@example.com>\r\n")[:3] == b"530"
    assert "\nINJECTED-LOG-LINE" not in hostile.logs()


@pytest.mark.parametrize("bad", BAD_BYTES, ids=["ff", "overlong", "nul", "cr", "crlf"])
def test_imap_and_pop3_sasl_username(hostile, bad):
    """The same user names through SASL PLAIN on IMAP (RFC 9051 §6.2.2) and POP3 (RFC 5034):
    a failed exchange, and the session goes on."""
    response = auth_plain(bad + b"\nINJECTED-LOG-LINE", PASSWORD.encode())
    t = imap_session(hostile, None)
    t.send(b"a AUTHENTICATE PLAIN " + response + b"\r\nb NOOP\r\n")
    reply = t.line()
    assert reply.startswith((b"a NO ", b"a BAD ")), reply
    assert t.line() == b"b OK NOOP completed\r\n"
    p = pop3_session(hostile, None)
    p.send(b"AUTH PLAIN " + response + b"\r\nNOOP\r\n")
    assert p.line().startswith(b"-ERR"), "AUTH accepted"
    assert p.line().startswith(b"-ERR")  # NOOP before login
    assert "\nINJECTED-LOG-LINE" not in hostile.logs()


@pytest.mark.parametrize("bad", BAD_BYTES, ids=["ff", "overlong", "nul", "cr", "crlf"])
def test_imap_mailbox_names_and_logins(hostile, bad):
    """RFC 9051 §5.1: mailbox names are UTF-8 without control characters. Sent as literals,
    so the bytes reach the parser whole: BAD or NO, and no such mailbox appears."""
    t = imap_session(hostile, None)
    t.send(b"a LOGIN {%d+}\r\n%s {4+}\r\npass\r\n" % (len(bad), bad))
    reply = t.line()
    assert reply.startswith((b"a NO ", b"a BAD ")), reply
    t.send(b'l LOGIN alice@example.com "%s"\r\n' % PASSWORD.encode())
    assert t.line().startswith(b"l OK ")
    for tag, command in ((b"c", b"CREATE"), (b"s", b"SELECT"), (b"t", b"STATUS")):
        extra = b" (MESSAGES)" if command == b"STATUS" else b""
        t.send(b"%s %s {%d+}\r\n%s%s\r\n" % (tag, command, len(bad), bad, extra))
        lines, done = imap_tagged(t, tag)
        assert done.startswith((tag + b" NO ", tag + b" BAD ")), done
    t.send(b"r RENAME INBOX {%d+}\r\n%s\r\n" % (len(bad), bad))
    _, done = imap_tagged(t, b"r")
    assert done.startswith((b"r NO ", b"r BAD ")), done
    t.send(b'x LIST "" "*"\r\n')
    lines, done = imap_tagged(t, b"x")
    assert done.startswith(b"x OK")
    assert not any(b"Injected" in ln or b"\xff" in ln or b"\x00" in ln for ln in lines), lines
    t.send(b"u SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n%s\r\n" % (len(bad), bad))
    _, done = imap_tagged(t, b"u")
    assert done.startswith((b"u BAD ", b"u NO ")), done  # no mailbox selected


def test_imap_utf8_accept_still_refuses_invalid_utf8(hostile):
    """RFC 9051 §5.1 / RFC 6855 §3: with UTF8=ACCEPT quoted strings may carry 8-bit text, but
    only valid UTF-8; everything else is still BAD."""
    t = imap_session(hostile)
    t.send(b"e ENABLE UTF8=ACCEPT\r\n")
    assert imap_tagged(t, b"e")[1].startswith(b"e OK")
    for i, cmd in enumerate([b'CREATE "\xff\xfe"', b'CREATE "a\xc3\x28"', b'SELECT "\xed\xa0\x80"',
                             b'LIST "" "\xff*"', b'RENAME INBOX "b\xff"', b'CREATE "x\\\r\\\ny"',
                             b'NOTIFY SET (mailboxes "\xff" (MessageNew))']):
        tag = b"b%d" % i
        t.send(tag + b" " + cmd + b"\r\n")
        _, done = imap_tagged(t, tag)
        assert done.startswith(tag + b" BAD "), (cmd, done)
        # A quoted string with CR/LF breaks the line in two: the rest is a second bad command.
        if b"\n" in cmd:
            assert t.line().startswith(b"* BAD ")
    # Valid UTF-8 is a fine name.
    t.send(b'c CREATE "utf8-\xc3\xa9"\r\nd DELETE "utf8-\xc3\xa9"\r\n')
    assert imap_tagged(t, b"c")[1].startswith(b"c OK")
    assert imap_tagged(t, b"d")[1].startswith(b"d OK")


def test_imap_nul_in_append_literal(hostile):
    """RFC 9051 §4.3: a literal holds no NUL; RFC 3516 §4.4: a literal8 (~{n}) may."""
    message = b"Subject: nul\r\n\r\na\x00b\r\n"
    t = imap_session(hostile)
    t.send(b"a APPEND INBOX {%d+}\r\n%s\r\n" % (len(message), message))
    _, done = imap_tagged(t, b"a")
    assert done.startswith(b"a BAD "), done
    t.send(b"b APPEND INBOX ~{%d+}\r\n%s\r\n" % (len(message), message))
    _, done = imap_tagged(t, b"b")
    assert done.startswith(b"b OK [APPENDUID "), done
    uid = int(done.split()[4].rstrip(b"]"))
    # Stored base64-encoded (so FETCH BODY can send it, RFC 3516 §4.4); BINARY decodes it.
    t.send(b"s SELECT INBOX\r\nf UID FETCH %d BINARY.PEEK[1]\r\n" % uid)
    imap_tagged(t, b"s")
    lines, done = imap_tagged(t, b"f")
    assert done.startswith(b"f OK") and lines[1] == b"a\x00b\r\n", lines


def test_smtp_quoted_local_part_with_control_characters(hostile):
    # RFC 5321 §4.1.2: quoted-pairSMTP is a backslash and a printable (%d32-126): no CR, NUL.
    t = smtp_session(hostile)
    for path in (b'"evil\\\rX-Injected: yes"@x.test', b'"a\\\x00b"@x.test', b'"a\\\x7fb"@x.test'):
        reply = t.cmd(b"MAIL FROM:<" + path + b">\r\n")
        assert reply[:3] == b"501", (path, reply)
    assert t.cmd(b'MAIL FROM:<"a\\\xffb"@x.test> SMTPUTF8\r\n')[:3] == b"501"
    assert t.cmd(b"NOOP\r\n") == b"250 2.0.0 Ok\r\n"


@pytest.mark.parametrize("bad", BAD_BYTES, ids=["ff", "overlong", "nul", "cr", "crlf"])
def test_pop3_user_and_pass(hostile, bad):
    # RFC 1939 §3: arguments are printable ASCII; the session goes on.
    t = pop3_session(hostile, None)
    t.send(b"USER " + bad + b"\r\nPASS " + bad + b"\r\nAPOP " + bad + b" 0123\r\nCAPA\r\n")
    replies = []
    while True:
        line = t.line()
        if line.startswith(b"+OK Capability"):
            break
        replies.append(line)
    if b"\n" in bad:
        # The CRLF ends the command: "USER a" is a fine command, the rest are not.
        assert replies[0] == b"+OK send PASS\r\n", replies
        replies = replies[1:]
    assert replies and all(r.startswith(b"-ERR") for r in replies), replies
    assert "\nX-Injected" not in hostile.logs()


def test_http_hostile_request_lines(hostile):
    for request in (b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
                    b"\x00\x01\x02\xff\r\n\r\n"):
        s = client_tls().wrap_socket(raw(hostile, "https"))
        s.sendall(request)
        out = read_all(s, 5)
        assert out.startswith(b"HTTP/1.1 400 ") or out in (b"<EOF>", b"<RESET>"), (request, out[:200])


def test_http_hostile_xml(hostile):
    """Autodiscover's XML request (the web's only parsed body): entity expansion ("billion
    laughs") and external entities are refused as malformed (400), deep nesting is harmless."""
    entities = "".join(f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    request = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY l0 "lol">%s]>'
               '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
               "<Request><EMailAddress>%s</EMailAddress><AcceptableResponseSchema>"
               "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
               "</AcceptableResponseSchema></Request></Autodiscover>")
    bodies = [
        (request % (entities, "&l9;")).encode(),
        (request % ('<!ENTITY xxe SYSTEM "file:///etc/passwd">', "&xxe;")).encode(),
    ]
    before = rss_kib(hostile.proc.pid)
    for body in bodies:
        s = client_tls().wrap_socket(raw(hostile, "https"))
        s.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/xml\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        out = read_all(s, 5)
        assert out.startswith(b"HTTP/1.1 400 "), out[:300]
        assert b"root:" not in out
    s = client_tls().wrap_socket(raw(hostile, "https"))
    deep = b"<Autodiscover>" + b"<a>" * 20000 + b"</a>" * 20000 + b"</Autodiscover>"
    s.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/xml\r\n"
              b"Content-Length: %d\r\n\r\n" % len(deep[:60000]) + deep[:60000])
    assert read_all(s, 5)[:12] in (b"HTTP/1.1 200", b"HTTP/1.1 400")
    assert rss_kib(hostile.proc.pid) - before < 32 * 1024


@pytest.mark.parametrize("address", [b"%FF%FE", b"a%00b", b"a%0D%0ASet-Cookie:%20evil=1",
                                     b"%22%3E%3Cscript%3Ealert(1)%3C/script%3E", b"A" * 60000],
                         ids=["ff", "nul", "crlf", "html", "60k"])
def test_http_account_login_fields(hostile, address):
    """The account pages' sign-in form with hostile fields: a failed sign-in (or a 4xx), no
    session, no header injected, and the address echoed back only HTML-escaped."""
    s = client_tls().wrap_socket(raw(hostile, "https"))
    s.sendall(b"GET /account/ HTTP/1.1\r\nHost: mail.example.com\r\nConnection: close\r\n\r\n")
    page = read_all(s, 3)
    cookie = re.search(rb"set-cookie: (yubin_login=[0-9a-f]+)", page, re.I).group(1)
    token = re.search(rb'name="form_token" value="([0-9a-f]+)"', page).group(1)
    body = b"form_token=" + token + b"&address=" + address + b"&password=%FF%00x"
    s = client_tls().wrap_socket(raw(hostile, "https"))
    s.sendall(b"POST /account/login HTTP/1.1\r\nHost: mail.example.com\r\nConnection: close\r\nCookie: " + cookie
              + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(body)
              + body)
    out = read_all(s, 5)
    status = out[9:12]
    assert status in (b"200", b"400", b"403", b"413"), out[:300]
    head = out.split(b"\r\n\r\n", 1)[0].lower()
    assert b"evil" not in head and b"yubin_session" not in head, head
    assert b"<script>" not in out


# --- STARTTLS / STLS injection ---------------------------------------------------------------


@pytest.mark.parametrize("listener", ["smtp", "submission"])
def test_smtp_starttls_injection(hostile, listener):
    # RFC 3207 §4.2 (CVE-2011-0411): what was pipelined after STARTTLS is discarded.
    t = smtp_session(hostile, listener)
    t.send(b"STARTTLS\r\nMAIL FROM:<evil@sender.test>\r\nRCPT TO:<alice@example.com>\r\n")
    assert t.smtp_reply() == b"220 2.0.0 Ready to start TLS\r\n"
    tls = Transcript(client_tls().wrap_socket(t.sock))
    # Had the injected MAIL been kept, its reply would come first; and RCPT needs a MAIL.
    assert tls.cmd(b"NOOP\r\n") == b"250 2.0.0 Ok\r\n"
    assert tls.cmd(b"RCPT TO:<alice@example.com>\r\n")[:3] == b"503"


def test_imap_starttls_injection(hostile):
    # RFC 9051 §6.2.1: the client must not send anything after STARTTLS before the handshake;
    # a server discards what arrived (the CVE-2011-0411 class).
    t = imap_session(hostile, None)
    t.send(b'a STARTTLS\r\nb LOGIN alice@example.com "%s"\r\n' % PASSWORD.encode())
    assert t.line() == b"a OK Begin TLS negotiation now\r\n"
    tls = Transcript(client_tls().wrap_socket(t.sock))
    tls.send(b"c NOOP\r\nd SELECT INBOX\r\n")
    assert tls.line() == b"c OK NOOP completed\r\n"
    assert tls.line().startswith(b"d BAD "), "the injected LOGIN ran"


def test_pop3_stls_injection(hostile):
    # RFC 2595 §4: the same for STLS.
    t = pop3_session(hostile, None)
    t.send(b"STLS\r\nUSER alice@example.com\r\nPASS %s\r\n" % PASSWORD.encode())
    assert t.line() == b"+OK Begin TLS negotiation\r\n"
    tls = Transcript(client_tls().wrap_socket(t.sock))
    tls.send(b"STAT\r\n")
    assert tls.line().startswith(b"-ERR"), "the injected USER/PASS ran"


def test_starttls_twice_and_inside_implicit_tls(hostile):
    # RFC 3207 §4.2 / RFC 9051 §6.2.1 / RFC 2595 §4: once TLS is on, STARTTLS is refused.
    s = Transcript(client_tls().wrap_socket(raw(hostile, "submissions")))
    assert s.smtp_reply().startswith(b"220")
    s.cmd(b"EHLO client.test\r\n")
    assert s.cmd(b"STARTTLS\r\n")[:3] == b"503"
    i = Transcript(client_tls().wrap_socket(raw(hostile, "imaps")))
    assert i.line().startswith(b"* OK")
    i.send(b"a STARTTLS\r\n")
    assert i.line().startswith(b"a BAD ")
    p = Transcript(client_tls().wrap_socket(raw(hostile, "pop3s")))
    assert p.line().startswith(b"+OK")
    p.send(b"STLS\r\n")
    assert p.line().startswith(b"-ERR")


# --- SMTP smuggling --------------------------------------------------------------------------

SMUGGLING = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r"]


@pytest.mark.parametrize("end", SMUGGLING, ids=lambda b: b.decode().replace("\r", "CR").replace("\n", "LF"))
@pytest.mark.parametrize("transfer", ["data", "bdat"])
def test_smtp_smuggling(hostile, end, transfer):
    """RFC 5321 §4.1.1.4: only CRLF.CRLF ends DATA (SMTP smuggling, Dec 2023; CVE-2023-51764/5/6).
    A bare LF or CR before or after the dot is message text: one message is stored, holding
    the smuggled commands as its body, and no second message is created. With BDAT the
    framing is by size, so nothing inside can end the message either."""
    smuggle, alice = message_count(hostile, "smuggle"), message_count(hostile, "alice")
    tail = (b"MAIL FROM:<evil@sender.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nsmuggled text\r\n")
    body = b"Subject: carrier\r\n\r\ncarrier text" + end + tail
    t = smtp_session(hostile)
    t.send(b"MAIL FROM:<x@sender.test>\r\nRCPT TO:<smuggle@example.com>\r\n")
    assert t.smtp_reply().startswith(b"250")
    assert t.smtp_reply().startswith(b"250")
    if transfer == "data":
        assert t.cmd(b"DATA\r\n").startswith(b"354")
        t.send(body + b".\r\n")
    else:
        t.send(b"BDAT %d LAST\r\n" % len(body) + body)
    reply = t.smtp_reply()
    assert reply.startswith(b"250 2.0.0 "), reply
    # Exactly one reply: nothing after the fake end was taken as a command.
    assert read_all(t.sock, 0.5) == b""
    assert t.cmd(b"NOOP\r\n") == b"250 2.0.0 Ok\r\n"
    assert message_count(hostile, "smuggle") == smuggle + 1
    assert message_count(hostile, "alice") == alice
    i = imap_session(hostile, "smuggle")
    i.send(b"s SELECT INBOX\r\nf FETCH * BODY.PEEK[TEXT]\r\n")
    imap_tagged(i, b"s")
    lines, done = imap_tagged(i, b"f")
    assert done.startswith(b"f OK")
    text = lines[1]
    assert b"carrier text" in text and b"MAIL FROM:<evil@sender.test>" in text, text
    assert b"smuggled text" in text, text
    # Stored as it will be relayed: no line of the body is a lone dot.
    assert b"\r\n.\r\n" not in text, text


# --- pipelining floods -----------------------------------------------------------------------

FLOOD = 10_000


def test_smtp_pipelining_flood(hostile):
    # RFC 2920 §3.1: replies in the order of the commands.
    t = smtp_session(hostile)
    t.sock.settimeout(60)
    before = rss_kib(hostile.proc.pid)
    t.send(b"".join(b"RSET\r\nNOOP %d\r\n" % i for i in range(FLOOD)))
    for i in range(FLOOD):
        assert t.smtp_reply() == b"250 2.0.0 Ok\r\n", i
        assert t.smtp_reply() == b"250 2.0.0 Ok\r\n", i
    assert t.cmd(b"QUIT\r\n").startswith(b"221")
    assert rss_kib(hostile.proc.pid) - before < 32 * 1024


def test_imap_pipelining_flood(hostile):
    t = imap_session(hostile)
    t.sock.settimeout(60)
    before = rss_kib(hostile.proc.pid)
    t.send(b"s SELECT INBOX\r\n" + b"".join(b"n%d NOOP\r\nf%d UID FETCH 1:* FLAGS\r\n" % (i, i) for i in range(FLOOD)))
    imap_tagged(t, b"s")
    for i in range(FLOOD):
        assert imap_tagged(t, b"n%d" % i)[1].startswith(b"n%d OK" % i)
        assert imap_tagged(t, b"f%d" % i)[1].startswith(b"f%d OK" % i)
    assert rss_kib(hostile.proc.pid) - before < 64 * 1024


def test_pop3_pipelining_flood(hostile):
    # RFC 2449 §6.6 PIPELINING.
    t = pop3_session(hostile)
    t.sock.settimeout(60)
    before = rss_kib(hostile.proc.pid)
    t.send(b"".join(b"NOOP\r\nSTAT\r\n" for _ in range(FLOOD)))
    for i in range(FLOOD):
        assert t.line() == b"+OK\r\n", i
        assert t.line().startswith(b"+OK "), i
    t.send(b"QUIT\r\n")
    assert t.line().startswith(b"+OK")
    assert rss_kib(hostile.proc.pid) - before < 32 * 1024


def test_http_pipelining_flood(hostile):
    s = client_tls().wrap_socket(raw(hostile, "https"))
    s.settimeout(60)
    count = 1000
    s.sendall(b"GET /.well-known/autoconfig/mail/config-v1.1.xml HTTP/1.1\r\nHost: example.com\r\n\r\n" * count)
    out = b""
    deadline = time.monotonic() + 60
    while out.count(b"HTTP/1.1 ") < count and time.monotonic() < deadline:
        try:
            chunk = s.recv(1 << 20)
        except (socket.timeout, ssl.SSLError, ConnectionError):
            break
        if not chunk:
            break
        out += chunk
    answered = out.count(b"HTTP/1.1 ")
    # Either every request is answered in order, or the server stops reading and closes.
    assert answered >= 1
    assert out.count(b"HTTP/1.1 200 ") == answered, out[:500]


# --- numbers out of range and nesting --------------------------------------------------------


def test_imap_numbers_and_nesting(hostile):
    """RFC 9051 §9: number is a 32-bit, number64 a 63-bit value; larger ones, and nesting past
    the parser's depth limit, are syntax errors (BAD), never an overflow or a stack overflow."""
    t = imap_session(hostile)
    t.send(b"s SELECT INBOX\r\n")
    imap_tagged(t, b"s")
    bad = [
        b"SEARCH " + b"(" * 4000 + b"ALL" + b")" * 4000,
        b"SEARCH " + b"NOT " * 2000 + b"ALL",
        b"SEARCH " + b"OR " * 2000 + b"ALL " * 2001,
        b"FETCH 4294967296 FLAGS",
        b"FETCH 1:99999999999999999999999 FLAGS",
        b"UID FETCH 0:* FLAGS",
        b"FETCH 1 BODY.PEEK[]<18446744073709551615.18446744073709551615>",
        b"SEARCH LARGER 99999999999999999999999",
        b"SEARCH MODSEQ 18446744073709551615",
        b"FETCH 1 (FLAGS) (CHANGEDSINCE 18446744073709551615)",
        b"SEARCH SENTBEFORE 99-Foo-99999",
    ]
    for i, cmd in enumerate(bad):
        tag = b"b%d" % i
        t.send(tag + b" " + cmd + b"\r\n")
        lines, done = imap_tagged(t, tag)
        assert done.startswith(tag + b" BAD "), (cmd[:60], done)
        assert lines == [], lines
    # In range but past the end of the message: an empty string (RFC 9051 §6.4.5 partial).
    message = b"Subject: n\r\n\r\nbody\r\n"
    t.send(b"c APPEND INBOX {%d}\r\n" % len(message))
    assert t.line().startswith(b"+ ")
    t.send(message + b"\r\n")
    assert imap_tagged(t, b"c")[1].startswith(b"c OK")
    t.send(b"d UID FETCH * BODY.PEEK[]<4294967295.4294967295>\r\n")
    lines, done = imap_tagged(t, b"d")
    assert done.startswith(b"d OK") and lines[0].endswith(b"BODY[]<4294967295> {0}\r\n"), lines
    t.send(b"e UID FETCH * (BODY.PEEK[" + b"1." * 3000 + b"1])\r\n")
    assert imap_tagged(t, b"e")[1].startswith(b"e OK")


def test_smtp_numbers(hostile):
    # RFC 1870 §6: SIZE over the limit is 552; a SIZE or BDAT size that is no number is 501.
    t = smtp_session(hostile)
    assert t.cmd(b"MAIL FROM:<a@b.test> SIZE=99999999999999999999999\r\n")[:9] == b"501 5.5.4"
    assert t.cmd(b"MAIL FROM:<a@b.test> SIZE=18446744073709551615\r\n")[:9] == b"552 5.3.4"
    assert t.cmd(b"BDAT 99999999999999999999999\r\n")[:9] == b"501 5.5.4"
    assert t.cmd(b"MAIL FROM:<a@b.test> SIZE=-1\r\n")[:9] == b"501 5.5.4"
    # RFC 3030 §2: a chunk is read whatever the reply, so an absurd size just swallows what
    # follows until the data timeout closes the session.
    t.send(b"BDAT 18446744073709551615 LAST\r\nNOOP\r\n")
    out, held = read_until_close(t.sock, TIMEOUT_SECS * 3)
    assert out.startswith(b"421 4.4.2 "), out


def test_pop3_numbers(hostile):
    # RFC 1939 §5: a message number that does not parse or does not exist is -ERR.
    t = pop3_session(hostile)
    for cmd in (b"RETR 0", b"RETR 99999999999999999999999", b"TOP 1 -1", b"TOP 1 18446744073709551615",
                b"LIST 4294967296", b"UIDL -1", b"DELE 4294967295", b"TOP 99999999 0"):
        t.send(cmd + b"\r\n")
        assert t.line().startswith(b"-ERR "), cmd
    t.send(b"NOOP\r\n")
    assert t.line() == b"+OK\r\n"


# --- clients that send and never read --------------------------------------------------------


@pytest.mark.parametrize("listener", ["smtp", "imap", "pop3"])
def test_flood_without_reading(hostile, listener):
    """Commands whose replies the client never reads: the server's socket buffers fill, it
    stops reading, and after its write timeout it drops the session; its memory stays bounded
    (the replies wait in the kernel, not in the server)."""
    # Replies of 200 KB each (the message is delivered once per server).
    if message_count(hostile, "reader") == 0:
        deliver(hostile, "reader@example.com", b"Subject: big\r\n\r\n" + b"r" * 200_000 + b"\r\n")
    before = rss_kib(hostile.proc.pid)
    if listener == "smtp":
        t, burst = smtp_session(hostile), b"EHLO client.test\r\n" * 4096
    elif listener == "imap":
        t = imap_session(hostile, "reader")
        t.send(b"s SELECT INBOX\r\n")
        imap_tagged(t, b"s")
        burst = b"f UID FETCH 1:* (BODY.PEEK[] BODYSTRUCTURE)\r\n" * 64
    else:
        t, burst = pop3_session(hostile, "reader"), b"RETR 1\r\n" * 64
    t.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    t.sock.settimeout(1)
    started = time.monotonic()
    dropped = False
    while time.monotonic() - started < TIMEOUT_SECS * 8:
        try:
            t.sock.sendall(burst)
        except socket.timeout:
            continue  # the server stopped reading
        except OSError:
            dropped = True
            break
    assert dropped, "the session was not dropped"
    assert rss_kib(hostile.proc.pid) - before < 64 * 1024
    t.sock.close()

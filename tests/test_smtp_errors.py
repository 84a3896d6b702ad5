"""SMTP replies on port 25 checked against RFC 5321 with raw transcripts."""

import smtplib
import socket
import time

from conftest import Transcript, client_tls


def session(server, listener="smtp"):
    t = Transcript(server.connect(listener))
    assert t.smtp_reply().startswith(b"220 ")
    assert t.cmd(b"EHLO client.test\r\n").startswith(b"250-")
    return t


def code(reply: bytes) -> bytes:
    return reply[:9]


def test_recipient_rules(server):
    t = session(server)
    assert t.cmd(b"MAIL FROM:<x@sender.test>\r\n").startswith(b"250")
    assert code(t.cmd(b"RCPT TO:<nobody@example.com>\r\n")) == b"550 5.1.1"
    # Never an open relay.
    assert code(t.cmd(b"RCPT TO:<someone@elsewhere.test>\r\n")) == b"550 5.7.1"
    assert t.cmd(b"RCPT TO:<Alice@Example.COM>\r\n").startswith(b"250")
    assert code(t.cmd(b"RCPT TO:<not an address>\r\n"))[:3] == b"501"
    assert t.cmd(b"QUIT\r\n").startswith(b"221")


def test_sequence_and_syntax_errors(server):
    t = session(server)
    assert code(t.cmd(b"RCPT TO:<alice@example.com>\r\n"))[:3] == b"503"
    assert code(t.cmd(b"DATA\r\n"))[:3] == b"503"
    assert code(t.cmd(b"MAIL FROM:\r\n"))[:3] == b"501"
    assert code(t.cmd(b"FOO bar\r\n"))[:3] == b"500"
    assert t.cmd(b"MAIL FROM:<x@sender.test>\r\n").startswith(b"250")
    assert code(t.cmd(b"MAIL FROM:<x@sender.test>\r\n"))[:3] == b"503"
    assert t.cmd(b"RSET\r\n").startswith(b"250")
    assert t.cmd(b"NOOP\r\n").startswith(b"250")
    assert t.cmd(b"VRFY alice\r\n").startswith(b"252")
    assert t.cmd(b"HELP\r\n").startswith(b"214")


def test_liberal_forms_and_null_sender(server):
    t = session(server)
    # Outlook's space after the colon, lower-case commands, the null sender.
    assert t.cmd(b"mail from: <>\r\n").startswith(b"250")
    assert t.cmd(b"rcpt to: <alice@example.com>\r\n").startswith(b"250")
    assert t.cmd(b"data\r\n").startswith(b"354")
    assert t.cmd(b"Subject: bounce\r\n\r\nbody\r\n.\r\n").startswith(b"250")


def test_ehlo_advertises_extensions(server):
    t = Transcript(server.connect("smtp"))
    t.smtp_reply()
    ehlo = t.cmd(b"EHLO client.test\r\n").upper()
    for ext in (b"PIPELINING", b"8BITMIME", b"SMTPUTF8", b"SIZE", b"ENHANCEDSTATUSCODES", b"STARTTLS", b"CHUNKING"):
        assert ext in ehlo, ehlo


def test_too_many_recipients(make_server):
    server = make_server("[limits]\nmax_recipients = 3\n")
    t = session(server)
    t.cmd(b"MAIL FROM:<x@sender.test>\r\n")
    for _ in range(3):
        assert t.cmd(b"RCPT TO:<alice@example.com>\r\n").startswith(b"250")
    assert code(t.cmd(b"RCPT TO:<alice@example.com>\r\n")) == b"452 4.5.3"


def test_message_too_big(make_server):
    server = make_server("[limits]\nmax_message_size = 10000\n")
    t = session(server)
    assert code(t.cmd(b"MAIL FROM:<x@sender.test> SIZE=20000\r\n")) == b"552 5.3.4"
    assert t.cmd(b"MAIL FROM:<x@sender.test>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<alice@example.com>\r\n").startswith(b"250")
    assert t.cmd(b"DATA\r\n").startswith(b"354")
    body = b"Subject: big\r\n\r\n" + (b"y" * 78 + b"\r\n") * 300 + b".\r\n"
    assert code(t.cmd(body)) == b"552 5.3.4"
    # The session goes on.
    assert t.cmd(b"NOOP\r\n").startswith(b"250")


def test_overlong_line_and_2mb_line(server):
    t = session(server)
    assert code(t.cmd(b"NOOP " + b"a" * 10000 + b"\r\n")) == b"500 5.5.2"
    t.send(b"X" * (2 * 1024 * 1024) + b"\r\n")
    assert code(t.smtp_reply()) == b"500 5.5.2"
    assert t.cmd(b"NOOP\r\n").startswith(b"250")


def test_ten_thousand_recipients_and_server_keeps_serving(server):
    t = session(server)
    t.cmd(b"MAIL FROM:<x@sender.test>\r\n")
    # Pipelined: 10,000 RCPTs in one go.
    t.send(b"".join(b"RCPT TO:<alice@example.com>\r\n" for _ in range(10000)))
    codes = [t.smtp_reply()[:3] for _ in range(10000)]
    assert codes.count(b"250") == 100  # the default limit
    assert set(codes[100:]) == {b"452"}
    # Another client is served meanwhile.
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        assert s.noop()[0] == 250


def test_garbage_bytes(server):
    t = Transcript(server.connect("smtp"))
    t.smtp_reply()
    # Every byte value, so several "lines" (it contains LFs), then invalid UTF-8 and NULs.
    t.send(bytes(range(256)) * 4 + b"\r\n" + b"\xff\xfe\x00\x01garbage\r\n" + b"NOOP\r\n")
    replies = []
    while True:
        reply = t.smtp_reply()
        if reply.startswith(b"250"):
            break
        replies.append(reply)
    assert replies and all(r[:1] == b"5" for r in replies), replies
    # The session goes on, and so does the server for others.
    assert t.cmd(b"EHLO client.test\r\n").startswith(b"250")
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        assert s.noop()[0] == 250


def test_bare_lf_dot_does_not_end_data(server):
    """SMTP smuggling (CVE-2023-51766 class): only CRLF.CRLF ends DATA."""
    t = session(server)
    t.cmd(b"MAIL FROM:<x@sender.test>\r\n")
    t.cmd(b"RCPT TO:<alice@example.com>\r\n")
    assert t.cmd(b"DATA\r\n").startswith(b"354")
    t.send(b"Subject: one\r\n\r\nbody\n.\r\nMAIL FROM:<evil@sender.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
    t.send(b"smuggled\r\n.\r\n")
    reply = t.smtp_reply()
    assert reply.startswith(b"250")
    # Exactly one reply: the smuggled commands were data.
    t.sock.settimeout(1)
    try:
        extra = t.sock.recv(100)
    except socket.timeout:
        extra = b""
    assert extra == b""


def test_pipelining_and_bdat(server):
    t = session(server)
    t.send(b"MAIL FROM:<x@sender.test>\r\nRCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nBDAT 21\r\nSubject: bdat\r\n\r\nabcd")
    assert t.smtp_reply().startswith(b"250")
    assert t.smtp_reply().startswith(b"250")
    assert t.smtp_reply().startswith(b"250")
    assert t.smtp_reply().startswith(b"250")
    assert t.cmd(b"BDAT 6 LAST\r\nefgh\r\n").startswith(b"250")


def test_pipelined_bytes_after_starttls_are_discarded(server):
    """CVE-2011-0411: commands sent in plaintext with STARTTLS must not run inside TLS."""
    t = session(server)
    t.send(b"STARTTLS\r\nRSET\r\n")
    assert t.smtp_reply().startswith(b"220")
    tls = Transcript(client_tls().wrap_socket(t.sock))
    # If RSET had been kept, its 250 would arrive before the EHLO reply.
    reply = tls.cmd(b"EHLO client.test\r\n")
    assert reply.startswith(b"250-"), reply
    assert b"STARTTLS" not in reply.upper()


def test_submission_requires_auth_and_delivers_locally(server):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as s:
        s.ehlo("c")
        assert s.docmd("MAIL FROM:<alice@example.com>")[0] == 530
        s.rset()
        s.starttls(context=client_tls())
        s.ehlo("c")
        s.login("alice@example.com", "correct horse battery staple")
        assert s.sendmail("alice@example.com", ["bob@example.com"], b"From: alice@example.com\r\nSubject: hi\r\n\r\nhi\r\n") == {}
        # Authenticated: a remote recipient is accepted for the outbound queue.
        s.docmd("MAIL FROM:<alice@example.com>")
        c, _ = s.docmd("RCPT TO:<someone@elsewhere.test>")
        assert c == 250


def test_submissions_implicit_tls_auth_login(server):
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], context=client_tls(), timeout=10) as s:
        s.ehlo("c")
        try:
            s.login("bob@example.com", "wrong")
            raise AssertionError("login with a wrong password succeeded")
        except smtplib.SMTPAuthenticationError as e:
            assert e.smtp_code == 535
        s.login("bob@example.com", "correct horse battery staple")
        assert s.sendmail("bob@example.com", ["alice@example.com"], b"From: bob@example.com\r\nSubject: x\r\n\r\nx\r\n") == {}


def test_idle_timeout(make_server):
    server = make_server("[limits]\nsmtp_command_timeout_secs = 1\n")
    t = Transcript(server.connect("smtp"))
    t.smtp_reply()
    time.sleep(2.5)
    assert t.smtp_reply().startswith(b"421")


def test_starttls_handshake_timeout(make_server):
    """A client that asks for STARTTLS and then stalls in the handshake is dropped after
    tls_handshake_timeout_secs, not the (5-minute) command timeout."""
    server = make_server("[limits]\ntls_handshake_timeout_secs = 1\n")
    t = session(server)
    assert t.cmd(b"STARTTLS\r\n").startswith(b"220 ")
    started = time.monotonic()
    t.sock.settimeout(10)
    assert t.sock.recv(4096) == b"", "the server closes the connection"
    assert time.monotonic() - started < 5


def test_write_timeout_drops_a_client_that_stops_reading(make_server):
    """A client that pipelines commands but never reads the replies fills the server's
    socket buffers; after smtp_write_timeout_secs the server drops the session."""
    server = make_server("[limits]\nsmtp_write_timeout_secs = 1\n")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.ports["smtp"]))
    sock.settimeout(1)
    burst = b"NOOP\r\n" * 4096
    started = time.monotonic()
    dropped = False
    while time.monotonic() - started < 30:
        try:
            sock.sendall(burst)
        except socket.timeout:
            continue  # the server stopped reading: it is stuck writing, or gone
        except OSError:
            dropped = True
            break
    assert dropped, "the session was not dropped while the client did not read"
    assert time.monotonic() - started < 20
    sock.close()

"""TLS on every listener and the plaintext-password rules (RFC 8314, RFC 3207, RFC 2595)."""

import base64
import poplib
import smtplib
import socket
import ssl

import pytest

from conftest import PASSWORD, Transcript, client_tls


def test_implicit_tls_listeners_speak_tls_12_or_13(server):
    for listener, greeting in (("submissions", b"220 "), ("pop3s", b"+OK"), ("imaps", b"* OK")):
        s = server.connect(listener)
        assert s.version() in ("TLSv1.2", "TLSv1.3")
        assert Transcript(s).line().startswith(greeting)
        s.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_tls_sessions_resume_from_a_ticket(server, version):
    """A reconnecting client resumes its TLS session (no new certificate signature) from a
    ticket the server sent (RFC 8446 §4.6.1; RFC 5077 for TLS 1.2); the server keeps no
    session state of its own, so this holds whatever number of clients came in between."""
    ctx = client_tls()
    ctx.minimum_version = ctx.maximum_version = version

    def connect(session=None):
        raw = socket.create_connection(("127.0.0.1", server.ports["imaps"]), timeout=10)
        s = ctx.wrap_socket(raw, session=session)
        # TLS 1.3 tickets come after the handshake: reading the greeting takes them in.
        assert Transcript(s).line().startswith(b"* OK")
        return s

    first = connect()
    assert not first.session_reused
    session = first.session
    first.close()
    # Other clients in between take nothing away from the first one's ticket (a server-side
    # session cache, rustls' default of 256 entries, would have dropped it by now).
    for _ in range(150):
        connect().close()
    again = connect(session)
    assert again.session_reused, f"{version.name}: the session was not resumed"
    again.close()


def test_tls_1_1_refused(server):
    ctx = client_tls()
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    raw = socket.create_connection(("127.0.0.1", server.ports["pop3s"]), timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        ctx.wrap_socket(raw).recv(10)


def test_self_signed_certificate_created(server):
    assert any(server.data.rglob("*.pem"))


def test_imap_starttls_placeholder(server):
    t = Transcript(server.connect("imap"))
    assert t.line().startswith(b"* OK")
    t.send(b"a1 STARTTLS\r\n")
    assert t.line().startswith(b"a1 OK")
    tls = Transcript(client_tls().wrap_socket(t.sock))
    tls.send(b"a2 CAPABILITY\r\n")
    assert tls.line().startswith(b"* CAPABILITY")
    assert tls.line().startswith(b"a2 OK")


@pytest.fixture
def strict(make_server):
    """A server that treats loopback as untrusted: no passwords without TLS."""
    return make_server(auth_config="allow_plaintext_loopback = false")


def test_smtp_auth_refused_without_tls(strict):
    t = Transcript(strict.connect("submission"))
    t.smtp_reply()
    ehlo = t.cmd(b"EHLO c\r\n")
    assert b"AUTH" not in ehlo.replace(b"AUTH=", b"")
    plain = base64.b64encode(b"\0alice@example.com\0" + PASSWORD.encode())
    assert t.cmd(b"AUTH PLAIN " + plain + b"\r\n").startswith(b"538 5.7.11")
    # After STARTTLS the same credentials work.
    assert t.cmd(b"STARTTLS\r\n").startswith(b"220")
    tls = Transcript(client_tls().wrap_socket(t.sock))
    assert b"AUTH" in tls.cmd(b"EHLO c\r\n")
    assert tls.cmd(b"AUTH PLAIN " + plain + b"\r\n").startswith(b"235")


def test_pop3_user_pass_refused_without_tls(strict):
    t = Transcript(strict.connect("pop3"))
    t.line()
    t.send(b"USER alice@example.com\r\n")
    assert t.line().startswith(b"-ERR [AUTH]")
    t.send(b"AUTH PLAIN " + base64.b64encode(b"\0alice@example.com\0" + PASSWORD.encode()) + b"\r\n")
    assert t.line().startswith(b"-ERR [AUTH]")
    p = poplib.POP3("127.0.0.1", strict.ports["pop3"], timeout=10)
    p.stls(context=client_tls())
    p.user("alice@example.com")
    p.pass_(PASSWORD)
    p.quit()


def test_loopback_plaintext_allowed_by_default(server):
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    p.user("alice@example.com")
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as s:
        s.ehlo("c")
        s.login("alice@example.com", PASSWORD)


def test_failed_login_is_logged_without_password(server):
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls(), timeout=10)
    p.user("alice@example.com")
    with pytest.raises(poplib.error_proto):
        p.pass_("hunter2-secret")
    p.close()
    logs = server.logs()
    assert "hunter2-secret" not in logs
    assert "127.0.0.1" in logs and "alice@example.com" in logs

"""Submission (RFC 6409, RFC 8314) end to end: AUTH only over TLS, SCRAM-SHA-256 with a client
written here from RFC 5802, the sender and From: checks, the header fixes, and no relaying for
anyone who has not authenticated, on every SMTP port."""

import base64
import hashlib
import hmac
import poplib
import smtplib

import pytest

from conftest import PASSWORD, Transcript, client_tls


@pytest.fixture
def strict(make_server):
    """Loopback treated as untrusted: no passwords without TLS."""
    return make_server(auth_config="allow_plaintext_loopback = false")


def scram_exchange(t: Transcript, user: str, password: str) -> bytes:
    """AUTH SCRAM-SHA-256 as a client (RFC 5802 §3, §5); returns the server's final reply."""
    bare = f"n={user},r=pyClientNonce0123"
    first = base64.b64encode(f"n,,{bare}".encode())
    reply = t.cmd(b"AUTH SCRAM-SHA-256 " + first + b"\r\n")
    assert reply.startswith(b"334 "), reply
    server_first = base64.b64decode(reply[4:].strip()).decode()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    assert attrs["r"].startswith("pyClientNonce0123")
    salt, iterations = base64.b64decode(attrs["s"]), int(attrs["i"])
    assert iterations >= 4096
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(stored_key, auth_message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    final = f"{without_proof},p={base64.b64encode(proof).decode()}"
    reply = t.cmd(base64.b64encode(final.encode()) + b"\r\n")
    if not reply.startswith(b"334 "):
        return reply
    # The server proves it knows the credentials too (server-final "v=").
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    expected = b"v=" + base64.b64encode(hmac.digest(server_key, auth_message, "sha256"))
    assert base64.b64decode(reply[4:].strip()) == expected
    return t.cmd(b"\r\n")


def test_auth_refused_before_starttls_then_scram_works(strict):
    t = Transcript(strict.connect("submission"))
    t.smtp_reply()
    ehlo = t.cmd(b"EHLO c\r\n")
    assert b"AUTH " not in ehlo and b"STARTTLS" in ehlo
    for mech in (b"PLAIN", b"LOGIN", b"SCRAM-SHA-256"):
        assert t.cmd(b"AUTH " + mech + b"\r\n").startswith(b"538 5.7.11")
    assert t.cmd(b"MAIL FROM:<alice@example.com>\r\n").startswith(b"530 5.7.0")
    assert t.cmd(b"STARTTLS\r\n").startswith(b"220")
    tls = Transcript(client_tls().wrap_socket(t.sock))
    ehlo = tls.cmd(b"EHLO c\r\n")
    assert b"AUTH PLAIN LOGIN SCRAM-SHA-256" in ehlo and b"DSN" in ehlo
    # `yubin user add` stored SCRAM credentials: the exchange succeeds, a wrong password not.
    assert scram_exchange(tls, "alice@example.com", "wrong").startswith(b"535 5.7.8")
    assert scram_exchange(tls, "alice@example.com", PASSWORD).startswith(b"235 2.7.0")
    assert tls.cmd(b"MAIL FROM:<alice@example.com>\r\n").startswith(b"250")


def test_scram_on_implicit_tls(server):
    t = Transcript(server.connect("submissions"))
    t.smtp_reply()
    t.cmd(b"EHLO c\r\n")
    assert scram_exchange(t, "bob@example.com", PASSWORD).startswith(b"235")


def login(server) -> smtplib.SMTP:
    s = smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30)
    s.starttls(context=client_tls())
    s.login("alice@example.com", PASSWORD)
    return s


def test_forged_sender_and_from_refused(server):
    with login(server) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("bob@example.com", ["bob@example.com"], "From: bob@example.com\r\n\r\nx\r\n")
        assert e.value.smtp_code == 553
        forged = "From: Bob <bob@example.com>\r\nSubject: forged\r\n\r\nx\r\n"
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("alice@example.com", ["bob@example.com"], forged)
        assert e.value.smtp_code == 553 and b"5.7.1" in e.value.smtp_error
        # The alias is alice's too.
        ok = "From: Team <team@example.com>\r\nTo: bob@example.com\r\nBcc: hidden@example.com\r\n\r\nhi\r\n"
        assert s.sendmail("team@example.com", ["bob@example.com"], ok) == {}
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    p.user("bob@example.com")
    p.pass_(PASSWORD)
    count, _ = p.stat()
    assert count == 1  # the forged message was not delivered
    msg = b"\r\n".join(p.retr(1)[1])
    head = msg.split(b"\r\n\r\n", 1)[0]
    assert b"Bcc" not in head and b"hidden@" not in msg
    assert b"\r\nDate: " in head and b"\r\nMessage-ID: <" in head
    p.quit()


def test_unauthenticated_relay_refused_on_every_port(server):
    # Port 25 (MX): a stranger may send to local users only.
    t = Transcript(server.connect("smtp"))
    t.smtp_reply()
    t.cmd(b"EHLO c\r\n")
    assert t.cmd(b"MAIL FROM:<a@remote.example>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<victim@elsewhere.example>\r\n").startswith(b"550 5.7.1")
    assert t.cmd(b"RCPT TO:<bob@example.com>\r\n").startswith(b"250")
    # 587 (after STARTTLS) and 465: nothing at all without AUTH.
    t = Transcript(server.connect("submission"))
    t.smtp_reply()
    t.cmd(b"EHLO c\r\n")
    assert t.cmd(b"STARTTLS\r\n").startswith(b"220")
    t = Transcript(client_tls().wrap_socket(t.sock))
    for sock_t in (t, Transcript(server.connect("submissions"))):
        if sock_t is not t:
            sock_t.smtp_reply()
        sock_t.cmd(b"EHLO c\r\n")
        assert sock_t.cmd(b"MAIL FROM:<a@remote.example>\r\n").startswith(b"530 5.7.0")
        assert sock_t.cmd(b"RCPT TO:<victim@elsewhere.example>\r\n").startswith(b"503")

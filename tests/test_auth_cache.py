"""The credential cache ([auth] cache_ttl_secs / cache_size): a repeated correct login skips
argon2, for every protocol; `yubin user passwd` and `user del`, run by the admin CLI while the
server runs, take effect at the very next login."""

import imaplib
import poplib
import smtplib
import time

import pytest

from conftest import PASSWORD


def imap_login(server, user, password):
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    try:
        m.login(user, password)
        m.logout()
    except imaplib.IMAP4.error:
        m.shutdown()
        raise


def cached_logins(server) -> int:
    """Log lines of logins answered from the cache (`cached=true` on "authentication succeeded")."""
    return sum("authentication succeeded" in line and "cached=true" in line for line in server.logs().splitlines())


def wait_for_log(server, count):
    deadline = time.time() + 5
    while cached_logins(server) < count and time.time() < deadline:
        time.sleep(0.02)
    return cached_logins(server)


def test_repeated_login_is_cached_and_passwd_del_take_effect_at_once(server):
    user = "alice@example.com"
    imap_login(server, user, PASSWORD)
    assert cached_logins(server) == 0
    imap_login(server, user, PASSWORD)
    assert wait_for_log(server, 1) == 1
    # The cache is shared by every protocol (all go through the one authenticator).
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    p.user(user)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as s:
        s.ehlo("c")
        s.login(user, PASSWORD)
    assert wait_for_log(server, 3) == 3
    # A wrong password is refused (and never counts as cached).
    with pytest.raises(imaplib.IMAP4.error):
        imap_login(server, user, PASSWORD + "x")

    # Another process changes the password: the old one is refused at once.
    server.cli("user", "passwd", user, "--password-stdin", stdin="new password 2\n")
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap_login(server, user, PASSWORD)
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    p.user(user)
    with pytest.raises(poplib.error_proto):
        p.pass_(PASSWORD)
    p.close()
    imap_login(server, user, "new password 2")
    imap_login(server, user, "new password 2")
    assert wait_for_log(server, 4) == 4

    # Another process deletes the account: refused at once.
    server.cli("user", "del", user)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap_login(server, user, "new password 2")
    assert cached_logins(server) == 4
    # Bob was never affected.
    imap_login(server, "bob@example.com", PASSWORD)


def test_cache_can_be_turned_off(make_server):
    server = make_server(auth_config="cache_size = 0")
    for _ in range(3):
        imap_login(server, "alice@example.com", PASSWORD)
    assert cached_logins(server) == 0
    assert server.logs().count("authentication succeeded") == 3

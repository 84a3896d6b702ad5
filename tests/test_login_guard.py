"""The password-guessing defence ([auth] login_guard and friends, `yubin ban`): failed logins
from one address are answered ever later, then the address is banned from every listener
(correct passwords included) until the ban expires, across a restart; other addresses are not
affected; `yubin ban add/list/del` acts on a running server without a restart.

Loopback is trusted by default, so these servers set `[limits] trusted_networks = []`. The
second client address is 127.0.0.2 (the client socket is bound to it)."""

import base64
import os
import re
import socket
import subprocess
import time
import uuid

import pytest

from conftest import PASSWORD, Transcript, client_tls

UNTRUSTED = "[limits]\ntrusted_networks = []\n"
USER = "alice@example.com"


def connect(server, listener, source="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", server.ports[listener]), timeout=15, source_address=(source, 0))
    if listener in ("submissions", "pop3s", "imaps"):
        s = client_tls().wrap_socket(s)
    return Transcript(s)


def greeting(server, listener, source="127.0.0.1") -> bytes:
    t = connect(server, listener, source)
    try:
        return t.line()
    finally:
        t.sock.close()


def imap_login(t: Transcript, tag: str, password: str) -> bytes:
    t.send(f'{tag} LOGIN {USER} "{password}"\r\n'.encode())
    while True:
        line = t.line()
        if line.startswith(tag.encode() + b" "):
            return line


def wait_for_greeting(server, listener, source, prefix: bytes, timeout=10) -> bytes:
    deadline = time.time() + timeout
    while True:
        g = greeting(server, listener, source)
        if g.startswith(prefix) or time.time() > deadline:
            return g
        time.sleep(0.2)


def test_guessing_is_delayed_then_banned_until_expiry_across_a_restart(make_server):
    server = make_server(
        extra_config=UNTRUSTED,
        auth_config="\n".join(
            [
                "max_failure_delay_ms = 800",
                "ban_after_burst = 20",
                "burst_window_secs = 300",
                "burst_ban_secs = 12",
                "ban_refresh_secs = 1",
            ]
        ),
    )
    t = connect(server, "imap")
    assert t.line().startswith(b"* OK")
    replies, took = [], []
    for i in range(30):
        start = time.monotonic()
        replies.append(imap_login(t, f"a{i}", f"wrong{i}"))
        took.append(time.monotonic() - start)
    banned_at = time.time()
    # The first 20 are checked and refused; the 20th bans; the rest are refused unchecked.
    for r in replies[:20]:
        assert b"NO [AUTHENTICATIONFAILED]" in r, replies
    for r in replies[20:]:
        assert b"NO [UNAVAILABLE]" in r and b"too many failed logins" in r, replies
    # Progressive delay: 100 ms (the harness's failure_delay_ms) for the first three, then
    # doubling up to 800 ms.
    assert min(took[7:20]) >= 0.8, took
    assert min(took[:3]) + 0.3 < min(took[7:20]), took
    # Refused without a password check or a delay.
    assert max(took[20:]) < min(took[7:20]), took
    # The correct password is refused too while banned.
    r = imap_login(t, "ok1", PASSWORD)
    assert b"NO [UNAVAILABLE]" in r, r
    t.sock.close()
    # One structured log line for the ban.
    ban_lines = [l for l in server.logs().splitlines() if "event=ban " in l]
    assert len(ban_lines) == 1, ban_lines
    assert re.search(r"ip=127\.0\.0\.1 reason=burst until=\S+Z failures=20 burst=20 protocol=imap", ban_lines[0]), ban_lines

    # Every listener refuses the address at connect, with its protocol's error.
    assert greeting(server, "imap").startswith(b"* BYE [UNAVAILABLE] Too many failed logins")
    assert greeting(server, "imaps").startswith(b"* BYE [UNAVAILABLE]")
    assert greeting(server, "pop3").startswith(b"-ERR [SYS/TEMP] Too many failed logins")
    assert greeting(server, "submission").startswith(b"421 4.7.0 mail.example.com Too many failed logins")
    # Another address logs in.
    other = connect(server, "imap", "127.0.0.2")
    assert other.line().startswith(b"* OK")
    assert b"OK" in imap_login(other, "b1", PASSWORD)
    other.sock.close()
    listed = server.cli("ban", "list").stdout
    assert re.search(r"^127\.0\.0\.1\tuntil \S+Z \(\d+s left\)\tburst\t", listed, re.M), listed

    # A restart keeps the ban.
    server.stop()
    server.start()
    assert greeting(server, "imap").startswith(b"* BYE [UNAVAILABLE]")
    assert greeting(server, "imap", "127.0.0.2").startswith(b"* OK")

    # The ban expires (12 s after it was made).
    g = wait_for_greeting(server, "imap", "127.0.0.1", b"* OK", timeout=25)
    assert g.startswith(b"* OK"), g
    assert time.time() - banned_at >= 10
    t = connect(server, "imap")
    t.line()
    assert b"OK" in imap_login(t, "c1", PASSWORD)
    t.sock.close()
    t = connect(server, "imap")
    t.line()
    # The success reset the address's counter: a wrong password now is an ordinary failure,
    # answered after the base delay, not a new ban.
    start = time.monotonic()
    assert b"NO [AUTHENTICATIONFAILED]" in imap_login(t, "c2", "wrong again")
    assert time.monotonic() - start < 0.8
    assert b"OK" in imap_login(t, "c3", PASSWORD)
    t.sock.close()


def test_ban_cli_acts_on_a_running_server(make_server):
    server = make_server(extra_config=UNTRUSTED, auth_config="ban_refresh_secs = 1")
    # Sessions opened before the ban: their logins are refused once it is in force.
    smtp = connect(server, "submission", "127.0.0.2")
    assert smtp.smtp_reply().startswith(b"220 ")
    assert smtp.cmd(b"EHLO client.example\r\n").startswith(b"250")
    pop = connect(server, "pop3", "127.0.0.2")
    assert pop.line().startswith(b"+OK")
    out = server.cli("ban", "add", "127.0.0.2", "--for", "1h").stdout
    assert re.match(r"banned 127\.0\.0\.2 until \S+Z$", out.strip()), out
    # The server rereads the bans within ban_refresh_secs: no restart, no signal.
    g = wait_for_greeting(server, "imap", "127.0.0.2", b"* BYE")
    assert g.startswith(b"* BYE [UNAVAILABLE] Too many failed logins from your address, try again after"), g
    assert greeting(server, "pop3", "127.0.0.2").startswith(b"-ERR [SYS/TEMP]")
    assert greeting(server, "smtp", "127.0.0.2").startswith(b"421 4.7.0 ")
    assert greeting(server, "pop3s", "127.0.0.2").startswith(b"-ERR [SYS/TEMP]")
    # Other addresses are served.
    assert greeting(server, "imap", "127.0.0.1").startswith(b"* OK")
    # RFC 4954 §6: 454 4.7.0, a temporary refusal; the password is not checked.
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
    r = smtp.cmd(b"AUTH PLAIN " + plain + b"\r\n")
    assert r.startswith(b"454 4.7.0 Too many failed authentications from your address"), r
    pop.send(f"USER {USER}\r\n".encode())
    assert pop.line().startswith(b"+OK")
    pop.send(f"PASS {PASSWORD}\r\n".encode())
    r = pop.line()
    assert r.startswith(b"-ERR [SYS/TEMP] too many failed logins from your address"), r
    smtp.sock.close()
    pop.sock.close()
    listed = server.cli("ban", "list").stdout
    assert re.search(r"^127\.0\.0\.2\tuntil \S+Z \((59m|1h00m) left\)\tmanual\t", listed, re.M), listed
    assert "refused" in server.logs() and "ip=127.0.0.2" in server.logs()

    out = server.cli("ban", "del", "127.0.0.2").stdout
    assert out.strip() == "lifted the ban of 127.0.0.2"
    g = wait_for_greeting(server, "imap", "127.0.0.2", b"* OK")
    assert g.startswith(b"* OK"), g
    t = connect(server, "imap", "127.0.0.2")
    t.line()
    assert b"OK" in imap_login(t, "a1", PASSWORD)
    t.sock.close()
    assert server.cli("ban", "list").stdout.strip() == "no bans"

    # Errors are one clear line and a failure exit status.
    res = server.cli("ban", "del", "127.0.0.2", check=False)
    assert res.returncode != 0 and "127.0.0.2 is not banned" in res.stderr
    res = server.cli("ban", "add", "127.0.0.3", "--for", "soon", check=False)
    assert res.returncode != 0 and "invalid duration" in res.stderr
    res = server.cli("ban", "add", "mail.example.com", check=False)
    assert res.returncode != 0 and "not an IP address" in res.stderr


def test_loopback_is_trusted_by_default(make_server):
    """With the default trusted_networks, loopback clients are never counted or banned."""
    server = make_server(auth_config="ban_after_burst = 3")
    t = connect(server, "imap")
    t.line()
    for i in range(5):
        assert b"NO [AUTHENTICATIONFAILED]" in imap_login(t, f"a{i}", "wrong")
    assert b"OK" in imap_login(t, "ok", PASSWORD)
    t.sock.close()
    assert "event=ban" not in server.logs()
    # A manual ban of a trusted address is stored but has no effect; the CLI says so.
    out = server.cli("ban", "add", "127.0.0.1").stdout
    assert "trusted_networks" in out
    assert greeting(server, "imap").startswith(b"* OK")


PG_URL = os.environ.get("YUBIN_TEST_PG_URL")


@pytest.mark.skipif(not PG_URL, reason="set YUBIN_TEST_PG_URL (scripts/pg-test-cluster)")
def test_two_nodes_on_one_database_count_and_ban_together(make_server):
    name = "yubin_e2e_" + uuid.uuid4().hex[:12]
    base, _, _ = PG_URL.rpartition("/")
    subprocess.run(["psql", PG_URL, "-qc", f"CREATE DATABASE {name}"], check=True)
    nodes = []
    try:
        storage = f'[storage]\nbackend = "postgres"\nurl = "{base}/{name}"\npool_size = 4\n'
        guard = "ban_after_burst = 3\nburst_ban_secs = 600\nban_refresh_secs = 1"
        a = make_server(extra_config=UNTRUSTED + storage, auth_config=guard)
        nodes.append(a)
        b = make_server(extra_config=UNTRUSTED + storage, auth_config=guard, users=False)
        nodes.append(b)
        # Two failures on node A and one on node B: three from the address, one ban.
        t = connect(a, "imap")
        t.line()
        for i in range(2):
            assert b"NO [AUTHENTICATIONFAILED]" in imap_login(t, f"a{i}", "wrong")
        t.sock.close()
        t = connect(b, "imap")
        t.line()
        assert b"NO [AUTHENTICATIONFAILED]" in imap_login(t, "b1", "wrong")
        assert b"NO [UNAVAILABLE]" in imap_login(t, "b2", PASSWORD)
        t.sock.close()
        assert "event=ban ip=127.0.0.1" in b.logs()
        # Node A learns of node B's ban within ban_refresh_secs.
        assert wait_for_greeting(a, "imap", "127.0.0.1", b"* BYE").startswith(b"* BYE [UNAVAILABLE]")
        assert greeting(a, "imap", "127.0.0.2").startswith(b"* OK")
        # Lifted through node A's CLI: both nodes let the address in again.
        a.cli("ban", "del", "127.0.0.1")
        for node in (a, b):
            assert wait_for_greeting(node, "imap", "127.0.0.1", b"* OK").startswith(b"* OK")
    finally:
        # The servers hold connections to the database: stop them before it is dropped.
        for node in nodes:
            node.stop()
        subprocess.run(["psql", PG_URL, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)

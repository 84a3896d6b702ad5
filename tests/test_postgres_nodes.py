"""Two yubin nodes on one PostgreSQL database (`[storage] backend = "postgres"`): mail
delivered over SMTP to one is read over IMAP and POP3 on the other, the POP3 maildrop lock
holds across nodes (RFC 1939 §8), and the admin CLI's accounts are seen by both.

Needs a PostgreSQL server: YUBIN_TEST_PG_URL (see scripts/pg-test-cluster); skipped without.
Each test creates its own database on it.
"""

import imaplib
import os
import poplib
import smtplib
import subprocess
import time
import uuid

import pytest

from conftest import PASSWORD, client_tls

PG_URL = os.environ.get("YUBIN_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="set YUBIN_TEST_PG_URL (scripts/pg-test-cluster)")


@pytest.fixture
def pg_database():
    """A fresh database on the test server; its URL. Dropped afterwards."""
    name = "yubin_e2e_" + uuid.uuid4().hex[:12]
    base, _, _ = PG_URL.rpartition("/")
    subprocess.run(["psql", PG_URL, "-qc", f"CREATE DATABASE {name}"], check=True)
    yield f"{base}/{name}"
    subprocess.run(["psql", PG_URL, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)


@pytest.fixture
def nodes(make_server, pg_database):
    """Two started nodes on one database; the users are made by node A's admin CLI."""
    storage = f'[storage]\nbackend = "postgres"\nurl = "{pg_database}"\npool_size = 4\n'
    a = make_server(extra_config=storage)
    b = make_server(extra_config=storage, users=False)
    return a, b


def deliver(server, to="alice@example.com", subject="m"):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        s.sendmail("carol@sender.test", [to], f"Subject: {subject}\r\n\r\nbody of {subject}\r\n".encode())


def imaps(server, user="alice@example.com") -> imaplib.IMAP4_SSL:
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=10)
    m.login(user, PASSWORD)
    return m


def pop3s(server, user="alice@example.com") -> poplib.POP3_SSL:
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls(), timeout=10)
    p.user(user)
    p.pass_(PASSWORD)
    return p


def test_delivery_on_one_node_is_read_on_the_other(nodes):
    a, b = nodes
    deliver(a, subject="from A")
    deliver(b, to="team@example.com", subject="to the alias via B")
    m = imaps(b)
    typ, data = m.select("INBOX")
    assert (typ, data) == ("OK", [b"2"])
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    subjects = [part[1].strip() for part in data if isinstance(part, tuple)]
    assert subjects == [b"Subject: from A", b"Subject: to the alias via B"]
    # Flags set on B are seen on A.
    assert m.uid("STORE", "1", "+FLAGS.SILENT", "(\\Flagged)")[0] == "OK"
    m.logout()
    m = imaps(a)
    m.select("INBOX")
    typ, data = m.uid("FETCH", "1", "(FLAGS)")
    assert b"\\Flagged" in data[0]
    # APPEND on A, UIDs continue on B.
    assert m.append("INBOX", None, None, b"Subject: appended\r\n\r\nx\r\n")[0] == "OK"
    m.logout()
    m = imaps(b)
    typ, data = m.select("INBOX")
    assert data == [b"3"]
    typ, data = m.uid("SEARCH", "ALL")
    assert data == [b"1 2 3"]
    m.logout()
    # Bob got the alias copy too.
    p = pop3s(a, "bob@example.com")
    assert p.stat()[0] == 1
    p.quit()


def test_pop3_lock_holds_across_nodes(nodes):
    a, b = nodes
    deliver(a)
    first = pop3s(a)
    second = poplib.POP3_SSL("127.0.0.1", b.ports["pop3s"], context=client_tls(), timeout=10)
    second.user("alice@example.com")
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_(PASSWORD)
    # Deleted on A; once A's session ends, B gets the maildrop without the message.
    first.dele(1)
    first.quit()
    deadline = time.time() + 10
    while True:
        try:
            p = pop3s(b)
            break
        except poplib.error_proto as e:
            assert b"[IN-USE]" in e.args[0] and time.time() < deadline
            time.sleep(0.1)
    assert p.stat()[0] == 0
    p.quit()


def test_admin_cli_accounts_are_seen_by_every_node(nodes):
    a, b = nodes
    b.cli("user", "add", "dave@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    listed = a.cli("user", "list").stdout
    assert "dave@example.com" in listed
    deliver(a, to="dave@example.com")
    p = pop3s(b, "dave@example.com")
    assert p.stat()[0] == 1
    p.quit()

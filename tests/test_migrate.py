"""`yubin migrate`: an installation copied to another store keeps every identity clients cache
(UIDVALIDITY, UIDs, MODSEQs, flags), so a client synced before the move downloads nothing after
it (issue 8). Embedded -> embedded, and embedded -> PostgreSQL -> embedded when
YUBIN_TEST_PG_URL names a server (scripts/pg-test-cluster); each such test has a database of its
own."""

import imaplib
import os
import re
import shutil
import uuid

import pytest

from conftest import PASSWORD, Yubin, client_tls
from test_dkim_store import openssl_key
from test_imap_clients import Mbsync, needs_mbsync
from test_multinode import psql

PG_URL = os.environ.get("YUBIN_TEST_PG_URL")
needs_pg = pytest.mark.skipif(
    not PG_URL, reason="no PostgreSQL: eval \"$(scripts/pg-test-cluster)\" sets YUBIN_TEST_PG_URL"
)

USER = "alice@example.com"


def login(server):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=10)
    m.login(USER, PASSWORD)
    return m


def state(server):
    """What a client caches of every mailbox: UIDVALIDITY, and per UID its flags and MODSEQ."""
    m = login(server)
    m._simple_command("ENABLE", "CONDSTORE")
    out = {}
    typ, boxes = m.list()
    for line in boxes:
        name = line.decode().rsplit(' "/" ', 1)[1].strip('"')
        typ, _ = m.select(f'"{name}"', readonly=True)
        assert typ == "OK", name
        validity = m.untagged_responses.get("UIDVALIDITY", [b"?"])[-1]
        typ, data = m.uid("FETCH", "1:*", "(FLAGS MODSEQ)")
        # \Recent is session state (RFC 3501 §2.3.2), not part of what is migrated.
        msgs = sorted(d.decode().replace(" \\Recent", "").replace("\\Recent", "") for d in data if d)
        out[name] = (validity, msgs)
    m.logout()
    return out


def migrate(server, location, check=True):
    return server.cli("migrate", "--to", str(location), check=check)


def populate(server):
    for i in range(6):
        res = server.cli("deliver", USER, stdin=f"Subject: message {i}\n\nbody {i}\n")
        assert res.returncode == 0, res.stderr
    m = login(server)
    m.select("INBOX")
    m.store("2", "+FLAGS", r"(\Seen $Forwarded)")
    m.store("3", "+FLAGS", r"(\Deleted)")
    m.expunge()
    m.create("Lists/rust")
    m.copy("1:2", "Lists/rust")
    m.logout()


def moved(server, tmp_path, pg_url=None) -> Yubin:
    """Stops `server`, migrates its store into a new server's data directory (or the empty
    PostgreSQL database `pg_url`), starts a server on it."""
    server.stop()
    if pg_url:
        target = Yubin(tmp_path / "moved", f'[storage]\nbackend = "postgres"\nurl = "{pg_url}"\n')
        res = migrate(server, pg_url)
    else:
        target = Yubin(tmp_path / "moved")
        res = migrate(server, target.data)
    assert "migrated to" in res.stdout and "2 accounts" in res.stdout, res.stdout
    target.migrate_output = res.stdout
    return target.start()


@pytest.fixture
def pg_database():
    """The URL of a fresh, empty database (with a password the server does not check, so the
    output can be searched for it), dropped afterwards."""
    name = f"yubin_mig_{uuid.uuid4().hex[:12]}"
    psql(PG_URL, f"CREATE DATABASE {name}")
    base = PG_URL.rsplit("/", 1)[0].replace("://postgres@", "://postgres:migr4te-secret@", 1)
    yield f"{base}/{name}"
    psql(PG_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def dkim_keys(server) -> list:
    """`yubin dkim list`: per key its line and its DNS record."""
    out = server.cli("dkim", "list").stdout
    assert "imported" not in out, out
    return out.splitlines()


def test_migration_keeps_uidvalidity_uids_modseqs_and_flags(server, tmp_path):
    populate(server)
    generated = server.cli("dkim", "generate", "example.com", "--selector", "mig1").stdout
    # A key file of an older version the running server has not imported (it imports at start).
    legacy = server.data / "dkim" / "example.com" / "legacy.pem"
    openssl_key(legacy, "ed25519")
    before = state(server)
    assert before["INBOX"][1], before
    after_server = moved(server, tmp_path)
    try:
        assert state(after_server) == before
        # The DKIM keys came along: the generated one and the file, imported on the way.
        assert f"imported the key file {legacy}" in after_server.migrate_output
        assert "2 DKIM keys" in after_server.migrate_output, after_server.migrate_output
        keys = dkim_keys(after_server)
        record = [line for line in generated.splitlines() if "._domainkey." in line]
        assert ["  " + record[0]] == [k for k in keys if k.startswith("  mig1._domainkey.")], keys
        assert any(k.startswith("example.com selector legacy ed25519 created ") for k in keys), keys
        assert keys == dkim_keys(server), "the same keys, times and records as the source"
        # New mail continues the UIDs; logins use the copied password hashes.
        after_server.cli("deliver", USER, stdin="Subject: after\n\nx\n")
        m = login(after_server)
        m.select("INBOX")
        typ, data = m.uid("SEARCH", "ALL")
        assert data[0].split()[-1] == b"7", data
        m.logout()
    finally:
        after_server.stop()


def test_migration_refuses_a_running_server_and_a_non_empty_target(server, make_server, tmp_path):
    res = migrate(server, tmp_path / "elsewhere", check=False)
    assert res.returncode != 0
    assert "already using the data directory" in res.stderr and "stop it first" in res.stderr, res.stderr
    other = make_server()
    other.stop()
    server.stop()
    res = migrate(server, other.data, check=False)
    assert res.returncode != 0 and "not empty" in res.stderr, res.stderr


def mbsync_syncs_nothing_after_a_move(server, tmp_path, pg_url=None):
    """A client synced before the move, pointed at the moved server, fetches and uploads
    nothing."""
    populate(server)
    sync = Mbsync(server)
    sync.sync()
    files_before = sync.snapshot()
    assert len(files_before) >= 5 + 2

    after_server = moved(server, tmp_path, pg_url)
    try:
        # The client is pointed at the new server: same address, new port and certificate.
        text = sync.config.read_text()
        text = re.sub(r"Port \d+", f"Port {after_server.ports['imaps']}", text)
        text = re.sub(r"CertificateFile .*", f"CertificateFile {after_server.data / 'tls' / 'cert.pem'}", text)
        sync.config.write_text(text)
        out = sync.sync()
        # Nothing downloaded (no body fetched), nothing uploaded, no UIDVALIDITY change.
        sent = [line for line in out.splitlines() if line.startswith(">>> ")]
        assert sent, out
        assert not [c for c in sent if "BODY" in c or " APPEND " in c], sent
        assert "uidvalidity" not in out.lower().replace("[uidvalidity", ""), out
        assert sync.snapshot() == files_before
    finally:
        after_server.stop()


@needs_mbsync
def test_an_mbsync_state_from_before_syncs_nothing_new_after(server, tmp_path):
    mbsync_syncs_nothing_after_a_move(server, tmp_path)


@needs_pg
@needs_mbsync
def test_an_mbsync_state_from_before_syncs_nothing_new_on_postgres(server, tmp_path, pg_database):
    mbsync_syncs_nothing_after_a_move(server, tmp_path, pg_database)


@needs_pg
def test_migration_to_postgres_and_back_keeps_what_clients_see(server, tmp_path, pg_database):
    populate(server)
    server.cli("dkim", "generate", "example.com", "--selector", "pg1", "--algorithm", "rsa")
    keys = dkim_keys(server)
    assert len(keys) == 2, keys
    before = state(server)
    on_pg = moved(server, tmp_path, pg_database)
    try:
        assert state(on_pg) == before
        assert dkim_keys(on_pg) == keys
        # The node on PostgreSQL takes new mail after the copied UIDs.
        on_pg.cli("deliver", USER, stdin="Subject: on pg\n\nx\n")
        m = login(on_pg)
        m.select("INBOX")
        typ, data = m.uid("SEARCH", "ALL")
        assert data[0].split()[-1] == b"7", data
        m.logout()
        with_new = state(on_pg)
    finally:
        on_pg.stop()
    # And back into an empty data directory.
    back = Yubin(tmp_path / "back")
    res = back.cli("migrate", "--from", pg_database)
    assert "migrated from" in res.stdout and "2 accounts" in res.stdout, res.stdout
    assert "migr4te-secret" not in res.stdout + res.stderr, "the password is never printed"
    assert "postgres:***@" in res.stdout, res.stdout
    assert "1 DKIM keys" in res.stdout, res.stdout
    back.start()
    try:
        assert state(back) == with_new
        assert dkim_keys(back) == keys
    finally:
        back.stop()


@needs_pg
def test_migration_into_a_non_empty_database_is_refused(server, tmp_path, pg_database):
    server.stop()
    migrate(server, pg_database)
    res = migrate(server, pg_database, check=False)
    assert res.returncode != 0 and "not empty" in res.stderr, res.stderr
    assert "migr4te-secret" not in res.stdout + res.stderr

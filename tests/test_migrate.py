"""`yubin migrate`: an installation copied to another store keeps every identity clients cache
(UIDVALIDITY, UIDs, MODSEQs, flags), so a client synced before the move downloads nothing after
it (issue 8). Here embedded -> embedded; the same code copies to and from PostgreSQL."""

import imaplib
import re
import shutil

import pytest

from conftest import PASSWORD, Yubin, client_tls
from test_imap_clients import Mbsync, needs_mbsync

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


def moved(server, tmp_path) -> Yubin:
    """Stops `server`, migrates its store into a new server's data directory, starts that."""
    server.stop()
    target = Yubin(tmp_path / "moved")
    res = migrate(server, target.data)
    assert "migrated to" in res.stdout and "2 accounts" in res.stdout, res.stdout
    return target.start()


def test_migration_keeps_uidvalidity_uids_modseqs_and_flags(server, tmp_path):
    populate(server)
    before = state(server)
    assert before["INBOX"][1], before
    after_server = moved(server, tmp_path)
    try:
        assert state(after_server) == before
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


@needs_mbsync
def test_an_mbsync_state_from_before_syncs_nothing_new_after(server, tmp_path):
    populate(server)
    sync = Mbsync(server)
    sync.sync()
    files_before = sync.snapshot()
    assert len(files_before) >= 5 + 2

    after_server = moved(server, tmp_path)
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

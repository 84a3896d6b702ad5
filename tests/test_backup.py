"""`yubin backup` / `yubin restore` (issue 10): a backup taken while SMTP clients deliver holds
every message acknowledged (250) before it started, with the same UIDVALIDITY and UIDs, once
restored into a new data directory and started; restore refuses a data directory in use;
PostgreSQL installations are told to use pg_dump."""

import imaplib
import os
import re
import smtplib
import threading
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, Yubin, client_tls

USER = "alice@example.com"
embedded_only = pytest.mark.skipif(
    os.environ.get("YUBIN_TEST_E2E_BACKEND") == "postgres", reason="the embedded store's backup"
)


def uid_map(server):
    """UIDVALIDITY and {subject: uid} of alice's INBOX."""
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=20)
    m.login(USER, PASSWORD)
    m.select("INBOX", readonly=True)
    validity = m.untagged_responses["UIDVALIDITY"][-1]
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out = {}
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            subject = item[1].decode().split(":", 1)[1].strip()
            out[subject] = uid
    m.logout()
    return validity, out


class Load:
    """Clients delivering to alice until stopped; records when each message was acknowledged."""

    def __init__(self, server, clients=4):
        self.server = server
        self.acked = {}  # subject -> time of the 250
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.errors = []
        self.threads = [threading.Thread(target=self.run, args=(c,)) for c in range(clients)]
        for t in self.threads:
            t.start()

    def run(self, c):
        n = 0
        try:
            with smtplib.SMTP("127.0.0.1", self.server.ports["smtp"], timeout=30) as s:
                while not self.stop.is_set():
                    subject = f"load {c}-{n}"
                    body = f"From: x@example.org\r\nTo: {USER}\r\nSubject: {subject}\r\n\r\n" + "line\r\n" * (n % 50)
                    s.sendmail("x@example.org", [USER], body)  # raises unless 250
                    with self.lock:
                        self.acked[subject] = time.time()
                    n += 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(e)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
        assert not self.errors, self.errors


@embedded_only
def test_backup_under_load_then_restore(make_server, tmp_path):
    a = make_server()
    load = Load(a)
    try:
        while len(load.acked) < 100:
            time.sleep(0.05)
        started = time.time()
        res = a.cli("backup", str(tmp_path / "backup"))
        assert "backed up" in res.stdout, res.stdout
        while len(load.acked) < len([t for t in load.acked.values() if t < started]) + 50:
            time.sleep(0.05)
    finally:
        load.finish()
    before = {s for s, t in load.acked.items() if t < started}
    assert len(before) >= 100
    validity, uids = uid_map(a)
    assert set(load.acked) <= set(uids)
    assert (tmp_path / "backup" / "yubin-backup.txt").exists()

    # Restore into a new data directory and start a server on it.
    b = Yubin(tmp_path / "restored")
    try:
        res = b.cli("restore", str(tmp_path / "backup"))
        assert "restored" in res.stdout, res.stdout
        b.start()
        r_validity, r_uids = uid_map(b)
        assert r_validity == validity
        missing = before - set(r_uids)
        assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:5]}"
        for subject, uid in r_uids.items():
            assert uids[subject] == uid, subject
        # The restored server takes new mail after the restored UIDs.
        with smtplib.SMTP("127.0.0.1", b.ports["smtp"], timeout=30) as s:
            s.sendmail("x@example.org", [USER], f"Subject: after restore\r\nTo: {USER}\r\n\r\nhi\r\n")
        _, r_uids2 = uid_map(b)
        assert r_uids2["after restore"] > max(r_uids.values())
        # A data directory in use is refused.
        res = b.cli("restore", str(tmp_path / "backup"), check=False)
        assert res.returncode != 0 and "not empty" in res.stderr, res.stderr
    finally:
        b.stop()
    # A backup into a directory that holds something is refused.
    res = a.cli("backup", str(tmp_path / "backup"), check=False)
    assert res.returncode != 0 and "not empty" in res.stderr, res.stderr
    res = a.cli("restore", str(tmp_path / "nothing-here"), check=False)
    assert res.returncode != 0 and "not a complete yubin backup" in res.stderr, res.stderr


def test_postgres_backup_points_to_pg_dump(tmp_path):
    y = Yubin(tmp_path / "pg", extra_config='[storage]\nbackend = "postgres"\nurl = "postgres://yubin@127.0.0.1:1/none"\n')
    for cmd in ("backup", "restore"):
        res = y.cli(cmd, str(tmp_path / "out"), check=False)
        assert res.returncode != 0
        assert "pg_dump" in res.stderr and "pg_restore" in res.stderr, res.stderr
        assert str(y.config) in res.stderr, "names the configuration file to copy"

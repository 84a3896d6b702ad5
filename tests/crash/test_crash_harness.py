"""The crash harness in CI (docs/crash-harness.md): SIGKILL under mixed load on each backend
(YUBIN_CRASH_ITERATIONS, default 20), PostgreSQL restarted under load, the data directory's
disk filled under load — and a self-test that the checks do see a loss and a damaged body.

YUBIN_CRASH_SEED repeats a run; the seed is printed either way (pytest -s shows it)."""

import os
import random
import sqlite3
import time

import pytest

import disk_full
import harness as h
import pg_restart
import run

ITERATIONS = int(os.environ.get("YUBIN_CRASH_ITERATIONS", "20"))
PG_URL = os.environ.get("YUBIN_TEST_PG_URL")


def seed() -> int:
    s = int(os.environ.get("YUBIN_CRASH_SEED") or random.randrange(1 << 30))
    print(f"\nseed {s} (YUBIN_CRASH_SEED={s} repeats this run)")
    return s


def assert_clean(label: str, f: dict):
    run.report(label, f) if "iterations" in f and "recovery_secs" not in f else None
    assert f["problems"] == [], "\n".join(f["problems"])
    assert f["lost"] == 0 and f["corrupted"] == 0, f
    assert f["acknowledged"] > 0, f


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_under_load_loses_nothing(backend):
    if backend == "postgres" and not PG_URL:
        pytest.skip("set YUBIN_TEST_PG_URL (scripts/pg-test-cluster)")
    f = run.crash(backend, ITERATIONS, seed())
    assert_clean(f"crash ({backend})", f)
    # The kills fell in the middle of work: some transfers had no answer yet.
    assert f["unacked_present"] + f["unacked_absent"] > 0, f
    assert f["submitted_acked"] > 0 and f["at_peer"] >= f["submitted_acked"], f


def test_postgres_restart_under_load():
    if not PG_URL:
        pytest.skip("set YUBIN_TEST_PG_URL (scripts/pg-test-cluster): PostgreSQL is needed")
    f = pg_restart.run(seed(), rounds=2)
    pg_restart.report(f)
    assert_clean("pg restart", f)
    assert f["temp_errors"] > 0, f
    assert all(r < 30 for r in f["recovery_secs"]), f


def test_disk_full_under_load():
    f = disk_full.run(seed())
    disk_full.report(f)
    if "skipped" in f:
        pytest.skip(f["skipped"])
    assert_clean("disk full", f)
    assert f["replies"]["smtp"].startswith("452 4.3.1"), f
    assert f["recovery_secs"] < 30, f


def test_the_checks_see_a_loss_and_a_damaged_body():
    """The harness's own test: a message removed and a body file changed behind the server's
    back are reported by the IMAP checks and by `yubin check`."""
    work = h.Workdir()
    a = b = None
    try:
        b = h.make_server(work.path / "peer", "", "b.test", [h.CAROL]).start()
        a = h.make_server(work.path / "node", h.queue_config(b.ports["smtp"]), "example.com",
                          [h.ALICE, h.BOB]).start()
        h.create_archive(a)
        ledger = h.Ledger(1)
        load = h.Load(a, ledger, 1).start()
        deadline = time.time() + 30
        while not [m for m in ledger.msgs.values() if m.state == "present" and m.account == h.ALICE
                   and len(m.body) > 32 * 1024 and m.where and m.where[1]]:
            assert time.time() < deadline, "no large APPEND acknowledged"
            time.sleep(0.2)
        load.finish()
        h.verify(a, ledger, "before")
        assert ledger.problems == [] and h.store_check(a, ledger, "before").returncode == 0
        present = [m for m in ledger.msgs.values() if m.state == "present"]
        lost = next(m for m in present if m.account == h.BOB and len(m.body) < 30_000)
        damaged = next(m for m in present if m.account == h.ALICE and len(m.body) > 32 * 1024)
        db = sqlite3.connect(a.data / "yubin.db")
        blob = db.execute(
            "SELECT m.blob_hash FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id "
            "JOIN accounts a ON a.id = mb.account_id WHERE a.address = ? AND mb.name = ? AND m.uid = ?",
            (h.ALICE, *damaged.where)).fetchone()[0]
        # Bob's message (a small body, inside the database): its row goes behind the server's back.
        gone = db.execute("DELETE FROM messages WHERE blob_hash IN "
                          "(SELECT hash FROM blob_bodies WHERE instr(body, ?) > 0)",
                          (f"X-Crash-Id: {lost.cid}\r\n".encode(),)).rowcount
        db.commit()
        db.close()
        assert gone == 1
        # Alice's large message: a byte of its file changes.
        path = a.data / "blobs" / blob[:2] / blob
        data = bytearray(path.read_bytes())
        data[-10] ^= 0x20
        path.write_bytes(bytes(data))
        h.verify(a, ledger, "after", full=True)
        assert ledger.figures["lost"] == 1, ledger.problems
        assert ledger.figures["corrupted"] == 1, ledger.problems
        assert any(lost.cid in p for p in ledger.problems)
        assert any(damaged.cid in p and "differs" in p for p in ledger.problems)
        res = h.store_check(a, ledger, "after")
        assert res.returncode == 1, res.stdout
        assert f"body {blob}: content hashes to" in res.stdout, res.stdout
        assert "quota counters say" in res.stdout and "refcount" in res.stdout, res.stdout
    finally:
        for y in (a, b):
            if y is not None:
                y.stop()
        work.cleanup()

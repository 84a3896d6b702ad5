#!/usr/bin/env python3
"""The crash harness (docs/crash-harness.md): mixed load on yubin — SMTP delivery, submission
to a second yubin on loopback, IMAP APPEND/STORE/EXPUNGE/MOVE, POP3 DELE — killed with SIGKILL
at random moments and restarted on the same store, N times; after each restart, everything the
server acknowledged is checked through IMAP and `yubin check`, and at the end the peer's
mailbox through IMAP.

    python3 tests/crash/run.py --backend sqlite --iterations 1000 --seed 7
    python3 tests/crash/run.py --backend postgres --iterations 20     # YUBIN_TEST_PG_URL
    python3 tests/crash/run.py --mode pg-restart                      # own PostgreSQL cluster
    python3 tests/crash/run.py --mode disk-full                       # tmpfs, needs mount(8)

Exit status 0 when nothing acknowledged was lost or corrupted; the figures are printed.
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402


def crash(backend: str, iterations: int, seed: int, max_load: float = 1.5, log=print) -> dict:
    rng = random.Random(seed)
    work = h.Workdir()
    pg_url, pg_db = os.environ.get("YUBIN_TEST_PG_URL"), None
    a = b = None
    try:
        b = h.make_server(work.path / "peer", "", "b.test", [h.CAROL]).start()
        storage = ""
        if backend == "postgres":
            if not pg_url:
                raise SystemExit("--backend postgres needs YUBIN_TEST_PG_URL (eval \"$(scripts/pg-test-cluster start)\")")
            storage, pg_db = h.postgres_config(pg_url, "kill")
        a = h.make_server(work.path / "node", h.queue_config(b.ports["smtp"]) + storage,
                          "example.com", [h.ALICE, h.BOB])
        a.start()
        h.create_archive(a)
        ledger = h.Ledger(seed)
        started = time.time()
        for i in range(1, iterations + 1):
            load = h.Load(a, ledger, rng.randrange(1 << 30)).start()
            time.sleep(rng.uniform(0.2, max_load))
            h.kill9(a)
            load.finish()
            h.check_crashed(a, ledger, f"iteration {i}")
            a.start()
            # Every body byte-compared again every tenth iteration and at the end.
            h.verify(a, ledger, f"iteration {i}", full=i % 10 == 0 or i == iterations)
            h.store_check(a, ledger, f"iteration {i}")
            if load.errors:
                ledger.problem("corrupted", f"iteration {i}: unexpected replies: {load.errors[:5]}")
            if ledger.problems:
                break
            if i % 10 == 0 or i == iterations:
                log(f"  {backend}: {i}/{iterations} iterations, {ledger.figures['acknowledged']} acknowledged, "
                    f"{time.time() - started:.0f}s")
        peer = h.verify_peer(a, b, ledger, iterations) if not ledger.problems else {}
        h.store_check(a, ledger, "end", grace=0)
        return summary(ledger, backend, iterations, peer, time.time() - started)
    finally:
        for y in (a, b):
            if y is not None:
                y.stop()
        if pg_db:
            h.drop_database(pg_url, pg_db)
        work.cleanup()


def summary(ledger, label, iterations, peer, secs) -> dict:
    f = dict(ledger.figures, iterations=iterations, seconds=round(secs, 1), **peer)
    f["problems"] = ledger.problems[:50]
    return f


def report(label: str, f: dict):
    print(f"{label}: {f['iterations']} iterations in {f['seconds']}s: acknowledged {f['acknowledged']}, "
          f"lost {f['lost']}, corrupted {f['corrupted']}, duplicates at the peer {f.get('duplicates', 0)}, "
          f"UID reuse {f['uid_reuse']}, went back {f['went_back']}, flags lost {f['flags_lost']}, "
          f"resurrected {f['resurrected']}; unacknowledged found whole {f['unacked_present']}, "
          f"absent {f['unacked_absent']}; uncommitted body files left by the kills (swept at start) "
          f"{f.get('orphans_after_kill', 0)}")
    for p in f["problems"]:
        print("  PROBLEM:", p)


def failed(f: dict) -> bool:
    return bool(f["problems"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["crash", "pg-restart", "disk-full"], default="crash")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max-load", type=float, default=1.5, help="longest load before a kill, seconds")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed {seed}")
    if args.mode == "crash":
        f = crash(args.backend, args.iterations, seed, args.max_load)
        report(f"crash ({args.backend})", f)
    elif args.mode == "pg-restart":
        import pg_restart
        f = pg_restart.run(seed, rounds=args.iterations if args.iterations != 20 else 2)
        pg_restart.report(f)
    else:
        import disk_full
        f = disk_full.run(seed)
        disk_full.report(f)
    sys.exit(1 if failed(f) else 0)


if __name__ == "__main__":
    main()

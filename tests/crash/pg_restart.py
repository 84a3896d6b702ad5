"""PostgreSQL itself goes away under load and comes back (docs/crash-harness.md): yubin answers
temporary errors while the database is down — never a permanent one, never a crash — and
serves again by itself once it is back, without a restart; nothing it acknowledged is lost.

Runs on a PostgreSQL cluster of its own (scripts/pg-test-cluster with another port and
directory): the shared test cluster must not be restarted under other people's tests.
"""

import imaplib
import os
import poplib
import random
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import harness as h

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "scripts" / "pg-test-cluster"


class Cluster:
    """A private cluster: started like scripts/pg-test-cluster does, on its own port."""

    def __init__(self, port: int):
        self.port = port
        self.dir = f"/tmp/yubin-crash-pg-{port}"
        self.env = {**os.environ, "YUBIN_TEST_PG_PORT": str(port), "YUBIN_TEST_PG_DIR": self.dir}
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()])
        if not bins:
            raise h.HarnessError("PostgreSQL is not installed (apt-get install postgresql)")
        self.pg_ctl = str(bins[-1] / "pg_ctl")

    def start(self) -> str:
        out = subprocess.run([str(SCRIPT), "start"], env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise h.HarnessError(f"pg-test-cluster start: {out.stderr}")
        return out.stdout.strip().split("=", 1)[1]

    def as_owner(self, *args):
        cmd = [self.pg_ctl, "-D", f"{self.dir}/data", *args]
        if os.getuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def stop_server(self):
        self.as_owner("-m", "fast", "-w", "stop")

    def start_server(self):
        # The options the script starts it with (pg_ctl restart would reuse them too).
        self.as_owner("-l", f"{self.dir}/server.log", "-w", "-t", "60", "-o",
                      f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off "
                      f"-c max_connections=200", "start")

    def destroy(self):
        subprocess.run([str(SCRIPT), "stop"], env=self.env, capture_output=True)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_cluster(rng: random.Random) -> tuple[Cluster, str]:
    """A private cluster on a free port below the kernel's ephemeral range (32768 and up by
    default), so no client socket of another test can hold its port; a port taken between the
    check and PostgreSQL's bind is retried with another."""
    last = None
    for _ in range(5):
        port = rng.randrange(20000, 30000)
        if not port_is_free(port):
            continue
        cluster = Cluster(port)
        try:
            return cluster, cluster.start()
        except h.HarnessError as e:
            cluster.destroy()
            if "already in use" not in str(e):
                raise
            last = e
    raise h.HarnessError(f"no free port for the private PostgreSQL cluster: {last}")


def probe(ledger, account) -> bytes:
    """A message the ledger knows (uncertain until checked)."""
    cid = ledger.new_cid("probe")
    body = h.message(cid, "x@elsewhere.test", account, 100, random.Random())
    ledger.add(h.Msg(cid, account, body, exact=account == h.ALICE))
    return body


def serves(a, ledger) -> list[str]:
    """One delivery, one APPEND and one POP3 login; what failed (empty: everything works)."""
    failed = []
    try:
        with smtplib.SMTP("127.0.0.1", a.ports["smtp"], timeout=10) as s:
            s.sendmail("x@elsewhere.test", [h.BOB], probe(ledger, h.BOB))
    except (OSError, smtplib.SMTPException) as e:
        failed.append(f"smtp: {e!r}")
    try:
        c = imaplib.IMAP4_SSL("127.0.0.1", a.ports["imaps"], ssl_context=h.client_tls(), timeout=10)
        c.login(h.ALICE, h.PASSWORD)
        typ, data = c.append("INBOX", None, None, probe(ledger, h.ALICE))
        c.logout()
        if typ != "OK":
            failed.append(f"imap APPEND: {typ} {data}")
    except (OSError, imaplib.IMAP4.error) as e:
        failed.append(f"imap: {e!r}")
    try:
        p = poplib.POP3_SSL("127.0.0.1", a.ports["pop3s"], context=h.client_tls(), timeout=10)
        p.user(h.BOB)
        p.pass_(h.PASSWORD)
        p.stat()
        p.quit()
    except (OSError, poplib.error_proto) as e:
        failed.append(f"pop3: {e!r}")
    return failed


def run(seed: int, rounds: int = 2, outage: float = 2.0) -> dict:
    rng = random.Random(seed)
    work = h.Workdir()
    cluster, admin = start_cluster(rng)
    a = b = None
    started = time.time()
    ledger = h.Ledger(seed)
    recoveries = []
    try:
        b = h.make_server(work.path / "peer", "", "b.test", [h.CAROL]).start()
        storage, _ = h.postgres_config(admin, "restart")
        a = h.make_server(work.path / "node", h.queue_config(b.ports["smtp"]) + storage,
                          "example.com", [h.ALICE, h.BOB]).start()
        h.create_archive(a)
        temp_seen = 0
        for r in range(1, rounds + 1):
            load = h.Load(a, ledger, rng.randrange(1 << 30)).start()
            time.sleep(rng.uniform(0.5, 1.5))
            before = len(load.temp)
            cluster.stop_server()
            time.sleep(outage)
            during = len(load.temp) - before
            temp_seen += during
            cluster.start_server()
            back = time.time()
            # yubin must serve again by itself: no restart, within the pool's reconnect.
            while (failed := serves(a, ledger)):
                if a.proc.poll() is not None:
                    ledger.problem("corrupted", f"round {r}: yubin exited during the outage:\n{a.logs()[-3000:]}")
                    break
                if time.time() - back > 30:
                    ledger.problem("corrupted", f"round {r}: not serving 30s after PostgreSQL came back: {failed}")
                    break
                time.sleep(0.5)
            recoveries.append(round(time.time() - back, 1))
            time.sleep(0.5)
            load.finish()
            if during == 0:
                ledger.problem("corrupted", f"round {r}: no temporary error seen during a {outage}s outage")
            if load.errors:
                ledger.problem("corrupted", f"round {r}: permanent or unexpected replies during the outage: {load.errors[:5]}")
            if a.proc.poll() is not None:
                break
            h.verify(a, ledger, f"round {r}")
            h.store_check(a, ledger, f"round {r}")
            if ledger.problems:
                break
        peer = h.verify_peer(a, b, ledger, kills=rounds) if not ledger.problems else {}
        f = dict(ledger.figures, iterations=rounds, seconds=round(time.time() - started, 1), **peer)
        f.update(temp_errors=temp_seen, recovery_secs=recoveries, problems=ledger.problems[:50])
        return f
    finally:
        for y in (a, b):
            if y is not None:
                y.stop()
        cluster.destroy()
        work.cleanup()


def report(f: dict):
    print(f"PostgreSQL restarts: {f['iterations']} under load in {f['seconds']}s: acknowledged {f['acknowledged']}, "
          f"lost {f['lost']}, corrupted {f['corrupted']}, temporary errors during the outages {f['temp_errors']}, "
          f"serving again after {f['recovery_secs']} s, duplicates at the peer {f.get('duplicates', 0)}")
    for p in f["problems"]:
        print("  PROBLEM:", p)

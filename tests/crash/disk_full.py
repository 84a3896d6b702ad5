"""The data directory fills up under load (docs/crash-harness.md): on a small tmpfs (`mount -t
tmpfs -o size=…`, so root and mount(8) are needed; skipped otherwise), a filler file takes the
last free byte while SMTP, submission, IMAP and POP3 clients write. Every protocol must answer
its temporary error — SMTP `452 4.3.1` (RFC 3463 X.3.1: mail system full), IMAP `NO
[LIMIT]` (RFC 5530 §3), POP3 `-ERR [SYS/TEMP]` (RFC 3206) — nothing acknowledged may be
lost or damaged (`yubin check` clean), and once the filler is deleted yubin serves again by
itself, without a restart.
"""

import imaplib
import os
import poplib
import random
import smtplib
import subprocess
import time

import harness as h

SIZE_MB = 48


class MountRefused(Exception):
    pass


def mount_tmpfs(path, size_mb: int):
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise MountRefused(f"mount -t tmpfs refused ({r.stderr.strip() or r.returncode}); run as root")


def umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path) -> int:
    """Writes `path` until the file system is full; returns the bytes written."""
    n = 0
    chunk = b"\0" * (1 << 20)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError:
                break
        # The last few KiB, so that not even a small body fits.
        for size in (65536, 4096, 512, 1):
            while True:
                try:
                    n += f.write(b"\0" * size)
                except OSError:
                    break
    return n


def probe_smtp(a, ledger) -> str:
    """One delivery; its final reply as 'code text'."""
    cid = ledger.new_cid("full")
    body = h.message(cid, "x@elsewhere.test", h.BOB, 400, random.Random())
    m = h.Msg(cid, h.BOB, body, exact=False)
    ledger.add(m)
    try:
        with smtplib.SMTP("127.0.0.1", a.ports["smtp"], timeout=20) as s:
            s.sendmail("x@elsewhere.test", [h.BOB], body)
        m.state, m.where = "present", ("INBOX", None)
        return "250"
    except smtplib.SMTPRecipientsRefused as e:
        code, text = next(iter(e.recipients.values()))
        return f"{code} {text.decode(errors='replace')}"
    except smtplib.SMTPResponseException as e:
        return f"{e.smtp_code} {e.smtp_error.decode(errors='replace')}"


def probe_imap(a, ledger) -> str:
    cid = ledger.new_cid("full")
    body = h.message(cid, h.ALICE, h.ALICE, 400, random.Random())
    m = h.Msg(cid, h.ALICE, body, exact=True)
    ledger.add(m)
    c = imaplib.IMAP4_SSL("127.0.0.1", a.ports["imaps"], ssl_context=h.client_tls(), timeout=20)
    try:
        c.login(h.ALICE, h.PASSWORD)
        typ, data = c.append("INBOX", None, None, body)
        if typ == "OK":
            m.state = "present"
            m.where = ("INBOX", int(data[0].split(b" ")[2].rstrip(b"]")))
        return f"{typ} {data[0].decode(errors='replace')}"
    except imaplib.IMAP4.error as e:
        return f"NO {e}"
    finally:
        try:
            c.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def probe_pop3(a, ledger) -> str:
    """Deletes bob's first message the ledger knows as present; the reply that failed, or
    '+OK'."""
    p = poplib.POP3_SSL("127.0.0.1", a.ports["pop3s"], context=h.client_tls(), timeout=20)
    target = None
    try:
        p.user(h.BOB)
        p.pass_(h.PASSWORD)
        count, _ = p.stat()
        for n in range(1, count + 1):
            mo = h.CID.search(b"\r\n".join(p.top(n, 0)[1]))
            m = ledger.msgs.get(mo.group(1).decode()) if mo else None
            if m is not None and m.state == "present":
                target = m
                p.dele(n)
                break
        if target:
            target.state = "maybe"
        p.quit()
        if target:
            target.state = "gone"
        return "+OK"
    except poplib.error_proto as e:
        return e.args[0].decode(errors="replace") if isinstance(e.args[0], bytes) else str(e.args[0])
    finally:
        try:
            p.close()
        except (OSError, AttributeError):
            pass


def run(seed: int, size_mb: int = SIZE_MB) -> dict:
    rng = random.Random(seed)
    work = h.Workdir()
    data = work.path / "node" / "data"
    a = b = None
    started = time.time()
    ledger = h.Ledger(seed)
    f = {}
    try:
        try:
            mount_tmpfs(data, size_mb)
        except MountRefused as e:
            return {"skipped": str(e), "problems": []}
        b = h.make_server(work.path / "peer", "", "b.test", [h.CAROL]).start()
        a = h.make_server(work.path / "node", h.queue_config(b.ports["smtp"]), "example.com",
                          [h.ALICE, h.BOB]).start()
        h.create_archive(a)
        filler = data / "filler"
        replies: dict[str, list] = {"smtp": [], "imap": [], "pop3": []}
        load = h.Load(a, ledger, rng.randrange(1 << 30)).start()
        time.sleep(rng.uniform(0.5, 1.5))
        # The disk fills while the clients write.
        filled = fill(filler)
        time.sleep(2)
        load.finish()
        if a.proc.poll() is not None:
            ledger.problem("corrupted", f"yubin exited on the full disk:\n{a.logs()[-3000:]}")
            return summary(ledger, started, {}, filled)
        if load.errors:
            ledger.problem("corrupted", f"permanent or unexpected replies on the full disk: {load.errors[:5]}")
        # Each protocol, on the full disk: its temporary error, exactly. A write that still
        # fits (SQLite reuses its WAL file's pages) may succeed instead — then it is
        # acknowledged and checked like any other; anything else is wrong.
        # POP3 may also find the maildrop still locked: the unlock of a session that ended on
        # the full disk could not be written either (RFC 2449 §8.1.1 [IN-USE], temporary too).
        expect = {"smtp": (("452 4.3.1",), "250"), "imap": (("NO [LIMIT]",), "OK"),
                  "pop3": (("-ERR [SYS/TEMP]", "-ERR [IN-USE]"), "+OK")}
        probes = {"smtp": probe_smtp, "imap": probe_imap, "pop3": probe_pop3}
        for proto, (temporary, ok) in expect.items():
            for _ in range(5):
                r = probes[proto](a, ledger)
                replies[proto].append(r)
                if r.startswith(temporary):
                    break
                if not r.startswith(ok):
                    ledger.problem("corrupted", f"{proto} on the full disk answered {r!r}, not {temporary}")
                    break
            else:
                ledger.problem("corrupted", f"{proto} never answered {temporary} on the full disk: {replies[proto]}")
        res = h.store_check(a, ledger, "disk full", grace=600)
        # Space comes back: service resumes by itself.
        os.unlink(filler)
        back = time.time()
        while True:
            now = [probe_smtp(a, ledger), probe_imap(a, ledger), probe_pop3(a, ledger)]
            if now[0] == "250" and now[1].startswith("OK") and now[2] == "+OK":
                break
            if time.time() - back > 30:
                ledger.problem("corrupted", f"not serving 30s after space was freed: {now}")
                break
            time.sleep(0.5)
        recovery = round(time.time() - back, 1)
        load = h.Load(a, ledger, rng.randrange(1 << 30)).start()
        time.sleep(1)
        load.finish()
        if load.errors:
            ledger.problem("corrupted", f"unexpected replies after space was freed: {load.errors[:5]}")
        h.verify(a, ledger, "after the disk was full")
        # A delivery refused for want of space may have written its body before its row could
        # be: an orphan file, by design swept at the next open (blob before metadata). So the
        # running store may hold orphans and nothing else; after the restart, nothing at all.
        h.check_crashed(a, ledger, "after the disk was full")
        # And across a restart: what was acknowledged on the full disk is on the disk.
        h.kill9(a)
        a.start()
        h.verify(a, ledger, "restart after the disk was full")
        h.store_check(a, ledger, "restart after the disk was full")
        peer = h.verify_peer(a, b, ledger, kills=1) if not ledger.problems else {}
        f = summary(ledger, started, peer, filled)
        f.update(replies={k: v[-1] for k, v in replies.items()}, recovery_secs=recovery,
                 temp_errors=len(load.temp), check=res.stdout.strip().splitlines()[-1:])
        return f
    finally:
        for y in (a, b):
            if y is not None:
                y.stop()
        umount(data)
        work.cleanup()


def summary(ledger, started, peer, filled) -> dict:
    return dict(ledger.figures, seconds=round(time.time() - started, 1), filler_bytes=filled, **peer,
                problems=ledger.problems[:50])


def report(f: dict):
    if "skipped" in f:
        print(f"disk full: skipped: {f['skipped']}")
        return
    print(f"disk full: {f['seconds']}s: acknowledged {f['acknowledged']}, lost {f['lost']}, "
          f"corrupted {f['corrupted']}, duplicates at the peer {f.get('duplicates', 0)}; on the full disk {f.get('replies')}; serving again "
          f"{f.get('recovery_secs')}s after space was freed; yubin check: {f.get('check')}")
    for p in f["problems"]:
        print("  PROBLEM:", p)

"""Memory per IDLE session, and memory given back when the sessions leave (issue 13).

2,000 TLS IMAP sessions, each on its own account (imported in one `yubin user import`), log in,
SELECT INBOX and sit in IDLE (RFC 2177). The server's anonymous resident memory (RssAnon: heap
and stacks, not the pages of its executable) is read before, during and after:

- during: the growth per session stays under a bound. An account with a session must not cost
  a preallocated notification ring (the old change hub's 1,024 slots made that 114 KiB per
  account), and a session waiting in IDLE holds no read buffer, TLS buffer or command state
  of its own.
- after: when every session has logged out, the server gives most of that memory back, and
  the whole process (VmRSS) is back near its baseline: the change hub drops an account's
  channel with its last subscriber, and once the open connections fall to half their peak the
  store releases its caches, the runtime's workers hand over their allocator caches, and the
  allocator's free pages are returned (`yubin::memory`).

The bounds are for the debug build the suite runs (larger futures than release); the
release-build figures are in benches/imap_scale.sh's report.
"""

import asyncio
import base64
import hashlib
import os
import ssl
import tempfile
import time
from pathlib import Path

from conftest import Yubin

SESSIONS = 2000
WARMUP = 50
PASSWORD = "idle-memory-pw"
# Debug build, TLS, SELECTed empty INBOX: about 9.2 KiB measured.
MAX_KIB_PER_SESSION = 14
# Of the memory the sessions took, at most this share may stay after they left: the verified
# credentials (the reconnect storm needs them), the \Recent marks, and allocator pages that
# blocks still in use pin. The debug build measures 22-26 % (release: about 15 %).
MAX_KEPT_SHARE = 0.35
# The process's whole resident memory after they left, against its baseline. The issue's
# target is 10 % for the release build (benches/imap_scale.sh reports it); the debug build
# the suite runs keeps about 12 % (its executable's pages count too).
MAX_VM_RSS_GROWTH = 0.16


def status_kib(pid: int, field: str) -> int:
    """A KiB figure of /proc/PID/status (RssAnon, VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field}")


def rss_anon_kib(pid: int) -> int:
    return status_kib(pid, "RssAnon")


def ssha512(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode()


async def session(port: int, ctx: ssl.SSLContext, i: int, ready: list, stop: asyncio.Event):
    """One client: TLS, LOGIN, SELECT INBOX, IDLE until `stop`, then DONE and LOGOUT."""
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    assert (await r.readline()).startswith(b"* OK")
    w.write(f"a LOGIN u{i}@idle.example {PASSWORD}\r\nb SELECT INBOX\r\nc IDLE\r\n".encode())
    while True:
        line = await r.readline()
        assert line, f"session {i} closed before IDLE"
        assert not line.startswith((b"a NO", b"a BAD", b"b NO", b"b BAD", b"c BAD")), line
        if line.startswith(b"+ "):
            break
    ready.append(i)
    await stop.wait()
    w.write(b"DONE\r\n")
    # RFC 2177 §3: DONE ends IDLE with the IDLE command's tagged OK.
    while not (line := await r.readline()).startswith(b"c "):
        assert line, f"session {i} closed in IDLE"
    assert line.startswith(b"c OK"), line
    w.write(b"d LOGOUT\r\n")
    await w.drain()
    w.close()


async def hold(port: int, ctx: ssl.SSLContext, first: int, n: int):
    """Opens sessions first..first+n (100 at a time); returns (stop event, tasks)."""
    stop, ready, tasks = asyncio.Event(), [], []
    for i in range(first, first + n):
        tasks.append(asyncio.create_task(session(port, ctx, i, ready, stop)))
        if len(tasks) % 100 == 0:
            while len(ready) < len(tasks) - 50:
                await asyncio.sleep(0.01)
                for t in tasks:
                    if t.done() and t.exception():
                        raise t.exception()
    deadline = time.time() + 120
    while len(ready) < n:
        assert time.time() < deadline, f"only {len(ready)} of {n} sessions in IDLE"
        await asyncio.sleep(0.05)
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()
    return stop, tasks


async def leave(stop: asyncio.Event, tasks: list):
    stop.set()
    await asyncio.gather(*tasks)


def settled(pid: int, wait: float, seconds: float) -> tuple[int, int]:
    """(RssAnon, VmRSS) once RssAnon stops falling, at most `seconds`. The server looks at
    its open connections every second and trims when they have fallen to half their peak,
    then once more 11 s later (after the runtime's idle blocking threads have exited): `wait`
    seconds are waited out whatever the readings, so a reading taken before those cannot pass
    for a settled one."""
    end = time.time() + seconds
    time.sleep(wait)
    last = rss_anon_kib(pid)
    while time.time() < end:
        time.sleep(1)
        now = rss_anon_kib(pid)
        if now >= last - 64:
            break
        last = now
    return rss_anon_kib(pid), status_kib(pid, "VmRSS")


def test_idle_sessions_on_distinct_accounts_cost_little_and_give_memory_back():
    with tempfile.TemporaryDirectory(prefix="yubin-idle-mem-") as tmp:
        y = Yubin(Path(tmp) / "s", auth_config="rehash_imported = false\n")
        y.write_config()
        h = ssha512(PASSWORD)
        users = Path(tmp) / "users"
        users.write_text("".join(f"u{i}@idle.example:{h}\n" for i in range(SESSIONS + WARMUP)))
        out = y.cli("user", "import", str(users), "--create-domains").stdout
        assert f"imported {SESSIONS + WARMUP} account(s)" in out, out
        y.start()
        try:
            pid = y.proc.pid
            port = y.ports["imaps"]
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE

            async def run():
                # Warm-up: one-time allocations (TLS configuration, store caches) are not the
                # sessions' cost.
                stop, tasks = await hold(port, ctx, SESSIONS, WARMUP)
                await leave(stop, tasks)
                await asyncio.sleep(2)
                base = settled(pid, 4, 15)
                stop, tasks = await hold(port, ctx, 0, SESSIONS)
                await asyncio.sleep(2)
                during = rss_anon_kib(pid)
                await leave(stop, tasks)
                return base, during

            (base, base_vm), during = asyncio.run(run())
            per_session = (during - base) / SESSIONS
            print(f"RssAnon base {base} KiB, with {SESSIONS} sessions {during} KiB: "
                  f"{per_session:.2f} KiB per session")
            assert per_session < MAX_KIB_PER_SESSION, (
                f"{per_session:.1f} KiB per IDLE session (RssAnon {base} -> {during} KiB)"
            )
            after, after_vm = settled(pid, 16, 30)
            kept = (after - base) / max(during - base, 1)
            print(f"after they left: {after} KiB, {kept:.0%} of their memory kept; "
                  f"VmRSS {base_vm} -> {after_vm} KiB ({after_vm / base_vm - 1:+.1%})")
            assert kept <= MAX_KEPT_SHARE, (
                f"RssAnon {base} KiB before, {during} with {SESSIONS} sessions, {after} after "
                f"they left: {kept:.0%} of their memory kept"
            )
            assert after_vm <= base_vm * (1 + MAX_VM_RSS_GROWTH), (
                f"VmRSS {base_vm} KiB before the sessions, {after_vm} KiB after they left"
            )
            # The server still serves after all that.
            import imaplib

            m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
            m.login("u1@idle.example", PASSWORD)
            assert m.select("INBOX")[0] == "OK"
            m.logout()
        finally:
            y.stop()


def test_the_server_keeps_transparent_huge_pages_off_its_heap(make_server, monkeypatch):
    """Where the kernel's transparent huge pages are `always` (Debian's and RHEL's kernels),
    khugepaged refills the heap pages the sessions gave back, 2 MiB at a time: measured +70 %
    over the baseline two minutes after 2,000 sessions left. The server turns THP off for
    itself (PR_SET_THP_DISABLE, shown as THP_enabled in /proc/PID/status); YUBIN_HUGE_PAGES=1
    leaves the system's choice."""
    off = make_server(users=False)
    assert status_kib(off.proc.pid, "THP_enabled") == 0
    monkeypatch.setenv("YUBIN_HUGE_PAGES", "1")
    kept = make_server(users=False)
    assert status_kib(kept.proc.pid, "THP_enabled") == 1

"""The crash harness's pieces: servers, the ledger of what yubin acknowledged, the load workers
and the checks after each restart. `run.py` drives them; see docs/crash-harness.md.

The ledger knows every message by a unique id (`X-Crash-Id:` in its header) and what the server
acknowledged about it: a 250 after DATA, an OK with APPENDUID, the OKs of STORE, UID EXPUNGE and
MOVE, the +OK of a POP3 QUIT after DELE. An operation whose answer never came (the kill fell in
between) leaves the message uncertain ("maybe": present or not, but if present then whole);
every check settles the uncertainty from what the restarted server shows.
"""

import imaplib
import os
import poplib
import random
import re
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import PASSWORD, Yubin, client_tls  # noqa: E402

ALICE, BOB, CAROL = "alice@example.com", "bob@example.com", "carol@b.test"
ARCHIVE = "Archive"
CID = re.compile(rb"X-Crash-Id: (\S+)")
# One connection per destination at most: the transfers in flight at a kill, which the peer
# may receive twice (RFC 5321 §6.1 prefers duplicates to losses).
PER_DESTINATION = 2

imaplib._MAXLINE = 10_000_000


class HarnessError(AssertionError):
    pass


def queue_config(peer_port: int) -> str:
    return (
        f"[queue]\nremote_port = {peer_port}\nretry_initial_secs = 1\nretry_max_secs = 2\n"
        f"poll_interval_secs = 1\nmax_per_destination = {PER_DESTINATION}\nlease_secs = 3\n"
        '[dns.override."b.test"]\na = ["127.0.0.1"]\n'
    )


def postgres_config(admin_url: str, tag: str) -> tuple[str, str]:
    """A fresh database on the server of `admin_url`; returns ([storage] table, its name)."""
    name = f"yubin_crash_{tag}_{os.urandom(4).hex()}"
    subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {name}"], check=True, capture_output=True)
    url = admin_url.rpartition("/")[0] + "/" + name
    return f'[storage]\nbackend = "postgres"\nurl = "{url}"\npool_size = 6\n', name


def drop_database(admin_url: str, name: str):
    subprocess.run(
        ["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
        check=False, capture_output=True,
    )


def make_server(workdir: Path, extra: str, domain: str, users: list) -> Yubin:
    y = Yubin(workdir, extra)
    y.cli("domain", "add", domain)
    for u in users:
        y.cli("user", "add", u, "--password-stdin", stdin=PASSWORD + "\n")
    return y


def create_archive(a: Yubin):
    c = imaplib.IMAP4_SSL("127.0.0.1", a.ports["imaps"], ssl_context=client_tls(), timeout=20)
    c.login(ALICE, PASSWORD)
    typ, data = c.create(ARCHIVE)
    c.logout()
    if typ != "OK" and b"ALREADYEXISTS" not in data[0]:   # a default special-use mailbox
        raise HarnessError(f"CREATE {ARCHIVE}: {data}")


def kill9(y: Yubin):
    """SIGKILL: no shutdown path runs, as with a crash or `kill -9`."""
    if y.proc is None:
        return
    y.proc.kill()
    y.proc.wait(10)
    y.log.close()
    y.proc = None


# --- the ledger ----------------------------------------------------------------------------

class Msg:
    __slots__ = ("cid", "account", "body", "exact", "state", "where", "flagged", "busy")

    def __init__(self, cid, account, body, exact):
        self.cid, self.account, self.body, self.exact = cid, account, body, exact
        self.state = "maybe"      # "present" | "gone" | "maybe" (0 or 1 copy)
        self.where = None         # (mailbox, uid) when known
        self.flagged = False      # \Flagged acknowledged (RFC 9051 §6.4.6)
        self.busy = False         # a worker has an operation on it in flight


class Ledger:
    def __init__(self, seed: int):
        self.lock = threading.Lock()
        self.msgs: dict[str, Msg] = {}
        self.submitted: dict[str, bool] = {}     # cid -> acknowledged (250) by A
        self.sub_bodies: dict[str, bytes] = {}   # cid -> the bytes submitted
        self.seq = 0
        self.run = f"{seed}-{os.urandom(3).hex()}"
        # (account, mailbox, uid) -> cid: a UID, once acknowledged, names that message for ever
        # (RFC 9051 §2.3.1.1; UIDVALIDITY never changes here).
        self.uids: dict[tuple, str] = {}
        # (account, mailbox, uid) -> (cid, size): bodies found byte-identical at a check.
        self.checked: dict[tuple, tuple] = {}
        # (account, mailbox) -> highest UIDNEXT / HIGHESTMODSEQ a client was shown.
        self.uidnext: dict[tuple, int] = {}
        self.modseq: dict[tuple, int] = {}
        self.figures = dict(acknowledged=0, lost=0, corrupted=0, duplicates=0, uid_reuse=0,
                            went_back=0, flags_lost=0, resurrected=0, unacked_present=0,
                            unacked_absent=0, temp_errors=0)
        self.problems: list[str] = []

    def new_cid(self, kind: str) -> str:
        with self.lock:
            self.seq += 1
            return f"{kind}-{self.run}-{self.seq}"

    def add(self, m: Msg):
        with self.lock:
            self.msgs[m.cid] = m

    def problem(self, figure: str, text: str):
        with self.lock:
            self.figures[figure] += 1
            self.problems.append(text)

    def saw_uid(self, account, mailbox, uid, cid):
        key = (account, mailbox, uid)
        with self.lock:
            old = self.uids.setdefault(key, cid)
        if old != cid:
            self.problem("uid_reuse", f"UID {uid} of {account} {mailbox} held {old}, now {cid}")

    def observed(self, account, mailbox, uidnext, modseq):
        with self.lock:
            k = (account, mailbox)
            self.uidnext[k] = max(self.uidnext.get(k, 0), uidnext)
            if modseq is not None:
                self.modseq[k] = max(self.modseq.get(k, 0), modseq)

    def pick(self, account, mailboxes) -> Msg | None:
        """A message known to be present in one of `mailboxes`, and marks it busy."""
        with self.lock:
            cands = [m for m in self.msgs.values()
                     if m.account == account and m.state == "present" and not m.busy
                     and m.where is not None and m.where[0] in mailboxes]
            if not cands:
                return None
            m = random.choice(cands[-200:])
            m.busy = True
            return m


def message(cid: str, sender: str, to: str, size: int, rng: random.Random) -> bytes:
    line = "".join(rng.choice("abcdefghij .") for _ in range(70))
    filler = "\r\n".join(line[i % 7:] + str(i) for i in range(size // 70 + 1))
    return (f"From: <{sender}>\r\nTo: <{to}>\r\nSubject: crash {cid}\r\nX-Crash-Id: {cid}\r\n"
            f"Message-ID: <{cid}@crash.test>\r\n\r\n{filler}\r\nend of {cid}\r\n").encode()


def sizes(rng: random.Random) -> int:
    # Mostly small (inside the database), some above the 32 KiB of the embedded store's
    # inline bodies (files in blobs/).
    return rng.choice([200, 800, 3000, 3000, 40_000])


# --- load workers ----------------------------------------------------------------------------
# Each runs until `stop` is set or its server dies; every exception ends a connection, and
# with `stop` set, the worker.

class Load:
    def __init__(self, a: Yubin, ledger: Ledger, seed: int, temp_ok=False):
        self.a, self.ledger = a, ledger
        self.stop = threading.Event()
        self.rng = random.Random(seed)
        self.temp_ok = temp_ok              # count temporary errors instead of failing
        self.errors: list[str] = []         # unexpected replies
        self.temp: list[str] = []           # temporary errors seen
        self.threads = [threading.Thread(target=self.guard, args=(f,), daemon=True)
                        for f in (self.smtp, self.submission, self.imap, self.pop3)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def guard(self, f):
        while not self.stop.is_set():
            try:
                f()
            except (smtplib.SMTPAuthenticationError, poplib.error_proto) as e:
                self.classify(f.__name__, e)
            except imaplib.IMAP4.abort as e:          # the connection went away
                self.temporary(f"{f.__name__}: {e!r}")
            except imaplib.IMAP4.error as e:          # a NO or BAD to LOGIN or SELECT
                self.classify(f.__name__, e)
            except (OSError, EOFError, smtplib.SMTPException, ssl.SSLError) as e:
                self.temporary(f"{f.__name__}: {e!r}")
            if not self.stop.is_set():
                time.sleep(0.05)

    def classify(self, what: str, e: Exception):
        """A refusal is temporary only with its protocol's temporary answer: SMTP 4xx, IMAP
        [UNAVAILABLE] (RFC 5530), POP3 [SYS/TEMP] or [IN-USE] (RFC 3206, RFC 2449 §8.1.1) —
        or a connection cut off. Anything else (a failed login, 5xx) is wrong."""
        text = repr(e)
        if re.search(r"\(4\d\d,|UNAVAILABLE|SYS/TEMP|IN-USE|EOF|socket error|connection", text):
            self.temporary(f"{what}: {text}")
        else:
            self.reply_error(f"{what}: {text}")

    def temporary(self, text: str):
        self.temp.append(text)

    def reply_error(self, text: str):
        self.errors.append(text)

    def smtp_reply(self, e: smtplib.SMTPException, what: str):
        code = getattr(e, "smtp_code", None)
        if code is None and isinstance(e, smtplib.SMTPRecipientsRefused):
            code = next(iter(e.recipients.values()))[0]
        if isinstance(code, int) and 400 <= code < 500:
            self.temporary(f"{what}: {code} {getattr(e, 'smtp_error', b'')!r}")
        elif code is not None:
            self.reply_error(f"{what}: {code} {getattr(e, 'smtp_error', e)!r}")
        else:
            raise OSError(str(e))

    def smtp(self):
        with smtplib.SMTP("127.0.0.1", self.a.ports["smtp"], timeout=20) as s:
            for _ in range(20):
                if self.stop.is_set():
                    return
                cid = self.ledger.new_cid("smtp")
                body = message(cid, "someone@elsewhere.test", BOB, sizes(self.rng), self.rng)
                m = Msg(cid, BOB, body, exact=False)
                self.ledger.add(m)
                try:
                    s.sendmail("someone@elsewhere.test", [BOB], body)
                except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as e:
                    m.state = "gone"          # refused: must not be there
                    self.smtp_reply(e, "smtp")
                    return
                with self.ledger.lock:
                    m.state = "present"
                    m.where = ("INBOX", None)
                    self.ledger.figures["acknowledged"] += 1

    def submission(self):
        with smtplib.SMTP("127.0.0.1", self.a.ports["submission"], timeout=20) as s:
            s.starttls(context=client_tls())
            s.login(ALICE, PASSWORD)
            for _ in range(20):
                if self.stop.is_set():
                    return
                cid = self.ledger.new_cid("sub")
                body = message(cid, ALICE, CAROL, sizes(self.rng), self.rng)
                with self.ledger.lock:
                    self.ledger.submitted[cid] = False
                    self.ledger.sub_bodies[cid] = body
                try:
                    s.sendmail(ALICE, [CAROL], body)
                except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as e:
                    self.smtp_reply(e, "submission")
                    return
                with self.ledger.lock:
                    self.ledger.submitted[cid] = True
                    self.ledger.figures["acknowledged"] += 1

    def imap_no(self, what, typ, data):
        text = b" ".join(d if isinstance(d, bytes) else b"" for d in data).decode(errors="replace")
        if typ == "NO" and re.match(r"\[(UNAVAILABLE|SERVERBUG|LIMIT|INUSE)\]", text):
            self.temporary(f"imap {what}: NO {text}")
        else:
            self.reply_error(f"imap {what}: {typ} {text}")

    def imap(self):
        c = imaplib.IMAP4_SSL("127.0.0.1", self.a.ports["imaps"], ssl_context=client_tls(), timeout=20)
        try:
            c.login(ALICE, PASSWORD)
            for _ in range(40):
                if self.stop.is_set():
                    return
                op = self.rng.random()
                if op < 0.5:
                    self.append(c)
                elif op < 0.65:
                    self.flag(c)
                elif op < 0.8:
                    self.expunge(c)
                else:
                    self.move(c)
                if self.rng.random() < 0.2:
                    self.status(c, ALICE)
        finally:
            try:
                c.shutdown()
            except OSError:
                pass

    def status(self, c, account):
        for mbox in ("INBOX", ARCHIVE) if account == ALICE else ("INBOX",):
            typ, data = c.status(mbox, "(UIDNEXT HIGHESTMODSEQ)")
            if typ == "OK":
                uidnext, modseq = parse_status(data[0])
                self.ledger.observed(account, mbox, uidnext, modseq)

    def append(self, c):
        mbox = self.rng.choice(["INBOX", "INBOX", ARCHIVE])
        cid = self.ledger.new_cid("app")
        body = message(cid, ALICE, ALICE, sizes(self.rng), self.rng)
        m = Msg(cid, ALICE, body, exact=True)
        self.ledger.add(m)
        typ, data = c.append(mbox, None, None, body)
        if typ != "OK":
            m.state = "gone"
            return self.imap_no("APPEND", typ, data)
        mo = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
        if not mo:
            raise HarnessError(f"APPEND without APPENDUID: {data!r}")
        uid = int(mo.group(2))
        self.ledger.saw_uid(ALICE, mbox, uid, cid)
        with self.ledger.lock:
            m.state, m.where = "present", (mbox, uid)
            self.ledger.figures["acknowledged"] += 1

    def flag(self, c):
        m = self.ledger.pick(ALICE, ("INBOX", ARCHIVE))
        if m is None:
            return
        try:
            mbox, uid = m.where
            typ, data = c.select(mbox)
            if typ != "OK":
                return self.imap_no("SELECT", typ, data)
            typ, data = c.uid("STORE", str(uid), "+FLAGS", r"(\Flagged)")
            if typ != "OK":
                return self.imap_no("STORE", typ, data)
            m.flagged = True
        finally:
            m.busy = False

    def expunge(self, c):
        m = self.ledger.pick(ALICE, ("INBOX", ARCHIVE))
        if m is None:
            return
        try:
            mbox, uid = m.where
            typ, data = c.select(mbox)
            if typ != "OK":
                return self.imap_no("SELECT", typ, data)
            m.state = "maybe"
            typ, data = c.uid("STORE", str(uid), "+FLAGS", r"(\Deleted)")
            if typ != "OK":
                m.state = "present"
                return self.imap_no("STORE", typ, data)
            typ, data = c.uid("EXPUNGE", str(uid))
            if typ != "OK":
                m.state = "present"
                return self.imap_no("UID EXPUNGE", typ, data)
            m.state = "gone"
        finally:
            m.busy = False

    def move(self, c):
        m = self.ledger.pick(ALICE, ("INBOX",))
        if m is None:
            return
        try:
            mbox, uid = m.where
            typ, data = c.select(mbox)
            if typ != "OK":
                return self.imap_no("SELECT", typ, data)
            # In flight: in INBOX or in Archive, exactly once (RFC 6851 §3.3).
            m.where = None
            typ, data = c.uid("MOVE", str(uid), ARCHIVE)
            if typ != "OK":
                m.where = (mbox, uid)
                return self.imap_no("MOVE", typ, data)
            codes = b" ".join(x for x in (c.untagged_responses.pop("COPYUID", []) + data)
                              if isinstance(x, bytes))
            mo = re.search(rb"(\d+) (\d+) (\d+)\]?", codes[codes.find(b"COPYUID") + 7:] if b"COPYUID" in codes else codes)
            if mo:
                new = int(mo.group(3))
                self.ledger.saw_uid(ALICE, ARCHIVE, new, m.cid)
                m.where = (ARCHIVE, new)
        finally:
            m.busy = False

    def pop3(self):
        p = poplib.POP3_SSL("127.0.0.1", self.a.ports["pop3s"], context=client_tls(), timeout=20)
        taken = []
        try:
            p.user(BOB)
            try:
                p.pass_(PASSWORD)
            except poplib.error_proto as e:
                text = e.args[0] if isinstance(e.args[0], bytes) else str(e.args[0]).encode()
                if b"[IN-USE]" in text or b"[SYS/TEMP]" in text:
                    self.temporary(f"pop3 PASS: {e}")
                    time.sleep(0.5)   # the lease of a killed session expires
                    return
                raise
            count, _ = p.stat()
            for n in self.rng.sample(range(1, count + 1), min(count, 3)):
                top = b"\r\n".join(p.top(n, 0)[1])
                mo = CID.search(top)
                m = self.ledger.msgs.get(mo.group(1).decode()) if mo else None
                with self.ledger.lock:
                    if m is None or m.state != "present" or m.busy:
                        continue
                    m.busy = True
                taken.append(m)
                p.dele(n)
            for m in taken:
                m.state = "maybe"
            try:
                p.quit()
            except poplib.error_proto as e:
                # RFC 1939 §6: -ERR at QUIT: some deletions may not have happened.
                text = e.args[0] if isinstance(e.args[0], bytes) else str(e.args[0]).encode()
                # poplib says "-ERR EOF" itself when the connection closes (the kill).
                if b"[SYS/TEMP]" in text or text == b"-ERR EOF" or not text.startswith(b"-ERR"):
                    self.temporary(f"pop3 QUIT: {e}")
                else:
                    self.reply_error(f"pop3 QUIT: {e}")
                return
            for m in taken:
                m.state = "gone"
        finally:
            for m in taken:
                m.busy = False
            try:
                p.close()
            except (OSError, AttributeError):
                pass
        time.sleep(0.1)


def parse_status(line: bytes) -> tuple[int, int | None]:
    uidnext = int(re.search(rb"UIDNEXT (\d+)", line).group(1))
    mo = re.search(rb"HIGHESTMODSEQ (\d+)", line)
    return uidnext, int(mo.group(1)) if mo else None


# --- the checks after a restart -----------------------------------------------------------------

def mailbox_contents(c, mbox: str, known: dict | None = None) -> list[tuple]:
    """(uid, flags, size, body) of every message in `mbox`; `body` is None for the UIDs in
    `known` (uid -> size, bodies compared at an earlier check: only their size is read again,
    so that a long run's checks do not grow with the square of the messages)."""
    known = known or {}
    typ, _ = c.select(mbox, readonly=True)
    if typ != "OK":
        raise HarnessError(f"SELECT {mbox}: {typ}")
    typ, data = c.uid("FETCH", "1:*", "(UID FLAGS RFC822.SIZE)")
    meta = {}
    for line in data:
        if isinstance(line, bytes) and b"UID" in line:
            uid = int(re.search(rb"UID (\d+)", line).group(1))
            meta[uid] = (re.search(rb"FLAGS \(([^)]*)\)", line).group(1),
                         int(re.search(rb"RFC822.SIZE (\d+)", line).group(1)))
    bodies = {}
    todo = sorted(u for u in meta if u not in known)
    for i in range(0, len(todo), 300):
        typ, data = c.uid("FETCH", ",".join(map(str, todo[i:i + 300])), "(BODY.PEEK[])")
        for item in data:
            if isinstance(item, tuple):
                bodies[int(re.search(rb"UID (\d+)", item[0]).group(1))] = item[1]
    return [(uid, f, size, bodies.get(uid)) for uid, (f, size) in sorted(meta.items())]


def verify(a: Yubin, ledger: Ledger, label: str, full: bool = False):
    """Settles the ledger against what the restarted server shows; records every violation.
    Bodies compared before are compared again only with `full` (their size always)."""
    found: dict[str, list] = {}
    for account, mailboxes in ((ALICE, ("INBOX", ARCHIVE)), (BOB, ("INBOX",))):
        c = imaplib.IMAP4_SSL("127.0.0.1", a.ports["imaps"], ssl_context=client_tls(), timeout=30)
        try:
            c.login(account, PASSWORD)
            for mbox in mailboxes:
                typ, data = c.status(mbox, "(UIDNEXT HIGHESTMODSEQ)")
                uidnext, modseq = parse_status(data[0])
                key = (account, mbox)
                if uidnext < ledger.uidnext.get(key, 0):
                    ledger.problem("went_back", f"{label}: {key} UIDNEXT {uidnext} < {ledger.uidnext[key]} shown before")
                if modseq is not None and modseq < ledger.modseq.get(key, 0):
                    ledger.problem("went_back", f"{label}: {key} HIGHESTMODSEQ {modseq} < {ledger.modseq[key]} shown before")
                ledger.observed(account, mbox, uidnext, modseq)
                # Only messages still known present at that UID: any other UID's body is read
                # (a reused UID shows as another message).
                known = {u: size for (acc, mb, u), (cid, size) in ledger.checked.items()
                         if (acc, mb) == key and ledger.msgs[cid].state == "present"
                         and ledger.msgs[cid].where == (mb, u) and not full}
                for uid, flags, size, body in mailbox_contents(c, mbox, known):
                    if uid >= uidnext:
                        ledger.problem("uid_reuse", f"{label}: {key} UID {uid} >= UIDNEXT {uidnext}")
                    if body is None:
                        cid = ledger.checked[(account, mbox, uid)][0]
                        if size != known[uid]:
                            ledger.problem("corrupted", f"{label}: {cid} in {mbox} UID {uid} now "
                                                        f"{size} bytes, was {known[uid]}")
                    else:
                        mo = CID.search(body)
                        cid = mo.group(1).decode() if mo else None
                        if cid is None or cid not in ledger.msgs:
                            ledger.problem("corrupted", f"{label}: {key} UID {uid}: a message nobody sent: {body[:200]!r}")
                            continue
                    ledger.saw_uid(account, mbox, uid, cid)
                    found.setdefault(cid, []).append((mbox, uid, flags, body, size))
            for (acc, mbox, uid), cid in list(ledger.uids.items()):
                if acc == account and uid >= ledger.uidnext.get((acc, mbox), 0):
                    ledger.problem("uid_reuse", f"{label}: {acc} {mbox} UID {uid} acknowledged but UIDNEXT is {ledger.uidnext[(acc, mbox)]}")
        finally:
            try:
                c.logout()
            except (OSError, imaplib.IMAP4.error):
                pass

    for m in ledger.msgs.values():
        copies = found.get(m.cid, [])
        if len(copies) > 1:
            ledger.problem("corrupted", f"{label}: {m.cid} stored {len(copies)} times")
        for mbox, uid, flags, body, size in copies:
            if body is None:
                continue
            whole = body == m.body if m.exact else body.endswith(m.body)
            if not whole:
                ledger.problem("corrupted", f"{label}: {m.cid} in {mbox} UID {uid} differs from what was sent "
                                            f"({len(body)} bytes, sent {len(m.body)})")
            else:
                ledger.checked[(m.account, mbox, uid)] = (m.cid, size)
        if m.state == "present" and not copies:
            ledger.problem("lost", f"{label}: {m.cid} acknowledged, missing")
        elif m.state == "gone" and copies:
            ledger.problem("resurrected", f"{label}: {m.cid} removed (acknowledged), back")
        elif m.state == "maybe":
            ledger.figures["unacked_present" if copies else "unacked_absent"] += 1
        if copies and m.flagged and b"\\Flagged" not in copies[0][2]:
            ledger.problem("flags_lost", f"{label}: {m.cid} \\Flagged acknowledged, not set")
        # Settled: what the server shows is now the truth the next iteration builds on.
        if copies:
            m.state, m.where = "present", (copies[0][0], copies[0][1])
            m.flagged = b"\\Flagged" in copies[0][2]
        else:
            m.state, m.where = "gone", None
        m.busy = False


def store_check(a: Yubin, ledger: Ledger, label: str, grace: int = 2):
    res = a.cli("check", "--grace", str(grace), check=False)
    if res.returncode != 0:
        ledger.problem("corrupted", f"{label}: yubin check: {res.stdout}{res.stderr}")
    return res


def check_crashed(a: Yubin, ledger: Ledger, label: str):
    """`yubin check` on the store as the kill left it, before the restart repairs anything:
    every invariant must hold already; the only thing allowed is a body file of a delivery
    that never committed (written before its row, "blob before metadata"), which the next
    start sweeps. Those are counted."""
    res = a.cli("check", "--grace", "0", check=False)
    lines = [l for l in res.stdout.splitlines() if not l.startswith("checked ")]
    orphans = [l for l in lines if "file without a row (orphan" in l]
    ledger.figures["orphans_after_kill"] = ledger.figures.get("orphans_after_kill", 0) + len(orphans)
    if len(lines) != len(orphans) or (res.returncode != 0 and not lines):
        ledger.problem("corrupted", f"{label}: yubin check after the kill: {res.stdout}{res.stderr}")


def queue_empty(a: Yubin) -> bool:
    """No recipient pending (delivered messages stay listed until the queue's cleanup)."""
    return not re.search(r"\t[1-9]\d*/\d+ pending", a.cli("queue", "list").stdout)


def peer_received(b: Yubin) -> list[tuple[str, bytes]]:
    """(crash id, body) of every message in carol's mailbox at the peer, duplicates included."""
    c = imaplib.IMAP4_SSL("127.0.0.1", b.ports["imaps"], ssl_context=client_tls(), timeout=30)
    try:
        c.login(CAROL, PASSWORD)
        out = []
        for _, _, _, body in mailbox_contents(c, "INBOX"):
            mo = CID.search(body)
            out.append((mo.group(1).decode() if mo else "?", body))
        return out
    finally:
        c.logout()


def verify_peer(a: Yubin, b: Yubin, ledger: Ledger, kills: int, timeout=90) -> dict:
    """After the last restart: A's queue drains to B; every submission A acknowledged is at B;
    duplicates are at most the transfers in flight at the kills."""
    started = time.time()
    deadline = started + timeout
    while not queue_empty(a):
        if time.time() > deadline:
            raise HarnessError(f"A's queue did not drain:\n{a.cli('queue', 'list').stdout[:3000]}")
        time.sleep(0.5)
    drained = time.time()
    got = peer_received(b)
    counts: dict[str, int] = {}
    for cid, body in got:
        counts[cid] = counts.get(cid, 0) + 1
        # Relayed whole: the bytes submitted, after the trace (and DKIM) headers added on the way.
        sent = ledger.sub_bodies.get(cid)
        if sent is not None and not body.endswith(sent.split(b"\r\n\r\n", 1)[1]):
            ledger.problem("corrupted", f"peer received {cid} altered ({len(body)} bytes, sent {len(sent)})")
    acked = {c for c, ok in ledger.submitted.items() if ok}
    for cid in sorted(acked - set(counts)):
        ledger.problem("lost", f"submission {cid} acknowledged, never reached the peer")
    for cid in counts:
        if cid not in ledger.submitted:
            ledger.problem("corrupted", f"peer received {cid}, which nobody sent")
    dups = sum(n - 1 for n in counts.values() if n > 1)
    ledger.figures["duplicates"] = dups
    if dups > kills * PER_DESTINATION:
        ledger.problem("corrupted", f"{dups} duplicates at the peer, more than the {kills * PER_DESTINATION} "
                                    f"transfers that can be in flight at {kills} kills")
    return {"submitted_acked": len(acked), "at_peer": len(got), "duplicates": dups,
            "queue_drained_secs": round(drained - started, 1)}


class Workdir:
    """A temporary directory for the servers (kept with KEEP=1 for a post-mortem)."""

    def __init__(self, prefix="yubin-crash-"):
        self.path = Path(tempfile.mkdtemp(prefix=prefix))

    def cleanup(self):
        if os.environ.get("KEEP") == "1":
            print(f"kept {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)

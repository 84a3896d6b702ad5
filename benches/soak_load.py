"""The soak run's load (benches/soak.py): one function per operation, each a short session on
one protocol of the server under test (A) or its remote peer (B).

An operation returns the number of errors it provoked on purpose (a refused recipient, a
too-large message, a wrong password, a connection dropped mid-command), after checking that
each was answered as the RFC demands; anything else — an unexpected reply, a timeout, a
closed connection — raises, and the driver counts it as an error.

Mailboxes stay bounded (as much is deleted as is added), so growth in the samples means a
leak, not data:
  alice@example.com  SMTP deliveries and IMAP APPENDs; IMAP sessions move the excess to Trash
                     (emptied by the retention sweep, trash_days = 0) or expunge it
  bob@example.com    SMTP deliveries; POP3 RETR + DELE (and retention's pop3_expire_days = 0,
                     which may remove a message under an open POP3 session: a provoked race)
  carol@example.com  IMAP IDLE woken by a delivery, QRESYNC re-selects; expunged as it goes
  dave@b.test        on the peer B: alice's submissions (587, STARTTLS + AUTH) delivered by A's
                     queue; drained by POP3 on B
"""

import imaplib
import poplib
import random
import re
import smtplib
import socket
import ssl
import threading
import time

PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"
# The soak config's [limits] max_message_size; TOO_LARGE is refused with 552.
MAX_SIZE = 200_000
TOO_LARGE = 300_000
# How many messages a mailbox keeps before the load trims it.
KEEP = 20


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(sender: str, rcpt: str, size: int, tag: str) -> bytes:
    head = f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: soak {tag}\r\nMessage-ID: <{tag}@soak.test>\r\n\r\n"
    line = "soak body line, bounded mailboxes, flat memory 0123456789\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return (head + body).encode()


class Expected(Exception):
    """A reply that is not the one the RFC demands for a provoked error."""


class Load:
    """The operations against servers A (under test) and B (peer), by their ports."""

    def __init__(self, a_ports: dict, b_ports: dict, seed: int = 1):
        self.a = a_ports
        self.b = b_ports
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.seq = 0
        # One session at a time per mailbox whose operations would refuse each other on
        # purpose (POP3's maildrop lock, RFC 1939 §8) or race on the same UIDs.
        self.locks = {k: threading.Lock() for k in ("alice", "bob", "carol", "dave")}
        # carol's last (UIDVALIDITY, HIGHESTMODSEQ), for QRESYNC (RFC 7162 §3.2.5).
        self.carol_state = None

    def pick(self, n: int) -> int:
        with self.rng_lock:
            return self.rng.randrange(n)

    def tag(self) -> str:
        with self.rng_lock:
            self.seq += 1
            return f"s{self.seq}-{time.time():.0f}"

    # ---- SMTP on 25 -------------------------------------------------------------------------

    def smtp_deliver(self) -> int:
        """Two to four messages for alice and bob in one session on the MX port."""
        with smtplib.SMTP("127.0.0.1", self.a["smtp"], timeout=30) as s:
            for _ in range(2 + self.pick(3)):
                rcpt = ("alice@example.com", "bob@example.com")[self.pick(2)]
                # One in four over 32 KiB, the body store's files (smaller bodies are rows).
                size = 40_000 + self.pick(80_000) if self.pick(4) == 0 else 500 + self.pick(20_000)
                s.sendmail("sender@remote.test", [rcpt], message("sender@remote.test", rcpt, size, self.tag()))
        return 0

    def smtp_rejected(self) -> int:
        """An unknown recipient (550 5.1.1, RFC 5321 §3.3), a declared size over the limit at
        MAIL (552 5.3.4, RFC 1870 §6.1) and an undeclared one at the end of DATA (552)."""
        with smtplib.SMTP("127.0.0.1", self.a["smtp"], timeout=30) as s:
            s.ehlo("soak.test")
            code, _ = s.mail("sender@remote.test")
            expect(code == 250, f"MAIL {code}")
            code, reply = s.rcpt("nobody@example.com")
            expect(code == 550, f"RCPT of an unknown user: {code} {reply!r}")
            s.rset()
            code, reply = s.mail("sender@remote.test", [f"SIZE={TOO_LARGE}"])
            expect(code == 552, f"MAIL SIZE over the limit: {code} {reply!r}")
            s.rset()
            s.mail("sender@remote.test")
            code, _ = s.rcpt("bob@example.com")
            expect(code == 250, f"RCPT {code}")
            code, reply = s.data(message("sender@remote.test", "bob@example.com", TOO_LARGE, self.tag()))
            expect(code == 552, f"DATA over the limit: {code} {reply!r}")
        return 3

    # ---- submission on 587 to the peer ---------------------------------------------------------

    def submission(self) -> int:
        """alice submits to dave@b.test (STARTTLS + AUTH, RFC 6409); A's queue relays to B."""
        with smtplib.SMTP("127.0.0.1", self.a["submission"], timeout=30) as s:
            s.starttls(context=tls_context())
            s.login("alice@example.com", PASSWORD)
            size = 500 + self.pick(10_000)
            s.sendmail("alice@example.com", ["dave@b.test"], message("alice@example.com", "dave@b.test", size, self.tag()))
        return 0

    def peer_drain(self) -> int:
        """Empties dave's maildrop on B (POP3 RETR + DELE)."""
        with self.locks["dave"]:
            p = poplib.POP3("127.0.0.1", self.b["pop3"], timeout=30)
            try:
                p.user("dave@b.test")
                p.pass_(PASSWORD)
                count, _ = p.stat()
                for i in range(1, count + 1):
                    if i <= 2:
                        p.retr(i)
                    p.dele(i)
            finally:
                p.quit()
        return 0

    # ---- IMAP -----------------------------------------------------------------------------------

    def imap(self, user: str) -> imaplib.IMAP4:
        m = imaplib.IMAP4("127.0.0.1", self.a["imap"], timeout=30)
        m.starttls(tls_context())
        m.login(f"{user}@example.com", PASSWORD)
        return m

    def imap_session(self) -> int:
        """alice: SELECT, FETCH, STORE flags, APPEND, MOVE to Trash, EXPUNGE (RFC 9051)."""
        with self.locks["alice"]:
            m = self.imap("alice")
            try:
                ok(m.select("INBOX"))
                uids = ok(m.uid("SEARCH", None, "ALL"))[0].split()
                if uids:
                    ok(m.uid("FETCH", b",".join(uids[-3:]), "(FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
                    ok(m.uid("FETCH", uids[-1], "(BODY[])"))
                    ok(m.uid("STORE", uids[-1], "+FLAGS", "(\\Flagged $Soak)"))
                    ok(m.uid("STORE", uids[0], "-FLAGS", "($Soak)"))
                size = 50_000 if self.pick(3) == 0 else 2000
                ok(m.append("INBOX", "(\\Seen)", None, message("alice@example.com", "alice@example.com", size, self.tag())))
                excess = uids[: max(0, len(uids) + 1 - KEEP)]
                if excess:
                    half = len(excess) // 2
                    moved, deleted = excess[:half], excess[half:]
                    if moved:
                        ok(m.uid("MOVE", b",".join(moved), "Trash"))
                    ok(m.uid("STORE", b",".join(deleted), "+FLAGS.SILENT", "(\\Deleted)"))
                    ok(m.expunge())
                m.logout()
            except BaseException:
                m.shutdown()
                raise
        return 0

    def imap_idle(self) -> int:
        """carol: IDLE (RFC 2177) woken by a delivery to her on port 25, then expunges."""
        with self.locks["carol"]:
            m = self.imap("carol")
            try:
                ok(m.select("INBOX"))
                m.send(b"I1 IDLE\r\n")
                line = m.readline()
                expect(line.startswith(b"+"), f"IDLE: {line!r}")
                with smtplib.SMTP("127.0.0.1", self.a["smtp"], timeout=30) as s:
                    s.sendmail("sender@remote.test", ["carol@example.com"], message("sender@remote.test", "carol@example.com", 1500, self.tag()))
                deadline = time.time() + 20
                while True:
                    line = m.readline()
                    expect(bool(line), "IDLE: connection closed")
                    if re.match(rb"\* \d+ EXISTS", line):
                        break
                    expect(time.time() < deadline, "IDLE: no EXISTS within 20 s of the delivery")
                m.send(b"DONE\r\n")
                while True:
                    line = m.readline()
                    expect(bool(line), "IDLE: connection closed after DONE")
                    if line.startswith(b"I1 "):
                        expect(line.startswith(b"I1 OK"), f"IDLE: {line!r}")
                        break
                uids = ok(m.uid("SEARCH", None, "ALL"))[0].split()
                if len(uids) > 5:
                    ok(m.uid("STORE", b",".join(uids[:-5]), "+FLAGS.SILENT", "(\\Deleted)"))
                    ok(m.expunge())
                m.logout()
            except BaseException:
                m.shutdown()
                raise
        return 0

    def imap_qresync(self) -> int:
        """carol: ENABLE QRESYNC and SELECT with the last known state (RFC 7162 §3.2.5)."""
        with self.locks["carol"]:
            m = self.imap("carol")
            try:
                ok(m._simple_command("ENABLE", "QRESYNC"))
                if self.carol_state:
                    arg = "INBOX (QRESYNC (%s %s))" % self.carol_state
                else:
                    arg = "INBOX (CONDSTORE)"
                m.untagged_responses.clear()
                typ, _ = m._simple_command("SELECT", arg)
                expect(typ == "OK", f"SELECT {arg}: {typ}")
                uv = m.untagged_responses.get("UIDVALIDITY", [None])[-1]
                oks = b" ".join(x for x in m.untagged_responses.get("OK", []) if x)
                hm = re.search(rb"HIGHESTMODSEQ (\d+)", oks)
                expect(uv is not None and hm is not None, f"SELECT without UIDVALIDITY/HIGHESTMODSEQ: {oks!r}")
                self.carol_state = (uv.decode(), hm.group(1).decode())
                m.logout()
            except BaseException:
                m.shutdown()
                raise
        return 0

    # ---- POP3 -----------------------------------------------------------------------------------

    def pop3(self) -> int:
        """bob: STAT, UIDL, RETR, TOP, DELE everything beyond a few (RFC 1939). The retention
        sweep (pop3_expire_days = 0) removes retrieved messages even while a session lists
        them: a command on one then gets "-ERR message N was deleted by another session", a
        race this load provokes on purpose (counted as provoked)."""
        provoked = 0

        def racing(cmd, *args):
            nonlocal provoked
            try:
                cmd(*args)
            except poplib.error_proto as e:
                expect(b"was deleted by another session" in e.args[0], f"POP3: {e}")
                provoked += 1

        with self.locks["bob"]:
            p = poplib.POP3("127.0.0.1", self.a["pop3"], timeout=30)
            try:
                p.stls(tls_context())
                p.user("bob@example.com")
                p.pass_(PASSWORD)
                count, _ = p.stat()
                p.uidl()
                if count:
                    racing(p.retr, count)
                    racing(p.top, 1, 5)
                for i in range(1, max(0, count - 3) + 1):
                    racing(p.dele, i)
            finally:
                p.quit()
        return provoked

    # ---- provoked failures ------------------------------------------------------------------------

    def failed_logins(self) -> int:
        """A wrong password on each protocol: IMAP NO [AUTHENTICATIONFAILED] (RFC 9051 §6.2.3),
        POP3 -ERR [AUTH] (RFC 3206 §4), SMTP AUTH 535 5.7.8 (RFC 4954 §6)."""
        m = imaplib.IMAP4("127.0.0.1", self.a["imap"], timeout=30)
        try:
            m.starttls(tls_context())
            try:
                m.login("alice@example.com", WRONG)
                raise Expected("IMAP LOGIN with a wrong password succeeded")
            except imaplib.IMAP4.error as e:
                expect("AUTHENTICATIONFAILED" in str(e), f"IMAP LOGIN: {e}")
            m.logout()
        except BaseException:
            m.shutdown()
            raise
        p = poplib.POP3("127.0.0.1", self.a["pop3"], timeout=30)
        try:
            p.stls(tls_context())
            p.user("bob@example.com")
            try:
                p.pass_(WRONG)
                raise Expected("POP3 PASS with a wrong password succeeded")
            except poplib.error_proto as e:
                expect(str(e).startswith("b'-ERR [AUTH]"), f"POP3 PASS: {e}")
        finally:
            p.quit()
        with smtplib.SMTP("127.0.0.1", self.a["submission"], timeout=30) as s:
            s.starttls(context=tls_context())
            try:
                s.login("alice@example.com", WRONG)
                raise Expected("SMTP AUTH with a wrong password succeeded")
            except smtplib.SMTPAuthenticationError as e:
                expect(e.smtp_code == 535, f"SMTP AUTH: {e}")
        return 3

    def dropped(self) -> int:
        """A client that goes away mid-command (the server must free the session's resources)."""
        kind = self.pick(6)
        if kind == 0:  # SMTP: half a RCPT line
            s = self.raw("smtp", b"220")
            s.sendall(b"EHLO soak.test\r\n")
            wait_for(s, b"250 ")
            s.sendall(b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@exa")
        elif kind == 1:  # SMTP: in the middle of DATA
            s = self.raw("smtp", b"220")
            s.sendall(b"EHLO soak.test\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
            wait_for(s, b"354")
            s.sendall(message("x@remote.test", "alice@example.com", 8000, self.tag())[:5000])
        elif kind == 2:  # IMAP: half an APPEND literal
            s = self.raw("imap", b"* OK")
            s.sendall(b"a LOGIN alice@example.com \"" + PASSWORD.encode() + b"\"\r\n")
            wait_for(s, b"a OK")
            s.sendall(b"b APPEND INBOX {4000}\r\n")
            wait_for(s, b"+")
            s.sendall(b"x" * 1000)
        elif kind == 3:  # IMAP: a command without its end of line, during IDLE
            s = self.raw("imap", b"* OK")
            s.sendall(b"a LOGIN carol@example.com \"" + PASSWORD.encode() + b"\"\r\na SELECT INBOX\r\nb IDLE\r\n")
            wait_for(s, b"+ ")
            s.sendall(b"DO")
        elif kind == 4:  # POP3: mid-command after login
            s = self.raw("pop3", b"+OK")
            s.sendall(b"CAPA\r\n")
            wait_for(s, b"\r\n.\r\n")
            s.sendall(b"RETR")
        else:  # TLS: a handshake started on implicit-TLS submission and abandoned
            s = socket.create_connection(("127.0.0.1", self.a["submissions"]), timeout=30)
            s.sendall(b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03" + b"\x00" * 20)
        time.sleep(0.05)
        s.close()
        return 1

    def raw(self, listener: str, greeting: bytes) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.a[listener]), timeout=30)
        wait_for(s, greeting)
        return s


def wait_for(s: socket.socket, marker: bytes):
    buf = b""
    while marker not in buf:
        chunk = s.recv(65536)
        expect(bool(chunk), f"closed while waiting for {marker!r}: {buf[-200:]!r}")
        buf += chunk


def expect(cond: bool, what: str):
    if not cond:
        raise Expected(what)


def ok(res):
    """imaplib's (typ, data): data when typ is OK, else an error."""
    typ, data = res
    expect(typ == "OK", f"IMAP {typ}: {data!r}")
    return data


# Operation name -> (method name, weight). The weights give a little of everything per minute
# even at one operation per second.
OPERATIONS = {
    "smtp_deliver": 6,
    "smtp_rejected": 1,
    "submission": 2,
    "peer_drain": 1,
    "imap_session": 4,
    "imap_idle": 2,
    "imap_qresync": 1,
    "pop3": 2,
    "failed_logins": 1,
    "dropped": 2,
}

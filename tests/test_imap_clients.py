"""Real IMAP clients against yubin: isync's `mbsync` (two-way Maildir sync) and `mutt`.

Every scenario checks both sides: the server through Python's imaplib, and the client's result
(mbsync's local Maildir through the file system; mutt's changes through imaplib). The tests skip
only when the client binary is missing; .ci/run installs both so they always run in CI.

mbsync (isync 1.4) rewrites what it copies in two documented ways, which the byte comparisons
undo and nothing else: Maildir files use LF line ends where IMAP uses CRLF, and every message it
propagates (either way) gets an `X-TUID:` header line inserted at the end of its header, mbsync's
own tracking id for finding a copy when a server returns no APPENDUID.
"""

import fcntl
import imaplib
import os
import re
import select
import shutil
import smtplib
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, client_tls

USER = "alice@example.com"
SPECIAL_USE = ("Sent", "Drafts", "Trash", "Junk", "Archive")
# A body that is easy to damage: a leading dot (SMTP transparency, RFC 5321 §4.5.2), trailing
# and inner spaces, UTF-8, and a long line.
BODY = "first line\r\n.leading dot\r\n  indented  \r\nUTF-8: Grüße, 郵便\r\n" + "x" * 900 + "\r\nlast\r\n"
BODY = BODY.encode()


def deliver(server, subject: str, body: bytes = BODY):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        s.sendmail("carol@sender.test", [USER], b"Subject: %s\r\n\r\n" % subject.encode() + body)


def simple(subject: str, body: bytes = b"hello\r\n") -> bytes:
    return b"From: alice@example.com\r\nSubject: %s\r\n\r\n" % subject.encode() + body


def login(server) -> imaplib.IMAP4_SSL:
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=10)
    m.login(USER, PASSWORD)
    return m


def server_box(m, box: str) -> dict:
    """{Subject: (flags without \\Recent, whole message bytes)} of one mailbox, read-only."""
    typ, data = m.select(box, readonly=True)
    assert typ == "OK", (box, data)
    if data == [b"0"]:
        return {}
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    out = {}
    for part in data:
        if isinstance(part, tuple):
            flags = set(re.search(rb"FLAGS \(([^)]*)\)", part[0]).group(1).decode().split())
            subject = re.search(rb"^Subject: (.*?)\r$", part[1], re.M).group(1).decode()
            out[subject] = (flags - {"\\Recent"}, part[1])
    return out


# --- mbsync -------------------------------------------------------------------------------------

MBSYNC = shutil.which("mbsync")
needs_mbsync = pytest.mark.skipif(MBSYNC is None, reason="mbsync not installed (Debian package isync)")

# Maildir info flags (https://cr.yp.to/proto/maildir.html) and the IMAP flags mbsync maps them to.
MAILDIR_FLAGS = {"D": "\\Draft", "F": "\\Flagged", "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}


class Mbsync:
    """mbsync with its own config, HOME and Maildir, syncing every mailbox of alice both ways."""

    def __init__(self, server, tls="IMAPS"):
        self.dir = server.dir / "mbsync"
        self.maildir = self.dir / "Mail"
        self.maildir.mkdir(parents=True)
        self.config = self.dir / "mbsyncrc"
        # IMAPS (implicit TLS) or STARTTLS on the plain port; the self-signed certificate is
        # trusted as a host certificate (isync 1.4 spells these options SSLType/CertificateFile;
        # 1.5 renamed SSLType to TLSType).
        port = server.ports["imaps" if tls == "IMAPS" else "imap"]
        self.config.write_text(
            f"IMAPAccount yubin\n"
            f"Host 127.0.0.1\n"
            f"Port {port}\n"
            f"User {USER}\n"
            f'Pass "{PASSWORD}"\n'
            f"SSLType {tls}\n"
            f"SystemCertificates no\n"
            f"CertificateFile {server.data / 'tls' / 'cert.pem'}\n"
            f"\n"
            f"IMAPStore remote\nAccount yubin\n\n"
            f"MaildirStore local\nPath {self.maildir}/\nInbox {self.maildir}/INBOX\nSubFolders Verbatim\n\n"
            f"Channel alice\nFar :remote:\nNear :local:\nPatterns *\n"
            f"Create Both\nExpunge Both\nSyncState *\n"
        )

    def sync(self) -> str:
        """`mbsync -a`; asserts exit 0 and returns its output, protocol included (-Dn)."""
        res = subprocess.run(
            [MBSYNC, "-c", str(self.config), "-Dn", "-a"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"HOME": str(self.dir), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )
        out = res.stdout + res.stderr
        assert res.returncode == 0, f"mbsync exited {res.returncode}:\n{out}"
        return out

    def files(self, box: str) -> list:
        """The message files of a local mailbox (new/ and cur/), sorted by name."""
        d = self.maildir / box
        return sorted(p for sub in ("new", "cur") if (d / sub).is_dir() for p in (d / sub).iterdir())

    def by_subject(self, box: str) -> dict:
        out = {}
        for p in self.files(box):
            subject = re.search(rb"^Subject: (.*)$", p.read_bytes(), re.M).group(1).decode()
            out[subject] = p
        return out

    def snapshot(self) -> dict:
        """Every message file under the Maildir: {relative path: bytes}."""
        return {
            str(p.relative_to(self.maildir)): p.read_bytes()
            for p in self.maildir.rglob("*")
            if p.is_file() and p.parent.name in ("new", "cur", "tmp")
        }


def maildir_flags(path: Path) -> set:
    """IMAP flags of a Maildir file from its name's `:2,FLAGS` info part."""
    info = path.name.partition(":2,")[2]
    return {MAILDIR_FLAGS[c] for c in info if c in MAILDIR_FLAGS}


def set_maildir_flags(path: Path, letters: str) -> Path:
    """Adds flag letters to a Maildir file as a mail reader does: move to cur/, rename."""
    base, _, info = path.name.partition(":2,")
    new = path.parent.parent / "cur" / f"{base}:2,{''.join(sorted(set(info + letters)))}"
    path.rename(new)
    return new


def as_imap(local: bytes) -> bytes:
    """A file mbsync wrote, as the IMAP bytes it came from: its X-TUID line dropped, LF -> CRLF."""
    header, sep, body = local.partition(b"\n\n")
    lines = header.split(b"\n")
    tuid = [line for line in lines if line.startswith(b"X-TUID: ")]
    assert len(tuid) == 1, local
    header = b"\n".join(line for line in lines if not line.startswith(b"X-TUID: "))
    return (header + sep + body).replace(b"\n", b"\r\n")


def without_tuid(imap: bytes) -> bytes:
    """A message mbsync uploaded, with the one X-TUID header line it inserted removed."""
    found = re.findall(rb"^X-TUID: [^\r\n]*\r\n", imap, re.M)
    assert len(found) == 1, imap
    return imap.replace(found[0], b"", 1)


@pytest.fixture
def mbsync(server):
    return Mbsync(server)


@needs_mbsync
def test_mbsync_pulls_inbox_and_special_use_folders(server, mbsync):
    deliver(server, "over smtp")
    m = login(server)
    for box in SPECIAL_USE:
        flags = r"(\Seen)" if box == "Sent" else None
        typ, data = m.append(box, flags, None, simple(f"in {box}"))
        assert typ == "OK", (box, data)

    mbsync.sync()

    inbox = server_box(m, "INBOX")
    local = mbsync.by_subject("INBOX")
    assert set(local) == set(inbox) == {"over smtp"}, (local, inbox)
    raw = local["over smtp"].read_bytes()
    assert as_imap(raw) == inbox["over smtp"][1]
    # The body that went in over SMTP comes out byte for byte (apart from the LF line ends).
    assert raw.partition(b"\n\n")[2] == BODY.replace(b"\r\n", b"\n")
    # mbsync fetches with BODY.PEEK: the server's message stays unseen, and so does the copy.
    assert inbox["over smtp"][0] == set() and maildir_flags(local["over smtp"]) == set()

    for box in SPECIAL_USE:
        on_server = server_box(m, box)
        files = mbsync.by_subject(box)
        assert set(files) == set(on_server) == {f"in {box}"}, (box, files, on_server)
        path = files[f"in {box}"]
        assert as_imap(path.read_bytes()) == on_server[f"in {box}"][1] == simple(f"in {box}")
        assert maildir_flags(path) == ({"\\Seen"} if box == "Sent" else set()), path
    m.logout()


@needs_mbsync
def test_mbsync_flags_both_ways(server, mbsync):
    deliver(server, "read locally")
    deliver(server, "flagged on server")
    mbsync.sync()
    local = mbsync.by_subject("INBOX")
    assert set(local) == {"read locally", "flagged on server"}, local

    set_maildir_flags(local["read locally"], "S")
    m = login(server)
    m.select("INBOX")
    typ, data = m.search(None, "SUBJECT", '"flagged on server"')
    assert typ == "OK" and len(data[0].split()) == 1, data
    assert m.store(data[0].decode(), "+FLAGS", r"(\Flagged)")[0] == "OK"
    m.close()

    mbsync.sync()

    on_server = server_box(m, "INBOX")
    assert on_server["read locally"][0] == {"\\Seen"}, on_server
    assert on_server["flagged on server"][0] == {"\\Flagged"}, on_server
    local = mbsync.by_subject("INBOX")
    assert maildir_flags(local["read locally"]) == {"\\Seen"}, local
    assert maildir_flags(local["flagged on server"]) == {"\\Flagged"}, local
    m.logout()


@needs_mbsync
def test_mbsync_local_delete_is_expunged_on_server(server, mbsync):
    deliver(server, "keep")
    deliver(server, "delete me")
    mbsync.sync()
    local = mbsync.by_subject("INBOX")
    set_maildir_flags(local["delete me"], "T")

    # Expunge Both: mbsync stores \Deleted on the server, and the server expunges it (mbsync
    # sends CLOSE, which expunges \Deleted messages, RFC 9051 §6.4.1).
    mbsync.sync()

    m = login(server)
    on_server = server_box(m, "INBOX")
    assert set(on_server) == {"keep"}, on_server
    assert set(mbsync.by_subject("INBOX")) == {"keep"}
    # It is gone, not hidden: a fresh session counts one message.
    typ, data = m.status("INBOX", "(MESSAGES)")
    assert typ == "OK" and b"MESSAGES 1" in data[0], data
    m.logout()


@needs_mbsync
def test_mbsync_uploads_new_local_messages(server, mbsync):
    mbsync.sync()  # creates the local folders and their sync state
    new_mail = simple("written offline", BODY).replace(b"\r\n", b"\n")
    draft = simple("draft offline").replace(b"\r\n", b"\n")
    (mbsync.maildir / "INBOX" / "new" / "1700000000.P1Q1.laptop").write_bytes(new_mail)
    # A draft already read and marked as a draft by the local mail reader.
    (mbsync.maildir / "Drafts" / "cur" / "1700000001.P1Q2.laptop:2,DS").write_bytes(draft)

    mbsync.sync()

    m = login(server)
    inbox = server_box(m, "INBOX")
    assert set(inbox) == {"written offline"}, inbox
    flags, raw = inbox["written offline"]
    assert without_tuid(raw) == simple("written offline", BODY)
    assert flags == set()
    drafts = server_box(m, "Drafts")
    assert set(drafts) == {"draft offline"}, drafts
    flags, raw = drafts["draft offline"]
    assert without_tuid(raw) == simple("draft offline")
    assert flags == {"\\Draft", "\\Seen"}
    # The local originals are kept, their bytes untouched (mbsync only adds a UID to the name).
    [path] = mbsync.files("INBOX")
    assert path.read_bytes() == new_mail and ",U=" in path.name
    [path] = mbsync.files("Drafts")
    assert path.read_bytes() == draft and maildir_flags(path) == {"\\Draft", "\\Seen"}
    m.logout()


@needs_mbsync
def test_mbsync_second_sync_changes_nothing(server, mbsync):
    deliver(server, "one")
    m = login(server)
    m.append("Sent", r"(\Seen)", None, simple("sent one"))
    m.select("INBOX")
    m.store("1", "+FLAGS", r"(\Flagged)")
    m.close()
    mbsync.sync()

    def server_state():
        return {box: server_box(m, box) for box in ("INBOX", *SPECIAL_USE)}

    local_before, server_before = mbsync.snapshot(), server_state()
    assert len(local_before) == 2 and server_before["INBOX"]["one"][0] == {"\\Flagged"}
    out = mbsync.sync()
    assert mbsync.snapshot() == local_before
    assert server_state() == server_before
    # Nothing was sent that changes anything: no APPEND, STORE, EXPUNGE, CREATE or COPY.
    sent = [line for line in out.splitlines() if line.startswith(">>> ")]
    changes = [line for line in sent if re.search(r"\b(APPEND|STORE|EXPUNGE|CREATE|COPY|MOVE)\b", line)]
    assert not changes and sent, out
    m.logout()


@needs_mbsync
def test_mbsync_over_starttls_pipelines_many_messages(server):
    """STARTTLS on the plain port (RFC 9051 §6.2.1), and mbsync's pipelining: it sends all its
    APPENDs (LITERAL+, RFC 7888) and flag STOREs without waiting for the answers."""
    mbsync = Mbsync(server, tls="STARTTLS")
    for i in range(10):
        deliver(server, f"server {i}")
    mbsync.sync()
    for i in range(20):
        name = f"17000000{i:02d}.P1Q{i}.laptop" + (":2,S" if i % 2 else "")
        sub = "cur" if i % 2 else "new"
        (mbsync.maildir / "INBOX" / sub / name).write_bytes(simple(f"local {i}").replace(b"\r\n", b"\n"))
    for path in mbsync.files("INBOX"):
        if b"Subject: server" in path.read_bytes():
            set_maildir_flags(path, "F")

    out = mbsync.sync()
    assert ">>> 1 STARTTLS" in out, out
    assert re.search(r"\(\d+ in progress\) >>> \d+ APPEND", out), out  # pipelined indeed
    m = login(server)
    inbox = server_box(m, "INBOX")
    assert len(inbox) == 30, sorted(inbox)
    for i in range(20):
        flags, raw = inbox[f"local {i}"]
        assert without_tuid(raw) == simple(f"local {i}")
        assert flags == ({"\\Seen"} if i % 2 else set()), (i, flags)
    for i in range(10):
        assert inbox[f"server {i}"][0] == {"\\Flagged"}, inbox[f"server {i}"]
    assert len(mbsync.files("INBOX")) == 30
    m.logout()


# --- mutt ---------------------------------------------------------------------------------------

MUTT = shutil.which("mutt")


def run_in_pty(argv, env, timeout=20) -> tuple:
    """Runs a full-screen program on a 24x80 pseudo-terminal until it exits; returns (exit code,
    everything it drew). Kills it after `timeout` seconds (it waits for keys we did not send)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None or select.select([master], [], [], 0)[0]:
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                drawn = screen.decode(errors="replace")
                raise AssertionError(f"{argv[0]} still running after {timeout}s:\n{drawn}")
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the program closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
    finally:
        os.close(master)
    return proc.wait(timeout=5), screen.decode(errors="replace")


@pytest.mark.skipif(MUTT is None, reason="mutt not installed")
def test_mutt_reads_flags_saves_and_deletes(server, tmp_path):
    """mutt's IMAP client on a pseudo-terminal, keys given with `push`: open INBOX, read a
    message, flag one, save one to Archive (mutt: UID COPY, then \\Deleted) and quit, which
    expunges. The result is checked on the server."""
    for i in range(3):
        deliver(server, f"mutt{i}", body=b"mutt body %d\r\n" % i)
    m = login(server)
    before = server_box(m, "INBOX")

    home = tmp_path / "home"
    home.mkdir()
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(
        f'set imap_user = "{USER}"\n'
        f'set imap_pass = "{PASSWORD}"\n'
        f'set folder = "imaps://127.0.0.1:{server.ports["imaps"]}/"\n'
        f'set spoolfile = "+INBOX"\n'
        # The self-signed certificate is trusted as stored; it names mail.example.com, not
        # 127.0.0.1, so the host name check is off.
        f'set certificate_file = "{server.data / "tls" / "cert.pem"}"\n'
        f"set ssl_verify_host = no\n"
        f'set header_cache = ""\n'
        f'set message_cachedir = ""\n'
        # No question may wait for an answer: every prompt would eat the pushed keys.
        f"set confirmappend = no\nset confirmcreate = no\nset delete = yes\nset quit = yes\n"
        f"set move = no\nset mark_old = no\nset wait_key = no\nset sleep_time = 0\n"
        f"set sort = mailbox-order\nset imap_idle = no\nset mail_check = 600\nset timeout = 600\n"
        f"set pager_stop = yes\nset resolve = no\n"
    )
    keys = (
        "<display-message><exit>"                         # read mutt0: STORE \\Seen at close
        "<search>~s mutt2<enter><flag-message>"           # flag mutt2
        "<search>~s mutt1<enter><save-message>=Archive<enter>"  # save mutt1 to Archive
        "<quit>"                                          # expunge the saved one and leave
    )
    env = {"HOME": str(home), "TERM": "vt100", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "LANG": "C.UTF-8"}
    # -d 2 logs the IMAP exchange to ~/.muttdebug0, shown when an assertion fails.
    code, screen = run_in_pty([MUTT, "-d", "2", "-n", "-F", str(muttrc), "-e", f'push "{keys}"'], env)
    debug = home / ".muttdebug0"
    log = debug.read_text(errors="replace") if debug.exists() else screen
    assert code == 0, log

    inbox = server_box(m, "INBOX")
    assert set(inbox) == {"mutt0", "mutt2"}, (inbox, log)
    assert inbox["mutt0"][0] == {"\\Seen"}, (inbox, log)
    assert inbox["mutt2"][0] == {"\\Flagged"}, (inbox, log)
    for subject in ("mutt0", "mutt2"):
        assert inbox[subject][1] == before[subject][1]
    archive = server_box(m, "Archive")
    assert set(archive) == {"mutt1"}, (archive, log)
    assert archive["mutt1"][1] == before["mutt1"][1]
    m.logout()

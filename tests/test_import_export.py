"""`yubin import maildir|mbox` and `yubin export maildir|mbox` (issue 10): a Maildir written by
a real Dovecot (started on loopback for the test) and an mbox from shared/tools/gen_mbox.py
come out over IMAP with their bytes, flags, keywords and internal dates; a second import adds
nothing; export then import gives the same messages back byte for byte. The server runs during
the import, and a session that has INBOX selected sees the new mail."""

import imaplib
import mailbox
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, ROOT, client_tls, free_port

USER = "alice@example.com"
needs_dovecot = pytest.mark.skipif(shutil.which("dovecot") is None, reason="no dovecot (apt-get install dovecot-imapd)")


def gen_mbox_script() -> Path:
    for base in (ROOT.parent / "shared", Path("/work/shared")):
        p = base / "tools" / "gen_mbox.py"
        if p.exists():
            return p
    pytest.skip("shared/tools/gen_mbox.py not found")


def login(server):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=20)
    m.login(USER, PASSWORD)
    return m


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_mailbox(m, name):
    """[(bytes, set of flags, internaldate string)] in UID order."""
    typ, _ = m.select(quote(name), readonly=True)
    assert typ == "OK", name
    typ, data = m.uid("FETCH", "1:*", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK"
    out = []
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta = item[0].decode()
        flags = set(re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()) - {"\\Recent"}
        date = re.search(r'INTERNALDATE "([^"]+)"', meta).group(1)
        out.append((item[1], flags, imaplib.Internaldate2tuple(b'INTERNALDATE "' + date.encode() + b'"')))
    return out


def stamp(t):
    return time.mktime(t)


def mailbox_names(m):
    typ, boxes = m.list()
    return {line.decode().rsplit(' "/" ', 1)[1].strip('"') for line in boxes}


# --- a Maildir made by Dovecot ------------------------------------------------------------------

class Dovecot:
    """Debian's Dovecot on a loopback port, Maildir++ in a temporary directory."""

    def __init__(self, workdir: Path):
        self.dir = workdir
        self.port = free_port()
        if subprocess.run(["id", "vmail"], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-r", "-M", "-s", "/usr/sbin/nologin", "vmail"], check=True)
        vmail = pwd.getpwnam("vmail")
        for sub in ("run", "state", "mail"):
            (workdir / sub).mkdir(parents=True)
        # The mail processes run as vmail: every directory up to the mail must be searchable.
        p = workdir
        while p != p.parent:
            os.chmod(p, os.stat(p).st_mode | 0o711)
            p = p.parent
        os.chown(workdir / "mail", vmail.pw_uid, vmail.pw_gid)
        (workdir / "users").write_text("tester:{PLAIN}pass::::::\n")
        self.conf = workdir / "dovecot.conf"
        self.conf.write_text(f"""
instance_name = yubin-test-{self.port}
base_dir = {workdir}/run/
state_dir = {workdir}/state
protocols = imap
listen = 127.0.0.1
log_path = {workdir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {workdir}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {workdir}/users
  override_fields = uid=vmail gid=vmail home={workdir}/mail/%u
}}
mail_location = maildir:{workdir}/mail/%u/Maildir
first_valid_uid = 1
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = create
  }}
  mailbox Spam {{
    special_use = \\Junk
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
""")
        subprocess.run(["dovecot", "-c", str(self.conf)], check=True)
        deadline = time.time() + 15
        while True:
            try:
                self.client().logout()
                break
            except OSError:
                if time.time() > deadline:
                    raise AssertionError((workdir / "dovecot.log").read_text(errors="replace"))
                time.sleep(0.1)

    @property
    def maildir(self) -> Path:
        return self.dir / "mail" / "tester" / "Maildir"

    def client(self):
        m = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        m.login("tester", "pass")
        return m

    def stop(self):
        pid = int((self.dir / "run" / "master.pid").read_text())
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def message(i, subject):
    return (f"From: Sender {i} <s{i}@example.org>\r\nTo: tester@example.com\r\n"
            f"Subject: {subject}\r\nMessage-ID: <m{i}@example.org>\r\n\r\n"
            f"Body of message {i}.\r\nFrom the start of a line.\r\n").encode()


# mailbox -> [(message, flags, internal date (UTC seconds))]
DOVECOT_MAIL = {
    "INBOX": [
        (message(1, "plain unseen"), "", 1_600_000_000),
        (message(2, "seen and flagged"), "\\Seen \\Flagged", 1_600_086_400),
        (message(3, "answered with keywords"), "\\Answered \\Seen $Forwarded Work", 1_650_000_000),
        (message(4, "deleted"), "\\Deleted", 1_660_000_000),
    ],
    "Sent": [(message(5, "sent"), "\\Seen", 1_610_000_000)],
    "Drafts": [(message(6, "draft"), "\\Draft", 1_620_000_000)],
    "Spam": [(message(7, "spam"), "$Junk", 1_630_000_000)],
    "Projekte/Übersicht": [
        (message(8, "nested one"), "Work $Label1", 1_640_000_000),
        (message(9, "nested two"), "\\Seen", 1_640_000_100),
    ],
}

# Where yubin files them: Dovecot's Spam is the account's \Junk mailbox, Junk.
TARGET = {"Spam": "Junk"}


def imap_utf7(name):
    """RFC 3501 §5.1.3 modified UTF-7, enough for the names above."""
    out, buf = "", ""
    for ch in name:
        if 0x20 <= ord(ch) < 0x7F:
            if buf:
                import base64
                b = base64.b64encode(buf.encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
                out += "&" + b + "-"
                buf = ""
            out += "&-" if ch == "&" else ch
        else:
            buf += ch
    if buf:
        import base64
        out += "&" + base64.b64encode(buf.encode("utf-16-be")).decode().rstrip("=").replace("/", ",") + "-"
    return out


def fill_dovecot(d: Dovecot):
    m = d.client()
    for name, msgs in DOVECOT_MAIL.items():
        wire = quote(imap_utf7(name))
        m.create(wire)
        for body, flags, date in msgs:
            typ, _ = m.append(wire, f"({flags})", imaplib.Time2Internaldate(date), body)
            assert typ == "OK"
    m.logout()


@needs_dovecot
def test_import_maildir_made_by_dovecot(make_server, tmp_path):
    d = Dovecot(tmp_path / "dovecot")
    try:
        fill_dovecot(d)
    finally:
        d.stop()
    # What Dovecot wrote: Maildir++ folders, keywords files, flags in the names.
    assert (d.maildir / ".Spam" / "dovecot-keywords").exists()
    assert (d.maildir / ".Projekte.&ANw-bersicht").is_dir()
    assert any(":2," in f.name and "F" in f.name.split(":2,")[1] for f in (d.maildir / "cur").iterdir())

    server = make_server()
    watcher = login(server)
    watcher.select("INBOX")
    res = server.cli("import", "maildir", str(d.maildir), USER)
    assert "imported 9 messages" in res.stdout, res.stdout
    # The session that had INBOX selected before the import is told of the new messages (by
    # the change log, which the server polls: a client polling with NOOP sees them shortly).
    t0 = time.monotonic()
    while True:
        watcher.noop()
        if watcher.untagged_responses.get("EXISTS", [b"0"])[-1] == b"4":
            break
        assert time.monotonic() - t0 < 5, watcher.untagged_responses
        time.sleep(0.05)
    print(f"EXISTS 4 after {time.monotonic() - t0:.3f} s")
    watcher.logout()

    m = login(server)
    assert "Projekte/Übersicht" in mailbox_names(m) or imap_utf7("Projekte/Übersicht") in mailbox_names(m)
    assert "Spam" not in mailbox_names(m), "Spam is the account's Junk"
    for name, msgs in DOVECOT_MAIL.items():
        got = read_mailbox(m, imap_utf7(TARGET.get(name, name)))
        assert len(got) == len(msgs), name
        for (body, flags, date), (gbody, gflags, gdate) in zip(msgs, got):
            assert gbody == body, name
            assert gflags == set(flags.split()), (name, flags, gflags)
            assert stamp(gdate) == date, (name, date)
    m.logout()

    # Resumed: nothing new.
    res = server.cli("import", "maildir", str(d.maildir), USER)
    assert "imported 0 messages" in res.stdout and "skipped 9 already there" in res.stdout, res.stdout
    m = login(server)
    assert len(read_mailbox(m, "INBOX")) == 4
    m.logout()


def test_import_maildir_resumes_after_new_files(make_server, tmp_path):
    """A Maildir laid out by hand as Dovecot does: keyword letters through dovecot-keywords,
    the mtime as internal date, new/ without flags; files added later are imported by a second
    run, and nothing else."""
    root = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp", ".Archive/cur", ".Archive/new", ".Archive/tmp"):
        (root / sub).mkdir(parents=True)
    (root / "dovecot-keywords").write_text("0 $Forwarded\n1 Important\n")

    def put(rel, text, date):
        p = root / rel
        p.write_bytes(text)
        os.utime(p, (date, date))

    put("cur/1700000000.M1P1.host,S=30:2,RSb", b"Subject: one\n\nfirst\n", 1_700_000_000)
    put("new/1700000100.M2P1.host", b"Subject: two\n\nsecond\n", 1_700_000_100)
    put(".Archive/cur/1690000000.M3P1.host:2,S", b"Subject: old\n\narchived\n", 1_690_000_000)
    server = make_server()
    res = server.cli("import", "maildir", str(root), USER)
    assert "imported 3 messages" in res.stdout, res.stdout
    put("new/1700000200.M4P1.host", b"Subject: three\n\nthird\n", 1_700_000_200)
    res = server.cli("import", "maildir", str(root), USER)
    assert "imported 1 messages" in res.stdout and "skipped 3" in res.stdout, res.stdout
    m = login(server)
    inbox = read_mailbox(m, "INBOX")
    assert [b for b, _, _ in inbox] == [b"Subject: one\r\n\r\nfirst\r\n", b"Subject: two\r\n\r\nsecond\r\n",
                                        b"Subject: three\r\n\r\nthird\r\n"]
    assert inbox[0][1] == {"\\Answered", "\\Seen", "Important"}
    assert inbox[1][1] == set()
    assert [stamp(d) for _, _, d in inbox] == [1_700_000_000, 1_700_000_100, 1_700_000_200]
    archive = read_mailbox(m, "Archive")
    assert archive == [(b"Subject: old\r\n\r\narchived\r\n", {"\\Seen"}, archive[0][2])]
    m.logout()


# --- mbox ---------------------------------------------------------------------------------------

def test_import_mbox_from_gen_mbox(make_server, tmp_path):
    path = tmp_path / "sample.mbox"
    subprocess.run([sys.executable, str(gen_mbox_script()), str(path), "60"], check=True)
    # Mark a few messages as mutt and Dovecot do.
    box = mailbox.mbox(str(path))
    box.lock()
    keys = list(box.keys())
    expected_flags = {}
    for i, key in enumerate(keys):
        msg = box[key]
        if i % 3 == 0:
            msg["Status"] = "RO"
        if i % 5 == 0:
            msg["X-Status"] = "AF"
        if i % 7 == 0:
            msg["X-Keywords"] = "$Forwarded Work"
        box[key] = msg
    box.flush()
    box.unlock()
    # The expected bytes: the message without the state headers, with CRLF line ends.
    expected = []
    for i, msg in enumerate(mailbox.mbox(str(path))):
        raw = msg.as_bytes(unixfrom=False)
        for h in (b"Status", b"X-Status", b"X-Keywords"):
            raw = re.sub(rb"(?m)^" + h + rb": [^\n]*\n", b"", raw, count=1)
        # Python's mailbox leaves the writer's quoting (mboxo: `From ` -> `>From `) in place.
        raw = re.sub(rb"(?m)^>(>*From )", rb"\1", raw)
        body = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        flags = set()
        if i % 3 == 0:
            flags.add("\\Seen")
        if i % 5 == 0:
            flags |= {"\\Answered", "\\Flagged"}
        if i % 7 == 0:
            flags |= {"$Forwarded", "Work"}
        # gen_mbox writes the From line in UTC.
        date = time.strptime(msg.get_from().split(None, 1)[1], "%a %b %d %H:%M:%S %Y")[:6]
        expected.append((body, flags, date))

    server = make_server()
    res = server.cli("import", "mbox", str(path), USER, "--mailbox", "Old/Letters")
    assert "imported 60 messages" in res.stdout, res.stdout
    m = login(server)
    got = read_mailbox(m, "Old/Letters")
    assert len(got) == 60
    quoted = 0
    for (body, flags, date), (gbody, gflags, gdate) in zip(expected, got):
        assert gbody == body
        assert gflags == flags
        assert time.gmtime(stamp(gdate))[:6] == date
        quoted += b"\r\nFrom the desk" in gbody
    assert quoted > 0, "gen_mbox's >From lines are unquoted"
    m.logout()
    res = server.cli("import", "mbox", str(path), USER, "--mailbox", "Old/Letters")
    assert "imported 0 messages" in res.stdout and "skipped 60" in res.stdout, res.stdout


# --- round trips --------------------------------------------------------------------------------

def fill_account(server):
    """Mail with flags, keywords and dates, in several mailboxes, through IMAP APPEND."""
    m = login(server)
    m.create("Projects/2024")
    mail = {
        "INBOX": [(message(i, f"inbox {i}") + b"From me\r\n>From you\r\n", flags, 1_600_000_000 + i * 1000)
                  for i, flags in enumerate(["", "\\Seen", "\\Seen \\Answered $Forwarded", "\\Flagged Work", "\\Deleted"])],
        "Sent": [(message(10, "sent"), "\\Seen", 1_610_000_000)],
        "Projects/2024": [(message(11, "p"), "\\Draft Later", 1_620_000_000),
                          (message(12, "same body twice"), "", 1_620_000_001),
                          (message(12, "same body twice"), "\\Seen", 1_620_000_002)],
    }
    for name, msgs in mail.items():
        for body, flags, date in msgs:
            typ, _ = m.append(quote(name), f"({flags})", imaplib.Time2Internaldate(date), body)
            assert typ == "OK"
    snapshot = {name: read_mailbox(m, name) for name in mail}
    m.logout()
    return snapshot


@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
def test_export_then_import_round_trip(make_server, tmp_path, fmt):
    a = make_server()
    before = fill_account(a)
    out = tmp_path / f"export-{fmt}"
    res = a.cli("export", fmt, USER, str(out))
    assert "exported 9 messages" in res.stdout, res.stdout
    if fmt == "maildir":
        assert (out / "cur").is_dir() and (out / ".Projects.2024" / "cur").is_dir()
        assert "Later" in (out / ".Projects.2024" / "dovecot-keywords").read_text()
    else:
        assert (out / "INBOX.mbox").is_file() and (out / "Projects" / "2024.mbox").is_file()
        assert b"\n>From me\n>>From you\n" in (out / "INBOX.mbox").read_bytes()
    # A second export writes nothing new.
    res = a.cli("export", fmt, USER, str(out))
    assert "exported 0 messages" in res.stdout, res.stdout

    b = make_server()
    if fmt == "maildir":
        res = b.cli("import", "maildir", str(out), USER)
    else:
        res = b.cli("import", "mbox", str(out), USER)
    assert "imported 9 messages" in res.stdout, res.stdout
    m = login(b)
    for name, msgs in before.items():
        assert read_mailbox(m, name) == msgs, name
    m.logout()


def test_import_errors(make_server, tmp_path):
    server = make_server()
    res = server.cli("import", "maildir", str(tmp_path / "missing"), USER, check=False)
    assert res.returncode != 0 and "Maildir" in res.stderr
    (tmp_path / "m" / "cur").mkdir(parents=True)
    res = server.cli("import", "maildir", str(tmp_path / "m"), "nobody@example.com", check=False)
    assert res.returncode != 0 and "no such account" in res.stderr

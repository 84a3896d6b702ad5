"""Quotas (RFC 9208 STORAGE and MESSAGE) on every path: SMTP RCPT with SIZE= (RFC 1870) and
end of DATA (452 4.2.2, or 552 5.2.2 by config), per recipient; submission to local users;
IMAP APPEND, COPY and MOVE (NO [OVERQUOTA]; MOVE within the account always works);
GETQUOTA, GETQUOTAROOT, SETQUOTA (admins only) and STATUS SIZE (RFC 8438) as raw commands;
warnings in the INBOX once per crossing (English and Japanese); `yubin quota` set/clear/show."""

import email
import email.header
import imaplib
import re
import smtplib
import time

import pytest

from conftest import PASSWORD, Transcript, client_tls

ALICE = "alice@example.com"
BOB = "bob@example.com"


class Imap:
    """A raw IMAP client for exact replies (plaintext LOGIN is allowed from loopback)."""

    def __init__(self, server, user):
        self.t = Transcript(server.connect("imap"))
        assert self.t.line().startswith(b"* OK")
        self.n = 0
        assert self.cmd(f'LOGIN {user} "{PASSWORD}"')[-1].startswith(b"a1 OK")

    def cmd(self, text: str, literal: bytes | None = None) -> list[bytes]:
        """Sends one command (with a LITERAL+ literal appended if given); returns every line
        up to and including the tagged one."""
        self.n += 1
        tag = f"a{self.n}"
        if literal is None:
            self.t.send(f"{tag} {text}\r\n".encode())
        else:
            self.t.send(f"{tag} {text} {{{len(literal)}+}}\r\n".encode() + literal + b"\r\n")
        lines = []
        while True:
            line = self.t.line().rstrip(b"\r\n")
            lines.append(line)
            if line.startswith(tag.encode() + b" "):
                return lines

    def tagged(self, text: str, literal: bytes | None = None) -> bytes:
        return self.cmd(text, literal)[-1].split(b" ", 1)[1]

    def close(self):
        self.cmd("LOGOUT")
        self.t.sock.close()


def message(size: int, subject: str = "q") -> bytes:
    """A message of exactly `size` octets."""
    head = f"Subject: {subject}\r\nFrom: carol@sender.test\r\n\r\n".encode()
    body = b"x" * (size - len(head) - 2) + b"\r\n"
    assert len(head + body) == size
    return head + body


def smtp_session(server) -> Transcript:
    t = Transcript(server.connect("smtp"))
    assert t.smtp_reply().startswith(b"220")
    assert t.cmd(b"EHLO client.test\r\n").startswith(b"250")
    return t


def data(t: Transcript, msg: bytes) -> bytes:
    assert t.cmd(b"DATA\r\n").startswith(b"354")
    return t.cmd(msg + b".\r\n")


def inbox_count(server, user) -> int:
    m = Imap(server, user)
    line = [l for l in m.cmd("STATUS INBOX (MESSAGES)") if l.startswith(b"* STATUS")][0]
    m.close()
    return int(re.search(rb"MESSAGES (\d+)", line).group(1))


def test_rcpt_with_size_refuses_only_the_full_recipient(server):
    server.cli("quota", "set", BOB, "--storage", "4K")
    t = smtp_session(server)
    assert t.cmd(b"MAIL FROM:<carol@sender.test> SIZE=5000\r\n").startswith(b"250")
    # RFC 1870 §6.3 / RFC 3463 X.2.2: this recipient's mailbox cannot take 5000 octets.
    assert t.cmd(b"RCPT TO:<bob@example.com>\r\n") == b"452 4.2.2 Mailbox full\r\n"
    assert t.cmd(b"RCPT TO:<alice@example.com>\r\n").startswith(b"250")
    assert data(t, message(3000)).startswith(b"250")
    assert t.cmd(b"MAIL FROM:<carol@sender.test> SIZE=1000\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<bob@example.com>\r\n").startswith(b"250")
    assert t.cmd(b"QUIT\r\n").startswith(b"221")
    assert (inbox_count(server, ALICE), inbox_count(server, BOB)) == (1, 0)
    assert "event=quota_refused" in server.logs()


def test_end_of_data_refuses_and_stores_nothing(server):
    server.cli("quota", "set", BOB, "--storage", "4K")
    t = smtp_session(server)
    # Without SIZE= the RCPT check can only ask for one octet.
    assert t.cmd(b"MAIL FROM:<carol@sender.test>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<bob@example.com>\r\n").startswith(b"250")
    assert data(t, message(5000)) == b"452 4.2.2 Mailbox full\r\n"
    # A message that fits still goes through on the same connection.
    assert t.cmd(b"MAIL FROM:<carol@sender.test>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<bob@example.com>\r\n").startswith(b"250")
    assert data(t, message(1000)).startswith(b"250")
    assert inbox_count(server, BOB) == 1
    out = server.cli("quota", "show", BOB).stdout
    assert re.search(r"bob@example.com\s+\S+ \S+\s+4.0 KiB\*\s+\d+%\s+1\s+unlimited", out), out


def test_permanent_by_config(make_server):
    server = make_server('[quota]\nsmtp_over_quota = "permanent"\n')
    server.cli("quota", "set", BOB, "--storage", "4K")
    t = smtp_session(server)
    assert t.cmd(b"MAIL FROM:<carol@sender.test> SIZE=5000\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<bob@example.com>\r\n") == b"552 5.2.2 Mailbox full\r\n"
    assert t.cmd(b"RSET\r\n").startswith(b"250")
    assert t.cmd(b"MAIL FROM:<carol@sender.test>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<bob@example.com>\r\n").startswith(b"250")
    assert data(t, message(5000)) == b"552 5.2.2 Mailbox full\r\n"


def test_after_data_the_others_get_it_and_the_sender_a_report(server):
    """One recipient full after DATA: the other still gets the message (250), and the
    sender, a local user here, gets an RFC 3464 report naming the full recipient."""
    server.cli("quota", "set", BOB, "--storage", "4K")
    t = smtp_session(server)
    assert t.cmd(b"MAIL FROM:<alice@example.com>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<bob@example.com>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<alice@example.com>\r\n").startswith(b"250")
    assert data(t, message(5000, "to both")).startswith(b"250")
    assert inbox_count(server, BOB) == 0
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    m.login(ALICE, PASSWORD)
    m.select("INBOX")
    typ, got = m.fetch("1:*", "(BODY.PEEK[])")
    bodies = [email.message_from_bytes(d[1]) for d in got if isinstance(d, tuple)]
    subjects = sorted(b["Subject"] for b in bodies)
    assert subjects == ["Undelivered Mail Returned to Sender", "to both"], subjects
    report = [b for b in bodies if b.get_content_type() == "multipart/report"][0]
    status = [p for p in report.walk() if p.get_content_type() == "message/delivery-status"][0]
    text = status.as_string()
    assert "Final-Recipient: rfc822; bob@example.com" in text
    assert "Status: 5.2.2" in text
    m.logout()


def test_submission_to_a_full_local_user(server):
    server.cli("quota", "set", BOB, "--messages", "1")
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30) as s:
        s.starttls(context=client_tls())
        s.login(ALICE, PASSWORD)
        msg = b"From: alice@example.com\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\nhello\r\n"
        assert s.sendmail(ALICE, [BOB], msg) == {}
        # The second does not fit (MESSAGE 1): refused at RCPT, per recipient.
        refused = s.sendmail(ALICE, [BOB, ALICE], msg)
        assert refused == {BOB: (452, b"4.2.2 Mailbox full")}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail(ALICE, [BOB], msg)
    assert (inbox_count(server, BOB), inbox_count(server, ALICE)) == (1, 1)


def test_domain_default_from_config(make_server):
    server = make_server('[quota]\n[quota.domain."example.com"]\nmessages = 2\n')
    t = smtp_session(server)
    for _ in range(2):
        assert t.cmd(b"MAIL FROM:<carol@sender.test>\r\n").startswith(b"250")
        assert t.cmd(b"RCPT TO:<alice@example.com>\r\n").startswith(b"250")
        assert data(t, message(500)).startswith(b"250")
    assert t.cmd(b"MAIL FROM:<carol@sender.test>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<alice@example.com>\r\n") == b"452 4.2.2 Mailbox full\r\n"
    # The account's own limit wins over the domain's.
    server.cli("quota", "set", ALICE, "--messages", "3")
    assert t.cmd(b"RCPT TO:<alice@example.com>\r\n").startswith(b"250")


def test_append_copy_move_and_getquotaroot(server):
    server.cli("quota", "set", ALICE, "--messages", "3", "--storage", "10K")
    m = Imap(server, ALICE)
    caps = m.cmd("CAPABILITY")[0]
    for cap in (b" QUOTA ", b" QUOTA=RES-STORAGE ", b" QUOTA=RES-MESSAGE ", b" STATUS=SIZE "):
        assert cap in caps + b" ", caps
    assert b"QUOTASET" not in caps
    for i in range(3):
        assert m.tagged("APPEND INBOX", message(1500, f"m{i}")).startswith(b"OK")
    # RFC 9208 §4.3 / RFC 5530: the fourth does not fit.
    assert m.tagged("APPEND INBOX", message(100)) == b"NO [OVERQUOTA] over quota"
    lines = m.cmd("GETQUOTAROOT INBOX")
    assert lines[0] == b'* QUOTAROOT "INBOX" ""'
    # STORAGE in KiB, usage rounded up: 4500 octets are 5 KiB.
    assert lines[1] == b'* QUOTA "" (STORAGE 5 10 MESSAGE 3 3)'
    assert lines[2].endswith(b"OK GETQUOTAROOT completed")
    lines = m.cmd('GETQUOTA ""')
    assert lines == [b'* QUOTA "" (STORAGE 5 10 MESSAGE 3 3)', lines[-1]]
    assert lines[-1].endswith(b"OK GETQUOTA completed")
    # RFC 8438: STATUS SIZE is the sum of the messages' sizes.
    status = [l for l in m.cmd("STATUS INBOX (MESSAGES SIZE)") if l.startswith(b"* STATUS")][0]
    assert status == b'* STATUS "INBOX" (MESSAGES 3 SIZE 4500)'
    assert m.tagged("SELECT INBOX").startswith(b"OK")
    assert m.tagged("COPY 1 Trash") == b"NO [OVERQUOTA] over quota"
    # A MOVE within the account never fails for quota.
    assert m.tagged("MOVE 1 Trash").startswith(b"OK")
    lines = m.cmd('GETQUOTA ""')
    assert lines[0] == b'* QUOTA "" (STORAGE 5 10 MESSAGE 3 3)'
    assert m.tagged("GETQUOTAROOT Nonexistent").startswith(b"NO [NONEXISTENT]")
    # Expunging makes room again.
    assert m.tagged("STORE 1 +FLAGS (\\Deleted)").startswith(b"OK")
    assert m.tagged("EXPUNGE").startswith(b"OK")
    assert m.tagged("APPEND INBOX", message(100)).startswith(b"OK")
    m.close()


def test_account_without_limits_has_no_quota_root(server):
    m = Imap(server, BOB)
    lines = m.cmd("GETQUOTAROOT INBOX")
    assert lines[0] == b'* QUOTAROOT "INBOX"'
    assert lines[1].endswith(b"OK GETQUOTAROOT completed")
    assert m.tagged('GETQUOTA ""').startswith(b"NO [NONEXISTENT]")
    m.close()


def test_setquota_only_for_admins(make_server):
    server = make_server('[quota]\nadmins = ["alice@example.com"]\n')
    bob = Imap(server, BOB)
    assert b"QUOTASET" not in bob.cmd("CAPABILITY")[0]
    assert bob.tagged('SETQUOTA "" (STORAGE 100)') == b"NO [NOPERM] permission denied"
    assert bob.tagged('GETQUOTA "alice@example.com"').startswith(b"NO [NONEXISTENT]")
    alice = Imap(server, ALICE)
    assert b" QUOTASET" in alice.cmd("CAPABILITY")[0]
    lines = alice.cmd('SETQUOTA "bob@example.com" (STORAGE 100 MESSAGE 7)')
    assert lines[0] == b'* QUOTA bob@example.com (STORAGE 0 100 MESSAGE 0 7)'
    assert lines[1].endswith(b"OK SETQUOTA completed")
    lines = bob.cmd('GETQUOTA ""')
    assert lines[0] == b'* QUOTA "" (STORAGE 0 100 MESSAGE 0 7)'
    out = server.cli("quota", "show", BOB).stdout
    assert "100.0 KiB*" in out and " 7*" in out, out
    assert alice.tagged('SETQUOTA "" (FOO 1)').startswith(b"NO [CANNOT]")
    assert alice.tagged('SETQUOTA "nobody@example.com" (STORAGE 1)').startswith(b"NO [NONEXISTENT]")
    # RFC 9208 §4.1.3: limits not listed are removed (the default applies again).
    lines = alice.cmd('SETQUOTA "bob@example.com" (MESSAGE 9)')
    assert lines[0] == b'* QUOTA bob@example.com (MESSAGE 0 9)'
    assert "event=quota_set" in server.logs()
    alice.close()
    bob.close()


def warnings_in(server, user) -> list[str]:
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    m.login(user, PASSWORD)
    m.select("INBOX", readonly=True)
    typ, data = m.search(None, "HEADER", "X-Yubin-Quota-Warning", "\"\"")
    out = []
    for n in data[0].split():
        typ, got = m.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        raw = got[0][1].decode().split(":", 1)[1].strip()
        out.append(str(email.header.make_header(email.header.decode_header(raw))))
    m.logout()
    return out


def wait_for_warnings(server, user, n, timeout=10) -> list[str]:
    deadline = time.time() + timeout
    while True:
        got = warnings_in(server, user)
        if len(got) >= n or time.time() > deadline:
            return got
        time.sleep(0.3)


def test_warnings_once_per_crossing(make_server):
    server = make_server("[quota]\nwarning_interval_secs = 1\n")
    server.cli("quota", "set", BOB, "--storage", "100K")  # 80%: 81920, 95%: 97280 octets
    m = Imap(server, BOB)
    assert m.tagged("APPEND INBOX", message(80000, "big")).startswith(b"OK")  # 78%
    time.sleep(2.5)
    assert warnings_in(server, BOB) == []
    assert m.tagged("APPEND INBOX", message(2000)).startswith(b"OK")  # 80%
    assert wait_for_warnings(server, BOB, 1) == ["Your mailbox is 80% full"]
    assert m.tagged("APPEND INBOX", message(1000)).startswith(b"OK")  # still between
    time.sleep(2.5)
    assert warnings_in(server, BOB) == ["Your mailbox is 80% full"]
    assert m.tagged("APPEND INBOX", message(14000)).startswith(b"OK")  # 95%
    got = wait_for_warnings(server, BOB, 2)
    assert got == ["Your mailbox is 80% full", "Your mailbox is 95% full"]
    # Below 80% again, then crossing it again: a new warning.
    assert m.tagged("SELECT INBOX").startswith(b"OK")
    assert m.tagged("STORE 1 +FLAGS (\\Deleted)").startswith(b"OK")
    assert m.tagged("EXPUNGE").startswith(b"OK")
    assert m.tagged("APPEND INBOX", message(70000)).startswith(b"OK")
    got = wait_for_warnings(server, BOB, 3)
    assert got == ["Your mailbox is 80% full", "Your mailbox is 95% full", "Your mailbox is 80% full"]
    m.close()
    logs = server.logs()
    assert logs.count("event=quota_warning") == 3, logs
    assert re.search(r"event=quota_warning account=bob@example.com resource=\"?STORAGE\"? percent=95", logs), logs


def test_warning_in_japanese(make_server):
    server = make_server('[quota]\nwarning_interval_secs = 1\nlanguage = "ja"\n')
    server.cli("quota", "set", ALICE, "--messages", "5")
    m = Imap(server, ALICE)
    for i in range(4):  # the 4th of 5 messages: 80%
        assert m.tagged("APPEND INBOX", message(300, f"m{i}")).startswith(b"OK")
    got = wait_for_warnings(server, ALICE, 1)
    assert got == ["メールボックスのメール数が上限の80%に達しました"]
    m.close()


def test_quota_cli(make_server):
    server = make_server('[quota]\nstorage = "1G"\n[quota.domain."example.com"]\nmessages = 50\n')
    out = server.cli("quota", "set", BOB, "--storage", "10K", "--messages", "5").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["ADDRESS", "STORAGE", "LIMIT", "USE", "MESSAGES", "LIMIT", "USE"]
    assert lines[1].split() == [BOB, "0", "B", "10.0", "KiB*", "0%", "0", "5*", "0%"], out
    m = Imap(server, BOB)
    assert m.tagged("APPEND INBOX", message(1024)).startswith(b"OK")
    m.close()
    out = server.cli("quota", "show", "--all").stdout
    rows = {l.split()[0]: l.split() for l in out.splitlines()[1:]}
    assert rows[BOB] == [BOB, "1.0", "KiB", "10.0", "KiB*", "10%", "1", "5*", "20%"], out
    # The defaults: storage from [quota], messages from the domain's table.
    assert rows[ALICE] == [ALICE, "0", "B", "1.0", "GiB", "0%", "0", "50", "0%"], out
    out = server.cli("quota", "set", BOB, "--messages", "default").stdout
    assert out.splitlines()[1].split()[-2:] == ["50", "2%"], out
    out = server.cli("quota", "clear", BOB).stdout
    assert out.splitlines()[1].split()[3:5] == ["1.0", "GiB"], out
    res = server.cli("quota", "set", "nobody@example.com", "--storage", "1G", check=False)
    assert res.returncode != 0 and "no such user" in res.stderr
    res = server.cli("quota", "set", BOB, "--storage", "lots", check=False)
    assert res.returncode != 0 and "not a size" in res.stderr
    res = server.cli("quota", "set", BOB, check=False)
    assert res.returncode != 0

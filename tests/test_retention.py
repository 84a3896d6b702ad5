"""Retention policies ([retention]): Trash/Junk expiry by save date (RFC 8514) seen live by an
IMAP session in IDLE, POP3 "leave a copy for N days" (RFC 2449 §6.7 EXPIRE), FETCH SAVEDATE
and SEARCH SAVED*, and `yubin retention run [--dry-run]`.

Retention's clock is shifted with YUBIN_RETENTION_CLOCK_OFFSET (seconds), so nothing waits
for days; save dates and POP3 retrievals are recorded with the real clock."""

import imaplib
import poplib
import re
import smtplib
import time
from datetime import datetime, timezone

from conftest import PASSWORD, Transcript, client_tls
from test_imap import RawImap, login_imaps, raw_imaps

USER = "alice@example.com"
DAY = 86_400
CLOCK = "YUBIN_RETENTION_CLOCK_OFFSET"


def deliver(server, n=1, to=USER):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        for i in range(n):
            s.sendmail("carol@sender.test", [to], b"Subject: m%d\r\n\r\nbody\r\n" % i)


def append(m, mailbox, subject, date='"01-Jan-2020 10:00:00 +0000"'):
    msg = f"Subject: {subject}\r\nFrom: carol@sender.test\r\n\r\nhello\r\n".encode()
    typ, data = m.append(mailbox, None, date, msg)
    assert typ == "OK", data


def count(m, mailbox) -> int:
    typ, data = m.status(mailbox, "(MESSAGES)")
    assert typ == "OK", data
    return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))


def read_until(raw: RawImap, pattern: bytes, timeout=15) -> bytes:
    raw.sock.settimeout(timeout)
    seen = b""
    while True:
        line = raw.line()
        seen += line
        if re.search(pattern, line):
            return seen


def run(server, *args, offset_days=0.0, check=True):
    import os
    import subprocess
    from conftest import yubin_binary

    env = {**os.environ, CLOCK: str(int(offset_days * DAY))}
    res = subprocess.run(
        [yubin_binary(), "--config", str(server.config), "retention", "run", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )
    if check:
        assert res.returncode == 0, res.stderr
    return res


def test_trash_and_junk_expire_live_in_idle(make_server, monkeypatch):
    # The server's clock runs 31 days ahead: whatever lands in Trash or Junk is due at the
    # next pass (every second here); the INBOX is never touched by these rules.
    monkeypatch.setenv(CLOCK, str(31 * DAY))
    server = make_server("[retention]\ninterval_secs = 1\nbatch_size = 2\n")
    deliver(server, 1)
    idle = raw_imaps(server)
    idle.login()
    idle.cmd(b"SELECT Trash")
    idle.send(b"i1 IDLE\r\n")
    assert idle.line().startswith(b"+ ")

    m = login_imaps(server)
    for i in range(5):
        append(m, "Trash", f"old {i}")
    append(m, "Junk", "spam")
    # The session sees the messages arrive, then go: five EXPUNGEs (in batches of two).
    seen = read_until(idle, rb"\* 5 EXISTS")
    expunges = 0
    deadline = time.time() + 20
    while expunges < 5 and time.time() < deadline:
        line = idle.line()
        seen += line
        if re.match(rb"\* \d+ EXPUNGE", line):
            expunges += 1
    assert expunges == 5, seen
    idle.send(b"DONE\r\n")
    _, done = idle.until(b"i1")
    assert done.startswith(b"i1 OK"), done
    deadline = time.time() + 10
    while count(m, "Junk") and time.time() < deadline:
        time.sleep(0.2)
    assert count(m, "Junk") == 0
    assert count(m, "Trash") == 0
    assert count(m, "INBOX") == 1
    # Expunged through the ordinary path: the expunge log answers QRESYNC too.
    m.logout()
    logs = server.logs()
    assert "retention_expunged" in logs and "account=alice@example.com" in logs, logs[-3000:]


def test_nothing_before_its_time_and_dry_run(server):
    m = login_imaps(server)
    append(m, "Trash", "recent")
    append(m, "Junk", "recent spam")
    # 29 days on: nothing is due yet.
    out = run(server, offset_days=29).stdout
    assert "removed 0 messages in total" in out, out
    assert count(m, "Trash") == 1
    # 31 days on, dry: listed, not removed.
    out = run(server, "--dry-run", offset_days=31).stdout
    assert "alice@example.com\tTrash\ttrash\twould remove 1 (expunge)" in out, out
    assert "alice@example.com\tJunk\tjunk\twould remove 1 (expunge)" in out, out
    assert "would remove 2 messages in total" in out, out
    assert count(m, "Trash") == 1 and count(m, "Junk") == 1
    # Only bob: alice's mail stays.
    out = run(server, "bob@example.com", offset_days=31).stdout
    assert "removed 0 messages in total" in out, out
    assert count(m, "Trash") == 1
    out = run(server, "alice@example.com", offset_days=31).stdout
    assert "alice@example.com\tTrash\ttrash\tremoved 1 (expunge)" in out, out
    assert count(m, "Trash") == 0 and count(m, "Junk") == 0
    assert run(server, "nobody@example.com", check=False).returncode != 0
    m.logout()


def test_pop3_leave_a_copy_for_n_days(make_server):
    server = make_server(
        "[retention]\nenabled = false\npop3_expire_days = 14\n"
        '[retention.accounts."bob@example.com"]\npop3_expire_days = "never"\n'
    )
    deliver(server, 3)
    deliver(server, 1, to="bob@example.com")
    for user in (USER, "bob@example.com"):
        p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
        p.user(user)
        p.pass_(PASSWORD)
        p.retr(1)
        if user == USER:
            p.retr(2)
            p.top(3, 0)  # TOP is not a retrieval
        p.quit()  # leave the messages on the server
    # 13 days after the RETR: kept.
    out = run(server, offset_days=13).stdout
    assert "removed 0 messages in total" in out, out
    # 15 days after: the two retrieved messages go; the one never retrieved stays, and bob
    # (EXPIRE NEVER) keeps his.
    out = run(server, offset_days=15).stdout
    assert "alice@example.com\tINBOX\tpop3\tremoved 2 (expunge)" in out, out
    assert "removed 2 messages in total" in out, out
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    assert b"Subject: m2" in b"\r\n".join(p.retr(1)[1])
    p.quit()
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    p.user("bob@example.com")
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    p.quit()


def capa_lines(t: Transcript) -> list:
    assert t.cmd(b"CAPA\r\n").startswith(b"+OK")
    lines = []
    while True:
        line = t.line().rstrip(b"\r\n")
        if line == b".":
            return lines
        lines.append(line.decode())


def test_expire_in_capa_before_and_after_login(make_server):
    server = make_server(
        "[retention]\nenabled = false\npop3_expire_days = 14\n"
        '[retention.accounts."alice@example.com"]\npop3_expire_days = 7\n'
    )
    t = Transcript(server.connect("pop3"))
    assert t.line().startswith(b"+OK")
    before = capa_lines(t)
    # RFC 2449 §6.7: the shortest period, with USER since it varies per user.
    assert "EXPIRE 7 USER" in before, before
    assert t.cmd(b"USER bob@example.com\r\n").startswith(b"+OK")
    assert t.cmd(b"PASS " + PASSWORD.encode() + b"\r\n").startswith(b"+OK")
    after = capa_lines(t)
    assert "EXPIRE 14" in after, after
    # RFC 2449 §5: the AUTHORIZATION-state capabilities are announced in both states.
    assert "USER" in after and "SASL PLAIN LOGIN" in after, after
    assert not any(c.startswith("EXPIRE") and c.endswith("USER") for c in after)
    t.cmd(b"QUIT\r\n")

    t = Transcript(server.connect("pop3"))
    t.line()
    t.cmd(b"USER alice@example.com\r\n")
    t.cmd(b"PASS " + PASSWORD.encode() + b"\r\n")
    assert "EXPIRE 7" in capa_lines(t)
    t.cmd(b"QUIT\r\n")


def test_expire_never_by_default(server):
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    assert "EXPIRE" in p.capa() and p.capa()["EXPIRE"] == ["NEVER"]
    p.user(USER)
    p.pass_(PASSWORD)
    caps = p.capa()
    assert caps["EXPIRE"] == ["NEVER"] and "USER" in caps and "SASL" in caps, caps
    p.quit()


def test_fetch_savedate_and_search_saved(server):
    m = login_imaps(server)
    assert "SAVEDATE" in m.capabilities
    m.select("INBOX")
    append(m, "INBOX", "from 2020")
    today = datetime.now(timezone.utc)
    typ, data = m.fetch("1", "(SAVEDATE INTERNALDATE)")
    assert typ == "OK", data
    line = data[0].decode()
    # RFC 8514 §3: the save date is when it entered the mailbox; INTERNALDATE stays 2020.
    assert 'INTERNALDATE " 1-Jan-2020 10:00:00 +0000"' in line, line
    saved = re.search(r'SAVEDATE "\s?(\d{1,2})-(\w{3})-(\d{4}) ', line)
    assert saved, line
    assert (int(saved.group(1)), saved.group(2), int(saved.group(3))) == (
        today.day, today.strftime("%b"), today.year), line
    day = today.strftime("%d-%b-%Y")
    for key, expected in (
        (f"SAVEDSINCE {day}", b"1"),
        (f"SAVEDON {day}", b"1"),
        (f"SAVEDBEFORE {day}", b""),
        ("SAVEDATESUPPORTED", b"1"),
        (f"SINCE {day}", b""),
        ("SAVEDSINCE 1-Jan-2021", b"1"),
    ):
        typ, data = m.search(None, key)
        assert typ == "OK" and data[0].strip() == expected, (key, data)
    # A copy is saved anew: its save date is today too, not the original's.
    m.copy("1", "Archive")
    m.select("Archive")
    typ, data = m.uid("SEARCH", f"SAVEDSINCE {day}")
    assert data[0].strip() == b"1", data
    # A date is required (RFC 8514 §4): BAD.
    try:
        m.search(None, "SAVEDBEFORE")
        raise AssertionError("SAVEDBEFORE without a date was accepted")
    except imaplib.IMAP4.error as e:
        assert "BAD" in str(e) or "expected" in str(e).lower() or "date" in str(e).lower(), e
    m.logout()


def test_archive_moves_old_inbox_mail(make_server):
    server = make_server(
        "[retention]\nenabled = false\narchive_days = 10\n"
        '[retention.domains."example.com"]\ntrash_days = "never"\n'
    )
    deliver(server, 2)
    m = login_imaps(server)
    append(m, "Trash", "kept: never for this domain")
    out = run(server, offset_days=9).stdout
    assert "removed 0 messages in total" in out, out
    out = run(server, offset_days=11).stdout
    assert "alice@example.com\tINBOX\tarchive\tremoved 2 (move to Archive)" in out, out
    assert (count(m, "INBOX"), count(m, "Archive"), count(m, "Trash")) == (0, 2, 1)
    # Moved: saved anew in Archive, so not due again there (and Archive has no expiry).
    m.select("Archive")
    day = datetime.now(timezone.utc).strftime("%d-%b-%Y")
    typ, data = m.search(None, f"SAVEDON {day}")
    assert data[0].split() == [b"1", b"2"], data
    m.logout()


def test_a_pass_reaches_accounts_past_its_first_page(server, tmp_path):
    """A pass reads the accounts 500 at a time (in address order), so 100,000 accounts are
    never all in memory: with 600 accounts sorting before alice, her Trash (on the second
    page) is still seen."""
    users = tmp_path / "users"
    users.write_text("".join(f"a{i:04}@example.com:{{PLAIN}}pw-{i}:::::\n" for i in range(600)))
    server.cli("user", "import", str(users), "--format", "dovecot-passwd")
    m = login_imaps(server)
    append(m, "Trash", "old")
    out = run(server, "--dry-run", offset_days=31).stdout
    assert "alice@example.com\tTrash\ttrash\twould remove 1 (expunge)" in out, out
    out = run(server, offset_days=31).stdout
    assert "alice@example.com\tTrash\ttrash\tremoved 1 (expunge)" in out, out
    assert count(m, "Trash") == 0
    m.logout()

"""Bounded resources (issue 12): the process-wide budget for message data in flight, the
expunge log's pruning seen by a QRESYNC client, the keyword cap. See docs/limits.md."""

import imaplib
import time

from conftest import PASSWORD, Transcript

USER = "alice@example.com"
BUDGET = 2 * 1024 * 1024


def body(marker: bytes, size: int) -> bytes:
    """A message of about `size` bytes in CRLF lines, none starting with a dot."""
    line = b"x" * 74 + b"\r\n"
    head = b"Subject: " + marker + b"\r\n\r\n"
    return head + line * ((size - len(head)) // len(line))


def smtp_open(server) -> Transcript:
    t = Transcript(server.connect("smtp"))
    assert t.smtp_reply().startswith(b"220")
    assert t.cmd(b"EHLO client.test\r\n").startswith(b"250")
    return t


def smtp_begin(t: Transcript):
    assert t.cmd(b"MAIL FROM:<carol@sender.test>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<%s>\r\n" % USER.encode()).startswith(b"250")


def imap_login(server) -> Transcript:
    t = Transcript(server.connect("imap"))
    assert t.line().startswith(b"* OK")
    t.send(b"l LOGIN \"%s\" \"%s\"\r\n" % (USER.encode(), PASSWORD.encode()))
    while not (line := t.line()).startswith(b"l "):
        pass
    assert line.startswith(b"l OK"), line
    return t


def tagged(t: Transcript, tag: bytes) -> bytes:
    while not (line := t.line()).startswith(tag + b" "):
        assert not line.startswith(b"+"), line
    return line


def stored_messages(server) -> list[bytes]:
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    m.login(USER, PASSWORD)
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1:*", "(BODY.PEEK[])")
    assert typ == "OK"
    m.logout()
    return [part[1] for part in data if isinstance(part, tuple)]


def test_transfers_over_the_memory_budget_get_a_temporary_error(make_server):
    server = make_server(f"[limits]\ninflight_message_bytes = {BUDGET}\n")
    big = 900 * 1024
    a_msg, b_msg = body(b"first", big), body(b"second", big)
    # Two transfers under way hold about 1.8 MiB of the 2 MiB.
    a, b = smtp_open(server), smtp_open(server)
    for t, msg in ((a, a_msg), (b, b_msg)):
        smtp_begin(t)
        assert t.cmd(b"DATA\r\n").startswith(b"354")
        t.send(msg[: len(msg) - 100])
    # Let the server read them (it reads as bytes arrive; 2 s is ample on a loaded machine).
    time.sleep(2.0)

    # DATA over the budget: read to its end, then 452 4.3.1 (RFC 3463 §3.4).
    c = smtp_open(server)
    smtp_begin(c)
    assert c.cmd(b"DATA\r\n").startswith(b"354")
    c_msg = body(b"third", 600 * 1024)
    assert c.cmd(c_msg + b".\r\n").startswith(b"452 4.3.1")
    # BDAT: refused before the chunk is held; the chunk is still consumed.
    d = smtp_open(server)
    smtp_begin(d)
    assert d.cmd(b"BDAT %d LAST\r\n" % len(c_msg) + c_msg).startswith(b"452 4.3.1")
    assert d.cmd(b"NOOP\r\n").startswith(b"250")
    # IMAP, synchronising literal: NO [LIMIT] instead of "+", the literal is never sent.
    i = imap_login(server)
    i.send(b"a1 APPEND INBOX {%d}\r\n" % len(c_msg))
    assert tagged(i, b"a1").startswith(b"a1 NO [LIMIT]")
    # Non-synchronising literal: read and dropped, then NO [LIMIT]; the session goes on.
    i.send(b"a2 APPEND INBOX {%d+}\r\n" % len(c_msg) + c_msg + b"\r\n")
    assert tagged(i, b"a2").startswith(b"a2 NO [LIMIT]")
    i.send(b"a3 NOOP\r\n")
    assert tagged(i, b"a3").startswith(b"a3 OK")

    # The transfers under way end normally and are stored intact.
    for t, msg in ((a, a_msg), (b, b_msg)):
        assert t.cmd(msg[len(msg) - 100 :] + b".\r\n").startswith(b"250")
    # With the budget free again, the refused ones succeed.
    smtp_begin(c)
    assert c.cmd(b"DATA\r\n").startswith(b"354")
    assert c.cmd(c_msg + b".\r\n").startswith(b"250")
    i.send(b"a4 APPEND INBOX {%d}\r\n" % len(c_msg))
    assert i.line().startswith(b"+")
    i.send(c_msg + b"\r\n")
    assert tagged(i, b"a4").startswith(b"a4 OK")
    for t in (a, b, c, d):
        t.cmd(b"QUIT\r\n")
    i.send(b"z LOGOUT\r\n")

    stored = stored_messages(server)
    assert len(stored) == 4
    # SMTP prepends Received:; the message itself follows byte for byte.
    for msg, got in zip((a_msg, b_msg, c_msg, c_msg), stored):
        assert got.endswith(msg), (len(got), len(msg))
    assert stored[3] == c_msg


def test_a_dropped_transfer_gives_its_budget_back(make_server):
    server = make_server(f"[limits]\ninflight_message_bytes = {BUDGET}\n")
    big = body(b"big", 1800 * 1024)
    # Transfers that end by disconnecting in the middle of DATA, BDAT and an APPEND literal.
    for _ in range(3):
        t = smtp_open(server)
        smtp_begin(t)
        assert t.cmd(b"DATA\r\n").startswith(b"354")
        t.send(big[:-1000])
        t.sock.close()
        t = smtp_open(server)
        smtp_begin(t)
        t.send(b"BDAT %d\r\n" % len(big) + big[:-1000])
        t.sock.close()
        i = imap_login(server)
        # The server frees the SMTP transfers once it reads their end of stream.
        for attempt in range(20):
            i.send(b"a%d APPEND INBOX {%d}\r\n" % (attempt, len(big)))
            if (line := i.line()).startswith(b"+"):
                break
            assert line.startswith(b"a%d NO [LIMIT]" % attempt), line
            time.sleep(0.25)
        i.send(big[:-1000])
        i.sock.close()
    # Nothing leaked: a message of nearly the whole budget still goes through (once the server
    # has read the ends of the dropped connections).
    t = smtp_open(server)
    for _ in range(20):
        smtp_begin(t)
        assert t.cmd(b"DATA\r\n").startswith(b"354")
        reply = t.cmd(big + b".\r\n")
        if not reply.startswith(b"452 4.3.1"):
            break
        time.sleep(0.25)
    assert reply.startswith(b"250"), reply
    assert stored_messages(server)[0].endswith(big)


def deliver(server, n):
    import smtplib

    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        for i in range(n):
            s.sendmail("carol@sender.test", [USER], b"Subject: m%d\r\n\r\nbody\r\n" % i)


def imap(server) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    m.login(USER, PASSWORD)
    return m


def highest_modseq(m: imaplib.IMAP4) -> int:
    typ, data = m.status("INBOX", "(HIGHESTMODSEQ)")
    assert typ == "OK"
    return int(data[0].decode().split("HIGHESTMODSEQ ")[1].rstrip(")"))


def qresync_select(m: imaplib.IMAP4, uidvalidity: int, modseq: int, known: str):
    """SELECT with QRESYNC (RFC 7162 §3.2.5); returns (VANISHED data, FETCH data)."""
    assert m.enable("QRESYNC")[0] == "OK"
    typ, _ = m._simple_command("SELECT", "INBOX", f"(QRESYNC ({uidvalidity} {modseq} {known}))")
    assert typ == "OK"
    m.state = "SELECTED"
    return m.untagged_responses.pop("VANISHED", []), m.untagged_responses.pop("FETCH", [])


def test_a_client_behind_the_pruned_expunge_log_gets_a_full_resync(make_server):
    server = make_server(
        "[limits]\nexpunge_log_max_per_mailbox = 2\nexpunge_log_prune_interval_secs = 1\n"
    )
    deliver(server, 10)
    other = imap(server)
    other.select("INBOX")

    def expunge(uid):
        assert other.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
        assert other.expunge()[0] == "OK"

    # UID 1 goes before the offline client's last sync (it knows 1 is gone).
    expunge(1)
    typ, data = other.status("INBOX", "(UIDVALIDITY)")
    uidvalidity = int(data[0].decode().split("UIDVALIDITY ")[1].rstrip(")"))
    behind = highest_modseq(other)
    for uid in (2, 3):
        expunge(uid)
    covered = highest_modseq(other)
    for uid in (4, 5):
        expunge(uid)
    assert other.uid("STORE", "7", "+FLAGS.SILENT", "(\\Flagged)")[0] == "OK"
    # The log keeps the newest 2 rows (4 and 5): wait for the pruning pass.
    deadline = time.time() + 20
    while "pruned the expunge log" not in server.logs():
        assert time.time() < deadline, "the expunge log was never pruned"
        time.sleep(0.2)

    # Within the log: exactly what went since (RFC 7162 §3.2.5.1).
    m = imap(server)
    vanished, fetched = qresync_select(m, uidvalidity, covered, "1:10")
    assert vanished == [b"(EARLIER) 4:5"]
    assert any(b"UID 7 " in f and b"\\Flagged" in f for f in fetched), fetched
    m.logout()

    # Behind the log: every UID of its known set that is gone, 1 included although the client
    # saw it go (RFC 7162 §3.2.5.2 allows reporting more); its view ends right.
    m = imap(server)
    vanished, fetched = qresync_select(m, uidvalidity, behind, "1:10")
    assert vanished == [b"(EARLIER) 1:5"]
    assert any(b"UID 7 " in f and b"\\Flagged" in f for f in fetched), fetched
    client_view = set(range(1, 11)) - set(range(1, 6))
    typ, data = m.uid("SEARCH", "ALL")
    assert {int(u) for u in data[0].split()} == client_view
    # UID FETCH … (CHANGEDSINCE n VANISHED) says the same (RFC 7162 §3.2.10).
    typ, _ = m._simple_command("UID", "FETCH", "1:*", "(FLAGS)", f"(CHANGEDSINCE {behind} VANISHED)")
    assert typ == "OK"
    assert m.untagged_responses.pop("VANISHED", []) == [b"(EARLIER) 1:5"]
    m.logout()
    other.logout()


def test_keywords_per_mailbox_are_capped_and_the_flags_list_shrinks(make_server):
    server = make_server("[limits]\nimap_max_keywords_per_mailbox = 3\n")
    deliver(server, 2)
    m = imap(server)
    m.select("INBOX")
    assert m.store("1", "+FLAGS", "(a b)")[0] == "OK"
    assert m.store("2", "+FLAGS", "(B c)")[0] == "OK"
    # RFC 9051 §2.3.2: a fourth keyword is refused; existing ones may still be set.
    typ, data = m.store("1", "+FLAGS", "(d)")
    assert typ == "NO" and data[0].startswith(b"[LIMIT]"), data
    assert m.store("1", "+FLAGS", "(C \\Seen)")[0] == "OK"
    # A new session is told no new keyword can be created (PERMANENTFLAGS without \*).
    m2 = imap(server)
    m2.select("INBOX")
    perm = m2.untagged_responses["OK"]
    assert any(b"PERMANENTFLAGS" in p and b"\\*" not in p for p in perm), perm
    m2.logout()
    # Once a keyword is gone from every message, a new one fits.
    assert m.store("1:2", "-FLAGS", "(c)")[0] == "OK"
    assert m.store("1", "+FLAGS", "(d)")[0] == "OK"
    m.logout()


def test_the_sessions_keyword_list_shrinks_after_many_transient_keywords(make_server):
    server = make_server("[limits]\nimap_max_keywords_per_mailbox = 3\n")
    deliver(server, 1)
    m = imap(server)
    m.select("INBOX")
    # One keyword at a time, each removed again: the mailbox never holds more than one, but
    # the session announced 70 in FLAGS.
    for i in range(70):
        assert m.store("1", "+FLAGS", f"(k{i})")[0] == "OK"
        assert m.store("1", "-FLAGS", f"(k{i})")[0] == "OK"
    assert m.store("1", "+FLAGS", "(kept)")[0] == "OK"
    m.noop()
    last_flags = m.untagged_responses["FLAGS"][-1]
    # Rebuilt from the keywords in use when the list passed 64.
    assert last_flags.count(b"k") < 64, last_flags
    m.logout()

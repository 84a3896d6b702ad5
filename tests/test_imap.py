"""IMAP (RFC 9051, 3501, 2177 IDLE, 4315 UIDPLUS, 6851 MOVE, 6154 SPECIAL-USE, 7888 LITERAL+)
driven by Python's imaplib and raw transcripts, together with SMTP delivery and POP3."""

import base64
import imaplib
import os
import poplib
import re
import smtplib
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import pytest

from conftest import PASSWORD, Transcript, client_tls

USER = "alice@example.com"
SPECIAL_USE = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk", "Archive": "\\Archive"}


def deliver(server, n=1, to=USER, body=b"body line\r\n", start=0):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        for i in range(start, start + n):
            s.sendmail("carol@sender.test", [to], b"Subject: m%d\r\n\r\n" % i + body)


def login_imaps(server, user=USER) -> imaplib.IMAP4_SSL:
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=10)
    m.login(user, PASSWORD)
    return m


def simple(subject: str, body: str = "hello\r\n") -> bytes:
    return f"Subject: {subject}\r\nFrom: carol@sender.test\r\n\r\n{body}".encode()


def list_names(m) -> dict:
    """LIST "" * as {name: set of attributes}."""
    typ, data = m.list()
    assert typ == "OK"
    out = {}
    for line in data:
        match = re.match(rb'\(([^)]*)\) "/" "?([^"]*)"?$', line)
        assert match, line
        out[match.group(2).decode()] = set(match.group(1).decode().split())
    return out


def tagged_text(data) -> bytes:
    return b" ".join(x if isinstance(x, bytes) else str(x).encode() for x in data)


def fetch_one(m, seq: str, item: str) -> bytes:
    """The literal of a single-part FETCH answer (BODY[...] and the like)."""
    typ, data = m.fetch(seq, item)
    assert typ == "OK", data
    literals = [d[1] for d in data if isinstance(d, tuple)]
    assert len(literals) == 1, data
    return literals[0]


def fetch_flags(m, seq: str) -> set:
    typ, data = m.fetch(seq, "FLAGS")
    assert typ == "OK", data
    match = re.search(rb"FLAGS \(([^)]*)\)", data[0])
    assert match, data
    return set(match.group(1).decode().split())


class RawImap(Transcript):
    """A raw IMAP client for exact-syntax assertions."""

    def __init__(self, sock):
        super().__init__(sock)
        self.n = 0
        greeting = self.line()
        assert greeting.startswith(b"* OK"), greeting

    def cmd(self, text: bytes, tag: bytes = None):
        """Sends one command; returns (untagged lines, tagged line)."""
        if tag is None:
            self.n += 1
            tag = b"r%d" % self.n
        self.send(tag + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag: bytes):
        untagged = []
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                return untagged, line
            untagged.append(line)

    def login(self, user=USER):
        _, done = self.cmd(b'LOGIN "%s" "%s"' % (user.encode(), PASSWORD.encode()))
        assert done.split()[1] == b"OK", done


def raw_imaps(server) -> RawImap:
    return RawImap(server.connect("imaps"))


# --- login, TLS, LIST ---------------------------------------------------------------------------


def test_starttls_login_and_special_use_list(server):
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    assert "STARTTLS" in m.capabilities
    m.starttls(ssl_context=client_tls())
    assert "STARTTLS" not in m.capabilities  # RFC 9051 §6.2.1: capabilities re-issued after TLS
    typ, _ = m.login(USER, PASSWORD)
    assert typ == "OK"
    boxes = list_names(m)
    assert "INBOX" in boxes
    for name, attr in SPECIAL_USE.items():
        assert attr in boxes[name], (name, boxes[name])
    m.logout()

    m = login_imaps(server)
    assert set(list_names(m)) >= {"INBOX", *SPECIAL_USE}
    m.logout()


def test_bad_password_refused_then_login_works(server):
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        m.login(USER, "wrong password")
    assert m.login(USER, PASSWORD)[0] == "OK"
    m.logout()


# --- APPEND and FETCH of a MIME message -----------------------------------------------------------


def mime_message(attachment: bytes) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = "Quarterly report"
    msg["From"] = "Carol <carol@sender.test>"
    msg["To"] = USER
    msg.set_content("Plain text part.\nSecond line.\n")
    msg.add_alternative("<p>HTML part</p>\n", subtype="html")
    msg.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="data.bin")
    return msg.as_bytes(policy=SMTP_POLICY)


def part_body(raw: bytes, content_type: bytes) -> bytes:
    """The body of the leaf part with this Content-Type, exactly as RFC 9051 §6.4.5 BODY[n]
    returns it: after the part's blank line, up to the CRLF before the next boundary."""
    start = raw.index(b"Content-Type: " + content_type)
    body_start = raw.index(b"\r\n\r\n", start) + 4
    body_end = raw.index(b"\r\n--", body_start)
    return raw[body_start:body_end]


def test_append_multipart_and_fetch_parts(server):
    attachment = os.urandom(3000) + b"\x00\xff end"
    raw = mime_message(attachment)
    m = login_imaps(server)
    typ, data = m.append("INBOX", None, None, raw)
    assert typ == "OK"
    # RFC 4315 §3: APPENDUID uidvalidity uid
    appenduid = re.search(rb"\[APPENDUID (\d+) (\d+)\]", tagged_text(data))
    assert appenduid, data
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"1"]
    assert m.response("UIDVALIDITY")[1] == [appenduid.group(1)]

    typ, data = m.fetch("1", "(UID RFC822.SIZE BODYSTRUCTURE)")
    assert typ == "OK"
    meta = data[0] if isinstance(data[0], bytes) else b"".join(x for x in data[0] if isinstance(x, bytes))
    assert b"UID %s" % appenduid.group(2) in meta
    assert b"RFC822.SIZE %d" % len(raw) in meta
    bs = meta.upper()
    for needle in (b'"MIXED"', b'"ALTERNATIVE"', b'"TEXT" "PLAIN"', b'"TEXT" "HTML"',
                   b'"APPLICATION" "OCTET-STREAM"', b'"BASE64"', b'"DATA.BIN"'):
        assert needle in bs, (needle, meta)

    assert fetch_one(m, "1", "BODY.PEEK[]") == raw
    assert fetch_one(m, "1", "BODY.PEEK[]<0.10>") == raw[:10]
    assert fetch_one(m, "1", "BODY.PEEK[]<5.7>") == raw[5:12]
    assert fetch_one(m, "1", "BODY.PEEK[HEADER.FIELDS (Subject)]") == b"Subject: Quarterly report\r\n\r\n"
    header = fetch_one(m, "1", "BODY.PEEK[HEADER]")
    assert raw.startswith(header) and header.endswith(b"\r\n\r\n")
    assert fetch_one(m, "1", "BODY.PEEK[1.1]") == part_body(raw, b"text/plain")
    assert b"Plain text part.\r\nSecond line." in fetch_one(m, "1", "BODY.PEEK[1.1]")
    assert fetch_one(m, "1", "BODY.PEEK[1.2]") == part_body(raw, b"text/html")
    att = fetch_one(m, "1", "BODY.PEEK[2]")
    assert att == part_body(raw, b"application/octet-stream")
    assert base64.b64decode(att) == attachment
    mime2 = fetch_one(m, "1", "BODY.PEEK[2.MIME]")
    assert b"Content-Transfer-Encoding: base64" in mime2 and b"data.bin" in mime2
    # BODY[1] of a multipart/mixed whose first part is multipart: the whole alternative part.
    alt = fetch_one(m, "1", "BODY.PEEK[1]")
    assert part_body(raw, b"text/plain") in alt and part_body(raw, b"text/html") in alt
    m.logout()


def test_append_to_missing_mailbox_is_trycreate(server):
    m = login_imaps(server)
    typ, data = m.append("NoSuchBox", None, None, simple("x"))
    assert typ == "NO" and b"[TRYCREATE]" in tagged_text(data)
    m.logout()


# --- flags ----------------------------------------------------------------------------------------


def test_store_flags_and_seen_on_fetch(server):
    m = login_imaps(server)
    for i in range(2):
        m.append("INBOX", None, None, simple(f"s{i}"))
    m.select("INBOX")
    # RFC 3501 §2.3.2: the first session to select after the APPENDs sees them as \Recent.
    assert fetch_flags(m, "1") == {"\\Recent"}
    typ, data = m.store("1", "+FLAGS", r"(\Seen \Flagged)")
    assert typ == "OK" and b"\\Seen" in data[0] and b"\\Flagged" in data[0]
    assert fetch_flags(m, "1") == {"\\Seen", "\\Flagged", "\\Recent"}
    m.store("1", "-FLAGS", r"(\Seen)")
    assert fetch_flags(m, "1") == {"\\Flagged", "\\Recent"}
    m.store("1", "FLAGS", r"(\Answered $Label1)")
    assert fetch_flags(m, "1") == {"\\Answered", "$Label1", "\\Recent"}

    # RFC 9051 §6.4.5: BODY.PEEK does not set \Seen; BODY[] does.
    assert fetch_one(m, "2", "BODY.PEEK[]") == simple("s1")
    assert "\\Seen" not in fetch_flags(m, "2")
    assert fetch_one(m, "2", "BODY[TEXT]") == b"hello\r\n"
    assert "\\Seen" in fetch_flags(m, "2")
    m.logout()

    # Flags are stored, not per session; \Recent went to the first session only.
    m = login_imaps(server)
    m.select("INBOX", readonly=True)
    assert fetch_flags(m, "1") == {"\\Answered", "$Label1"}
    assert fetch_flags(m, "2") == {"\\Seen"}
    m.logout()


def test_examine_is_read_only(server):
    m = login_imaps(server)
    m.append("INBOX", None, None, simple("ro"))
    m.select("INBOX", readonly=True)
    fetch_one(m, "1", "BODY[]")
    assert "\\Seen" not in fetch_flags(m, "1")  # RFC 9051 §6.3.3: EXAMINE never changes state
    typ, _ = m._simple_command("STORE", "1", "+FLAGS", r"(\Flagged)")
    assert typ == "NO"
    m.logout()


# --- COPY, MOVE, EXPUNGE, mailboxes ---------------------------------------------------------------


def subjects(m) -> list:
    typ, data = m.fetch("1:*", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    assert typ == "OK"
    return [d[1].strip().decode() for d in data if isinstance(d, tuple)]


def test_copy_move_expunge_renumbering(server):
    m = login_imaps(server)
    for i in range(4):
        m.append("INBOX", None, None, simple(f"m{i}"))
    m.select("INBOX")
    assert subjects(m) == ["Subject: m0", "Subject: m1", "Subject: m2", "Subject: m3"]

    typ, data = m.copy("1", "Trash")
    copyuid = re.search(rb"\[COPYUID (\d+) (\d+) (\d+)\]", tagged_text(data))
    assert typ == "OK" and copyuid, data
    typ, data = m.status("Trash", "(MESSAGES UIDVALIDITY)")
    assert b"MESSAGES 1" in data[0] and b"UIDVALIDITY %s" % copyuid.group(1) in data[0]

    m.response("EXPUNGE")  # clear
    typ, data = m._simple_command("MOVE", "2", "Archive")
    assert typ == "OK"
    # RFC 6851 §4.3: COPYUID comes in an untagged OK before the EXPUNGE (or in the tagged OK).
    text = tagged_text(data) + b" ".join(m.untagged_responses.get("OK", []))
    assert re.search(rb"\[COPYUID \d+ 2 \d+\]", text), text
    assert m.response("EXPUNGE")[1] == [b"2"]
    assert subjects(m) == ["Subject: m0", "Subject: m2", "Subject: m3"]

    m.store("1", "+FLAGS", r"(\Deleted)")
    m.store("2", "+FLAGS", r"(\Deleted)")
    typ, data = m.expunge()
    # RFC 9051 §7.5.1: each EXPUNGE renumbers at once; sent highest first (so that a REMOVEFROM
    # before them, RFC 5267 §4.3.4, uses the same numbers), deleting 1 and 2 reads "2", "1".
    assert typ == "OK" and data == [b"2", b"1"], data
    assert subjects(m) == ["Subject: m3"]

    m.select("Archive")
    assert subjects(m) == ["Subject: m1"]
    m.select("Trash")
    assert subjects(m) == ["Subject: m0"]
    m.logout()


def test_uid_expunge_only_touches_given_uids(server):
    m = login_imaps(server)
    for i in range(3):
        m.append("INBOX", None, None, simple(f"u{i}"))
    m.select("INBOX")
    m.store("1:3", "+FLAGS", r"(\Deleted)")
    typ, data = m.uid("EXPUNGE", "2")
    assert typ == "OK"
    assert subjects(m) == ["Subject: u0", "Subject: u2"]
    m.logout()


def test_create_rename_delete_and_bad_names(server):
    m = login_imaps(server)
    assert m.create("a/b/c")[0] == "OK"
    boxes = list_names(m)
    assert {"a", "a/b", "a/b/c"} <= set(boxes)
    assert "\\HasChildren" in boxes["a/b"] and "\\HasNoChildren" in boxes["a/b/c"]
    assert m.create("a/b/c")[0] == "NO"  # RFC 9051 §6.3.4: already exists

    m.append("a/b/c", None, None, simple("nested"))
    assert m.rename("a/b/c", "Projects")[0] == "OK"
    boxes = list_names(m)
    assert "Projects" in boxes and "a/b/c" not in boxes
    m.select("Projects")
    assert subjects(m) == ["Subject: nested"]
    m.close()
    assert m.select("a/b/c")[0] == "NO"

    assert m.delete("Projects")[0] == "OK"
    assert "Projects" not in list_names(m)
    assert m.select("Projects")[0] == "NO"
    assert m.delete("INBOX")[0] == "NO"  # RFC 9051 §6.3.5
    typ, data = m.delete("a")  # RFC 9051 §6.3.5: inferiors a/b stay; refused
    assert typ == "NO" and b"[HASCHILDREN]" in data[0], data

    for bad in ("../x", "a/../../x", "a//b", "/abs"):
        typ, data = m.create(bad)
        assert typ in ("NO", "BAD"), (bad, data)
    assert not any(".." in name or name.startswith("/") for name in list_names(m))
    assert m.noop()[0] == "OK"
    m.logout()


def test_subscribe_and_lsub(server):
    m = login_imaps(server)
    m.create("Lists")
    assert m.subscribe("Lists")[0] == "OK"
    typ, data = m.lsub()
    assert typ == "OK" and any(b'"Lists"' in d or d.endswith(b" Lists") for d in data), data
    m.unsubscribe("Lists")
    typ, data = m.lsub()
    assert not any(b"Lists" in d for d in data if d), data
    m.logout()


# --- two devices ----------------------------------------------------------------------------------


def test_two_sessions_see_changes_at_noop(server):
    deliver(server, 2)
    a = login_imaps(server)
    a.select("INBOX")
    b = raw_imaps(server)
    b.login()
    untagged, done = b.cmd(b"SELECT INBOX")
    assert b"* 2 EXISTS\r\n" in untagged and b" OK " in done

    a.store("1", "+FLAGS", r"(\Flagged)")
    untagged, done = b.cmd(b"NOOP")
    assert b" OK" in done
    fetches = [u for u in untagged if re.match(rb"\* 1 FETCH \(.*FLAGS \(", u)]
    assert fetches and b"\\Flagged" in fetches[0], untagged

    a.store("2", "+FLAGS", r"(\Deleted)")
    a.expunge()
    untagged, _ = b.cmd(b"NOOP")
    assert b"* 2 EXPUNGE\r\n" in untagged, untagged

    deliver(server, 1, start=7)
    untagged, _ = b.cmd(b"NOOP")
    assert b"* 2 EXISTS\r\n" in untagged, untagged
    untagged, _ = b.cmd(b"FETCH 2 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"Subject: m7\r\n" in untagged, untagged
    a.logout()


def read_until(t: RawImap, pattern: bytes, limit=10) -> bytes:
    """Reads untagged lines until one matches (the server may send others first)."""
    seen = []
    for _ in range(limit):
        line = t.line()
        seen.append(line)
        if re.match(pattern, line):
            return line
    raise AssertionError(f"{pattern!r} not in {seen!r}")


def test_idle_receives_live_updates(server):
    deliver(server, 2)
    a = login_imaps(server)
    a.select("INBOX")
    b = raw_imaps(server)
    b.login()
    b.cmd(b"SELECT INBOX")
    b.sock.settimeout(5)
    b.send(b"i1 IDLE\r\n")
    assert b.line().startswith(b"+ ")

    a.store("1", "+FLAGS", r"(\Flagged)")
    line = read_until(b, rb"\* 1 FETCH ")
    assert b"\\Flagged" in line

    deliver(server, 1, start=5)
    read_until(b, rb"\* 3 EXISTS\r\n")

    a.noop()
    a.store("2", "+FLAGS", r"(\Deleted)")
    a.expunge()
    read_until(b, rb"\* 2 EXPUNGE\r\n")

    b.send(b"DONE\r\n")
    untagged, done = b.until(b"i1")
    assert done.startswith(b"i1 OK"), done
    untagged, done = b.cmd(b"NOOP")
    assert done.split()[1] == b"OK"
    a.logout()


def test_thunderbird_like_session(server):
    """Issue 3's acceptance sequence in one go, shaped like a desktop client's session: LIST,
    SELECT, FETCH the headers of 1:*, FETCH one body, STORE \\Seen, MOVE to Trash, with a second
    connection in IDLE on INBOX (Thunderbird keeps one per open folder) seeing every change."""
    deliver(server, 3, body=b"Thunderbird body\r\n")
    idle = raw_imaps(server)
    idle.login()
    untagged, done = idle.cmd(b"SELECT INBOX")
    assert b"* 3 EXISTS\r\n" in untagged and status_word(done) == b"OK", (untagged, done)
    idle.sock.settimeout(5)
    idle.send(b"i1 IDLE\r\n")
    assert idle.line().startswith(b"+ ")

    m = login_imaps(server)
    boxes = list_names(m)
    assert "INBOX" in boxes and "\\Trash" in boxes["Trash"], boxes
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"3"]
    typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])")
    assert typ == "OK", data
    parts = [d for d in data if isinstance(d, tuple)]
    assert [p[1] for p in parts] == [b"Subject: m%d\r\n\r\n" % i for i in range(3)], data
    uids = [re.search(rb"UID (\d+)", p[0]).group(1).decode() for p in parts]
    sizes = [int(re.search(rb"RFC822.SIZE (\d+)", p[0]).group(1)) for p in parts]
    assert all(b"FLAGS (\\Seen" not in p[0] for p in parts), parts

    # The reader opens the second message: BODY.PEEK, then an explicit STORE, as Thunderbird does.
    typ, data = m.uid("FETCH", uids[1], "BODY.PEEK[]")
    assert typ == "OK", data
    body = data[0][1]
    assert len(body) == sizes[1] and body.endswith(b"\r\n\r\nThunderbird body\r\n"), body
    assert "\\Seen" not in fetch_flags(m, "2")
    typ, data = m.uid("STORE", uids[1], "+FLAGS", r"(\Seen)")
    assert typ == "OK" and b"\\Seen" in data[0], data
    # RFC 2177 §3: the idling connection hears about the flag change at once.
    assert b"\\Seen" in read_until(idle, rb"\* 2 FETCH ")

    m.response("EXPUNGE")
    typ, data = m.uid("MOVE", uids[1], "Trash")
    assert typ == "OK", data
    assert m.response("EXPUNGE")[1] == [b"2"]  # RFC 6851 §3.3: the source message is expunged
    read_until(idle, rb"\* 2 EXPUNGE\r\n")
    deliver(server, 1, body=b"Thunderbird body\r\n", start=3)
    read_until(idle, rb"\* 3 EXISTS\r\n")
    idle.send(b"DONE\r\n")
    _, done = idle.until(b"i1")
    assert done.startswith(b"i1 OK"), done

    m.noop()
    assert subjects(m) == ["Subject: m0", "Subject: m2", "Subject: m3"]
    typ, data = m.select("Trash")
    assert typ == "OK" and data == [b"1"], data
    assert fetch_one(m, "1", "BODY.PEEK[]") == body
    assert "\\Seen" in fetch_flags(m, "1")  # MOVE keeps the flags (RFC 6851 §3.1)
    m.logout()


def test_idle_done_without_changes(server):
    b = raw_imaps(server)
    b.login()
    b.cmd(b"SELECT INBOX")
    b.sock.settimeout(5)
    b.send(b"i1 IDLE\r\n")
    assert b.line().startswith(b"+ ")
    b.send(b"DONE\r\n")
    assert b.line().startswith(b"i1 OK")


# --- SMTP, POP3 and IMAP on one INBOX -------------------------------------------------------------


def test_smtp_delivery_appears_unseen(server):
    m = login_imaps(server)
    typ, data = m.select("INBOX")
    assert data == [b"0"]
    deliver(server, 1, body=b"over smtp\r\n")
    m.noop()
    assert m.response("EXISTS")[1][-1] == b"1"
    assert "\\Seen" not in fetch_flags(m, "1")
    body = fetch_one(m, "1", "BODY.PEEK[TEXT]")
    assert body == b"over smtp\r\n"
    # The trace header added on delivery comes first; our Subject is in there.
    assert fetch_one(m, "1", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]") == b"Subject: m0\r\n\r\n"
    m.logout()


def test_pop3_and_imap_agree_and_pop3_delete_is_expunge(server):
    deliver(server, 3, body=b"first\r\n.dotted\r\nlast\r\n")
    m = login_imaps(server)
    typ, data = m.select("INBOX")
    assert data == [b"3"]
    imap_bodies = [fetch_one(m, str(i), "BODY.PEEK[]") for i in (1, 2, 3)]

    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls(), timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    count, size = p.stat()
    assert count == 3 and size == sum(len(b) for b in imap_bodies)
    for i in (1, 2, 3):
        lines = p.retr(i)[1]
        assert b"\r\n".join(lines) + b"\r\n" == imap_bodies[i - 1]
    p.dele(2)
    p.quit()

    m.response("EXPUNGE")
    typ, _ = m.noop()
    assert typ == "OK"
    assert m.response("EXPUNGE")[1] == [b"2"]
    assert subjects(m) == ["Subject: m0", "Subject: m2"]
    m.logout()

    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls(), timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 2
    p.quit()


# --- SEARCH ---------------------------------------------------------------------------------------


def test_search(server):
    m = login_imaps(server)
    for subject in ("apple pie", "banana", "apple tart"):
        m.append("INBOX", None, None, simple(subject))
    m.select("INBOX")
    m.store("2", "+FLAGS", r"(\Seen)")
    assert m.search(None, "ALL") == ("OK", [b"1 2 3"])
    assert m.search(None, "UNSEEN") == ("OK", [b"1 3"])
    assert m.search(None, "SEEN") == ("OK", [b"2"])
    assert m.search(None, "SUBJECT", "apple") == ("OK", [b"1 3"])
    assert m.search(None, "NOT", "SUBJECT", "apple") == ("OK", [b"2"])
    typ, data = m.uid("SEARCH", "SUBJECT", "banana")
    assert typ == "OK" and data == [b"2"]
    assert m.search(None, "BODY", "hello") == ("OK", [b"1 2 3"])
    m.logout()


# --- bad input ------------------------------------------------------------------------------------


def status_word(line: bytes) -> bytes:
    return line.split()[1]


def test_bad_input_gets_tagged_errors_and_session_continues(server):
    t = RawImap(server.connect("imap"))
    _, done = t.cmd(b"SELECT INBOX")
    assert status_word(done) == b"BAD", done  # wrong state: not authenticated
    _, done = t.cmd(b"NOOP")
    assert status_word(done) == b"OK"
    t.send(b"z1 LOGOUT\r\n")
    assert t.line().startswith(b"* BYE") and t.line().startswith(b"z1 OK")

    t = raw_imaps(server)
    t.login()
    t.cmd(b"SELECT INBOX")
    t.cmd(b'APPEND INBOX {%d+}\r\n' % len(simple("x")) + simple("x"))
    cases = [
        b"FETCH 1 (FLAGS",        # unbalanced parens
        b"FETCH 1 FLAGS)",
        b"FETCH 0 FLAGS",         # RFC 9051 §9: seq-number is nz-number
        b"FETCH 1:* (BOGUS)",
        b"STORE 1 +FLAGS (\\Seen",
        b'LIST "" (',
        b"FROBNICATE",
        b"LOGIN x y",             # wrong state: already authenticated
        b"",
    ]
    for case in cases:
        _, done = t.cmd(case) if case else t.cmd(b"", tag=b"empty")
        # RFC 9051 §7.1.3: syntax errors and commands in the wrong state are BAD.
        assert status_word(done) == b"BAD", (case, done)
        _, done = t.cmd(b"NOOP")
        assert status_word(done) == b"OK", (case, done)
    # RFC 3501 §9 (note on seq-number): a number beyond EXISTS is a BAD ...
    _, done = t.cmd(b"FETCH 99 FLAGS")
    assert status_word(done) == b"BAD", done
    # ... while a UID that does not exist is silently ignored (RFC 9051 §6.4.9).
    untagged, done = t.cmd(b"UID FETCH 99 FLAGS")
    assert status_word(done) == b"OK" and untagged == [], (untagged, done)
    _, done = t.cmd(b"FETCH 1 FLAGS")
    assert status_word(done) == b"OK"


def test_untagged_garbage_line(server):
    t = raw_imaps(server)
    t.send(b"(((\r\n")
    line = t.line()
    # No tag to answer with: RFC 9051 §7.1.3 untagged BAD.
    assert line.startswith(b"* BAD"), line
    _, done = t.cmd(b"NOOP")
    assert status_word(done) == b"OK"


def test_append_literal_over_default_limit_is_refused_before_the_bytes(server):
    t = raw_imaps(server)
    t.login()
    # Synchronising literal over the built-in limit: refused at once, no "+" (RFC 7889 §4).
    t.send(b"a1 APPEND INBOX {1073741824}\r\n")
    line = t.line()
    assert line.startswith(b"a1 NO [TOOBIG]"), line
    _, done = t.cmd(b"NOOP")
    assert status_word(done) == b"OK"
    untagged, done = t.cmd(b"STATUS INBOX (MESSAGES)")
    assert status_word(done) == b"OK" and any(b"(MESSAGES 0)" in u for u in untagged), untagged


def test_append_literal_over_configured_limit(make_server):
    server = make_server(extra_config="[limits]\nmax_message_size = 100000\n")
    t = raw_imaps(server)
    t.login()
    big = 1024 * 1024
    # Synchronising literal: refused before the client sends the bytes (no "+").
    t.send(b"a1 APPEND INBOX {%d}\r\n" % big)
    line = t.line()
    assert line.startswith(b"a1 NO [TOOBIG]"), line
    _, done = t.cmd(b"NOOP")
    assert status_word(done) == b"OK"
    # RFC 7888 §4: a non-synchronising literal over the limit: the bytes are already on the
    # way; the server refuses and skips them (or closes with BYE, also allowed).
    t.send(b"a2 APPEND INBOX {%d+}\r\n" % big + b"x" * big + b"\r\n")
    t.sock.settimeout(20)
    try:
        _, done = t.until(b"a2")
        assert status_word(done) == b"NO", done
        _, done = t.cmd(b"NOOP")
        assert status_word(done) == b"OK"
    except (EOFError, ConnectionError):
        pass
    m = login_imaps(server)
    typ, data = m.select("INBOX")
    assert data == [b"0"]
    # A literal under the limit still works.
    assert m.append("INBOX", None, None, simple("small", "y" * 50000 + "\r\n"))[0] == "OK"
    m.logout()


def test_condstore_enable_modseq_and_changedsince(server):
    """RFC 7162 CONDSTORE through imaplib against the real binary: ENABLE CONDSTORE,
    HIGHESTMODSEQ at SELECT, FETCH MODSEQ, STORE replies with MODSEQ, CHANGEDSINCE and
    UNCHANGEDSINCE; a session that never enables it sees no MODSEQ."""
    deliver(server, 3)
    m = login_imaps(server)
    assert "CONDSTORE" in m.capabilities
    typ, _ = m._simple_command("ENABLE", "CONDSTORE")
    assert typ == "OK"
    assert m.untagged_responses.pop("ENABLED") == [b"CONDSTORE"]
    typ, _ = m.select("INBOX")
    assert typ == "OK"
    highest = int(m.untagged_responses.pop("HIGHESTMODSEQ")[0])

    typ, data = m.fetch("1:*", "(MODSEQ)")
    assert typ == "OK"
    modseqs = [int(re.fullmatch(rb"\d+ \(MODSEQ \((\d+)\)\)", d).group(1)) for d in data]
    assert len(modseqs) == 3 and max(modseqs) == highest and modseqs == sorted(modseqs), data

    typ, data = m.store("2", "+FLAGS", r"(\Flagged)")
    assert typ == "OK"
    match = re.fullmatch(rb"2 \(MODSEQ \((\d+)\) FLAGS \((.*)\)\)", data[0])
    assert match and b"\\Flagged" in match.group(2), data
    changed = int(match.group(1))
    assert changed > highest

    # Only message 2 changed since the SELECT.
    typ, data = m.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {highest})")
    assert typ == "OK"
    assert len(data) == 1 and data[0].startswith(b"2 (UID 2 MODSEQ (%d) FLAGS (" % changed), data
    typ, data = m.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {changed})")
    assert typ == "OK" and data == [None], data

    # A stale UNCHANGEDSINCE: message 2 is refused and keeps its flags.
    # _simple_command returns the tagged text, where the MODIFIED code is (RFC 7162 §3.1.3).
    typ, data = m._simple_command("STORE", "1:3", f"(UNCHANGEDSINCE {highest})", "+FLAGS.SILENT", r"(\Seen)")
    assert typ == "OK" and data[0].startswith(b"[MODIFIED 2]"), data
    fetched = [re.fullmatch(rb"(\d) \(MODSEQ \((\d+)\)\)", d) for d in m.untagged_responses.pop("FETCH")]
    assert [x.group(1) for x in fetched] == [b"1", b"3"], fetched
    typ, data = m.fetch("2", "(FLAGS)")
    assert b"\\Seen" not in data[0], data

    plain = login_imaps(server)
    plain.select("INBOX")
    typ, data = plain.store("3", "+FLAGS", r"(\Answered)")
    assert typ == "OK" and b"MODSEQ" not in data[0], data
    plain.logout()
    m.logout()

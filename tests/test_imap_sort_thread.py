"""SORT and THREAD (RFC 5256), ESORT and CONTEXT=SEARCH updates (RFC 5267), PARTIAL (RFC 9394),
driven end to end by Python's imaplib (its sort() and thread()) against the real binary."""

import imaplib
import re

from conftest import PASSWORD, client_tls

USER = "alice@example.com"

# imaplib knows the commands it may send; CANCELUPDATE (RFC 5267 §4.3.5) is not among them.
imaplib.Commands.setdefault("CANCELUPDATE", ("SELECTED",))


def login(server) -> imaplib.IMAP4_SSL:
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=10)
    m.login(USER, PASSWORD)
    return m


def message(subject: str, date: str = None, msgid: str = None, refs: str = None, sender: str = "carol@sender.test") -> bytes:
    lines = [f"Subject: {subject}", f"From: {sender}"]
    if date:
        lines.append(f"Date: {date}")
    if msgid:
        lines.append(f"Message-ID: {msgid}")
    if refs:
        lines.append(f"References: {refs}")
    return ("\r\n".join(lines) + "\r\n\r\nbody\r\n").encode()


MESSAGES = [
    # 1: the start of a thread.
    message("Lunch", "Mon, 1 Jan 2024 10:00:00 +0000", "<1@x>", sender="Zoe <zoe@x.test>"),
    # 2: a reply to 1.
    message("Re: lunch", "Mon, 1 Jan 2024 11:00:00 +0000", "<2@x>", "<1@x>", sender="bob@x.test"),
    # 3: unrelated, the earliest.
    message("[news] Apples", "Mon, 1 Jan 2024 08:00:00 +0000", "<3@x>", sender="Alice <alice@x.test>"),
    # 4: a reply to 2 (References complete).
    message("Re: Re: Lunch", "Mon, 1 Jan 2024 12:00:00 +0100", "<4@x>", "<1@x> <2@x>", sender="Bob <BOB@x.test>"),
]


def test_sort_and_thread_with_imaplib(server):
    m = login(server)
    typ, caps = m.capability()
    caps = caps[0].split()
    for cap in (b"SORT", b"SORT=DISPLAY", b"THREAD=REFERENCES", b"THREAD=ORDEREDSUBJECT", b"ESORT", b"CONTEXT=SEARCH", b"CONTEXT=SORT", b"PARTIAL"):
        assert cap in caps, caps
    for i, raw in enumerate(MESSAGES):
        # INTERNALDATEs a day apart, in delivery order.
        m.append("INBOX", None, f'"0{i + 1}-Feb-2024 10:00:00 +0000"', raw)
    m.select("INBOX")

    # Base subjects: APPLES (3), LUNCH (1, 2, 4); sent dates 3, 1, 4 (11:00Z), 2 (11:00Z).
    assert m.sort("(SUBJECT)", "UTF-8", "ALL") == ("OK", [b"3 1 2 4"])
    assert m.sort("(DATE)", "UTF-8", "ALL") == ("OK", [b"3 1 2 4"])
    assert m.sort("(REVERSE DATE)", "UTF-8", "ALL") == ("OK", [b"2 4 1 3"])
    assert m.sort("(FROM)", "US-ASCII", "ALL") == ("OK", [b"3 2 4 1"])
    assert m.sort("(DISPLAYFROM)", "UTF-8", "ALL") == ("OK", [b"3 4 2 1"])
    assert m.sort("(SUBJECT REVERSE DATE)", "UTF-8", "NOT", "FROM", "zoe") == ("OK", [b"3 2 4"])
    typ, data = m.uid("SORT", "(REVERSE ARRIVAL)", "UTF-8", "ALL")
    assert (typ, data) == ("OK", [b"4 3 2 1"])

    # REFERENCES: 1 -> 2 -> 4; 3 alone and earlier. ORDEREDSUBJECT: by base subject.
    assert m.thread("REFERENCES", "UTF-8", "ALL") == ("OK", [b"(3)(1 2 4)"])
    assert m.thread("ORDEREDSUBJECT", "UTF-8", "ALL") == ("OK", [b"(3)(1 (2)(4))"])
    typ, data = m.uid("THREAD", "REFERENCES", "UTF-8", "SUBJECT", "lunch")
    assert (typ, data) == ("OK", [b"(1 2 4)"])

    # ESORT and PARTIAL answer with ESEARCH (RFC 5267 §3, RFC 9394).
    typ, data = m._simple_command("SORT", "RETURN", "(MIN MAX COUNT)", "(REVERSE DATE)", "UTF-8", "ALL")
    assert typ == "OK", data
    esearch = m.untagged_responses.pop("ESEARCH")
    assert re.fullmatch(rb'\(TAG "\w+"\) MIN 2 MAX 3 COUNT 4', esearch[0]), esearch
    typ, data = m._simple_command("SEARCH", "RETURN", "(PARTIAL -1:-2)", "ALL")
    assert typ == "OK", data
    esearch = m.untagged_responses.pop("ESEARCH")
    assert re.fullmatch(rb'\(TAG "\w+"\) PARTIAL \(-1:-2 3:4\)', esearch[0]), esearch

    # Bad syntax is BAD, the session goes on.
    try:
        m.sort("(NOSUCHKEY)", "UTF-8", "ALL")
        raise AssertionError("SORT with an unknown key was accepted")
    except imaplib.IMAP4.error as e:
        assert "BAD" in str(e) or "unknown sort key" in str(e), e
    assert m.noop()[0] == "OK"
    m.logout()


def test_search_context_sees_another_session(server):
    a = login(server)
    b = login(server)
    for raw in MESSAGES[:2]:
        a.append("INBOX", None, None, raw)
    a.select("INBOX")
    b.select("INBOX")
    typ, data = a._simple_command("UID", "SEARCH", "RETURN", "(UPDATE ALL)", "UNSEEN", "SUBJECT", "lunch")
    assert typ == "OK", data
    tag = re.match(rb'\(TAG "(\w+)"\)', a.untagged_responses.pop("ESEARCH")[0]).group(1)

    # Another session's APPEND and STORE reach this one at its next command.
    b.append("INBOX", None, None, MESSAGES[3])
    b.store("1", "+FLAGS", r"(\Seen)")
    assert a.noop()[0] == "OK"
    updates = a.untagged_responses.pop("ESEARCH")
    assert updates == [b'(TAG "%s") UID REMOVEFROM (0 1) ADDTO (0 3)' % tag], updates

    # An expunge elsewhere: REMOVEFROM, then the EXPUNGE.
    b.store("3", "+FLAGS", r"(\Deleted)")
    b.expunge()
    assert a.noop()[0] == "OK"
    assert a.untagged_responses.pop("ESEARCH") == [b'(TAG "%s") UID REMOVEFROM (0 3)' % tag]
    assert a.untagged_responses.pop("EXPUNGE") == [b"3"]

    typ, data = a._simple_command("CANCELUPDATE", '"%s"' % tag.decode())
    assert typ == "OK", data
    b.store("1", "-FLAGS", r"(\Seen)")
    assert a.noop()[0] == "OK"
    assert "ESEARCH" not in a.untagged_responses
    a.logout()
    b.logout()

"""IMAP CATENATE (RFC 4469) and URLAUTH (RFC 4467) end to end, with Python's imaplib (raw
commands through `_simple_command`, which imaplib has no methods for)."""

import imaplib
import re

from conftest import PASSWORD, client_tls

# imaplib refuses commands it does not know; these are valid in the authenticated and
# selected states (RFC 4467 §7).
for _name in ("GENURLAUTH", "URLFETCH", "RESETKEY"):
    imaplib.Commands.setdefault(_name, ("AUTH", "SELECTED"))

ALICE = "alice@example.com"
BOB = "bob@example.com"
ORIGINAL = (
    b"Subject: draft\r\nFrom: alice@example.com\r\n"
    b"Content-Type: multipart/mixed; boundary=xx\r\n\r\n"
    b"--xx\r\nContent-Type: text/plain\r\n\r\nold text\r\n"
    b"--xx\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAwQ=\r\n--xx--\r\n"
)


def login(server, user=ALICE) -> imaplib.IMAP4_SSL:
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=10)
    m.login(user, PASSWORD)
    return m


def run(m, name, *args):
    typ, data = m._simple_command(name, *args)
    return typ, data


def test_catenate_replaces_a_draft_part(server):
    m = login(server)
    typ, data = m.append("Drafts", None, None, ORIGINAL)
    assert typ == "OK", data
    uv = int(re.search(rb"APPENDUID (\d+) 1", data[0]).group(1))
    # RFC 4469 example 2: new text, the attachment taken over from the stored draft by URL.
    new_text = b"--xx\r\nContent-Type: text/plain\r\n\r\nnew text\r\n--xx\r\n"
    parts = (
        f'(URL "/Drafts;UIDVALIDITY={uv}/;UID=1/;SECTION=HEADER" '
        f"TEXT {{{len(new_text)}+}}\r\n".encode()
        + new_text
        + b' URL "/Drafts/;UID=1/;SECTION=2.MIME" URL "/Drafts/;UID=1/;SECTION=2"'
        + b" TEXT {10+}\r\n\r\n--xx--\r\n)"
    )
    typ, data = run(m, "APPEND", "Drafts", "(\\Seen)", "CATENATE", parts)
    assert typ == "OK", data
    assert re.match(rb"\[APPENDUID %d 2\]" % uv, data[0]), data
    m.select("Drafts")
    typ, data = m.fetch("2", "(FLAGS BODY.PEEK[])")
    assert typ == "OK", data
    assert data[0][1] == ORIGINAL.replace(b"old text", b"new text")
    assert b"\\Seen" in data[0][0]
    # The attachment is byte for byte the stored one.
    typ, data = m.fetch("2", "(BINARY.PEEK[2])")
    assert data[0][1] == b"\x00\x01\x02\x03\x04"
    # A URL naming nothing fails the whole APPEND with BADURL; nothing is stored.
    typ, data = run(m, "APPEND", "Drafts", "CATENATE", '(URL "/Drafts/;UID=1" URL "/Drafts/;UID=77")')
    assert typ == "NO" and data[0].startswith(b"[BADURL /Drafts/;UID=77]"), data
    typ, data = m.status("Drafts", "(MESSAGES)")
    assert b"MESSAGES 2" in data[0], data
    m.logout()


def test_urlauth_between_users_and_resetkey(server):
    alice = login(server)
    alice.append("INBOX", None, None, ORIGINAL)
    rump = f"imap://{ALICE}@mail.example.com/INBOX/;UID=1/;SECTION=1;URLAUTH=authuser"
    typ, data = run(alice, "GENURLAUTH", f'"{rump}"', "INTERNAL")
    assert typ == "OK", data
    typ, urls = alice._untagged_response(typ, data, "GENURLAUTH")
    url = urls[0].decode()
    assert re.fullmatch(re.escape(rump) + r":INTERNAL:01[0-9a-f]{64}", url), url

    # Bob, logged in on his own, fetches the part through the URL (RFC 4467 §7).
    bob = login(server, BOB)
    typ, data = run(bob, "URLFETCH", url)
    assert typ == "OK", data
    typ, fetched = bob._untagged_response(typ, data, "URLFETCH")
    assert fetched[0] == (f"{url} {{8}}".encode(), b"old text"), fetched
    # The decoded attachment, with RFC 5524's BINARY.
    typ, data = run(alice, "GENURLAUTH", f'"{rump.replace("SECTION=1", "SECTION=2")}"', "INTERNAL")
    typ, urls = alice._untagged_response(typ, data, "GENURLAUTH")
    att = urls[0].decode()
    typ, data = run(bob, "URLFETCH", f"({att} BINARY)")
    assert typ == "OK", data
    typ, fetched = bob._untagged_response(typ, data, "URLFETCH")
    assert fetched[0] == (f"{att} (BINARY ~{{5}}".encode(), b"\x00\x01\x02\x03\x04"), fetched
    # Bob cannot authorize URLs of Alice's mailboxes.
    try:
        run(bob, "GENURLAUTH", f'"{rump}"', "INTERNAL")
        raise AssertionError("GENURLAUTH of another user's mailbox succeeded")
    except imaplib.IMAP4.error as e:
        assert "another user" in str(e)

    # RESETKEY revokes every URL of the mailbox.
    typ, data = run(alice, "RESETKEY", "INBOX")
    assert typ == "OK" and data[0].startswith(b"[URLMECH INTERNAL]"), data
    typ, data = run(bob, "URLFETCH", url)
    assert typ == "OK", data
    typ, fetched = bob._untagged_response(typ, data, "URLFETCH")
    assert fetched[0] == f"{url} NIL".encode(), fetched
    bob.logout()
    alice.logout()

"""Hostile-input corpus, message level (docs/hostile-inputs.md): hostile MIME delivered over SMTP,
then read back over IMAP (BODYSTRUCTURE, ENVELOPE, deep sections, BINARY, SEARCH TEXT) and POP3
(RETR): 1,000-level nesting, 10,000 parts, malformed base64 and quoted-printable, NUL bytes,
invalid UTF-8 and bare CRs in headers. Every command gets a well-formed answer within the time
limit while the normal client is served (hostile_kit.Probe)."""

import re

import pytest

from hostile_kit import (
    deliver,
    guarded_fixture,
    hostile_server_fixture,
    imap_session,
    imap_tagged,
    pop3_session,
)

hostile = hostile_server_fixture()
guarded = guarded_fixture()


def deliver_and_select(hostile, message: bytes):
    """Delivers `message` to mime@ and returns an IMAP session with INBOX selected and the UID."""
    t = imap_session(hostile, "mime")
    t.sock.settimeout(120)
    t.send(b"s STATUS INBOX (UIDNEXT)\r\n")
    lines, done = imap_tagged(t, b"s")
    uid = int(re.search(rb"UIDNEXT (\d+)", b"".join(lines)).group(1))
    reply = deliver(hostile, "mime@example.com", message)
    assert reply.startswith(b"250 "), reply
    t.send(b"x SELECT INBOX\r\n")
    assert imap_tagged(t, b"x")[1].startswith(b"x OK")
    return t, uid


def command(t, line: bytes) -> tuple[list[bytes], bytes]:
    t.send(b"c " + line + b"\r\n")
    return imap_tagged(t, b"c")


def assert_well_formed(lines: list[bytes]):
    """Outside literals (read whole by imap_tagged), a response line is one line: no bare CR,
    LF or NUL inside (RFC 9051 §4: quoted strings hold no CR/LF; §4.3 no NUL in any string)."""
    literal_next = False
    for line in lines:
        if literal_next:
            literal_next = False
            continue
        body = line[:-2] if line.endswith(b"\r\n") else line
        assert b"\r" not in body and b"\n" not in body and b"\0" not in body, line[:300]
        literal_next = line.endswith(b"}\r\n") and b"{" in line


def fetch_ok(t, uid: int, items: bytes) -> list[bytes]:
    lines, done = command(t, b"UID FETCH %d %s" % (uid, items))
    assert done.startswith(b"c OK"), done
    assert_well_formed(lines)
    return lines


def literal_after(lines: list[bytes], marker: bytes) -> bytes:
    for i, line in enumerate(lines):
        if marker in line and line.endswith(b"}\r\n"):
            return lines[i + 1]
    raise AssertionError(f"no literal for {marker!r} in {[ln[:100] for ln in lines]}")


def search_finds(t, uid: int, key: bytes) -> bool:
    lines, done = command(t, b"UID SEARCH " + key)
    assert done.startswith(b"c OK"), done
    found = b"".join(ln for ln in lines if ln.startswith(b"* SEARCH")).split()[2:]
    return str(uid).encode() in found


def nested_multipart(depth: int, leaf: bytes) -> bytes:
    out = leaf
    for level in reversed(range(depth)):
        b = b"b%d" % level
        out = (b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n"
               + out + b"\r\n--" + b + b"--\r\n")
    return out


DEPTH = 1000


def test_thousand_levels_of_multipart(hostile):
    leaf = b"Content-Type: text/plain\r\n\r\nneedle-deep\r\n"
    message = b"Subject: deep multipart\r\n" + nested_multipart(DEPTH, leaf)
    t, uid = deliver_and_select(hostile, message)
    lines = fetch_ok(t, uid, b"(BODYSTRUCTURE ENVELOPE RFC822.SIZE)")
    assert b"MIXED" in lines[0].upper()
    # The leaf's section: DEPTH - 1 multiparts below the top one, so DEPTH ones.
    section = b".".join([b"1"] * DEPTH)
    lines, done = command(t, b"UID FETCH %d (BODY.PEEK[%s])" % (uid, section))
    # Either the part (the server follows the nesting) or a refusal (it caps the depth);
    # never a crash or a garbled response.
    assert done.startswith((b"c OK", b"c NO", b"c BAD")), done
    assert_well_formed(lines)
    if done.startswith(b"c OK"):
        assert literal_after(lines, b"BODY[") in (b"needle-deep\r\n", b"needle-deep", b""), lines
    assert search_finds(t, uid, b"TEXT needle-deep") in (True, False)
    assert search_finds(t, uid, b"SUBJECT \"deep multipart\"")
    # The whole message comes back byte for byte.
    # The whole message comes back byte for byte (after the trace fields the server added).
    assert literal_after(fetch_ok(t, uid, b"(BODY.PEEK[])"), b"BODY[]").endswith(message)


def test_thousand_levels_of_message_rfc822(hostile):
    inner = b"Subject: innermost\r\n\r\nneedle-rfc822\r\n"
    for level in range(DEPTH):
        inner = b"Subject: level %d\r\nContent-Type: message/rfc822\r\n\r\n" % level + inner
    t, uid = deliver_and_select(hostile, inner)
    fetch_ok(t, uid, b"(BODYSTRUCTURE ENVELOPE)")
    lines, done = command(t, b"UID FETCH %d (BODY.PEEK[%s])" % (uid, b".".join([b"1"] * 200)))
    assert done.startswith((b"c OK", b"c NO", b"c BAD")), done
    assert_well_formed(lines)
    assert search_finds(t, uid, b"TEXT needle-rfc822") in (True, False)


PARTS = 10_000


def test_ten_thousand_parts(hostile):
    parts = b"".join(b"--sep\r\nContent-Type: text/plain\r\n\r\npart-%d-marker\r\n" % i for i in range(PARTS))
    message = (b"Subject: many parts\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=sep\r\n\r\n" + parts + b"--sep--\r\n")
    t, uid = deliver_and_select(hostile, message)
    lines = fetch_ok(t, uid, b"(BODYSTRUCTURE)")
    structure = b"".join(lines)
    # The server parses at most 10,000 entities per message, the message itself included
    # (imap-server mime/tree.rs MAX_PARTS): 9,999 parts; the last one stays inside the
    # multipart's bytes, so a hostile message costs one bounded pass.
    shown = PARTS - 1
    assert structure.upper().count(b'"TEXT" "PLAIN"') == shown
    # RFC 9051 §6.4.5: parts are numbered from 1.
    assert literal_after(fetch_ok(t, uid, b"(BODY.PEEK[%d])" % shown), b"BODY[") == b"part-%d-marker" % (shown - 1)
    assert literal_after(fetch_ok(t, uid, b"(BODY.PEEK[1.MIME])"), b"BODY[") == b"Content-Type: text/plain\r\n\r\n"
    # A part past the last one: an empty string or NO, never a crash.
    for past in (PARTS, PARTS + 1):
        lines, done = command(t, b"UID FETCH %d (BODY.PEEK[%d])" % (uid, past))
        assert done.startswith((b"c OK", b"c NO")), done
        if done.startswith(b"c OK"):
            assert literal_after(lines, b"BODY[") == b"" or b'BODY[%d] ""' % past in b"".join(lines), lines
    assert search_finds(t, uid, b"TEXT part-%d-marker" % (PARTS - 1))
    assert not search_finds(t, uid, b"TEXT part-%d-marker" % PARTS)


MALFORMED = {
    "base64-garbage": (b"base64", b"!!!!not base64@@@ YWJj=\r\n====\r\nYW\r\n"),
    "base64-truncated": (b"base64", b"bmVlZGxlLWI2NA"),
    "base64-padding-inside": (b"base64", b"YQ==YQ==YQ==\r\n"),
    "qp-bad-escapes": (b"quoted-printable", b"needle=ZZ=\r\n=4\r\n=\r\n=3D=G1 end="),
    "qp-long-soft-breaks": (b"quoted-printable", b"=\r\n" * 10000 + b"needle-qp\r\n"),
    "unknown-cte": (b"x-uuencode-hostile", b"begin 644 x\r\nend\r\n"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_transfer_encodings(hostile, name):
    cte, body = MALFORMED[name]
    message = (b"Subject: " + name.encode() + b"\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + cte
               + b"\r\n\r\n" + body + b"\r\n--x--\r\n")
    t, uid = deliver_and_select(hostile, message)
    fetch_ok(t, uid, b"(BODYSTRUCTURE BODY.PEEK[1])")
    # RFC 3516 §4.2: BINARY decodes; a part it cannot decode gets NO (UNKNOWN-CTE for an
    # encoding it does not know, §4.3), or the server decodes what it can.
    lines, done = command(t, b"UID FETCH %d (BINARY.PEEK[1] BINARY.SIZE[1])" % uid)
    assert done.startswith((b"c OK", b"c NO")), done
    if cte == b"x-uuencode-hostile":
        assert done.startswith(b"c NO [UNKNOWN-CTE]"), done
    lines, done = command(t, b"UID SEARCH TEXT needle")
    assert done.startswith(b"c OK"), done


def test_nul_bytes_in_header_and_body(hostile):
    message = (b"Subject: nul\x00in subject\r\nX-Nul: \x00\x00\r\n\r\n"
               b"body with \x00 NUL\r\n\x00\x00\x00\r\nend\r\n")
    t, uid = deliver_and_select(hostile, message)
    lines = fetch_ok(t, uid, b"(ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    # RFC 9051 §4.3: a NUL cannot be sent in a literal; BINARY (literal8) carries it.
    lines, done = command(t, b"UID FETCH %d (BINARY.PEEK[])" % uid)
    assert done.startswith((b"c OK", b"c NO")), done
    if done.startswith(b"c OK"):
        assert literal_after(lines, b"BINARY[]").endswith(message)
    lines, done = command(t, b"UID FETCH %d (BODY.PEEK[])" % uid)
    assert done.startswith((b"c OK", b"c NO")), done
    assert_well_formed(lines)
    # POP3 carries bytes: RETR gives the message back as stored.
    p = pop3_session(hostile, "mime")
    p.send(b"LIST\r\n")
    assert p.line().startswith(b"+OK")
    count = 0
    while p.line() != b".\r\n":
        count += 1
    p.send(b"RETR %d\r\n" % count)
    assert p.line().startswith(b"+OK")
    got = b""
    while True:
        line = p.line()
        if line == b".\r\n":
            break
        got += line[1:] if line.startswith(b"..") else line
    assert got.endswith(message) and got.startswith(b"Return-Path: ")
    p.send(b"QUIT\r\n")


def test_invalid_utf8_and_bare_cr_in_headers(hostile):
    message = (b"Subject: \xff\xfe invalid \xc3\x28 utf8\r\n"
               b"From: \"\xc0\xaf\" <bad\xffaddr@example.net>\r\n"
               b"To: undisclosed\xff:;\r\nCc: =?utf-8?B?/w==?= <c@x.test>, \xed\xa0\x80@x.test\r\n"
               b"Message-ID: <\xff@x>\r\nIn-Reply-To: \r\n"
               b"Reply-To: a\rBcc: injected@evil.test\r\n"
               b"Date: \xff not a date\r\n"
               b"MIME-Version: 1.0\r\n"
               b"Content-Type: text/plain; charset=\"\xff\"; name=\"\xfe.txt\"\r\n"
               b"Content-Disposition: attachment; filename*=utf-8''%ff%fe\r\n\r\n"
               b"body \xff\r\n")
    t, uid = deliver_and_select(hostile, message)
    lines = fetch_ok(t, uid, b"(ENVELOPE BODYSTRUCTURE INTERNALDATE)")
    joined = b"".join(lines)
    assert b"injected@evil.test" not in joined.lower().replace(b"\r\n", b"") or b"\r" not in joined[:-2]
    for key in (b"SUBJECT invalid", b"FROM bad", b"CHARSET UTF-8 SUBJECT utf8", b"HEADER Reply-To a",
                b"TEXT body"):
        lines, done = command(t, b"UID SEARCH " + key)
        assert done.startswith((b"c OK", b"c NO", b"c BAD")), (key, done)
    for sort in (b"UID SORT (SUBJECT FROM DATE) UTF-8 ALL", b"UID THREAD REFERENCES UTF-8 ALL"):
        lines, done = command(t, sort)
        assert done.startswith(b"c OK"), (sort, done)


def test_one_megabyte_header_line_and_ten_thousand_headers(hostile):
    message = (b"Subject: " + b"S" * (1 << 20) + b"\r\n"
               + b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))
               + b"To: " + b", ".join(b"u%d@x.test" % i for i in range(5000)) + b"\r\n\r\nbody\r\n")
    t, uid = deliver_and_select(hostile, message)
    fetch_ok(t, uid, b"(ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (X-H9999)])")
    assert search_finds(t, uid, b"HEADER X-H9999 v")


@pytest.mark.parametrize("name", ["no-boundary", "never-closed", "empty-boundary", "boundary-in-body"])
def test_broken_multipart_framing(hostile, name):
    bodies = {
        "no-boundary": b"Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\npart\r\n--x--\r\n",
        "never-closed": b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\none\r\n--x\r\n\r\ntwo",
        "empty-boundary": b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\na\r\n----\r\n",
        "boundary-in-body": (b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n"
                             b"Content-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\n\r\nloop\r\n--x--\r\n"),
    }
    t, uid = deliver_and_select(hostile, b"Subject: " + name.encode() + b"\r\n" + bodies[name])
    fetch_ok(t, uid, b"(BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[1.1] BODY.PEEK[2.MIME])")

"""IMAP sections of a message forwarded as an attachment (RFC 9051 §6.4.5: a message/rfc822
part's own parts are numbered under it) and subscriptions that outlive their mailbox
(RFC 9051 §6.3.7, RFC 5258 §3.1), with Python's imaplib, smtplib and email package: the MIME is
built by Python's email package and the sections are checked against what Python's own
parser finds in the stored message."""

import email
import imaplib
import smtplib
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

from conftest import PASSWORD, client_tls

USER = "alice@example.com"


def login(server) -> imaplib.IMAP4_SSL:
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=10)
    m.login(USER, PASSWORD)
    return m


def section(m, item: str) -> bytes:
    typ, data = m.fetch("1", f"(BODY.PEEK[{item}])")
    assert typ == "OK", data
    literals = [d[1] for d in data if isinstance(d, tuple)]
    assert len(literals) == 1, data
    return literals[0]


def forwarded() -> bytes:
    inner = EmailMessage(policy=SMTP_POLICY)
    inner["From"] = "Bob <bob@example.net>"
    inner["To"] = "carol@example.org"
    inner["Subject"] = "Quarterly numbers"
    inner.set_content("Plain text of the original.\n")
    inner.add_alternative("<p>HTML of the original.</p>\n", subtype="html")
    inner.add_attachment(b"\x00\x01\x02binary", maintype="application", subtype="octet-stream",
                         filename="data.bin")
    outer = EmailMessage(policy=SMTP_POLICY)
    outer["From"] = "carol@example.org"
    outer["To"] = USER
    outer["Subject"] = "Fwd: Quarterly numbers"
    outer.set_content("See the forwarded message.\n")
    outer.add_attachment(inner)  # message/rfc822, as mail clients forward as attachment
    return outer.as_bytes()


def test_forwarded_message_sections(server):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        s.sendmail("carol@example.org", [USER], forwarded())
    m = login(server)
    assert m.select("INBOX")[0] == "OK"
    # The oracle: Python's parser over the bytes the server stored.
    stored = email.message_from_bytes(section(m, ""))
    text_part, attached = stored.get_payload()
    assert attached.get_content_type() == "message/rfc822"
    inner = attached.get_payload(0)
    alternative, attachment = inner.get_payload()
    plain, html = alternative.get_payload()

    # BODYSTRUCTURE describes the encapsulated message with its envelope and structure.
    typ, data = m.fetch("1", "(BODYSTRUCTURE)")
    bs = data[0].decode()
    assert typ == "OK" and '("MESSAGE" "RFC822"' in bs, bs
    assert '"Quarterly numbers" (("Bob" NIL "bob" "example.net"))' in bs, bs
    assert '"ALTERNATIVE"' in bs and '"MIXED"' in bs, bs

    header = section(m, "2.HEADER")
    assert header.endswith(b"\r\n\r\n")
    assert email.message_from_bytes(header)["Subject"] == "Quarterly numbers"
    assert section(m, "2.HEADER.FIELDS (FROM SUBJECT)") == (
        b"From: Bob <bob@example.net>\r\nSubject: Quarterly numbers\r\n\r\n"
    )
    assert section(m, "1").decode().rstrip("\r\n") == text_part.get_payload().rstrip("\r\n")
    # 2.1 is the inner multipart/alternative, 2.1.1 and 2.1.2 its parts, 2.2 the attachment.
    assert section(m, "2.1.1").decode().rstrip("\r\n") == plain.get_payload().rstrip("\r\n")
    assert section(m, "2.1.2").decode().rstrip("\r\n") == html.get_payload().rstrip("\r\n")
    assert b"Content-Type: text/html" in section(m, "2.1.2.MIME")
    assert section(m, "2.TEXT").startswith(b"--")
    typ, data = m.fetch("1", "(BINARY.PEEK[2.2])")
    assert typ == "OK" and data[0][1] == attachment.get_payload(decode=True) == b"\x00\x01\x02binary"
    # A part that is not there is empty, and the session goes on.
    assert section(m, "2.9") == b""
    assert m.noop()[0] == "OK"
    m.logout()


def test_subscriptions_outlive_deleted_mailboxes(server):
    m = login(server)
    assert m.create("Projects/Old")[0] == "OK"
    assert m.subscribe("Projects/Old")[0] == "OK"
    assert m.delete("Projects/Old")[0] == "OK"

    # Another session (another device) still sees the subscription, marked as gone.
    other = login(server)
    typ, data = other.lsub('""', "Projects/*")
    assert typ == "OK" and data == [b'(\\Noselect \\HasNoChildren) "/" "Projects/Old"'], data
    typ, data = other._simple_command("LIST", "(SUBSCRIBED)", '""', "Projects/*")
    lines = other._untagged_response(typ, data, "LIST")[1]
    assert lines == [b'(\\NonExistent \\HasNoChildren \\Subscribed) "/" "Projects/Old"'], lines
    # LSUB with % shows the unsubscribed parent as \Noselect (RFC 3501 §6.3.9).
    typ, data = other.lsub('""', "%")
    assert b'(\\Noselect \\HasNoChildren) "/" "Projects"' in data, data

    # Re-created under the same name, the mailbox is subscribed again.
    assert m.create("Projects/Old")[0] == "OK"
    typ, data = other.lsub('""', "Projects/*")
    assert data == [b'(\\HasNoChildren) "/" "Projects/Old"'], data
    # Dropped after the mailbox is gone.
    assert m.delete("Projects/Old")[0] == "OK"
    assert m.unsubscribe("Projects/Old")[0] == "OK"
    typ, data = other.lsub('""', "Projects/*")
    assert data == [None], data
    m.logout()
    other.logout()

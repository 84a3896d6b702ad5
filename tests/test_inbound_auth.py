"""Checks of arriving mail on the MX port (issue 9): SPF, DKIM, DMARC, ARC and iprev, the
Authentication-Results field (RFC 8601) and what a failure does, with DNS from a loopback server
the test starts (tests/dns_server.py) and messages signed by dkimpy, an independent signer."""

import base64
import imaplib
import re
import smtplib
import time

import pytest

from conftest import PASSWORD, Transcript
from dns_server import DnsServer, reverse_name
from test_outbound import inbox, make_b, published_txt, queue_config, submit, wait_for

dkim = pytest.importorskip("dkim", reason="pip install dkimpy pynacl (see .ci/run)")
nacl_signing = pytest.importorskip("nacl.signing")

HOST = "mail.example.com"  # every test server's hostname, hence our authserv-id


def ed25519_key():
    """(private key for dkimpy, DNS TXT record), RFC 8463."""
    sk = nacl_signing.SigningKey.generate()
    return base64.b64encode(bytes(sk)), "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(sk.verify_key)).decode()


def rsa_key():
    """(PEM private key, DNS TXT record) for ARC, which RFC 8617 §4.1.3 signs with RSA."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode()


@pytest.fixture
def dns():
    """The loopback DNS: our client's forward-confirmed reverse name (iprev) and HELO SPF."""
    server = DnsServer(
        {
            reverse_name("127.0.0.1"): [("PTR", "client.test.")],
            "client.test": [("A", "127.0.0.1"), ("TXT", "v=spf1 ip4:127.0.0.1 -all")],
        }
    ).start()
    yield server
    server.stop()


def publish_domain(dns, domain, spf="v=spf1 ip4:127.0.0.1 -all", dmarc="reject"):
    dns.add(domain, "TXT", spf)
    dns.add("_dmarc." + domain, "TXT", f"v=DMARC1; p={dmarc}")
    key, record = ed25519_key()
    dns.add(f"s1._domainkey.{domain}", "TXT", record)
    return key


def checked(make_server, dns, extra=""):
    timeouts = "" if "timeout" in extra else "dns_timeout_secs = 2\ncheck_timeout_secs = 5\n"
    return make_server(
        extra_config=f'[dns]\nnameservers = ["{dns.address}"]\n[inbound_auth]\n{timeouts}{extra}'
    )


def message(sender, subject="hello", body="Hi there.\r\n", extra_headers=""):
    return (
        f"{extra_headers}From: Sender <{sender}>\r\nTo: <alice@example.com>\r\nSubject: {subject}\r\n"
        f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <{subject}.{time.time()}@test>\r\n\r\n{body}"
    ).encode()


def sign(msg: bytes, domain: str, key: bytes) -> bytes:
    sig = dkim.sign(
        msg,
        b"s1",
        domain.encode(),
        key,
        signature_algorithm=b"ed25519-sha256",
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
    )
    return sig + msg


def send(server, mail_from, msg, helo="client.test"):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], local_hostname=helo, timeout=30) as s:
        s.sendmail(mail_from, ["alice@example.com"], msg)


def header_block(m: bytes) -> str:
    return m.split(b"\r\n\r\n", 1)[0].decode(errors="replace")


def auth_results(m: bytes) -> list[str]:
    """Every Authentication-Results field of the message, unfolded."""
    unfolded = re.sub(r"\r\n[ \t]+", " ", header_block(m))
    return [line.split(":", 1)[1].strip() for line in unfolded.split("\r\n") if line.lower().startswith("authentication-results:")]


def hosts_names(ip: str) -> set[str]:
    """The names /etc/hosts gives an address."""
    names = set()
    with open("/etc/hosts") as f:
        for line in f:
            fields = line.split("#", 1)[0].split()
            if fields and fields[0] == ip:
                names.update(fields[1:])
    return names


def parse_ar(value: str):
    """RFC 8601 §2.2: authserv-id, then `; method=result [reason=...] ptype.prop=value ...`.
    Returns (authserv-id, [(method, result, {prop: value})])."""
    parts = re.findall(r'(?:[^;"]|"(?:[^"\\]|\\.)*")+', value)
    authserv = parts[0].strip()
    results = []
    for part in parts[1:]:
        tokens = re.findall(r'[\w.-]+=(?:"(?:[^"\\]|\\.)*"|[^\s;]+)', part)
        method, result = tokens[0].split("=", 1)
        props = {}
        for t in tokens[1:]:
            k, v = t.split("=", 1)
            props[k] = v.strip('"')
        results.append((method, result, props))
    return authserv, results


def ours(m: bytes):
    """Our one Authentication-Results field, parsed."""
    fields = [parse_ar(v) for v in auth_results(m)]
    mine = [f for f in fields if f[0] == HOST]
    assert len(mine) == 1, header_block(m)
    return {(method, props.get("smtp.helo", "")): (result, props) for method, result, props in mine[0][1]}, mine[0][1]


def test_signed_message_passes_and_tampered_body_fails_dkim(make_server, dns):
    key = publish_domain(dns, "sender.test")
    server = checked(make_server, dns)
    signed = sign(message("a@sender.test", "signed"), "sender.test", key)
    send(server, "a@sender.test", signed)
    # The same signature over a changed body.
    send(server, "a@sender.test", signed.replace(b"Hi there.", b"Hi thera."))
    msgs = wait_for(server, "alice@example.com", 2)
    assert len(msgs) == 2, server.logs()
    by_method, raw = ours(msgs[0])
    assert by_method[("iprev", "")] == ("pass", {"policy.iprev": "127.0.0.1"})
    assert by_method[("spf", "client.test")][0] == "pass"
    spf = [r for r in raw if r[0] == "spf" and "smtp.mailfrom" in r[2]]
    assert spf == [("spf", "pass", {"smtp.mailfrom": "a@sender.test"})]
    result, props = by_method[("dkim", "")]
    assert result == "pass", raw
    assert props["header.d"] == "sender.test" and props["header.s"] == "s1"
    assert signed.decode().split("b=")[-1].replace("\r\n", "").replace(" ", "").startswith(props["header.b"])
    assert by_method[("arc", "")][0] == "none"
    assert by_method[("dmarc", "")] == ("pass", {"header.from": "sender.test", "policy.dmarc": "reject"})
    # Our field is above our Received: and below Return-Path:.
    head = header_block(msgs[0])
    assert head.index("Return-Path:") < head.index("Authentication-Results:") < head.index("Received:")
    # RFC 5321 §4.4 TCP-info: the client's forward-confirmed PTR name (iprev passed).
    received = re.search(r"Received: from \S+ \((\S+) \[127\.0\.0\.1\]\)", head)
    # The resolver answers loopback's PTR from /etc/hosts before DNS, as the system would.
    assert received and received.group(1) in {"client.test"} | hosts_names("127.0.0.1"), head

    by_method, raw = ours(msgs[1])
    result, props = by_method[("dkim", "")]
    assert result == "fail" and props["reason"] == "body hash did not verify", raw
    # SPF is aligned: DMARC still passes, so p=reject does not refuse it.
    assert by_method[("dmarc", "")][0] == "pass"


def test_dmarc_reject_is_refused_with_550(make_server, dns):
    dns.add("reject.test", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns.add("_dmarc.reject.test", "TXT", "v=DMARC1; p=reject")
    server = checked(make_server, dns)
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(server, "x@reject.test", message("x@reject.test", "forged"))
    assert e.value.smtp_code == 550
    assert e.value.smtp_error.startswith(b"5.7.1 ") and b"reject.test" in e.value.smtp_error
    # The same over BDAT (RFC 3030), in a raw transcript: the checks run on the last chunk.
    t = Transcript(server.connect("smtp"))
    assert t.smtp_reply().startswith(b"220")
    assert t.cmd(b"EHLO client.test\r\n").startswith(b"250")
    assert t.cmd(b"MAIL FROM:<x@reject.test>\r\n").startswith(b"250")
    assert t.cmd(b"RCPT TO:<alice@example.com>\r\n").startswith(b"250")
    content = message("x@reject.test", "forged-bdat")
    assert t.cmd(b"BDAT %d LAST\r\n" % len(content) + content) == (
        b"550 5.7.1 Rejected by the DMARC policy of reject.test\r\n"
    )
    assert t.cmd(b"QUIT\r\n").startswith(b"221")
    assert inbox(server, "alice@example.com") == []
    # Configurable: with the action "none" the same message is delivered, and says why.
    server2 = checked(make_server, dns, 'dmarc_reject = "none"\n')
    send(server2, "x@reject.test", message("x@reject.test", "forged"))
    msgs = wait_for(server2, "alice@example.com")
    by_method, raw = ours(msgs[0])
    assert by_method[("dmarc", "")] == ("fail", {"header.from": "reject.test", "policy.dmarc": "reject"}), raw
    assert [r[1] for r in raw if r[0] == "spf" and "smtp.mailfrom" in r[2]] == ["fail"]
    assert by_method[("dkim", "")][0] == "none"


def imap_mailbox(server, name):
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    try:
        m.login("alice@example.com", PASSWORD)
        typ, data = m.select(name)
        assert typ == "OK", data
        count = int(data[0])
        out = []
        for i in range(1, count + 1):
            typ, d = m.fetch(str(i), "(FLAGS BODY.PEEK[])")
            out.append((d[0][0], d[0][1]))
        return out
    finally:
        m.logout()


def test_dmarc_quarantine_lands_in_junk(make_server, dns):
    dns.add("quarantine.test", "TXT", "v=spf1 ip4:192.0.2.1 -all")
    dns.add("_dmarc.quarantine.test", "TXT", "v=DMARC1; p=quarantine")
    server = checked(make_server, dns)
    send(server, "x@quarantine.test", message("x@quarantine.test", "suspect"))
    deadline = time.time() + 10
    while not (junk := imap_mailbox(server, "Junk")) and time.time() < deadline:
        time.sleep(0.2)
    assert len(junk) == 1, server.logs()
    flags, body = junk[0]
    assert b"$Junk" in flags
    assert b"Subject: suspect" in body
    by_method, _ = ours(body)
    assert by_method[("dmarc", "")][0] == "fail"
    assert imap_mailbox(server, "INBOX") == []


def test_forged_authentication_results_are_removed(make_server, dns):
    key = publish_domain(dns, "sender.test")
    server = checked(make_server, dns)
    forged = (
        f"Authentication-Results: {HOST}; dkim=pass header.d=bank.example\r\n"
        f"Authentication-Results: {HOST.upper()};\r\n\tspf=pass smtp.mailfrom=x@bank.example\r\n"
        "Authentication-Results: relay.example; spf=pass smtp.mailfrom=a@sender.test\r\n"
    )
    msg = sign(message("a@sender.test", "forged-ar", extra_headers=forged), "sender.test", key)
    send(server, "a@sender.test", msg)
    msgs = wait_for(server, "alice@example.com")
    assert len(msgs) == 1
    fields = auth_results(msgs[0])
    assert len(fields) == 2, fields
    assert "bank.example" not in header_block(msgs[0])
    assert any(f.startswith("relay.example;") for f in fields)
    by_method, _ = ours(msgs[0])
    assert by_method[("dkim", "")][0] == "pass"


def test_arc_sealed_message_validates(make_server, dns):
    # p=none: the message broken in transit below fails DMARC (the list's MAIL FROM is not
    # aligned), which p=reject would refuse before we could look at its ARC result.
    try:
        import authres  # noqa: F401  (dkimpy ARC-seals only with it)
    except ImportError:
        raise AssertionError("pip install authres (see .ci/run)")
    key = publish_domain(dns, "sender.test", dmarc="none")
    arc_key, arc_record = rsa_key()
    dns.add("arc._domainkey.list.test", "TXT", arc_record)
    dns.add("list.test", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    server = checked(make_server, dns)
    original = sign(message("a@sender.test", "via-list"), "sender.test", key)
    # The intermediary (a mailing list) records what it saw and seals it (RFC 8617 §5.1).
    at_list = b"Authentication-Results: list.test; dkim=pass header.d=sender.test; spf=pass smtp.mailfrom=a@sender.test\r\n" + original
    seal = dkim.arc_sign(
        at_list, b"arc", b"list.test", arc_key, b"list.test", include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]
    )
    sealed = b"".join(seal) + at_list
    assert b"ARC-Seal:" in sealed
    send(server, "bounces@list.test", sealed)
    # Broken in transit after the seal: the ARC chain no longer validates.
    send(server, "bounces@list.test", sealed.replace(b"Hi there.", b"Hi thera."))
    msgs = wait_for(server, "alice@example.com", 2)
    assert len(msgs) == 2, server.logs()
    by_method, raw = ours(msgs[0])
    assert by_method[("arc", "")] == ("pass", {"smtp.remote-ip": "127.0.0.1"}), raw
    by_method, raw = ours(msgs[1])
    assert by_method[("arc", "")][0] == "fail", raw


def test_dns_failure_is_a_temporary_error(make_server, dns):
    """A DNS server that stops answering: DMARC cannot be decided, so 451, never a pass."""
    publish_domain(dns, "sender.test")
    server = checked(make_server, dns, "dns_timeout_secs = 1\ncheck_timeout_secs = 3\n")
    dns.stop()
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(server, "a@sender.test", message("a@sender.test", "no-dns"))
    assert e.value.smtp_code == 451 and e.value.smtp_error.startswith(b"4.4.3 "), e.value
    assert inbox(server, "alice@example.com") == []


def test_submission_is_not_checked(make_server, dns):
    server = checked(make_server, dns)
    submit(server, "bob@example.com", subject="internal")
    msgs = wait_for(server, "bob@example.com")
    assert len(msgs) == 1 and b"Subject: internal" in msgs[0]
    assert auth_results(msgs[0]) == []


def test_yubin_a_to_b_passes_spf_dkim_dmarc(make_server, dns):
    """Instance A signs with its DKIM key and sends over SMTP to B, which checks it against the
    records A's admin would publish."""
    b = make_b(make_server)
    b.stop()
    b.extra_config += f'\n[dns]\nnameservers = ["{dns.address}"]\n[inbound_auth]\ndns_timeout_secs = 2\n'
    b.write_config()
    b.start()
    a = make_server(extra_config=queue_config(b.ports["smtp"]))
    out = a.cli("dkim", "generate", "example.com", "--selector", "s1", "--algorithm", "ed25519").stdout
    dns.add("s1._domainkey.example.com", "TXT", published_txt(out, "s1._domainkey.example.com.").decode())
    dns.add("example.com", "TXT", "v=spf1 ip4:127.0.0.1 -all")
    dns.add("_dmarc.example.com", "TXT", "v=DMARC1; p=reject")
    dns.add(HOST, "A", "127.0.0.1")
    dns.add(HOST, "TXT", "v=spf1 a -all")
    submit(a, "carol@b.test", subject="a-to-b")
    msgs = wait_for(b, "carol@b.test")
    assert len(msgs) == 1, a.logs() + b.logs()
    by_method, raw = ours(msgs[0])
    assert [r[1] for r in raw if r[0] == "spf" and r[2].get("smtp.mailfrom") == "alice@example.com"] == ["pass"], raw
    assert by_method[("spf", HOST)][0] == "pass", raw
    assert by_method[("dkim", "")][0] == "pass" and by_method[("dkim", "")][1]["header.d"] == "example.com"
    assert by_method[("dmarc", "")] == ("pass", {"header.from": "example.com", "policy.dmarc": "reject"})

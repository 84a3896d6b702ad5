"""Client autoconfiguration over the real HTTPS and HTTP listeners: each format fetched with
curl or Python's http.client as the clients send it (Thunderbird, Outlook's Autodiscover v1 and
v2, the IETF PACC draft, Apple's profile), parsed with xml.etree / json / plistlib, and checked
entry by entry against the listeners the server was started with."""

import hashlib
import base64
import http.client
import json
import plistlib
import re
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import PASSWORD, Yubin, client_tls, free_port

HOST = "mail.example.com"
OUTLOOK_NS = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"


@pytest.fixture
def web():
    tmp = tempfile.TemporaryDirectory(prefix="yubin-test-")
    y = Yubin(Path(tmp.name) / "s0", extra_config="[limits]\nhttp_header_timeout_secs = 2\n")
    y.ports["https"] = free_port()
    y.ports["http"] = free_port()
    y.write_config()
    y.cli("domain", "add", "example.com")
    y.cli("domain", "add", "example.org")
    y.cli("user", "add", "alice@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    y.start()
    yield y
    y.stop()
    y.drop_database()
    tmp.cleanup()


def request(server, path, method="GET", host=None, body=None, headers=None, tls=True):
    """One request with http.client; returns (status, headers, body bytes)."""
    if tls:
        conn = http.client.HTTPSConnection("127.0.0.1", server.ports["https"], context=client_tls(), timeout=10)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", server.ports["http"], timeout=10)
    h = {"Host": host or HOST, **(headers or {})}
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def curl(server, host, path, *args, tls=True):
    """curl as a client would call it: the name resolved to the test server, SNI and Host set
    by curl itself. Returns (status, body)."""
    port = server.ports["https" if tls else "http"]
    scheme = "https" if tls else "http"
    res = subprocess.run(
        ["curl", "-sk", "--max-time", "10", "--resolve", f"{host}:{port}:127.0.0.1",
         "-w", "\n%{http_code}", *args, f"{scheme}://{host}:{port}{path}"],
        capture_output=True, timeout=30,
    )
    assert res.returncode == 0, res.stderr
    body, _, code = res.stdout.rpartition(b"\n")
    return int(code), body


def servers(doc, element, kind):
    return [
        {child.tag: child.text for child in s}
        for s in doc.iter(element)
        if s.get("type") == kind
    ]


def assert_thunderbird(server, body, domain, user):
    doc = ET.fromstring(body)
    assert doc.tag == "clientConfig" and doc.get("version") == "1.1"
    provider = doc.find("emailProvider")
    assert provider.get("id") == domain and provider.findtext("domain") == domain
    p = server.ports
    expected = {
        ("incomingServer", "imap"): [(p["imaps"], "SSL"), (p["imap"], "STARTTLS")],
        ("incomingServer", "pop3"): [(p["pop3s"], "SSL"), (p["pop3"], "STARTTLS")],
        ("outgoingServer", "smtp"): [(p["submissions"], "SSL"), (p["submission"], "STARTTLS")],
    }
    for (element, kind), ports in expected.items():
        got = servers(doc, element, kind)
        assert [(int(s["port"]), s["socketType"]) for s in got] == ports, body
        for s in got:
            assert s["hostname"] == HOST
            assert s["username"] == user
            assert s["authentication"] == "password-cleartext"


def test_thunderbird_with_the_address(web):
    code, body = curl(web, "autoconfig.example.com", "/mail/config-v1.1.xml?emailaddress=alice%40example.com")
    assert code == 200, body
    assert_thunderbird(web, body, "example.com", "alice@example.com")
    # The well-known path, over HTTPS with http.client; the address's domain wins over Host.
    status, headers, body = request(
        web, "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice@example.com", host="autoconfig.example.org")
    assert status == 200
    assert headers["content-type"].startswith("text/xml")
    assert_thunderbird(web, body, "example.com", "alice@example.com")


def test_thunderbird_without_the_address_is_served_with_the_placeholder(web):
    # Thunderbird for Android and Geary ask without ?emailaddress=: 200, not 400.
    for path in ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"):
        code, body = curl(web, "autoconfig.example.org", path)
        assert code == 200, body
        assert_thunderbird(web, body, "example.org", "%EMAILADDRESS%")
    # Thunderbird falls back to plain HTTP: the file is served there too.
    code, body = curl(web, "autoconfig.example.org", "/mail/config-v1.1.xml", tls=False)
    assert code == 200, body
    assert_thunderbird(web, body, "example.org", "%EMAILADDRESS%")
    # A bare host that is no domain of ours: the primary (first) domain.
    status, _, body = request(web, "/mail/config-v1.1.xml", host=HOST)
    assert status == 200
    assert_thunderbird(web, body, "example.com", "%EMAILADDRESS%")


OUTLOOK_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{address}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
"""


def protocols(body):
    doc = ET.fromstring(body)
    account = doc.find(f"{OUTLOOK_NS}Response/{OUTLOOK_NS}Account")
    assert account.findtext(f"{OUTLOOK_NS}Action") == "settings"
    return {
        p.findtext(f"{OUTLOOK_NS}Type"): {c.tag.replace(OUTLOOK_NS, ""): c.text for c in p}
        for p in account.findall(f"{OUTLOOK_NS}Protocol")
    }


@pytest.mark.parametrize("path", ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml",
                                  "/AUTODISCOVER/AUTODISCOVER.XML"])
def test_autodiscover_v1_post_as_outlook_sends_it(web, path):
    status, headers, body = request(
        web, path, method="POST", host="autodiscover.example.com",
        body=OUTLOOK_REQUEST.format(address="alice@example.com").encode(),
        headers={"Content-Type": "text/xml", "User-Agent": "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"})
    assert status == 200, body
    assert headers["content-type"].startswith("text/xml")
    p = protocols(body)
    assert sorted(p) == ["IMAP", "POP3", "SMTP"]
    for kind, listener in (("IMAP", "imaps"), ("POP3", "pop3s"), ("SMTP", "submissions")):
        assert p[kind]["Server"] == HOST
        assert int(p[kind]["Port"]) == web.ports[listener]
        assert p[kind]["LoginName"] == "alice@example.com"
        assert (p[kind]["SSL"], p[kind]["Encryption"]) == ("on", "SSL")
    # GET (some clients) with the address in the query.
    code, body = curl(web, "autodiscover.example.com", "/autodiscover/autodiscover.xml?email=alice@example.com")
    assert code == 200
    assert protocols(body)["IMAP"]["LoginName"] == "alice@example.com"


def test_autodiscover_v1_refuses_entities_and_strange_addresses(web):
    xxe = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           "<Autodiscover><Request><EMailAddress>&e;</EMailAddress></Request></Autodiscover>")
    status, _, _ = request(web, "/autodiscover/autodiscover.xml", method="POST", body=xxe.encode())
    assert status == 400
    status, _, _ = request(web, "/autodiscover/autodiscover.xml", method="POST",
                           body=OUTLOOK_REQUEST.format(address="&lt;script&gt;@example.com").encode())
    assert status == 400
    # An address with '&' is valid: it comes back escaped, and parses as the same address.
    status, _, body = request(web, "/autodiscover/autodiscover.xml", method="POST",
                              body=OUTLOOK_REQUEST.format(address="a&amp;b@example.com").encode())
    assert status == 200
    assert b"a&amp;b@example.com" in body
    assert protocols(body)["SMTP"]["LoginName"] == "a&b@example.com"
    # Unknown domain.
    status, _, _ = request(web, "/autodiscover/autodiscover.xml", method="POST",
                           body=OUTLOOK_REQUEST.format(address="x@other.test").encode())
    assert status == 404


def test_autodiscover_v2_points_at_v1(web):
    url = f"https://{HOST}:{web.ports['https']}/autodiscover/autodiscover.xml"
    for path in ("/autodiscover/autodiscover.json?Email=alice%40example.com&Protocol=AutodiscoverV1",
                 "/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=AutodiscoverV1",
                 "/Autodiscover/Autodiscover.json/v1.0/alice%40example.com?Protocol=autodiscoverv1"):
        code, body = curl(web, "autodiscover.example.com", path)
        assert code == 200, (path, body)
        assert json.loads(body) == {"Protocol": "AutodiscoverV1", "Url": url}
    code, body = curl(web, "autodiscover.example.com",
                      "/autodiscover/autodiscover.json?Email=alice@example.com&Protocol=ActiveSync")
    assert code == 400
    assert json.loads(body)["ErrorCode"] == "InvalidProtocol"
    code, _ = curl(web, "autodiscover.example.com",
                   "/autodiscover/autodiscover.json/v1.0/x@other.test?Protocol=AutodiscoverV1")
    assert code == 404
    code, _ = curl(web, "autodiscover.example.com",
                   "/autodiscover/autodiscover.json/v1.0/a%3Cb%3E@example.com?Protocol=AutodiscoverV1")
    assert code == 400


def test_pacc_document_matches_the_published_digest(web):
    code, body = curl(web, "ua-auto-config.example.com", "/.well-known/user-agent-configuration.json")
    assert code == 200, body
    doc = json.loads(body)
    assert doc["protocols"] == {"imap": {"host": HOST}, "pop3": {"host": HOST}, "smtp": {"host": HOST}}
    assert doc["authentication"] == {"password": True}
    assert doc["info"]["provider"]["name"] == "example.com"
    # `yubin dns-records` publishes the SHA-256 of exactly these bytes.
    records = web.cli("dns-records", "example.com").stdout
    m = re.search(r'^_ua-auto-config\.example\.com\.\s+3600 IN TXT\s+"v=UAAC1; a=sha256; d=([^"]+)"', records, re.M)
    assert m, records
    assert base64.b64decode(m.group(1)) == hashlib.sha256(body).digest()
    # Another domain: its own document.
    code, body = curl(web, "ua-auto-config.example.org", "/.well-known/user-agent-configuration.json")
    assert json.loads(body)["info"]["provider"]["name"] == "example.org"
    code, _ = curl(web, "ua-auto-config.other.test", "/.well-known/user-agent-configuration.json")
    assert code == 404


def test_apple_profile(web):
    status, headers, body = request(web, "/apple/mobileconfig?email=alice@example.com")
    assert status == 200, body
    assert headers["content-type"] == "application/x-apple-aspen-config"
    assert headers["content-disposition"] == 'attachment; filename="example.com.mobileconfig"'
    # The first start's certificate is self-signed: the profile is not signed (a device could
    # not verify it), a plain property list (test_profile_signing.py has the signed one).
    assert body.startswith(b"<?xml")
    profile = plistlib.loads(body)
    assert profile["PayloadType"] == "Configuration"
    [mail] = profile["PayloadContent"]
    assert mail["PayloadType"] == "com.apple.mail.managed"
    assert mail["EmailAccountType"] == "EmailTypeIMAP"
    assert mail["EmailAddress"] == "alice@example.com"
    assert (mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"]) == (HOST, web.ports["imaps"])
    assert mail["IncomingMailServerUseSSL"] is True
    assert mail["IncomingMailServerUsername"] == "alice@example.com"
    assert (mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"]) == (HOST, web.ports["submissions"])
    assert mail["OutgoingMailServerUseSSL"] is True
    assert mail["OutgoingMailServerUsername"] == "alice@example.com"
    # Downloaded again: the same identifiers (it replaces the installed profile); another
    # user's differ.
    again = plistlib.loads(request(web, "/apple/mobileconfig?email=alice@example.com")[2])
    assert (again["PayloadUUID"], again["PayloadIdentifier"]) == (profile["PayloadUUID"], profile["PayloadIdentifier"])
    assert again["PayloadContent"][0]["PayloadUUID"] == mail["PayloadUUID"]
    bob = plistlib.loads(request(web, "/apple/mobileconfig?email=bob@example.com")[2])
    assert bob["PayloadUUID"] != profile["PayloadUUID"]
    # Escaped, not broken out of.
    status, _, body = request(web, "/apple/mobileconfig?email=" + "a%26b%2Bc@example.com")
    assert status == 200
    assert plistlib.loads(body)["PayloadContent"][0]["EmailAddress"] == "a&b+c@example.com"
    for bad in ("", "?email=", "?email=%3Cx%3E@example.com", "?email=no-at-sign"):
        assert request(web, "/apple/mobileconfig" + bad)[0] == 400, bad
    assert request(web, "/apple/mobileconfig?email=x@other.test")[0] == 404


def test_unknown_domains_and_hostile_addresses(web):
    assert curl(web, "autoconfig.other.test", "/mail/config-v1.1.xml")[0] == 404
    assert curl(web, "autoconfig.example.com", "/mail/config-v1.1.xml?emailaddress=x@other.test")[0] == 404
    for hostile in ("%22a%3Cb%22@example.com", "a%3E@example.com", "a%0d%0aX:y@example.com", "@example.com"):
        code, body = curl(web, "autoconfig.example.com", "/mail/config-v1.1.xml?emailaddress=" + hostile)
        assert code == 400, (hostile, body)
    # Quotes and ampersands are legal in an address: escaped, and the XML still parses.
    code, body = curl(web, "autoconfig.example.com", "/mail/config-v1.1.xml?emailaddress=%22a%26b%22@example.com")
    assert code == 200
    user = {s.findtext("username") for s in ET.fromstring(body).iter("incomingServer")}
    assert user == {'"a&b"@example.com'}


def test_plain_http_redirects_everything_else_to_https(web):
    https = web.ports["https"]
    for path, host, target in (
        ("/", "mail.example.com", f"https://mail.example.com:{https}/"),
        ("/autodiscover/autodiscover.xml", "autodiscover.example.com",
         f"https://autodiscover.example.com:{https}/autodiscover/autodiscover.xml"),
        ("/apple/mobileconfig?email=alice@example.com", "mail.example.com",
         f"https://mail.example.com:{https}/apple/mobileconfig?email=alice@example.com"),
        ("/x", "127.0.0.1", f"https://{HOST}:{https}/x"),
    ):
        status, headers, _ = request(web, path, host=host, tls=False)
        assert status == 301, path
        assert headers["location"] == target
    # And over HTTPS, an unknown path is simply not found, a wrong method not allowed.
    assert request(web, "/nothing-here")[0] == 404
    status, headers, _ = request(web, "/mail/config-v1.1.xml", method="PUT", body=b"x")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_request_limits(web):
    # Body over http_max_body_bytes (64 KiB): 413, with Content-Length and chunked (curl
    # reads the answer even though the server stops reading the upload).
    big = Path(web.dir) / "big.xml"
    big.write_bytes(b"<Autodiscover>" + b" " * (100 * 1024) + b"</Autodiscover>")
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        code, _ = curl(web, "autodiscover.example.com", "/autodiscover/autodiscover.xml",
                       "--data-binary", f"@{big}", "-H", "Content-Type: text/xml", *extra)
        assert code == 413, extra
    # Refused from Content-Length alone, before the body is sent (beyond what is worth
    # draining).
    raw = client_tls().wrap_socket(socket.create_connection(("127.0.0.1", web.ports["https"]), timeout=10))
    with raw:
        raw.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: mail.example.com\r\n"
                    b"Content-Length: 10000000\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 413")
    # Headers over http_max_header_bytes (16 KiB): 431 (RFC 6585 §5).
    assert request(web, "/mail/config-v1.1.xml", headers={"X-Big": "a" * 18000})[0] == 431
    # Garbage is a 400, and the server stays up.
    with socket.create_connection(("127.0.0.1", web.ports["http"]), timeout=10) as s:
        s.sendall(b"\x16\x03\x01 not http\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    assert request(web, "/mail/config-v1.1.xml")[0] == 200


def test_a_slow_client_is_closed_at_the_header_timeout(web):
    with socket.create_connection(("127.0.0.1", web.ports["http"]), timeout=15) as s:
        start = time.monotonic()
        s.sendall(b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.example.com\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - start
    # http_header_timeout_secs = 2 in this file's config; never a complete answer.
    assert 1.5 <= elapsed < 8, elapsed
    assert not data.startswith(b"HTTP/1.1 200"), data
    # A complete request on a fresh connection is still answered.
    assert request(web, "/mail/config-v1.1.xml", tls=False)[0] == 200


def test_web_listeners_share_the_connection_limits():
    # Loopback is trusted (exempt) by default: trust nobody, allow two connections per address.
    tmp = tempfile.TemporaryDirectory(prefix="yubin-test-")
    y = Yubin(Path(tmp.name) / "s0",
              extra_config="[limits]\ntrusted_networks = []\nmax_connections_per_ip = 2\n")
    y.ports = {"http": free_port(), "https": free_port(), **{n: None for n in y.ports}}
    y.write_config()
    y.cli("domain", "add", "example.com")
    try:
        y.start()
        time.sleep(0.2)  # the start-up probes' slots are given back
        held = [socket.create_connection(("127.0.0.1", y.ports["http"]), timeout=10) for _ in range(2)]
        with socket.create_connection(("127.0.0.1", y.ports["http"]), timeout=10) as third:
            reply = third.recv(1000)
        assert reply.startswith(b"HTTP/1.1 429 Too Many Requests\r\n"), reply
        for s in held:
            s.close()
        time.sleep(0.2)
        assert request(y, "/mail/config-v1.1.xml", tls=False)[0] == 200
    finally:
        y.stop()
        y.drop_database()
        tmp.cleanup()

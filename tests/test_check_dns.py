"""`yubin check-dns DOMAIN` against a DNS server on loopback serving what `yubin dns-records`
printed (plus the host's address and PTR): with everything published it reports no problem;
with records removed or changed it reports exactly those."""

import re

import pytest

from conftest import free_port
from dns_server import DnsServer

HOST_RECORDS = """
mail.example.com.      3600 IN A   192.0.2.25
25.2.0.192.in-addr.arpa. 3600 IN PTR mail.example.com.
"""


def published(server) -> str:
    """The zone: dns-records' output with the commented lines left out, and the host's
    address and reverse record."""
    return server.cli("dns-records", "example.com").stdout + HOST_RECORDS


def check(server, zone_text: str):
    dns = DnsServer.from_zone(zone_text).start()
    try:
        server.extra_config += f'\n[dns]\nnameservers = ["127.0.0.1:{dns.port}"]\n'
        server.write_config()
        res = server.cli("check-dns", "example.com", check=False)
    finally:
        dns.stop()
    problems = {}
    for line in res.stdout.splitlines():
        m = re.match(r"^(MISSING|WRONG|FAILED)\s+(\S+ \S+)", line)
        if m:
            problems[m.group(2)] = m.group(1)
    return res, problems


def without(zone_text: str, *prefixes: str) -> str:
    return "\n".join(l for l in zone_text.splitlines() if not l.startswith(prefixes)) + "\n"


@pytest.fixture
def mx(make_server):
    # check-dns reads the store and the configuration only. The host's address is from
    # TEST-NET-1 (RFC 5737), which no hosts file answers for.
    s = make_server()
    s.cli("dkim", "generate", "example.com", "--selector", "k1")
    return s


def test_everything_published_is_reported_ok(mx):
    res, problems = check(mx, published(mx))
    assert problems == {}, res.stdout
    assert res.returncode == 0
    assert "all records are in place" in res.stdout
    assert "ok      PTR 192.0.2.25" in res.stdout


def test_reports_exactly_the_records_removed_or_wrong(mx):
    zone = without(published(mx), "_dmarc.example.com.", "_imaps._tcp.example.com.", "autoconfig.example.com.")
    zone = zone.replace("25.2.0.192.in-addr.arpa. 3600 IN PTR mail.example.com.",
                        "25.2.0.192.in-addr.arpa. 3600 IN PTR host-25.isp.example.net.")
    # A second SPF record makes SPF a PermError (RFC 7208 §3.2).
    zone += 'example.com. 3600 IN TXT "v=spf1 -all"\n'
    res, problems = check(mx, zone)
    assert res.returncode == 1
    assert problems == {
        "TXT _dmarc.example.com.": "MISSING",
        "SRV _imaps._tcp.example.com.": "MISSING",
        "CNAME autoconfig.example.com.": "MISSING",
        "PTR 192.0.2.25": "WRONG",
        "TXT example.com.": "WRONG",
    }, res.stdout


def test_a_stale_dkim_record_is_wrong(mx):
    zone = re.sub(r'(k1\._domainkey\.example\.com\.\s+3600 IN TXT\s+)".*"',
                  r'\1"v=DKIM1; k=ed25519; p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="', published(mx))
    res, problems = check(mx, zone)
    assert problems == {"TXT k1._domainkey.example.com.": "WRONG"}, res.stdout


def test_with_https_the_autoconfiguration_records_are_checked(mx):
    # An HTTPS listener adds Outlook's SRV record and the PACC name and digest.
    mx.ports["https"] = free_port()
    mx.write_config()
    zone = published(mx)
    assert "_ua-auto-config.example.com." in zone
    base_config = mx.extra_config
    res, problems = check(mx, zone)
    assert problems == {}, res.stdout
    mx.extra_config = base_config  # check() adds a [dns] table each time
    assert "ok      SRV _autodiscover._tcp.example.com." in res.stdout
    stale = re.sub(r'(_ua-auto-config\.example\.com\.\s+3600 IN TXT\s+)".*"',
                   r'\1"v=UAAC1; a=sha256; d=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="', zone)
    res, problems = check(mx, without(stale, "_autodiscover._tcp.example.com."))
    assert res.returncode == 1
    assert problems == {
        "SRV _autodiscover._tcp.example.com.": "MISSING",
        "TXT _ua-auto-config.example.com.": "WRONG",
    }, res.stdout

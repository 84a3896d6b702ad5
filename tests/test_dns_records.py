"""`yubin dns-records DOMAIN`: the zone-file snippet parses as a zone (dnspython) and holds
the records the configuration and the stored DKIM keys call for."""

import re

import dns.rdatatype
import dns.zone

from conftest import free_port


def zone_of(text: str) -> dns.zone.Zone:
    # The snippet has no SOA: it is pasted into an existing zone.
    return dns.zone.from_text(text, origin="example.com.", check_origin=False, relativize=False)


def rdatas(zone, name, kind):
    node = zone.get_node(name)
    assert node is not None, f"no records at {name}"
    rs = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(kind))
    assert rs is not None, f"no {kind} at {name}"
    return list(rs)


def txt(rdata) -> str:
    return b"".join(rdata.strings).decode()


def test_records_parse_and_match_the_keys_and_listeners(server):
    server.cli("dkim", "generate", "example.com", "--selector", "ed1")
    server.cli("dkim", "generate", "example.com", "--selector", "rsa1", "--algorithm", "rsa")
    listing = server.cli("dkim", "list", "example.com").stdout
    text = server.cli("dns-records", "example.com").stdout
    z = zone_of(text)

    [mx] = rdatas(z, "example.com.", "MX")
    assert (mx.preference, mx.exchange.to_text()) == (10, "mail.example.com.")
    assert [txt(r) for r in rdatas(z, "example.com.", "TXT")] == ["v=spf1 mx ~all"]
    # Every stored key, exactly as `yubin dkim list` shows its record (the RSA one is split
    # into 255-octet strings, RFC 1035 §3.3.14, and joined again here).
    for selector in ("ed1", "rsa1"):
        [r] = rdatas(z, f"{selector}._domainkey.example.com.", "TXT")
        record = txt(r)
        assert record.startswith("v=DKIM1; k=")
        flat = listing.replace('" "', "")
        assert record in flat, f"{selector}: {record} not in\n{listing}"
    [dmarc] = rdatas(z, "_dmarc.example.com.", "TXT")
    assert txt(dmarc) == "v=DMARC1; p=quarantine; rua=mailto:postmaster@example.com"
    [tlsrpt] = rdatas(z, "_smtp._tls.example.com.", "TXT")
    assert txt(tlsrpt).startswith("v=TLSRPTv1; rua=mailto:")
    # RFC 6186 / RFC 8314 §5.1: implicit-TLS services on the configured ports, plain-text ones
    # "not available".
    for service, listener in (("_submissions", "submissions"), ("_imaps", "imaps"), ("_pop3s", "pop3s")):
        [srv] = rdatas(z, f"{service}._tcp.example.com.", "SRV")
        assert (srv.port, srv.target.to_text()) == (server.ports[listener], "mail.example.com.")
    for service in ("_submission", "_imap", "_pop3"):
        [srv] = rdatas(z, f"{service}._tcp.example.com.", "SRV")
        assert srv.target.to_text() == "."
    for name in ("autoconfig.example.com.", "autodiscover.example.com."):
        [c] = rdatas(z, name, "CNAME")
        assert c.target.to_text() == "mail.example.com."


def test_unknown_domain_is_refused(server):
    res = server.cli("dns-records", "other.test", check=False)
    assert res.returncode != 0
    assert "not a domain of this server" in res.stderr


def test_with_https_the_autoconfiguration_records(server):
    # Without a web listener: the CNAMEs (above), but no SRV for Outlook and no PACC digest.
    z = zone_of(server.cli("dns-records", "example.com").stdout)
    assert z.get_node("_autodiscover._tcp.example.com.") is None
    assert z.get_node("_ua-auto-config.example.com.") is None
    server.ports["https"] = free_port()
    server.write_config()
    z = zone_of(server.cli("dns-records", "example.com").stdout)
    # [MS-OXDISCO]: Outlook's SRV record names the HTTPS port on the mail host.
    [srv] = rdatas(z, "_autodiscover._tcp.example.com.", "SRV")
    assert (srv.priority, srv.weight, srv.port, srv.target.to_text()) == (
        0, 0, server.ports["https"], "mail.example.com.")
    [c] = rdatas(z, "ua-auto-config.example.com.", "CNAME")
    assert c.target.to_text() == "mail.example.com."
    [digest] = rdatas(z, "_ua-auto-config.example.com.", "TXT")
    assert re.fullmatch(r"v=UAAC1; a=sha256; d=[A-Za-z0-9+/]{43}=", txt(digest)), txt(digest)

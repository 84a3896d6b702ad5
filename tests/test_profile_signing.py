"""Signed Apple configuration profiles: with a certificate issued by a CA (here a test CA, as
`[tls] cert`/`key`), `/apple/mobileconfig` is a CMS SignedData (RFC 5652 §5) over the property
list, signed by the served certificate's key, which OpenSSL verifies against that CA; with
the self-signed certificate of a first start it stays a plain property list (see
test_autoconfig.py::test_apple_profile)."""

import http.client
import plistlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from certs import CertAuthority, pem
from conftest import Yubin, client_tls, free_port

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (apt-get install openssl)")


def issue(dirpath: Path, kind: str) -> Path:
    """A CA (ECDSA) and a server certificate for mail.example.com with a key of `kind`;
    writes ca.pem, cert.pem (leaf + CA) and key.pem. Returns the CA's path."""
    ca = CertAuthority("yubin profile-signing test CA")
    leaf, key = ca.issue("mail.example.com", dns=["mail.example.com"], kind=kind)
    (dirpath / "cert.pem").write_bytes(pem(leaf) + pem(ca.cert))
    (dirpath / "key.pem").write_bytes(pem(key))
    return ca.write(dirpath / "ca.pem")


def fetch_profile(y: Yubin) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", y.ports["https"], context=client_tls(), timeout=10)
    conn.request("GET", "/apple/mobileconfig?email=alice@example.com", headers={"Host": "mail.example.com"})
    r = conn.getresponse()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    conn.close()
    return out


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_profile_is_signed_with_a_ca_issued_certificate(kind):
    with tempfile.TemporaryDirectory(prefix="yubin-test-") as tmp:
        tmp = Path(tmp)
        ca = issue(tmp, kind)
        y = Yubin(tmp / "s0", extra_config=f'[tls]\ncert = "{tmp / "cert.pem"}"\nkey = "{tmp / "key.pem"}"\n')
        y.ports["https"] = free_port()
        y.write_config()
        y.cli("domain", "add", "example.com")
        y.start()
        try:
            status, headers, body = fetch_profile(y)
        finally:
            y.stop()
            y.drop_database()
        assert status == 200
        assert headers["content-type"] == "application/x-apple-aspen-config"
        # DER: a SEQUENCE, not a property list.
        assert body[:1] == b"\x30" and b"<?xml" not in body[:64]
        (tmp / "profile.der").write_bytes(body)

        def openssl(*args):
            return subprocess.run([OPENSSL, "cms", "-verify", "-inform", "DER", "-in", str(tmp / "profile.der"),
                                   "-purpose", "any", *args], capture_output=True)

        # Verified against the CA: the signature, the chain and the message digest.
        ok = openssl("-CAfile", str(ca), "-out", str(tmp / "content.plist"))
        assert ok.returncode == 0, ok.stderr.decode()
        assert b"Verification successful" in ok.stderr
        profile = plistlib.loads((tmp / "content.plist").read_bytes())
        [mail] = profile["PayloadContent"]
        assert mail["PayloadType"] == "com.apple.mail.managed"
        assert mail["EmailAddress"] == "alice@example.com"
        # The signer is the served certificate (the leaf), and the chain is included.
        certs = subprocess.run([OPENSSL, "cms", "-cmsout", "-inform", "DER", "-in", str(tmp / "profile.der"),
                                "-print"], capture_output=True, text=True)
        assert certs.returncode == 0, certs.stderr
        assert "mail.example.com" in certs.stdout and "yubin profile-signing test CA" in certs.stdout
        # Against another CA it does not verify.
        (tmp / "other").mkdir()
        other = issue(tmp / "other", kind)
        bad = openssl("-CAfile", str(other))
        assert bad.returncode != 0
        # A changed byte of the content breaks the message digest.
        der = bytearray(body)
        i = der.find(b"alice@example.com")
        der[i] ^= 0x20
        (tmp / "profile.der").write_bytes(bytes(der))
        tampered = openssl("-CAfile", str(ca))
        assert tampered.returncode != 0

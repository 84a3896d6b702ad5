"""`yubin user import` / `export`: a Dovecot passwd-file of 1,000 users whose hashes were written
by Dovecot's own `doveadm pw` (SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2ID, PBKDF2,
SSHA512) and by passlib (pbkdf2_sha256), imported with --create-domains; then logins over
IMAP, POP3 and SMTP with the original passwords, the rehash to argon2id observed in the
store after a login, SCRAM-SHA-256 offered only after that first login, and an export imported
into a second server where the same passwords work."""

import imaplib
import poplib
import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Transcript, Yubin, client_tls
from test_submission import scram_exchange

DOVEADM = shutil.which("doveadm")
pytestmark = pytest.mark.skipif(DOVEADM is None, reason="doveadm is not installed (apt-get install dovecot-core)")

SCHEMES = ["SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "ARGON2ID", "PBKDF2", "SSHA512"]
USERS = 1000


def hashes() -> dict[str, tuple[str, str]]:
    """scheme -> (password, hash) from doveadm pw (and passlib when installed)."""
    out = {}
    for s in SCHEMES:
        pw = f"pass {s.lower()} 1"
        h = subprocess.run([DOVEADM, "pw", "-s", s, "-p", pw], capture_output=True, text=True, check=True)
        out[s] = (pw, h.stdout.strip())
    try:
        from passlib.hash import pbkdf2_sha256

        out["passlib-pbkdf2"] = ("passlib pw", pbkdf2_sha256.hash("passlib pw"))
    except ImportError:
        pass
    return out


def user(i: int) -> str:
    return f"u{i:04d}@import{i % 3}.example"


def stored_hash(y: Yubin, address: str) -> str:
    for line in y.cli("user", "export").stdout.splitlines():
        a, h = line.split(":", 2)[:2]
        if a == address:
            return h
    raise AssertionError(f"{address} not exported")


def test_passwd_file_import_then_logins_rehash_and_scram():
    h = hashes()
    kinds = list(h)
    with tempfile.TemporaryDirectory(prefix="yubin-test-") as tmp:
        tmp = Path(tmp)
        lines = ["# exported from dovecot"]
        for i in range(USERS):
            lines.append(f"{user(i)}:{h[kinds[i % len(kinds)]][1]}:1000:1000::/home/x::")
        passwd = tmp / "users"
        passwd.write_text("\n".join(lines) + "\n")
        y = Yubin(tmp / "s0")
        y.write_config()
        # Without --create-domains every line is refused (no domain yet) and the exit status says so.
        res = y.cli("user", "import", str(passwd), check=False)
        assert res.returncode != 0 and "1000 line(s) refused" in res.stdout, res.stdout + res.stderr
        t0 = time.monotonic()
        res = y.cli("user", "import", str(passwd), "--create-domains")
        took = time.monotonic() - t0
        assert f"imported {USERS} account(s)" in res.stdout and "3 domain(s) added" in res.stdout, res.stdout
        assert took < 60, took
        # A second run adds nothing.
        res = y.cli("user", "import", str(passwd), "--create-domains")
        assert "imported 0 account(s)" in res.stdout and f"{USERS} already existed" in res.stdout
        assert len(y.cli("user", "list").stdout.split()) == USERS
        y.start()
        try:
            for k, kind in enumerate(kinds):
                address, (pw, original) = user(k), h[kind]
                assert stored_hash(y, address).endswith(original.split("}", 1)[-1]), kind
                # SCRAM cannot work before the first login: no credentials can come from a hash.
                t = Transcript(y.connect("submissions"))
                t.smtp_reply()
                t.cmd(b"EHLO c\r\n")
                assert scram_exchange(t, address, pw).startswith(b"535"), kind
                t.sock.close()
                m = imaplib.IMAP4_SSL("127.0.0.1", y.ports["imaps"], ssl_context=client_tls(), timeout=30)
                with pytest.raises(imaplib.IMAP4.error):
                    m.login(address, pw + "x")
                m.logout()
                m = imaplib.IMAP4_SSL("127.0.0.1", y.ports["imaps"], ssl_context=client_tls(), timeout=30)
                assert m.login(address, pw)[0] == "OK", kind
                m.logout()
                # The first login replaced the hash with argon2id (in the background).
                deadline = time.time() + 20
                while not stored_hash(y, address).startswith("{ARGON2ID}$argon2id$"):
                    assert time.time() < deadline, (kind, stored_hash(y, address))
                    time.sleep(0.2)
                # The same password still works everywhere, now against argon2id, and SCRAM too.
                p = poplib.POP3_SSL("127.0.0.1", y.ports["pop3s"], context=client_tls(), timeout=30)
                p.user(address)
                assert p.pass_(pw).startswith(b"+OK")
                p.quit()
                with smtplib.SMTP_SSL("127.0.0.1", y.ports["submissions"], context=client_tls(), timeout=30) as s:
                    s.login(address, pw)
                t = Transcript(y.connect("submissions"))
                t.smtp_reply()
                t.cmd(b"EHLO c\r\n")
                assert scram_exchange(t, address, pw).startswith(b"235"), kind
                t.sock.close()
            # A user of each kind who has not logged in keeps the imported hash; one logs in
            # over POP3 first (the rehash follows any protocol).
            for k, kind in enumerate(kinds):
                address = user(len(kinds) + k)
                assert not stored_hash(y, address).startswith("{ARGON2ID}$argon2id$v=19$m=19456"), kind
            # Export, then import into a second server: the same passwords work there.
            export = tmp / "export.csv"
            y.cli("user", "export", "--format", "csv", "--output", str(export))
            assert oct(export.stat().st_mode & 0o777) == "0o600"
            assert export.read_text().startswith("address,password_hash\n")
        finally:
            y.stop()
        z = Yubin(tmp / "s1")
        z.write_config()
        res = z.cli("user", "import", str(export), "--create-domains")
        assert f"imported {USERS} account(s)" in res.stdout
        z.start()
        try:
            for k, kind in enumerate(kinds):
                # One rehashed on the first server, one still in its imported scheme.
                for i in (k, len(kinds) + k):
                    p = poplib.POP3_SSL("127.0.0.1", z.ports["pop3s"], context=client_tls(), timeout=30)
                    p.user(user(i))
                    assert p.pass_(h[kind][0]).startswith(b"+OK"), (kind, i)
                    p.quit()
        finally:
            z.stop()
            y.drop_database()
            z.drop_database()

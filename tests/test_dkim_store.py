"""DKIM signing keys live in the store (issue 8): a key made by `yubin dkim generate` while the
server runs signs without a restart, key files of older versions (data_dir/dkim/<domain>/
<selector>.pem) are imported at start, `yubin dkim list` shows what is stored, and two nodes
on one PostgreSQL sign with the one key generated once.

Signatures are checked with dkimpy against the record yubin printed, as a receiver would."""

import os
import re
import subprocess
import time
import uuid

import pytest

from conftest import PASSWORD
from test_multinode import psql
from test_outbound import make_b, published_txt, queue_config, submit, wait_for

PG_URL = os.environ.get("YUBIN_TEST_PG_URL")


def dkim_module():
    try:
        import dkim  # dkimpy, an independent verifier (.ci/run installs it with PyNaCl)
    except ImportError:
        raise AssertionError("pip install dkimpy pynacl (see .ci/run)")
    return dkim


def signature(m: bytes) -> dict:
    """The tags of the message's DKIM-Signature header."""
    assert b"DKIM-Signature:" in m, m
    header = m[m.index(b"DKIM-Signature:"):].split(b"\r\n\r\n")[0].decode()
    header = re.split(r"\r\n(?=\S)", header)[0]
    tags = {}
    for part in header.split(":", 1)[1].split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            tags[k.strip()] = re.sub(r"\s+", "", v)
    return tags


def assert_verifies(m: bytes, name: str, record: bytes):
    """dkimpy accepts the signature with `record` as the only DNS answer, and refuses a
    changed body."""
    dkim = dkim_module()
    asked = []

    def dnsfunc(qname, timeout=5):
        qname = qname.decode() if isinstance(qname, bytes) else qname
        asked.append(qname)
        return record if qname.rstrip(".") == name.rstrip(".") else None

    assert dkim.verify(m + b"\r\n", dnsfunc=dnsfunc), (m, record)
    assert asked, "the verifier never asked for the key"
    assert not dkim.verify(m.replace(b"Hi there.", b"Hi thera.") + b"\r\n", dnsfunc=dnsfunc)


def listed_record(server, selector: str, domain: str = "example.com") -> bytes:
    """The record `yubin dkim list` shows for a stored key."""
    return published_txt(server.cli("dkim", "list").stdout.replace("\n  ", "\n"),
                         f"{selector}._domainkey.{domain}.")


def test_a_key_generated_while_the_server_runs_signs_without_a_restart(make_server):
    b = make_b(make_server)
    a = make_server(extra_config=queue_config(b.ports["smtp"]))
    submit(a, "carol@b.test", subject="before")
    msgs = wait_for(b, "carol@b.test")
    assert len(msgs) == 1, a.logs()
    assert b"DKIM-Signature:" not in msgs[0], "no key yet: unsigned"
    # The running server read the store when it sent that message and found no key; it reads
    # again after 5 s for a domain without one.
    out = a.cli("dkim", "generate", "example.com", "--selector", "live1").stdout
    assert "key stored for example.com selector live1" in out, out
    record = published_txt(out, "live1._domainkey.example.com.")
    time.sleep(5.5)
    submit(a, "carol@b.test", subject="after")
    msgs = wait_for(b, "carol@b.test", 2)
    assert len(msgs) == 2, a.logs()
    m = msgs[1]
    assert b"Subject: after" in m
    tags = signature(m)
    assert (tags["d"], tags["s"], tags["a"]) == ("example.com", "live1", "ed25519-sha256"), tags
    assert_verifies(m, "live1._domainkey.example.com", record)
    # The CLI lists the key with the record it printed at generation.
    assert listed_record(a, "live1") == record
    listing = a.cli("dkim", "list", "example.com").stdout
    assert re.match(r"example\.com selector live1 ed25519 created \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n", listing), listing
    assert not (a.data / "dkim").exists(), "keys are not written to files any more"
    # A second key under the same selector is refused, the first kept.
    res = a.cli("dkim", "generate", "example.com", "--selector", "LIVE1", check=False)
    assert res.returncode != 0 and "already" in res.stderr, res.stderr
    assert listed_record(a, "live1") == record


def openssl_key(path, algorithm: str):
    """A private key file as older versions (or an admin with openssl) wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if algorithm == "rsa":
        args = ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    else:
        args = ["openssl", "genpkey", "-algorithm", "ED25519"]
    subprocess.run([*args, "-out", str(path)], check=True, capture_output=True)


def test_key_files_of_older_versions_are_imported_at_start(make_server):
    b = make_b(make_server)
    a = make_server(extra_config=queue_config(b.ports["smtp"]))
    a.stop()
    older = a.data / "dkim" / "example.com" / "old.pem"
    newer = a.data / "dkim" / "example.com" / "cur.pem"
    openssl_key(older, "rsa")
    openssl_key(newer, "ed25519")
    # The newest file signed before; it still does after the import.
    os.utime(older, (time.time() - 7200, time.time() - 7200))
    a.start()
    logs = a.logs()
    assert logs.count("imported a DKIM key file into the store") == 2, logs
    submit(a, "carol@b.test", subject="imported")
    msgs = wait_for(b, "carol@b.test")
    assert len(msgs) == 1, a.logs()
    tags = signature(msgs[0])
    assert (tags["s"], tags["a"]) == ("cur", "ed25519-sha256"), tags
    assert_verifies(msgs[0], "cur._domainkey.example.com", listed_record(a, "cur"))
    listing = a.cli("dkim", "list").stdout
    assert "imported" not in listing, "imported once, by the server"
    assert re.search(r"^example\.com selector old rsa created ", listing, re.M), listing
    assert re.search(r"^example\.com selector cur ed25519 created ", listing, re.M), listing
    assert older.is_file() and newer.is_file(), "the files are kept"
    # After a restart nothing is imported again.
    a.stop()
    a.start()
    assert a.logs().count("imported a DKIM key file into the store") == 2


@pytest.mark.skipif(not PG_URL, reason="no PostgreSQL: eval \"$(scripts/pg-test-cluster)\" sets YUBIN_TEST_PG_URL")
def test_two_postgres_nodes_sign_with_the_key_generated_once(make_server):
    receiver = make_b(make_server)
    db = f"yubin_dkim_{uuid.uuid4().hex[:12]}"
    psql(PG_URL, f"CREATE DATABASE {db}")
    url = PG_URL.rsplit("/", 1)[0] + "/" + db
    a = b = None
    try:
        config = queue_config(receiver.ports["smtp"]) + f'[storage]\nbackend = "postgres"\nurl = "{url}"\npool_size = 4\n'
        a = make_server(extra_config=config)
        b = make_server(extra_config=config, users=False)
        # Generated once, through node B's CLI, while both nodes run.
        out = b.cli("dkim", "generate", "example.com", "--selector", "shared", "--algorithm", "rsa").stdout
        record = published_txt(out, "shared._domainkey.example.com.")
        assert listed_record(a, "shared") == record, "node A's CLI lists the same key"
        # Each node delivers one message alone (the queue is shared: with both running,
        # either could take either message).
        b.stop()
        submit(a, "carol@b.test", subject="via A")
        assert len(wait_for(receiver, "carol@b.test", 1)) == 1, a.logs()
        b.start()
        a.stop()
        submit(b, "carol@b.test", subject="via B")
        msgs = wait_for(receiver, "carol@b.test", 2)
        assert len(msgs) == 2, b.logs()
        for subject, m in zip(["via A", "via B"], msgs):
            assert f"Subject: {subject}".encode() in m, m
            tags = signature(m)
            assert (tags["d"], tags["s"], tags["a"]) == ("example.com", "shared", "rsa-sha256"), tags
            assert_verifies(m, "shared._domainkey.example.com", record)
        assert not (a.data / "dkim").exists() and not (b.data / "dkim").exists()
    finally:
        for node in (a, b):
            if node is not None:
                node.stop()
        psql(PG_URL, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

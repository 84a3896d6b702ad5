"""Interop with a real peer MTA: Debian's Postfix on loopback relays mail into yubin's SMTP
port, and yubin's queue delivers to Postfix. Postfix runs as its own instance with a config
directory, queue and Maildir under a temporary directory (`postfix -c DIR`); the system's
Postfix configuration is never read or changed."""

import os
import pwd
import shutil
import smtplib
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_port
from test_outbound import FAST, submit, wait_for

PF_DOMAIN = "pf.test"

# The services of Debian's default master.cf that a plain MTA needs, none chrooted (the temp
# queue has no chroot setup), and one smtpd on the test port.
MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """One Postfix instance: accepts mail for dave@pf.test into a Maildir, relays example.com
    to yubin's SMTP port, and relays nothing else."""

    def __init__(self, yubin_smtp_port: int, port: int):
        self.tmp = Path(tempfile.mkdtemp(prefix="yubin-postfix-"))
        # Postfix daemons run as the postfix user and must reach the queue under it.
        os.chmod(self.tmp, 0o755)
        self.conf = self.tmp / "etc"
        self.queue = self.tmp / "queue"
        self.data = self.tmp / "data"
        self.maildir_base = self.tmp / "maildir"
        self.log = self.tmp / "postfix.log"
        self.port = port
        for d in (self.conf, self.queue, self.data, self.maildir_base):
            d.mkdir()
        owner = pwd.getpwnam("postfix")
        os.chown(self.data, owner.pw_uid, owner.pw_gid)
        # virtual(8) delivers as this (unprivileged) user.
        nobody = pwd.getpwnam("nobody")
        os.chown(self.maildir_base, nobody.pw_uid, nobody.pw_gid)
        (self.conf / "vmailbox").write_text(f"dave@{PF_DOMAIN} {PF_DOMAIN}/dave/\n")
        (self.conf / "transport").write_text(f"example.com smtp:[127.0.0.1]:{yubin_smtp_port}\n")
        (self.conf / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))
        (self.conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.queue}
data_directory = {self.data}
mail_owner = postfix
myhostname = mx.{PF_DOMAIN}
mydomain = {PF_DOMAIN}
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:local delivery disabled
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
smtpd_banner = $myhostname ESMTP
smtpd_tls_security_level = none
# yubin offers STARTTLS with a self-signed certificate: use it, unverified (RFC 7435).
smtp_tls_security_level = may
smtp_dns_support_level = disabled
relay_domains = example.com
transport_maps = texthash:{self.conf}/transport
default_transport = error:outbound delivery disabled
virtual_mailbox_domains = {PF_DOMAIN}
virtual_mailbox_base = {self.maildir_base}
virtual_mailbox_maps = texthash:{self.conf}/vmailbox
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
virtual_minimum_uid = {min(nobody.pw_uid, 100)}
maillog_file = {self.log}
maillog_file_prefixes = {self.tmp}
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
""")

    def postfix(self, *args):
        res = subprocess.run(["postfix", "-c", str(self.conf), *args], capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise AssertionError(f"postfix {' '.join(args)}: {res.stdout}{res.stderr}\n{self.logs()}")
        return res

    def start(self):
        self.postfix("start")
        deadline = time.time() + 30
        while True:
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=5) as s:
                    s.noop()
                return self
            except OSError:
                assert time.time() < deadline, f"postfix never listened:\n{self.logs()}"
                time.sleep(0.2)

    def stop(self):
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def logs(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def delivered(self, user: str) -> list:
        new = self.maildir_base / PF_DOMAIN / user / "new"
        return [p.read_bytes() for p in sorted(new.iterdir())] if new.is_dir() else []


@pytest.fixture
def postfix_peer():
    if shutil.which("postfix") is None:
        pytest.skip("Postfix is not installed (.ci/run installs Debian's postfix package)")
    started = []

    def make(yubin_smtp_port: int, port: int) -> Postfix:
        p = Postfix(yubin_smtp_port, port)
        started.append(p)
        return p.start()

    yield make
    for p in started:
        p.stop()


def test_postfix_and_yubin_deliver_to_each_other(make_server, postfix_peer):
    # yubin's SMTP port must be known to Postfix and Postfix's to yubin: start yubin first with
    # a port chosen for Postfix.
    pf_port = free_port()
    a = make_server(extra_config=(
        f"[queue]\nremote_port = {pf_port}\n{FAST}\n"
        f'[dns.override."{PF_DOMAIN}"]\nmx = ["mx.{PF_DOMAIN}"]\n'
        f'[dns.override."mx.{PF_DOMAIN}"]\na = ["127.0.0.1"]\n'
    ))
    pf = postfix_peer(a.ports["smtp"], pf_port)

    # Postfix -> yubin: a client hands Postfix a message for alice@example.com; Postfix
    # relays it to yubin's port 25 listener (transport_maps).
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as s:
        s.sendmail(
            f"dave@{PF_DOMAIN}",
            ["alice@example.com"],
            (f"From: <dave@{PF_DOMAIN}>\r\nTo: <alice@example.com>\r\n"
             "Subject: via postfix\r\nMessage-ID: <pf1@pf.test>\r\n\r\nrelayed by Postfix\r\n").encode(),
        )
    msgs = wait_for(a, "alice@example.com", timeout=30)
    assert len(msgs) == 1, pf.logs() + a.logs()
    assert b"Subject: via postfix" in msgs[0] and b"relayed by Postfix" in msgs[0]
    # Postfix's Received header shows it was the relay.
    assert b"by mx.pf.test (Postfix)" in msgs[0], msgs[0]
    assert "status=sent" in pf.logs(), pf.logs()

    # yubin -> Postfix: alice submits on 587; yubin's queue resolves pf.test's MX (the
    # override) and delivers to Postfix, which stores it in dave's Maildir.
    submit(a, f"dave@{PF_DOMAIN}", subject="via yubin", body="delivered by yubin\r\n")
    deadline = time.time() + 30
    while not pf.delivered("dave"):
        assert time.time() < deadline, pf.logs() + a.logs()
        time.sleep(0.3)
    got = pf.delivered("dave")
    assert len(got) == 1
    assert b"Subject: via yubin" in got[0] and b"delivered by yubin" in got[0]
    # Maildir files use LF line ends; Postfix's Received header shows who took it over.
    assert b"by mx.pf.test (Postfix) with ESMTP" in got[0], got[0]
    assert b"Return-Path: <alice@example.com>" in got[0]
    # yubin recorded the delivery: the queue is done with the message.
    listing = a.cli("queue", "list").stdout
    if "the queue is empty" not in listing:
        shown = a.cli("queue", "show", listing.split()[0]).stdout
        assert f"rcpt: dave@{PF_DOMAIN} delivered" in shown, shown

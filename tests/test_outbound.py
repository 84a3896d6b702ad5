"""Outbound delivery end to end: instance A's submission port queues mail for another domain,
A's queue delivers it over SMTP to instance B (or to a tiny fake server), DSNs come back."""

import asyncio
import poplib
import re
import smtplib
import threading
import time

import pytest

from conftest import PASSWORD, client_tls, free_port

FAST = "retry_initial_secs = 1\nretry_max_secs = 2\npoll_interval_secs = 1\n"


def queue_config(port: int, extra: str = "") -> str:
    return (
        f"[queue]\nremote_port = {port}\n{FAST}{extra}\n"
        '[dns.override."b.test"]\na = ["127.0.0.1"]\n'
    )


def submit(server, to: str, subject: str = "hello", body: str = "Hi there.\r\n", sender="alice@example.com"):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30) as s:
        s.starttls(context=client_tls())
        s.login(sender, PASSWORD)
        msg = (
            f"From: Alice <{sender}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}.{time.time()}@example.com>\r\n\r\n{body}"
        )
        s.sendmail(sender, [to], msg.encode())


def inbox(server, user: str) -> list:
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=30)
    try:
        p.user(user)
        p.pass_(PASSWORD)
        count, _ = p.stat()
        return [b"\r\n".join(p.retr(i)[1]) for i in range(1, count + 1)]
    finally:
        p.quit()


def wait_for(server, user: str, n: int = 1, timeout: float = 30) -> list:
    deadline = time.time() + timeout
    while True:
        msgs = inbox(server, user)
        if len(msgs) >= n or time.time() > deadline:
            return msgs
        time.sleep(0.3)


def make_b(make_server):
    b = make_server(users=False)
    b.cli("domain", "add", "b.test")
    b.cli("user", "add", "carol@b.test", "--password-stdin", stdin=PASSWORD + "\n")
    return b


def published_txt(generate_output: str, name: str) -> bytes:
    """The TXT record `yubin dkim generate` told us to publish at `name`: its quoted
    character-strings joined (RFC 6376 §3.6.2.2)."""
    for line in generate_output.splitlines():
        if line.startswith(name + " TXT "):
            return "".join(re.findall(r'"([^"]*)"', line)).encode()
    raise AssertionError(f"no record for {name} in {generate_output!r}")


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
def test_a_to_b_delivery_is_dkim_signed(make_server, algorithm):
    try:
        import dkim  # dkimpy, an independent verifier (.ci/run installs it with PyNaCl)
    except ImportError:
        raise AssertionError("pip install dkimpy pynacl (see .ci/run)")
    b = make_b(make_server)
    a = make_server(extra_config=queue_config(b.ports["smtp"]))
    out = a.cli("dkim", "generate", "example.com", "--selector", "s1", "--algorithm", algorithm).stdout
    assert f's1._domainkey.example.com. TXT "v=DKIM1; k={algorithm}; p=' in out
    record = published_txt(out, "s1._domainkey.example.com.")
    submit(a, "carol@b.test", subject="first", body="Hi there.\r\n\r\n.leading dot  and  spaces \r\n")
    msgs = wait_for(b, "carol@b.test")
    assert len(msgs) == 1, a.logs()
    m = msgs[0]
    assert b"Subject: first" in m
    assert b"Hi there." in m
    assert b"DKIM-Signature:" in m, m
    sig = m[m.index(b"DKIM-Signature:"):].split(b"\r\n\r\n")[0]
    assert b"d=example.com" in sig and b"s=s1" in sig and f"a={algorithm}-sha256".encode() in sig

    # Cryptographic verification with the published record as the only DNS answer.
    looked_up = []

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        looked_up.append(name)
        return record if name.rstrip(".") == "s1._domainkey.example.com" else None

    assert dkim.verify(m + b"\r\n", dnsfunc=dnsfunc), (m, record)
    assert looked_up, "the verifier never asked for the key"
    # And a changed body must fail: the check is real.
    assert not dkim.verify(m.replace(b"Hi there.", b"Hi thera.") + b"\r\n", dnsfunc=dnsfunc)
    # The queue forgets delivered messages.
    deadline = time.time() + 40
    while "the queue is empty" not in a.cli("queue", "list").stdout:
        assert time.time() < deadline, a.cli("queue", "list").stdout
        time.sleep(1)


def test_b_to_a_reverse_direction(make_server):
    a = make_server()  # example.com
    b = make_server(users=False, extra_config=(
        f"[queue]\nremote_port = {a.ports['smtp']}\n{FAST}\n"
        '[dns.override."example.com"]\na = ["127.0.0.1"]\n'
    ))
    b.cli("domain", "add", "b.test")
    b.cli("user", "add", "carol@b.test", "--password-stdin", stdin=PASSWORD + "\n")
    submit(b, "bob@example.com", subject="reverse", sender="carol@b.test")
    msgs = wait_for(a, "bob@example.com")
    assert len(msgs) == 1 and b"Subject: reverse" in msgs[0], b.logs()


class FakeSmtp:
    """A minimal SMTP server on loopback that answers RCPT with a fixed reply (e.g. 550 or
    451) for the first `fail_times` transactions, then accepts."""

    def __init__(self, rcpt_reply: bytes, fail_times: int = 10**9, data_delay: float = 0):
        self.port = free_port()
        self.rcpt_reply = rcpt_reply
        self.fail_times = fail_times
        # Seconds between the end of the data and the reply to it.
        self.data_delay = data_delay
        self.transactions = 0
        self.received = []
        self.accepted = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        self.ready.wait(5)

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._session, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()
        server.close()

    async def _session(self, r, w):
        w.write(b"220 fake ESMTP\r\n")
        failing = False
        try:
            while True:
                line = await r.readline()
                if not line:
                    return
                cmd = line[:4].upper()
                if cmd == b"EHLO":
                    w.write(b"250-fake\r\n250 8BITMIME\r\n")
                elif cmd == b"MAIL":
                    self.transactions += 1
                    failing = self.transactions <= self.fail_times
                    w.write(b"250 ok\r\n")
                elif cmd == b"RCPT":
                    w.write(self.rcpt_reply + b"\r\n" if failing else b"250 ok\r\n")
                elif cmd == b"DATA":
                    w.write(b"354 go\r\n")
                    await w.drain()
                    data = b""
                    while not data.endswith(b"\r\n.\r\n"):
                        chunk = await r.readline()
                        if not chunk:
                            return
                        data += chunk
                    self.received.append(data)
                    await asyncio.sleep(self.data_delay)
                    self.accepted.append(data)
                    w.write(b"250 queued\r\n")
                elif cmd == b"QUIT":
                    w.write(b"221 bye\r\n")
                    await w.drain()
                    return
                else:
                    w.write(b"250 ok\r\n")
                await w.drain()
        finally:
            w.close()

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)


def dsn_parts(msg: bytes) -> bytes:
    assert b"multipart/report" in msg, msg
    assert b"delivery-status" in msg, msg
    return msg


def test_550_bounces_immediately(make_server):
    fake = FakeSmtp(b"550 5.1.1 no such user here")
    try:
        a = make_server(extra_config=queue_config(fake.port))
        submit(a, "nobody@b.test", subject="bounceme")
        msgs = wait_for(a, "alice@example.com")
        assert len(msgs) == 1, a.logs()
        m = dsn_parts(msgs[0])
        assert b"Action: failed" in m
        assert b"Status: 5.1.1" in m
        assert b"Final-Recipient: rfc822; nobody@b.test" in m
        assert b"550 5.1.1 no such user here" in m
        assert b"Subject: bounceme" in m  # headers returned
        assert fake.accepted == []
    finally:
        fake.stop()


def test_451_is_retried_then_delivered(make_server):
    fake = FakeSmtp(b"451 4.3.0 try again later", fail_times=2)
    try:
        a = make_server(extra_config=queue_config(fake.port))
        submit(a, "someone@b.test", subject="retryme")
        deadline = time.time() + 30
        while not fake.accepted:
            assert time.time() < deadline, a.logs()
            time.sleep(0.2)
        assert fake.transactions == 3
        assert b"Subject: retryme" in fake.accepted[0]
        assert inbox(a, "alice@example.com") == []  # no bounce
    finally:
        fake.stop()


def test_destination_down_then_up_and_expiry_dsn(make_server):
    port = free_port()  # nothing listens yet
    a = make_server(extra_config=queue_config(port, "max_age_secs = 4\n"))
    submit(a, "carol@b.test", subject="expires")
    listing = a.cli("queue", "list").stdout
    assert "1/1 pending" in listing, listing
    qid = listing.split()[0]
    shown = a.cli("queue", "show", qid).stdout
    assert "rcpt: carol@b.test pending" in shown, shown
    msgs = wait_for(a, "alice@example.com", timeout=30)
    assert len(msgs) == 1, a.logs()
    m = dsn_parts(msgs[0])
    assert b"Status: 4.4.7" in m and b"Action: failed" in m


def test_down_then_up_is_delivered(make_server):
    b_port = free_port()
    a = make_server(extra_config=queue_config(b_port))
    submit(a, "carol@b.test", subject="later")
    time.sleep(2.5)  # a few failed attempts
    shown = a.cli("queue", "show", a.cli("queue", "list").stdout.split()[0]).stdout
    assert "last error" in shown, shown
    b = make_b(make_server)
    b.stop()
    b.ports["smtp"] = b_port
    b.write_config()
    b.start()
    a.cli("queue", "flush")
    msgs = wait_for(b, "carol@b.test", timeout=30)
    assert len(msgs) == 1 and b"Subject: later" in msgs[0], a.logs()


def test_queue_admin_commands(make_server):
    port = free_port()
    a = make_server(extra_config=queue_config(port, "retry_initial_secs = 3600\nretry_max_secs = 7200\n").replace(FAST, "poll_interval_secs = 1\n"))
    submit(a, "x@b.test", subject="admin")
    listing = a.cli("queue", "list").stdout
    qid = listing.split()[0]
    assert a.cli("queue", "retry", qid).returncode == 0
    assert "scheduled" in a.cli("queue", "retry", "--all").stdout
    assert "scheduled" in a.cli("queue", "flush").stdout
    assert a.cli("queue", "show", "999999", check=False).returncode != 0
    assert "deleted" in a.cli("queue", "delete", qid).stdout
    assert a.cli("queue", "delete", qid, check=False).returncode != 0
    assert "the queue is empty" in a.cli("queue", "list").stdout


def test_queue_shows_the_sending_process_and_a_long_delivery_keeps_its_lease(make_server):
    # The peer answers the data after 7 s; the lease is 3 s, renewed every second meanwhile.
    fake = FakeSmtp(b"250 ok", data_delay=7)
    try:
        a = make_server(extra_config=queue_config(fake.port, "lease_secs = 3\n"))
        submit(a, "slow@b.test", subject="slowly")
        deadline = time.time() + 30
        while not fake.received:
            assert time.time() < deadline, a.logs()
            time.sleep(0.1)
        time.sleep(3.5)  # past the first lease's expiry
        listing = a.cli("queue", "list").stdout
        # The columns before stay as they were; the holder comes last.
        assert re.search(
            r"^\d+\tage \d+s\t\d+ bytes\tfrom alice@example.com\t1/1 pending\tnext now"
            r"\tsending by \S+/\d+/[0-9a-f]{8} \(lease expires in \ds\)$",
            listing, re.M), listing
        shown = a.cli("queue", "show", listing.split()[0]).stdout
        assert re.search(
            r"^rcpt: slow@b.test pending attempts 0 next now sending by \S+/\d+/[0-9a-f]{8} ",
            shown, re.M), shown
        qid = listing.split()[0]
        while "rcpt: slow@b.test delivered attempts 1" not in (shown := a.cli("queue", "show", qid).stdout):
            assert time.time() < deadline, shown
            time.sleep(0.5)
        assert "sending by" not in shown, shown
        # Sent once: the lease never ran out, so no second attempt started.
        assert len(fake.received) == 1 and len(fake.accepted) == 1
        assert fake.transactions == 1
    finally:
        fake.stop()

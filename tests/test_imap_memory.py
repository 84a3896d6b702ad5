"""Bounded memory per IMAP connection: a whole large mailbox fetched over one connection
(`FETCH 1:* BODY[]`), by a client that reads slowly at first, does not make the server hold
the response — large bodies are streamed from the store and responses flushed as they go."""

import imaplib
import socket
import threading
import time

from conftest import PASSWORD

USER = "alice@example.com"
MESSAGES = 300
BODY_SIZE = 1024 * 1024  # 300 MiB in all


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def message(i: int) -> bytes:
    line = (b"%06d " % i) + b"x" * 70 + b"\r\n"
    body = line * (BODY_SIZE // len(line))
    return b"From: carol@sender.test\r\nSubject: big %d\r\n\r\n" % i + body


def test_fetch_of_a_300_mib_mailbox_grows_rss_by_less_than_64_mib(server):
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=60)
    m.login(USER, PASSWORD)
    m.create("Big")
    total = 0
    for i in range(MESSAGES):
        msg = message(i)
        total += len(msg)
        typ, _ = m.append("Big", None, None, msg)
        assert typ == "OK"
    m.logout()

    pid = server.proc.pid
    s = socket.create_connection(("127.0.0.1", server.ports["imap"]), timeout=60)
    # A small receive buffer: the server's writes block as soon as this client lags.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    s.sendall(b"a LOGIN %s \"%s\"\r\nb SELECT Big\r\n" % (USER.encode(), PASSWORD.encode()))
    while not f.readline().startswith(b"b OK"):
        pass
    time.sleep(0.5)
    baseline = rss_kib(pid)
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        s.sendall(b"c FETCH 1:* BODY.PEEK[]\r\n")
        received = 0
        literals = 0
        slow_until = time.time() + 3
        while True:
            line = f.readline()
            assert line, "connection closed"
            if line.startswith(b"c "):
                assert line.startswith(b"c OK"), line
                break
            if line.rstrip().endswith(b"}"):
                n = int(line.rstrip()[:-1].rsplit(b"{", 1)[1])
                literals += 1
                left = n
                while left:
                    chunk = f.read(min(left, 64 * 1024))
                    assert chunk
                    left -= len(chunk)
                    received += len(chunk)
                    if time.time() < slow_until:
                        # A slow reader for the first seconds.
                        time.sleep(0.01)
                f.readline()  # the rest of the FETCH response: ")"
    finally:
        done.set()
        sampler.join()
    assert literals == MESSAGES
    assert received == total
    growth_mib = (peak[0] - baseline) / 1024
    print(f"RSS growth during FETCH 1:* BODY.PEEK[] of {total >> 20} MiB: {growth_mib:.1f} MiB")
    assert growth_mib < 64, f"RSS grew by {growth_mib:.1f} MiB during the FETCH"

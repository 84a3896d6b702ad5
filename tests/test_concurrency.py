"""Mail arriving while a POP3 client downloads and deletes: nothing lost, nothing duplicated."""

import poplib
import smtplib
import threading

from conftest import PASSWORD, client_tls


def test_pop3_and_delivery_at_the_same_time(server):
    total = 100
    sent_ids = [f"<c{i}@sender.test>" for i in range(total)]
    errors = []

    def sender():
        try:
            for mid in sent_ids:
                with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
                    s.sendmail("carol@sender.test", ["alice@example.com"],
                               f"Message-ID: {mid}\r\nSubject: load\r\n\r\nbody\r\n".encode())
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    thread = threading.Thread(target=sender)
    thread.start()
    downloaded = []
    while thread.is_alive() or len(downloaded) < total // 2:
        p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls(), timeout=30)
        p.user("alice@example.com")
        p.pass_(PASSWORD)
        count, _ = p.stat()
        for i in range(1, count + 1):
            lines = p.retr(i)[1]
            mid = next(line.split(b" ", 1)[1].decode() for line in lines if line.startswith(b"Message-ID:"))
            downloaded.append(mid)
            p.dele(i)
        p.quit()
        if not thread.is_alive():
            break
    thread.join()
    assert not errors, errors

    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls(), timeout=30)
    p.user("alice@example.com")
    p.pass_(PASSWORD)
    remaining = []
    for i in range(1, p.stat()[0] + 1):
        lines = p.retr(i)[1]
        remaining.append(next(line.split(b" ", 1)[1].decode() for line in lines if line.startswith(b"Message-ID:")))
    p.quit()

    assert len(downloaded) == len(set(downloaded)), "a message was downloaded twice"
    assert not set(downloaded) & set(remaining), "a deleted message is still there"
    assert sorted(downloaded + remaining) == sorted(sent_ids), "a message was lost"


def test_concurrent_smtp_clients_all_stored(server):
    n_threads, per_thread = 10, 10
    errors = []

    def worker(k):
        try:
            with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
                for i in range(per_thread):
                    s.sendmail("carol@sender.test", ["bob@example.com"], f"Subject: {k}-{i}\r\n\r\nx\r\n".encode())
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    p = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls(), timeout=30)
    p.user("bob@example.com")
    p.pass_(PASSWORD)
    assert p.stat()[0] == n_threads * per_thread
    assert len({line.split()[1] for line in p.uidl()[1]}) == n_threads * per_thread
    p.quit()

"""The admin console (/admin/ on the HTTPS listener): only [admin] accounts sign in, CSRF and
Origin checks, every list page against the store, every action checked from the CLI or another
protocol afterwards, the SVG charts after deliveries, refusals and failed logins, and the log
tail. Driven with http.client (the account pages' test browser), smtplib and imaplib; pages
parsed with html.parser."""

import imaplib
import smtplib
import time
from html.parser import HTMLParser

import pytest

from conftest import PASSWORD, client_tls, free_port
from dns_server import DnsServer
from test_account_pages import Browser, assert_secure, web_factory  # noqa: F401 (fixture)

ADMIN = "alice@example.com"
BOB = "bob@example.com"
ADMIN_CONFIG = f'[admin]\naccounts = ["{ADMIN}"]\nlog_refresh_secs = 7\n'


@pytest.fixture
def console_factory(web_factory):
    """Servers with alice as the admin (and bob, a user), from test_account_pages' factory."""
    return lambda extra="": web_factory(ADMIN_CONFIG + extra)


@pytest.fixture
def console(console_factory):
    return console_factory()


class AdminPage(HTMLParser):
    """Tables by id (rows of cell texts), hidden fields, messages, SVG elements with their
    class and data-value, the meta refresh."""

    def __init__(self, html):
        super().__init__()
        self.tables = {}
        self.hidden = {}
        self.messages = []
        self.svg_items = []
        self.refresh = None
        self.pre = {}
        self._table = None
        self._row = None
        self._cell = None
        self._msg = None
        self._pre = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and "id" in a:
            self._table = a["id"]
            self.tables[self._table] = []
        if tag == "tr" and self._table:
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = ""
        if tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")
        if tag == "p" and a.get("class") in ("error", "notice"):
            self._msg = [a["class"], ""]
        if tag in ("rect", "circle") and "data-value" in a:
            self.svg_items.append((tag, a.get("class"), int(a["data-value"])))
        if tag == "meta" and a.get("http-equiv") == "refresh":
            self.refresh = a.get("content")
        if tag == "pre" and "id" in a:
            self._pre = a["id"]
            self.pre[self._pre] = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        if tag == "table":
            self._table = None
        if tag == "p" and self._msg is not None:
            self.messages.append(tuple(self._msg))
            self._msg = None
        if tag == "pre":
            self._pre = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._msg is not None:
            self._msg[1] += data
        if self._pre is not None:
            self.pre[self._pre] += data

    def column(self, table, i=0):
        return [r[i] for r in self.tables[table][1:]]

    def items(self, tag, cls):
        return [v for t, c, v in self.svg_items if t == tag and c == cls]


class Admin(Browser):
    def page(self, path="/admin/"):
        status, headers, body = self.get(path)
        assert status == 200, (status, body)
        assert_secure(headers)
        return AdminPage(body)

    def sign_in(self, address=ADMIN, password=PASSWORD):
        status, _, body = self.get("/admin/")
        assert status == 200, body
        token = AdminPage(body).hidden["form_token"]
        return self.post("/admin/login", {"form_token": token, "address": address, "password": password})

    def act(self, page, **form):
        csrf = self.page(f"/admin/{page}").hidden["csrf"]
        status, headers, body = self.post(f"/admin/{page}", {"csrf": csrf, **form})
        assert_secure(headers)
        return status, AdminPage(body)


def signed_in(server) -> Admin:
    b = Admin(server)
    status, headers, _ = b.sign_in()
    assert status == 303 and headers["location"] == "/admin/", (status, headers)
    return b


def imap_login(server, user, password) -> bool:
    m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=30)
    try:
        m.login(user, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            m.logout()
        except Exception:
            pass


def test_only_admin_accounts_sign_in(console):
    b = Admin(console)
    # Plain HTTP is redirected to HTTPS; the console is not served there.
    status, headers, _ = b.get("/admin/", tls=False)
    assert status == 301 and headers["location"].startswith("https://"), headers
    # A right password of a non-admin account: 403, no session.
    status, headers, body = b.sign_in(BOB, PASSWORD)
    assert status == 403, body
    assert "not an admin account" in body
    assert "yubin_admin" not in b.jar
    assert_secure(headers)
    # A wrong password of the admin: the sign-in page again.
    status, _, body = b.sign_in(ADMIN, "wrong password")
    assert status == 200 and "Wrong address or password" in body
    assert "yubin_admin" not in b.jar
    # The admin.
    status, headers, _ = b.sign_in()
    assert status == 303
    cookie = next(c for c in b.set_cookies if c.startswith("yubin_admin="))
    for attr in ("Path=/admin", "Secure", "HttpOnly", "SameSite=Strict"):
        assert attr in cookie, cookie
    p = b.page("/admin/")
    assert "csrf" in p.hidden
    # The account pages' session is not the console's: signing in there gives no console.
    other = Admin(console)
    other.jar["yubin_session"] = b.jar["yubin_admin"]
    status, _, body = other.get("/admin/users")
    assert status == 200 and "form_token" in body and 'id="users"' not in body
    # Sign out ends the session.
    status, _, _ = b.post("/admin/logout", {"csrf": p.hidden["csrf"]})
    assert status == 303
    status, _, body = b.get("/admin/users")
    assert 'id="users"' not in body


def test_csrf_and_origin_are_checked(console):
    b = signed_in(console)
    form = {"action": "ban_add", "ip": "192.0.2.50", "duration": "1h"}
    status, _, _ = b.post("/admin/bans", form)
    assert status == 403
    status, _, _ = b.post("/admin/bans", {**form, "csrf": "0" * 64})
    assert status == 403
    csrf = b.page("/admin/bans").hidden["csrf"]
    status, _, _ = b.post("/admin/bans", {**form, "csrf": csrf}, headers={"Origin": "https://evil.test"})
    assert status == 403
    # Without a session a POST is refused too.
    anon = Admin(console)
    status, _, _ = anon.post("/admin/bans", {**form, "csrf": csrf})
    assert status == 403
    assert "192.0.2.50" not in console.cli("ban", "list").stdout
    status, page = b.act("bans", **form)
    assert status == 200, page.messages
    assert "192.0.2.50" in console.cli("ban", "list").stdout


def test_lists_and_actions_match_the_cli(console):
    b = signed_in(console)
    # Domains.
    assert b.page("/admin/domains").column("domains") == ["example.com"]
    status, p = b.act("domains", action="domain_add", domain="example.org")
    assert status == 200 and ("notice", "Done: yubin domain add example.org") in p.messages, p.messages
    assert "example.org" in console.cli("domain", "list").stdout.split()
    assert p.column("domains") == ["example.com", "example.org"]
    status, p = b.act("domains", action="domain_add", domain="not a domain!")
    assert status == 400 and p.messages[0][0] == "error"
    status, p = b.act("domains", action="domain_del", domain="example.org")
    assert status == 200
    assert "example.org" not in console.cli("domain", "list").stdout.split()
    # Users: add on the page, log in over IMAP.
    status, p = b.act("users", action="user_add", address="carol@example.com", password="carol's secret 1")
    assert status == 200, p.messages
    assert "carol@example.com" in console.cli("user", "list").stdout.split()
    assert imap_login(console, "carol@example.com", "carol's secret 1")
    assert p.column("users") == ["alice@example.com", "bob@example.com", "carol@example.com"]
    # Reset the password.
    status, _ = b.act("users", action="user_passwd", address="carol@example.com", password="another one 2")
    assert status == 200
    assert imap_login(console, "carol@example.com", "another one 2")
    assert not imap_login(console, "carol@example.com", "carol's secret 1")
    # Quota.
    status, p = b.act("users", action="quota_set", address="carol@example.com", storage="10M", messages="100")
    assert status == 200, p.messages
    shown = console.cli("quota", "show", "carol@example.com").stdout
    assert "100" in shown and ("10.0 MiB" in shown or "10485760" in shown or "10M" in shown), shown
    row = next(r for r in p.tables["users"] if r[0] == "carol@example.com")
    assert row[2] == "10.0 MiB" and row[4] == "100", row
    # Aliases.
    status, p = b.act("aliases", action="alias_add", alias="info@example.com", targets="alice@example.com, carol@example.com")
    assert status == 200, p.messages
    assert "info@example.com -> alice@example.com, carol@example.com" in console.cli("alias", "list").stdout
    assert ["info@example.com", "alice@example.com, carol@example.com"] == p.tables["aliases"][1][:2]
    status, _ = b.act("aliases", action="alias_del", alias="info@example.com")
    assert status == 200
    assert "info@example.com" not in console.cli("alias", "list").stdout
    # Delete the user.
    # Deleting a user (and its mail) needs the box ticked.
    status, p = b.act("users", action="user_del", address="carol@example.com")
    assert status == 400 and "confirm" in p.messages[0][1], p.messages
    assert "carol@example.com" in console.cli("user", "list").stdout
    status, _ = b.act("users", action="user_del", address="carol@example.com", confirm="yes")
    assert status == 200
    assert "carol@example.com" not in console.cli("user", "list").stdout
    # Bans: add with a duration, lift.
    status, p = b.act("bans", action="ban_add", ip="198.51.100.9", duration="2h")
    assert status == 200
    assert "198.51.100.9" in console.cli("ban", "list").stdout
    assert p.column("bans") == ["198.51.100.9"]
    assert p.tables["bans"][1][3] == "manual"
    status, p = b.act("bans", action="ban_del", ip="198.51.100.9")
    assert status == 200
    assert "198.51.100.9" not in console.cli("ban", "list").stdout
    assert p.column("bans") == []
    # DKIM: generate, then the key is listed with its record.
    status, p = b.act("dkim", action="dkim_generate", domain="example.com", algorithm="ed25519")
    assert status == 200, p.messages
    assert "example.com selector" in console.cli("dkim", "list").stdout
    keys = p.tables["dkim"][1:]
    assert len(keys) == 1 and keys[0][0] == "example.com" and keys[0][2] == "ed25519"
    assert "._domainkey.example.com" in keys[0][4] and "v=DKIM1" in keys[0][4]
    # An unknown action or a value that looks like an option is refused before any command.
    status, p = b.act("domains", action="serve")
    assert status == 400
    status, p = b.act("domains", action="domain_add", domain="--help")
    assert status == 400


def test_dns_check_table(console_factory):
    # A DNS server on loopback with the MX record and the host's address only.
    zone = (
        "example.com. 3600 IN MX 10 mail.example.com.\n"
        "mail.example.com. 3600 IN A 192.0.2.25\n"
        "25.2.0.192.in-addr.arpa. 3600 IN PTR mail.example.com.\n"
    )
    dns = DnsServer.from_zone(zone).start()
    try:
        y = console_factory(f'[dns]\nnameservers = ["127.0.0.1:{dns.port}"]\n')
        b = signed_in(y)
        p = b.page("/admin/dkim?check=example.com")
        cli = y.cli("check-dns", "example.com", check=False).stdout
    finally:
        dns.stop()
    rows = p.tables["dns"]
    assert rows[0] == ["Record", "Expected", "Found", "Status"]
    status = {r[0].split(" (")[0]: r[3] for r in rows[1:]}
    assert status["MX example.com."] == "ok", status
    assert status["TXT example.com."] == "MISSING", status
    assert set(status.values()) <= {"ok", "MISSING", "WRONG"}, status
    # The same records and verdicts as `yubin check-dns`, in the same order.
    from_cli = [(l[:8].strip(), l[8:].split(" (")[0]) for l in cli.splitlines() if l[:8].strip() in ("ok", "MISSING", "WRONG", "FAILED")]
    assert from_cli == [(r[3], r[0].split(" (")[0]) for r in rows[1:]]


def test_queue_page_retry_and_delete(console_factory):
    port = free_port()  # nothing listens: delivery fails and the message stays queued
    y = console_factory(
        f"[queue]\nremote_port = {port}\nretry_initial_secs = 3600\nretry_max_secs = 7200\npoll_interval_secs = 1\n"
        '[dns.override."b.test"]\na = ["127.0.0.1"]\n'
    )
    with smtplib.SMTP("127.0.0.1", y.ports["submission"], timeout=30) as s:
        s.starttls(context=client_tls())
        s.login(ADMIN, PASSWORD)
        s.sendmail(ADMIN, ["x@b.test"], f"From: <{ADMIN}>\r\nTo: <x@b.test>\r\nSubject: q\r\n\r\nqueued\r\n".encode())
    qid = y.cli("queue", "list").stdout.split()[0]
    b = signed_in(y)
    deadline = time.time() + 30
    while True:
        p = b.page("/admin/queue")
        rows = p.tables["queue"][1:]
        assert len(rows) == 1 and rows[0][0] == qid, rows
        if rows[0][3] != "0":
            break
        assert time.time() < deadline, rows
        time.sleep(0.5)
    _, sender, rcpts, attempts, nxt, error, _age, _ = rows[0]
    assert sender == ADMIN and rcpts == "x@b.test" and int(attempts) >= 1
    assert nxt.startswith("in ") and error, rows[0]
    status, p = b.act("queue", action="queue_retry", id=qid)
    assert status == 200, p.messages
    status, p = b.act("queue", action="queue_delete", id=qid, confirm="yes")
    assert status == 200, p.messages
    assert qid not in y.cli("queue", "list").stdout
    assert p.tables["queue"][1:] == []


def test_charts_and_log_tail(console):
    n, m, k = 3, 2, 2
    with smtplib.SMTP("127.0.0.1", console.ports["smtp"], timeout=30) as s:
        for i in range(n):
            assert s.sendmail("someone@example.net", [BOB], f"Subject: c{i}\r\n\r\nbody\r\n".encode()) == {}
        # Relaying refused (RFC 5321 §3.6.2): a refusal each.
        for i in range(m):
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                s.sendmail("someone@example.net", [f"x{i}@elsewhere.test"], b"Subject: r\r\n\r\nbody\r\n")
    for _ in range(k):
        assert not imap_login(console, BOB, "not the password")
    b = signed_in(console)
    deadline = time.time() + 10
    while True:
        p = b.page("/admin/")
        delivered = p.items("rect", "deliveries")
        refused = p.items("rect", "rejections")
        if sum(delivered) == n and sum(refused) == m:
            break
        assert time.time() < deadline, (delivered, refused)
        time.sleep(0.2)
    # 48 hourly bars per series, the counts in the current hour.
    assert len(delivered) == 48 and len(refused) == 48
    assert delivered[-1] == n and refused[-1] == m
    # Failed logins by address: 127.0.0.1 with k failures.
    assert p.items("rect", "failures") == [k]
    # Storage per account against quota: one bar per account, bob's holds the n messages.
    used = p.items("rect", "used")
    assert len(used) == 2 and max(used) > 0
    # The queue chart ends with the queue now (empty).
    assert p.items("circle", "queue")[-1] == 0
    # The log tail shows the deliveries, filterable by level and text.
    log = b.page("/admin/log?q=smtp+delivery")
    lines = log.pre["log"].strip().splitlines()
    assert len(lines) >= n and all("smtp delivery" in l for l in lines), lines
    assert log.refresh == "7"
    warn = b.page("/admin/log?level=WARN").pre["log"]
    assert "authentication failed" in warn and "smtp delivery" not in warn

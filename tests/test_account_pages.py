"""The account pages (/account/ on the HTTPS listener): sign-in through the shared password
guard, the settings table built from the real listeners, the QR code, quota after a delivery,
English and Japanese, CSRF, password change (checked over IMAP), logout, session expiry, and
the redirect from plain HTTP. Driven with http.client (a small cookie jar that keeps every
Set-Cookie attribute, so they can be asserted), curl with its own cookie jar, and imaplib;
pages parsed with html.parser."""

import http.client
import imaplib
import os
import poplib
import re
import smtplib
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import PASSWORD, Yubin, client_tls, free_port

HOST = "mail.example.com"
ALICE = "alice@example.com"
NEW_PASSWORD = "a brand new passphrase"


def make_web(tmp, extra_config="", auth_config=""):
    y = Yubin(Path(tmp) / f"s{time.monotonic_ns()}", extra_config=extra_config, auth_config=auth_config)
    y.ports["https"] = free_port()
    y.ports["http"] = free_port()
    y.write_config()
    y.cli("domain", "add", "example.com")
    for user in (ALICE, "bob@example.com"):
        y.cli("user", "add", user, "--password-stdin", stdin=PASSWORD + "\n")
    return y.start()


@pytest.fixture
def web_factory():
    tmp = tempfile.TemporaryDirectory(prefix="yubin-test-")
    servers = []

    def make(extra_config="", auth_config=""):
        y = make_web(tmp.name, extra_config, auth_config)
        servers.append(y)
        return y

    yield make
    for y in servers:
        y.stop()
        y.drop_database()
    tmp.cleanup()


@pytest.fixture
def web(web_factory):
    return web_factory()


class Page(HTMLParser):
    """The parts of a page the tests look at: element ids' text, forms' hidden fields, the
    settings table rows, links, and whether an inline <svg> is present."""

    def __init__(self, html: str):
        super().__init__()
        self.html = html
        self.lang = None
        self.text_by_id = {}
        self.hidden = {}
        self.links = {}
        self.rows = []
        self.svg = False
        self.messages = []
        self._id_stack = []
        self._row = None
        self._cell = None
        self._kind = None
        self._msg = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "svg":
            self.svg = True
        if tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")
        if tag == "a" and "id" in a:
            self.links[a["id"]] = a.get("href")
        if "id" in a:
            self._id_stack.append([a["id"], tag, ""])
        if tag == "tr" and "data-kind" in a:
            self._row = []
            self._kind = a["data-kind"]
        if tag == "td" and self._row is not None:
            self._cell = ""
        if tag == "p" and a.get("class") in ("error", "notice"):
            self._msg = [a["class"], ""]

    def handle_endtag(self, tag):
        if self._id_stack and self._id_stack[-1][1] == tag:
            i, _, text = self._id_stack.pop()
            self.text_by_id[i] = text.strip()
        if tag == "td" and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            self.rows.append((self._kind, tuple(self._row)))
            self._row = None
        if tag == "p" and self._msg is not None:
            self.messages.append(tuple(self._msg))
            self._msg = None

    def handle_data(self, data):
        for entry in self._id_stack:
            entry[2] += data
        if self._cell is not None:
            self._cell += data
        if self._msg is not None:
            self._msg[1] += data


class Browser:
    """http.client with a cookie jar; each response's Set-Cookie headers are kept whole."""

    def __init__(self, server, lang=None):
        self.server = server
        self.jar = {}
        self.lang = lang
        self.host = f"{HOST}:{server.ports['https']}"

    def request(self, method, path, form=None, headers=None, tls=True):
        port = self.server.ports["https" if tls else "http"]
        if tls:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_tls(), timeout=30)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        h = {"Host": self.host}
        if self.jar:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        if self.lang:
            h["Accept-Language"] = self.lang
        body = None
        if form is not None:
            from urllib.parse import urlencode

            body = urlencode(form)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        h.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read().decode()
            self.set_cookies = r.headers.get_all("Set-Cookie") or []
            for c in self.set_cookies:
                name, _, rest = c.partition("=")
                value = rest.split(";", 1)[0]
                if "Max-Age=0" in c:
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = value
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def get(self, path="/account/", **kw):
        return self.request("GET", path, **kw)

    def post(self, path, form, **kw):
        return self.request("POST", path, form=form, **kw)

    def login(self, address=ALICE, password=PASSWORD):
        status, _, body = self.get()
        assert status == 200, body
        token = Page(body).hidden["form_token"]
        return self.post("/account/login", {"form_token": token, "address": address, "password": password})

    def settings(self):
        status, headers, body = self.get()
        assert status == 200, body
        return Page(body)


def logged_in(server, **kw) -> Browser:
    b = Browser(server, **kw)
    status, headers, _ = b.login()
    assert status == 303 and headers["location"] == "/account/", (status, headers)
    return b


def imap_ok(server, password) -> bool:
    """Whether IMAP LOGIN as alice with `password` succeeds (a banned client is refused at
    the greeting, which imaplib raises as an error too)."""
    try:
        m = imaplib.IMAP4_SSL("127.0.0.1", server.ports["imaps"], ssl_context=client_tls(), timeout=30)
    except imaplib.IMAP4.error:
        return False
    try:
        m.login(ALICE, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            m.logout()
        except Exception:
            pass


SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


def assert_secure(headers):
    for k, v in SECURITY_HEADERS.items():
        assert headers.get(k) == v, (k, headers)
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "unsafe-inline" not in csp, csp
    assert "frame-ancestors 'none'" in csp


def test_login_page_cookie_and_headers(web):
    b = Browser(web)
    status, headers, body = b.get()
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert_secure(headers)
    page = Page(body)
    assert page.lang == "en"
    assert re.fullmatch(r"[0-9a-f]{64}", page.hidden["form_token"])
    (login_cookie,) = b.set_cookies
    assert login_cookie.startswith("yubin_login=" + page.hidden["form_token"])
    for attr in ("Path=/account", "Secure", "HttpOnly", "SameSite=Strict"):
        assert attr in login_cookie.split("; "), login_cookie
    assert "<script" not in body
    # The stylesheet comes from the binary, with the same headers.
    status, headers, css = b.get("/account/style.css")
    assert status == 200 and headers["content-type"] == "text/css; charset=utf-8"
    assert "font" in css and "@import" not in css and "url(" not in css
    assert_secure(headers)
    # Unknown pages and wrong methods.
    assert b.get("/account/nope")[0] == 404
    status, headers, _ = b.get("/account/login")
    assert status == 405 and headers["allow"] == "POST"
    status, headers, _ = b.get("/account")
    assert status == 303 and headers["location"] == "/account/"


def test_plain_http_is_redirected_and_never_takes_a_password(web):
    b = Browser(web)
    for method, path in (("GET", "/account/"), ("POST", "/account/login"), ("GET", "/account/style.css")):
        status, headers, _ = b.request(method, path, tls=False, form={} if method == "POST" else None)
        assert status == 301, (method, path, status)
        assert headers["location"] == f"https://{HOST}:{web.ports['https']}{path}"
        assert_secure(headers)
    # curl follows it to the login page over HTTPS.
    port_http, port_https = web.ports["http"], web.ports["https"]
    res = subprocess.run(
        ["curl", "-sSk", "-L", "--max-time", "20", "--resolve", f"{HOST}:{port_http}:127.0.0.1",
         "--resolve", f"{HOST}:{port_https}:127.0.0.1", "-w", "\n%{http_code} %{url_effective}",
         f"http://{HOST}:{port_http}/account/"],
        capture_output=True, text=True, timeout=30,
    )
    body, _, last = res.stdout.rpartition("\n")
    assert last == f"200 https://{HOST}:{port_https}/account/", res.stdout[-300:]
    assert 'name="password"' in body


def test_login_failure_success_and_the_settings_table(web):
    b = Browser(web)
    status, _, body = b.login(password="wrong password")
    assert status == 200
    page = Page(body)
    assert ("error", "The mail address or the password is incorrect.") in page.messages
    assert "yubin_session" not in b.jar
    # The typed address is kept, escaped.
    assert 'value="alice@example.com"' in body
    status, headers, _ = b.login()
    assert status == 303
    session_cookie = [c for c in b.set_cookies if c.startswith("yubin_session=")][0]
    token = session_cookie.split(";")[0].split("=", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{64}", token), session_cookie
    for attr in ("Path=/account", "Secure", "HttpOnly", "SameSite=Strict"):
        assert attr in session_cookie.split("; "), session_cookie
    status, headers, body = b.get()
    assert status == 200
    assert_secure(headers)
    page = Page(body)
    assert page.text_by_id["signed-in"] == ALICE
    assert page.text_by_id["username"] == ALICE
    p = web.ports
    assert sorted(page.rows) == sorted([
        ("imap", (HOST, str(p["imaps"]), "SSL/TLS")),
        ("imap", (HOST, str(p["imap"]), "STARTTLS")),
        ("pop3", (HOST, str(p["pop3s"]), "SSL/TLS")),
        ("pop3", (HOST, str(p["pop3"]), "STARTTLS")),
        ("smtp", (HOST, str(p["submissions"]), "SSL/TLS")),
        ("smtp", (HOST, str(p["submission"]), "STARTTLS")),
    ])
    # Implicit TLS first in each group (RFC 8314 §3).
    assert page.rows[0] == ("imap", (HOST, str(p["imaps"]), "SSL/TLS"))
    # One-click profiles and the QR code (inline SVG, drawn by the server).
    apple = f"https://{HOST}:{p['https']}/apple/mobileconfig?email=alice%40example.com"
    assert page.links["apple-profile"] == apple
    assert page.links["thunderbird"] == f"https://{HOST}:{p['https']}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=alice%40example.com"
    assert page.svg and re.search(r'<svg role="img"[^>]*viewBox="[^"]+"', body)
    assert "<path" in body or "<rect" in body
    # The profile link works.
    status, headers, profile = b.get(apple.split(str(p["https"]), 1)[1])
    assert status == 200 and "<plist" in profile and ALICE in profile
    # The retention in force ([retention] defaults: never), with the choices offered.
    assert re.search(r'id="retention-now" data-days="never"', body)
    assert 'name="choice" value="default" checked' in body


def test_listeners_that_are_off_are_left_out(web_factory):
    tmp = tempfile.TemporaryDirectory(prefix="yubin-test-")
    y = Yubin(Path(tmp.name) / "s", extra_config='[retention]\npop3_expire_days = 7\n')
    y.ports.update(https=free_port(), http=None, pop3=None, pop3s=None, imap=None, submission=None)
    y.write_config()
    y.cli("domain", "add", "example.com")
    y.cli("user", "add", ALICE, "--password-stdin", stdin=PASSWORD + "\n")
    y.start()
    try:
        page = logged_in(y).settings()
        assert page.rows == [
            ("imap", (HOST, str(y.ports["imaps"]), "SSL/TLS")),
            ("smtp", (HOST, str(y.ports["submissions"]), "SSL/TLS")),
        ]
        assert 'data-days="7"' in page.html and "7 days after the download" in page.html
    finally:
        y.stop()
        tmp.cleanup()


def test_quota_after_a_delivery(web):
    web.cli("quota", "set", ALICE, "--storage", "1M", "--messages", "10")
    b = logged_in(web)
    body = b.settings().html
    assert 'class="storage" data-used="0" data-limit="1048576" data-percent="0"' in body
    assert 'class="messages" data-used="0" data-limit="10" data-percent="0"' in body
    msg = b"From: bob@example.com\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\n" + b"x" * 20000 + b"\r\n"
    with smtplib.SMTP("127.0.0.1", web.ports["smtp"], timeout=30) as s:
        assert s.sendmail("bob@example.com", [ALICE], msg) == {}
    # The stored size as IMAP's GETQUOTAROOT reports it (KiB, rounded up).
    m = imaplib.IMAP4_SSL("127.0.0.1", web.ports["imaps"], ssl_context=client_tls(), timeout=30)
    m.login(ALICE, PASSWORD)
    typ, data = m.getquotaroot("INBOX")
    m.logout()
    quota_line = [d for d in data[1] if b"STORAGE" in d][0].decode()
    kib = int(re.search(r"STORAGE (\d+) 1024", quota_line).group(1))
    body = b.settings().html
    used = int(re.search(r'class="storage" data-used="(\d+)" data-limit="1048576" data-percent="(\d+)"', body).group(1))
    assert used > 20000 and (used + 1023) // 1024 == kib, (used, quota_line)
    percent = int(re.search(r'class="storage"[^>]*data-percent="(\d+)"', body).group(1))
    assert percent == used * 100 // 1048576
    assert 'class="messages" data-used="1" data-limit="10" data-percent="10"' in body
    assert re.search(r'<progress max="10" value="1">', body)


def test_japanese_from_accept_language_and_the_switch(web):
    b = logged_in(web, lang="ja-JP,ja;q=0.9,en;q=0.5")
    page = b.settings()
    assert page.lang == "ja"
    for text in ("受信サーバー（IMAP）", "送信サーバー（SMTP）", "ポート番号", "暗号化方式", "ユーザー名", "サーバー名", "パスワードの変更"):
        assert text in page.html, text
    assert "Incoming" not in page.html
    # q-values: English preferred.
    assert Page(Browser(web, lang="ja;q=0.4, en;q=0.8").get()[2]).lang == "en"
    # The switch link sets a cookie that wins over the header.
    switch = re.search(r'href="(/account/lang\?to=en)"', page.html).group(1)
    status, headers, _ = b.get(switch)
    assert status == 303 and headers["location"] == "/account/"
    assert any(c.startswith("lang=en;") and "Path=/account" in c for c in b.set_cookies), b.set_cookies
    page = b.settings()
    assert page.lang == "en" and "Incoming mail server (IMAP)" in page.html
    b.get("/account/lang?to=ja")
    assert b.settings().lang == "ja"
    # curl with only the header: the login page in Japanese.
    port = web.ports["https"]
    res = subprocess.run(
        ["curl", "-sSk", "--max-time", "20", "--resolve", f"{HOST}:{port}:127.0.0.1",
         "-H", "Accept-Language: ja", f"https://{HOST}:{port}/account/"],
        capture_output=True, text=True, timeout=30,
    )
    assert '<html lang="ja">' in res.stdout and "メールアドレス" in res.stdout and "ログイン" in res.stdout


def test_csrf_tokens_and_origin(web):
    b = logged_in(web)
    csrf = b.settings().hidden["csrf"]
    assert re.fullmatch(r"[0-9a-f]{64}", csrf)
    form = {"current": PASSWORD, "new": NEW_PASSWORD, "new2": NEW_PASSWORD}
    # Without the token, with a wrong one, from another origin: 403, nothing changed.
    assert b.post("/account/password", form)[0] == 403
    assert b.post("/account/password", {**form, "csrf": "0" * 64})[0] == 403
    assert b.post("/account/password", {**form, "csrf": csrf}, headers={"Origin": "https://evil.example"})[0] == 403
    assert b.post("/account/password", {**form, "csrf": csrf}, headers={"Referer": "https://evil.example/x"})[0] == 403
    assert b.post("/account/logout", {})[0] == 403
    # Another session's token does not work in this one.
    other = logged_in(web)
    assert b.post("/account/password", {**form, "csrf": other.settings().hidden["csrf"]})[0] == 403
    assert imap_ok(web, PASSWORD)
    # The sign-in form's token must match its cookie.
    fresh = Browser(web)
    fresh.get()
    status, _, body = fresh.post("/account/login", {"form_token": "f" * 64, "address": ALICE, "password": PASSWORD})
    assert status == 403 and "yubin_session" not in fresh.jar
    # Still signed in; a correct token with our Origin (and `Origin: null`) goes through.
    status, _, _ = b.post("/account/logout", {"csrf": csrf}, headers={"Origin": "null"})
    assert status == 303


def test_password_change_then_imap_and_other_sessions(web):
    b = logged_in(web)
    other = logged_in(web)
    csrf = b.settings().hidden["csrf"]

    def change(current, new, new2=None):
        return b.post("/account/password", {"csrf": csrf, "current": current, "new": new, "new2": new2 or new},
                      headers={"Origin": f"https://{b.host}"})

    status, _, body = change(PASSWORD, NEW_PASSWORD, "something else")
    assert status == 400 and ("error", "The two new passwords differ.") in Page(body).messages
    status, _, body = change(PASSWORD, "short")
    assert status == 400 and "at least 10 characters" in body
    status, _, body = change(PASSWORD, "x" * 300)
    assert status == 400 and "at most 256 characters" in body
    status, _, body = change("not my password", NEW_PASSWORD)
    assert status == 403 and ("error", "The current password is incorrect.") in Page(body).messages
    assert imap_ok(web, PASSWORD)
    status, headers, _ = change(PASSWORD, NEW_PASSWORD)
    assert status == 303 and headers["location"] == "/account/?done=password"
    status, _, body = b.get("/account/?done=password")
    assert status == 200 and any(k == "notice" and "has been changed" in t for k, t in Page(body).messages)
    # Over IMAP: the old password fails, the new one works (argon2 and the SCRAM credentials).
    assert not imap_ok(web, PASSWORD)
    assert imap_ok(web, NEW_PASSWORD)
    # The other session was ended; this one lives on.
    status, _, body = other.get()
    assert 'name="password"' in body and "Your session has ended" in body
    assert b.settings().text_by_id["signed-in"] == ALICE
    # The sign-in takes the new password only.
    assert Browser(web).login(password=PASSWORD)[0] == 200
    assert Browser(web).login(password=NEW_PASSWORD)[0] == 303


def test_logout_invalidates_the_cookie(web):
    b = logged_in(web)
    token = b.jar["yubin_session"]
    csrf = b.settings().hidden["csrf"]
    status, headers, _ = b.post("/account/logout", {"csrf": csrf})
    assert status == 303
    assert any(c.startswith("yubin_session=;") and "Max-Age=0" in c for c in b.set_cookies), b.set_cookies
    # The old cookie, replayed, is no session any more.
    replay = Browser(web)
    replay.jar["yubin_session"] = token
    status, _, body = replay.get()
    assert status == 200 and 'name="form_token"' in body and "Your session has ended" in body
    assert replay.post("/account/password", {"csrf": csrf, "current": PASSWORD, "new": NEW_PASSWORD, "new2": NEW_PASSWORD})[0] == 403
    assert imap_ok(web, PASSWORD)


def test_sessions_expire_when_idle_and_at_their_lifetime(web_factory):
    server = web_factory(extra_config="[account_pages]\nsession_idle_secs = 2\nsession_lifetime_secs = 5\n")
    b = logged_in(server)
    # Requests every second keep it alive past the idle time...
    for _ in range(3):
        time.sleep(1)
        assert b.settings().text_by_id["signed-in"] == ALICE
    time.sleep(2.5)
    status, _, body = b.get()
    assert "Your session has ended" in body and 'name="form_token"' in body
    # ...but not past the lifetime.
    b = logged_in(server)
    start = time.monotonic()
    while time.monotonic() - start < 4.5:
        assert "signed-in" in b.settings().text_by_id
        time.sleep(1)
    time.sleep(max(0.0, 5.2 - (time.monotonic() - start)))
    assert "Your session has ended" in b.get()[2]


def test_failed_logins_are_counted_and_banned_like_imap(web_factory):
    server = web_factory(
        extra_config="[limits]\ntrusted_networks = []\n",
        auth_config="ban_after_burst = 5\nburst_window_secs = 300\nburst_ban_secs = 60\nban_refresh_secs = 1\n",
    )
    took = []
    for i in range(5):
        b = Browser(server)
        start = time.monotonic()
        status, _, body = b.login(password=f"wrong{i}")
        took.append(time.monotonic() - start)
        assert status in (200, 429), (i, status)
        if status == 200:
            assert "password is incorrect" in body
    # Each failure was answered after the guard's delay (failure_delay_ms = 100).
    assert min(took) >= 0.1, took
    bans = [l for l in server.logs().splitlines() if "event=ban " in l]
    assert len(bans) == 1 and "protocol=web" in bans[0], bans
    # Banned: the correct password is refused, on the web and over IMAP.
    conn = http.client.HTTPSConnection("127.0.0.1", server.ports["https"], context=client_tls(), timeout=30)
    conn.request("GET", "/account/", headers={"Host": HOST})
    r = conn.getresponse()
    assert r.status == 403 and b"Too many failed logins" in r.read()
    conn.close()
    assert not imap_ok(server, PASSWORD)
    failures = [l for l in server.logs().splitlines() if "event=auth_failure" in l and 'protocol="web"' in l]
    assert len(failures) == 5, failures


def pop3_capa(server, user=None):
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    try:
        if user:
            p.user(user)
            p.pass_(PASSWORD)
        return p.capa()["EXPIRE"]
    finally:
        p.quit()


def test_pop3_retention_choice(web):
    b = logged_in(web)
    page = b.settings()
    csrf = page.hidden["csrf"]
    assert pop3_capa(web) == ["NEVER"] and pop3_capa(web, ALICE) == ["NEVER"]
    # Only the offered choices ([account_pages] pop3_expire_choices: never, 0, 7, 30).
    for bad in ("5", "", "-1", "7 "):
        status, _, body = b.post("/account/retention", {"csrf": csrf, "choice": bad})
        assert status == 400 and "not offered" in body, bad
    assert b.post("/account/retention", {"choice": "7"})[0] == 403
    status, headers, _ = b.post("/account/retention", {"csrf": csrf, "choice": "7"})
    assert status == 303 and headers["location"] == "/account/?done=retention"
    status, _, body = b.get("/account/?done=retention")
    assert 'id="retention-now" data-days="7"' in body and 'value="7" checked' in body
    assert "applies from the next POP3 connection" in body
    # The next POP3 session announces it (RFC 2449 §6.7): the shortest period with USER
    # before login, alice's own after, bob's unchanged.
    assert pop3_capa(web) == ["7", "USER"]
    assert pop3_capa(web, ALICE) == ["7"]
    assert pop3_capa(web, "bob@example.com") == ["NEVER"]
    # Stored: a restart keeps it.
    web.stop()
    web.start()
    assert pop3_capa(web, ALICE) == ["7"]
    # The retention pass applies it: retrieved 8 days ago, alice's copy goes, bob's stays.
    for rcpt in (ALICE, "bob@example.com"):
        with smtplib.SMTP("127.0.0.1", web.ports["smtp"], timeout=30) as s:
            s.sendmail("carol@example.net", [rcpt], b"Subject: r\r\n\r\nbody\r\n")
        p = poplib.POP3("127.0.0.1", web.ports["pop3"], timeout=10)
        p.user(rcpt)
        p.pass_(PASSWORD)
        p.retr(1)
        p.quit()
    env = {**os.environ, "YUBIN_RETENTION_CLOCK_OFFSET": str(8 * 86400)}
    from conftest import yubin_binary

    res = subprocess.run([yubin_binary(), "--config", str(web.config), "retention", "run"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    assert "alice@example.com\tINBOX\tpop3\tremoved 1 (expunge)" in res.stdout, res.stdout
    assert "bob@example.com" not in res.stdout
    # Back to the server's setting.
    b = logged_in(web)
    csrf = b.settings().hidden["csrf"]
    assert b.post("/account/retention", {"csrf": csrf, "choice": "default"})[0] == 303
    body = b.settings().html
    assert 'id="retention-now" data-days="never"' in body and 'value="default" checked' in body
    assert pop3_capa(web, ALICE) == ["NEVER"]
    assert pop3_capa(web) == ["NEVER"]


def test_password_changes_are_rate_limited(web_factory):
    server = web_factory(extra_config="[account_pages]\npassword_changes_per_hour = 2\n")
    b = logged_in(server)
    csrf = b.settings().hidden["csrf"]
    form = {"csrf": csrf, "current": "wrong current", "new": NEW_PASSWORD, "new2": NEW_PASSWORD}
    assert b.post("/account/password", form)[0] == 403
    assert b.post("/account/password", form)[0] == 403
    # The third attempt within the hour is refused before any password check, even with
    # the right current password.
    status, _, body = b.post("/account/password", {**form, "current": PASSWORD})
    assert status == 429 and "changed too often" in body
    assert imap_ok(server, PASSWORD) and not imap_ok(server, NEW_PASSWORD)
    # Each wrong current password was a failed login for the guard.
    failures = [l for l in server.logs().splitlines() if "event=auth_failure" in l and 'protocol="web"' in l]
    assert len(failures) == 2, failures

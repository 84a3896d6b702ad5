"""The account pages and the admin console driven in a real browser: Debian's headless Chromium
through WebDriver (Debian's chromium-driver and Python's selenium), against the real binary
over HTTPS with its self-signed certificate. Signs in, reads the settings table, switches to
Japanese, downloads the Apple profile, creates a user on the console, watches the deliveries
chart change after mail, bans and lifts an address — each checked from the DOM and then from
another protocol or the CLI. Every page visited is saved as a PNG under $YUBIN_SCREENSHOT_DIR
(default target/screenshots/), which CI keeps as an artifact.

Skipped when chromium, chromedriver or selenium is missing (.ci/run installs them)."""

import base64
import imaplib
import os
import plistlib
import shutil
import smtplib
import tempfile
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, ROOT, client_tls
from test_account_pages import ALICE, HOST, web, web_factory  # noqa: F401 (fixtures)
from test_admin_console import BOB, console, console_factory, imap_login  # noqa: F401 (fixtures)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not CHROMIUM or not CHROMEDRIVER:
    pytest.skip("chromium and chromedriver are needed (apt-get install chromium chromium-driver)", allow_module_level=True)

# The flags of issue 11: no sandbox (CI runs as root), nothing fetched in the background, and
# the server's self-signed certificate accepted.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--ignore-certificate-errors",
    "--disable-dev-shm-usage",
    "--window-size=1000,900",
    # The pages are served for mail.example.com; the browser reaches it on loopback.
    f"--host-resolver-rules=MAP {HOST} 127.0.0.1",
]
WIDTH = 1000
SCREENSHOT_DIR = Path(os.environ.get("YUBIN_SCREENSHOT_DIR") or ROOT / "target" / "screenshots")


def replaced(page):
    """A wait condition: the document `page` belonged to is gone. Selenium's staleness_of
    only knows the stale-element error; Chrome may instead answer "Node with given id does not
    belong to the document" while the next page replaces this one, which means the same."""

    def gone(_driver):
        try:
            page.is_enabled()
        except WebDriverException:
            return True
        return False

    return gone


class Chromium:
    """One headless Chromium with a fresh profile directory, and a screenshot helper."""

    def __init__(self):
        self.profile = tempfile.TemporaryDirectory(prefix="yubin-chromium-")
        self.downloads = Path(self.profile.name) / "downloads"
        self.downloads.mkdir()
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for f in FLAGS:
            opts.add_argument(f)
        opts.add_argument(f"--user-data-dir={self.profile.name}/profile")
        opts.accept_insecure_certs = True
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        self.driver.set_page_load_timeout(30)
        # Downloads land in our directory without a prompt.
        self.driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(self.downloads)}
        )

    def close(self):
        try:
            self.driver.quit()
        finally:
            self.profile.cleanup()

    def go(self, server, path):
        self.driver.get(f"https://{HOST}:{server.ports['https']}{path}")

    def path(self):
        url = self.driver.current_url
        return "/" + url.split("/", 3)[3]

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self):
        return self.find("body").text

    def form(self, action, **fields):
        """The console form posting `action` (with those hidden field values, if given)."""
        cond = "".join(f" and input[@name='{k}' and @value='{v}']" for k, v in fields.items())
        return self.driver.find_element(By.XPATH, f"//form[input[@name='action' and @value='{action}']{cond}]")

    def click(self, element):
        """Click a link or submit button and wait until the next page has replaced this one
        (a click returns before the navigation it starts has finished)."""
        page = self.find("html")
        element.click()
        WebDriverWait(self.driver, 30).until(replaced(page))

    def submit(self, form):
        self.click(form.find_element(By.CSS_SELECTOR, "button[type=submit]"))

    def screenshot(self, name):
        """The whole page (not only the viewport) as PNG, WIDTH CSS pixels wide."""
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        height = int(metrics["cssContentSize"]["height"]) + 1
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True,
             "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1}},
        )
        data = base64.b64decode(shot["data"])
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        (SCREENSHOT_DIR / f"{name}.png").write_bytes(data)


@pytest.fixture
def browser():
    b = Chromium()
    yield b
    b.close()


def sign_in(b, address, password):
    b.find("#address").send_keys(address)
    b.find("#password").send_keys(password)
    b.submit(b.find("form.login"))


def wait_for(cond, what, timeout=15):
    deadline = time.time() + timeout
    while True:
        value = cond()
        if value:
            return value
        assert time.time() < deadline, what
        time.sleep(0.2)


# The standard ports, told to clients as if a NAT mapped them to the test's random ones
# (`[listen.advertised]`): the settings table (and the screenshots in docs/) show these.
ADVERTISED = {"imaps": 993, "imap": 143, "pop3s": 995, "pop3": 110, "submissions": 465, "submission": 587}


def test_account_pages_in_chromium(web_factory, browser):
    b = browser
    web = web_factory("[listen.advertised]\n" + "".join(f"{k} = {v}\n" for k, v in ADVERTISED.items()))
    b.go(web, "/account/")
    assert b.find("html").get_attribute("lang") == "en"
    b.screenshot("account-login")
    # A wrong password: the error on the sign-in page, no session.
    sign_in(b, ALICE, "wrong password")
    assert "The mail address or the password is incorrect." in b.text()
    assert b.driver.get_cookie("yubin_session") is None
    b.screenshot("account-login-failed")
    b.find("#address").clear()
    sign_in(b, ALICE, PASSWORD)
    assert b.path() == "/account/"
    assert b.find("#signed-in").text == ALICE
    # The settings table as the browser renders it: every listener's host, advertised port
    # and security.
    p = ADVERTISED
    rows = sorted(
        (r.get_attribute("data-kind"), tuple(td.text for td in r.find_elements(By.TAG_NAME, "td")))
        for r in b.find_all("tr[data-kind]")
    )
    assert rows == sorted([
        ("imap", (HOST, str(p["imaps"]), "SSL/TLS")),
        ("imap", (HOST, str(p["imap"]), "STARTTLS")),
        ("pop3", (HOST, str(p["pop3s"]), "SSL/TLS")),
        ("pop3", (HOST, str(p["pop3"]), "STARTTLS")),
        ("smtp", (HOST, str(p["submissions"]), "SSL/TLS")),
        ("smtp", (HOST, str(p["submission"]), "STARTTLS")),
    ]), rows
    assert "Incoming mail server (IMAP)" in b.text()
    # The QR code is drawn (an inline SVG with a size).
    qr = b.find("svg[role=img]")
    assert qr.size["width"] > 50 and qr.size["height"] > 50, qr.size
    b.screenshot("account-settings-en")
    # Switch to Japanese with the header's link; the choice sticks across pages.
    b.click(b.find("a.lang"))
    assert b.find("html").get_attribute("lang") == "ja"
    assert "受信サーバー（IMAP）" in b.text()
    assert "Incoming mail server" not in b.text()
    b.go(web, "/account/")
    assert b.find("html").get_attribute("lang") == "ja"
    b.screenshot("account-settings-ja")
    # Download the Apple profile by following its link; parse what landed on disk.
    link = b.find("#apple-profile")
    assert link.get_attribute("href") == f"https://{HOST}:{web.ports['https']}/apple/mobileconfig?email=alice%40example.com"
    link.click()
    files = wait_for(lambda: [f for f in b.downloads.iterdir() if not f.name.endswith(".crdownload")], "download")
    assert len(files) == 1 and files[0].suffix == ".mobileconfig", files
    profile = plistlib.loads(files[0].read_bytes())
    assert profile["PayloadType"] == "Configuration"
    (mail,) = [x for x in profile["PayloadContent"] if x["PayloadType"] == "com.apple.mail.managed"]
    assert mail["EmailAddress"] == ALICE
    assert mail["IncomingMailServerHostName"] == HOST
    assert mail["IncomingMailServerPortNumber"] == p["imaps"]
    assert mail["OutgoingMailServerHostName"] == HOST
    assert mail["OutgoingMailServerPortNumber"] == p["submissions"]
    # Still on the settings page (a download does not navigate away).
    assert b.path() == "/account/"


def chart_values(b, cls):
    return [int(r.get_attribute("data-value")) for r in b.find_all(f"svg rect.{cls}[data-value]")]


def bar_heights(b, cls):
    return [float(r.get_attribute("height")) for r in b.find_all(f"svg rect.{cls}[data-value]")]


def test_admin_console_in_chromium(console, browser):
    b = browser
    b.go(console, "/admin/")
    b.screenshot("admin-login")
    sign_in(b, "alice@example.com", PASSWORD)
    assert b.path() == "/admin/"
    # The overview before any mail: 48 hourly bars per series, all empty.
    assert chart_values(b, "deliveries") == [0] * 48
    assert max(bar_heights(b, "deliveries")) == 0
    b.screenshot("admin-overview-before-mail")
    # Create a user with the form on the users page.
    b.click(b.find("nav a[href='/admin/users']"))
    assert b.path() == "/admin/users"
    form = b.form("user_add")
    form.find_element(By.NAME, "address").send_keys("carol@example.com")
    form.find_element(By.NAME, "password").send_keys("carol's secret 1")
    b.submit(form)
    assert "Done: yubin user add carol@example.com" in b.text(), b.text()
    users = [r.find_element(By.TAG_NAME, "td").text for r in b.find_all("table#users tbody tr")]
    assert users == ["alice@example.com", "bob@example.com", "carol@example.com"], users
    b.screenshot("admin-users")
    assert "carol@example.com" in console.cli("user", "list").stdout.split()
    assert imap_login(console, "carol@example.com", "carol's secret 1")
    # Two messages over SMTP, then the deliveries chart shows them in the current hour.
    with smtplib.SMTP("127.0.0.1", console.ports["smtp"], timeout=30) as s:
        for i in range(2):
            assert s.sendmail("someone@example.net", [BOB], f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode()) == {}
        # And one relay attempt, refused (RFC 5321 §3.6.2), for the refusals' series.
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("someone@example.net", ["x@elsewhere.test"], b"Subject: r\r\n\r\nbody\r\n")
    # A failed login, for the failures chart.
    assert not imap_login(console, BOB, "not the password")

    def delivered():
        b.go(console, "/admin/")
        values = chart_values(b, "deliveries")
        return values if sum(values) == 2 and sum(chart_values(b, "rejections")) == 1 else None

    values = wait_for(delivered, "2 deliveries and 1 refusal on the chart")
    assert len(values) == 48 and values[-1] == 2, values
    assert chart_values(b, "rejections")[-1] == 1
    assert chart_values(b, "failures") == [1]
    heights = bar_heights(b, "deliveries")
    assert heights[-1] > 0 and heights[:-1] == [0] * 47, heights
    # The bar is drawn: the browser gives it a rendered height.
    last = b.find_all("svg rect.deliveries[data-value]")[-1]
    assert last.size["height"] > 0
    b.screenshot("admin-overview")
    # Ban an address with the form, see it in the table and in `yubin ban list`, then lift it.
    b.click(b.find("nav a[href='/admin/bans']"))
    form = b.form("ban_add")
    form.find_element(By.NAME, "ip").send_keys("198.51.100.9")
    form.find_element(By.NAME, "duration").send_keys("2h")
    b.submit(form)
    bans = [r.find_elements(By.TAG_NAME, "td") for r in b.find_all("table#bans tbody tr")]
    assert [(r[0].text, r[3].text) for r in bans] == [("198.51.100.9", "manual")], b.text()
    assert "198.51.100.9" in console.cli("ban", "list").stdout
    b.screenshot("admin-bans")
    b.submit(b.form("ban_del", ip="198.51.100.9"))
    assert b.find_all("table#bans tbody tr") == []
    assert "198.51.100.9" not in console.cli("ban", "list").stdout
    b.screenshot("admin-bans-lifted")

"""`[server] user`: started as root, yubin binds its ports, then runs as that user. Checked from
outside: /proc/PID/status shows the unprivileged ids (real, effective, saved, filesystem) and no
supplementary groups but its own, and mail is still delivered and read back. A data directory
owned by someone else stops the start with a message that says how to fix it. Needs root
(skipped otherwise); creates the system user `yubin-test` when it is missing."""

import os
import poplib
import pwd
import shutil
import smtplib
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import PASSWORD, Yubin, client_tls, yubin_binary

USER = "yubin-test"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the privilege drop needs root")


@pytest.fixture(scope="module")
def test_user():
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        pytest.skip("useradd is not available")
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "--user-group", USER],
        check=True,
    )
    return pwd.getpwnam(USER)


@pytest.fixture
def workdir():
    d = tempfile.TemporaryDirectory(prefix="yubin-test-")
    # The unprivileged server must be able to reach its data directory.
    os.chmod(d.name, 0o755)
    yield Path(d.name)
    d.cleanup()


def ids(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(f"no {field} line")


def chown_tree(path, uid, gid):
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid)


def test_runs_as_the_configured_user_and_still_delivers(test_user, workdir):
    y = Yubin(workdir / "s0", extra_config=f'[server]\nuser = "{USER}"\n')
    os.chmod(y.dir, 0o755)
    y.cli("domain", "add", "example.com")
    y.cli("user", "add", "alice@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    # The admin commands ran as root: the files they made are handed over, as the README's
    # install steps do with `chown -R`.
    chown_tree(y.data, test_user.pw_uid, test_user.pw_gid)
    y.start()
    try:
        # The ports listen from before the switch: the first answer comes after it.
        with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=10) as s:
            refused = s.sendmail("carol@sender.test", ["alice@example.com"], "Subject: hi\r\n\r\nstill here\r\n")
            assert refused == {}
        p = poplib.POP3_SSL("127.0.0.1", y.ports["pop3s"], context=client_tls(), timeout=10)
        p.user("alice@example.com")
        p.pass_(PASSWORD)
        assert p.stat()[0] == 1
        assert b"still here" in b"\r\n".join(p.retr(1)[1])
        p.quit()
        pid = y.proc.pid
        uid, gid = test_user.pw_uid, test_user.pw_gid
        assert ids(pid, "Uid") == [uid] * 4
        assert ids(pid, "Gid") == [gid] * 4
        assert ids(pid, "Groups") == [gid]
        # Every thread (tokio's workers) switched, not only the main one.
        for task in Path(f"/proc/{pid}/task").iterdir():
            assert ids(f"{pid}/task/{task.name}", "Uid") == [uid] * 4, task
        assert "dropped root privileges" in y.logs()

        # What the server wrote belongs to the user.
        for root, dirs, files in os.walk(y.data):
            for name in dirs + files:
                st = os.lstat(os.path.join(root, name))
                assert st.st_uid == uid, os.path.join(root, name)
    finally:
        y.stop()


def test_a_data_directory_owned_by_another_user_stops_the_start(test_user, workdir):
    y = Yubin(workdir / "s0", extra_config=f'[server]\nuser = "{USER}"\n')
    os.chmod(y.dir, 0o755)
    y.data.mkdir()
    res = subprocess.run(
        [yubin_binary(), "--config", str(y.config), "serve"],
        capture_output=True, text=True, timeout=30,
    )
    assert res.returncode != 0
    assert f"is owned by uid 0, not by [server] user {USER}" in res.stderr, res.stderr
    assert f"chown -R {USER}:" in res.stderr


def test_a_missing_data_directory_is_created_for_the_user(test_user, workdir):
    y = Yubin(workdir / "s0", extra_config=f'[server]\nuser = "{USER}"\n')
    os.chmod(y.dir, 0o755)
    assert not y.data.exists()
    y.start()
    try:
        with smtplib.SMTP("127.0.0.1", y.ports["smtp"], timeout=10) as s:
            assert s.noop()[0] == 250
        assert y.data.stat().st_uid == test_user.pw_uid
        assert ids(y.proc.pid, "Uid")[0] == test_user.pw_uid
    finally:
        y.stop()

"""Start, stop, CLI and configuration: the product interface."""

import signal
import socket
import subprocess
import time

from conftest import PASSWORD, Transcript, Yubin, yubin_binary


def test_cli_errors_are_clear_and_nonzero(server):
    res = server.cli("user", "add", "x@unknown.test", "--password-stdin", stdin="pw\n", check=False)
    assert res.returncode != 0 and "unknown.test" in res.stderr
    res = server.cli("user", "add", "alice@example.com", "--password-stdin", stdin="pw\n", check=False)
    assert res.returncode != 0 and res.stderr.strip()
    res = server.cli("user", "add", "not-an-address", "--password-stdin", stdin="pw\n", check=False)
    assert res.returncode != 0 and res.stderr.strip()
    res = server.cli("domain", "del", "example.com", check=False)
    assert res.returncode != 0


def test_generated_password_works_while_server_runs(server):
    res = server.cli("user", "add", "carol@example.com")
    password = res.stdout.strip().split()[-1]
    assert len(password) >= 16
    import poplib
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    p.user("carol@example.com")
    p.pass_(password)
    p.quit()
    server.cli("user", "passwd", "carol@example.com", "--password-stdin", stdin="new-pass-123\n")
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    p.user("carol@example.com")
    p.pass_("new-pass-123")
    p.quit()
    server.cli("user", "del", "carol@example.com")
    assert "carol@example.com" not in server.cli("user", "list").stdout


def test_sigterm_sends_shutdown_replies(server):
    smtp = Transcript(server.connect("smtp"))
    smtp.smtp_reply()
    pop = Transcript(server.connect("pop3"))
    pop.line()
    time.sleep(0.2)
    server.proc.send_signal(signal.SIGTERM)
    assert smtp.smtp_reply().startswith(b"421")
    assert pop.line().startswith(b"-ERR")
    assert server.proc.wait(timeout=20) == 0
    server.proc = None
    server.log.close()


def test_busy_port_is_a_one_line_error(tmp_path):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    y = Yubin(tmp_path)
    y.ports["smtp"] = port
    y.write_config()
    res = subprocess.run([yubin_binary(), "--config", str(y.config), "serve"], capture_output=True, text=True, timeout=60)
    blocker.close()
    assert res.returncode != 0
    assert f"127.0.0.1:{port}" in res.stderr


def test_empty_listener_list_disables_it_and_first_start_explains(tmp_path):
    y = Yubin(tmp_path)
    imap_port = y.ports["imap"]
    y.ports["imap"] = None
    y.write_config()
    y.start()
    try:
        try:
            socket.create_connection(("127.0.0.1", imap_port), timeout=2).close()
            raise AssertionError("the disabled imap listener accepted a connection")
        except ConnectionRefusedError:
            pass
        assert Transcript(y.connect("smtp")).smtp_reply().startswith(b"220")
        # No accounts yet: the log says how to add one.
        assert "yubin user add" in y.logs()
    finally:
        assert y.stop() == 0


def test_example_config_is_valid(tmp_path):
    """yubin.example.toml documents every key; it must load as it is (data_dir moved to a temp dir)."""
    import re
    from conftest import ROOT
    example = (ROOT / "yubin.example.toml").read_text()
    for table in ("[listen]", "[tls]", "[limits]", "[auth]"):
        assert table in example
    config = tmp_path / "example.toml"
    config.write_text(re.sub(r'(?m)^data_dir\s*=.*$', f'data_dir = "{tmp_path / "data"}"', example))
    res = subprocess.run([yubin_binary(), "--config", str(config), "domain", "list"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_user_can_log_in_after_restart(server):
    server.stop()
    server.start()
    import poplib
    p = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=10)
    p.user("bob@example.com")
    p.pass_(PASSWORD)
    p.quit()


def test_second_server_on_the_same_data_dir_shares_it_without_sweeping(server, tmp_path):
    """Two servers may share a data directory, but only one that starts alone sweeps crash
    leftovers: the second would take the first one's blobs in flight for leftovers."""
    # A leftover the first server's start-up sweep would have removed.
    orphan = server.data / "blobs" / "ab" / ("ab" + "0" * 62)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"not referenced")
    other = Yubin(tmp_path)
    other.data = server.data
    other.write_config()
    other.start()
    try:
        assert "the crash sweep is left to a server that starts alone" in other.logs()
        assert orphan.exists()
        # Both serve the same accounts.
        for s in (server, other):
            assert Transcript(s.connect("smtp")).smtp_reply().startswith(b"220")
        import poplib
        p = poplib.POP3("127.0.0.1", other.ports["pop3"], timeout=10)
        p.user("bob@example.com")
        p.pass_(PASSWORD)
        p.quit()
    finally:
        other.stop()
    # Alone again after a restart: the first server sweeps.
    server.stop()
    server.start()
    assert not orphan.exists()

//! The admin commands, run as a child process against a temporary data directory.

mod common;

use common::{BIN, Env};
use std::process::Command;

#[test]
fn version_and_help() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("yubin "));
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    for word in ["serve", "domain", "user", "alias", "--config"] {
        assert!(help.contains(word), "{help}");
    }
    let out = Command::new(BIN)
        .args(["user", "add", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--password-stdin"));
}

#[test]
fn domains_add_list_del() {
    let env = Env::new("");
    assert_eq!(env.ok(&["domain", "list"]), "");
    assert!(
        env.ok(&["domain", "add", "Example.COM"])
            .contains("example.com")
    );
    env.ok(&["domain", "add", "example.org"]);
    let err = env.fails(&["domain", "add", "example.com"], "");
    assert!(err.contains("already exists"), "{err}");
    let list = env.ok(&["domain", "list"]);
    let mut domains: Vec<&str> = list.lines().collect();
    domains.sort();
    assert_eq!(domains, ["example.com", "example.org"]);
    env.ok(&["domain", "del", "example.org"]);
    assert_eq!(env.ok(&["domain", "list"]), "example.com\n");
    let err = env.fails(&["domain", "del", "example.org"], "");
    assert!(err.contains("no such domain"), "{err}");
    let err = env.fails(&["domain", "add", "not a domain"], "");
    assert!(err.contains("not a valid domain"), "{err}");
}

#[test]
fn users_add_passwd_del() {
    let env = Env::new("");
    env.ok(&["domain", "add", "example.com"]);

    // Generated password: printed once, 20 characters.
    let out = env.ok(&["user", "add", "Alice@example.com"]);
    let pw = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password in {out:?}"));
    assert_eq!(pw.len(), 20);

    // Password from stdin: not printed.
    let out = env.ok_with_stdin(
        &["user", "add", "bob@example.com", "--password-stdin"],
        "hunter2 x\n",
    );
    assert!(!out.contains("password"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");

    let err = env.fails(
        &["user", "add", "carol@example.com", "--password-stdin"],
        "\n",
    );
    assert!(err.contains("empty password"), "{err}");

    let err = env.fails(&["user", "add", "alice@example.com"], "");
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err}");

    let err = env.fails(&["user", "add", "dave@unknown.example"], "");
    assert!(err.contains("yubin domain add unknown.example"), "{err}");

    let err = env.fails(&["user", "add", "no-at-sign"], "");
    assert!(err.contains("not a valid address"), "{err}");

    let list = env.ok(&["user", "list"]);
    let mut users: Vec<&str> = list.lines().collect();
    users.sort();
    assert_eq!(users, ["alice@example.com", "bob@example.com"]);

    let out = env.ok_with_stdin(
        &["user", "passwd", "bob@example.com", "--password-stdin"],
        "new one\n",
    );
    assert!(out.contains("bob@example.com"), "{out}");
    let out = env.ok(&["user", "passwd", "alice@example.com"]);
    assert!(out.contains("password: "), "{out}");
    let err = env.fails(
        &["user", "passwd", "nobody@example.com", "--password-stdin"],
        "x\n",
    );
    assert!(err.contains("no such user"), "{err}");

    // A domain with users cannot be deleted.
    let err = env.fails(&["domain", "del", "example.com"], "");
    assert!(err.contains("user"), "{err}");
    assert_eq!(env.ok(&["domain", "list"]), "example.com\n");

    env.ok(&["user", "del", "bob@example.com"]);
    assert_eq!(env.ok(&["user", "list"]), "alice@example.com\n");
    let err = env.fails(&["user", "del", "bob@example.com"], "");
    assert!(err.contains("no such user"), "{err}");

    env.ok(&["user", "del", "alice@example.com"]);
    env.ok(&["domain", "del", "example.com"]);
    assert_eq!(env.ok(&["domain", "list"]), "");
}

#[test]
fn aliases_add_list_del() {
    let env = Env::new("");
    env.ok(&["domain", "add", "example.com"]);
    env.ok_with_stdin(
        &["user", "add", "alice@example.com", "--password-stdin"],
        "pw\n",
    );
    env.ok_with_stdin(
        &["user", "add", "bob@example.com", "--password-stdin"],
        "pw\n",
    );

    env.ok(&[
        "alias",
        "add",
        "Postmaster@example.com",
        "alice@example.com",
        "bob@example.com",
    ]);
    env.ok(&["alias", "add", "@example.com", "bob@example.com"]);
    let list = env.ok(&["alias", "list"]);
    assert!(
        list.lines()
            .any(|l| l == "postmaster@example.com -> alice@example.com, bob@example.com"),
        "{list}"
    );
    assert!(
        list.lines().any(|l| l == "@example.com -> bob@example.com"),
        "{list}"
    );

    let err = env.fails(
        &["alias", "add", "info@example.com", "ghost@example.com"],
        "",
    );
    assert!(err.contains("not a local user"), "{err}");
    let err = env.fails(
        &["alias", "add", "info@other.example", "alice@example.com"],
        "",
    );
    assert!(err.contains("yubin domain add other.example"), "{err}");
    let err = env.fails(
        &["alias", "add", "alice@example.com", "bob@example.com"],
        "",
    );
    assert!(err.contains("is a user"), "{err}");

    env.ok(&["alias", "del", "postmaster@example.com"]);
    let list = env.ok(&["alias", "list"]);
    assert_eq!(list, "@example.com -> bob@example.com\n");
    let err = env.fails(&["alias", "del", "postmaster@example.com"], "");
    assert!(err.contains("no such alias"), "{err}");
    env.ok(&["alias", "del", "@example.com"]);
    assert_eq!(env.ok(&["alias", "list"]), "");
}

#[test]
fn config_errors_are_reported() {
    let env = Env::new("");
    let missing = env.dir.path().join("missing.toml");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&missing)
        .args(["domain", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));

    // The config file may also come from YUBIN_CONFIG.
    let out = Command::new(BIN)
        .env("YUBIN_CONFIG", &env.config)
        .args(["domain", "add", "env.example"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.ok(&["domain", "list"]), "env.example\n");

    let bad = Env::new("[limits]\nmax_conections = 5\n");
    let err = bad.fails(&["domain", "list"], "");
    assert!(err.contains("max_conections"), "{err}");
}

#[test]
fn bans_add_list_del() {
    let env = Env::new("");
    assert_eq!(env.ok(&["ban", "list"]), "no bans\n");
    let out = env.ok(&["ban", "add", "192.0.2.7", "--for", "2h"]);
    assert!(out.starts_with("banned 192.0.2.7 until 20"), "{out}");
    // An IPv6 address is banned by its /64; the default is one day.
    let out = env.ok(&["ban", "add", "2001:db8:1:2::99"]);
    assert!(out.starts_with("banned 2001:db8:1:2:: until "), "{out}");
    let list = env.ok(&["ban", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(lines[0].starts_with("192.0.2.7\tuntil "), "{list}");
    assert!(
        lines[0].contains("(1h59m left)\tmanual\tsince ") || lines[0].contains("(2h00m left)"),
        "{list}"
    );
    assert!(lines[1].starts_with("2001:db8:1:2::\tuntil "), "{list}");
    assert!(
        lines[1].contains("(23h59m left)") || lines[1].contains("(1d00h left)"),
        "{list}"
    );
    // A ban of a trusted address is stored, with a warning that it has no effect.
    let out = env.ok(&["ban", "add", "127.0.0.1"]);
    assert!(
        out.contains("warning: 127.0.0.1 is in [limits] trusted_networks"),
        "{out}"
    );
    assert_eq!(
        env.ok(&["ban", "del", "127.0.0.1"]),
        "lifted the ban of 127.0.0.1\n"
    );
    assert_eq!(
        env.ok(&["ban", "del", "2001:db8:1:2::1"]),
        "lifted the ban of 2001:db8:1:2::\n"
    );
    let err = env.fails(&["ban", "del", "2001:db8:1:2::1"], "");
    assert!(err.contains("2001:db8:1:2:: is not banned"), "{err}");
    let err = env.fails(&["ban", "add", "192.0.2.8", "--for", "3y"], "");
    assert!(err.contains("invalid duration"), "{err}");
    let err = env.fails(&["ban", "add", "not-an-ip"], "");
    assert!(err.contains("is not an IP address"), "{err}");
    assert!(env.ok(&["ban", "list"]).starts_with("192.0.2.7\t"));
}

/// `yubin check`: a fresh store is consistent (exit 0); a body file nothing references is
/// reported once it is older than `--grace` (exit 1), not before (a delivery in progress).
#[test]
fn check_reports_an_orphan_body_file() {
    let env = Env::new("");
    env.ok(&["domain", "add", "example.com"]);
    let out = env.ok(&["check"]);
    assert!(out.contains("no problems"), "{out}");
    let orphan = "cd".repeat(32);
    let path = env.data_dir().join("blobs/cd").join(&orphan);
    std::fs::write(&path, b"left over by a crash").unwrap();
    let out = env.ok(&["check"]);
    assert!(
        out.contains("no problems"),
        "young file, default grace: {out}"
    );
    let out = env.run(&["check", "--grace", "0"], "");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("body {orphan}: file without a row")),
        "{stdout}"
    );
    assert!(stdout.contains("1 problem"), "{stdout}");
}

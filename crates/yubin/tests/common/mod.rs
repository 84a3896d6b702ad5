//! Helpers for running the compiled `yubin` binary against a temporary data directory.

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_yubin");

/// A temporary data directory and a config file pointing at it.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Env {
    /// A config with every listener disabled plus `extra` TOML (listen lists, limits…).
    pub fn new(extra: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("yubin.toml");
        let data = dir.path().join("data");
        let text = format!(
            "hostname = \"mail.test\"\ndata_dir = \"{}\"\n{extra}\n",
            data.display()
        );
        fs::write(&config, text).unwrap();
        Env { dir, config }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&self.config).args(args);
        cmd.env_remove("YUBIN_CONFIG").env("RUST_LOG", "info");
        cmd
    }

    /// Runs `yubin --config FILE args…` with `stdin` as standard input.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with_stdin(args, "")
    }

    pub fn ok_with_stdin(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "yubin {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run(args, stdin);
        assert!(
            !out.status.success(),
            "yubin {args:?} should fail; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Starts `yubin serve` with stderr going to `serve.log` in the temp dir.
    pub fn serve(&self) -> Server {
        let log = self.dir.path().join("serve.log");
        let child = self
            .command(&["serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Server { child, log }
    }
}

/// A running server, killed when dropped (if it has not exited already).
pub struct Server {
    pub child: Child,
    pub log: PathBuf,
}

impl Server {
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1, never handed out twice by this process.
///
/// It comes from below the kernel's ephemeral range (32768-60999 on Linux): a port from
/// `bind(0)` is free again once probed, and any outgoing connection could take it as its source
/// port before the server binds it; ports under 32768 are only ever taken on purpose.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Each test binary starts at its own offset so consecutive runs do not reuse ports in TIME_WAIT.
    let seed = std::process::id().wrapping_mul(2_654_435_761) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (FIRST + (seed + n * 7) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {FIRST}..{}", FIRST + SPAN);
}

/// Connects to `addr`, retrying while the server starts.
pub fn connect(addr: SocketAddr, server: &mut Server) -> TcpStream {
    let start = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                return s;
            }
            Err(e) => {
                if let Some(status) = server.child.try_wait().unwrap() {
                    panic!("server exited with {status}: {}", server.log());
                }
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "cannot connect to {addr}: {e}; log: {}",
                    server.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Reads one CRLF line (lossy UTF-8), or what arrived before EOF.
pub fn read_line(r: &mut impl BufRead) -> String {
    let mut line = Vec::new();
    let _ = r.read_until(b'\n', &mut line);
    String::from_utf8_lossy(&line).into_owned()
}

/// Reads until EOF (or the read timeout), lossily.
pub fn read_rest(r: &mut impl Read) -> String {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn reader(s: TcpStream) -> BufReader<TcpStream> {
    BufReader::new(s)
}

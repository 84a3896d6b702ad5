//! POP3: command lines (RFC 1939 §3, RFC 2449, RFC 5034), and the response side's
//! dot-stuffing (§3) and TOP filter (§7).

use pop3_proto::{Command, DotStuffer, TopFilter};
use smtp_proto::DataScanner;

/// A command line parses without panicking, and a parsed command written out again parses
/// to the same command. The input as a message: TOP returns a prefix of it however it is
/// chunked, and the dot-stuffed form un-stuffs (with SMTP's DATA scanner, the same rule of
/// RFC 5321 §4.5.2) to the message with its line ends made CRLF.
pub fn pop3_command(data: &[u8]) {
    if let Ok(cmd) = Command::parse(data) {
        let line = canonical(&cmd);
        assert_eq!(
            Command::parse(line.as_bytes()).as_ref(),
            Ok(&cmd),
            "{line:?} does not parse back"
        );
    }
    let (knob, a, b) = crate::knob_split(data);
    top(u32::from(knob % 8), a, b);
    stuffing(a, b);
}

fn canonical(cmd: &Command) -> String {
    let opt = |n: &Option<u32>| n.map(|n| format!(" {n}")).unwrap_or_default();
    match cmd {
        Command::User(u) => format!("USER {u}\r\n"),
        Command::Pass(p) => format!("PASS {p}\r\n"),
        Command::Auth {
            mechanism,
            initial_response,
        } => {
            let mut s = "AUTH".to_string();
            for part in [mechanism, initial_response].into_iter().flatten() {
                s.push(' ');
                s.push_str(part);
            }
            s + "\r\n"
        }
        Command::Capa => "CAPA\r\n".into(),
        Command::Stls => "STLS\r\n".into(),
        Command::Stat => "STAT\r\n".into(),
        Command::List(n) => format!("LIST{}\r\n", opt(n)),
        Command::Retr(n) => format!("RETR {n}\r\n"),
        Command::Dele(n) => format!("DELE {n}\r\n"),
        Command::Noop => "NOOP\r\n".into(),
        Command::Rset => "RSET\r\n".into(),
        Command::Quit => "QUIT\r\n".into(),
        Command::Top { msg, lines } => format!("TOP {msg} {lines}\r\n"),
        Command::Uidl(n) => format!("UIDL{}\r\n", opt(n)),
    }
}

/// TOP n over a message in two chunks is a prefix of it, the same as over one chunk.
fn top(lines: u32, a: &[u8], b: &[u8]) {
    let mut split = TopFilter::new(lines);
    let mut out = split.feed(a).to_vec();
    if out.len() == a.len() {
        out.extend_from_slice(split.feed(b));
    }
    let whole: Vec<u8> = [a, b].concat();
    let mut one = TopFilter::new(lines);
    let once = one.feed(&whole);
    assert_eq!(out, once, "TOP depends on how the message was chunked");
    assert!(whole.starts_with(once));
}

/// Stuffed in two chunks, then un-stuffed: the message with bare LF made CRLF and a final
/// line end added.
fn stuffing(a: &[u8], b: &[u8]) {
    let mut stuffer = DotStuffer::new();
    let mut wire = Vec::new();
    stuffer.encode(a, &mut wire);
    stuffer.encode(b, &mut wire);
    stuffer.finish(&mut wire);
    let mut want = Vec::new();
    for &byte in a.iter().chain(b) {
        if byte == b'\n' && want.last() != Some(&b'\r') {
            want.push(b'\r');
        }
        want.push(byte);
    }
    if !want.is_empty() && !want.ends_with(b"\n") {
        if want.ends_with(b"\r") {
            want.push(b'\n');
        } else {
            want.extend_from_slice(b"\r\n");
        }
    }
    let mut scanner = DataScanner::new();
    let mut got = Vec::new();
    let p = scanner.feed(&wire, &mut got);
    assert!(
        p.done && p.consumed == wire.len(),
        "stuffed data ends early or never"
    );
    assert_eq!(got, want, "POP3 dot-stuffing does not round-trip");
}

//! SMTP: command lines (RFC 5321 §4.1), and a session's framing of a pipelined byte stream:
//! command lines, DATA's end-of-data scan with dot-unstuffing (§4.5.2), and BDAT chunks of
//! exactly the announced size (RFC 3030 §2).

use smtp_proto::{Command, DataScanner, dot_stuff, parse_command};

/// Longest command line the session reads (smtp-server's `max_line_length` default).
const MAX_LINE: usize = 4096;

/// One command line: the parse never panics, its error reply is one well-formed reply, and
/// a parsed command means the same with its verb in another case (RFC 5321 §2.4) and, for
/// commands with a canonical form, after being written out again.
pub fn smtp_command(data: &[u8]) {
    let parsed = parse_command(data);
    assert_eq!(parsed, parse_command(data), "parse is not deterministic");
    match parsed {
        Err(e) => check_reply(&e.reply().to_bytes()),
        Ok(cmd) => {
            let verb_end = data
                .iter()
                .position(|&b| b == b' ' || b == b'\t' || b == b'\r' || b == b'\n')
                .unwrap_or(data.len());
            let mut flipped = data.to_vec();
            for b in &mut flipped[..verb_end] {
                *b = if b.is_ascii_uppercase() {
                    b.to_ascii_lowercase()
                } else {
                    b.to_ascii_uppercase()
                };
            }
            assert_eq!(
                parse_command(&flipped).as_ref(),
                Ok(&cmd),
                "the verb's case changed the command"
            );
            if let Some(line) = canonical(&cmd) {
                assert_eq!(
                    parse_command(line.as_bytes()).as_ref(),
                    Ok(&cmd),
                    "{line:?} does not parse back"
                );
            }
        }
    }
}

/// The command written out again, for the commands whose value holds all they say.
fn canonical(cmd: &Command) -> Option<String> {
    Some(match cmd {
        Command::Ehlo(h) => format!("EHLO {h}\r\n"),
        Command::Helo(h) => format!("HELO {h}\r\n"),
        Command::Data => "DATA\r\n".into(),
        Command::Bdat { size, last } => {
            format!("BDAT {size}{}\r\n", if *last { " LAST" } else { "" })
        }
        Command::Rset => "RSET\r\n".into(),
        Command::Noop => "NOOP\r\n".into(),
        Command::Quit => "QUIT\r\n".into(),
        Command::Vrfy(s) => format!("VRFY {s}\r\n"),
        Command::Expn(s) => format!("EXPN {s}\r\n"),
        Command::Help => "HELP\r\n".into(),
        Command::StartTls => "STARTTLS\r\n".into(),
        Command::Auth { mechanism, initial } => match initial {
            Some(ir) => format!("AUTH {mechanism} {ir}\r\n"),
            None => format!("AUTH {mechanism}\r\n"),
        },
        Command::Mail { .. } | Command::Rcpt { .. } => return None,
    })
}

/// A reply is `code [SP|-] text CRLF` lines with nothing that could end a line early
/// (RFC 5321 §4.2): client input echoed in a reply must not inject a line.
fn check_reply(reply: &[u8]) {
    assert!(reply.ends_with(b"\r\n"), "reply without CRLF: {reply:?}");
    for line in reply[..reply.len() - 2].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(
            line.len() >= 3 && line[..3].iter().all(u8::is_ascii_digit),
            "reply line without a code: {line:?}"
        );
        assert!(!line.contains(&b'\r'), "bare CR in a reply: {line:?}");
    }
}

/// A client's whole stream, pipelined (RFC 2920): command lines, DATA content up to
/// `CRLF.CRLF`, BDAT chunks. Checks the bookkeeping (nothing consumed twice or beyond the
/// input, a BDAT chunk is exactly its size, whatever the size claims), that the DATA scanner
/// gives the same result however its input is split, and that dot-stuffing round-trips.
pub fn smtp_session(data: &[u8]) {
    let (knob, _, _) = crate::knob_split(data);
    let input = data.get(1..).unwrap_or_default();
    let mut pos = 0;
    let mut commands = 0;
    while pos < input.len() && commands < 1000 {
        commands += 1;
        let rest = &input[pos..];
        let Some(nl) = rest.iter().take(MAX_LINE).position(|&b| b == b'\n') else {
            // A line too long is discarded up to its end (RFC 5321 §4.5.3.1.4), or the
            // stream ended mid-line.
            break;
        };
        let line = &rest[..=nl];
        pos += nl + 1;
        smtp_command(line);
        match parse_command(line) {
            Ok(Command::Data) => {
                let body = &input[pos..];
                let (consumed, done, out) = scan_split(body, usize::from(knob));
                let (whole_consumed, whole_done, whole_out) = scan_split(body, usize::MAX);
                assert_eq!(
                    (consumed, done, &out),
                    (whole_consumed, whole_done, &whole_out),
                    "the DATA scanner's result depends on how its input was split"
                );
                assert!(consumed <= body.len() && out.len() <= consumed);
                if done {
                    let seen = &body[..consumed];
                    assert!(
                        seen == b".\r\n" || seen.ends_with(b"\r\n.\r\n"),
                        "end of data without CRLF.CRLF (SMTP smuggling): {seen:?}"
                    );
                    // The content without the terminator, stuffed again, scans back to itself.
                    round_trip(&out);
                }
                pos += consumed;
            }
            Ok(Command::Bdat { size, .. }) => {
                // RFC 3030 §2: exactly `size` octets follow, whatever they contain; the
                // session reads them without buffering more than it has.
                let left = (input.len() - pos) as u64;
                let take = size.min(left) as usize;
                let chunk = &input[pos..pos + take];
                assert_eq!(chunk.len() as u64, size.min(left));
                pos += take;
            }
            _ => {}
        }
    }
    assert!(pos <= input.len());
    round_trip(input.get(..input.len().min(512)).unwrap_or_default());
}

/// Feeds `body` to a scanner in two reads split at `cut`; returns what it consumed, whether
/// it saw the end of data, and the unstuffed content.
fn scan_split(body: &[u8], cut: usize) -> (usize, bool, Vec<u8>) {
    let mut scanner = DataScanner::new();
    let mut out = Vec::new();
    let cut = cut.min(body.len());
    let first = scanner.feed(&body[..cut], &mut out);
    assert!(first.consumed <= cut);
    if first.done {
        return (first.consumed, true, out);
    }
    assert_eq!(
        first.consumed, cut,
        "the scanner stopped before the end of data"
    );
    let second = scanner.feed(&body[cut..], &mut out);
    assert!(second.consumed <= body.len() - cut);
    assert_eq!(second.done, scanner.is_done());
    (cut + second.consumed, second.done, out)
}

/// `dot_stuff(m)` scanned gives back `m` (with the CRLF `dot_stuff` adds to a last line
/// without one), consuming all of it.
fn round_trip(message: &[u8]) {
    let stuffed = dot_stuff(message);
    let mut scanner = DataScanner::new();
    let mut out = Vec::new();
    let p = scanner.feed(&stuffed, &mut out);
    assert!(p.done, "dot_stuff's output has no end of data");
    assert_eq!(p.consumed, stuffed.len());
    let mut want = message.to_vec();
    if !want.is_empty() && !want.ends_with(b"\r\n") {
        want.extend_from_slice(b"\r\n");
    }
    assert_eq!(out, want, "dot-stuffing does not round-trip");
}

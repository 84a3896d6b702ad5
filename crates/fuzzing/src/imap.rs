//! IMAP: the command framer (lines and literals, RFC 9051 §4.3, RFC 7888 LITERAL+/-,
//! RFC 3516 literal8) and the command parser.

use imap_proto::{
    CommandBody, CommandFramer, Decoded, FrameLimits, ImapUrl, UrlBase, decode_mutf7, encode_mutf7,
    parse_command, parse_section_spec, write_astring,
};

/// What the framer made of a stream, in order: commands (with the bytes they consumed),
/// discards, continuation requests and errors.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Command(Vec<u8>),
    Discard(usize),
    Continue(u64),
    Error(String, usize),
}

/// Any byte stream, split anywhere: the framer never panics or spins, never hands out bytes
/// it was not given, honours every literal size (a command's bytes are exactly its lines
/// and literals), gives the same commands however the stream is split, and every command
/// parses without panicking. A parsed LOGIN's strings round-trip through the encoder, and
/// modified UTF-7 names through decode/encode.
pub fn imap_command(data: &[u8]) {
    let _ = parse_command(data);
    let (knob, a, b) = crate::knob_split(data);
    let limits = if knob & 1 == 0 {
        FrameLimits::default()
    } else {
        FrameLimits {
            max_line: 40,
            max_literal: 16,
            max_command: 80,
            max_non_sync_literal: 8,
        }
    };
    let input = &data[data.len().min(1)..];
    let split = frame(limits, &[a, b]);
    let whole = frame(limits, &[input]);
    assert_eq!(
        split, whole,
        "the framer's result depends on how input was split"
    );
    for event in &whole {
        if let Event::Command(bytes) = event {
            check_command(bytes);
        }
    }
    mutf7(a);
    login_round_trip(a, b);
    url(&String::from_utf8_lossy(a));
}

/// IMAP URLs of CATENATE, URLFETCH and GENURLAUTH (RFC 5092, RFC 4467), absolute and
/// relative to a selected mailbox; a section spec alone (RFC 5092 §11 `enc-section`).
fn url(s: &str) {
    let base = UrlBase {
        user: Some("alice".into()),
        host: Some("mail.example.com".into()),
        mailbox: Some("INBOX/sub".into()),
    };
    for parsed in [ImapUrl::parse(s), ImapUrl::parse_relative(s, Some(&base))] {
        if parsed.is_ok() {
            // RFC 3986 §2.1: `pct-encoded = "%" HEXDIG HEXDIG`, nothing else.
            let b = s.as_bytes();
            for (i, _) in s.match_indices('%') {
                assert!(
                    b.get(i + 1..i + 3)
                        .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
                    "a URL with a bad %-escape was accepted: {s:?}"
                );
            }
        }
    }
    if let Some((rump, _)) = ImapUrl::split_rump(s) {
        let _ = ImapUrl::parse(rump);
    }
    let _ = parse_section_spec(s);
}

/// Runs a framer over `parts`, received one after the other.
fn frame(limits: FrameLimits, parts: &[&[u8]]) -> Vec<Event> {
    let mut framer = CommandFramer::new(limits);
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for part in parts {
        buf.extend_from_slice(part);
        for step in 0.. {
            assert!(step < 100_000, "the framer does not make progress");
            match framer.decode(&buf) {
                Ok(Decoded::Complete {
                    line_with_literals,
                    consumed,
                }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    assert!(line_with_literals.len() <= consumed);
                    assert_eq!(line_with_literals, &buf[..line_with_literals.len()]);
                    let bytes = line_with_literals.to_vec();
                    let _ = parse_command(&bytes);
                    events.push(Event::Command(bytes));
                    buf.drain(..consumed);
                }
                Ok(Decoded::Discard { consumed }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    events.push(Event::Discard(consumed));
                    buf.drain(..consumed);
                }
                Ok(Decoded::NeedsContinuation { literal_size }) => {
                    assert!(literal_size <= limits.max_literal);
                    // The session answers "+" and reads on; the bytes may already be here.
                    // Asked twice for one literal, the split and whole runs would differ.
                    events.push(Event::Continue(literal_size));
                }
                Ok(Decoded::Incomplete) => break,
                Err(e) => {
                    assert!(e.skip() <= buf.len());
                    events.push(Event::Error(e.to_string(), e.skip()));
                    buf.drain(..e.skip());
                }
            }
        }
    }
    // Events that depend only on when bytes arrived are merged: a discard in several reads.
    // An error skips what is buffered of the refused command, and the rest is discarded
    // as it arrives: only the total depends on the command.
    let mut merged: Vec<Event> = Vec::new();
    for e in events {
        match (merged.last_mut(), e) {
            (Some(Event::Discard(n) | Event::Error(_, n)), Event::Discard(m)) => *n += m,
            (_, e) => merged.push(e),
        }
    }
    merged
}

/// Every literal announced in a framed command is followed by exactly that many bytes
/// (RFC 9051 §4.3), so the command's last line is where the framer says it is.
fn check_command(bytes: &[u8]) {
    assert!(
        bytes.ends_with(b"\n"),
        "a complete command must end with its line end: {bytes:?}"
    );
    let mut pos = 0;
    loop {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            panic!("command without a line end");
        };
        let line = &bytes[pos..pos + nl];
        pos += nl + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match literal_size(line) {
            Some(n) => {
                let n = usize::try_from(n).expect("a literal larger than memory was accepted");
                assert!(pos + n <= bytes.len(), "literal cut short");
                pos += n;
                if pos == bytes.len() {
                    panic!("a command ends right after a literal, without its line end");
                }
            }
            None => {
                assert_eq!(pos, bytes.len(), "bytes after the command's last line");
                return;
            }
        }
    }
}

/// The size of the literal a line ends with (`{n}`, `{n+}`, `~{n}`, `~{n+}`), if any. A
/// size has at most 20 digits (the framer's rule: `u64::MAX` has 20), so `{` and 21 digits
/// (even `018446744073709551115`, which fits in 64 bits) end no literal.
fn literal_size(line: &[u8]) -> Option<u64> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = body[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&body[open + 1..]);
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// RFC 3501 §5.1.3: a name that decodes encodes back to a name that decodes the same.
fn mutf7(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(decoded) = decode_mutf7(s) {
        let again = encode_mutf7(&decoded);
        assert_eq!(
            decode_mutf7(&again).as_deref(),
            Ok(decoded.as_str()),
            "modified UTF-7 does not round-trip: {s:?}"
        );
    }
    let encoded = encode_mutf7(s);
    assert_eq!(
        decode_mutf7(&encoded).as_deref(),
        Ok(s),
        "encode then decode"
    );
}

/// `LOGIN user pass` written with the encoder (atom, quoted or literal: RFC 9051 §9
/// `astring`) frames and parses back to the same two strings.
fn login_round_trip(user: &[u8], pass: &[u8]) {
    // `CHAR8 = %x01-ff`: a literal cannot carry NUL (RFC 9051 §4.3), so neither can LOGIN.
    if user.contains(&0) || pass.contains(&0) {
        return;
    }
    let mut line = b"a1 LOGIN ".to_vec();
    write_astring(&mut line, user, false);
    line.push(b' ');
    write_astring(&mut line, pass, false);
    line.extend_from_slice(b"\r\n");
    let events = frame(FrameLimits::default(), &[&line]);
    let Some(Event::Command(bytes)) = events.iter().find(|e| matches!(e, Event::Command(_))) else {
        panic!("the framer did not return the LOGIN command: {events:?}");
    };
    match parse_command(bytes) {
        Ok(cmd) => match cmd.body {
            CommandBody::Login { username, password } => {
                assert_eq!(username, user, "LOGIN user name");
                assert_eq!(password.expose(), pass, "LOGIN password");
            }
            other => panic!("LOGIN parsed as {other:?}"),
        },
        Err(e) => panic!("encoded LOGIN does not parse: {e} ({line:?})"),
    }
}

//! SMTP: command lines (RFC 5321 §4.1), and a session's framing of a pipelined byte stream:
//! command lines, DATA's end-of-data scan with dot-unstuffing (§4.5.2), and BDAT chunks of
//! exactly the announced size (RFC 3030 §2).

use smtp_proto::{Command, DataScanner, dot_stuff, parse_command, xtext_decode, xtext_encode};

/// Longest command line the session reads (smtp-server's `max_line_length` default).
const MAX_LINE: usize = 4096;

/// One command line: the parse never panics, its error reply is one well-formed reply, and
/// a parsed command means the same with its verb in another case (RFC 5321 §2.4) and, for
/// commands with a canonical form, after being written out again.
pub fn smtp_command(data: &[u8]) {
    let parsed = parse_command(data);
    assert_eq!(parsed, parse_command(data), "parse is not deterministic");
    // RFC 3461 §4: xtext (ENVID, ORCPT) round-trips.
    assert_eq!(xtext_decode(&xtext_encode(data)).as_deref(), Some(data));
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

/// What a session's framing made of a client's stream, in order.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    /// A command line (within the limit), with its line end.
    Line(Vec<u8>),
    /// A line over the limit, swallowed up to its LF (RFC 5321 §4.5.3.1.4: 500).
    TooLong,
    /// DATA's content, unstuffed (`None` when over the size limit), and whether the end of
    /// data came before the stream ended.
    Data(Option<Vec<u8>>, bool),
    /// A BDAT chunk: its announced size, whether all of it came before the stream ended,
    /// and its octets when it is whole and within the size limit.
    Bdat {
        size: u64,
        complete: bool,
        content: Option<Vec<u8>>,
    },
}

/// Largest message kept in memory; beyond it the session keeps reading, holding nothing.
const MAX_MESSAGE: usize = 64 * 1024;

/// A client's whole stream, pipelined (RFC 2920), through the real connection framing of the
/// SMTP session (server-kit's `Conn`: bounded `read_line`, `fill_buf`/`consume` with the DATA
/// scanner, `read_exact_into`/`skip` for BDAT) with the bytes arriving in pieces of a size
/// the first byte picks. The result must not depend on the piece size, must equal a model
/// working on the whole input at once, a DATA end must be a real `CRLF.CRLF` (SMTP
/// smuggling), a BDAT chunk exactly its size whatever the size claims, and DATA content
/// stuffed again must scan back to itself.
pub fn smtp_session(data: &[u8]) {
    let (knob, _, _) = crate::knob_split(data);
    let input = data.get(1..).unwrap_or_default();
    let pipe = 1 + usize::from(knob % 64) * 17;
    let real = crate::block_on(session(input.to_vec(), pipe));
    let model = model(input);
    assert_eq!(
        real, model,
        "the session's framing differs from the model (pipe {pipe})"
    );
    for e in &real {
        match e {
            Event::Line(line) => smtp_command(line),
            Event::Data(Some(content), true) => round_trip(content),
            _ => {}
        }
    }
    round_trip(input.get(..input.len().min(512)).unwrap_or_default());
}

/// The session's reading, as smtp-server's `session.rs` and `data.rs` do it.
async fn session(input: Vec<u8>, pipe: usize) -> Vec<Event> {
    use tokio::io::AsyncWriteExt;
    let (mut client, server) = tokio::io::duplex(pipe);
    let writer = tokio::spawn(async move {
        let _ = client.write_all(&input).await;
        let _ = client.shutdown().await;
        // Kept open until the reader is done, so the reader sees EOF, not a reset.
        client
    });
    let mut conn = server_kit::Conn::new(Box::new(server), false);
    let mut events = Vec::new();
    for _ in 0..1000 {
        let line = match conn.read_line(MAX_LINE).await {
            Ok(line) => line.to_vec(),
            Err(server_kit::LineError::TooLong) => {
                events.push(Event::TooLong);
                continue;
            }
            Err(_) => break,
        };
        let cmd = parse_command(&line);
        events.push(Event::Line(line));
        match cmd {
            Ok(Command::Data) => {
                let mut scanner = DataScanner::new();
                let mut body = Vec::new();
                let mut oversize = false;
                let done = loop {
                    let Ok(buf) = conn.fill_buf().await else {
                        break false;
                    };
                    let progress = scanner.feed(buf, &mut body);
                    assert!(progress.consumed <= buf.len());
                    conn.consume(progress.consumed);
                    if body.len() > MAX_MESSAGE {
                        oversize = true;
                        body = Vec::new();
                    }
                    if progress.done {
                        break true;
                    }
                };
                events.push(Event::Data((!oversize).then_some(body), done));
                if !done {
                    break;
                }
            }
            Ok(Command::Bdat { size, .. }) => {
                // RFC 3030 §2: exactly `size` octets follow, read in pieces; over the size
                // limit they are dropped as they come.
                let mut kept = Vec::new();
                let mut received = 0u64;
                while received < size {
                    let piece = (size - received).min(PIECE as u64) as usize;
                    let r = if (received as usize) < MAX_MESSAGE {
                        conn.read_exact_into(piece, &mut kept).await
                    } else {
                        conn.skip(piece).await
                    };
                    if r.is_err() {
                        break;
                    }
                    received += piece as u64;
                }
                assert!(
                    kept.len() < MAX_MESSAGE + PIECE,
                    "a BDAT chunk held beyond the limit"
                );
                let complete = received == size;
                let content = (complete && size <= MAX_MESSAGE as u64).then_some(kept);
                events.push(Event::Bdat {
                    size,
                    complete,
                    content,
                });
                if !complete {
                    break;
                }
            }
            _ => {}
        }
    }
    drop(conn);
    let _ = writer.await;
    events
}

/// A BDAT chunk is read in pieces of this size (smtp-server's `data.rs`).
const PIECE: usize = 64 * 1024;

/// The same on the whole input at once, on slices.
fn model(input: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut pos = 0;
    for _ in 0..1000 {
        let rest = &input[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        pos += nl + 1;
        if nl + 1 > MAX_LINE {
            events.push(Event::TooLong);
            continue;
        }
        let line = &rest[..=nl];
        events.push(Event::Line(line.to_vec()));
        match parse_command(line) {
            Ok(Command::Data) => {
                let body = &input[pos..];
                let (consumed, done, out) = scan_split(body, body.len());
                assert!(consumed <= body.len() && out.len() <= consumed);
                if done {
                    let seen = &body[..consumed];
                    assert!(
                        seen == b".\r\n" || seen.ends_with(b"\r\n.\r\n"),
                        "end of data without CRLF.CRLF (SMTP smuggling): {seen:?}"
                    );
                }
                pos += consumed;
                events.push(Event::Data((out.len() <= MAX_MESSAGE).then_some(out), done));
                if !done {
                    break;
                }
            }
            Ok(Command::Bdat { size, .. }) => {
                let left = (input.len() - pos) as u64;
                let complete = size <= left;
                let content = (complete && size <= MAX_MESSAGE as u64)
                    .then(|| input[pos..pos + size as usize].to_vec());
                pos += size.min(left) as usize;
                events.push(Event::Bdat {
                    size,
                    complete,
                    content,
                });
                if !complete {
                    break;
                }
            }
            _ => {}
        }
    }
    events
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

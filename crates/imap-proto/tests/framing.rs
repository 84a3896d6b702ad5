//! Framing: whole commands out of a byte stream, literals and continuation requests, limits
//! refused without buffering — and the same result however the input is split.

use imap_proto::*;

/// What a session would see, independent of how the bytes arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Command(Vec<u8>),
    Continue(u64),
    LineTooLong(Option<String>),
    LiteralTooLarge(Option<String>, u64, bool),
    CommandTooLong(Option<String>),
}

/// Runs `input` through a framer, delivered in chunks ending at `cuts`, acting as a session
/// does: drop what it is told to drop, nothing else. Also checks the buffer stays bounded.
fn run(input: &[u8], cuts: &[usize], limits: FrameLimits) -> (Vec<Event>, usize) {
    let mut framer = CommandFramer::new(limits);
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut max_buf = 0;
    let mut fed = 0;
    let ends = cuts.iter().copied().chain([input.len()]);
    for end in ends {
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            max_buf = max_buf.max(buf.len());
            match framer.decode(&buf) {
                Ok(Decoded::Complete {
                    line_with_literals,
                    consumed,
                }) => {
                    assert_eq!(line_with_literals.len(), consumed);
                    events.push(Event::Command(line_with_literals.to_vec()));
                    buf.drain(..consumed);
                }
                Ok(Decoded::Incomplete) => break,
                Ok(Decoded::NeedsContinuation { literal_size }) => {
                    // The session sends "+ ..." and decodes again.
                    events.push(Event::Continue(literal_size));
                }
                Ok(Decoded::Discard { consumed }) => {
                    assert!(consumed > 0 && consumed <= buf.len());
                    buf.drain(..consumed);
                }
                Err(e) => {
                    let tag = e.tag().map(|t| t.as_str().to_owned());
                    assert!(e.skip() <= buf.len());
                    buf.drain(..e.skip());
                    events.push(match e {
                        FrameError::LineTooLong { .. } => Event::LineTooLong(tag),
                        FrameError::LiteralTooLarge { size, non_sync, .. } => {
                            Event::LiteralTooLarge(tag, size, non_sync)
                        }
                        FrameError::CommandTooLong { .. } => Event::CommandTooLong(tag),
                    });
                }
            }
        }
    }
    assert!(
        buf.is_empty(),
        "left over: {:?}",
        String::from_utf8_lossy(&buf)
    );
    (events, max_buf)
}

fn small() -> FrameLimits {
    FrameLimits {
        max_line: 64,
        max_literal: 100,
        max_command: 300,
        max_non_sync_literal: 50,
    }
}

const STREAM: &[u8] = b"a1 NOOP\r\n\
a2 LOGIN {4}\r\nuser {6+}\r\nsecret\r\n\
a3 APPEND x (\\Seen) {0}\r\n\r\n\
a4 APPEND x ~{3}\r\n\0\r\n\r\n\
a5 SELECT INBOX\n\
a6 LOGIN {500}\r\n\
a7 APPEND x {60+}\r\n012345678901234567890123456789012345678901234567890123456789 {3+}\r\nabc\r\n\
a8 FETCH 1 (BODY[HEADER.FIELDS (DATE FROM SUBJECT TO CC BCC MESSAGE-ID IN-REPLY-TO REFERENCES)])\r\n\
a9 NOOP\r\n\
b1 LIST \"\" \"a-long-pattern-to-make-this-line-too-long-with-a-literal-at-the-end\" {4+}\r\nabcd\r\n\
b2 CAPABILITY\r\n\
b3 X {20+}\r\n01234567890123456789\r\n\
b4 X {50+}\r\n01234567890123456789012345678901234567890123456789{50+}\r\n\
01234567890123456789012345678901234567890123456789 and a final line\r\n\
b5 NOOP\r\n";

fn expected() -> Vec<Event> {
    vec![
        Event::Command(b"a1 NOOP\r\n".to_vec()),
        Event::Continue(4),
        Event::Command(b"a2 LOGIN {4}\r\nuser {6+}\r\nsecret\r\n".to_vec()),
        Event::Continue(0),
        Event::Command(b"a3 APPEND x (\\Seen) {0}\r\n\r\n".to_vec()),
        Event::Continue(3),
        Event::Command(b"a4 APPEND x ~{3}\r\n\0\r\n\r\n".to_vec()),
        Event::Command(b"a5 SELECT INBOX\n".to_vec()),
        Event::LiteralTooLarge(Some("a6".into()), 500, false),
        Event::LiteralTooLarge(Some("a7".into()), 60, true),
        Event::LineTooLong(Some("a8".into())),
        Event::Command(b"a9 NOOP\r\n".to_vec()),
        Event::LineTooLong(Some("b1".into())),
        Event::Command(b"b2 CAPABILITY\r\n".to_vec()),
        Event::Command(b"b3 X {20+}\r\n01234567890123456789\r\n".to_vec()),
        Event::CommandTooLong(Some("b4".into())),
        Event::Command(b"b5 NOOP\r\n".to_vec()),
    ]
}

#[test]
fn stream_in_one_piece() {
    let limits = FrameLimits {
        max_command: 120,
        ..small()
    };
    let (events, max_buf) = run(STREAM, &[], limits);
    assert_eq!(events, expected());
    assert!(max_buf <= STREAM.len());
}

#[test]
fn same_result_at_every_split() {
    let limits = FrameLimits {
        max_command: 120,
        ..small()
    };
    let (whole, _) = run(STREAM, &[], limits);
    for cut in 0..=STREAM.len() {
        let (events, _) = run(STREAM, &[cut], limits);
        assert_eq!(events, whole, "split at {cut}");
    }
    // Byte by byte: the buffer never holds more than a line plus a literal.
    let cuts: Vec<usize> = (1..STREAM.len()).collect();
    let (events, max_buf) = run(STREAM, &cuts, limits);
    assert_eq!(events, whole);
    assert!(max_buf <= 64 + 100, "buffered {max_buf}");
}

#[test]
fn rfc_append_literal() {
    // RFC 9051 §6.3.12: the client sends the size, waits for "+", then the message.
    let msg = [b'x'; 326];
    let mut framer = CommandFramer::new(FrameLimits::default());
    let mut buf = b"A003 APPEND saved-messages (\\Seen) {326}\r\n".to_vec();
    assert_eq!(
        framer.decode(&buf),
        Ok(Decoded::NeedsContinuation { literal_size: 326 })
    );
    assert_eq!(
        framer.decode(&buf),
        Ok(Decoded::Incomplete),
        "announced once"
    );
    buf.extend_from_slice(&msg[..100]);
    assert_eq!(framer.decode(&buf), Ok(Decoded::Incomplete));
    buf.extend_from_slice(&msg[100..]);
    assert_eq!(framer.decode(&buf), Ok(Decoded::Incomplete));
    buf.extend_from_slice(b"\r\n");
    let Ok(Decoded::Complete {
        line_with_literals,
        consumed,
    }) = framer.decode(&buf)
    else {
        panic!()
    };
    assert_eq!(consumed, buf.len());
    let cmd = parse_command(line_with_literals).unwrap();
    assert!(
        matches!(cmd.body, CommandBody::Append { ref messages, .. } if messages[0].data.literal() == Some(&msg[..]))
    );
}

#[test]
fn limits_are_refused_without_reading() {
    let mut framer = CommandFramer::new(FrameLimits::default());
    // A synchronising literal over the limit: answered at once, the client never sends it.
    let buf = b"A1 APPEND INBOX {999999999999}\r\n";
    let err = framer.decode(buf).unwrap_err();
    assert_eq!(
        err,
        FrameError::LiteralTooLarge {
            tag: Tag::new("A1"),
            size: 999_999_999_999,
            non_sync: false,
            skip: buf.len()
        }
    );
    // A size that does not fit in 64 bits.
    let buf = b"A2 LOGIN {99999999999999999999}\r\n";
    assert!(matches!(
        framer.decode(buf),
        Err(FrameError::LiteralTooLarge { size: u64::MAX, .. })
    ));
    // More than 20 digits is no size at all: the line is an ordinary (malformed) command,
    // which the parser refuses.
    let buf = b"A3 LOGIN {00000000000000000000005}\r\n";
    assert_eq!(
        framer.decode(buf),
        Ok(Decoded::Complete {
            line_with_literals: buf,
            consumed: buf.len()
        })
    );
    // A line without an end: refused once it passes max_line, the rest is discarded.
    let mut framer = CommandFramer::new(FrameLimits {
        max_line: 100,
        ..FrameLimits::default()
    });
    let buf = vec![b'a'; 1000];
    let err = framer.decode(&buf).unwrap_err();
    assert!(matches!(err, FrameError::LineTooLong { tag: None, .. }));
    assert!(err.skip() >= 900);
    let rest = &buf[err.skip()..];
    let mut more = rest.to_vec();
    more.extend_from_slice(b"aaaa\r\nB1 NOOP\r\n");
    let Ok(Decoded::Discard { consumed }) = framer.decode(&more) else {
        panic!()
    };
    more.drain(..consumed);
    assert_eq!(
        framer.decode(&more),
        Ok(Decoded::Complete {
            line_with_literals: b"B1 NOOP\r\n",
            consumed: 9
        })
    );
}

#[test]
fn marker_detection() {
    let mut framer = CommandFramer::new(FrameLimits::default());
    // Braces that are not a literal marker at the end of the line are ordinary text.
    for line in [
        &b"a SEARCH SUBJECT \"{5}\"\r\n"[..],
        b"a X {5} y\r\n",
        b"a X {}\r\n",
        b"a X {+}\r\n",
        b"a X 5}\r\n",
    ] {
        assert_eq!(
            framer.decode(line),
            Ok(Decoded::Complete {
                line_with_literals: line,
                consumed: line.len()
            })
        );
    }
}

#[test]
fn limits_switch_between_commands() {
    // Before login a session allows only small literals; after it, message-sized ones.
    let small = FrameLimits {
        max_line: 1024,
        max_literal: 8192,
        max_command: 16 * 1024,
        max_non_sync_literal: u64::MAX,
    };
    let mut framer = CommandFramer::new(small);
    let refused = framer.decode(b"a1 LOGIN {31457280}\r\n").unwrap_err();
    assert_eq!(
        refused,
        FrameError::LiteralTooLarge {
            tag: Tag::new("a1"),
            size: 31457280,
            non_sync: false,
            skip: 21,
        }
    );
    assert_eq!(
        framer.decode(b"a2 LOGIN {5}\r\n"),
        Ok(Decoded::NeedsContinuation { literal_size: 5 })
    );
    let login = b"a2 LOGIN {5}\r\nalice pw\r\n";
    assert_eq!(
        framer.decode(login),
        Ok(Decoded::Complete {
            line_with_literals: &login[..],
            consumed: login.len(),
        })
    );
    framer.set_limits(FrameLimits::default());
    assert_eq!(framer.limits(), &FrameLimits::default());
    assert_eq!(
        framer.decode(b"a3 APPEND INBOX {31457280}\r\n"),
        Ok(Decoded::NeedsContinuation {
            literal_size: 31457280
        })
    );
    // reset() keeps the limits in force.
    framer.reset();
    assert_eq!(framer.limits(), &FrameLimits::default());
}

/// Feeds `bytes` and decodes once; the session's buffer is `buf`.
fn feed(framer: &mut CommandFramer, buf: &mut Vec<u8>, bytes: &[u8]) -> Decoded<'static> {
    buf.extend_from_slice(bytes);
    match framer.decode(buf).unwrap() {
        Decoded::Complete { consumed, .. } => {
            buf.drain(..consumed);
            Decoded::Complete {
                line_with_literals: b"",
                consumed,
            }
        }
        Decoded::Incomplete => Decoded::Incomplete,
        Decoded::NeedsContinuation { literal_size } => Decoded::NeedsContinuation { literal_size },
        Decoded::Discard { consumed } => {
            buf.drain(..consumed);
            Decoded::Discard { consumed }
        }
    }
}

#[test]
fn a_refused_synchronising_literal_ends_the_command() {
    let mut framer = CommandFramer::new(FrameLimits::default());
    let mut buf = Vec::new();
    assert_eq!(
        feed(&mut framer, &mut buf, b"a1 APPEND INBOX {100000}\r\n"),
        Decoded::NeedsContinuation {
            literal_size: 100000
        }
    );
    let (tag, skip) = framer.refuse_literal(&buf);
    assert_eq!(tag.unwrap().as_str(), "a1");
    assert_eq!(skip, buf.len());
    buf.drain(..skip);
    // RFC 9051 §7.5: the client sends no literal; its next command frames normally.
    let next = b"a2 NOOP\r\n";
    buf.extend_from_slice(next);
    assert_eq!(
        framer.decode(&buf).unwrap(),
        Decoded::Complete {
            line_with_literals: next,
            consumed: next.len()
        }
    );
}

#[test]
fn an_abandoned_non_synchronising_literal_is_dropped_to_the_end_of_the_command() {
    let mut framer = CommandFramer::new(FrameLimits::default());
    let mut buf = Vec::new();
    assert_eq!(
        feed(&mut framer, &mut buf, b"a1 APPEND INBOX {10+}\r\n01234"),
        Decoded::Incomplete
    );
    assert!(!framer.is_discarding());
    let (tag, skip) = framer.abandon(&buf);
    assert!(framer.is_discarding());
    assert_eq!(tag.unwrap().as_str(), "a1");
    assert_eq!(skip, buf.len(), "all of the literal received so far goes");
    buf.drain(..skip);
    // The rest of the literal, then the end of the line (and a second literal) are dropped.
    let mut dropped = 0;
    for piece in [&b"56789"[..], b" {3+}\r\nabc", b"\r\n"] {
        if let Decoded::Discard { consumed } = feed(&mut framer, &mut buf, piece) {
            dropped += consumed;
        }
    }
    assert_eq!(dropped, 5 + 10 + 2);
    assert!(buf.is_empty());
    assert!(!framer.is_discarding());
    let next = b"a2 NOOP\r\n";
    buf.extend_from_slice(next);
    assert!(matches!(
        framer.decode(&buf).unwrap(),
        Decoded::Complete { consumed: 9, .. }
    ));
}

/// Empty non-synchronising literals (`{0+}`, RFC 7888 §3; size 0 is allowed, RFC 9051 §4.3)
/// end their line: the next line's length and the command's size do not count it again.
/// Found by the imap_command fuzz target (an overlong line ending in `~{0+}` was discarded
/// differently depending on how its bytes arrived).
#[test]
fn empty_non_synchronising_literals_end_their_line() {
    // Three lines of 30, 30 and 10 octets, each under `max_line` (40), 70 in all (under
    // `max_command`, 80): counting the earlier lines again made the second line 60 long.
    let cmd = b"a1 APPEND INBOX (\\Seen) {0+}\r\na1 APPEND Sent (\\Seen)  {0+}\r\n ~{0+}\r\n\r\n";
    let limits = FrameLimits {
        max_line: 40,
        max_literal: 16,
        max_command: 80,
        max_non_sync_literal: 8,
    };
    for cut in 0..=cmd.len() {
        let (events, _) = run(cmd, &[cut], limits);
        assert_eq!(events, vec![Event::Command(cmd.to_vec())], "cut at {cut}");
    }
    // The fuzzer's input: refused as too long whether it arrives whole or in two parts.
    let long = [&b"a1 A"[..], &[0x14; 60], b" ~{0+}\r\n"].concat();
    for cut in 0..=long.len() {
        let (events, _) = run(&long, &[cut], limits);
        assert_eq!(
            events,
            vec![Event::LineTooLong(Some("a1".into()))],
            "cut at {cut}"
        );
    }
}

/// An overlong line that ends in `{`, more digits than any size has, and `+}`: not a literal
/// marker, whether the framer saw the whole line or only the tail it keeps of an overlong one.
/// (Found by the fuzzer: split, the brace was dropped with the line's head and the next
/// command was read; whole, a literal of `u64::MAX` bytes swallowed the rest of the stream.)
#[test]
fn a_marker_of_too_many_digits_is_no_marker_however_the_line_is_split() {
    let limits = FrameLimits {
        max_line: 40,
        ..small()
    };
    let mut input = b"A1 LOGIN ".to_vec();
    input.extend_from_slice(&[b'x'; 40]);
    input.push(b'{');
    input.extend_from_slice(&[b'9'; 60]);
    input.extend_from_slice(b"+}\r\nB1 NOOP\r\n");
    let expected = vec![
        Event::LineTooLong(Some("A1".into())),
        Event::Command(b"B1 NOOP\r\n".to_vec()),
    ];
    for cut in 0..=input.len() {
        let (events, _) = run(&input, &[cut], limits);
        assert_eq!(events, expected, "cut at {cut}");
    }
    for cuts in [&[10, 60, 100][..], &[45, 90, 115], &[1, 2, 3, 120]] {
        let (events, _) = run(&input, cuts, limits);
        assert_eq!(events, expected, "cuts at {cuts:?}");
    }
}

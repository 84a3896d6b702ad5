//! DATA framing: finds the end-of-data marker and removes dot-stuffing, fed any split of
//! the input.
//!
//! Invariant (SMTP smuggling, CVE-2023-51766): only `CRLF "." CRLF` ends the data. A line
//! that began after a bare LF or a bare CR is not a line start, so `\n.\r\n`, `\r.\r\n` and
//! `\r\n.\n` are message content, never the end of data. Bare CR and LF are kept as data;
//! [`to_crlf`] turns them into CRLF before such a message is sent on with DATA.

use std::borrow::Cow;

/// Where the scanner is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line: just after DATA's 354 or after CRLF.
    LineStart,
    /// Inside a line.
    Middle,
    /// Inside a line, just after a CR.
    Cr,
    /// A line began with "."; the dot is held back.
    Dot,
    /// A line began with ".\r"; both are held back.
    DotCr,
    /// `CRLF "." CRLF` was seen.
    Done,
}

/// Incremental end-of-data scanner and dot-unstuffer for DATA (RFC 5321 §4.1.1.4, §4.5.2).
///
/// The CRLF before the terminating dot belongs to the message's last line and is kept.
#[derive(Debug, Clone)]
pub struct DataScanner {
    state: State,
}

impl Default for DataScanner {
    fn default() -> Self {
        DataScanner::new()
    }
}

/// What one [`DataScanner::feed`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataProgress {
    /// How many input bytes were consumed. When `done`, bytes after this belong to the next
    /// command (pipelined after the end of data).
    pub consumed: usize,
    /// The end-of-data marker was consumed.
    pub done: bool,
}

impl DataScanner {
    pub fn new() -> DataScanner {
        DataScanner {
            state: State::LineStart,
        }
    }

    /// Whether the end of data has been seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Scans `input`, appending the unstuffed message bytes to `out`, and stops right after
    /// the end-of-data marker.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> DataProgress {
        out.reserve(input.len());
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Middle {
                // Fast path: inside a line only a CR can change the state, so everything up
                // to the next CR is content, copied at once.
                let rest = &input[i..];
                let n = memchr::memchr(b'\r', rest).unwrap_or(rest.len());
                out.extend_from_slice(&rest[..n]);
                i += n;
                if i == input.len() {
                    break;
                }
            }
            let b = input[i];
            i += 1;
            self.state = match self.state {
                State::Done => {
                    return DataProgress {
                        consumed: i - 1,
                        done: true,
                    };
                }
                // RFC 5321 §4.5.2: a line starting with "." has it removed (transparency).
                State::LineStart if b == b'.' => State::Dot,
                State::LineStart | State::Middle => {
                    out.push(b);
                    if b == b'\r' { State::Cr } else { State::Middle }
                }
                State::Cr => {
                    out.push(b);
                    match b {
                        b'\n' => State::LineStart,
                        b'\r' => State::Cr,
                        _ => State::Middle,
                    }
                }
                State::Dot if b == b'\r' => State::DotCr,
                State::Dot => {
                    // "." followed by more text: the dot was stuffing; drop it. A bare LF
                    // here is content, not the end (see the module invariant).
                    out.push(b);
                    State::Middle
                }
                State::DotCr if b == b'\n' => State::Done,
                State::DotCr => {
                    // ".\r" then something else: drop the stuffed dot, keep the CR, and read
                    // `b` as the byte after a CR.
                    out.push(b'\r');
                    out.push(b);
                    match b {
                        b'\r' => State::Cr,
                        _ => State::Middle,
                    }
                }
            };
        }
        DataProgress {
            consumed: input.len(),
            done: self.state == State::Done,
        }
    }
}

/// Applies dot-stuffing (RFC 5321 §4.5.2) and appends `CRLF . CRLF`: the inverse of
/// [`DataScanner`], for clients and tests. `message` should end with CRLF.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 8);
    let mut line_start = true;
    for &b in message {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n' && out.len() >= 2 && out[out.len() - 2] == b'\r';
    }
    if !message.is_empty() && !message.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// `message` with every bare CR and every bare LF made a CRLF, for sending with DATA.
///
/// RFC 5321 §2.3.8: an SMTP client MUST NOT transmit a CR or LF except as a CRLF line end. A
/// message received with a bare line end (stored as it came, see [`DataScanner`]) and relayed
/// unchanged could end the data early at a receiver that takes a bare LF (or CR) for a line
/// end, which would then run the rest of the message as commands from us: SMTP smuggling
/// (CVE-2023-51764 class), with this server as the unwitting outbound relay.
pub fn to_crlf(message: &[u8]) -> Cow<'_, [u8]> {
    let bare = |i: usize| match message[i] {
        b'\r' => message.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || message[i - 1] != b'\r',
        _ => false,
    };
    if !(0..message.len()).any(bare) {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut i = 0;
    while let Some(&b) = message.get(i) {
        match b {
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                // A CRLF is one line end, not two.
                i += if b == b'\r' && message.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_crlf_makes_every_line_end_a_crlf() {
        assert!(matches!(to_crlf(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert_eq!(&*to_crlf(b"a\nb"), b"a\r\nb");
        assert_eq!(&*to_crlf(b"a\rb"), b"a\r\nb");
        assert_eq!(&*to_crlf(b"\n.\n"), b"\r\n.\r\n");
        assert_eq!(&*to_crlf(b"x\r.\r"), b"x\r\n.\r\n");
        assert_eq!(&*to_crlf(b"x\r\r\n\n\r\n"), b"x\r\n\r\n\r\n\r\n");
        // Every smuggling form becomes a dot line, which dot-stuffing then escapes: the data
        // ends only at the real end.
        for end in [
            &b"\n.\n"[..],
            b"\r.\r",
            b"\n.\r\n",
            b"\r\n.\n",
            b"\r.\r\n",
            b"\r\n.\r",
        ] {
            let msg = [&b"text"[..], end, b"MAIL FROM:<x@y>\r\n"].concat();
            let wire = dot_stuff(&to_crlf(&msg));
            let mut scanner = DataScanner::new();
            let mut out = Vec::new();
            let p = scanner.feed(&wire, &mut out);
            assert!(p.done && p.consumed == wire.len(), "{end:?}");
            assert_eq!(out, to_crlf(&msg).into_owned(), "{end:?}");
        }
    }

    /// Feeds `input` in two pieces split at `at`; returns (message, consumed, done).
    fn scan_split(input: &[u8], at: usize) -> (Vec<u8>, usize, bool) {
        let mut s = DataScanner::new();
        let mut out = Vec::new();
        let p1 = s.feed(&input[..at], &mut out);
        if p1.done {
            return (out, p1.consumed, true);
        }
        let p2 = s.feed(&input[at..], &mut out);
        (out, at + p2.consumed, p2.done)
    }

    fn check_every_split(input: &[u8], message: &[u8], consumed: usize, done: bool) {
        for at in 0..=input.len() {
            let (out, c, d) = scan_split(input, at);
            assert_eq!(out, message, "split at {at}");
            assert_eq!((c, d), (consumed, done), "split at {at}");
        }
    }

    #[test]
    fn finds_terminator_at_every_split() {
        let input = b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n";
        check_every_split(input, b"Subject: x\r\n\r\nhello\r\n", input.len() - 6, true);
    }

    #[test]
    fn empty_message() {
        check_every_split(b".\r\n", b"", 3, true);
    }

    #[test]
    fn dot_unstuffing() {
        let input = b"..leading\r\n.x\r\n...\r\nmid.dle\r\n.\r\n";
        check_every_split(
            input,
            b".leading\r\nx\r\n..\r\nmid.dle\r\n",
            input.len(),
            true,
        );
    }

    #[test]
    fn bare_lf_and_cr_do_not_end_data() {
        // The smuggling forms: only CRLF.CRLF ends the data.
        for input in [
            &b"a\n.\r\nMAIL FROM:<x@y>\r\n"[..],
            b"a\r.\r\nb\r\n",
            b"a\r\n.\nb\r\n",
            b"a\n.\nb\r\n",
            b"a\r\n.\rb\r\n",
        ] {
            for at in 0..=input.len() {
                let (_, c, d) = scan_split(input, at);
                assert!(!d, "{input:?} split at {at} ended the data");
                assert_eq!(c, input.len());
            }
        }
        let input = b"a\n.\r\nb\r\n.\r\n";
        check_every_split(input, b"a\n.\r\nb\r\n", input.len(), true);
        let input = b"a\r\n.\rb\r\n.\r\n";
        check_every_split(input, b"a\r\n\rb\r\n", input.len(), true);
    }

    #[test]
    fn dot_stuff_round_trip() {
        let msg = b"a\r\n.b\r\n..\r\n.\r\nend\r\n";
        let wire = dot_stuff(msg);
        assert_eq!(wire, b"a\r\n..b\r\n...\r\n..\r\nend\r\n.\r\n");
        let mut out = Vec::new();
        let p = DataScanner::new().feed(&wire, &mut out);
        assert!(p.done);
        assert_eq!(out, msg);
    }

    /// Pseudo-random input over the interesting bytes: one byte at a time gives the same
    /// result as all at once, and `dot_stuff` output always round-trips.
    #[test]
    fn random_inputs_split_consistently() {
        let mut x: u32 = 99;
        for _ in 0..5_000 {
            let input: Vec<u8> = (0..(x % 30))
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    b"\r\n.a"[(x >> 16) as usize % 4]
                })
                .collect();
            let mut whole = Vec::new();
            let p = DataScanner::new().feed(&input, &mut whole);
            let mut s = DataScanner::new();
            let mut bytewise = Vec::new();
            let mut consumed = 0;
            for b in &input {
                let q = s.feed(std::slice::from_ref(b), &mut bytewise);
                consumed += q.consumed;
                if q.done {
                    break;
                }
            }
            assert_eq!(
                (whole, p.consumed, p.done),
                (bytewise, consumed, s.is_done())
            );

            let mut msg = input.clone();
            if !msg.is_empty() && !msg.ends_with(b"\r\n") {
                msg.extend_from_slice(b"\r\n");
            }
            let mut out = Vec::new();
            let wire = dot_stuff(&msg);
            let q = DataScanner::new().feed(&wire, &mut out);
            assert!(q.done && q.consumed == wire.len(), "{msg:?}");
            assert_eq!(out, msg, "{wire:?}");
            x = x.wrapping_add(3);
        }
    }
}

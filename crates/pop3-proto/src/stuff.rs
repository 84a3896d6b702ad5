//! Byte-stuffing of multi-line response data, in chunks, in constant memory.
//!
//! RFC 1939 §3: "If any line of the multi-line response begins with the termination octet,
//! the line is 'byte-stuffed' by pre-pending the termination octet to that line." The response
//! ends with CRLF "." CRLF, so the data must end with a line end.
//!
//! Lines of a multi-line response are CRLF-terminated (RFC 1939 §3); a bare LF in a stored
//! message is sent as CRLF so that a client splitting on either form sees the same lines and
//! no data line can be mistaken for the terminator.

/// Stuffs a message fed in arbitrary chunks. State (line start, a CR at the end of the last
/// chunk) carries across chunk boundaries, so the output does not depend on how the message was
/// split.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    at_line_start: bool,
    prev_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer::new()
    }
}

impl DotStuffer {
    pub fn new() -> DotStuffer {
        DotStuffer {
            at_line_start: true,
            prev_cr: false,
        }
    }

    /// Appends the stuffed form of `chunk` to `out`.
    pub fn encode(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + 16);
        while !chunk.is_empty() {
            if self.at_line_start && chunk.first() == Some(&b'.') {
                out.push(b'.');
            }
            self.at_line_start = false;
            match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let (line, rest) = chunk.split_at(i);
                    out.extend_from_slice(line);
                    let cr_before = match line.last() {
                        Some(&b) => b == b'\r',
                        None => self.prev_cr,
                    };
                    if !cr_before {
                        out.push(b'\r');
                    }
                    out.push(b'\n');
                    self.at_line_start = true;
                    self.prev_cr = false;
                    chunk = rest.get(1..).unwrap_or_default();
                }
                None => {
                    out.extend_from_slice(chunk);
                    self.prev_cr = chunk.last() == Some(&b'\r');
                    chunk = &[];
                }
            }
        }
    }

    /// Ends the data with a line end if it lacks one, then appends the terminator `.` CRLF.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.at_line_start {
            if self.prev_cr {
                out.push(b'\n');
            } else {
                out.extend_from_slice(b"\r\n");
            }
        }
        out.extend_from_slice(b".\r\n");
        *self = DotStuffer::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(input: &[u8]) -> Vec<u8> {
        let mut s = DotStuffer::new();
        let mut out = Vec::new();
        s.encode(input, &mut out);
        s.finish(&mut out);
        out
    }

    const SAMPLES: &[(&[u8], &[u8])] = &[
        (b"", b".\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b"a\r", b"a\r\n.\r\n"),
        (b".\r\n", b"..\r\n.\r\n"),
        (
            b"Subject: x\r\n\r\n.hidden\r\n..two\r\nmid.dle\r\n.",
            b"Subject: x\r\n\r\n..hidden\r\n...two\r\nmid.dle\r\n..\r\n.\r\n",
        ),
        (b"x\n.y\nz", b"x\r\n..y\r\nz\r\n.\r\n"),
        (b"x\r.y\r\n", b"x\r.y\r\n.\r\n"),
        (b"\r\n\r\n.\r\n.", b"\r\n\r\n..\r\n..\r\n.\r\n"),
    ];

    #[test]
    fn stuffs_and_terminates() {
        for (input, expected) in SAMPLES {
            assert_eq!(
                whole(input),
                *expected,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn same_output_for_every_split() {
        for (input, expected) in SAMPLES {
            for i in 0..=input.len() {
                for j in i..=input.len() {
                    let mut s = DotStuffer::new();
                    let mut out = Vec::new();
                    s.encode(&input[..i], &mut out);
                    s.encode(&input[i..j], &mut out);
                    s.encode(&input[j..], &mut out);
                    s.finish(&mut out);
                    assert_eq!(out, *expected, "split at {i},{j} of {input:?}");
                }
            }
        }
    }

    #[test]
    fn single_byte_chunks() {
        let input = b"From: a\r\n\r\n.\r\n..\r\nend.\r\n.x";
        let mut s = DotStuffer::new();
        let mut out = Vec::new();
        for b in input {
            s.encode(std::slice::from_ref(b), &mut out);
        }
        s.finish(&mut out);
        assert_eq!(out, whole(input));
        assert_eq!(out, b"From: a\r\n\r\n..\r\n...\r\nend.\r\n..x\r\n.\r\n");
    }
}

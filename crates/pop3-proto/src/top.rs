//! The TOP filter: a message's header, the blank line, and the first `n` body lines.
//!
//! RFC 1939 §7 (TOP): "the POP3 server sends the headers of the message, the blank line
//! separating the headers from the body, and then the number of lines of the indicated
//! message's body". A message without a blank line is all header and is sent whole.
//!
//! The filter only ever cuts the message short, so each call returns a prefix of its input
//! chunk; feed the result to a [`crate::DotStuffer`].

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Header,
    Body { left: u32 },
    Done,
}

#[derive(Debug, Clone)]
pub struct TopFilter {
    lines: u32,
    part: Part,
    /// Octets in the current line before its LF (capped), to recognise the empty line.
    line_len: u8,
    last_cr: bool,
}

impl TopFilter {
    /// A filter passing the header and `lines` body lines.
    pub fn new(lines: u32) -> TopFilter {
        TopFilter {
            lines,
            part: Part::Header,
            line_len: 0,
            last_cr: false,
        }
    }

    /// Whether everything wanted has been passed; the caller can stop reading.
    pub fn is_done(&self) -> bool {
        self.part == Part::Done
    }

    /// Returns the prefix of `chunk` that belongs to the response.
    pub fn feed<'a>(&mut self, chunk: &'a [u8]) -> &'a [u8] {
        for (i, &b) in chunk.iter().enumerate() {
            match self.part {
                Part::Done => return chunk.get(..i).unwrap_or_default(),
                Part::Header => {
                    if b == b'\n' {
                        // An empty line is "" or "\r" before its LF.
                        let blank = self.line_len == 0 || (self.line_len == 1 && self.last_cr);
                        if blank {
                            self.part = match self.lines {
                                0 => Part::Done,
                                n => Part::Body { left: n },
                            };
                        }
                        self.line_len = 0;
                    } else {
                        self.line_len = self.line_len.saturating_add(1);
                    }
                }
                Part::Body { left } => {
                    if b == b'\n' {
                        self.part = match left {
                            0 | 1 => Part::Done,
                            n => Part::Body { left: n - 1 },
                        };
                    }
                }
            }
            self.last_cr = b == b'\r';
        }
        chunk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: a@b\r\nSubject: hi\r\n\r\nline1\r\nline2\r\n\r\nline4\r\n";

    fn top_whole(msg: &[u8], n: u32) -> Vec<u8> {
        TopFilter::new(n).feed(msg).to_vec()
    }

    #[test]
    fn counts_body_lines() {
        let header = b"From: a@b\r\nSubject: hi\r\n\r\n".to_vec();
        assert_eq!(top_whole(MSG, 0), header);
        assert_eq!(top_whole(MSG, 1), [&header[..], b"line1\r\n"].concat());
        assert_eq!(
            top_whole(MSG, 3),
            [&header[..], b"line1\r\nline2\r\n\r\n"].concat(),
            "an empty body line counts as a line"
        );
        assert_eq!(top_whole(MSG, 4), MSG);
        assert_eq!(top_whole(MSG, 100), MSG);
        // LF-only messages and messages without a body.
        assert_eq!(top_whole(b"A: b\n\nx\ny\n", 1), b"A: b\n\nx\n");
        assert_eq!(top_whole(b"A: b\r\nC: d\r\n", 0), b"A: b\r\nC: d\r\n");
        // "\r" alone before LF is an empty line; a header line "\r\r" is not.
        assert_eq!(top_whole(b"A: b\r\n\r\r\nx\r\n", 0), b"A: b\r\n\r\r\nx\r\n");
    }

    #[test]
    fn same_output_for_every_split() {
        for n in 0..6 {
            let expected = top_whole(MSG, n);
            for i in 0..=MSG.len() {
                for j in i..=MSG.len() {
                    let mut f = TopFilter::new(n);
                    let mut out = Vec::new();
                    for part in [&MSG[..i], &MSG[i..j], &MSG[j..]] {
                        out.extend_from_slice(f.feed(part));
                    }
                    assert_eq!(out, expected, "n={n} split at {i},{j}");
                }
            }
            let mut f = TopFilter::new(n);
            f.feed(MSG);
            assert_eq!(f.is_done(), n <= 4, "n={n}");
        }
    }
}

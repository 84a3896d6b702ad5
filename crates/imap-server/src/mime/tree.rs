//! The MIME structure of a message as byte ranges of the stored bytes (RFC 2045, RFC 2046 §5):
//! what FETCH sections, BINARY and BODYSTRUCTURE are cut from. Parsed in one pass over the
//! lines, with the boundaries of every enclosing multipart active at once, as RFC 2046 §5.1.2
//! asks ("a boundary of an enclosing multipart ends the inner one").
//!
//! Liberal, like the servers clients are used to (Dovecot's message-parser):
//! - A boundary line only has to begin with `--boundary`; when several active boundaries fit,
//!   the longest wins (the innermost on a tie). `--boundary--` closes the multipart.
//! - The line end before a boundary line belongs to the boundary (RFC 2046 §5.1.1).
//! - A header ends at its blank line (which it includes) or at a boundary line.
//! - A message/rfc822 (or message/global, RFC 6532) part holds a message whatever its
//!   Content-Transfer-Encoding (RFC 2046 §5.2.1 allows only identity encodings).
//! - Parts of a multipart/digest default to message/rfc822 (RFC 2046 §5.1.5).
//!
//! Bounded: nesting deeper than [`MAX_DEPTH`] and parts beyond [`MAX_PARTS`] are not split
//! further (they stay inside their parent's bytes), so a hostile message costs one linear pass.

use std::ops::Range;

use mail_parser::parsers::MessageStream;
use mail_parser::{MessageParser, MessagePart, MimeHeaders};

/// Deepest nesting of multiparts and encapsulated messages that is parsed.
pub(crate) const MAX_DEPTH: usize = 50;
/// Most parts parsed in one message.
pub(crate) const MAX_PARTS: usize = 10_000;

/// One MIME entity: a header and a body, both byte ranges of the message.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    /// The header fields and the blank line that ends them (if there is one).
    pub header: Range<usize>,
    pub body: Range<usize>,
    /// The parsed header fields (only `headers` is set): Content-Type and friends.
    pub fields: MessagePart<'a>,
    /// Media type and subtype in lower case, defaults applied (RFC 2045 §5.2).
    pub media: (String, String),
    pub kind: Kind<'a>,
}

#[derive(Debug)]
pub(crate) enum Kind<'a> {
    /// Not split further.
    Leaf,
    /// multipart/*: its body parts, in order (RFC 2046 §5.1).
    Multipart(Vec<Part<'a>>),
    /// message/rfc822: the encapsulated message (RFC 2046 §5.2.1).
    Message(Box<Part<'a>>),
}

impl<'a> Part<'a> {
    /// The part addressed by an IMAP section number, RFC 9051 §6.4.5: each number picks a part
    /// of a multipart; a non-multipart has only part 1, itself; a number after a
    /// message/rfc822 part addresses the parts of the encapsulated message.
    pub(crate) fn find(&self, path: &[u32]) -> Option<&Part<'a>> {
        let mut part = self;
        for (i, &n) in path.iter().enumerate() {
            let more = i + 1 < path.len();
            match &part.kind {
                Kind::Multipart(children) => {
                    part = children.get(usize::try_from(n).ok()?.checked_sub(1)?)?;
                }
                _ if n != 1 => return None,
                Kind::Leaf if more => return None,
                _ => {}
            }
            if more && let Kind::Message(inner) = &part.kind {
                part = inner;
            }
        }
        Some(part)
    }

    /// The encapsulated message of a message/rfc822 part.
    pub(crate) fn message(&self) -> Option<&Part<'a>> {
        match &self.kind {
            Kind::Message(inner) => Some(inner),
            _ => None,
        }
    }
}

/// Where the body of the message `raw` starts: after the blank line that ends its header, or
/// at the end when there is none (the same split [`parse`] makes for the root).
pub(crate) fn header_end(raw: &[u8]) -> usize {
    let mut at = 0;
    while at < raw.len() {
        let end = raw
            .get(at..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            .map_or(raw.len(), |i| at + i + 1);
        if matches!(raw.get(at..end), Some(b"\r\n" | b"\n")) {
            return end;
        }
        at = end;
    }
    raw.len()
}

/// Parses the MIME structure of `raw` (a whole message).
pub(crate) fn parse(raw: &[u8]) -> Part<'_> {
    let mut p = Parser {
        raw,
        pos: 0,
        bounds: Vec::new(),
        parts: 0,
    };
    p.part(false, 0)
}

struct Parser<'a> {
    raw: &'a [u8],
    pos: usize,
    /// The boundaries of the enclosing multiparts, outermost first.
    bounds: Vec<Vec<u8>>,
    parts: usize,
}

impl<'a> Parser<'a> {
    /// The index just past the line that starts at `at` (past its LF, or the end).
    fn line_end(&self, at: usize) -> usize {
        self.raw
            .get(at..)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            .map_or(self.raw.len(), |i| at + i + 1)
    }

    /// Whether the line at `at` is a boundary line: the index of its boundary in `bounds` and
    /// whether it is the close delimiter (`--boundary--`).
    fn boundary_at(&self, at: usize) -> Option<(usize, bool)> {
        let line = self.raw.get(at..self.line_end(at))?;
        let rest = line.strip_prefix(b"--")?;
        let mut best: Option<(usize, usize)> = None;
        for (i, b) in self.bounds.iter().enumerate().rev() {
            if rest.starts_with(b) && best.is_none_or(|(_, len)| b.len() > len) {
                best = Some((i, b.len()));
            }
        }
        let (i, len) = best?;
        Some((i, rest.get(len..).is_some_and(|r| r.starts_with(b"--"))))
    }

    /// Moves to the start of the next boundary line (returned) or to the end.
    fn skip_to_boundary(&mut self) -> Option<(usize, bool)> {
        while self.pos < self.raw.len() {
            if self
                .raw
                .get(self.pos..)
                .is_some_and(|r| r.starts_with(b"--"))
                && let Some(found) = self.boundary_at(self.pos)
            {
                return Some(found);
            }
            self.pos = self.line_end(self.pos);
        }
        None
    }

    /// Parses the entity that starts at `self.pos` and runs to the next boundary line of an
    /// enclosing multipart (or the end), leaving `self.pos` there.
    fn part(&mut self, digest: bool, depth: usize) -> Part<'a> {
        self.parts += 1;
        let start = self.pos;
        // The header: up to and with the blank line, or up to a boundary line or the end.
        let mut at = start;
        let (header_end, body_start) = loop {
            if at >= self.raw.len() {
                break (self.raw.len(), self.raw.len());
            }
            if !self.bounds.is_empty() && self.boundary_at(at).is_some() {
                break (at, at);
            }
            let end = self.line_end(at);
            if matches!(self.raw.get(at..end), Some(b"\r\n" | b"\n")) {
                break (end, end);
            }
            at = end;
        };
        let fields = header_fields(self.raw.get(start..header_end).unwrap_or_default());
        let media = media_type(&fields, digest);
        self.pos = body_start;
        let nested = depth < MAX_DEPTH;
        let kind = match (media.0.as_str(), media.1.as_str()) {
            ("multipart", sub) if nested => {
                match fields
                    .content_type()
                    .and_then(|c| c.attribute("boundary"))
                    .filter(|b| !b.is_empty())
                {
                    Some(b) => {
                        let b = b.as_bytes().to_vec();
                        Kind::Multipart(self.multipart(b, sub == "digest", depth))
                    }
                    None => {
                        self.skip_to_boundary();
                        Kind::Leaf
                    }
                }
            }
            ("message", "rfc822" | "global") if nested => {
                Kind::Message(Box::new(self.part(false, depth + 1)))
            }
            _ => {
                self.skip_to_boundary();
                Kind::Leaf
            }
        };
        // RFC 2046 §5.1.1: the line end before a boundary line is part of the boundary.
        let mut end = self.pos;
        if end < self.raw.len() && end > body_start && self.raw.get(end - 1) == Some(&b'\n') {
            end -= 1;
            if end > body_start && self.raw.get(end - 1) == Some(&b'\r') {
                end -= 1;
            }
        }
        Part {
            header: start..body_start,
            body: body_start..end.max(body_start),
            fields,
            media,
            kind,
        }
    }

    /// The body parts of a multipart with `boundary` whose body starts at `self.pos`; leaves
    /// `self.pos` at the boundary line of an enclosing multipart, or at the end.
    fn multipart(&mut self, boundary: Vec<u8>, digest: bool, depth: usize) -> Vec<Part<'a>> {
        self.bounds.push(boundary);
        let mine = self.bounds.len() - 1;
        let mut children = Vec::new();
        // The preamble, then one part after each boundary line.
        while let Some((which, close)) = self.skip_to_boundary() {
            if which < mine {
                // An enclosing multipart's boundary: this one ends here, unclosed.
                break;
            }
            self.pos = self.line_end(self.pos);
            if close {
                // The epilogue runs to an enclosing boundary or the end.
                self.bounds.truncate(mine);
                self.skip_to_boundary();
                return children;
            }
            if self.parts >= MAX_PARTS {
                // Too many parts: the rest stays in the parent's bytes.
                self.skip_to_boundary();
                continue;
            }
            children.push(self.part(digest, depth + 1));
        }
        self.bounds.truncate(mine);
        children
    }
}

/// The fields of a header block (mail-parser's field parsers: RFC 2231 parameters, RFC 2047
/// words).
fn header_fields(header: &[u8]) -> MessagePart<'_> {
    let mut headers = Vec::new();
    if !header.is_empty() {
        MessageStream::new(header).parse_headers(&MessageParser::default(), &mut headers);
    }
    MessagePart {
        headers,
        ..MessagePart::default()
    }
}

/// The media type of a part, lower case: its Content-Type, or the default of where it is —
/// message/rfc822 in a multipart/digest (RFC 2046 §5.1.5), text/plain elsewhere (RFC 2045
/// §5.2). A Content-Type without a subtype is taken as it is, subtype empty.
fn media_type(fields: &MessagePart<'_>, digest: bool) -> (String, String) {
    match fields.content_type() {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or_default().to_ascii_lowercase(),
        ),
        None if digest => ("message".into(), "rfc822".into()),
        None => ("text".into(), "plain".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<'r>(raw: &'r [u8], r: &Range<usize>) -> &'r str {
        std::str::from_utf8(&raw[r.clone()]).unwrap()
    }

    #[test]
    fn nested_message_and_multiparts() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\npre\r\n--a\r\n\r\none\r\n\
--a \r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b\r\n\r\nplain\r\n--b--\r\nepi\r\n\r\n--a--\r\nend\r\n";
        let root = parse(raw);
        let Kind::Multipart(parts) = &root.kind else {
            panic!("{root:?}")
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(text(raw, &parts[0].body), "one");
        assert_eq!(text(raw, &parts[0].header), "\r\n");
        let msg = parts[1].message().expect("message/rfc822");
        assert_eq!(
            text(raw, &msg.header),
            "Subject: in\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
        );
        assert!(text(raw, &parts[1].body).ends_with("--b--\r\nepi\r\n"));
        assert_eq!(text(raw, &root.find(&[2, 1]).unwrap().body), "<p>x</p>");
        assert_eq!(text(raw, &root.find(&[2, 2]).unwrap().body), "plain");
        assert_eq!(
            root.find(&[2, 2]).unwrap().media,
            ("text".into(), "plain".into())
        );
        assert!(root.find(&[3]).is_none());
        // A non-multipart part has only part 1, itself (as Dovecot answers too).
        assert_eq!(root.find(&[1, 1]).unwrap().body, parts[0].body);
        assert!(root.find(&[1, 2]).is_none());
        assert!(root.find(&[1, 1, 1]).is_none());
        assert!(root.find(&[2, 3]).is_none());
        assert!(root.find(&[0]).is_none());
    }

    #[test]
    fn message_rfc822_root_and_digest_defaults() {
        let raw = b"Content-Type: message/rfc822\r\n\r\nSubject: s\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n\
--d\r\n\r\nSubject: m1\r\n\r\nb1\r\n--d\r\nX: y\r\n\r\nSubject: m2\r\n\r\nb2\r\n--d--\r\n";
        let root = parse(raw);
        // BODY[1] of a non-multipart message is its body; 1.1 goes inside the message.
        assert_eq!(root.find(&[1]).unwrap().body, root.body);
        let m1 = root.find(&[1, 1]).unwrap();
        assert_eq!(m1.media, ("message".into(), "rfc822".into()));
        assert_eq!(text(raw, &m1.body), "Subject: m1\r\n\r\nb1");
        assert_eq!(text(raw, &m1.message().unwrap().body), "b1");
        assert_eq!(
            text(raw, &root.find(&[1, 2]).unwrap().header),
            "X: y\r\n\r\n"
        );
        assert_eq!(text(raw, &root.find(&[1, 2, 1]).unwrap().body), "b2");
    }

    #[test]
    fn header_end_is_the_root_split() {
        for raw in [
            &b"A: b\r\n\r\nbody"[..],
            b"A: b\nC: d\n\nbody\n",
            b"no blank line",
            b"\r\nbody",
            b"",
        ] {
            assert_eq!(header_end(raw), parse(raw).body.start, "{raw:?}");
        }
    }

    #[test]
    fn malformed_input_never_panics() {
        for raw in [
            &b""[..],
            b"\r\n",
            b"no header end",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n--x--",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x",
            b"Content-Type: message/rfc822\r\n\r\n",
            b"Content-Type: multipart/mixed\r\n\r\n--x\r\n",
            b"\n\n\n",
        ] {
            let root = parse(raw);
            assert!(root.body.end <= raw.len() && root.header.end <= root.body.start);
        }
    }

    #[test]
    fn depth_and_part_count_are_bounded() {
        let mut raw = Vec::new();
        for i in 0..200 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        let root = parse(&raw);
        let mut depth = 0;
        let mut p = &root;
        while let Kind::Multipart(c) = &p.kind {
            depth += 1;
            p = &c[0];
        }
        assert!(depth <= MAX_DEPTH);

        let mut raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n".to_vec();
        for _ in 0..(MAX_PARTS + 100) {
            raw.extend_from_slice(b"--x\r\n\r\ny\r\n");
        }
        let Kind::Multipart(parts) = parse(&raw).kind else {
            panic!()
        };
        assert!(parts.len() < MAX_PARTS);
    }
}

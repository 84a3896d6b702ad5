//! MIME for FETCH: body sections (RFC 9051 §6.4.5), BINARY parts (RFC 3516), ENVELOPE and
//! BODYSTRUCTURE (RFC 9051 §7.5.2), all cut from the stored bytes along the structure
//! [`tree`] finds. `mail-parser` parses single header fields (Content-Type parameters,
//! RFC 2047 words); the part structure and every byte range are ours, so a section of a
//! forwarded message (`BODY[2.1]`, `BODY[2.HEADER]`) is exactly what BODYSTRUCTURE describes.
//! Every access is checked: a malformed message yields empty sections or a plain
//! `TEXT/PLAIN` structure, never a panic.
//!
//! [`Mime`] is the parsed form to keep when several items of one message are wanted.

mod address;
mod binary;
mod structure;
mod tree;

use imap_proto::{BodyStructure, Envelope, Section, SectionText};
use mail_parser::{Message, MessageParser, MimeHeaders};

pub(crate) use binary::binary_to_base64;
use tree::Part;

/// A message and its MIME structure.
pub(crate) struct Mime<'a> {
    raw: &'a [u8],
    root: Part<'a>,
}

impl<'a> Mime<'a> {
    pub(crate) fn parse(raw: &'a [u8]) -> Mime<'a> {
        Mime {
            raw,
            root: tree::parse(raw),
        }
    }

    fn bytes(&self, r: &std::ops::Range<usize>) -> &'a [u8] {
        self.raw.get(r.clone()).unwrap_or_default()
    }

    /// The bytes of a body section; `None` when the part does not exist (answered as empty).
    /// RFC 9051 §6.4.5: `n` alone is the body of part n; `n.MIME` its MIME header;
    /// `HEADER`, `HEADER.FIELDS`, `TEXT` after a part number address the message
    /// encapsulated in a message/rfc822 part.
    pub(crate) fn section(&self, section: &Section) -> Option<Vec<u8>> {
        let path = &section.part.0;
        let part = self.root.find(path)?;
        if path.is_empty() {
            return Some(match &section.text {
                None => self.raw.to_vec(),
                Some(SectionText::Mime) => return None,
                Some(text) => self.msgtext(part, text),
            });
        }
        Some(match &section.text {
            None => self.bytes(&part.body).to_vec(),
            // An encapsulated message's root has no MIME header of its own: its header
            // (what Dovecot answers too).
            Some(SectionText::Mime) => self.bytes(&part.header).to_vec(),
            Some(text) => self.msgtext(part.message()?, text),
        })
    }

    /// HEADER, HEADER.FIELDS (.NOT) or TEXT of the message `m`.
    fn msgtext(&self, m: &Part<'_>, text: &SectionText) -> Vec<u8> {
        let header = self.bytes(&m.header);
        match text {
            SectionText::Header => header.to_vec(),
            SectionText::HeaderFields(names) => filter_fields(header, names, true),
            SectionText::HeaderFieldsNot(names) => filter_fields(header, names, false),
            SectionText::Text | SectionText::Mime => self.bytes(&m.body).to_vec(),
        }
    }

    /// The raw body of part `path` (non-empty) and its Content-Transfer-Encoding, for BINARY
    /// (RFC 3516 §4.2); `None` when the part does not exist.
    pub(crate) fn part_body(&self, path: &[u32]) -> Option<(&'a [u8], Option<String>)> {
        let part = self.root.find(path)?;
        let cte = match &part.kind {
            // A multipart or message/rfc822 body carries no encoding of its own (RFC 2045 §6.4).
            tree::Kind::Leaf => part.fields.content_transfer_encoding().map(str::to_string),
            _ => None,
        };
        Some((self.bytes(&part.body), cte))
    }

    /// BODYSTRUCTURE (`extended`) or BODY of the message — RFC 9051 §7.5.2.
    pub(crate) fn body_structure(&self, extended: bool) -> BodyStructure {
        structure::of(self, &self.root, extended)
    }
}

/// See [`Mime::section`]. The sections of the message itself (`HEADER`, `HEADER.FIELDS`,
/// `TEXT`) need no part structure.
pub(crate) fn section(raw: &[u8], section: &Section) -> Option<Vec<u8>> {
    if !section.part.0.is_empty() {
        return Mime::parse(raw).section(section);
    }
    let (header, body) = raw.split_at(tree::header_end(raw));
    Some(match &section.text {
        None => raw.to_vec(),
        Some(SectionText::Header) => header.to_vec(),
        Some(SectionText::HeaderFields(names)) => filter_fields(header, names, true),
        Some(SectionText::HeaderFieldsNot(names)) => filter_fields(header, names, false),
        Some(SectionText::Text) => body.to_vec(),
        Some(SectionText::Mime) => return None,
    })
}

/// mail-parser's parse of `raw`, only when the message it returns is `raw` itself. On some
/// corrupt trees (a message/rfc822 part left open inside a multipart) mail-parser 0.11 hands
/// back a nested message in the top level's place, whose bytes and part offsets are not
/// `raw`'s: a caller would then read the wrong octets.
pub(crate) fn parse_whole(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default()
        .parse(raw)
        .filter(|m| std::ptr::eq(m.raw_message(), raw))
}

/// The top-level header of `raw` with the blank line that ends it (RFC 5322 §2.1); the body
/// (`BODY[TEXT]`) starts after it.
pub(crate) fn header_of(raw: &[u8]) -> &[u8] {
    raw.get(..tree::header_end(raw)).unwrap_or_default()
}

/// See [`Mime::body_structure`].
pub(crate) fn body_structure(raw: &[u8], extended: bool) -> BodyStructure {
    Mime::parse(raw).body_structure(extended)
}

/// The field name of a header line that starts a field (not a continuation).
fn field_name(line: &[u8]) -> Option<&[u8]> {
    if matches!(line.first(), Some(b' ' | b'\t') | None) {
        return None;
    }
    let name = line.split(|&b| b == b':').next().unwrap_or_default();
    Some(name.trim_ascii())
}

/// `HEADER.FIELDS` / `.NOT`: the fields of `header` whose names are (not) in `names`, and the
/// blank line — RFC 9051 §6.4.5.
pub(crate) fn filter_fields(header: &[u8], names: &[String], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut include = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        if let Some(name) = field_name(line) {
            include = names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
                == keep;
        }
        if include {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The unfolded, trimmed value of the first `name` field of `header`, as raw bytes: ENVELOPE
/// carries header text as it is (RFC 9051 §7.5.2).
fn raw_field(header: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut value: Vec<u8> = Vec::new();
    let mut found = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        match field_name(line) {
            Some(_) if found => break,
            Some(n) if n.eq_ignore_ascii_case(name.as_bytes()) => {
                found = true;
                let colon = line.iter().position(|&b| b == b':')?;
                value.extend(line.get(colon + 1..).unwrap_or_default());
            }
            None if found => value.extend_from_slice(line),
            _ => {}
        }
    }
    if !found {
        return None;
    }
    value.retain(|&b| b != b'\r' && b != b'\n');
    let v = value.trim_ascii();
    (!v.is_empty()).then(|| v.to_vec())
}

/// The ENVELOPE of a message with header `header`.
pub(crate) fn envelope_of(header: &[u8]) -> Envelope {
    let list = |name| {
        raw_field(header, name)
            .map(|v| address::parse_list(&v))
            .unwrap_or_default()
    };
    let mut env = Envelope {
        date: raw_field(header, "Date"),
        subject: raw_field(header, "Subject"),
        from: list("From"),
        sender: list("Sender"),
        reply_to: list("Reply-To"),
        to: list("To"),
        cc: list("Cc"),
        bcc: list("Bcc"),
        in_reply_to: raw_field(header, "In-Reply-To"),
        message_id: raw_field(header, "Message-ID"),
    };
    env.fill_defaults();
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_proto::Part as P;

    fn sec(path: &[u32], text: Option<SectionText>) -> Section {
        Section {
            part: P(path.to_vec()),
            text,
        }
    }

    fn get(raw: &[u8], path: &[u32], text: Option<SectionText>) -> Option<String> {
        Mime::parse(raw)
            .section(&sec(path, text))
            .map(|b| String::from_utf8(b).unwrap())
    }

    const FORWARDED: &[u8] = b"From: a@b.c\r\nSubject: fwd\r\nContent-Type: multipart/mixed; boundary=\"X\"\r\n\r\n\
--X\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
--X\r\nContent-Type: message/rfc822\r\n\r\nFrom: x@y.z\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=Y\r\n\r\n\
--Y\r\nContent-Type: text/plain\r\n\r\nplain\r\n--Y\r\nContent-Type: text/html\r\n\r\n<b>html</b>\r\n--Y--\r\n\r\n--X--\r\n";

    #[test]
    fn sections_of_a_forwarded_message() {
        use SectionText as T;
        let r = FORWARDED;
        assert_eq!(get(r, &[1], None).unwrap(), "see below");
        assert_eq!(get(r, &[2, 1], None).unwrap(), "plain");
        assert_eq!(get(r, &[2, 2], None).unwrap(), "<b>html</b>");
        assert_eq!(
            get(r, &[2], Some(T::Header)).unwrap(),
            "From: x@y.z\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=Y\r\n\r\n"
        );
        assert_eq!(
            get(r, &[2], Some(T::HeaderFields(vec!["subject".into()]))).unwrap(),
            "Subject: inner\r\n\r\n"
        );
        assert!(get(r, &[2], Some(T::Text)).unwrap().starts_with("--Y\r\n"));
        assert_eq!(
            get(r, &[2], Some(T::Mime)).unwrap(),
            "Content-Type: message/rfc822\r\n\r\n"
        );
        assert_eq!(
            get(r, &[2, 2], Some(T::Mime)).unwrap(),
            "Content-Type: text/html\r\n\r\n"
        );
        // HEADER of a part that is not a message, and parts that do not exist.
        assert_eq!(get(r, &[1], Some(T::Header)), None);
        assert_eq!(get(r, &[3], None), None);
        assert_eq!(get(r, &[2, 3], None), None);
        assert_eq!(get(r, &[], Some(T::Mime)), None);
        assert_eq!(
            get(r, &[], Some(T::HeaderFields(vec!["SUBJECT".into()]))).unwrap(),
            "Subject: fwd\r\n\r\n"
        );
    }

    #[test]
    fn envelope_fields() {
        let env = envelope_of(b"Subject:  folded\r\n  value \r\nFrom: A <a@b.c>\r\nX: y\r\n\r\n");
        assert_eq!(env.subject.as_deref(), Some(&b"folded  value"[..]));
        assert_eq!(env.sender, env.from);
        assert_eq!(env.from[0].name.as_deref(), Some(&b"A"[..]));
        assert_eq!(raw_field(b"A: \r\n\r\n", "A"), None);
    }

    #[test]
    fn sections_of_a_tree_mail_parser_loses_are_the_stored_bytes() {
        let raw: &[u8] =
            include_bytes!("../../../../fuzz/corpus/imap_mime/regression_mail_parser_swapped_root");
        assert!(parse_whole(raw).is_none());
        let whole = section(raw, &sec(&[], None)).unwrap();
        assert_eq!(whole, raw);
        let header = section(raw, &sec(&[], Some(SectionText::Header))).unwrap();
        assert!(header.starts_with(b"From: a@b.c\r\nSubject: fwd\r\n"));
        assert_eq!(
            section(raw, &sec(&[1], None)).unwrap(),
            Mime::parse(raw).section(&sec(&[1], None)).unwrap()
        );
        assert!(parse_whole(FORWARDED).is_some());
    }
}

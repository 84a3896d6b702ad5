//! The header fixes of a message submission agent (RFC 6409 §8) and the From: check's input.
//!
//! A careful scan of the header block, not a rewrite: fields we do not touch keep their
//! exact bytes. The header block ends at the first empty line (RFC 5322 §2.1); a field begins
//! with a non-blank line and continues over lines that start with SP or HTAB (§2.2.3).

use std::ops::Range;

/// Where the header block ends: the index just after the first empty line (CRLF, or a bare
/// LF from a sloppy client), or the message length when there is no body.
pub(crate) fn header_end(message: &[u8]) -> usize {
    let mut pos = 0;
    while pos < message.len() {
        let end = message[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |i| pos + i + 1);
        if matches!(&message[pos..end], b"\r\n" | b"\n") {
            return end;
        }
        pos = end;
    }
    message.len()
}

/// One header field: its name (trimmed, as written) and its bytes including the final CRLF.
pub(crate) struct Field<'a> {
    pub name: &'a [u8],
    pub range: Range<usize>,
}

/// The fields of the header block `message[..end]` in order. Lines that are not fields
/// (no colon) are returned with an empty name, so nothing is silently dropped.
pub(crate) fn fields(message: &[u8], end: usize) -> Vec<Field<'_>> {
    let head = &message[..end.min(message.len())];
    let mut out: Vec<Field<'_>> = Vec::new();
    let mut pos = 0;
    while pos < head.len() {
        let line_end = head[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(head.len(), |i| pos + i + 1);
        let line = &head[pos..line_end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match out.last_mut() {
            Some(last) if continuation => last.range.end = line_end,
            _ => {
                let name = match line.iter().position(|&b| b == b':') {
                    Some(i) => line[..i].trim_ascii(),
                    None => &[][..],
                };
                out.push(Field {
                    name,
                    range: pos..line_end,
                });
            }
        }
        pos = line_end;
    }
    out
}

/// How many fields named `name` (case-insensitive) the header block has.
pub(crate) fn count(message: &[u8], name: &str) -> usize {
    fields(message, header_end(message))
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .count()
}

/// The addresses of the From: field, as mail-parser reads them (RFC 5322 §3.6.2); `None`
/// when there is no From: or an entry without an address (a group with no members, garbage).
pub(crate) fn from_addresses(message: &[u8]) -> Option<Vec<String>> {
    let head = &message[..header_end(message)];
    let parsed = mail_parser::MessageParser::default().parse_headers(head)?;
    let from = parsed.from()?;
    let mut out = Vec::new();
    for addr in from.iter() {
        out.push(addr.address()?.to_string());
    }
    (!out.is_empty()).then_some(out)
}

/// The submission fixes, applied to the message as the client sent it:
/// - every `Bcc:` field is removed (RFC 5322 §3.6.3: the Bcc: field is removed before the
///   message is sent on; RFC 6409 §8 lets the MSA make such changes);
/// - a missing `Date:` is added (RFC 6409 §8.2) and a missing `Message-ID:` too
///   (RFC 6409 §8.3), as `<random@hostname>`.
pub(crate) fn submission_fixes(
    message: &[u8],
    hostname: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    let end = header_end(message);
    let fields = fields(message, end);
    let has = |name: &str| {
        fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
    };
    let mut out = Vec::with_capacity(message.len() + 128);
    if !has("Date") {
        // RFC 5322 §3.3 date-time.
        let date = now.format("%a, %d %b %Y %H:%M:%S +0000");
        out.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
    }
    if !has("Message-ID") {
        out.extend_from_slice(format!("Message-ID: {}\r\n", message_id(hostname)).as_bytes());
    }
    let mut copied = 0;
    for f in &fields {
        if f.name.eq_ignore_ascii_case(b"Bcc") {
            out.extend_from_slice(&message[copied..f.range.start]);
            copied = f.range.end;
        }
    }
    out.extend_from_slice(&message[copied..]);
    out
}

/// `msg-id = "<" id-left "@" id-right ">"` — RFC 5322 §3.6.4: 128 random bits and our name.
fn message_id(hostname: &str) -> String {
    let mut raw = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    let left: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let right: String = hostname
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    let right = if right.is_empty() {
        "localhost".to_string()
    } else {
        right
    };
    format!("<{left}@{right}>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fix(m: &str) -> String {
        let now = chrono::Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        String::from_utf8(submission_fixes(m.as_bytes(), "mx.example.com", now)).unwrap()
    }

    #[test]
    fn bcc_removed_with_continuations() {
        let m = "From: a@b\r\nBcc: x@y,\r\n z@w\r\nTo: t@u\r\nbcc:\r\nDate: x\r\nMessage-ID: <1@b>\r\n\r\nBcc: body stays\r\n";
        assert_eq!(
            fix(m),
            "From: a@b\r\nTo: t@u\r\nDate: x\r\nMessage-ID: <1@b>\r\n\r\nBcc: body stays\r\n"
        );
    }

    #[test]
    fn date_and_message_id_added_only_when_missing() {
        let out = fix("From: a@b\r\nSubject: hi\r\n\r\nbody\r\n");
        assert!(out.starts_with("Date: Tue, 02 Jan 2024 03:04:05 +0000\r\nMessage-ID: <"));
        assert!(out.contains("@mx.example.com>\r\nFrom: a@b\r\nSubject: hi\r\n\r\nbody\r\n"));
        let out = fix("date: x\r\nmessage-id: <y@z>\r\n\r\n");
        assert_eq!(out, "date: x\r\nmessage-id: <y@z>\r\n\r\n");
        assert_ne!(message_id("h"), message_id("h"));
    }

    #[test]
    fn from_scan() {
        let m = b"From: \"A\" <a@b.example>, c@d.example\r\nTo: x@y\r\n\r\nFrom: e@f\r\n";
        assert_eq!(
            from_addresses(m),
            Some(vec!["a@b.example".to_string(), "c@d.example".to_string()])
        );
        assert_eq!(count(m, "from"), 1);
        assert_eq!(count(b"From: a@b\r\nFROM : c@d\r\n\r\n", "From"), 2);
        assert_eq!(from_addresses(b"To: x@y\r\n\r\n"), None);
        assert_eq!(from_addresses(b"From: undisclosed:;\r\n\r\n"), None);
        assert_eq!(header_end(b"\r\nbody"), 2);
        assert_eq!(header_end(b"A: b\r\n"), 6);
        assert_eq!(header_end(b"A: b\nBcc: x\n\nBcc: y\n"), 13);
    }
}

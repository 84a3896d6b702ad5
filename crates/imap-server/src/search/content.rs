//! The header and body search keys (RFC 9051 §6.4.4) over a parsed message: substring
//! matches, case-insensitive, against decoded text — RFC 2047 encoded-words in headers and
//! the transfer-decoded, charset-converted text parts (mail-parser does both).

use mail_parser::{Address, HeaderValue, Message, MessageParser, PartType};

/// Nested message/rfc822 parts searched at most this deep, so a hostile message cannot
/// make BODY recurse without bound.
const MAX_NESTING: usize = 8;

/// One loaded message. Parsing never fails hard: unparsable bytes are searched as text.
pub(crate) struct Content<'a> {
    raw: &'a [u8],
    /// The parsed message, or only its header when mail-parser could not follow the MIME
    /// tree (see `mime::parse_whole`).
    msg: Option<Message<'a>>,
    /// `msg` holds the whole message, so its text parts are the body.
    whole: bool,
}

fn needle(s: &[u8]) -> String {
    // The command's charset is UTF-8 or US-ASCII (checked before), so lossy only replaces
    // invalid bytes.
    String::from_utf8_lossy(s).to_lowercase()
}

/// RFC 9051 §6.4.4: "case-insensitive" substring; Unicode lowercase on both sides.
fn contains(hay: &str, needle: &str) -> bool {
    needle.is_empty() || hay.to_lowercase().contains(needle)
}

/// Removes folding (RFC 5322 §2.2.3) so a phrase split across lines still matches.
fn unfold(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .replace("\r\n", "")
        .replace('\n', "")
}

fn address_text(a: &Address<'_>) -> String {
    let mut out = Vec::new();
    let mut one = |name: Option<&str>, addr: Option<&str>| match (name, addr) {
        (Some(n), Some(a)) => out.push(format!("{n} <{a}>")),
        (Some(n), None) => out.push(n.to_string()),
        (None, Some(a)) => out.push(a.to_string()),
        (None, None) => {}
    };
    match a {
        Address::List(list) => {
            for x in list {
                one(x.name(), x.address());
            }
        }
        Address::Group(groups) => {
            for g in groups {
                one(g.name.as_deref(), None);
                for x in &g.addresses {
                    one(x.name(), x.address());
                }
            }
        }
    }
    out.join(", ")
}

/// The decoded form of a header value, where mail-parser has one.
fn value_text(v: &HeaderValue<'_>) -> Option<String> {
    match v {
        HeaderValue::Text(t) => Some(t.to_string()),
        HeaderValue::TextList(l) => Some(l.join(", ")),
        HeaderValue::Address(a) => Some(address_text(a)),
        _ => None,
    }
}

/// The header block as text, decoded values appended to the raw fields, for TEXT.
fn headers_text(msg: &Message<'_>, part: usize) -> String {
    let mut out = String::new();
    let Some(p) = msg.parts.get(part) else {
        return out;
    };
    for h in &p.headers {
        if let Some(raw) = msg
            .raw_message
            .get(h.offset_field as usize..h.offset_end as usize)
        {
            out.push_str(&unfold(raw));
            out.push('\n');
        }
        if let Some(t) = value_text(&h.value) {
            out.push_str(&t);
            out.push('\n');
        }
    }
    out
}

/// Whether any text part of `msg` (nested messages included, their headers too) contains
/// `n`.
fn body_contains(msg: &Message<'_>, n: &str, depth: usize) -> bool {
    msg.parts.iter().any(|p| match &p.body {
        PartType::Text(t) | PartType::Html(t) => contains(t, n),
        PartType::Message(m) if depth < MAX_NESTING => {
            contains(&headers_text(m, 0), n) || body_contains(m, n, depth + 1)
        }
        _ => false,
    })
}

impl<'a> Content<'a> {
    pub fn parse(raw: &'a [u8]) -> Content<'a> {
        match crate::mime::parse_whole(raw) {
            Some(msg) => Content {
                raw,
                msg: Some(msg),
                whole: true,
            },
            None => Content {
                raw,
                msg: MessageParser::default().parse_headers(raw),
                whole: false,
            },
        }
    }

    /// The parsed whole message, if mail-parser could follow it.
    fn whole(&self) -> Option<&Message<'a>> {
        self.msg.as_ref().filter(|_| self.whole)
    }

    /// The day of the Date: header as written (RFC 9051 §6.4.4: SENTBEFORE/SENTON/SENTSINCE
    /// disregard time and timezone), in days since 1970-01-01.
    pub fn sent_day(&self) -> Option<i64> {
        let d = self.msg.as_ref()?.date()?;
        Some(imap_proto::Date::new(d.year, d.month, d.day)?.days_since_epoch())
    }

    /// `HEADER name value`: a field named `name` whose text contains `value`; an empty value
    /// matches any message with the field (RFC 9051 §6.4.4).
    pub fn header(&self, name: &str, value: &[u8]) -> bool {
        let Some(msg) = &self.msg else { return false };
        let n = needle(value);
        msg.root_part()
            .headers
            .iter()
            .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
            .any(|h| {
                let raw = msg
                    .raw_message
                    .get(h.offset_start as usize..h.offset_end as usize)
                    .map(unfold)
                    .unwrap_or_default();
                contains(&raw, &n) || value_text(&h.value).is_some_and(|t| contains(&t, &n))
            })
    }

    /// FROM/TO/CC/BCC: the header's text, raw or decoded display names and addresses.
    pub fn address_header(&self, name: &str, value: &[u8]) -> bool {
        self.header(name, value)
    }

    /// SUBJECT, with RFC 2047 encoded-words decoded.
    pub fn subject(&self, value: &[u8]) -> bool {
        self.header("Subject", value)
    }

    /// BODY: the decoded text parts (RFC 9051 §6.4.4: "in the body of the message").
    pub fn body(&self, value: &[u8]) -> bool {
        let n = needle(value);
        match self.whole() {
            Some(msg) => body_contains(msg, &n, 0),
            None => contains(&String::from_utf8_lossy(self.raw), &n),
        }
    }

    /// TEXT: the header or the body (RFC 9051 §6.4.4).
    pub fn text(&self, value: &[u8]) -> bool {
        let n = needle(value);
        match self.whole() {
            Some(msg) => contains(&headers_text(msg, 0), &n) || body_contains(msg, &n, 0),
            None => contains(&String::from_utf8_lossy(self.raw), &n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fuzzer's input on which mail-parser 0.11 returns a nested message as the root.
    const SWAPPED_ROOT: &[u8] =
        include_bytes!("../../../../fuzz/corpus/imap_mime/regression_mail_parser_swapped_root");

    #[test]
    fn a_tree_mail_parser_loses_is_searched_as_stored() {
        assert!(crate::mime::parse_whole(SWAPPED_ROOT).is_none());
        let c = Content::parse(SWAPPED_ROOT);
        // The top-level header is the message's own, not the nested one mail-parser returned.
        assert!(c.header("From", b"a@b.c"));
        assert!(c.subject(b"fwd"));
        assert!(!c.subject(b"inner"));
        // Body and TEXT see every byte, the last part included.
        assert!(c.body(b"JVBERi0xLjQK"));
        assert!(c.text(b"Subject: fwd"));
        assert!(!c.body(b"not in it"));
    }

    #[test]
    fn a_well_formed_message_is_searched_decoded() {
        let raw = b"From: a@b.c\r\nSubject: =?UTF-8?B?w6l0w6k=?=\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGlkZGVuIHdvcmQ=\r\n";
        assert!(crate::mime::parse_whole(raw).is_some());
        let c = Content::parse(raw);
        assert!(c.subject("été".as_bytes()));
        assert!(c.body(b"hidden word"));
        assert!(!c.body(b"aGlkZGVu"));
    }
}

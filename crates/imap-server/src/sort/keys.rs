//! What SORT and THREAD need from a message's header, extracted once: a pure function from the
//! raw bytes (only the header is looked at) to [`MessageKeys`].
//!
//! RFC 5256 §2.1 (base subject), §2.2 (sent date), §3 (the SORT keys: the `addr-mailbox` of the
//! first From/To/Cc address; the REFERENCES algorithm's Message-ID and references); RFC 5957
//! §3 (DISPLAYFROM / DISPLAYTO: the display name, else the address).

use mail_parser::{Address, HeaderValue, MessageParser};

use super::subject::{BaseSubject, base_subject};

/// The header facts of one message that SORT and THREAD use. Strings are as decoded
/// (RFC 2047); comparisons case-fold them later.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MessageKeys {
    /// The `Date:` field as a UTC instant (RFC 5256 §2.2); `None` when missing or unparsable,
    /// and the INTERNALDATE is used instead.
    pub sent_date: Option<i64>,
    /// RFC 5256 §2.1.
    pub base_subject: String,
    /// The subject had a reply/forward marker (RFC 5256 §3, REFERENCES step 5).
    pub reply: bool,
    /// `addr-mailbox` (local part) of the first address, or the group name when the field
    /// opens with a group, as the ENVELOPE would show it (RFC 5256 §3); empty when absent.
    pub from: String,
    pub to: String,
    pub cc: String,
    /// RFC 5957 §3: the display name of the first address, or its `addr-spec` when it has
    /// none (a group: its name); empty when absent.
    pub display_from: String,
    pub display_to: String,
    /// The first message ID of `Message-ID:`, without the angle brackets.
    pub message_id: Option<String>,
    /// `References:`, or else the first ID of `In-Reply-To:` (RFC 5256 §3 REFERENCES step
    /// 1A), oldest first.
    pub references: Vec<String>,
}

/// The header block of a message: up to and including the blank line (all of it when there
/// is none).
fn header_block(raw: &[u8]) -> &[u8] {
    let mut i = 0;
    while let Some(nl) = raw
        .get(i..)
        .and_then(|r| r.iter().position(|&b| b == b'\n'))
    {
        let line_end = i + nl + 1;
        let line = &raw[i..line_end];
        if line == b"\n" || line == b"\r\n" {
            return &raw[..line_end];
        }
        i = line_end;
    }
    raw
}

/// (addr-mailbox, display) of the first address of a field.
fn first_address(a: Option<&Address<'_>>) -> (String, String) {
    let one = |name: Option<&str>, addr: Option<&str>| {
        let addr = addr.unwrap_or_default();
        let mailbox = addr.rsplit_once('@').map_or(addr, |(l, _)| l).to_string();
        let display = match name.map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => addr.to_string(),
        };
        (mailbox, display)
    };
    match a {
        None => (String::new(), String::new()),
        Some(Address::List(list)) => list
            .first()
            .map(|x| one(x.name(), x.address()))
            .unwrap_or_default(),
        Some(Address::Group(groups)) => match groups.first() {
            // RFC 9051 §7.5.2: a group opens with its name where the mailbox would be.
            Some(g) => match &g.name {
                Some(name) => (name.to_string(), name.to_string()),
                None => g
                    .addresses
                    .first()
                    .map(|x| one(x.name(), x.address()))
                    .unwrap_or_default(),
            },
            None => (String::new(), String::new()),
        },
    }
}

fn ids(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .map(|id| clip(id.trim().to_string(), MAX_ID))
    .filter(|id| !id.is_empty())
    .collect()
}

/// Most references a message contributes: more are dropped from the oldest end (the direct
/// parent is the last one), bounding the work and memory a hostile header can cause.
const MAX_REFERENCES: usize = 50;

/// Longest message ID kept (RFC 5322 lines are at most 998 octets); longer ones are cut.
const MAX_ID: usize = 250;

/// Longest subject, address or display name kept for comparison: strings that agree this far
/// sort as equal (then by sequence number), and the keys of a mailbox stay small whatever
/// its messages say.
const MAX_TEXT: usize = 1000;

/// `s` cut to at most `max` octets, on a character boundary.
fn clip(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

impl MessageKeys {
    /// Extracts the keys from a message (only its header is read). Never fails: what cannot
    /// be parsed is absent.
    pub fn parse(raw: &[u8]) -> MessageKeys {
        let header = header_block(raw);
        // A last field without its line end (a message that is all header) still counts.
        let owned;
        let header = if header.ends_with(b"\n") {
            header
        } else {
            owned = [header, b"\r\n"].concat();
            &owned
        };
        let Some(msg) = MessageParser::default().parse_headers(header) else {
            return MessageKeys::default();
        };
        let BaseSubject { text, reply } = base_subject(msg.subject().unwrap_or_default());
        let (from, display_from) = first_address(msg.from());
        let (to, display_to) = first_address(msg.to());
        let (cc, _) = first_address(msg.cc());
        let message_id = msg
            .header(mail_parser::HeaderName::MessageId)
            .map(ids)
            .and_then(|v| v.into_iter().next());
        // RFC 5256 §3 step 1A: References, or else the first ID of In-Reply-To.
        let mut references = ids(msg.references());
        if references.is_empty() {
            references = ids(msg.in_reply_to()).into_iter().take(1).collect();
        }
        if references.len() > MAX_REFERENCES {
            references.drain(..references.len() - MAX_REFERENCES);
        }
        MessageKeys {
            sent_date: msg
                .date()
                .filter(|d| d.is_valid())
                .map(|d| d.to_timestamp()),
            base_subject: clip(text, MAX_TEXT),
            reply,
            from: clip(from, MAX_TEXT),
            to: clip(to, MAX_TEXT),
            cc: clip(cc, MAX_TEXT),
            display_from: clip(display_from, MAX_TEXT),
            display_to: clip(display_to, MAX_TEXT),
            message_id,
            references,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_groups() {
        let k = MessageKeys::parse(
            b"From: Foo Bar <User2@domain2.org>\r\nTo: user2@domain1.org\r\n\
              Cc: user2: blah@domain1.org;\r\n\r\nbody\r\n",
        );
        assert_eq!(k.from, "User2");
        assert_eq!(k.display_from, "Foo Bar");
        assert_eq!(k.to, "user2");
        assert_eq!(k.display_to, "user2@domain1.org");
        assert_eq!(k.cc, "user2", "a group: its name, as the ENVELOPE shows it");
        let k = MessageKeys::parse(
            b"To: a: xx@xx.org, yy@yy.org;\r\nFrom: =?iso-8859-1?q?foo_aar?= <e@f.g>\r\n\r\n",
        );
        assert_eq!(k.display_to, "a");
        assert_eq!(k.display_from, "foo aar");
        let k = MessageKeys::parse(b"Cc: user2@domain2.org (foo bar)\r\n\r\n");
        assert_eq!(k.cc, "user2");
        assert_eq!(MessageKeys::parse(b"Subject: x\r\n\r\n").from, "");
    }

    #[test]
    fn dates_subjects_and_ids() {
        let k = MessageKeys::parse(
            b"Date: Fri, 22 Feb 2008 02:00:00 +0200\r\nSubject: =?iso-8859-1?q?RE:_C?=\r\n\
              Message-ID: <a@b>\r\nReferences: <x@y>\r\n <z@y>\r\nIn-Reply-To: <q@y>\r\n\r\n",
        );
        // 2008-02-22 00:00:00 UTC.
        assert_eq!(k.sent_date, Some(1_203_638_400));
        assert_eq!((k.base_subject.as_str(), k.reply), ("C", true));
        assert_eq!(k.message_id.as_deref(), Some("a@b"));
        assert_eq!(k.references, ["x@y", "z@y"]);
        let k = MessageKeys::parse(b"In-Reply-To: <q@y> <r@y>\r\nDate: garbage\r\n\r\n");
        assert_eq!(k.references, ["q@y"], "only the first In-Reply-To ID");
        assert_eq!(k.sent_date, None);
        assert_eq!(k.message_id, None);
        // The body is not looked at.
        let k = MessageKeys::parse(b"X: y\r\n\r\nSubject: not a header\r\n");
        assert_eq!(k.base_subject, "");
        let k = MessageKeys::parse(b"Subject: no body at all");
        assert_eq!(k.base_subject, "no body at all");
    }

    #[test]
    fn keys_are_bounded() {
        let refs: String = (0..1000).map(|i| format!(" <{i}@x>")).collect();
        let k = MessageKeys::parse(format!("References:{refs}\r\n\r\n").as_bytes());
        assert_eq!(k.references.len(), MAX_REFERENCES);
        assert_eq!(k.references.last().map(String::as_str), Some("999@x"));
        let long = "\u{e9}".repeat(5000);
        let k = MessageKeys::parse(
            format!("Subject: {long}\r\nMessage-ID: <{long}>\r\n\r\n").as_bytes(),
        );
        assert_eq!(k.base_subject.len(), MAX_TEXT);
        assert!(k.message_id.is_some_and(|id| id.len() == MAX_ID));
    }
}

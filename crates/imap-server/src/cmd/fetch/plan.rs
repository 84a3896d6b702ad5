//! What a FETCH's data items need of each message, decided once per command: the session's
//! view (flags, dates, sizes), the cached facts (ENVELOPE, BODYSTRUCTURE, the header), the
//! stored bytes, or a MIME parse (sections of parts) — so each message costs only what the
//! client asked for.

use imap_proto::{FetchAttribute as A, FetchAttributes, SectionText};

/// What the items of one FETCH need beyond the view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Needs {
    /// The cached facts ([`crate::facts`]).
    pub facts: bool,
    /// The message's bytes.
    pub raw: bool,
    /// A MIME parse of the bytes (sections of a part, BINARY of a part).
    pub parse: bool,
}

impl Needs {
    fn add(&mut self, other: Needs) {
        self.facts |= other.facts;
        self.raw |= other.raw;
        self.parse |= other.parse;
    }

    /// Anything beyond the view.
    pub fn body(&self) -> bool {
        self.facts || self.raw || self.parse
    }
}

const VIEW: Needs = Needs {
    facts: false,
    raw: false,
    parse: false,
};
const FACTS: Needs = Needs {
    facts: true,
    raw: false,
    parse: false,
};
const RAW: Needs = Needs {
    facts: false,
    raw: true,
    parse: false,
};
/// The body after the header: its start comes from the facts.
const TEXT: Needs = Needs {
    facts: true,
    raw: true,
    parse: false,
};
const PARSE: Needs = Needs {
    facts: false,
    raw: true,
    parse: true,
};

/// What one data item needs.
pub(super) fn needs(a: &A) -> Needs {
    match a {
        A::Flags | A::Uid | A::InternalDate | A::Rfc822Size | A::ModSeq | A::SaveDate => VIEW,
        A::Envelope | A::Body | A::BodyStructure | A::Rfc822Header => FACTS,
        A::Rfc822 => RAW,
        A::Rfc822Text => TEXT,
        A::BodySection { section, .. } if section.part.0.is_empty() => match section.text {
            None => RAW,
            Some(SectionText::Text) => TEXT,
            Some(
                SectionText::Header
                | SectionText::HeaderFields(_)
                | SectionText::HeaderFieldsNot(_),
            ) => FACTS,
            // `MIME` needs a part number (RFC 9051 §6.4.5); answered as an empty string.
            Some(SectionText::Mime) => VIEW,
        },
        A::BodySection { .. } => PARSE,
        A::Binary { part, .. } | A::BinarySize { part } if part.0.is_empty() => RAW,
        A::Binary { .. } | A::BinarySize { .. } => PARSE,
    }
}

/// Whether fetching `a` sets `\Seen` (RFC 9051 §6.4.5: BODY[...] without PEEK, RFC822,
/// RFC822.TEXT; RFC 3516 §4.2: BINARY[...] without PEEK).
pub(super) fn sets_seen(a: &A) -> bool {
    matches!(
        a,
        A::BodySection { peek: false, .. }
            | A::Binary { peek: false, .. }
            | A::Rfc822
            | A::Rfc822Text
    )
}

/// The items of a FETCH, macros expanded and each item once (a client that names one twice
/// gets it once, as from Dovecot); UID first for UID FETCH (RFC 9051 §6.4.9) and MODSEQ
/// with CHANGEDSINCE (RFC 7162 §3.1.4.1). Returns them with what they need together.
pub(super) fn items(attributes: &FetchAttributes, uid: bool, modseq: bool) -> (Vec<A>, Needs) {
    let mut attrs: Vec<A> = Vec::new();
    for a in attributes.expand() {
        if !attrs.contains(&a) {
            attrs.push(a);
        }
    }
    if uid && !attrs.contains(&A::Uid) {
        attrs.insert(0, A::Uid);
    }
    if modseq && !attrs.contains(&A::ModSeq) {
        let at = attrs.iter().position(|a| *a == A::Uid).map_or(0, |i| i + 1);
        attrs.insert(at, A::ModSeq);
    }
    let mut n = Needs::default();
    for a in &attrs {
        n.add(needs(a));
    }
    (attrs, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_proto::{Part, Section};

    fn section(part: &[u32], text: Option<SectionText>) -> A {
        A::BodySection {
            section: Section {
                part: Part(part.to_vec()),
                text,
            },
            partial: None,
            peek: true,
        }
    }

    #[test]
    fn each_item_costs_what_it_needs() {
        assert_eq!(needs(&A::Flags), VIEW);
        assert_eq!(needs(&A::Envelope), FACTS);
        assert_eq!(
            needs(&section(
                &[],
                Some(SectionText::HeaderFields(vec!["From".into()]))
            )),
            FACTS
        );
        assert_eq!(needs(&section(&[], None)), RAW, "BODY[] is sent as stored");
        assert_eq!(needs(&section(&[], Some(SectionText::Text))), TEXT);
        assert_eq!(needs(&section(&[2], Some(SectionText::Header))), PARSE);
    }

    #[test]
    fn items_are_deduplicated_with_uid_and_modseq_first() {
        let list = FetchAttributes::List(vec![A::Flags, A::Envelope, A::Flags]);
        let (attrs, n) = items(&list, true, true);
        assert_eq!(attrs, [A::Uid, A::ModSeq, A::Flags, A::Envelope]);
        assert!(n.facts && !n.raw && !n.parse);
        let (attrs, n) = items(&FetchAttributes::Fast, false, false);
        assert_eq!(attrs, [A::Flags, A::InternalDate, A::Rfc822Size]);
        assert!(!n.body());
    }
}

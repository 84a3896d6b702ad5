//! The MIME paths of IMAP FETCH and SEARCH on a hostile message: BODYSTRUCTURE, BODY,
//! ENVELOPE (RFC 9051 §7.5.2), `BODY[section]` (§6.4.5), BINARY (RFC 3516), and the text
//! search keys (§6.4.4).

use imap_proto::{Section, SectionText, parse_section_spec};

/// The sections asked of every message: the message's own, nested parts, the MIME header
/// of deep parts, the header of encapsulated messages.
const SECTIONS: &[&str] = &[
    "",
    "HEADER",
    "TEXT",
    "HEADER.FIELDS (From Subject Content-Type)",
    "HEADER.FIELDS.NOT (Received)",
    "1",
    "1.MIME",
    "2",
    "2.MIME",
    "2.HEADER",
    "2.TEXT",
    "1.1",
    "1.2",
    "2.1",
    "2.1.MIME",
    "1.2.3",
    "1.2.3.MIME",
    "1.1.1.1.1.1",
    "3.HEADER.FIELDS (Subject)",
    "4294967295",
];

/// The message's BODYSTRUCTURE, BODY and ENVELOPE are well-formed IMAP data (balanced
/// parentheses outside strings, literals of their stated size); a part's body and MIME
/// header are bytes of the message; FETCH's two section paths agree; nothing panics.
pub fn imap_mime(data: &[u8]) {
    let sections: Vec<Section> = SECTIONS
        .iter()
        .map(|s| parse_section_spec(s).expect("a fixed section spec parses"))
        .collect();
    let out = imap_server::fuzz_api::mime_paths(data, &sections, b"needle");
    for (name, wire) in [
        ("BODYSTRUCTURE", &out.bodystructure),
        ("BODY", &out.body),
        ("ENVELOPE", &out.envelope),
    ] {
        check_wire(name, wire);
    }
    assert!(
        data.starts_with(&out.header),
        "the header section is not the message's start"
    );
    for (i, s) in sections.iter().enumerate() {
        let got = &out.sections[i];
        if let Some(bytes) = got
            && !s.part.0.is_empty()
            && matches!(s.text, None | Some(SectionText::Mime))
        {
            assert!(
                contains(data, bytes),
                "BODY[{}] is not a piece of the message",
                SECTIONS[i]
            );
        }
        if s.part.0.is_empty()
            && let Some(Some(short)) = &out.shortcut[i]
        {
            assert_eq!(
                Some(short),
                got.as_ref(),
                "BODY[{}] differs between FETCH's two paths",
                SECTIONS[i]
            );
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Parentheses balance outside quoted strings and literals, quoted strings end, literals
/// have their bytes — RFC 9051 §4.
fn check_wire(name: &str, wire: &[u8]) {
    let mut depth: i64 = 0;
    let mut i = 0;
    while i < wire.len() {
        match wire[i] {
            b'"' => {
                i += 1;
                loop {
                    match wire.get(i) {
                        None => panic!("{name}: unterminated quoted string: {wire:?}"),
                        Some(b'\\') => i += 2,
                        Some(b'"') => break,
                        Some(b'\r' | b'\n') => panic!("{name}: line end in a quoted string"),
                        Some(_) => i += 1,
                    }
                }
            }
            b'{' => {
                let close = wire[i..]
                    .iter()
                    .position(|&b| b == b'}')
                    .unwrap_or_else(|| panic!("{name}: unterminated literal marker"));
                let n: usize = std::str::from_utf8(&wire[i + 1..i + close])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("{name}: bad literal marker"));
                assert_eq!(
                    wire.get(i + close + 1..i + close + 3),
                    Some(&b"\r\n"[..]),
                    "{name}: literal marker without CRLF"
                );
                i += close + 3 + n;
                assert!(i <= wire.len(), "{name}: literal cut short");
                continue;
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                assert!(depth >= 0, "{name}: unbalanced ')': {wire:?}");
            }
            b'\r' | b'\n' => panic!("{name}: line end outside a literal"),
            _ => {}
        }
        i += 1;
    }
    assert_eq!(depth, 0, "{name}: unbalanced '(': {wire:?}");
}

//! FETCH and UID FETCH: attributes, sections, partials and modifiers — RFC 9051 §6.4.5,
//! RFC 3516 (BINARY), RFC 7162 (CONDSTORE/QRESYNC).

use std::fmt;

use super::search::partial_range;
use super::sequence::sequence_set;
use super::{CommandBody, Cursor, PResult};
use crate::encode::write_astring;

/// `section-part = nz-number *("." nz-number)`; empty means the whole message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Part(pub Vec<u32>);

/// `section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"`;
/// `section-text = section-msgtext / "MIME"` — RFC 9051 §9.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SectionText {
    Header,
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    /// Only after a part number (RFC 9051 §6.4.5).
    Mime,
}

/// `section-spec = section-msgtext / (section-part ["." section-text])` — RFC 9051 §9.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Section {
    pub part: Part,
    pub text: Option<SectionText>,
}

/// One `fetch-att` — RFC 9051 §9 (plus `RFC822*` from RFC 3501, `MODSEQ` from RFC 7162).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchAttribute {
    Envelope,
    Flags,
    InternalDate,
    Rfc822Size,
    /// `BODY`: the non-extensible BODYSTRUCTURE.
    Body,
    BodyStructure,
    Uid,
    ModSeq,
    /// `SAVEDATE` — RFC 8514 §3.
    SaveDate,
    /// `"BODY" ["." "PEEK"] section [partial]`; `partial` is (origin, length).
    BodySection {
        section: Section,
        partial: Option<(u64, u64)>,
        peek: bool,
    },
    /// `"BINARY" [".PEEK"] section-binary [partial]` — RFC 3516 §4.
    Binary {
        part: Part,
        partial: Option<(u64, u64)>,
        peek: bool,
    },
    /// `"BINARY.SIZE" section-binary` — RFC 3516 §4.
    BinarySize {
        part: Part,
    },
    /// `RFC822` = `BODY[]` (RFC 3501 §6.4.5; sets `\Seen`).
    Rfc822,
    /// `RFC822.HEADER` = `BODY.PEEK[HEADER]`.
    Rfc822Header,
    /// `RFC822.TEXT` = `BODY[TEXT]`.
    Rfc822Text,
}

/// The attributes of one FETCH: a macro or a list — RFC 9051 §6.4.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttributes {
    /// `ALL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)`.
    All,
    /// `FAST` = `(FLAGS INTERNALDATE RFC822.SIZE)`.
    Fast,
    /// `FULL` = `(FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY)`.
    Full,
    List(Vec<FetchAttribute>),
}

impl FetchAttributes {
    /// The attributes with macros expanded.
    pub fn expand(&self) -> Vec<FetchAttribute> {
        use FetchAttribute as A;
        match self {
            FetchAttributes::All => vec![A::Flags, A::InternalDate, A::Rfc822Size, A::Envelope],
            FetchAttributes::Fast => vec![A::Flags, A::InternalDate, A::Rfc822Size],
            FetchAttributes::Full => {
                vec![
                    A::Flags,
                    A::InternalDate,
                    A::Rfc822Size,
                    A::Envelope,
                    A::Body,
                ]
            }
            FetchAttributes::List(l) => l.clone(),
        }
    }
}

/// `fetch-modifier` — RFC 4466 §2.4, RFC 7162 §3.1.4 / §3.2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchModifier {
    /// `"CHANGEDSINCE" SP mod-sequence-value` — RFC 7162 §3.1.4.1.
    ChangedSince(u64),
    /// `VANISHED` (UID FETCH only, RFC 7162 §3.2.6).
    Vanished,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Section {
    /// The section spec as echoed in a FETCH response (inside the brackets), e.g.
    /// `1.2.HEADER.FIELDS (DATE FROM)` — RFC 9051 §7.5.2.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.part)?;
        let Some(text) = &self.text else {
            return Ok(());
        };
        if !self.part.0.is_empty() {
            f.write_str(".")?;
        }
        let fields = |f: &mut fmt::Formatter<'_>, names: &[String]| {
            f.write_str(" (")?;
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                let mut buf = Vec::new();
                write_astring(&mut buf, name.as_bytes(), false);
                f.write_str(&String::from_utf8_lossy(&buf))?;
            }
            f.write_str(")")
        };
        match text {
            SectionText::Header => f.write_str("HEADER"),
            SectionText::Text => f.write_str("TEXT"),
            SectionText::Mime => f.write_str("MIME"),
            SectionText::HeaderFields(n) => f.write_str("HEADER.FIELDS").and_then(|_| fields(f, n)),
            SectionText::HeaderFieldsNot(n) => {
                f.write_str("HEADER.FIELDS.NOT").and_then(|_| fields(f, n))
            }
        }
    }
}

/// `fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
/// "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]` — RFC 9051 §6.4.5, RFC 4466 §2.4.
pub(crate) fn fetch(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let sequence_set = sequence_set(c)?;
    c.sp()?;
    let attributes = if c.eat_keyword("ALL") {
        FetchAttributes::All
    } else if c.eat_keyword("FAST") {
        FetchAttributes::Fast
    } else if c.eat_keyword("FULL") {
        FetchAttributes::Full
    } else if c.peek() == Some(b'(') {
        FetchAttributes::List(c.paren_list(fetch_att)?)
    } else {
        FetchAttributes::List(vec![fetch_att(c)?])
    };
    let mut modifiers = Vec::new();
    let mut partial = None;
    if c.eat(b' ') {
        // `fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"`;
        // `fetch-modifier =/ modifier-partial` — RFC 9394 §4.
        let all = c.paren_list(|c| {
            if c.eat_keyword("CHANGEDSINCE") {
                c.sp()?;
                Ok(Ok(FetchModifier::ChangedSince(c.number64()?)))
            } else if c.eat_keyword("VANISHED") {
                Ok(Ok(FetchModifier::Vanished))
            } else if c.eat_keyword("PARTIAL") {
                c.sp()?;
                Ok(Err(partial_range(c)?))
            } else {
                Err("unknown FETCH modifier")
            }
        })?;
        for m in all {
            match m {
                Ok(m) => modifiers.push(m),
                Err(_) if partial.is_some() => return Err("PARTIAL given twice"),
                Err(range) => partial = Some(range),
            }
        }
    }
    Ok(CommandBody::Fetch {
        uid,
        sequence_set,
        attributes,
        modifiers,
        partial,
    })
}

/// `fetch-att` — RFC 9051 §9.
pub(crate) fn fetch_att(c: &mut Cursor<'_>) -> PResult<FetchAttribute> {
    use FetchAttribute as A;
    let name = c
        .take_while(|b| b.is_ascii_alphanumeric() || b == b'.')
        .to_ascii_uppercase();
    let bracket = c.peek() == Some(b'[');
    Ok(match (name.as_slice(), bracket) {
        (b"ENVELOPE", false) => A::Envelope,
        (b"FLAGS", false) => A::Flags,
        (b"INTERNALDATE", false) => A::InternalDate,
        (b"RFC822.SIZE", false) => A::Rfc822Size,
        (b"BODY", false) => A::Body,
        (b"BODYSTRUCTURE", false) => A::BodyStructure,
        (b"UID", false) => A::Uid,
        (b"MODSEQ", false) => A::ModSeq,
        (b"SAVEDATE", false) => A::SaveDate,
        (b"RFC822", false) => A::Rfc822,
        (b"RFC822.HEADER", false) => A::Rfc822Header,
        (b"RFC822.TEXT", false) => A::Rfc822Text,
        (b"BODY" | b"BODY.PEEK", true) => {
            let section = section(c)?;
            A::BodySection {
                section,
                partial: partial(c)?,
                peek: name.len() > 4,
            }
        }
        (b"BINARY" | b"BINARY.PEEK", true) => {
            let part = section_binary(c)?;
            A::Binary {
                part,
                partial: partial(c)?,
                peek: name.len() > 6,
            }
        }
        (b"BINARY.SIZE", true) => A::BinarySize {
            part: section_binary(c)?,
        },
        _ => return Err("unknown FETCH attribute"),
    })
}

/// `section-part = nz-number *("." nz-number)`, stopping before a `.` that starts text.
fn section_part(c: &mut Cursor<'_>) -> PResult<Part> {
    let mut part = Vec::new();
    while c.peek().is_some_and(|b| b.is_ascii_digit()) {
        part.push(c.nz_number()?);
        let next_digit = c.rest().get(1).is_some_and(|b| b.is_ascii_digit());
        if !(c.peek() == Some(b'.') && next_digit) {
            break;
        }
        c.eat(b'.');
    }
    Ok(Part(part))
}

/// `section = "[" [section-spec] "]"` — RFC 9051 §9.
fn section(c: &mut Cursor<'_>) -> PResult<Section> {
    c.expect(b'[', "expected '['")?;
    let part = section_part(c)?;
    if c.eat(b']') {
        return Ok(Section { part, text: None });
    }
    if !part.0.is_empty() {
        c.expect(b'.', "bad section")?;
    }
    let name = c
        .take_while(|b| b.is_ascii_alphabetic() || b == b'.')
        .to_ascii_uppercase();
    let text = match name.as_slice() {
        b"HEADER" => SectionText::Header,
        b"TEXT" => SectionText::Text,
        b"MIME" if !part.0.is_empty() => SectionText::Mime,
        b"HEADER.FIELDS" => {
            c.sp()?;
            SectionText::HeaderFields(header_list(c)?)
        }
        b"HEADER.FIELDS.NOT" => {
            c.sp()?;
            SectionText::HeaderFieldsNot(header_list(c)?)
        }
        _ => return Err("bad section"),
    };
    c.expect(b']', "expected ']'")?;
    Ok(Section {
        part,
        text: Some(text),
    })
}

/// `section-spec` without its brackets, as an IMAP URL's `;SECTION=` carries it (RFC 5092
/// §11: `enc-section` is the %-encoded `section-spec` of RFC 3501); case-insensitive.
pub fn parse_section_spec(spec: &str) -> Result<Section, &'static str> {
    let framed = format!("[{spec}]");
    let mut c = Cursor::new(framed.as_bytes());
    let s = section(&mut c)?;
    if c.rest().is_empty() {
        Ok(s)
    } else {
        Err("bad section")
    }
}

/// `header-list = "(" header-fld-name *(SP header-fld-name) ")"`;
/// `header-fld-name = astring` — RFC 9051 §9.
fn header_list(c: &mut Cursor<'_>) -> PResult<Vec<String>> {
    c.paren_list(|c| {
        let name = c.astring_utf8()?;
        // RFC 5322 §3.6.8: field names are printable ASCII without ':'.
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b':')
        {
            return Err("bad header field name");
        }
        Ok(name)
    })
}

/// `section-binary = "[" [section-part] "]"` — RFC 3516 §4.
fn section_binary(c: &mut Cursor<'_>) -> PResult<Part> {
    c.expect(b'[', "expected '['")?;
    let part = section_part(c)?;
    c.expect(b']', "expected ']'")?;
    Ok(part)
}

/// `partial = "<" number64 "." nz-number64 ">"` — RFC 9051 §9.
fn partial(c: &mut Cursor<'_>) -> PResult<Option<(u64, u64)>> {
    if !c.eat(b'<') {
        return Ok(None);
    }
    let origin = c.number64()?;
    c.expect(b'.', "bad partial")?;
    let len = c.number64()?;
    if len == 0 {
        return Err("partial length must not be zero");
    }
    c.expect(b'>', "bad partial")?;
    Ok(Some((origin, len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn att(s: &str) -> PResult<FetchAttribute> {
        let mut c = Cursor::new(s.as_bytes());
        let a = fetch_att(&mut c)?;
        if c.rest().is_empty() {
            Ok(a)
        } else {
            Err("trailing")
        }
    }

    #[test]
    fn sections() {
        let a = att("BODY[HEADER.FIELDS (DATE FROM)]<0.100>").unwrap();
        let FetchAttribute::BodySection {
            section,
            partial,
            peek,
        } = a
        else {
            panic!()
        };
        assert_eq!((partial, peek), (Some((0, 100)), false));
        assert_eq!(section.to_string(), "HEADER.FIELDS (DATE FROM)");
        let a = att("body.peek[1.2.3.mime]").unwrap();
        let FetchAttribute::BodySection {
            section,
            peek: true,
            ..
        } = a
        else {
            panic!()
        };
        assert_eq!(section.to_string(), "1.2.3.MIME");
        assert_eq!(
            att("BODY[]"),
            Ok(FetchAttribute::BodySection {
                section: Section::default(),
                partial: None,
                peek: false
            })
        );
        let a = att("BODY[4.2.HEADER.FIELDS.NOT (\"X-Foo\" Bar)]").unwrap();
        let FetchAttribute::BodySection { section, .. } = a else {
            panic!()
        };
        assert_eq!(section.to_string(), "4.2.HEADER.FIELDS.NOT (X-Foo Bar)");
        assert_eq!(
            att("BINARY.PEEK[1]<5.10>"),
            Ok(FetchAttribute::Binary {
                part: Part(vec![1]),
                partial: Some((5, 10)),
                peek: true
            })
        );
        assert_eq!(
            att("BINARY.SIZE[]"),
            Ok(FetchAttribute::BinarySize { part: Part(vec![]) })
        );
    }

    #[test]
    fn bad_attributes() {
        for bad in [
            "BODY[MIME]",
            "BODY[0]",
            "BODY[1.]",
            "BODY[HEADER.FIELDS ()]",
            "BODY[HEADER.FIELDS]",
            "BODY[TEXT",
            "BODY[]<1.0>",
            "BODY[]<1>",
            "BINARY[TEXT]",
            "BINARY.SIZE",
            "FLAGS[]",
            "NOPE",
            "",
        ] {
            assert!(att(bad).is_err(), "{bad}");
        }
    }
}

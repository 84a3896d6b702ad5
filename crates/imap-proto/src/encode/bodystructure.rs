//! BODY and BODYSTRUCTURE — RFC 9051 §7.5.2 (`body` in §9), RFC 3501 §7.4.2.
//!
//! The session builds the tree from the parsed MIME structure; this module writes it. `BODY`
//! is the same tree without extension data.

use super::envelope::{Envelope, write_envelope};
use super::string::{write_nstring, write_string};

/// One node of the MIME tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStructure {
    /// A leaf part: `body-type-1part = (body-type-basic / body-type-msg / body-type-text)
    /// [SP body-ext-1part]`.
    Single {
        fields: BodyFields,
        kind: SingleKind,
        extension: Option<SinglePartExt>,
    },
    /// `body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]`. RFC 9051 §7.5.2: a
    /// multipart always has at least one part.
    Multipart {
        parts: Vec<BodyStructure>,
        subtype: String,
        extension: Option<MultipartExt>,
    },
}

/// `body-fields = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
/// body-fld-octets`, with the media type in front — RFC 9051 §9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyFields {
    /// `TEXT`, `IMAGE`, `MESSAGE`, ...
    pub media_type: String,
    pub media_subtype: String,
    /// `body-fld-param`, e.g. `("CHARSET" "US-ASCII")`; empty is NIL.
    pub params: Vec<(String, String)>,
    pub id: Option<Vec<u8>>,
    pub description: Option<Vec<u8>>,
    /// `body-fld-enc`, e.g. `7BIT`, `BASE64`.
    pub encoding: String,
    /// `body-fld-octets`: size of the body in its transfer encoding.
    pub octets: u32,
}

/// What follows the fields of a leaf part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SingleKind {
    /// `body-type-basic = media-basic SP body-fields`.
    Basic,
    /// `body-type-text = media-text SP body-fields SP body-fld-lines`.
    Text { lines: u64 },
    /// `body-type-msg = media-message SP body-fields SP envelope SP body SP body-fld-lines`,
    /// for `MESSAGE/RFC822` and `MESSAGE/GLOBAL` (RFC 9051 §9).
    Message {
        envelope: Box<Envelope>,
        body: Box<BodyStructure>,
        lines: u64,
    },
}

/// `body-fld-dsp = "(" string SP body-fld-param ")" / nil` — RFC 9051 §9.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disposition {
    pub kind: String,
    pub params: Vec<(String, String)>,
}

/// `body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc
/// *(SP body-extension)]]]` — RFC 9051 §9.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinglePartExt {
    pub md5: Option<Vec<u8>>,
    pub disposition: Option<Disposition>,
    /// `body-fld-lang`: NIL when empty, a string for one, a list for several.
    pub language: Vec<String>,
    pub location: Option<Vec<u8>>,
}

/// `body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc
/// *(SP body-extension)]]]` — RFC 9051 §9.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MultipartExt {
    pub params: Vec<(String, String)>,
    pub disposition: Option<Disposition>,
    pub language: Vec<String>,
    pub location: Option<Vec<u8>>,
}

/// Writes `body` — with `extended`, the BODYSTRUCTURE form including extension data, else
/// the BODY form without it (RFC 9051 §7.5.2).
pub fn write_body_structure(out: &mut Vec<u8>, body: &BodyStructure, extended: bool, utf8: bool) {
    out.push(b'(');
    match body {
        BodyStructure::Single {
            fields,
            kind,
            extension,
        } => {
            write_fields(out, fields, utf8);
            match kind {
                SingleKind::Basic => {}
                SingleKind::Text { lines } => out.extend_from_slice(format!(" {lines}").as_bytes()),
                SingleKind::Message {
                    envelope,
                    body,
                    lines,
                } => {
                    out.push(b' ');
                    write_envelope(out, envelope, utf8);
                    out.push(b' ');
                    write_body_structure(out, body, extended, utf8);
                    out.extend_from_slice(format!(" {lines}").as_bytes());
                }
            }
            if let (true, Some(ext)) = (extended, extension) {
                out.push(b' ');
                write_nstring(out, ext.md5.as_deref(), utf8);
                write_ext_tail(out, &ext.disposition, &ext.language, &ext.location, utf8);
            }
        }
        BodyStructure::Multipart {
            parts,
            subtype,
            extension,
        } => {
            // No space between the parts: `1*body`.
            for part in parts {
                write_body_structure(out, part, extended, utf8);
            }
            out.push(b' ');
            write_string(out, subtype.as_bytes(), utf8);
            if let (true, Some(ext)) = (extended, extension) {
                out.push(b' ');
                write_params(out, &ext.params, utf8);
                write_ext_tail(out, &ext.disposition, &ext.language, &ext.location, utf8);
            }
        }
    }
    out.push(b')');
}

/// `media-* SP body-fields`.
fn write_fields(out: &mut Vec<u8>, f: &BodyFields, utf8: bool) {
    write_string(out, f.media_type.as_bytes(), utf8);
    out.push(b' ');
    write_string(out, f.media_subtype.as_bytes(), utf8);
    out.push(b' ');
    write_params(out, &f.params, utf8);
    out.push(b' ');
    write_nstring(out, f.id.as_deref(), utf8);
    out.push(b' ');
    write_nstring(out, f.description.as_deref(), utf8);
    out.push(b' ');
    write_string(out, f.encoding.as_bytes(), utf8);
    out.extend_from_slice(format!(" {}", f.octets).as_bytes());
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`.
fn write_params(out: &mut Vec<u8>, params: &[(String, String)], utf8: bool) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_string(out, k.as_bytes(), utf8);
        out.push(b' ');
        write_string(out, v.as_bytes(), utf8);
    }
    out.push(b')');
}

/// `SP body-fld-dsp SP body-fld-lang SP body-fld-loc`: always all three, so that the
/// optional-nesting of the grammar is satisfied whatever is present.
fn write_ext_tail(
    out: &mut Vec<u8>,
    dsp: &Option<Disposition>,
    lang: &[String],
    loc: &Option<Vec<u8>>,
    utf8: bool,
) {
    out.push(b' ');
    match dsp {
        Some(d) => {
            out.push(b'(');
            write_string(out, d.kind.as_bytes(), utf8);
            out.push(b' ');
            write_params(out, &d.params, utf8);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    // `body-fld-lang = nstring / "(" string *(SP string) ")"`.
    match lang {
        [] => out.extend_from_slice(b"NIL"),
        [one] => write_string(out, one.as_bytes(), utf8),
        many => {
            out.push(b'(');
            for (i, l) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_string(out, l.as_bytes(), utf8);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    write_nstring(out, loc.as_deref(), utf8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(subtype: &str, octets: u32, lines: u64) -> BodyStructure {
        BodyStructure::Single {
            fields: BodyFields {
                media_type: "TEXT".into(),
                media_subtype: subtype.into(),
                params: vec![("CHARSET".into(), "US-ASCII".into())],
                id: None,
                description: None,
                encoding: "7BIT".into(),
                octets,
            },
            kind: SingleKind::Text { lines },
            extension: Some(SinglePartExt::default()),
        }
    }

    fn enc(b: &BodyStructure, extended: bool) -> String {
        let mut out = Vec::new();
        write_body_structure(&mut out, b, extended, false);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc_examples() {
        // RFC 9051 §7.5.2 BODYSTRUCTURE example (multipart/mixed of two text parts).
        let mixed = BodyStructure::Multipart {
            parts: vec![text("PLAIN", 1152, 23), text("PLAIN", 4554, 73)],
            subtype: "MIXED".into(),
            extension: None,
        };
        assert_eq!(
            enc(&mixed, false),
            "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)\
             (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 4554 73) \"MIXED\")"
        );
        assert_eq!(
            enc(&text("PLAIN", 3028, 92), true),
            "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92 NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn extensions_and_message() {
        let attachment = BodyStructure::Single {
            fields: BodyFields {
                media_type: "APPLICATION".into(),
                media_subtype: "PDF".into(),
                params: vec![],
                id: Some(b"<id@x>".to_vec()),
                description: None,
                encoding: "BASE64".into(),
                octets: 4,
            },
            kind: SingleKind::Basic,
            extension: Some(SinglePartExt {
                md5: None,
                disposition: Some(Disposition {
                    kind: "attachment".into(),
                    params: vec![("filename".into(), "a.pdf".into())],
                }),
                language: vec!["en".into(), "de".into()],
                location: None,
            }),
        };
        assert_eq!(
            enc(&attachment, true),
            "(\"APPLICATION\" \"PDF\" NIL \"<id@x>\" NIL \"BASE64\" 4 NIL \
             (\"attachment\" (\"filename\" \"a.pdf\")) (\"en\" \"de\") NIL)"
        );
        let msg = BodyStructure::Single {
            fields: BodyFields {
                media_type: "MESSAGE".into(),
                media_subtype: "RFC822".into(),
                params: vec![],
                id: None,
                description: None,
                encoding: "7BIT".into(),
                octets: 100,
            },
            kind: SingleKind::Message {
                envelope: Box::default(),
                body: Box::new(text("PLAIN", 10, 1)),
                lines: 5,
            },
            extension: None,
        };
        assert_eq!(
            enc(&msg, true),
            "(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 100 \
             (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) \
             (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 1 NIL NIL NIL NIL) 5)"
        );
        let mp = BodyStructure::Multipart {
            parts: vec![text("PLAIN", 1, 1)],
            subtype: "ALTERNATIVE".into(),
            extension: Some(MultipartExt {
                params: vec![("BOUNDARY".into(), "xx".into())],
                ..MultipartExt::default()
            }),
        };
        assert!(enc(&mp, true).ends_with(" \"ALTERNATIVE\" (\"BOUNDARY\" \"xx\") NIL NIL NIL)"));
        assert!(enc(&mp, false).ends_with("1 1) \"ALTERNATIVE\")"));
    }
}

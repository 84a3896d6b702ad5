//! URLAUTH=BINARY (RFC 5524 §3): the content a URL names without its Content-Transfer-
//! Encoding, and the BODYPARTSTRUCTURE of that part.
//!
//! The part is taken out of its message as a message of its own (its MIME header and body,
//! from `mime.rs`), so nested parts are reached the way FETCH reaches them. A part with
//! inner parts (multipart, message/rfc822) is converted part by part: each base64 or
//! quoted-printable leaf is decoded and its `Content-Transfer-Encoding` field says `binary`,
//! everything else is copied. With BINARY, the BODYPARTSTRUCTURE gives the sizes and line
//! counts of the converted content (RFC 5524 §3.2: it "will reflect any conversions"); the
//! encodings stay those of the stored parts, as Dovecot reports them and imaptest's
//! `urlauth-binary` group checks.

use imap_proto::{BodyStructure, Part, Section, SectionText, SingleKind};
use mail_parser::{Message, MimeHeaders, PartType};

use crate::cmd::fetch_binary::{UnknownCte, decode};
use crate::mime;

/// Deepest nesting of parts converted (as `mime.rs` bounds BODYSTRUCTURE).
const MAX_DEPTH: usize = 32;

/// The part `section` names, as a message of its own; `None` when it does not exist or the
/// section is not a part (`HEADER`, `TEXT`, `MIME`...: not content with an encoding).
fn part_as_message(raw: &[u8], section: Option<&Section>) -> Option<Vec<u8>> {
    let Some(section) = section else {
        return Some(raw.to_vec());
    };
    if section.text.is_some() {
        return None;
    }
    if section.part.0.is_empty() {
        return Some(raw.to_vec());
    }
    let mime_header = mime::section(
        raw,
        &Section {
            part: section.part.clone(),
            text: Some(SectionText::Mime),
        },
    )?;
    let body = mime::section(
        raw,
        &Section {
            part: section.part.clone(),
            text: None,
        },
    )?;
    let mut out = mime_header;
    out.extend_from_slice(&body);
    Some(out)
}

/// Sizes of the converted parts, in the shape of the BODYSTRUCTURE.
enum Sizes {
    /// A leaf: `Some((octets, lines))` when its content was decoded.
    Leaf(Option<(u64, u64)>),
    Multi(Vec<Sizes>),
    /// message/rfc822: the converted encapsulated message's size, and its parts.
    Message((u64, u64), Box<Sizes>),
}

fn lines(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Rewrites the `Content-Transfer-Encoding` field of a MIME header to `binary`.
fn binary_header(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len());
    let mut in_cte = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            in_cte = line.contains(&b':')
                && name
                    .trim_ascii()
                    .eq_ignore_ascii_case(b"Content-Transfer-Encoding");
            if in_cte {
                out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n");
                continue;
            }
        }
        if !(in_cte && continuation) {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Converts part `idx` of `m`: its header and converted body.
fn convert_part(
    m: &Message<'_>,
    idx: usize,
    depth: usize,
) -> Result<(Vec<u8>, Vec<u8>, Sizes), UnknownCte> {
    let raw = m.raw_message();
    let part = m.parts.get(idx).ok_or(UnknownCte)?;
    let slice = |a: u32, b: u32| raw.get(a as usize..b as usize).unwrap_or_default();
    let header = slice(part.offset_header, part.offset_body);
    let body = slice(part.offset_body, part.offset_end);
    if depth > MAX_DEPTH {
        return Ok((header.to_vec(), body.to_vec(), Sizes::Leaf(None)));
    }
    match &part.body {
        PartType::Multipart(ids) => {
            let mut out = Vec::with_capacity(body.len());
            let mut at = part.offset_body;
            let mut sizes = Vec::with_capacity(ids.len());
            for &id in ids {
                let Some(child) = m.parts.get(id as usize) else {
                    continue;
                };
                // Preamble and boundary lines as stored.
                out.extend_from_slice(slice(at, child.offset_header.max(at)));
                let (h, b, s) = convert_part(m, id as usize, depth + 1)?;
                out.extend_from_slice(&h);
                out.extend_from_slice(&b);
                sizes.push(s);
                at = child.offset_end.max(at);
            }
            out.extend_from_slice(slice(at, part.offset_end.max(at)));
            Ok((header.to_vec(), out, Sizes::Multi(sizes)))
        }
        PartType::Message(_) => {
            // The encapsulated message, parsed on its own (offsets relative to it).
            let nested = mime::parse_whole(body);
            let Some(nested) = nested.filter(|n| !n.parts.is_empty()) else {
                return Ok((header.to_vec(), body.to_vec(), Sizes::Leaf(None)));
            };
            let (h, b, s) = convert_part(&nested, 0, depth + 1)?;
            let mut out = h;
            out.extend_from_slice(&b);
            let size = (out.len() as u64, lines(&out));
            Ok((header.to_vec(), out, Sizes::Message(size, Box::new(s))))
        }
        _ => {
            let cte = part
                .content_transfer_encoding()
                .map(|c| c.trim().to_ascii_lowercase());
            match cte.as_deref() {
                Some("base64" | "quoted-printable") => {
                    let data = decode(body, cte.as_deref())?;
                    let size = (data.len() as u64, lines(&data));
                    Ok((binary_header(header), data, Sizes::Leaf(Some(size))))
                }
                None | Some("7bit" | "8bit" | "binary") => {
                    Ok((header.to_vec(), body.to_vec(), Sizes::Leaf(None)))
                }
                // RFC 3516 §4.3: an encoding that cannot be undone.
                Some(_) => Err(UnknownCte),
            }
        }
    }
}

/// Puts the converted sizes into a BODYSTRUCTURE of the same shape.
fn patch(bs: &mut BodyStructure, sizes: &Sizes) {
    match (bs, sizes) {
        (BodyStructure::Multipart { parts, .. }, Sizes::Multi(children)) => {
            for (p, s) in parts.iter_mut().zip(children) {
                patch(p, s);
            }
        }
        (BodyStructure::Single { fields, kind, .. }, Sizes::Leaf(Some((octets, n)))) => {
            fields.octets = u32::try_from(*octets).unwrap_or(u32::MAX);
            if let SingleKind::Text { lines } = kind {
                *lines = *n;
            }
        }
        (
            BodyStructure::Single {
                fields,
                kind: SingleKind::Message { body, lines, .. },
                ..
            },
            Sizes::Message((octets, n), inner),
        ) => {
            fields.octets = u32::try_from(*octets).unwrap_or(u32::MAX);
            *lines = *n;
            patch(body, inner);
        }
        _ => {}
    }
}

/// What RFC 5524 URLFETCH returns for one URL's part.
pub(crate) struct Converted {
    /// BINARY: the content without transfer encoding; `None` (NIL) when an encoding is unknown.
    pub binary: Option<Vec<u8>>,
    /// BODYPARTSTRUCTURE (extended form), of the converted content when `binary` was asked.
    pub structure: Option<BodyStructure>,
}

/// The BINARY content and BODYPARTSTRUCTURE of the part `section` names in `raw`; `None`
/// when there is no such part. `binary`: BINARY was requested (the structure then reflects
/// the conversion).
pub(crate) fn convert(raw: &[u8], section: Option<&Section>, binary: bool) -> Option<Converted> {
    if let Some(s) = section
        && s.text.is_some()
    {
        // A header or text section has no encoding of its own: its octets as they are, and
        // no part structure.
        let data = crate::cmd::imapurl::section_of(raw, Some(s))?;
        return Some(Converted {
            binary: Some(data),
            structure: None,
        });
    }
    let whole = section.is_none_or(|s| s.part == Part::default());
    let part = part_as_message(raw, section)?;
    let mut structure = mime::body_structure(&part, true);
    if whole {
        // The whole message is the message itself, not a part: BINARY[] is the stored bytes
        // (RFC 3516 §4.2), and its structure is the message's.
        return Some(Converted {
            binary: Some(raw.to_vec()),
            structure: Some(structure),
        });
    }
    let converted = match mime::parse_whole(&part) {
        Some(msg) => convert_part(&msg, 0, 0),
        // A tree mail-parser could not follow: the body as stored, not converted.
        None => {
            let body = part.get(mime::header_of(&part).len()..).unwrap_or_default();
            Ok((Vec::new(), body.to_vec(), Sizes::Leaf(None)))
        }
    };
    let data = match converted {
        Ok((_, body, sizes)) => {
            if binary {
                patch(&mut structure, &sizes);
            }
            Some(body)
        }
        Err(UnknownCte) => None,
    };
    Some(Converted {
        binary: data,
        structure: Some(structure),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cte_field_rewritten() {
        assert_eq!(
            binary_header(b"Content-Type: text/plain\r\nContent-Transfer-Encoding:\r\n base64\r\nX: y\r\n\r\n"),
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: binary\r\nX: y\r\n\r\n"
        );
    }

    #[test]
    fn nested_conversion() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\n\
Content-Type: message/rfc822\r\n\r\n\
Subject: in\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\
Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--c\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n--c--\r\n\
\r\n--b--\r\n";
        let section = imap_proto::parse_section_spec("1").unwrap();
        let c = convert(raw, Some(&section), true).unwrap();
        assert_eq!(
            String::from_utf8(c.binary.unwrap()).unwrap(),
            "Subject: in\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\
Content-Transfer-Encoding: binary\r\n\r\nhello\r\n--c\r\n\
Content-Transfer-Encoding: binary\r\n\r\ncaf\u{e9}\r\n--c--\r\n"
        );
        let Some(BodyStructure::Single {
            fields,
            kind: SingleKind::Message { body, .. },
            ..
        }) = c.structure
        else {
            panic!()
        };
        assert_eq!(fields.media_type, "MESSAGE");
        let BodyStructure::Multipart { parts, .. } = *body else {
            panic!()
        };
        let BodyStructure::Single { fields, kind, .. } = &parts[0] else {
            panic!()
        };
        // Decoded size and line count, the stored encoding's name.
        assert_eq!((fields.octets, fields.encoding.as_str()), (5, "BASE64"));
        assert_eq!(kind, &SingleKind::Text { lines: 0 });
        // An unknown encoding inside: no BINARY, but a structure.
        let bad = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin\r\n--b--\r\n";
        let section = imap_proto::parse_section_spec("1").unwrap();
        let c = convert(bad, Some(&section), true).unwrap();
        assert!(c.binary.is_none() && c.structure.is_some());
        let missing = imap_proto::parse_section_spec("3").unwrap();
        assert!(convert(bad, Some(&missing), true).is_none());
    }
}

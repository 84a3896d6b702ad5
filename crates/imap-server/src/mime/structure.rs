//! BODYSTRUCTURE and BODY — RFC 9051 §7.5.2 — from the part tree: sizes and line counts are
//! those of the byte ranges the sections are cut from.

use imap_proto::{BodyFields, BodyStructure, Disposition, MultipartExt, SingleKind, SinglePartExt};
use mail_parser::{HeaderValue, MessagePart, MimeHeaders};

use super::tree::{Kind, Part};
use super::{Mime, envelope_of};

fn params(ct: Option<&mail_parser::ContentType<'_>>) -> Vec<(String, String)> {
    ct.and_then(|c| c.attributes())
        .map(|a| {
            a.iter()
                .map(|x| (x.name.to_ascii_uppercase(), x.value.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn disposition(p: &MessagePart<'_>) -> Option<Disposition> {
    p.content_disposition().map(|d| Disposition {
        kind: d.ctype().to_ascii_uppercase(),
        params: params(Some(d)),
    })
}

fn language(p: &MessagePart<'_>) -> Vec<String> {
    match p.content_language() {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => vec![],
    }
}

fn location(p: &MessagePart<'_>) -> Option<Vec<u8>> {
    p.content_location().map(|l| l.as_bytes().to_vec())
}

/// The structure of `part` of `m`.
pub(super) fn of(m: &Mime<'_>, part: &Part<'_>, extended: bool) -> BodyStructure {
    let f = &part.fields;
    let ct = f.content_type();
    if let Kind::Multipart(children) = &part.kind
        && !children.is_empty()
    {
        return BodyStructure::Multipart {
            parts: children.iter().map(|c| of(m, c, extended)).collect(),
            subtype: part.media.1.to_ascii_uppercase(),
            extension: extended.then(|| MultipartExt {
                params: params(ct),
                disposition: disposition(f),
                language: language(f),
                location: location(f),
            }),
        };
    }
    let mtype = part.media.0.to_ascii_uppercase();
    let msub = match part.media.1.as_str() {
        "" => "PLAIN".to_string(),
        s => s.to_ascii_uppercase(),
    };
    let mut prm = params(ct);
    if mtype == "TEXT" && !prm.iter().any(|(k, _)| k == "CHARSET") {
        // RFC 2045 §5.2 default.
        prm.push(("CHARSET".into(), "US-ASCII".into()));
    }
    let body = m.bytes(&part.body);
    // A last line without its line end (the CRLF before a boundary belongs to it) counts.
    let lines = body.iter().filter(|&&b| b == b'\n').count() as u64
        + u64::from(body.last().is_some_and(|&b| b != b'\n'));
    let kind = match &part.kind {
        Kind::Message(inner) => SingleKind::Message {
            envelope: Box::new(envelope_of(m.bytes(&inner.header))),
            body: Box::new(of(m, inner, extended)),
            lines,
        },
        _ if mtype == "TEXT" => SingleKind::Text { lines },
        _ => SingleKind::Basic,
    };
    let mtype = match (&part.kind, mtype.as_str()) {
        // A message/rfc822 nested too deep to be parsed: sent as opaque data, since a client
        // reads an envelope after "MESSAGE" "RFC822" (RFC 9051 §9 `body-type-msg`).
        (Kind::Leaf, "MESSAGE") if matches!(msub.as_str(), "RFC822" | "GLOBAL") => {
            "APPLICATION".to_string()
        }
        _ => mtype,
    };
    BodyStructure::Single {
        fields: BodyFields {
            media_type: mtype,
            media_subtype: msub,
            params: prm,
            id: f.content_id().map(|s| format!("<{s}>").into_bytes()),
            description: f.content_description().map(|s| s.as_bytes().to_vec()),
            encoding: f
                .content_transfer_encoding()
                .unwrap_or("7BIT")
                .to_ascii_uppercase(),
            octets: u32::try_from(body.len()).unwrap_or(u32::MAX),
        },
        kind,
        extension: extended.then(|| SinglePartExt {
            md5: None,
            disposition: disposition(f),
            language: language(f),
            location: location(f),
        }),
    }
}

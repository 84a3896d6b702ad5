//! MIME for FETCH: body sections (RFC 9051 §6.4.5), ENVELOPE and BODYSTRUCTURE (§7.5.2),
//! built from `mail-parser`'s tree. Every access is checked: a malformed message yields empty
//! sections or a plain `TEXT/PLAIN` structure, never a panic.

use imap_proto::{
    Address, BodyFields, BodyStructure, Disposition, Envelope, MultipartExt, Section, SectionText,
    SingleKind, SinglePartExt,
};
use mail_parser::{HeaderValue, Message, MessagePart, MimeHeaders, PartType};

fn slice(raw: &[u8], from: u32, to: u32) -> &[u8] {
    raw.get(from as usize..to as usize).unwrap_or_default()
}

fn header_bytes<'a>(m: &'a Message<'a>, p: &MessagePart<'_>) -> &'a [u8] {
    slice(m.raw_message(), p.offset_header, p.offset_body)
}

fn body_bytes<'a>(m: &'a Message<'a>, p: &MessagePart<'_>) -> &'a [u8] {
    slice(m.raw_message(), p.offset_body, p.offset_end)
}

/// Finds part `path` (RFC 9051 §6.4.5 part numbering): the message that holds it and the
/// part. A non-multipart message (or encapsulated message) has only part 1, itself.
fn find_part<'a>(
    msg: &'a Message<'a>,
    path: &[u32],
) -> Option<(&'a Message<'a>, &'a MessagePart<'a>)> {
    let mut m = msg;
    let mut part = m.parts.first()?;
    for (i, &n) in path.iter().enumerate() {
        if i > 0
            && let PartType::Message(inner) = &part.body
        {
            m = inner;
            part = m.parts.first()?;
        }
        match &part.body {
            PartType::Multipart(ids) => {
                let id = *ids.get((n as usize).checked_sub(1)?)?;
                part = m.parts.get(id as usize)?;
            }
            _ if n == 1 => {}
            _ => return None,
        }
    }
    Some((m, part))
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
        if !matches!(line.first(), Some(b' ' | b'\t')) {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            let name = String::from_utf8_lossy(name);
            let name = name.trim();
            include = names.iter().any(|n| n.eq_ignore_ascii_case(name)) == keep;
        }
        if include {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The bytes of a body section; `None` when the part does not exist (answered as empty).
pub(crate) fn section(msg: &Message<'_>, section: &Section) -> Option<Vec<u8>> {
    let path = &section.part.0;
    let whole = msg.raw_message();
    if path.is_empty() {
        let root = msg.parts.first()?;
        return Some(match &section.text {
            None => whole.to_vec(),
            Some(SectionText::Header) => header_bytes(msg, root).to_vec(),
            Some(SectionText::HeaderFields(n)) => filter_fields(header_bytes(msg, root), n, true),
            Some(SectionText::HeaderFieldsNot(n)) => {
                filter_fields(header_bytes(msg, root), n, false)
            }
            Some(SectionText::Text) => body_bytes(msg, root).to_vec(),
            Some(SectionText::Mime) => return None,
        });
    }
    let (m, part) = find_part(msg, path)?;
    // HEADER / TEXT after a part number address an encapsulated message (RFC 9051 §6.4.5).
    let inner = match &part.body {
        PartType::Message(inner) => inner.parts.first().map(|r| (inner, r)),
        _ => None,
    };
    Some(match (&section.text, inner) {
        (None, _) => body_bytes(m, part).to_vec(),
        (Some(SectionText::Mime), _) => header_bytes(m, part).to_vec(),
        (Some(SectionText::Header), Some((im, r))) => header_bytes(im, r).to_vec(),
        (Some(SectionText::HeaderFields(n)), Some((im, r))) => {
            filter_fields(header_bytes(im, r), n, true)
        }
        (Some(SectionText::HeaderFieldsNot(n)), Some((im, r))) => {
            filter_fields(header_bytes(im, r), n, false)
        }
        (Some(SectionText::Text), Some((im, r))) => body_bytes(im, r).to_vec(),
        _ => return None,
    })
}

/// The raw body of part `path` (non-empty) and its Content-Transfer-Encoding, for BINARY
/// (RFC 3516 §4.2); `None` when the part does not exist.
pub(crate) fn part_body(msg: &Message<'_>, path: &[u32]) -> Option<(Vec<u8>, Option<String>)> {
    let (m, part) = find_part(msg, path)?;
    let cte = match &part.body {
        // A multipart or message/rfc822 body carries no encoding of its own (RFC 2045 §6.4).
        PartType::Multipart(_) | PartType::Message(_) => None,
        _ => part.content_transfer_encoding().map(str::to_string),
    };
    Some((body_bytes(m, part).to_vec(), cte))
}

/// The unfolded, trimmed value of the first `name` field of the top-level header, as raw
/// bytes: ENVELOPE carries header text as it is (RFC 9051 §7.5.2), and `mail-parser` drops
/// values that are not UTF-8.
fn raw_field(msg: &Message<'_>, name: &str) -> Option<Vec<u8>> {
    let root = msg.parts.first()?;
    let fields = filter_fields(header_bytes(msg, root), &[name.to_string()], true);
    let mut value: Vec<u8> = Vec::new();
    let mut first = true;
    for line in fields.split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !first && !continuation {
            break;
        }
        let text = if first {
            let colon = line.iter().position(|&b| b == b':')?;
            line.get(colon + 1..).unwrap_or_default()
        } else {
            line
        };
        first = false;
        value.extend(text.iter().filter(|&&b| b != b'\r' && b != b'\n'));
    }
    let start = value.iter().position(|b| !b.is_ascii_whitespace())?;
    let end = value.iter().rposition(|b| !b.is_ascii_whitespace())? + 1;
    value.get(start..end).map(<[u8]>::to_vec)
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<Address> {
    let one = |addr: &mail_parser::Addr<'_>| {
        let (mailbox, host) = match addr.address.as_deref().and_then(|a| a.rsplit_once('@')) {
            Some((l, d)) => (Some(l.as_bytes().to_vec()), Some(d.as_bytes().to_vec())),
            None => (addr.address.as_deref().map(|a| a.as_bytes().to_vec()), None),
        };
        Address {
            name: addr.name.as_deref().map(|n| n.as_bytes().to_vec()),
            adl: None,
            mailbox,
            host,
        }
    };
    match a {
        None => vec![],
        Some(mail_parser::Address::List(list)) => list.iter().map(one).collect(),
        Some(mail_parser::Address::Group(groups)) => {
            let mut out = Vec::new();
            for g in groups {
                match &g.name {
                    // RFC 9051 §7.5.2: group syntax is a NIL-host start and end marker.
                    Some(name) => {
                        out.push(Address::group_start(name.as_bytes().to_vec()));
                        out.extend(g.addresses.iter().map(one));
                        out.push(Address::group_end());
                    }
                    None => out.extend(g.addresses.iter().map(one)),
                }
            }
            out
        }
    }
}

/// RFC 9051 §7.5.2 ENVELOPE; never NIL (missing fields are NIL inside it).
pub(crate) fn envelope(msg: &Message<'_>) -> Envelope {
    let mut env = Envelope {
        date: raw_field(msg, "Date"),
        subject: raw_field(msg, "Subject"),
        from: addresses(msg.from()),
        sender: addresses(msg.sender()),
        reply_to: addresses(msg.reply_to()),
        to: addresses(msg.to()),
        cc: addresses(msg.cc()),
        bcc: addresses(msg.bcc()),
        in_reply_to: raw_field(msg, "In-Reply-To"),
        message_id: raw_field(msg, "Message-ID"),
    };
    env.fill_defaults();
    env
}

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

/// BODYSTRUCTURE (`extended`) or BODY of the message — RFC 9051 §7.5.2.
pub(crate) fn body_structure(msg: &Message<'_>, extended: bool) -> BodyStructure {
    match msg.parts.first() {
        Some(root) => part_structure(msg, root, extended, 0),
        None => BodyStructure::Single {
            fields: BodyFields {
                media_type: "TEXT".into(),
                media_subtype: "PLAIN".into(),
                params: vec![("CHARSET".into(), "US-ASCII".into())],
                id: None,
                description: None,
                encoding: "7BIT".into(),
                octets: 0,
            },
            kind: SingleKind::Text { lines: 0 },
            extension: None,
        },
    }
}

fn part_structure(
    m: &Message<'_>,
    p: &MessagePart<'_>,
    extended: bool,
    depth: usize,
) -> BodyStructure {
    let ct = p.content_type();
    if let PartType::Multipart(ids) = &p.body
        && depth < 32
    {
        let parts: Vec<BodyStructure> = ids
            .iter()
            .filter_map(|&id| m.parts.get(id as usize))
            .map(|c| part_structure(m, c, extended, depth + 1))
            .collect();
        if !parts.is_empty() {
            return BodyStructure::Multipart {
                parts,
                subtype: ct
                    .and_then(|c| c.subtype())
                    .unwrap_or("MIXED")
                    .to_ascii_uppercase(),
                extension: extended.then(|| MultipartExt {
                    params: params(ct),
                    disposition: disposition(p),
                    language: language(p),
                    location: p.content_location().map(|l| l.as_bytes().to_vec()),
                }),
            };
        }
    }
    let (mtype, msub) = match ct {
        Some(c) => (
            c.ctype().to_ascii_uppercase(),
            c.subtype().unwrap_or("").to_ascii_uppercase(),
        ),
        None => ("TEXT".to_string(), "PLAIN".to_string()),
    };
    let mut prm = params(ct);
    if mtype == "TEXT" && !prm.iter().any(|(k, _)| k == "CHARSET") {
        // RFC 2045 §5.2 default.
        prm.push(("CHARSET".into(), "US-ASCII".into()));
    }
    let body = body_bytes(m, p);
    // A last line without its line end (the CRLF before a boundary belongs to it) counts.
    let lines = body.iter().filter(|&&b| b == b'\n').count() as u64
        + u64::from(body.last().is_some_and(|&b| b != b'\n'));
    let kind = match &p.body {
        PartType::Message(inner) if depth < 32 => SingleKind::Message {
            envelope: Box::new(envelope(inner)),
            body: Box::new(body_structure_depth(inner, extended, depth + 1)),
            lines,
        },
        _ if mtype == "TEXT" => SingleKind::Text { lines },
        _ => SingleKind::Basic,
    };
    BodyStructure::Single {
        fields: BodyFields {
            media_type: mtype,
            media_subtype: if msub.is_empty() {
                "PLAIN".into()
            } else {
                msub
            },
            params: prm,
            id: p.content_id().map(|s| format!("<{s}>").into_bytes()),
            description: p.content_description().map(|s| s.as_bytes().to_vec()),
            encoding: p
                .content_transfer_encoding()
                .unwrap_or("7BIT")
                .to_ascii_uppercase(),
            octets: u32::try_from(body.len()).unwrap_or(u32::MAX),
        },
        kind,
        extension: extended.then(|| SinglePartExt {
            md5: None,
            disposition: disposition(p),
            language: language(p),
            location: p.content_location().map(|l| l.as_bytes().to_vec()),
        }),
    }
}

fn body_structure_depth(msg: &Message<'_>, extended: bool, depth: usize) -> BodyStructure {
    match msg.parts.first() {
        Some(root) => part_structure(msg, root, extended, depth),
        None => body_structure(msg, extended),
    }
}

/// The top-level header section with the empty line that ends it (what `BODY[HEADER]` is).
pub(crate) fn root_header<'a>(msg: &'a Message<'a>) -> &'a [u8] {
    match msg.parts.first() {
        Some(root) => header_bytes(msg, root),
        None => &[],
    }
}

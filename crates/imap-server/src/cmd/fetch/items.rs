//! The data items of one message's FETCH response, from what was loaded for it: the view's
//! entry, the cached facts, the stored bytes, their MIME parse — RFC 9051 §7.5.2.

use imap_proto::{DateTime, FetchAttribute as A, FetchItem, Section, SectionText};
use store::MessageFacts;

use crate::cmd::fetch_binary::{self, UnknownCte};
use crate::ctx::Ctx;
use crate::facts;
use crate::mime::{self, Mime};
use crate::state::Selected;
use crate::view::Msg;

/// What was loaded of one message (each only when an item needs it).
pub(super) struct Loaded<'a> {
    pub facts: Option<&'a MessageFacts>,
    pub raw: Option<&'a [u8]>,
    pub parsed: Option<&'a Mime<'a>>,
}

/// A data item that needs only the view's entry of the message.
pub(super) fn meta_item(ctx: &Ctx, sel: &Selected, a: &A, m: &Msg<'_>) -> Option<FetchItem> {
    Some(match a {
        A::Flags => FetchItem::Flags(sel.flags_of(ctx.rev2, m)),
        A::Uid => FetchItem::Uid(m.uid),
        A::InternalDate => FetchItem::InternalDate(
            DateTime::from_unix_timestamp(m.internal_date, 0)
                .or_else(|| DateTime::from_unix_timestamp(0, 0))
                .unwrap_or_else(epoch),
        ),
        A::Rfc822Size => FetchItem::Rfc822Size(m.size),
        // RFC 7162 §3.1.4: `MODSEQ (n)`.
        A::ModSeq => FetchItem::ModSeq(m.modseq),
        // RFC 8514 §3 (read into `sel` before the items are built).
        A::SaveDate => FetchItem::SaveDate(DateTime::from_unix_timestamp(sel.save_date_of(m), 0)),
        _ => return None,
    })
}

/// The item `a` of a message; `Err` when a BINARY part's encoding cannot be undone (RFC 3516
/// §4.3, the whole command then answers `NO [UNKNOWN-CTE]`).
pub(super) fn item(
    ctx: &Ctx,
    sel: &Selected,
    a: &A,
    m: &Msg<'_>,
    l: &Loaded<'_>,
) -> Result<FetchItem, UnknownCte> {
    if let Some(item) = meta_item(ctx, sel, a, m) {
        return Ok(item);
    }
    let utf8 = ctx.utf8;
    Ok(match a {
        A::Envelope => encoded(l, "ENVELOPE", |f| (&f.envelope, &f.envelope_utf8), utf8),
        A::Body => encoded(l, "BODY", |f| (&f.body, &f.body_utf8), utf8),
        A::BodyStructure => encoded(
            l,
            "BODYSTRUCTURE",
            |f| (&f.bodystructure, &f.bodystructure_utf8),
            utf8,
        ),
        A::BodySection {
            section,
            partial: p,
            ..
        } => FetchItem::BodySection {
            section: section.clone(),
            origin: p.map(|(o, _)| o),
            data: Some(partial(section_bytes(l, section), *p)),
        },
        A::Rfc822 => FetchItem::Rfc822(Some(l.raw.unwrap_or_default().to_vec())),
        A::Rfc822Header => FetchItem::Rfc822Header(Some(header(l).to_vec())),
        A::Rfc822Text => FetchItem::Rfc822Text(Some(text(l).to_vec())),
        A::Binary {
            part, partial: p, ..
        } => FetchItem::Binary {
            part: part.clone(),
            origin: p.map(|(o, _)| o),
            data: fetch_binary::binary(l.raw, l.parsed, part)?.map(|d| partial(d, *p)),
        },
        A::BinarySize { part } => FetchItem::BinarySize {
            part: part.clone(),
            size: fetch_binary::binary(l.raw, l.parsed, part)?.map_or(0, |d| d.len() as u64),
        },
        // The view's items were answered above.
        _ => FetchItem::Uid(m.uid),
    })
}

/// A cached ENVELOPE / BODY / BODYSTRUCTURE in the form for this session.
fn encoded(
    l: &Loaded<'_>,
    name: &'static str,
    pick: impl Fn(&MessageFacts) -> (&Vec<u8>, &Option<Vec<u8>>),
    utf8: bool,
) -> FetchItem {
    let value = l.facts.map_or_else(Vec::new, |f| {
        let (ascii, u) = pick(f);
        match u {
            Some(u) if utf8 => u.clone(),
            _ => ascii.clone(),
        }
    });
    FetchItem::Encoded { name, value }
}

fn header<'a>(l: &Loaded<'a>) -> &'a [u8] {
    l.facts.map_or(&[][..], |f| &f.header[..])
}

fn text<'a>(l: &Loaded<'a>) -> &'a [u8] {
    match (l.facts, l.raw) {
        (Some(f), Some(raw)) => facts::split(f, raw).1,
        _ => &[],
    }
}

/// The bytes of a body section (RFC 9051 §6.4.5); a part that does not exist is empty.
fn section_bytes(l: &Loaded<'_>, section: &Section) -> Vec<u8> {
    if !section.part.0.is_empty() {
        return l
            .parsed
            .and_then(|p| p.section(section))
            .unwrap_or_default();
    }
    match &section.text {
        None => l.raw.unwrap_or_default().to_vec(),
        Some(SectionText::Header) => header(l).to_vec(),
        Some(SectionText::HeaderFields(names)) => mime::filter_fields(header(l), names, true),
        Some(SectionText::HeaderFieldsNot(names)) => mime::filter_fields(header(l), names, false),
        Some(SectionText::Text) => text(l).to_vec(),
        Some(SectionText::Mime) => Vec::new(),
    }
}

/// `<origin.length>`: the octets from `origin` (RFC 9051 §6.4.5: an origin past the end gives
/// an empty string).
pub(super) fn partial(data: Vec<u8>, p: Option<(u64, u64)>) -> Vec<u8> {
    match p {
        None => data,
        Some((origin, len)) => {
            let start = usize::try_from(origin)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let end = start
                .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
                .min(data.len());
            data.get(start..end).unwrap_or_default().to_vec()
        }
    }
}

/// The Unix epoch, which `DateTime` can always represent.
fn epoch() -> DateTime {
    DateTime {
        date: imap_proto::Date {
            year: 1970,
            month: 1,
            day: 1,
        },
        hour: 0,
        minute: 0,
        second: 0,
        zone_minutes: 0,
    }
}

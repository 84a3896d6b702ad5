//! FETCH response items: `msg-att` — RFC 9051 §7.5.2, RFC 3516 §4.2, RFC 7162 §3.1.4.

use std::io::Write;

use super::bodystructure::{BodyStructure, write_body_structure};
use super::envelope::{Envelope, write_envelope};
use super::string::{write_literal, write_literal8};
use crate::parse::{Part, Section};
use crate::types::{DateTime, Flag};

/// One `msg-att-dynamic` / `msg-att-static` item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    /// `"FLAGS" SP "(" [flag-fetch *(SP flag-fetch)] ")"` (`\Recent` is [`Flag::recent`]).
    Flags(Vec<Flag>),
    Uid(u32),
    /// `"INTERNALDATE" SP date-time`.
    InternalDate(DateTime),
    Rfc822Size(u64),
    /// `"SAVEDATE" SP (date-time / nil)` — RFC 8514 §3.
    SaveDate(Option<DateTime>),
    /// `"MODSEQ" SP "(" permsg-modsequence ")"` — RFC 7162 §3.1.4.1.
    ModSeq(u64),
    Envelope(Box<Envelope>),
    /// `BODY` (no extension data).
    Body(Box<BodyStructure>),
    BodyStructure(Box<BodyStructure>),
    /// `"BODY" section ["<" number ">"] SP nstring`: `origin` is the partial's start (RFC
    /// 9051 §7.5.2: only the origin is echoed); `None` data is NIL.
    BodySection {
        section: Section,
        origin: Option<u64>,
        data: Option<Vec<u8>>,
    },
    /// `"BINARY" section-binary SP (nstring / literal8)` — RFC 3516 §4.2.
    Binary {
        part: Part,
        origin: Option<u64>,
        data: Option<Vec<u8>>,
    },
    /// `"BINARY.SIZE" section-binary SP number` — RFC 3516 §4.2.
    BinarySize {
        part: Part,
        size: u64,
    },
    Rfc822(Option<Vec<u8>>),
    Rfc822Header(Option<Vec<u8>>),
    Rfc822Text(Option<Vec<u8>>),
    /// An item whose value was encoded before (a cached ENVELOPE or BODYSTRUCTURE): `name`,
    /// a space and `value`, written as they are. The caller vouches for the syntax.
    Encoded {
        name: &'static str,
        value: Vec<u8>,
    },
}

/// Message text goes in a literal whatever its content, NIL when absent.
fn write_body_data(out: &mut Vec<u8>, data: &Option<Vec<u8>>) {
    match data {
        Some(d) => write_literal(out, d),
        None => out.extend_from_slice(b"NIL"),
    }
}

fn write_origin(out: &mut Vec<u8>, origin: Option<u64>) {
    if let Some(o) = origin {
        out.extend_from_slice(format!("<{o}>").as_bytes());
    }
}

/// A decimal number, without the formatting machinery (per message of a `FETCH 1:*`).
pub(crate) fn write_number(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn write_flag(out: &mut Vec<u8>, f: &Flag) {
    match f {
        Flag::Answered => out.extend_from_slice(b"\\Answered"),
        Flag::Flagged => out.extend_from_slice(b"\\Flagged"),
        Flag::Deleted => out.extend_from_slice(b"\\Deleted"),
        Flag::Seen => out.extend_from_slice(b"\\Seen"),
        Flag::Draft => out.extend_from_slice(b"\\Draft"),
        Flag::Keyword(a) => out.extend_from_slice(a.as_str().as_bytes()),
        Flag::Extension(a) => {
            out.push(b'\\');
            out.extend_from_slice(a.as_str().as_bytes());
        }
    }
}

/// `msg-att = "(" (msg-att-dynamic / msg-att-static) *(SP (msg-att-dynamic /
/// msg-att-static)) ")"` — RFC 9051 §9.
pub(crate) fn write_fetch_items(out: &mut Vec<u8>, items: &[FetchItem], utf8: bool) {
    out.push(b'(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_fetch_item(out, item, utf8);
    }
    out.push(b')');
}

/// One `msg-att` item (a FETCH response written piece by piece, e.g. around a streamed body,
/// uses this with its own parentheses and spaces).
pub fn write_fetch_item(out: &mut Vec<u8>, item: &FetchItem, utf8: bool) {
    match item {
        // Written straight into `out` (no String per item or flag): `FETCH 1:* (FLAGS UID)`
        // encodes these for every message of the mailbox. `Vec<u8>` writes cannot fail.
        FetchItem::Flags(flags) => {
            out.extend_from_slice(b"FLAGS (");
            for (i, f) in flags.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_flag(out, f);
            }
            out.push(b')');
        }
        FetchItem::Uid(n) => {
            out.extend_from_slice(b"UID ");
            write_number(out, *n);
        }
        FetchItem::InternalDate(dt) => {
            out.extend_from_slice(format!("INTERNALDATE \"{dt}\"").as_bytes())
        }
        FetchItem::Rfc822Size(n) => {
            out.extend_from_slice(b"RFC822.SIZE ");
            write_number(out, *n);
        }
        FetchItem::SaveDate(Some(dt)) => {
            out.extend_from_slice(format!("SAVEDATE \"{dt}\"").as_bytes())
        }
        FetchItem::SaveDate(None) => out.extend_from_slice(b"SAVEDATE NIL"),
        FetchItem::ModSeq(n) => out.extend_from_slice(format!("MODSEQ ({n})").as_bytes()),
        FetchItem::Envelope(env) => {
            out.extend_from_slice(b"ENVELOPE ");
            write_envelope(out, env, utf8);
        }
        FetchItem::Body(b) => {
            out.extend_from_slice(b"BODY ");
            write_body_structure(out, b, false, utf8);
        }
        FetchItem::BodyStructure(b) => {
            out.extend_from_slice(b"BODYSTRUCTURE ");
            write_body_structure(out, b, true, utf8);
        }
        FetchItem::BodySection {
            section,
            origin,
            data,
        } => {
            let _ = write!(out, "BODY[{section}]");
            write_origin(out, *origin);
            out.push(b' ');
            write_body_data(out, data);
        }
        FetchItem::Binary { part, origin, data } => {
            out.extend_from_slice(format!("BINARY[{part}]").as_bytes());
            write_origin(out, *origin);
            out.push(b' ');
            match data {
                // RFC 3516 §4.2: literal8 when the data holds NUL.
                Some(d) if d.contains(&0) => write_literal8(out, d),
                Some(d) => write_literal(out, d),
                None => out.extend_from_slice(b"NIL"),
            }
        }
        FetchItem::BinarySize { part, size } => {
            out.extend_from_slice(format!("BINARY.SIZE[{part}] {size}").as_bytes())
        }
        FetchItem::Rfc822(d) => {
            out.extend_from_slice(b"RFC822 ");
            write_body_data(out, d);
        }
        FetchItem::Rfc822Header(d) => {
            out.extend_from_slice(b"RFC822.HEADER ");
            write_body_data(out, d);
        }
        FetchItem::Rfc822Text(d) => {
            out.extend_from_slice(b"RFC822.TEXT ");
            write_body_data(out, d);
        }
        FetchItem::Encoded { name, value } => {
            out.extend_from_slice(name.as_bytes());
            out.push(b' ');
            out.extend_from_slice(value);
        }
    }
}

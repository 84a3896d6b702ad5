//! STORE and UID STORE — RFC 9051 §6.4.6, UNCHANGEDSINCE from RFC 7162 §3.1.3.

use super::sequence::sequence_set;
use super::{CommandBody, Cursor, PResult};

/// What STORE does with the flags: `FLAGS`, `+FLAGS`, `-FLAGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    Replace,
    Add,
    Remove,
}

/// `store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreAction {
    pub kind: StoreKind,
    /// `.SILENT`: no untagged FETCH for the change (RFC 9051 §6.4.6).
    pub silent: bool,
}

/// `store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags`;
/// `store-modifiers = SP "(" store-modifier *(SP store-modifier) ")"`;
/// `store-modifier = "UNCHANGEDSINCE" SP mod-sequence-valzer` — RFC 9051 §6.4.6,
/// RFC 4466 §2.5, RFC 7162 §3.1.3.
pub(crate) fn store(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let sequence_set = sequence_set(c)?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.peek() == Some(b'(') {
        let mods = c.paren_list(|c| {
            c.keyword("UNCHANGEDSINCE", "unknown STORE modifier")?;
            c.sp()?;
            c.number64()
        })?;
        // RFC 4466 §2.5: a modifier given twice is an error.
        if mods.len() > 1 {
            return Err("UNCHANGEDSINCE given twice");
        }
        unchanged_since = mods.first().copied();
        c.sp()?;
    }
    let kind = if c.eat(b'+') {
        StoreKind::Add
    } else if c.eat(b'-') {
        StoreKind::Remove
    } else {
        StoreKind::Replace
    };
    let silent = if c.eat_keyword("FLAGS") {
        false
    } else if c.eat_keyword("FLAGS.SILENT") {
        true
    } else {
        return Err("expected FLAGS, +FLAGS or -FLAGS");
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        c.flag_list()?
    } else {
        let mut flags = vec![c.flag()?];
        while c.eat(b' ') {
            flags.push(c.flag()?);
        }
        flags
    };
    let action = StoreAction { kind, silent };
    Ok(CommandBody::Store {
        uid,
        sequence_set,
        unchanged_since,
        action,
        flags,
    })
}

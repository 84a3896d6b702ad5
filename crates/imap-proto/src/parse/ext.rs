//! Generic extension parameters (RFC 4466 §2.1) and the SELECT/EXAMINE parameters built on
//! them: CONDSTORE and QRESYNC (RFC 7162 §3.1.8, §3.2.5).

use super::sequence::sequence_set;
use super::{Cursor, MAX_DEPTH, PResult, SequenceSet};
use crate::types::Atom;

/// `tagged-ext-val = tagged-ext-simple / "(" [tagged-ext-comp] ")"`;
/// `tagged-ext-comp = astring / tagged-ext-comp *(SP tagged-ext-comp) / "(" tagged-ext-comp ")"`
/// — RFC 4466 §2.1. Kept as a tree of tokens: numbers and sequence sets are tokens too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtValue {
    Token(Vec<u8>),
    List(Vec<ExtValue>),
}

/// A SELECT/EXAMINE parameter.
///
/// `select-params = SP "(" select-param *(SP select-param) ")"`;
/// `select-param = select-param-name [SP select-param-value]` — RFC 4466 §2.1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectParam {
    /// `CONDSTORE` — RFC 7162 §3.1.8.
    CondStore,
    /// `QRESYNC (...)` — RFC 7162 §3.2.5.
    QResync(QResync),
    /// Any other parameter; the session refuses those it does not know (RFC 4466 §2.1).
    Other { name: Atom, value: Option<ExtValue> },
}

/// `"QRESYNC" SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
/// [SP seq-match-data] ")"`; `seq-match-data = "(" known-sequence-set SP known-uid-set ")"`
/// — RFC 7162 §7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QResync {
    pub uid_validity: u32,
    pub mod_seq: u64,
    pub known_uids: Option<SequenceSet>,
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// `tagged-ext-label = tagged-label-fchar *tagged-label-char` — RFC 4466 §2.1.
fn label(c: &mut Cursor<'_>) -> PResult<Atom> {
    let start = c.peek().ok_or("expected a parameter name")?;
    if !(start.is_ascii_alphabetic() || matches!(start, b'-' | b'_' | b'.')) {
        return Err("expected a parameter name");
    }
    let raw = c.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    std::str::from_utf8(raw)
        .ok()
        .and_then(Atom::new)
        .ok_or("expected a parameter name")
}

/// `tagged-ext-val` — RFC 4466 §2.1.
pub(crate) fn ext_value(c: &mut Cursor<'_>, depth: usize) -> PResult<ExtValue> {
    if depth > MAX_DEPTH {
        return Err("parameters nested too deeply");
    }
    if c.eat(b'(') {
        let mut items = Vec::new();
        if c.eat(b')') {
            return Ok(ExtValue::List(items));
        }
        loop {
            items.push(ext_value(c, depth + 1)?);
            if c.eat(b')') {
                return Ok(ExtValue::List(items));
            }
            c.sp()?;
        }
    }
    // Sequence sets (`1:*,5`) and numbers are astring characters, so one rule reads all.
    c.astring().map(ExtValue::Token)
}

/// `select-params` (after the mailbox) — RFC 4466 §2.1, RFC 7162.
pub(crate) fn select_params(c: &mut Cursor<'_>) -> PResult<Vec<SelectParam>> {
    c.paren_list(|c| {
        let name = label(c)?;
        if name.eq_ignore_case("CONDSTORE") {
            return Ok(SelectParam::CondStore);
        }
        if name.eq_ignore_case("QRESYNC") {
            c.sp()?;
            return qresync(c).map(SelectParam::QResync);
        }
        // A value starts like a sequence set, a number or a list, never like a label.
        let value = if c.rest().first() == Some(&b' ')
            && c.rest()
                .get(1)
                .is_some_and(|&b| b.is_ascii_digit() || matches!(b, b'(' | b'*' | b'$'))
        {
            c.sp()?;
            Some(ext_value(c, 0)?)
        } else {
            None
        };
        Ok(SelectParam::Other { name, value })
    })
}

/// The parenthesised QRESYNC parameter — RFC 7162 §3.2.5.
fn qresync(c: &mut Cursor<'_>) -> PResult<QResync> {
    c.expect(b'(', "expected '(' after QRESYNC")?;
    let uid_validity = c.nz_number()?;
    c.sp()?;
    // `mod-sequence-value = 1*DIGIT` (63-bit, RFC 7162 §7).
    let mod_seq = c.number64()?;
    let mut known_uids = None;
    let mut seq_match = None;
    if c.eat(b' ') {
        if c.peek() != Some(b'(') {
            known_uids = Some(sequence_set(c)?);
            if c.eat(b' ') && c.peek() != Some(b'(') {
                return Err("bad QRESYNC parameter");
            }
        }
        if c.eat(b'(') {
            let seqs = sequence_set(c)?;
            c.sp()?;
            let uids = sequence_set(c)?;
            c.expect(b')', "bad QRESYNC parameter")?;
            seq_match = Some((seqs, uids));
        }
    }
    c.expect(b')', "bad QRESYNC parameter")?;
    Ok(QResync {
        uid_validity,
        mod_seq,
        known_uids,
        seq_match,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qresync_forms() {
        let p = select_params(&mut Cursor::new(
            b"(QRESYNC (67890007 20050715194045000 41,43:211,214:541))",
        ));
        let Ok([SelectParam::QResync(q)]) = p.as_deref() else {
            panic!("{p:?}")
        };
        assert_eq!(
            (q.uid_validity, q.mod_seq),
            (67_890_007, 20_050_715_194_045_000)
        );
        assert_eq!(
            q.known_uids.as_ref().map(|s| s.to_string()).as_deref(),
            Some("41,43:211,214:541")
        );
        // RFC 7162 §3.2.5.2 example with seq-match-data.
        let p = select_params(&mut Cursor::new(
            b"(QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
        ));
        let Ok([SelectParam::QResync(q)]) = p.as_deref() else {
            panic!("{p:?}")
        };
        assert!(q.seq_match.is_some());
        let p = select_params(&mut Cursor::new(b"(QRESYNC (1 2 (1:2 3:4)))")).unwrap();
        assert!(matches!(
            &p[..],
            [SelectParam::QResync(QResync {
                known_uids: None,
                seq_match: Some(_),
                ..
            })]
        ));
        assert!(select_params(&mut Cursor::new(b"(QRESYNC (0 1))")).is_err());
        assert!(select_params(&mut Cursor::new(b"(QRESYNC (1 2 3 4))")).is_err());
    }

    #[test]
    fn generic_params() {
        let p = select_params(&mut Cursor::new(b"(CONDSTORE X-FOO 12 X-BAR (a (b c)))")).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], SelectParam::CondStore);
        assert!(
            matches!(&p[1], SelectParam::Other { value: Some(ExtValue::Token(t)), .. } if t == b"12")
        );
        assert!(
            matches!(&p[2], SelectParam::Other { value: Some(ExtValue::List(l)), .. } if l.len() == 2)
        );
        let deep = format!("(X {}{})", "(".repeat(100), ")".repeat(100));
        assert!(select_params(&mut Cursor::new(deep.as_bytes())).is_err());
        assert!(select_params(&mut Cursor::new(b"()")).is_err());
    }
}

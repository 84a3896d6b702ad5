//! Sequence sets: message sequence numbers and UIDs — RFC 9051 §9, `$` from RFC 5182.

use std::fmt;
use std::num::NonZeroU32;
use std::ops::RangeInclusive;

use super::{Cursor, PResult};

/// `seq-number = nz-number / "*"` — RFC 9051 §9. `0` cannot be represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNum {
    Value(NonZeroU32),
    /// `*`: the largest number in use (the last message, or the highest UID).
    Last,
}

impl SeqNum {
    /// The number, with `*` standing for `max`.
    pub fn resolve(self, max: u32) -> u32 {
        match self {
            SeqNum::Value(n) => n.get(),
            SeqNum::Last => max,
        }
    }
}

/// `seq-range = seq-number ":" seq-number`; a single number is a range of one. The ends may
/// come in either order: `*:1` is `1:*` (RFC 9051 §9, "seq-range").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    pub start: SeqNum,
    pub end: SeqNum,
}

impl SeqRange {
    /// The range as `low..=high` once `*` is `max`.
    pub fn resolve(&self, max: u32) -> RangeInclusive<u32> {
        let (a, b) = (self.start.resolve(max), self.end.resolve(max));
        a.min(b)..=a.max(b)
    }
}

/// `sequence-set = (seq-number / seq-range) ["," sequence-set]`, or `$` —
/// RFC 9051 §9, RFC 5182 §2. Never empty; never holds `0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceSet(Repr);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Repr {
    Ranges(Vec<SeqRange>),
    /// `$`: the result of the last `SEARCH RETURN (SAVE)` — RFC 5182 §2.1.
    Saved,
}

impl SequenceSet {
    /// Parses the wire form (`1:3,5,*`, `$`).
    pub fn parse(s: &str) -> Option<SequenceSet> {
        let mut c = Cursor::new(s.as_bytes());
        let set = sequence_set(&mut c).ok()?;
        c.rest().is_empty().then_some(set)
    }

    /// `$` — RFC 5182.
    pub fn saved() -> SequenceSet {
        SequenceSet(Repr::Saved)
    }

    /// One number (`None` for 0).
    pub fn single(n: u32) -> Option<SequenceSet> {
        let n = SeqNum::Value(NonZeroU32::new(n)?);
        Some(SequenceSet(Repr::Ranges(vec![SeqRange {
            start: n,
            end: n,
        }])))
    }

    /// Compresses ascending ids into ranges (`1,2,3,5` → `1:3,5`), e.g. for `COPYUID` or
    /// `VANISHED`. `None` if there are none or one is 0.
    pub fn from_ids(ids: impl IntoIterator<Item = u32>) -> Option<SequenceSet> {
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for id in ids {
            if id == 0 {
                return None;
            }
            match ranges.last_mut() {
                Some((_, hi)) if hi.checked_add(1) == Some(id) => *hi = id,
                _ => ranges.push((id, id)),
            }
        }
        SequenceSet::from_ranges(ranges)
    }

    /// A set of `(low, high)` ranges, as given (e.g. the gaps between UIDs, for a `VANISHED`
    /// that must not list millions of numbers one by one). `None` if there are none or a
    /// bound is 0.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u32, u32)>) -> Option<SequenceSet> {
        let ranges = ranges
            .into_iter()
            .map(|(lo, hi)| {
                let v = |n| NonZeroU32::new(n).map(SeqNum::Value);
                Some(SeqRange {
                    start: v(lo)?,
                    end: v(hi)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        (!ranges.is_empty()).then_some(SequenceSet(Repr::Ranges(ranges)))
    }

    /// Whether this is `$`; the session substitutes its saved result (RFC 5182 §2.1).
    pub fn is_saved(&self) -> bool {
        matches!(self.0, Repr::Saved)
    }

    /// The ranges as sent (empty for `$`).
    pub fn ranges(&self) -> &[SeqRange] {
        match &self.0 {
            Repr::Ranges(r) => r,
            Repr::Saved => &[],
        }
    }

    /// Whether `*` occurs. With message sequence numbers in an empty mailbox that is an error
    /// (RFC 9051 §9, "seq-number": `tag BAD`).
    pub fn has_last(&self) -> bool {
        self.ranges()
            .iter()
            .any(|r| r.start == SeqNum::Last || r.end == SeqNum::Last)
    }

    /// The largest number written out (not `*`): a message sequence number above the number
    /// of messages is an error (RFC 9051 §9), a UID above the highest is simply absent.
    pub fn highest_explicit(&self) -> Option<u32> {
        let values = self.ranges().iter().flat_map(|r| [r.start, r.end]);
        values
            .filter_map(|n| {
                if let SeqNum::Value(v) = n {
                    Some(v.get())
                } else {
                    None
                }
            })
            .max()
    }

    /// The ranges as `low..=high` with `*` = `max`. With `max == 0` (empty mailbox) ranges
    /// that use `*` are left out. A UID range `559:*` includes the highest UID even when it
    /// is below 559 (RFC 9051 §6.4.9), which this ordering gives.
    pub fn resolve(&self, max: u32) -> impl Iterator<Item = RangeInclusive<u32>> + '_ {
        self.ranges()
            .iter()
            .filter(move |r| max > 0 || (r.start != SeqNum::Last && r.end != SeqNum::Last))
            .map(move |r| r.resolve(max))
    }

    /// Every number in `1..=max` the set names, in the order written, without allocating.
    /// Overlapping ranges yield a number more than once.
    pub fn iter(&self, max: u32) -> impl Iterator<Item = u32> + '_ {
        self.resolve(max)
            .flat_map(move |r| *r.start()..=(*r.end()).min(max))
    }

    /// Whether the set names `n` (with `*` = `max`).
    pub fn contains(&self, n: u32, max: u32) -> bool {
        self.resolve(max).any(|r| r.contains(&n))
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SeqNum::Value(n) => write!(f, "{n}"),
            SeqNum::Last => f.write_str("*"),
        }
    }
}

impl fmt::Display for SequenceSet {
    /// The wire form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_saved() {
            return f.write_str("$");
        }
        for (i, r) in self.ranges().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start == r.end {
                write!(f, "{}", r.start)?;
            } else {
                write!(f, "{}:{}", r.start, r.end)?;
            }
        }
        Ok(())
    }
}

/// `seq-number = nz-number / "*"` — RFC 9051 §9.
fn seq_number(c: &mut Cursor<'_>) -> PResult<SeqNum> {
    if c.eat(b'*') {
        return Ok(SeqNum::Last);
    }
    let n = c.nz_number().map_err(|_| "invalid sequence number")?;
    NonZeroU32::new(n)
        .map(SeqNum::Value)
        .ok_or("invalid sequence number")
}

/// `sequence-set = (seq-number / seq-range) ["," sequence-set]` — RFC 9051 §9;
/// `sequence-set =/ seq-last-command`, `seq-last-command = "$"` — RFC 5182 §2.
pub(crate) fn sequence_set(c: &mut Cursor<'_>) -> PResult<SequenceSet> {
    if c.eat(b'$') {
        return Ok(SequenceSet::saved());
    }
    let mut ranges = Vec::new();
    loop {
        let start = seq_number(c)?;
        let end = if c.eat(b':') { seq_number(c)? } else { start };
        ranges.push(SeqRange { start, end });
        if !c.eat(b',') {
            return Ok(SequenceSet(Repr::Ranges(ranges)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_resolve() {
        let s = SequenceSet::parse("2,4:7,9,12:*").unwrap();
        assert_eq!(
            s.iter(15).collect::<Vec<_>>(),
            [2, 4, 5, 6, 7, 9, 12, 13, 14, 15]
        );
        assert!(s.contains(13, 15) && !s.contains(8, 15));
        let rev = SequenceSet::parse("*:4").unwrap();
        assert_eq!(rev.iter(6).collect::<Vec<_>>(), [4, 5, 6]);
        assert_eq!(rev.iter(2).collect::<Vec<_>>(), [2]);
        assert_eq!(rev.iter(0).count(), 0);
        assert!(rev.has_last());
        assert_eq!(
            SequenceSet::parse("3:1,10").unwrap().highest_explicit(),
            Some(10)
        );
        assert!(SequenceSet::parse("$").unwrap().is_saved());
        // A huge range iterates lazily.
        let big = SequenceSet::parse("1:4294967295").unwrap();
        assert_eq!(big.iter(u32::MAX).nth(1_000_000), Some(1_000_001));
    }

    #[test]
    fn invalid_sets() {
        for bad in [
            "0",
            "1:0",
            "",
            ",",
            "1,",
            "1:",
            ":1",
            "a",
            "$,1",
            "-1",
            "4294967296",
            "1::2",
        ] {
            assert_eq!(SequenceSet::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips() {
        for s in [
            "1",
            "*",
            "1:*",
            "*:1",
            "1,2,3",
            "5:3,7,9:*",
            "$",
            "4294967295",
        ] {
            assert_eq!(SequenceSet::parse(s).unwrap().to_string(), s);
        }
        let ids = SequenceSet::from_ids([1, 2, 3, 5, 7, 8, u32::MAX]).unwrap();
        assert_eq!(ids.to_string(), "1:3,5,7:8,4294967295");
        assert_eq!(SequenceSet::parse(&ids.to_string()), Some(ids));
        assert_eq!(SequenceSet::from_ids([]), None);
        assert_eq!(SequenceSet::from_ids([0]), None);
    }
}

//! The SORT order — RFC 5256 §3 (and RFC 5957 §3 for DISPLAYFROM / DISPLAYTO): each message
//! reduced to the values of the sort criteria, compared criterion by criterion, ties broken by
//! sequence number.
//!
//! Strings compare with the `i;ascii-casemap` collation (RFC 5256 §3, RFC 4790 §9.2): ASCII
//! letters are folded to upper case, every other octet compares as itself.

use std::cmp::Ordering;

use imap_proto::{SortCriterion, SortKey};
use store::{Uid, UnixTime};

use super::keys::MessageKeys;

/// One criterion's value for one message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SortValue {
    Int(i64),
    /// Already case-mapped (`i;ascii-casemap`).
    Text(Box<[u8]>),
}

/// A message and its values, one per criterion. Sequence numbers follow UIDs, so the UID is
/// the tie-breaker RFC 5256 §3 asks for ("the order in which they appear in the mailbox").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SortItem {
    pub uid: Uid,
    pub values: Box<[SortValue]>,
}

/// Whether any criterion needs the message's header (ARRIVAL and SIZE come from the view).
pub(crate) fn needs_header(criteria: &[SortCriterion]) -> bool {
    criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size))
}

/// `i;ascii-casemap`: ASCII upper case.
pub(crate) fn casemap(s: &str) -> Box<[u8]> {
    s.as_bytes().to_ascii_uppercase().into_boxed_slice()
}

/// The sent date of RFC 5256 §2.2: the `Date:` field, else the INTERNALDATE.
pub(crate) fn sent_date(keys: Option<&MessageKeys>, internal_date: UnixTime) -> i64 {
    keys.and_then(|k| k.sent_date).unwrap_or(internal_date)
}

/// The values of `criteria` for one message. `keys` is `None` when no criterion needs the
/// header, or when it could not be read (then the empty values apply).
pub(crate) fn item(
    criteria: &[SortCriterion],
    uid: Uid,
    internal_date: UnixTime,
    size: u64,
    keys: Option<&MessageKeys>,
) -> SortItem {
    let text = |f: fn(&MessageKeys) -> &str| SortValue::Text(casemap(keys.map(f).unwrap_or("")));
    let values = criteria
        .iter()
        .map(|c| match c.key {
            SortKey::Arrival => SortValue::Int(internal_date),
            SortKey::Size => SortValue::Int(i64::try_from(size).unwrap_or(i64::MAX)),
            SortKey::Date => SortValue::Int(sent_date(keys, internal_date)),
            SortKey::From => text(|k| &k.from),
            SortKey::To => text(|k| &k.to),
            SortKey::Cc => text(|k| &k.cc),
            SortKey::Subject => text(|k| &k.base_subject),
            SortKey::DisplayFrom => text(|k| &k.display_from),
            SortKey::DisplayTo => text(|k| &k.display_to),
        })
        .collect();
    SortItem { uid, values }
}

/// RFC 5256 §3: criterion by criterion (REVERSE inverts that criterion only), then by
/// sequence number, ascending even under REVERSE.
pub(crate) fn compare(criteria: &[SortCriterion], a: &SortItem, b: &SortItem) -> Ordering {
    for (i, c) in criteria.iter().enumerate() {
        let o = a.values.get(i).cmp(&b.values.get(i));
        let o = if c.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.uid.cmp(&b.uid)
}

/// Sorts `items` in place — O(n log n).
pub(crate) fn sort(criteria: &[SortCriterion], items: &mut [SortItem]) {
    items.sort_unstable_by(|a, b| compare(criteria, a, b));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crit(reverse: bool, key: SortKey) -> SortCriterion {
        SortCriterion { reverse, key }
    }

    /// imaptest sort-arrival: dates 0, 2, 1, 2, 2 (hours) and sizes growing with the number.
    #[test]
    fn arrival_reverse_and_ties() {
        let dates = [0, 2, 1, 2, 2];
        let sizes = [1, 1, 2, 2, 4];
        let run = |criteria: &[SortCriterion]| {
            let mut items: Vec<SortItem> = (0..5)
                .map(|i| item(criteria, i as Uid + 1, dates[i], sizes[i], None))
                .collect();
            sort(criteria, &mut items);
            items.iter().map(|i| i.uid).collect::<Vec<_>>()
        };
        assert_eq!(run(&[crit(false, SortKey::Arrival)]), [1, 3, 2, 4, 5]);
        assert_eq!(run(&[crit(true, SortKey::Arrival)]), [2, 4, 5, 3, 1]);
        assert_eq!(
            run(&[crit(false, SortKey::Arrival), crit(true, SortKey::Size)]),
            [1, 3, 5, 4, 2]
        );
    }

    #[test]
    fn ascii_casemap() {
        // "_" sorts after letters folded to upper case, "[" between them.
        let mut v = ["_", "b", "[xyz]", "C", "a"].map(casemap).to_vec();
        v.sort();
        assert_eq!(v, ["a", "b", "C", "[xyz]", "_"].map(casemap).to_vec());
        assert_eq!(&*casemap("caf\u{e9}"), "CAF\u{e9}".as_bytes());
    }

    #[test]
    fn date_falls_back_to_internal_date() {
        let keys = MessageKeys {
            sent_date: Some(10),
            ..MessageKeys::default()
        };
        assert_eq!(sent_date(Some(&keys), 99), 10);
        assert_eq!(sent_date(Some(&MessageKeys::default()), 99), 99);
        assert_eq!(sent_date(None, 99), 99);
    }
}

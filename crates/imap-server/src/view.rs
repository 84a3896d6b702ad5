//! The messages of the selected mailbox as this session shows them: UIDs in sequence-number
//! order with everything but the body (flags, keywords, internal date, size, MODSEQ).
//!
//! Read at SELECT (UIDs and flags only: for 100,000 messages that read is SELECT's cost; the
//! dates and sizes follow the first time a command needs them) and kept current from the
//! store's change feed and from the results of this session's own writes, so `FETCH 1:*
//! (FLAGS)`, metadata FETCH, STORE replies and SEARCH need no store reads — what clients poll
//! with most.
//!
//! MODSEQ orders updates: an update older than what the view holds (e.g. another session's
//! change published after this session's own later STORE was answered) is ignored, and this
//! session's own changes, already answered, are not echoed back when their event arrives.

use std::collections::HashMap;

use store::{Flags, MessageSummary, ModSeq, SystemFlags, Uid, UnixTime};

/// One message of the view; its keywords are an index into [`View`]'s interned sets.
#[derive(Debug, Clone, Copy)]
struct Entry {
    modseq: ModSeq,
    internal_date: UnixTime,
    size: u64,
    system: SystemFlags,
    /// Index into `View::keyword_sets`; 0 is the empty set.
    keywords: u32,
}

/// What the session knows of one message without reading it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Msg<'a> {
    pub uid: Uid,
    pub size: u64,
    pub internal_date: UnixTime,
    pub system: SystemFlags,
    pub keywords: &'a [String],
    /// The message's MODSEQ once the details are known (RFC 7162 §3.1.1); before that, the
    /// mailbox's HIGHESTMODSEQ at the snapshot.
    pub modseq: ModSeq,
}

#[derive(Debug)]
pub(crate) struct View {
    /// Message sequence number n is `uids[n - 1]`; ascending.
    uids: Vec<Uid>,
    entries: Vec<Entry>,
    /// Distinct keyword sets, interned: most messages share a few (none, `$Junk`, ...).
    keyword_sets: Vec<Box<[String]>>,
    keyword_ids: HashMap<Box<[String]>, u32>,
    /// When `keyword_sets` reaches this many, unused sets are dropped (see [`View::intern`]).
    compact_at: usize,
    /// Every entry's internal date, size and own MODSEQ are known (else only those of
    /// messages added since the view was read; see [`View::fill_details`]).
    details: bool,
    /// The highest MODSEQ the view reflects: the snapshot's HIGHESTMODSEQ and every change
    /// applied since (RFC 7162 §3.1.2.1).
    highest: ModSeq,
}

impl Default for View {
    fn default() -> View {
        View {
            uids: Vec::new(),
            entries: Vec::new(),
            keyword_sets: vec![Box::default()],
            keyword_ids: HashMap::new(),
            compact_at: MIN_COMPACT,
            details: true,
            highest: 0,
        }
    }
}

impl View {
    /// A view of `messages` (ascending by UID, as the store lists them).
    #[cfg(test)]
    pub fn new(messages: Vec<MessageSummary>) -> View {
        let mut view = View {
            uids: Vec::with_capacity(messages.len()),
            entries: Vec::with_capacity(messages.len()),
            ..View::default()
        };
        for m in messages {
            view.push(m);
        }
        view
    }

    /// A view of the messages `(uid, flags)` (ascending by UID) as of the mailbox's
    /// HIGHESTMODSEQ `modseq`, without dates and sizes yet. Every change with a higher MODSEQ
    /// is newer than this state (RFC 7162 §3.1.1).
    pub fn with_flags(messages: Vec<(Uid, Flags)>, modseq: ModSeq) -> View {
        let mut view = View {
            uids: Vec::with_capacity(messages.len()),
            entries: Vec::with_capacity(messages.len()),
            details: messages.is_empty(),
            highest: modseq,
            ..View::default()
        };
        for (uid, flags) in messages {
            if uid <= view.max_uid() {
                continue;
            }
            let keywords = view.intern(flags.keywords);
            view.uids.push(uid);
            view.entries.push(Entry {
                modseq,
                internal_date: 0,
                size: 0,
                system: flags.system,
                keywords,
            });
        }
        view
    }

    /// Whether every message's internal date and size are known.
    pub fn has_details(&self) -> bool {
        self.details
    }

    /// Takes the internal dates, sizes and MODSEQs from `messages` (ascending by UID, e.g. the
    /// store's summaries); flags are left as they are (the view may be newer). An entry's
    /// MODSEQ becomes the lower of the two: the store's is the message's own when the view
    /// already shows its latest state, and a change the view has not applied yet (its event
    /// still queued) has a MODSEQ above the entry's, so it is still applied when it comes.
    pub fn fill_details(&mut self, messages: &[MessageSummary]) {
        let mut it = messages.iter().peekable();
        for (uid, e) in self.uids.iter().zip(self.entries.iter_mut()) {
            while it.next_if(|m| m.uid < *uid).is_some() {}
            if let Some(m) = it.next_if(|m| m.uid == *uid) {
                e.internal_date = m.internal_date;
                e.size = m.size;
                e.modseq = e.modseq.min(m.modseq);
            }
        }
        self.details = true;
    }

    pub fn uids(&self) -> &[Uid] {
        &self.uids
    }

    pub fn len(&self) -> usize {
        self.uids.len()
    }

    /// The highest MODSEQ the view reflects (the HIGHESTMODSEQ to report, RFC 7162 §3.1.2.1).
    pub fn highest_modseq(&self) -> ModSeq {
        self.highest
    }

    pub fn max_uid(&self) -> Uid {
        self.uids.last().copied().unwrap_or(0)
    }

    /// The UIDs of `known` (inclusive ranges, any order, overlapping or not) that are not in
    /// the view, as ascending ranges — what a client must forget when the expunge log no
    /// longer covers its MODSEQ (RFC 7162 §3.2.5.2: UIDs that never existed may be reported
    /// too). Costs one binary search per range and one step per message inside them.
    pub fn absent(&self, known: impl IntoIterator<Item = (u32, u32)>) -> Vec<(u32, u32)> {
        let mut known: Vec<(u32, u32)> = known
            .into_iter()
            .map(|(a, b)| (a.min(b).max(1), a.max(b)))
            .filter(|(a, b)| a <= b)
            .collect();
        known.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for (a, b) in known {
            match merged.last_mut() {
                Some((_, hi)) if a <= hi.saturating_add(1) => *hi = (*hi).max(b),
                _ => merged.push((a, b)),
            }
        }
        let mut out = Vec::new();
        for (lo, hi) in merged {
            let start = self.uids.partition_point(|&u| u < lo);
            // u64: the range may end at u32::MAX.
            let mut next = u64::from(lo);
            for &u in self.uids.get(start..).unwrap_or_default() {
                if u > hi {
                    break;
                }
                if u64::from(u) > next {
                    out.push((next as u32, u - 1));
                }
                next = u64::from(u) + 1;
            }
            if next <= u64::from(hi) {
                out.push((next as u32, hi));
            }
        }
        out
    }

    /// The index (sequence number - 1) of `uid`.
    pub fn index_of(&self, uid: Uid) -> Option<usize> {
        self.uids.binary_search(&uid).ok()
    }

    /// The message at `index` (sequence number - 1).
    pub fn at(&self, index: usize) -> Option<Msg<'_>> {
        let e = self.entries.get(index)?;
        Some(Msg {
            uid: self.uids[index],
            size: e.size,
            internal_date: e.internal_date,
            system: e.system,
            keywords: &self.keyword_sets[e.keywords as usize],
            modseq: e.modseq,
        })
    }

    pub fn get(&self, uid: Uid) -> Option<Msg<'_>> {
        self.at(self.index_of(uid)?)
    }

    /// Appends a new message; ignored unless its UID is above every UID in the view (it is
    /// then already in it: UIDs only grow, RFC 9051 §2.3.1.1).
    pub fn push(&mut self, m: MessageSummary) -> bool {
        if m.uid <= self.max_uid() {
            return false;
        }
        let keywords = self.intern(m.flags.keywords);
        self.highest = self.highest.max(m.modseq);
        self.uids.push(m.uid);
        self.entries.push(Entry {
            modseq: m.modseq,
            internal_date: m.internal_date,
            size: m.size,
            system: m.flags.system,
            keywords,
        });
        true
    }

    /// Records the flags message `uid` has as of `modseq`; false (and nothing changes) when
    /// the message is not in the view or the view already holds that state or a later one.
    pub fn set_flags(&mut self, uid: Uid, flags: &Flags, modseq: ModSeq) -> bool {
        let Some(i) = self.index_of(uid) else {
            return false;
        };
        if self.entries[i].modseq >= modseq {
            return false;
        }
        let keywords = if flags.keywords.is_empty() {
            0
        } else {
            self.intern(flags.keywords.clone())
        };
        self.highest = self.highest.max(modseq);
        let e = &mut self.entries[i];
        e.modseq = modseq;
        e.system = flags.system;
        e.keywords = keywords;
        true
    }

    /// Removes `uid`, returning the sequence number it had.
    pub fn remove(&mut self, uid: Uid) -> Option<u32> {
        let i = self.index_of(uid)?;
        self.uids.remove(i);
        self.entries.remove(i);
        Some(i as u32 + 1)
    }

    /// Removes the messages `sorted` (ascending) in one pass; returns, in order, the sequence
    /// number each had at the moment of its removal (RFC 9051 §7.5.1: every EXPUNGE shifts the
    /// numbers above it down by one), as the `* n EXPUNGE` responses must say.
    pub fn remove_sorted(&mut self, sorted: &[Uid]) -> Vec<u32> {
        if let [one] = sorted {
            return self.remove(*one).into_iter().collect();
        }
        let mut seqs = Vec::with_capacity(sorted.len());
        let mut want = sorted.iter().peekable();
        let mut kept = 0usize;
        for i in 0..self.uids.len() {
            let uid = self.uids[i];
            while want.next_if(|w| **w < uid).is_some() {}
            if want.next_if(|w| **w == uid).is_some() {
                // Earlier removals already shifted this one down by `seqs.len()`.
                seqs.push((i - seqs.len()) as u32 + 1);
                continue;
            }
            self.uids[kept] = uid;
            self.entries[kept] = self.entries[i];
            kept += 1;
        }
        self.uids.truncate(kept);
        self.entries.truncate(kept);
        seqs
    }

    /// The id of a keyword set, added if new. Sets no message uses any more (keywords
    /// removed, messages expunged) are dropped when the table has doubled since the last
    /// pass, so a client cycling through keyword combinations cannot grow it without bound;
    /// the amortised cost stays constant per call.
    fn intern(&mut self, keywords: Vec<String>) -> u32 {
        if keywords.is_empty() {
            return 0;
        }
        let set = keywords.into_boxed_slice();
        if let Some(&id) = self.keyword_ids.get(&set) {
            return id;
        }
        if self.keyword_sets.len() >= self.compact_at {
            self.compact_keywords();
        }
        let id = self.keyword_sets.len() as u32;
        self.keyword_sets.push(set.clone());
        self.keyword_ids.insert(set, id);
        id
    }
}

/// The keyword-set table is never compacted below this many sets.
const MIN_COMPACT: usize = 64;

impl View {
    /// Drops the keyword sets no message uses and renumbers the rest.
    fn compact_keywords(&mut self) {
        let mut map = vec![u32::MAX; self.keyword_sets.len()];
        map[0] = 0;
        let mut sets: Vec<Box<[String]>> = vec![Box::default()];
        for e in &mut self.entries {
            let old = e.keywords as usize;
            if map[old] == u32::MAX {
                map[old] = sets.len() as u32;
                sets.push(std::mem::take(&mut self.keyword_sets[old]));
            }
            e.keywords = map[old];
        }
        self.keyword_ids = sets
            .iter()
            .enumerate()
            .skip(1)
            .map(|(i, set)| (set.clone(), i as u32))
            .collect();
        self.keyword_sets = sets;
        self.compact_at = (self.keyword_sets.len() * 2).max(MIN_COMPACT);
    }

    /// The distinct keywords (case-insensitively) some message of the view has now.
    pub fn keywords_in_use(&self) -> Vec<&str> {
        let mut used = vec![false; self.keyword_sets.len()];
        for e in &self.entries {
            used[e.keywords as usize] = true;
        }
        let mut out: Vec<&str> = Vec::new();
        for (set, _) in self.keyword_sets.iter().zip(used).filter(|(_, u)| *u) {
            for k in set.iter() {
                if !out.iter().any(|o| o.eq_ignore_ascii_case(k)) {
                    out.push(k);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(uid: Uid, modseq: ModSeq, keywords: &[&str]) -> MessageSummary {
        MessageSummary {
            uid,
            size: u64::from(uid) * 10,
            internal_date: 1_700_000_000 + i64::from(uid),
            flags: Flags {
                system: SystemFlags::empty(),
                keywords: keywords.iter().map(|k| k.to_string()).collect(),
            },
            modseq,
        }
    }

    #[test]
    fn unused_keyword_sets_are_dropped() {
        let mut v = View::new(vec![summary(1, 1, &["a"]), summary(2, 1, &["b"])]);
        // A client cycling through keywords on message 1 (2 keeps "b").
        for i in 0..1000u64 {
            let flags = Flags {
                system: SystemFlags::empty(),
                keywords: vec![format!("k{i}")],
            };
            assert!(v.set_flags(1, &flags, 2 + i));
        }
        assert!(
            v.keyword_sets.len() <= MIN_COMPACT + 1,
            "{}",
            v.keyword_sets.len()
        );
        assert_eq!(v.keyword_ids.len(), v.keyword_sets.len() - 1);
        assert_eq!(v.get(1).unwrap().keywords, ["k999"]);
        assert_eq!(v.get(2).unwrap().keywords, ["b"]);
        let mut in_use = v.keywords_in_use();
        in_use.sort();
        assert_eq!(in_use, ["b", "k999"]);
    }

    #[test]
    fn absent_uids_are_the_gaps_of_the_known_ranges() {
        let v = View::new(vec![
            summary(3, 1, &[]),
            summary(5, 1, &[]),
            summary(9, 1, &[]),
        ]);
        assert_eq!(v.absent([(1, 10)]), vec![(1, 2), (4, 4), (6, 8), (10, 10)]);
        // Unordered, overlapping and reversed ranges are merged first.
        assert_eq!(
            v.absent([(9, 12), (4, 2), (3, 5)]),
            vec![(2, 2), (4, 4), (10, 12)]
        );
        assert_eq!(v.absent([(3, 3), (5, 5)]), vec![]);
        assert_eq!(v.absent([(9, u32::MAX)]), vec![(10, u32::MAX)]);
        assert_eq!(View::new(vec![]).absent([(0, 4)]), vec![(1, 4)]);
    }

    #[test]
    fn keeps_metadata_and_interns_keywords() {
        let v = View::new(vec![
            summary(3, 1, &[]),
            summary(5, 1, &["$Junk"]),
            summary(9, 2, &["$Junk"]),
        ]);
        assert_eq!(v.uids(), &[3, 5, 9]);
        let m = v.get(5).unwrap();
        assert_eq!((m.size, m.internal_date), (50, 1_700_000_005));
        assert_eq!(m.keywords, ["$Junk".to_string()]);
        assert_eq!(v.keyword_sets.len(), 2, "the empty set and one shared set");
        assert!(v.get(4).is_none());
    }

    #[test]
    fn older_updates_and_own_echoes_are_ignored() {
        let mut v = View::new(vec![summary(1, 5, &[])]);
        let seen = Flags {
            system: SystemFlags::SEEN,
            keywords: vec![],
        };
        assert!(!v.set_flags(1, &seen, 5), "same MODSEQ: already shown");
        assert!(!v.set_flags(1, &seen, 4), "older");
        assert!(v.set_flags(1, &seen, 6));
        assert!(v.get(1).unwrap().system.contains(SystemFlags::SEEN));
        assert!(
            !v.set_flags(1, &Flags::default(), 6),
            "own echo at the same MODSEQ"
        );
        assert!(!v.set_flags(2, &seen, 9), "not in the view");
        assert!(!v.push(summary(1, 7, &[])), "already in the view");
        assert!(v.push(summary(2, 7, &[])));
    }

    #[test]
    fn flags_first_details_later() {
        let flagged = Flags {
            system: SystemFlags::FLAGGED,
            keywords: vec![],
        };
        let mut v = View::with_flags(vec![(2, flagged.clone()), (4, Flags::default())], 9);
        assert!(!v.has_details());
        assert!(
            !v.set_flags(2, &Flags::default(), 9),
            "in the snapshot already"
        );
        assert!(v.push(summary(6, 10, &[])));
        assert_eq!(
            v.get(6).unwrap().size,
            60,
            "new messages come with their details"
        );
        v.fill_details(&[summary(2, 1, &[]), summary(6, 10, &[])]);
        assert!(v.has_details());
        let m = v.get(2).unwrap();
        assert_eq!((m.size, m.internal_date), (20, 1_700_000_002));
        assert!(m.system.contains(SystemFlags::FLAGGED), "flags kept");
        assert_eq!(
            m.modseq, 1,
            "the message's own MODSEQ replaces the snapshot's"
        );
        assert_eq!(v.get(6).unwrap().modseq, 10);
        assert_eq!(v.highest_modseq(), 10);
        assert_eq!(
            v.get(4).unwrap().size,
            0,
            "expunged meanwhile: nothing to fill"
        );
    }

    #[test]
    fn batch_removal_numbers_each_expunge_as_it_happens() {
        let uids = [10, 11, 12, 13, 14, 15];
        let mut v = View::new(uids.iter().map(|u| summary(*u, 1, &[])).collect());
        // Removing 11, 12 and 15 one by one gives sequence numbers 2, 2, 4.
        assert_eq!(v.remove_sorted(&[11, 12, 15, 99]), vec![2, 2, 4]);
        assert_eq!(v.uids(), &[10, 13, 14]);
        assert_eq!(v.get(14).unwrap().size, 140, "entries move with their UIDs");
        assert_eq!(v.remove_sorted(&[13]), vec![2]);
        assert_eq!(v.remove(10), Some(1));
        assert_eq!(v.uids(), &[14]);
    }
}

//! The messages of the selected mailbox as this session shows them: UIDs in sequence-number
//! order with everything but the body (flags, keywords, internal date, size, MODSEQ).
//!
//! Read once at SELECT and kept current from the store's change feed and from the results of
//! this session's own writes, so `FETCH 1:* (FLAGS)`, metadata FETCH, STORE replies and SEARCH
//! on flags, dates and sizes need no store reads — what clients poll with most.
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
}

#[derive(Debug)]
pub(crate) struct View {
    /// Message sequence number n is `uids[n - 1]`; ascending.
    uids: Vec<Uid>,
    entries: Vec<Entry>,
    /// Distinct keyword sets, interned: most messages share a few (none, `$Junk`, ...).
    keyword_sets: Vec<Box<[String]>>,
    keyword_ids: HashMap<Box<[String]>, u32>,
}

impl Default for View {
    fn default() -> View {
        View {
            uids: Vec::new(),
            entries: Vec::new(),
            keyword_sets: vec![Box::default()],
            keyword_ids: HashMap::new(),
        }
    }
}

impl View {
    /// A view of `messages` (ascending by UID, as the store lists them).
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

    pub fn uids(&self) -> &[Uid] {
        &self.uids
    }

    pub fn len(&self) -> usize {
        self.uids.len()
    }

    pub fn max_uid(&self) -> Uid {
        self.uids.last().copied().unwrap_or(0)
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

    fn intern(&mut self, keywords: Vec<String>) -> u32 {
        if keywords.is_empty() {
            return 0;
        }
        let set = keywords.into_boxed_slice();
        if let Some(&id) = self.keyword_ids.get(&set) {
            return id;
        }
        let id = self.keyword_sets.len() as u32;
        self.keyword_sets.push(set.clone());
        self.keyword_ids.insert(set, id);
        id
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

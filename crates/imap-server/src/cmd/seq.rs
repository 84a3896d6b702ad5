//! Sequence sets against the session's view — RFC 9051 §9 (`seq-number`, `sequence-set`).

use imap_proto::SequenceSet;
use store::Uid;

use crate::state::Selected;

/// The (sequence number, UID) pairs a set names (`$`: the saved search result), ascending, without duplicates. Message
/// numbers above EXISTS or `*` in an empty mailbox are errors (BAD); UIDs that do not exist
/// are simply left out (RFC 9051 §6.4.8).
pub(crate) fn resolve(
    sel: &Selected,
    set: &SequenceSet,
    uid: bool,
) -> Result<Vec<(u32, Uid)>, &'static str> {
    if set.is_saved() {
        // RFC 5182 §2.1: `$` names the saved messages in both the plain and the UID forms;
        // messages expunged since are no longer in it (§2.1, "expunged").
        return Ok(sel
            .saved
            .iter()
            .filter_map(|u| sel.seq_of(*u).map(|s| (s, *u)))
            .collect());
    }
    if uid {
        // Each range of the set is found by binary search in the view's ascending UIDs: a
        // `UID FETCH 7` of a 100,000-message mailbox looks at a few of them, not all.
        let max = sel.max_uid();
        let uids = sel.uids();
        let mut found: Vec<(u32, Uid)> = Vec::new();
        for r in set.resolve(max) {
            let from = uids.partition_point(|u| u < r.start());
            let to = uids.partition_point(|u| u <= r.end());
            found.extend((from..to).map(|i| (i as u32 + 1, uids[i])));
        }
        found.sort_unstable();
        found.dedup();
        return Ok(found);
    }
    let exists = sel.exists();
    if set.highest_explicit().is_some_and(|h| h > exists) || (exists == 0 && set.has_last()) {
        return Err("invalid message sequence number");
    }
    let mut seqs: Vec<u32> = set.iter(exists).collect();
    seqs.sort_unstable();
    seqs.dedup();
    Ok(seqs
        .into_iter()
        .filter_map(|s| {
            (s as usize)
                .checked_sub(1)
                .and_then(|i| sel.uids().get(i))
                .map(|u| (s, *u))
        })
        .collect())
}

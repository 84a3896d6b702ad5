//! CONTEXT=SEARCH and CONTEXT=SORT updates — RFC 5267 §4.3: a `SEARCH` / `SORT` with
//! `RETURN (UPDATE)` keeps its result current, and the session sends
//! `* ESEARCH (TAG "t") [UID] ADDTO (...)` / `REMOVEFROM (...)` as messages arrive, change
//! flags or are expunged — by other sessions or by this one — until CANCELUPDATE or the
//! mailbox is deselected.
//!
//! How it is kept current: each context remembers its result (by UID; for SORT in the sort
//! order, with each message's sort values) and the view's highest MODSEQ and UID when it last
//! looked. After every change the session applies to its view ([`update`], called at the end
//! of `state::sync`), the messages above either mark are evaluated again; expunges are
//! announced by [`Contexts::before_expunge`] just before the EXPUNGE responses.
//!
//! Invariants:
//! - The view's MODSEQs only grow, and a change is in the view before the next `update`
//!   (the store publishes its events in MODSEQ order before answering the writer), so
//!   "MODSEQ above the mark" finds every message changed since.
//! - Sequence numbers and `$` in the search program are fixed to UIDs when the context is
//!   made (RFC 5267 §4.3 asks for the result of the command as issued), so renumbering does
//!   not change what matches. OLDER/YOUNGER are evaluated when a message changes, not as time
//!   passes.
//! - ADDTO is sent after the EXISTS that makes its numbers valid (§4.3.3), REMOVEFROM for an
//!   expunged message before its EXPUNGE (§4.3.4).

use std::collections::{BTreeSet, HashSet};

use imap_proto::{Data, ESearchItem, SearchKey as K, SequenceSet, SortCriterion, Tag};
use store::{ModSeq, Uid};

use crate::cmd::sort::sort_items;
use crate::ctx::Ctx;
use crate::search::{self, Content, MsgCtx};
use crate::sort::order::{self, SortItem};
use crate::state::Selected;
use crate::view::View;

/// Updating contexts per session. RFC 5267 §4.3.1: at least one; beyond the limit a search
/// gets `* NO [NOUPDATE "tag"]` and no updates.
pub(crate) const MAX_CONTEXTS: usize = 8;

/// The result a context keeps.
#[derive(Debug)]
enum Members {
    /// SEARCH: mailbox (UID) order (RFC 5267 §4.4).
    Search(BTreeSet<Uid>),
    /// SORT: in the sort order, with the sort values to place new members.
    Sort {
        criteria: Vec<SortCriterion>,
        items: Vec<SortItem>,
        uids: HashSet<Uid>,
    },
}

impl Members {
    fn contains(&self, uid: Uid) -> bool {
        match self {
            Members::Search(s) => s.contains(&uid),
            Members::Sort { uids, .. } => uids.contains(&uid),
        }
    }
}

/// One updating search or sort.
#[derive(Debug)]
struct Context {
    tag: Tag,
    uid: bool,
    /// The search program with sequence numbers and `$` fixed to UIDs.
    criteria: K,
    members: Members,
    /// The view's highest MODSEQ and UID last evaluated.
    seen_modseq: ModSeq,
    seen_uid: Uid,
}

/// The updating contexts of the selected mailbox. A new `Selected` (SELECT, EXAMINE) starts
/// without any; CLOSE and UNSELECT drop them with it (RFC 5267 §4.3: updates cease when the
/// mailbox is no longer selected).
#[derive(Debug, Default)]
pub(crate) struct Contexts {
    list: Vec<Context>,
}

impl Contexts {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// RFC 5267 §4.3: a tag that already names an updating context cannot be used for
    /// another (the command gets BAD).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.list.iter().any(|c| c.tag.as_str() == tag)
    }

    /// CANCELUPDATE — RFC 5267 §4.3.5. All tags must name contexts, else none is cancelled
    /// and the unknown one is returned.
    pub fn cancel(&mut self, tags: &[String]) -> Result<(), String> {
        if let Some(unknown) = tags.iter().find(|t| !self.has_tag(t)) {
            return Err(unknown.clone());
        }
        self.list
            .retain(|c| !tags.iter().any(|t| t == c.tag.as_str()));
        Ok(())
    }

    /// `* ESEARCH (TAG "t") [UID] REMOVEFROM (...)` for members of a context about to be
    /// expunged, numbered as before the expunges — RFC 5267 §4.3.4: sent before the
    /// EXPUNGE responses themselves. `sorted` is ascending.
    pub fn before_expunge(&mut self, ctx: &mut Ctx, view: &View, sorted: &[Uid]) {
        for c in &mut self.list {
            let gone: Vec<Uid> = sorted
                .iter()
                .copied()
                .filter(|u| c.members.contains(*u))
                .collect();
            if let Some(item) = remove(c, view, &gone) {
                ctx.data(esearch(c, vec![item]));
            }
        }
    }
}

/// Fixes sequence numbers and `$` to the UIDs they name now — the context's search program.
fn freeze(key: &K, sel: &Selected) -> K {
    let uid_set = |uids: Vec<Uid>| match SequenceSet::from_ids(uids) {
        Some(set) => K::Uid(set),
        // Names nothing.
        None => K::Not(Box::new(K::All)),
    };
    match key {
        K::SequenceSet(set) if set.is_saved() => uid_set(sel.saved.clone()),
        K::Uid(set) if set.is_saved() => uid_set(sel.saved.clone()),
        K::SequenceSet(set) => {
            let exists = sel.exists();
            let mut uids: Vec<Uid> = set
                .iter(exists)
                .filter_map(|s| sel.uids().get((s as usize).checked_sub(1)?).copied())
                .collect();
            uids.sort_unstable();
            uids.dedup();
            uid_set(uids)
        }
        K::Not(k) => K::Not(Box::new(freeze(k, sel))),
        K::Or(a, b) => K::Or(Box::new(freeze(a, sel)), Box::new(freeze(b, sel))),
        K::And(keys) => K::And(keys.iter().map(|k| freeze(k, sel)).collect()),
        other => other.clone(),
    }
}

/// Starts updating a SEARCH whose result is `found` (mailbox order). False when the limit is
/// reached: the caller sends NOUPDATE.
pub(crate) fn start_search(
    sel: &mut Selected,
    tag: &Tag,
    uid: bool,
    criteria: &K,
    found: &[(u32, Uid)],
) -> bool {
    let members = Members::Search(found.iter().map(|(_, u)| *u).collect());
    start(sel, tag, uid, criteria, members)
}

/// Starts updating a SORT whose result is `items`, in the sort order.
pub(crate) fn start_sort(
    sel: &mut Selected,
    tag: &Tag,
    uid: bool,
    criteria: &K,
    sort: &[SortCriterion],
    items: Vec<SortItem>,
) -> bool {
    let uids = items.iter().map(|i| i.uid).collect();
    let members = Members::Sort {
        criteria: sort.to_vec(),
        items,
        uids,
    };
    start(sel, tag, uid, criteria, members)
}

fn start(sel: &mut Selected, tag: &Tag, uid: bool, criteria: &K, members: Members) -> bool {
    if sel.contexts.list.len() >= MAX_CONTEXTS {
        return false;
    }
    let context = Context {
        tag: tag.clone(),
        uid,
        criteria: freeze(criteria, sel),
        members,
        seen_modseq: sel.view.highest_modseq(),
        seen_uid: sel.max_uid(),
    };
    sel.contexts.list.push(context);
    true
}

fn esearch(c: &Context, items: Vec<ESearchItem>) -> Data {
    Data::ESearch {
        tag: Some(c.tag.clone()),
        uid: c.uid,
        items,
    }
}

/// Runs of consecutive positions: `(1-based position of the first, the ids in order)`.
fn runs(positions: impl Iterator<Item = (usize, u32)>) -> Vec<(u32, SequenceSet)> {
    let mut runs: Vec<(usize, Vec<u32>)> = Vec::new();
    for (pos, id) in positions {
        match runs.last_mut() {
            Some((start, ids)) if *start + ids.len() == pos => ids.push(id),
            _ => runs.push((pos, vec![id])),
        }
    }
    runs.into_iter()
        .filter_map(|(pos, ids)| Some((pos as u32, SequenceSet::from_ids(ids)?)))
        .collect()
}

/// Takes `uids` (members of `c`) out of its result; the REMOVEFROM item, numbered as `view`
/// has them now.
fn remove(c: &mut Context, view: &View, uids: &[Uid]) -> Option<ESearchItem> {
    if uids.is_empty() {
        return None;
    }
    let gone: HashSet<Uid> = uids.iter().copied().collect();
    let pairs = match &mut c.members {
        Members::Search(set) => {
            for u in uids {
                set.remove(u);
            }
            // Position 0 (RFC 5267 §4.3.4), in mailbox order for the shortest set.
            let mut ids: Vec<u32> = uids
                .iter()
                .filter_map(|u| id_of_view(c.uid, view, *u))
                .collect();
            ids.sort_unstable();
            SequenceSet::from_ids(ids).map(|s| vec![(0, s)])?
        }
        Members::Sort {
            items, uids: set, ..
        } => {
            // Each run at its position once the runs before it are gone: applied in order,
            // every position is still right (RFC 5267 §4.3.2).
            let mut removed = 0;
            let mut positions = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if gone.contains(&item.uid) {
                    if let Some(id) = id_of_view(c.uid, view, item.uid) {
                        positions.push((i + 1 - removed, id));
                    }
                    removed += 1;
                }
            }
            // Consecutive removals share a position: group them by it.
            let mut pairs: Vec<(u32, Vec<u32>)> = Vec::new();
            for (pos, id) in positions {
                match pairs.last_mut() {
                    Some((p, ids)) if *p as usize == pos => ids.push(id),
                    _ => pairs.push((pos as u32, vec![id])),
                }
            }
            items.retain(|i| !gone.contains(&i.uid));
            for u in uids {
                set.remove(u);
            }
            pairs
                .into_iter()
                .filter_map(|(p, ids)| Some((p, SequenceSet::from_ids(ids)?)))
                .collect()
        }
    };
    (!pairs.is_empty()).then_some(ESearchItem::RemoveFrom(pairs))
}

/// Adds `new` (not members yet) to the result of `c`; the ADDTO item.
fn add(c: &mut Context, view: &View, new: Vec<SortItem>) -> Option<ESearchItem> {
    if new.is_empty() {
        return None;
    }
    let pairs = match &mut c.members {
        Members::Search(set) => {
            set.extend(new.iter().map(|i| i.uid));
            let mut uids: Vec<Uid> = new.iter().map(|i| i.uid).collect();
            uids.sort_unstable();
            let ids = uids.iter().filter_map(|u| id_of_view(c.uid, view, *u));
            // Position 0 for SEARCH (RFC 5267 §4.3.3), mailbox order.
            SequenceSet::from_ids(ids).map(|s| vec![(0, s)])?
        }
        Members::Sort {
            criteria,
            items,
            uids,
        } => {
            let added: HashSet<Uid> = new.iter().map(|i| i.uid).collect();
            for item in new {
                let at = items.partition_point(|x| order::compare(criteria, x, &item).is_lt());
                uids.insert(item.uid);
                items.insert(at, item);
            }
            // Runs at their final positions, first to last: when a run is inserted, every
            // member before it is in place already.
            runs(items.iter().enumerate().filter_map(|(i, x)| {
                if added.contains(&x.uid) {
                    Some((i + 1, id_of_view(c.uid, view, x.uid)?))
                } else {
                    None
                }
            }))
        }
    };
    (!pairs.is_empty()).then_some(ESearchItem::AddTo(pairs))
}

fn id_of_view(uid_mode: bool, view: &View, uid: Uid) -> Option<u32> {
    if uid_mode {
        Some(uid)
    } else {
        view.index_of(uid).map(|i| i as u32 + 1)
    }
}

/// Brings every context up to date with the view and sends what changed — RFC 5267 §4.3.
/// Called after the session applied changes to its view (EXISTS already sent).
pub(crate) async fn update(ctx: &mut Ctx, sel: &mut Selected) {
    if sel.contexts.is_empty() {
        return;
    }
    let mut contexts = std::mem::take(&mut sel.contexts);
    for c in &mut contexts.list {
        update_one(ctx, sel, c).await;
    }
    // Contexts made meanwhile cannot exist (nothing else runs), but keep any to be safe.
    contexts.list.append(&mut sel.contexts.list);
    sel.contexts = contexts;
}

async fn update_one(ctx: &mut Ctx, sel: &Selected, c: &mut Context) {
    let highest = sel.view.highest_modseq();
    let max_uid = sel.max_uid();
    if highest <= c.seen_modseq && max_uid <= c.seen_uid {
        return;
    }
    let now = search::now();
    let exists = sel.exists();
    let mut joined = Vec::new();
    let mut left = Vec::new();
    for i in 0..sel.view.len() {
        let Some(msg) = sel.view.at(i) else { break };
        if (msg.modseq <= c.seen_modseq && msg.uid <= c.seen_uid) || sel.gone.contains(&msg.uid) {
            continue;
        }
        let m = MsgCtx {
            msg,
            seq: i as u32 + 1,
            recent: !ctx.rev2 && sel.recent.contains(msg.uid),
            saved: false,
            exists,
            max_uid,
            now,
            save_date: sel.save_date_of(&msg),
        };
        let hit = match search::eval(&c.criteria, &m, None) {
            Some(b) => b,
            None => match ctx.server.store.read_message(sel.id, msg.uid).await {
                Ok(Some(raw)) => {
                    let content = Content::parse(&raw);
                    search::eval(&c.criteria, &m, Some(&content)).unwrap_or(false)
                }
                // Expunged since: its EXPUNGE will take it out.
                Ok(None) | Err(_) => continue,
            },
        };
        match (hit, c.members.contains(msg.uid)) {
            (true, false) => joined.push(msg.uid),
            (false, true) => left.push(msg.uid),
            _ => {}
        }
    }
    let new = match &c.members {
        Members::Search(_) => joined
            .iter()
            .map(|&uid| SortItem {
                uid,
                values: Box::default(),
            })
            .collect(),
        Members::Sort { criteria, .. } => match sort_items(ctx, sel, criteria, &joined).await {
            Ok(items) => items,
            // The store failed: everything is evaluated again at the next change.
            Err(_) => return,
        },
    };
    c.seen_modseq = highest;
    c.seen_uid = max_uid;
    let mut items = Vec::new();
    items.extend(remove(c, &sel.view, &left));
    items.extend(add(c, &sel.view, new));
    if !items.is_empty() {
        ctx.data(esearch(c, items));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_group_consecutive_positions() {
        let r = runs([(1, 5), (2, 3), (4, 9), (5, 10), (9, 1)].into_iter());
        let text: Vec<String> = r.iter().map(|(p, s)| format!("{p} {s}")).collect();
        assert_eq!(text, ["1 5,3", "4 9:10", "9 1"]);
    }
}

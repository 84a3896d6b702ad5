//! The PARTIAL modifier of UID FETCH — RFC 9394 §3.3: only the messages in a window (by
//! position, `-1` the last) of those the UID set names — and, with CHANGEDSINCE (§3.4), of
//! those changed since — are fetched. The set is narrowed here, then FETCH runs as usual.

use imap_proto::{FetchAttributes, FetchModifier, PartialRange, SequenceSet, Status, Tag};

use crate::cmd::{fetch, seq};
use std::io;

use crate::ctx::{Ctx, store_error};
use crate::state::Selected;
use crate::wire::Io;

#[allow(clippy::too_many_arguments)]
pub(crate) async fn fetch(
    io: &mut Io,
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    uid: bool,
    set: &SequenceSet,
    range: PartialRange,
    attributes: &FetchAttributes,
    modifiers: &[FetchModifier],
) -> io::Result<Status> {
    // RFC 9394 §3.3 extends UID FETCH only.
    if !uid {
        return Ok(Status::bad(Some(tag), "PARTIAL needs UID FETCH"));
    }
    // What a window of VANISHED (EARLIER) would be is not defined: refused.
    if modifiers.contains(&FetchModifier::Vanished) {
        return Ok(Status::bad(
            Some(tag),
            "PARTIAL cannot be combined with VANISHED",
        ));
    }
    let mut targets = match seq::resolve(sel, set, true) {
        Ok(t) => t,
        Err(why) => return Ok(Status::bad(Some(tag), why)),
    };
    targets.retain(|(_, u)| !sel.gone.contains(u));
    let changed_since = modifiers.iter().find_map(|m| match m {
        FetchModifier::ChangedSince(n) => Some(*n),
        FetchModifier::Vanished => None,
    });
    if let Some(n) = changed_since {
        // RFC 7162 §3.1.4.1: the messages whose MODSEQ is above n; the window is over those.
        if let Err(e) = sel.ensure_details(ctx).await {
            return Ok(store_error(&tag, &e));
        }
        targets.retain(|(_, u)| sel.view.get(*u).is_some_and(|m| m.modseq > n));
    }
    let window = &targets[range.indexes(targets.len())];
    match SequenceSet::from_ids(window.iter().map(|(_, u)| *u)) {
        Some(narrowed) => {
            fetch::fetch(
                Some(io),
                ctx,
                tag,
                sel,
                true,
                &narrowed,
                attributes,
                modifiers,
            )
            .await
        }
        None => Ok(Status::ok(Some(tag), "UID FETCH completed")),
    }
}

//! SORT and UID SORT — RFC 5256 §3 (SORT=DISPLAY: RFC 5957), with RETURN options: ESORT
//! (RFC 5267 §3: MIN, MAX, ALL, COUNT in the sort order), CONTEXT=SORT (RFC 5267 §4: UPDATE,
//! CONTEXT, PARTIAL), SAVE (RFC 5182) and PARTIAL from the end (RFC 9394).

use imap_proto::{SearchKey, SearchReturnOption as R, SortCriterion, Status, StatusKind, Tag};
use store::{StoreError, Uid};

use crate::cmd::search::{self as search_cmd, Kind};
use crate::ctx::{Ctx, store_error};
use crate::search::context;
use crate::sort::order::{self, SortItem};
use crate::sort::{MessageKeys, load_keys};
use crate::state::Selected;

/// The sort items of the messages `uids` (any order), not yet sorted; messages expunged
/// meanwhile are left out. The header keys are read only when a criterion needs them.
pub(crate) async fn sort_items(
    ctx: &Ctx,
    sel: &Selected,
    criteria: &[SortCriterion],
    uids: &[Uid],
) -> Result<Vec<SortItem>, StoreError> {
    let raw = facts(ctx, sel, criteria, uids).await?;
    Ok(build(criteria, raw))
}

/// What an item is made of: UID, INTERNALDATE, size, header keys.
type Facts = Vec<(Uid, i64, u64, Option<MessageKeys>)>;

async fn facts(
    ctx: &Ctx,
    sel: &Selected,
    criteria: &[SortCriterion],
    uids: &[Uid],
) -> Result<Facts, StoreError> {
    let header = order::needs_header(criteria);
    let keys = if header {
        load_keys(ctx, sel, uids).await?
    } else {
        vec![None; uids.len()]
    };
    Ok(uids
        .iter()
        .zip(keys)
        .filter(|(_, k)| !header || k.is_some())
        .filter_map(|(u, k)| {
            let m = sel.view.get(*u)?;
            Some((*u, m.internal_date, m.size, k))
        })
        .collect())
}

fn build(criteria: &[SortCriterion], facts: Facts) -> Vec<SortItem> {
    facts
        .into_iter()
        .map(|(uid, date, size, keys)| order::item(criteria, uid, date, size, keys.as_ref()))
        .collect()
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn sort(
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    uid: bool,
    return_opts: Option<&[R]>,
    criteria: &[SortCriterion],
    charset: &str,
    search: &SearchKey,
) -> Status {
    let save = return_opts.is_some_and(|o| o.contains(&R::Save));
    let status = run(ctx, tag, sel, uid, return_opts, criteria, charset, search).await;
    if save && status.kind != StatusKind::Ok {
        // RFC 5182 §2.1: a failed command with RETURN (SAVE) leaves the saved result empty.
        sel.saved.clear();
    }
    status
}

#[allow(clippy::too_many_arguments)]
async fn run(
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    uid: bool,
    return_opts: Option<&[R]>,
    criteria: &[SortCriterion],
    charset: &str,
    search: &SearchKey,
) -> Status {
    if let Err(status) = search_cmd::check_charset(&tag, Some(charset))
        .and_then(|()| search_cmd::check_update_tag(&tag, sel, return_opts))
    {
        return status;
    }
    // ARRIVAL, SIZE and DATE (its fallback, RFC 5256 §2.2) need dates and sizes.
    let with_modseq = match search_cmd::prepare(ctx, &tag, sel, search, true).await {
        Ok(m) => m,
        Err(status) => return status,
    };
    let found = match search_cmd::matches(ctx, &tag, sel, search).await {
        Ok(f) => f,
        Err(status) => return status,
    };
    let uids: Vec<Uid> = found.iter().map(|(_, u)| *u).collect();
    let facts = match facts(ctx, sel, criteria, &uids).await {
        Ok(f) => f,
        Err(e) => return store_error(&tag, &e),
    };
    // The CPU part on the blocking pool: O(n log n) comparisons over 100,000 messages must
    // not hold an async worker.
    let owned = criteria.to_vec();
    let items = match tokio::task::spawn_blocking(move || {
        let mut items = build(&owned, facts);
        order::sort(&owned, &mut items);
        items
    })
    .await
    {
        Ok(items) => items,
        Err(_) => return Status::no(Some(tag), "SORT failed"),
    };
    let sorted: Vec<(u32, Uid)> = items
        .iter()
        .filter_map(|i| Some((sel.seq_of(i.uid)?, i.uid)))
        .collect();
    if return_opts.is_some_and(|o| o.contains(&R::Update))
        && !context::start_sort(sel, &tag, uid, search, criteria, items)
    {
        search_cmd::refuse_update(ctx, &tag);
    }
    search_cmd::answer(
        ctx,
        tag,
        sel,
        uid,
        return_opts,
        &sorted,
        with_modseq,
        Kind::Sort,
    )
}

//! SEARCH and UID SEARCH — RFC 9051 §6.4.4, §7.3.4 (ESEARCH), RFC 3501 §7.2.5 (`* SEARCH`),
//! RFC 4731 (ESEARCH return options MIN/MAX/ALL/COUNT).
//!
//! RFC 5182 SEARCHRES: `RETURN (SAVE)` keeps the result for `$`. RFC 7162 §3.1.5: the MODSEQ
//! key, answered with `(MODSEQ n)` / `MODSEQ n`, the highest MODSEQ of the messages found.
//! RFC 5267 §4 (CONTEXT=SEARCH): `RETURN (UPDATE)` keeps the result current (see
//! `search::context`), `CONTEXT` is accepted as a hint; RFC 9394: `RETURN (PARTIAL m:n)` and
//! `(PARTIAL -m:-n)`. The answer ([`answer`]) is shared with SORT, whose results come in the
//! sort order instead of the mailbox order.
//!
//! Not implemented: charsets other than UTF-8 and US-ASCII.

use imap_proto::{
    Code, Data, ESearchItem, SearchKey, SearchReturnOption as R, SequenceSet, Status, StatusKind,
    Tag,
};
use store::Uid;

use crate::ctx::{Ctx, store_error};
use crate::facts;
use crate::search::{self, Content, MsgCtx, context};
use crate::state::{self, Selected};

/// RFC 9051 §6.4.4: UTF-8 must be supported; US-ASCII is its subset.
const CHARSETS: [&str; 2] = ["UTF-8", "US-ASCII"];

/// RFC 9051 §6.4.4 (and RFC 5256 §3 for SORT/THREAD): an unsupported charset is
/// `NO [BADCHARSET (supported...)]`.
pub(crate) fn check_charset(tag: &Tag, charset: Option<&str>) -> Result<(), Status> {
    match charset {
        Some(cs) if !CHARSETS.iter().any(|c| c.eq_ignore_ascii_case(cs)) => {
            Err(Status::no(Some(tag.clone()), "unsupported charset")
                .with_code(Code::BadCharset(CHARSETS.map(String::from).to_vec())))
        }
        _ => Ok(()),
    }
}

/// Messages evaluated between two yields to the scheduler: a search of 100,000 messages
/// lets the other sessions on this worker run meanwhile.
const YIELD_EVERY: usize = 4096;

/// Messages whose contents are loaded in one store read.
const CONTENT_BATCH: usize = 64;

/// The matching messages as (sequence number, UID), ascending, or the tagged reply to send
/// instead. Metadata keys are evaluated on the session's view; only the messages they leave
/// undecided are loaded: their header from the store's facts cache when the header decides
/// (FROM, SUBJECT, HEADER ...), the whole message for BODY and TEXT.
pub(crate) async fn matches(
    ctx: &Ctx,
    tag: &Tag,
    sel: &Selected,
    criteria: &SearchKey,
) -> Result<Vec<(u32, Uid)>, Status> {
    let exists = sel.exists();
    let max_uid = sel.max_uid();
    let now = search::now();
    let msg_ctx = |i: usize| {
        let msg = sel.view.at(i)?;
        Some(MsgCtx {
            msg,
            seq: i as u32 + 1,
            // RFC 3501 §2.3.2; never set for rev2 sessions (RFC 9051 dropped \Recent).
            recent: !ctx.rev2 && sel.recent.contains(msg.uid),
            saved: sel.saved.binary_search(&msg.uid).is_ok(),
            exists,
            max_uid,
            now,
            save_date: sel.save_date_of(&msg),
        })
    };
    // Cheap keys first, over the view.
    let mut found = Vec::new();
    let mut undecided = Vec::new();
    for i in 0..sel.view.len() {
        if i % YIELD_EVERY == YIELD_EVERY - 1 {
            tokio::task::yield_now().await;
        }
        let Some(m) = msg_ctx(i) else { break };
        // Expunged elsewhere, not yet announced: its data is gone, it cannot match.
        if sel.gone.contains(&m.msg.uid) {
            continue;
        }
        match search::eval(criteria, &m, None) {
            Some(true) => found.push((m.seq, m.msg.uid)),
            Some(false) => {}
            None => undecided.push(i),
        }
    }
    if undecided.is_empty() {
        return Ok(found);
    }
    let body = search::needs_body(criteria);
    for batch in undecided.chunks(CONTENT_BATCH) {
        let uids: Vec<Uid> = batch
            .iter()
            .filter_map(|i| sel.view.uids().get(*i).copied())
            .collect();
        let bodies = ctx
            .server
            .store
            .message_bodies(sel.id, &uids, facts::VERSION)
            .await
            .map_err(|e| store_error(tag, &e))?;
        let mut computed = Vec::new();
        for b in bodies {
            let Some(i) = sel.view.index_of(b.uid) else {
                continue;
            };
            let Some(m) = msg_ctx(i) else { continue };
            let data = match (&b.facts, body) {
                (Some(f), false) => f.header.clone(),
                _ => match ctx.server.store.read_blob(&b.blob, b.size).await {
                    Ok(raw) => {
                        if b.facts.is_none() && !body {
                            let f = server_kit::cpu_heavy(raw.len(), || facts::compute(&raw));
                            let header = f.header.clone();
                            computed.push((b.blob.clone(), f));
                            header
                        } else {
                            raw
                        }
                    }
                    // Expunged since: its content is gone, it cannot match.
                    Err(store::StoreError::Expunged) => continue,
                    Err(e) => return Err(store_error(tag, &e)),
                },
            };
            let content = Content::parse(&data);
            if search::eval(criteria, &m, Some(&content)).unwrap_or(false) {
                found.push((m.seq, m.msg.uid));
            }
        }
        facts::cache(ctx, computed);
        tokio::task::yield_now().await;
    }
    found.sort_unstable();
    Ok(found)
}

/// What SEARCH and SORT do before matching: CONDSTORE enabling by the MODSEQ key (RFC 7162
/// §3.1), and reading dates and sizes into the view when `details` or the criteria need them.
/// Whether the criteria use MODSEQ.
pub(crate) async fn prepare(
    ctx: &mut Ctx,
    tag: &Tag,
    sel: &mut Selected,
    criteria: &SearchKey,
    details: bool,
) -> Result<bool, Status> {
    let with_modseq = search::uses_modseq(criteria);
    if with_modseq {
        // RFC 7162 §3.1: SEARCH MODSEQ is a CONDSTORE-enabling command.
        state::enable_condstore(ctx, Some(sel));
    }
    if (details || search::needs_details(criteria))
        && let Err(e) = sel.ensure_details(ctx).await
    {
        return Err(store_error(tag, &e));
    }
    if search::uses_save_date(criteria) {
        let uids = sel.view.uids().to_vec();
        if let Err(e) = sel.ensure_save_dates(ctx, &uids).await {
            return Err(store_error(tag, &e));
        }
    }
    Ok(with_modseq)
}

/// RFC 5267 §4.3: UPDATE with a tag that already names an updating context is BAD.
pub(crate) fn check_update_tag(
    tag: &Tag,
    sel: &Selected,
    opts: Option<&[R]>,
) -> Result<(), Status> {
    if opts.is_some_and(|o| o.contains(&R::Update)) && sel.contexts.has_tag(tag.as_str()) {
        return Err(Status::bad(
            Some(tag.clone()),
            "tag already in use by an updating search",
        ));
    }
    Ok(())
}

/// RFC 5267 §4.3.1: no more updating contexts — the search is answered, without updates.
pub(crate) fn refuse_update(ctx: &mut Ctx, tag: &Tag) {
    ctx.status(
        Status::no(None, "too many updating searches, no updates for this one")
            .with_code(Code::NoUpdate(tag.as_str().to_string())),
    );
}

pub(crate) async fn search(
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    uid: bool,
    return_opts: Option<&[R]>,
    charset: Option<&str>,
    criteria: &SearchKey,
) -> Status {
    let save = return_opts.is_some_and(|o| o.contains(&R::Save));
    let status = run(ctx, tag, sel, uid, return_opts, charset, criteria).await;
    if save && status.kind != StatusKind::Ok {
        // RFC 5182 §2.1: a failed SEARCH ... RETURN (SAVE) leaves the saved result empty.
        sel.saved.clear();
    }
    status
}

async fn run(
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    uid: bool,
    return_opts: Option<&[R]>,
    charset: Option<&str>,
    criteria: &SearchKey,
) -> Status {
    if let Err(status) =
        check_charset(&tag, charset).and_then(|()| check_update_tag(&tag, sel, return_opts))
    {
        return status;
    }
    let with_modseq = match prepare(ctx, &tag, sel, criteria, false).await {
        Ok(m) => m,
        Err(status) => return status,
    };
    let found = match matches(ctx, &tag, sel, criteria).await {
        Ok(f) => f,
        Err(status) => return status,
    };
    if return_opts.is_some_and(|o| o.contains(&R::Update))
        && !context::start_search(sel, &tag, uid, criteria, &found)
    {
        refuse_update(ctx, &tag);
    }
    answer(
        ctx,
        tag,
        sel,
        uid,
        return_opts,
        &found,
        with_modseq,
        Kind::Search,
    )
}

/// Which command is being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Search,
    Sort,
}

/// Answers a SEARCH or SORT whose result is `found` — (sequence number, UID) in the
/// command's order: mailbox order for SEARCH, the sort order for SORT. Handles SAVE (RFC 5182),
/// the ESEARCH return options of RFC 4731 (as adapted for SORT by RFC 5267 §3.1: MIN and MAX
/// are the first and last in the sort order, ALL keeps the order), PARTIAL (RFC 9394) and the
/// MODSEQ of RFC 7162 §3.1.5.
#[allow(clippy::too_many_arguments)]
pub(crate) fn answer(
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    uid: bool,
    return_opts: Option<&[R]>,
    found: &[(u32, Uid)],
    with_modseq: bool,
    kind: Kind,
) -> Status {
    let done = match kind {
        Kind::Search => "SEARCH completed",
        Kind::Sort => "SORT completed",
    };
    let id = |(s, u): &(u32, Uid)| if uid { *u } else { *s };
    let modseq_of = |set: &mut dyn Iterator<Item = &(u32, Uid)>| {
        set.filter(|_| with_modseq)
            .filter_map(|(_, u)| sel.view.get(*u).map(|m| m.modseq))
            .max()
    };
    let opts: Vec<R> = match (return_opts, kind) {
        // RFC 9051 §6.4.4: rev1 clients get `* SEARCH` without RETURN; rev2 ones ESEARCH.
        (None, Kind::Search) if !ctx.rev2 => {
            let modseq = modseq_of(&mut found.iter());
            ctx.data(Data::Search {
                ids: found.iter().map(id).collect(),
                modseq,
            });
            return Status::ok(Some(tag), done);
        }
        // RFC 5256 §4: `* SORT` without RETURN.
        (None, Kind::Sort) => {
            let modseq = modseq_of(&mut found.iter());
            ctx.data(Data::Sort {
                ids: found.iter().map(id).collect(),
                modseq,
            });
            return Status::ok(Some(tag), done);
        }
        (None, Kind::Search) => vec![],
        (Some(o), _) => o.to_vec(),
    };
    // RFC 4731 §3.1, RFC 5267 §3.3: `RETURN ()` means ALL; so does a list of only the
    // CONTEXT hint (RFC 5267 §4.2: it changes nothing).
    let mut shown: Vec<R> = opts
        .iter()
        .copied()
        .filter(|o| matches!(o, R::Min | R::Max | R::All | R::Count | R::Partial(_)))
        .collect();
    if opts.iter().all(|o| *o == R::Context) {
        shown.push(R::All);
    }
    let partial = shown.iter().find_map(|o| match o {
        R::Partial(r) => Some(*r),
        _ => None,
    });
    let picked = partial.map(|r| &found[r.indexes(found.len())]);
    // The messages whose numbers the answer shows, for SAVE (RFC 5182 §2.4: with only MIN
    // and/or MAX, just those are saved; PARTIAL likewise, RFC 9394 §3.1) and for MODSEQ.
    let everything = shown.is_empty() || shown.contains(&R::All) || shown.contains(&R::Count);
    let subset = || {
        let mut v: Vec<(u32, Uid)> = Vec::new();
        if shown.contains(&R::Min) {
            v.extend(found.first());
        }
        if shown.contains(&R::Max) {
            v.extend(found.last());
        }
        v.extend(picked.unwrap_or_default());
        v
    };
    if opts.contains(&R::Save) {
        let mut saved: Vec<Uid> = if everything {
            found.iter().map(|(_, u)| *u).collect()
        } else {
            subset().into_iter().map(|(_, u)| u).collect()
        };
        // `sel.saved` is kept ascending.
        saved.sort_unstable();
        saved.dedup();
        sel.saved = saved;
        if opts.iter().all(|o| matches!(o, R::Save | R::Context)) {
            // RFC 5182 §2.1: SAVE alone returns no ESEARCH response.
            return Status::ok(Some(tag), format!("{done}, result saved"));
        }
    }
    let mut items = Vec::new();
    // RFC 4731 §3.1: MIN, MAX and ALL are omitted when nothing matched; COUNT 0 is sent.
    if let (Some(first), Some(last)) = (found.first(), found.last()) {
        if shown.contains(&R::Min) {
            items.push(ESearchItem::Min(id(first)));
        }
        if shown.contains(&R::Max) {
            items.push(ESearchItem::Max(id(last)));
        }
        if shown.contains(&R::All)
            && let Some(set) = SequenceSet::from_ids(found.iter().map(id))
        {
            items.push(ESearchItem::All(set));
        }
    }
    if let (Some(range), Some(picked)) = (partial, picked) {
        // RFC 9394 §3.1: the range as asked, and the results in it (NIL for none).
        items.push(ESearchItem::Partial {
            range,
            results: SequenceSet::from_ids(picked.iter().map(id)),
        });
    }
    if shown.contains(&R::Count) {
        items.push(ESearchItem::Count(found.len() as u32));
    }
    // RFC 7162 §3.1.5 with RFC 4731: the highest MODSEQ of the messages the answer shows.
    let modseq = if shown.is_empty() {
        None
    } else if everything {
        modseq_of(&mut found.iter())
    } else {
        modseq_of(&mut subset().iter())
    };
    if let Some(m) = modseq {
        items.push(ESearchItem::ModSeq(m));
    }
    ctx.data(Data::ESearch {
        tag: Some(tag.clone()),
        uid,
        items,
    });
    Status::ok(Some(tag), done)
}

/// CANCELUPDATE — RFC 5267 §4.3.5: stops the updates of the named searches. An unknown tag
/// is NO, and nothing is cancelled.
pub(crate) fn cancel_update(tag: Tag, sel: &mut Selected, tags: &[String]) -> Status {
    match sel.contexts.cancel(tags) {
        Ok(()) => Status::ok(Some(tag), "CANCELUPDATE completed"),
        Err(unknown) => Status::no(
            Some(tag),
            format!("no updating search with tag {unknown:?}"),
        ),
    }
}

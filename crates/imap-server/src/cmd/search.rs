//! SEARCH and UID SEARCH — RFC 9051 §6.4.4, §7.3.4 (ESEARCH), RFC 3501 §7.2.5 (`* SEARCH`),
//! RFC 4731 (ESEARCH return options MIN/MAX/ALL/COUNT).
//!
//! RFC 5182 SEARCHRES: `RETURN (SAVE)` keeps the result for `$`. RFC 7162 §3.1.5: the MODSEQ
//! key, answered with `(MODSEQ n)` / `MODSEQ n`, the highest MODSEQ of the messages found.
//!
//! Not implemented: charsets other than UTF-8 and US-ASCII.

use imap_proto::{
    Code, Data, ESearchItem, SearchKey, SearchReturnOption as R, SequenceSet, Status, Tag,
};
use store::Uid;

use crate::search::{self, Content, MsgCtx};
use crate::session::{Ctx, store_error};
use crate::state::{self, Selected};

/// RFC 9051 §6.4.4: UTF-8 must be supported; US-ASCII is its subset.
const CHARSETS: [&str; 2] = ["UTF-8", "US-ASCII"];

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The matching messages as (sequence number, UID), ascending, or the tagged reply to send
/// instead. Metadata keys are evaluated on the session's view; only the messages they leave
/// undecided are read and parsed.
async fn matches(
    ctx: &Ctx,
    tag: &Tag,
    sel: &Selected,
    criteria: &SearchKey,
) -> Result<Vec<(u32, Uid)>, Status> {
    let exists = sel.exists();
    let max_uid = sel.max_uid();
    let now = now();
    let mut found = Vec::new();
    for i in 0..sel.view.len() {
        let Some(msg) = sel.view.at(i) else { break };
        let uid = msg.uid;
        // Expunged elsewhere, not yet announced: its data is gone, it cannot match.
        if sel.gone.contains(&uid) {
            continue;
        }
        let seq = i as u32 + 1;
        let m = MsgCtx {
            msg,
            seq,
            // RFC 3501 §2.3.2; never set for rev2 sessions (RFC 9051 dropped \Recent).
            recent: !ctx.rev2 && sel.recent.contains(uid),
            saved: sel.saved.binary_search(&uid).is_ok(),
            exists,
            max_uid,
            now,
        };
        // Cheap keys first: only messages they leave undecided are read and parsed.
        let hit = match search::eval(criteria, &m, None) {
            Some(b) => b,
            None => {
                let raw = match ctx.server.store.read_message(sel.id, uid).await {
                    Ok(Some(r)) => r,
                    // Expunged since: its content is gone, it cannot match.
                    Ok(None) | Err(store::StoreError::Expunged) => continue,
                    Err(e) => return Err(store_error(tag, &e)),
                };
                let content = Content::parse(&raw);
                search::eval(criteria, &m, Some(&content)).unwrap_or(false)
            }
        };
        if hit {
            found.push((seq, uid));
        }
    }
    Ok(found)
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
    if save && status.kind != imap_proto::StatusKind::Ok {
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
    if let Some(cs) = charset
        && !CHARSETS.iter().any(|c| c.eq_ignore_ascii_case(cs))
    {
        // RFC 9051 §6.4.4: an unsupported charset is NO [BADCHARSET (supported...)].
        return Status::no(Some(tag), "unsupported charset")
            .with_code(Code::BadCharset(CHARSETS.map(String::from).to_vec()));
    }
    let with_modseq = search::uses_modseq(criteria);
    if with_modseq {
        // RFC 7162 §3.1: SEARCH MODSEQ is a CONDSTORE-enabling command.
        state::enable_condstore(ctx, Some(sel));
    }
    if search::needs_details(criteria)
        && let Err(e) = sel.ensure_details(ctx).await
    {
        return store_error(&tag, &e);
    }
    let found = match matches(ctx, &tag, sel, criteria).await {
        Ok(f) => f,
        Err(status) => return status,
    };
    let save = return_opts.is_some_and(|o| o.contains(&R::Save));
    let return_opts: Option<Vec<R>> =
        return_opts.map(|o| o.iter().filter(|r| **r != R::Save).cloned().collect());
    if save {
        let others = return_opts.as_deref().unwrap_or_default();
        let minmax_only =
            !others.is_empty() && !others.contains(&R::All) && !others.contains(&R::Count);
        sel.saved = if minmax_only {
            // RFC 5182 §2.4: with only MIN and/or MAX, just those messages are saved.
            let mut v = Vec::new();
            if let (true, Some((_, u))) = (others.contains(&R::Min), found.first()) {
                v.push(*u);
            }
            if let (true, Some((_, u))) = (others.contains(&R::Max), found.last()) {
                v.push(*u);
            }
            v.dedup();
            v
        } else {
            found.iter().map(|(_, u)| *u).collect()
        };
        if others.is_empty() {
            // RFC 5182 §2.1: SAVE alone returns no ESEARCH response.
            return Status::ok(Some(tag), "SEARCH completed, result saved");
        }
    }
    let return_opts = return_opts.as_deref();
    // RFC 7162 §3.1.5: the highest MODSEQ of the messages found, when MODSEQ was searched.
    let modseq = found
        .iter()
        .filter(|_| with_modseq)
        .filter_map(|(_, u)| sel.view.get(*u).map(|m| m.modseq))
        .max();
    let ids: Vec<u32> = found
        .iter()
        .map(|(s, u)| if uid { *u } else { *s })
        .collect();
    // RFC 9051 §6.4.4 / RFC 4731 §3.1: ESEARCH with RETURN, and always for IMAP4rev2
    // sessions; no options or `RETURN ()` mean ALL.
    let opts: Vec<R> = match return_opts {
        None if !ctx.rev2 => {
            ctx.data(Data::Search { ids, modseq });
            return Status::ok(Some(tag), "SEARCH completed");
        }
        Some(o) if !o.is_empty() => o.to_vec(),
        _ => vec![R::All],
    };
    let mut items = Vec::new();
    // RFC 4731 §3.1: MIN, MAX and ALL are omitted when nothing matched; COUNT 0 is sent.
    if let (Some(min), Some(max)) = (ids.iter().min(), ids.iter().max()) {
        if opts.contains(&R::Min) {
            items.push(ESearchItem::Min(*min));
        }
        if opts.contains(&R::Max) {
            items.push(ESearchItem::Max(*max));
        }
        if opts.contains(&R::All)
            && let Some(set) = SequenceSet::from_ids(ids.iter().copied())
        {
            items.push(ESearchItem::All(set));
        }
    }
    if opts.contains(&R::Count) {
        items.push(ESearchItem::Count(ids.len() as u32));
    }
    // RFC 7162 §3.1.5 with RFC 4731: with only MIN and/or MAX, the MODSEQ is the highest of
    // the messages returned, not of every match.
    let minmax_only = !opts.contains(&R::All) && !opts.contains(&R::Count);
    let modseq = if minmax_only && with_modseq {
        let mut shown = Vec::new();
        if opts.contains(&R::Min) {
            shown.extend(found.first());
        }
        if opts.contains(&R::Max) {
            shown.extend(found.last());
        }
        shown
            .iter()
            .filter_map(|(_, u)| sel.view.get(*u).map(|m| m.modseq))
            .max()
    } else {
        modseq
    };
    if let Some(m) = modseq {
        items.push(ESearchItem::ModSeq(m));
    }
    ctx.data(Data::ESearch {
        tag: Some(tag.clone()),
        uid,
        items,
    });
    Status::ok(Some(tag), "SEARCH completed")
}

//! SEARCH and UID SEARCH — RFC 9051 §6.4.4, §7.3.4 (ESEARCH), RFC 3501 §7.2.5 (`* SEARCH`),
//! RFC 4731 (ESEARCH return options MIN/MAX/ALL/COUNT).
//!
//! Not implemented: SAVE (RFC 5182, answered BAD; `$` is the empty set), MODSEQ (RFC 7162,
//! answered BAD), charsets other than UTF-8 and US-ASCII.

use std::collections::HashMap;

use imap_proto::{
    Code, Data, ESearchItem, SearchKey, SearchReturnOption as R, SequenceSet, Status, Tag,
};
use store::{MessageMeta, Uid};

use crate::cmd::fetch::read_blob;
use crate::search::{self, Content, MsgCtx};
use crate::session::{Ctx, store_error};
use crate::state::Selected;

/// RFC 9051 §6.4.4: UTF-8 must be supported; US-ASCII is its subset.
const CHARSETS: [&str; 2] = ["UTF-8", "US-ASCII"];

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The matching messages as (sequence number, UID), ascending, or the tagged reply to send
/// instead.
async fn matches(
    ctx: &Ctx,
    tag: &Tag,
    sel: &Selected,
    criteria: &SearchKey,
) -> Result<Vec<(u32, Uid)>, Status> {
    let metas = match ctx.server.store.list_messages(sel.id).await {
        Ok(m) => m,
        Err(e) => return Err(store_error(tag, &e)),
    };
    let metas: HashMap<Uid, MessageMeta> = metas.into_iter().map(|m| (m.uid, m)).collect();
    let exists = sel.exists();
    // Messages that arrived while selected are the last `recent` of the view (the session
    // counts them, RFC 3501 §2.3.2 approximated as in SELECT).
    let first_recent = exists.saturating_sub(sel.recent) + 1;
    let now = now();
    let mut found = Vec::new();
    for (i, uid) in sel.uids.iter().enumerate() {
        let seq = i as u32 + 1;
        // Expunged elsewhere, not yet announced: its data is gone, it cannot match.
        let Some(meta) = metas.get(uid) else { continue };
        let m = MsgCtx {
            meta,
            seq,
            recent: seq >= first_recent,
            exists,
            max_uid: sel.max_uid(),
            now,
        };
        // Cheap keys first: only messages they leave undecided are read and parsed.
        let hit = match search::eval(criteria, &m, None) {
            Some(b) => b,
            None => {
                let raw = match read_blob(ctx, meta).await {
                    Ok(r) => r,
                    Err(e) => return Err(store_error(tag, &e)),
                };
                let content = Content::parse(&raw);
                search::eval(criteria, &m, Some(&content)).unwrap_or(false)
            }
        };
        if hit {
            found.push((seq, *uid));
        }
    }
    Ok(found)
}

pub(crate) async fn search(
    ctx: &mut Ctx,
    tag: Tag,
    sel: &Selected,
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
    if let Some(why) = search::unsupported(criteria) {
        return Status::bad(Some(tag), why);
    }
    if return_opts.is_some_and(|o| o.contains(&R::Save)) {
        return Status::bad(Some(tag), "SEARCH RETURN (SAVE) is not supported");
    }
    let found = match matches(ctx, &tag, sel, criteria).await {
        Ok(f) => f,
        Err(status) => return status,
    };
    let ids: Vec<u32> = found
        .iter()
        .map(|(s, u)| if uid { *u } else { *s })
        .collect();
    // RFC 9051 §6.4.4 / RFC 4731 §3.1: ESEARCH with RETURN, and always for IMAP4rev2
    // sessions; no options or `RETURN ()` mean ALL.
    let opts: Vec<R> = match return_opts {
        None if !ctx.rev2 => {
            ctx.data(Data::Search { ids, modseq: None });
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
    ctx.data(Data::ESearch {
        tag: Some(tag.clone()),
        uid,
        items,
    });
    Status::ok(Some(tag), "SEARCH completed")
}

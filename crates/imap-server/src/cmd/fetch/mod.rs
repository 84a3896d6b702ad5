//! FETCH and UID FETCH — RFC 9051 §6.4.5, §7.5.2; CHANGEDSINCE and VANISHED — RFC 7162
//! §3.1.4, §3.2.6; BINARY — RFC 3516 §4.2.
//!
//! Each message costs what its items need (`plan.rs`): flags, dates and sizes come from the
//! session's view; ENVELOPE, BODY, BODYSTRUCTURE and the header from the store's cache of
//! parsed facts (`crate::facts`, computed on a miss and written back); bodies from the blob,
//! large ones streamed (`stream.rs`); a MIME parse only for sections of parts.
//!
//! Responses are flushed as they accumulate, so a FETCH of a whole mailbox holds a bounded
//! amount of it in memory however slowly the client reads.

mod changes;
mod items;
mod plan;
mod stream;

use std::io;
use std::sync::Arc;

use imap_proto::{
    Code, Data, FetchAttribute as A, FetchAttributes, FetchItem, FetchModifier, SequenceSet,
    Status, Tag,
};
use store::{BlobId, FlagOp, Flags, MessageBody, MessageFacts, StoreError, SystemFlags, Uid};

use crate::cmd::seq;
use crate::ctx::{Ctx, store_error};
use crate::facts;
use crate::state::{self, Selected};
use crate::wire::Io;
use items::Loaded;

/// Messages whose bodies and facts are looked up in one store read.
const BATCH: usize = 64;

/// Queued responses beyond this are sent before the next message is answered.
const FLUSH_AT: usize = 64 * 1024;

/// Facts of larger messages are computed on the blocking pool, not on an async worker.
const PARSE_OFFLOAD: usize = 256 * 1024;

/// `io` lets the command send responses as they accumulate and stream large bodies; without
/// it (a NOTIFY MessageNew FETCH, sent between commands) everything is queued in `ctx`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fetch(
    mut io: Option<&mut Io>,
    ctx: &mut Ctx,
    tag: Tag,
    sel: &mut Selected,
    uid: bool,
    set: &SequenceSet,
    attributes: &FetchAttributes,
    modifiers: &[FetchModifier],
) -> io::Result<Status> {
    let modifiers = match changes::Modifiers::parse(ctx, uid, modifiers) {
        Ok(m) => m,
        Err(why) => return Ok(Status::bad(Some(tag), why)),
    };
    let (attrs, needs) = plan::items(attributes, uid, modifiers.changed_since.is_some());
    let mut targets = match seq::resolve(sel, set, uid) {
        Ok(t) => t,
        Err(why) => return Ok(Status::bad(Some(tag), why)),
    };
    // Expunged elsewhere and not yet announced: omitted (RFC 9051 §7.5.2 allows it).
    if !sel.gone.is_empty() {
        targets.retain(|(_, u)| !sel.gone.contains(u));
    }
    let modseq = attrs.contains(&A::ModSeq);
    if modseq {
        // RFC 7162 §3.1: FETCH MODSEQ and CHANGEDSINCE are CONDSTORE-enabling commands.
        state::enable_condstore(ctx, Some(sel));
    }
    // The view knows dates, sizes and each message's own MODSEQ once its details are read.
    let sizes_from_view = !needs.body() && attrs.contains(&A::Rfc822Size);
    if attrs.contains(&A::SaveDate) {
        let uids: Vec<Uid> = targets.iter().map(|(_, u)| *u).collect();
        if let Err(e) = sel.ensure_save_dates(ctx, &uids).await {
            return Ok(store_error(&tag, &e));
        }
    }
    // The save date falls back to the internal date (`Selected::save_date_of`).
    let save_date = attrs.contains(&A::SaveDate);
    if (modseq || save_date || attrs.contains(&A::InternalDate) || sizes_from_view)
        && let Err(e) = sel.ensure_details(ctx).await
    {
        return Ok(store_error(&tag, &e));
    }
    if let Err(e) = modifiers.apply(ctx, sel, set, &mut targets).await {
        return Ok(store_error(&tag, &e));
    }
    if !needs.body() {
        // FLAGS, UID, INTERNALDATE, RFC822.SIZE, MODSEQ — `FETCH 1:* (FLAGS UID)` is what
        // clients poll with: all from the view, nothing read, nothing sets \Seen.
        for (seqno, u) in targets {
            // `targets` come from the view: sequence number n is its (n - 1)-th message.
            let Some(m) = sel.view.at(seqno as usize - 1).filter(|m| m.uid == u) else {
                continue;
            };
            let items = attrs
                .iter()
                .filter_map(|a| items::meta_item(ctx, sel, a, &m))
                .collect();
            ctx.data(Data::Fetch { seq: seqno, items });
            flush_if_full(&mut io, ctx).await?;
        }
        return Ok(done(tag, uid));
    }
    let seen_now = match mark_seen(ctx, sel, &attrs, &targets).await {
        Ok(s) => s,
        Err(e) => return Ok(store_error(&tag, &e)),
    };
    for batch in targets.chunks(BATCH) {
        let uids: Vec<Uid> = batch.iter().map(|(_, u)| *u).collect();
        let bodies = match ctx
            .server
            .store
            .message_bodies(sel.id, &uids, facts::VERSION)
            .await
        {
            Ok(b) => b,
            Err(e) => return Ok(store_error(&tag, &e)),
        };
        let mut computed = Vec::new();
        let mut bodies = bodies.into_iter().peekable();
        for &(seqno, u) in batch {
            // Both ascend; a UID without a body was expunged meanwhile (omitted, §7.5.2).
            while bodies.next_if(|b| b.uid < u).is_some() {}
            let Some(body) = bodies.next_if(|b| b.uid == u) else {
                continue;
            };
            let one = Message {
                seqno,
                body,
                seen_now: seen_now.contains(&u),
            };
            match answer(io.as_deref_mut(), ctx, &tag, sel, &attrs, needs, one).await? {
                Ok(Some(f)) => computed.push(f),
                Ok(None) => {}
                Err(status) => {
                    facts::cache(ctx, computed);
                    return Ok(status);
                }
            }
            flush_if_full(&mut io, ctx).await?;
        }
        facts::cache(ctx, computed);
    }
    Ok(done(tag, uid))
}

/// One message to answer.
struct Message {
    seqno: u32,
    body: MessageBody,
    /// This FETCH set its `\Seen`.
    seen_now: bool,
}

/// Answers one message: `Ok` with the facts computed for it (to be cached), if any; `Err` with
/// the tagged reply that ends the command early.
async fn answer(
    io: Option<&mut Io>,
    ctx: &mut Ctx,
    tag: &Tag,
    sel: &Selected,
    attrs: &[A],
    needs: plan::Needs,
    msg: Message,
) -> io::Result<Result<Option<(BlobId, MessageFacts)>, Status>> {
    let Message {
        seqno,
        body,
        seen_now,
    } = msg;
    let Some(mut meta) = sel.view.get(body.uid) else {
        return Ok(Ok(None));
    };
    meta.size = body.size;
    let MessageBody {
        blob, size, facts, ..
    } = body;
    let mut computed = None;
    let mut raw: Option<Vec<u8>> = None;
    let facts = match facts {
        Some(f) => Some(f),
        None if needs.facts => {
            let r = match read(ctx, &blob, size).await {
                Ok(r) => r,
                Err(StoreError::Expunged) => return Ok(Ok(None)),
                Err(e) => return Ok(Err(store_error(tag, &e))),
            };
            let (r, f) = compute_facts(r).await;
            raw = Some(r);
            computed = Some((blob.clone(), f.clone()));
            Some(Arc::new(f))
        }
        None => None,
    };
    // One item that sends the stored bytes as they are, of a large message not read yet:
    // streamed from the file.
    let raw_items: Vec<usize> = (0..attrs.len())
        .filter(|i| plan::needs(&attrs[*i]).raw)
        .collect();
    if let ([i], None, false, Some(io)) = (raw_items.as_slice(), &raw, needs.parse, io)
        && size >= stream::STREAM_MIN
        && let Some(span) = stream::span(&attrs[*i])
    {
        let offset = match span {
            stream::Span::Whole => 0,
            stream::Span::Text => facts
                .as_ref()
                .map_or(0, |f| f.header.len() as u64)
                .min(size),
        };
        let loaded = Loaded {
            facts: facts.as_deref(),
            raw: None,
            parsed: None,
        };
        let mut before = Vec::new();
        let mut after = Vec::new();
        for (j, a) in attrs.iter().enumerate() {
            if j == *i {
                continue;
            }
            match items::item(ctx, sel, a, &meta, &loaded) {
                Ok(it) if j < *i => before.push(it),
                Ok(it) => after.push(it),
                Err(_) => return Ok(Err(unknown_cte(tag))),
            }
        }
        extras(ctx, sel, attrs, &meta, seen_now, &mut after);
        let r = stream::Streamed {
            seq: seqno,
            before,
            item: &attrs[*i],
            after,
            blob: &blob,
            offset,
            len: size - offset,
        };
        return match stream::send(io, ctx, r).await? {
            Ok(()) | Err(StoreError::Expunged) => Ok(Ok(computed)),
            Err(e) => Ok(Err(store_error(tag, &e))),
        };
    }
    if needs.raw && raw.is_none() {
        raw = match read(ctx, &blob, size).await {
            Ok(r) => Some(r),
            Err(StoreError::Expunged) => return Ok(Ok(None)),
            Err(e) => return Ok(Err(store_error(tag, &e))),
        };
    }
    // A large message's MIME parse must not stall the worker's other sessions.
    let parsed = raw
        .as_deref()
        .filter(|_| needs.parse)
        .map(|r| server_kit::cpu_heavy(r.len(), || crate::mime::Mime::parse(r)));
    let loaded = Loaded {
        facts: facts.as_deref(),
        raw: raw.as_deref(),
        parsed: parsed.as_ref(),
    };
    let mut list = Vec::with_capacity(attrs.len() + 2);
    for a in attrs {
        match items::item(ctx, sel, a, &meta, &loaded) {
            Ok(it) => list.push(it),
            Err(_) => return Ok(Err(unknown_cte(tag))),
        }
    }
    extras(ctx, sel, attrs, &meta, seen_now, &mut list);
    ctx.data(Data::Fetch {
        seq: seqno,
        items: list,
    });
    Ok(Ok(computed))
}

/// RFC 9051 §6.4.5: a `\Seen` set by this FETCH is reported with the data (and, with
/// CONDSTORE on, the new MODSEQ — RFC 7162 §3.1) when the client did not ask for them.
fn extras(
    ctx: &Ctx,
    sel: &Selected,
    attrs: &[A],
    meta: &crate::view::Msg<'_>,
    seen_now: bool,
    items: &mut Vec<FetchItem>,
) {
    if seen_now && !attrs.contains(&A::Flags) {
        items.push(FetchItem::Flags(sel.flags_of(ctx.rev2, meta)));
    }
    if seen_now && ctx.condstore && !attrs.contains(&A::ModSeq) {
        items.push(FetchItem::ModSeq(meta.modseq));
    }
}

/// Sets `\Seen` on the targets that lack it when an item asks for it, before any response, so
/// the FLAGS in them include it (RFC 9051 §6.4.5). Returns the UIDs it was set on.
async fn mark_seen(
    ctx: &mut Ctx,
    sel: &mut Selected,
    attrs: &[A],
    targets: &[(u32, Uid)],
) -> Result<std::collections::HashSet<Uid>, StoreError> {
    let mut seen_now = std::collections::HashSet::new();
    if sel.read_only || !attrs.iter().any(plan::sets_seen) {
        return Ok(seen_now);
    }
    let unseen: Vec<Uid> = targets
        .iter()
        .map(|(_, u)| *u)
        .filter(|u| {
            sel.view
                .get(*u)
                .is_some_and(|m| !m.system.contains(SystemFlags::SEEN))
        })
        .collect();
    if unseen.is_empty() {
        return Ok(seen_now);
    }
    let seen = Flags {
        system: SystemFlags::SEEN,
        keywords: vec![],
    };
    let changed = ctx
        .server
        .store
        .store_flags(sel.id, &unseen, FlagOp::Add, &seen)
        .await?;
    for (u, flags, modseq) in changed {
        sel.view.set_flags(u, &flags, modseq);
        seen_now.insert(u);
    }
    Ok(seen_now)
}

async fn read(ctx: &Ctx, blob: &BlobId, size: u64) -> Result<Vec<u8>, StoreError> {
    ctx.server.store.read_blob(blob, size).await
}

/// Parses `raw` into its facts; large messages on the blocking pool.
async fn compute_facts(raw: Vec<u8>) -> (Vec<u8>, MessageFacts) {
    if raw.len() < PARSE_OFFLOAD {
        let f = facts::compute(&raw);
        return (raw, f);
    }
    let shared = Arc::new(raw);
    let input = Arc::clone(&shared);
    let f = tokio::task::spawn_blocking(move || facts::compute(&input))
        .await
        .unwrap_or_else(|_| facts::compute(&[]));
    let raw = Arc::try_unwrap(shared).unwrap_or_else(|a| a.as_ref().clone());
    (raw, f)
}

/// Sends what is queued once it exceeds [`FLUSH_AT`] (when there is a connection to send to).
async fn flush_if_full(io: &mut Option<&mut Io>, ctx: &mut Ctx) -> io::Result<()> {
    match io {
        Some(io) if ctx.pending_output() > FLUSH_AT => io.flush(ctx).await,
        _ => Ok(()),
    }
}

fn done(tag: Tag, uid: bool) -> Status {
    Status::ok(
        Some(tag),
        if uid {
            "UID FETCH completed"
        } else {
            "FETCH completed"
        },
    )
}

/// RFC 3516 §4.3: a part whose transfer encoding cannot be undone.
fn unknown_cte(tag: &Tag) -> Status {
    Status::no(Some(tag.clone()), "unknown Content-Transfer-Encoding").with_code(Code::UnknownCte)
}
